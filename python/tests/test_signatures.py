"""The ctypes declarations cannot drift from include/sockflow.h: every
function, struct field, callback type, constant and enum value is read from
the header and compared with the package's one table (_lib.SIGNATURES) and
its declarations (_ctypes). A function added to or changed in the header
without the same change here fails, naming it."""

import ctypes
import re
from ctypes import POINTER, c_char, c_char_p, c_int, c_size_t, c_ssize_t, c_uint, c_uint64, c_void_p

import pytest

from conftest import ROOT
from sockflow import _ctypes as C
from sockflow import _lib

HEADER = (ROOT / "include" / "sockflow.h").read_text()


def _code(text):
    """The header without comments, whitespace collapsed."""
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    text = re.sub(r"^\s*#(?!define).*$", " ", text, flags=re.M)  # #ifdef, #endif, #include
    return " ".join(text.split())


CODE = _code(HEADER)
OPAQUE = {cls.__name__: cls for cls in C.OPAQUE}
STRUCTS = {cls.__name__: cls for cls in C.STRUCTS}
CALLBACKS = {
    "sockflow_on_connect": C.sockflow_on_connect,
    "sockflow_on_message": C.sockflow_on_message,
    "sockflow_on_close": C.sockflow_on_close,
    "sockflow_timer_fn": C.sockflow_timer_fn,
    "sockflow_log_fn": C.sockflow_log_fn,
}
SCALARS = {
    "int": c_int,
    "char": c_char,
    "unsigned int": c_uint,
    "size_t": c_size_t,
    "ssize_t": c_ssize_t,
    "uint64_t": c_uint64,
    "void": None,
    "void *": c_void_p,
    "FILE *": c_void_p,
    "char *const *": POINTER(c_char_p),
    "char **": POINTER(c_char_p),
    "int *": POINTER(c_int),
    "unsigned int *": POINTER(c_uint),
    "uint64_t *": POINTER(c_uint64),
}


def ctype_of(decl, where):
    """The ctypes types a C type may be declared as (a set of equals)."""
    t = decl.replace("const ", "").replace(" *", "*").replace("*", " *").strip()
    t = " ".join(t.split()).replace("* *", "**")
    if t in ("char *",):
        # c_char_p for strings; POINTER(c_char) where bytes may hold NULs.
        return {c_char_p, POINTER(c_char)}
    if t in SCALARS:
        return {SCALARS[t]}
    if t in CALLBACKS:
        return {CALLBACKS[t]}
    m = re.fullmatch(r"struct (sockflow_\w+)( \*{0,2})?", t) or re.fullmatch(r"(sockflow_\w+)( \*{0,2})?", t)
    assert m, "%s: no ctypes mapping for C type %r" % (where, decl)
    name, stars = m.group(1), (m.group(2) or "").count("*")
    base = OPAQUE.get(name) or STRUCTS.get(name)
    assert base is not None, "%s: unknown type %r" % (where, decl)
    for _ in range(stars):
        base = POINTER(base)
    return {base}


def split_param(p):
    """'const struct sockflow_args *args' -> ('const struct sockflow_args *', 'args')."""
    m = re.fullmatch(r"(.*?[\s\*])(\w+)(\[\w+\])?", p.strip())
    return (m.group(1).strip(), m.group(2), m.group(3)) if m else (p.strip(), None, None)


def header_functions():
    body = CODE.split('extern "C" {', 1)[1]
    found = {}
    for m in re.finditer(r"([A-Za-z_][\w \*]*?)\b(sockflow_\w+) ?\(([^()]*)\) ?;", body):
        ret, name, params = m.group(1).strip(), m.group(2), m.group(3).strip()
        args = [] if params in ("", "void") else [split_param(p)[0] for p in params.split(",")]
        found[name] = (ret, args)
    return found


FUNCTIONS = header_functions()
TABLE = {name: (res, args) for name, res, args in _lib.SIGNATURES}


def test_the_header_parses():
    # A parser that finds nothing would make every test below vacuous.
    assert len(FUNCTIONS) >= 85, sorted(FUNCTIONS)
    assert "sockflow_tcp_connect" in FUNCTIONS and "sockflow_server_timer_add" in FUNCTIONS


def test_every_header_function_is_in_the_table_and_nothing_else():
    missing = sorted(set(FUNCTIONS) - set(TABLE))
    extra = sorted(set(TABLE) - set(FUNCTIONS))
    assert not missing, "in include/sockflow.h, not in python/sockflow/_lib.py SIGNATURES: %s" % missing
    assert not extra, "in SIGNATURES, not in the header: %s" % extra
    assert len(TABLE) == len(_lib.SIGNATURES), "a function is listed twice in SIGNATURES"


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_signature_matches_the_header(name):
    ret, args = FUNCTIONS[name]
    res, argtypes = TABLE[name]
    assert res in ctype_of(ret, name + " result"), "%s returns %s: declared %r" % (name, ret, res)
    assert len(argtypes) == len(args), "%s takes %d arguments (%s), declared %d" % (name, len(args), args, len(argtypes))
    for i, (c, py) in enumerate(zip(args, argtypes)):
        assert py in ctype_of(c, name), "%s argument %d is %s: declared %r" % (name, i + 1, c, py)
    # And what was applied to the loaded library is the table.
    f = getattr(_lib.lib, name)
    assert f.restype is res and list(f.argtypes) == list(argtypes)


