#!/bin/sh
# After `make install`: make the installed libsockflow loadable, or say how.
#
#   scripts/after-install.sh LIBDIR SONAME [DESTDIR]
#
# The dynamic linker finds a library in a directory it is configured to
# search (ld.so.conf, as `ldconfig -v -N -X` lists them) only once ldconfig
# has put the new soname in its cache; anywhere else the program needs an
# rpath or LD_LIBRARY_PATH. So:
#   - staged (DESTDIR set): nothing; the package's own ldconfig trigger runs
#     on the target system;
#   - LIBDIR searched by the dynamic linker and we are root: run ldconfig
#     (what `cannot open shared object file` after an install was missing);
#   - LIBDIR searched, not root: say to run ldconfig as root;
#   - otherwise: say how to link with an rpath or run with LD_LIBRARY_PATH.
# LDCONFIG names the ldconfig to run (tests use a stand-in); by default the
# one on PATH, else /sbin's (not on a normal user's PATH on Debian).
set -eu
libdir=$1
soname=$2
destdir=${3:-}
ldconfig=${LDCONFIG:-$(command -v ldconfig || echo /sbin/ldconfig)}

[ -z "$destdir" ] || exit 0

# The directories the dynamic linker searches, resolved (/lib may be /usr/lib).
searched=$("$ldconfig" -v -N -X 2>/dev/null | sed -n 's/^\(\/[^:]*\):.*/\1/p' |
    while read -r d; do readlink -f "$d" || :; done)
real=$(readlink -f "$libdir")
if printf '%s\n' "$searched" | grep -qxF "$real"; then
    if [ "$(id -u)" -eq 0 ]; then
        echo "$ldconfig  # $libdir is searched by the dynamic linker: add $soname to its cache"
        "$ldconfig"
    else
        echo "note: run 'ldconfig' as root so that programs find $libdir/$soname"
    fi
    exit 0
fi
cat <<NOTE
note: $libdir is not searched by the dynamic linker, so a program linked
      against $soname there needs to be told where it is, either
        at link time:  cc app.c \$(pkg-config --cflags --libs sockflow) -Wl,-rpath,$libdir
        or at run time: LD_LIBRARY_PATH=$libdir ./app
      (or link it statically: pkg-config --libs sockflow-static). See README, "Building and linking".
NOTE