def header_structs():
    found = {}
    for m in re.finditer(r"typedef struct (sockflow_\w+) \{(.*?)\} \1;", CODE):
        fields = []
        for decl in m.group(2).split(";"):
            if decl.strip():
                fields.append(split_param(decl))
        found[m.group(1)] = fields
    return found


def test_structs_match_field_by_field():
    structs = header_structs()
    assert set(structs) == set(STRUCTS), "structs in the header: %s" % sorted(structs)
    defines = header_defines()
    for name, fields in structs.items():
        py = STRUCTS[name]._fields_
        assert [f[1] for f in fields] == [f[0] for f in py], (
            "%s: the header's fields %s, python/sockflow/_ctypes.py's %s (a struct smaller in Python "
            "than in C is overrun by sockflow's calls)" % (name, [f[1] for f in fields], [f[0] for f in py]))
        for (ctype, fname, array), (_, pytype) in zip(fields, py):
            if array:
                size = array.strip("[]")
                n = int(size) if size.isdigit() else defines[size.replace("SOCKFLOW_", "", 1)]
                assert pytype._type_ in ctype_of(ctype, name) and pytype._length_ == n, "%s.%s" % (name, fname)
            else:
                assert pytype in ctype_of(ctype, "%s.%s" % (name, fname)), "%s.%s is %s" % (name, fname, ctype)


def test_callback_types_match():
    for name, fn in CALLBACKS.items():
        m = re.search(r"typedef ([\w \*]+?) ?\(\*%s\)\(([^()]*)\);" % name, CODE)
        assert m, name
        params = [split_param(p)[0] for p in m.group(2).split(",")]
        assert fn._restype_ in ctype_of(m.group(1), name)
        assert len(fn._argtypes_) == len(params), name
        for c, py in zip(params, fn._argtypes_):
            assert py in ctype_of(c, name), "%s: %s declared %r" % (name, c, py)


def header_defines():
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"#define SOCKFLOW_(\w+) (-?\d+)\b", CODE)}


def test_constants_and_codes_match():
    defines = header_defines()
    codes = {k: v for k, v in defines.items() if k == "OK" or re.fullmatch(r"E[A-Z]+", k)}
    assert {c.name: int(c) for c in C.Code} == codes
    for name, value in defines.items():
        if name not in codes:
            assert getattr(C, name) == value, "SOCKFLOW_%s" % name
    assert re.search(r'#define SOCKFLOW_VERSION "%s"' % re.escape(C.VERSION), HEADER)


def test_enums_match():
    enums = {}
    for m in re.finditer(r"typedef enum sockflow_(\w+) \{(.*?)\} sockflow_\1;", CODE):
        prefix = "SOCKFLOW_%s_" % m.group(1).upper()
        values = {}
        for item in m.group(2).split(","):
            if item.strip():
                k, v = item.split("=")
                assert k.strip().startswith(prefix), k
                values[k.strip()[len(prefix):]] = int(v)
        enums["".join(w.capitalize() for w in m.group(1).split("_"))] = values
    assert set(enums) == {e.__name__ for e in C.ENUMS}, sorted(enums)
    for e in C.ENUMS:
        assert {x.name: int(x) for x in e} == enums[e.__name__], e.__name__


def test_soname_and_library_version():
    assert _lib.SONAME == "libsockflow.so.%d.%d" % (C.VERSION_MAJOR, C.VERSION_MINOR)
    assert _lib.lib.sockflow_version().decode() == C.VERSION
    cargo = (ROOT / "Cargo.toml").read_text()
    assert re.search(r'^version = "%s"' % re.escape(C.VERSION), cargo, re.M)
    pyproject = (ROOT / "python" / "pyproject.toml").read_text()
    assert re.search(r'^version = "%s"' % re.escape(C.VERSION), pyproject, re.M)


def test_struct_sizes_as_a_c_compiler_sees_them(tmp_path):
    """sizeof and offsetof from gcc, against ctypes (skipped without gcc)."""
    import shutil
    import subprocess

    cc = shutil.which("gcc") or shutil.which("cc")
    if not cc:
        pytest.skip("no C compiler")
    lines = []
    for name, cls in STRUCTS.items():
        lines.append('printf("%s %%zu\\n", sizeof(%s));' % (name, name))
        for f, _ in cls._fields_:
            lines.append('printf("%s.%s %%zu\\n", offsetof(%s, %s));' % (name, f, name, f))
    src = tmp_path / "sizes.c"
    src.write_text("#include <stddef.h>\n#include <stdio.h>\n#include <sockflow.h>\nint main(void){%s return 0;}\n"
                   % "\n".join(lines))
    exe = tmp_path / "sizes"
    subprocess.run([cc, "-I", str(ROOT / "include"), str(src), "-o", str(exe)], check=True, timeout=120)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True, timeout=60).stdout
    got = dict(line.split() for line in out.splitlines())
    for name, cls in STRUCTS.items():
        assert int(got[name]) == ctypes.sizeof(cls), name
        for f, _ in cls._fields_:
            assert int(got["%s.%s" % (name, f)]) == getattr(cls, f).offset, "%s.%s" % (name, f)
