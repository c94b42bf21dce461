# sockflow: build the library and the C/C++ examples, install, test, demo.
#
#   make                      release library (target/release), header, every example in build/
#   make test                 cargo test --all-targets (Rust, C, C++ and end-to-end tests)
#   make demo                 run a server and a client from build/ on loopback (scripts/demo.sh)
#   make bench                sockflow vs hand-written C servers (benches/README.md): table, chart, BENCHMARKS.md
#   make install PREFIX=/usr/local [DESTDIR=/stage]   (also LIBDIR, INCLUDEDIR, PKGCONFIGDIR,
#                             CMAKEDIR, MANDIR); runs ldconfig for a directory the dynamic
#                             linker searches (as root, without DESTDIR), else says what to do
#   make doc                  reference manual: build/doc/html and build/doc/man (doxygen;
#                             fails on any warning)
#                             Installed libraries are stripped: the .so's debug info goes to
#                             LIBDIR/.debug/libsockflow.so.VERSION.debug (found by gdb through
#                             its .gnu_debuglink), the .a keeps its symbols but not its debug
#                             info or the LLVM bitcode std ships (28 MB -> 13 MB)
#   make uninstall PREFIX=... / make clean
#
# Examples: every c_examples/NAME.c becomes build/NAME (C99) and every
# c_examples/NAME.cpp becomes build/NAME_cpp (C++17), both with
# -Wall -Wextra -Werror -pedantic. They link the *shared* library in
# target/release with an rpath to build/lib, where a symlink named after the
# soname (libsockflow.so.0.2) points at target/release/libsockflow.so: a
# rebuilt library is picked up without relinking, and the programs load the
# library the same way an installed one would be loaded (by soname).

CARGO    ?= cargo
RUSTC    ?= rustc
# gcc/g++ unless CC/CXX are set in the environment or on the command line.
ifeq ($(origin CC),default)
CC       := gcc
endif
ifeq ($(origin CXX),default)
CXX      := g++
endif
CFLAGS   ?= -O2 -g
CXXFLAGS ?= -O2 -g
INSTALL  ?= install
OBJCOPY  ?= objcopy
DOXYGEN  ?= doxygen

PREFIX       ?= /usr/local
LIBDIR       ?= $(PREFIX)/lib
INCLUDEDIR   ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
CMAKEDIR     ?= $(LIBDIR)/cmake/sockflow
MANDIR       ?= $(PREFIX)/share/man

VERSION := $(shell sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -n 1)
MAJOR   := $(word 1,$(subst ., ,$(VERSION)))
MINOR   := $(word 2,$(subst ., ,$(VERSION)))
# The soname version, as build.rs sets it: 0.MINOR before 1.0, MAJOR after.
SOVER   := $(if $(filter 0,$(MAJOR)),0.$(MINOR),$(MAJOR))
SONAME  := libsockflow.so.$(SOVER)

# cargo's target directory (CARGO_TARGET_DIR when set, as cargo itself does).
TARGET_DIR ?= $(or $(CARGO_TARGET_DIR),target)
RELEASE  := $(TARGET_DIR)/release
SO       := $(RELEASE)/libsockflow.so
STATIC   := $(RELEASE)/libsockflow.a
HEADER   := include/sockflow.h
LINKDIR  := build/lib

C_SRCS   := $(wildcard c_examples/*.c)
CPP_SRCS := $(wildcard c_examples/*.cpp)
C_BINS   := $(patsubst c_examples/%.c,build/%,$(C_SRCS))
CPP_BINS := $(patsubst c_examples/%.cpp,build/%_cpp,$(CPP_SRCS))

# In sockflow.pc, directories under PREFIX are written as ${prefix}/... so
# that pkg-config --define-prefix can relocate the installation.
PC_LIBDIR     := $(patsubst $(PREFIX)/%,$${prefix}/%,$(LIBDIR))
PC_INCLUDEDIR := $(patsubst $(PREFIX)/%,$${prefix}/%,$(INCLUDEDIR))

WARN     := -Wall -Wextra -Werror -pedantic
LINK_SO  := -L$(CURDIR)/$(LINKDIR) -lsockflow -Wl,-rpath,$(CURDIR)/$(LINKDIR)

.PHONY: all lib examples test demo bench install uninstall doc clean FORCE
.DELETE_ON_ERROR:

all: lib examples

# cargo decides what is stale; the library's timestamp changes only when it
# was rebuilt, so the examples relink only then. Outside CI (CI unset)
# build.rs also rewrites include/sockflow.h when src/ffi changed.
lib: $(SO)
$(SO) $(STATIC) &: FORCE
	CARGO_TARGET_DIR=$(TARGET_DIR) $(CARGO) build --release --lib
FORCE:

$(LINKDIR)/$(SONAME): | $(LINKDIR)
	ln -sf $(abspath $(SO)) $@
$(LINKDIR)/libsockflow.so: | $(LINKDIR)
	ln -sf $(abspath $(SO)) $@
$(LINKDIR):
	mkdir -p $@

examples: $(C_BINS) $(CPP_BINS)

LINK_DEPS := $(SO) $(HEADER) $(LINKDIR)/$(SONAME) $(LINKDIR)/libsockflow.so

build/%_cpp: c_examples/%.cpp $(LINK_DEPS) include/sockflow.hpp
	$(CXX) -std=c++17 $(WARN) $(CXXFLAGS) -Iinclude $< -o $@ $(LINK_SO)

build/%: c_examples/%.c $(LINK_DEPS)
	$(CC) -std=c99 $(WARN) $(CFLAGS) -Iinclude $< -o $@ $(LINK_SO)

# The README's test command: the same as `cargo test --all-targets`.
# TEST_FLAGS: extra cargo test flags (CI passes --no-fail-fast).
test:
	$(CARGO) test --all-targets $(TEST_FLAGS)

demo: all
	./scripts/demo.sh

# The benchmark (benches/echo/, about five minutes; SOCKFLOW_BENCH_* variables
# in benches/README.md). libuv's baseline needs libuv1-dev: installed here when
# missing and this is root with apt-get, else the bench skips it with a note.
bench:
	@if [ ! -e /usr/include/uv.h ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "make bench: installing libuv1-dev for the libuv baseline"; \
	    apt-get install -y -qq libuv1-dev >/dev/null 2>&1 || \
	    { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq libuv1-dev >/dev/null 2>&1; } || \
	    echo "make bench: could not install libuv1-dev: the libuv baseline will be skipped"; \
	  else \
	    echo "make bench: libuv1-dev is not installed (and this is not root with apt-get): the libuv baseline will be skipped"; \
	  fi; \
	fi
	CARGO_TARGET_DIR=$(TARGET_DIR) $(CARGO) bench --bench echo

# The system libraries a program linking libsockflow.a needs, as rustc reports
# them for a staticlib (an empty one: sockflow's dependencies add no native
# libraries beyond libc), without -lgcc_s: the compiler driver adds libgcc_s
# itself (as-needed) to a dynamic link and libgcc_eh to a -static one, where
# an explicit -lgcc_s fails (there is no libgcc_s.a). Computed when
# installing, for sockflow.pc's Libs.private, sockflow-static.pc and the
# CMake package's sockflow::sockflow_static.
native_static_libs = $(filter-out -lgcc_s,$(shell tmp=$$(mktemp -d) && echo > $$tmp/e.rs && \
	$(RUSTC) --crate-type staticlib --crate-name nslprobe --print native-static-libs \
	-o $$tmp/libnslprobe.a $$tmp/e.rs 2>&1 | sed -n 's/.*native-static-libs: *//p'; rm -rf $$tmp))

# The CMake package finds the library and header relative to its own
# directory, so an installed tree can be moved (and DESTDIR never leaks in).
CMAKE_LIBDIR     = $(shell realpath -m -s --relative-to=$(CMAKEDIR) $(LIBDIR))
CMAKE_INCLUDEDIR = $(shell realpath -m -s --relative-to=$(CMAKEDIR) $(INCLUDEDIR))

# The library's pointer width, for the CMake package's version check.
PTR_BITS = $(shell $(RUSTC) --print cfg | sed -n 's/^target_pointer_width="\(.*\)"/\1/p')

# Every installed template (*.in) gets the same substitutions.
SUBST = sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(PC_LIBDIR)|g' -e 's|@INCLUDEDIR@|$(PC_INCLUDEDIR)|g' \
	-e 's|@VERSION@|$(VERSION)|g' -e 's|@SOVER@|$(SOVER)|g' -e 's|@SONAME@|$(SONAME)|g' -e 's|@PTR_BITS@|$(PTR_BITS)|g' \
	-e 's|@CMAKE_LIBDIR@|$(CMAKE_LIBDIR)|g' -e 's|@CMAKE_INCLUDEDIR@|$(CMAKE_INCLUDEDIR)|g' \
	-e "s|@STATIC_LIBS@|$$libs|g" -e "s|@STATIC_LIBS_CMAKE@|$$cmlibs|g"
# install_template TEMPLATE DEST: substituted, then moved into place whole.
install_template = $(SUBST) $(1) > $(2).tmp && mv $(2).tmp $(2)

CPP_HEADER := $(wildcard include/sockflow.hpp)
MAN3       := $(DESTDIR)$(MANDIR)/man3

# The man pages come from `make doc`; without doxygen they are left out (and
# said so), the rest installs as usual.
HAVE_DOXYGEN := $(shell command -v $(DOXYGEN) 2>/dev/null)

install: lib $(if $(HAVE_DOXYGEN),doc)
	@libs='$(native_static_libs)'; \
	if [ -z "$$libs" ]; then echo "make install: could not get native-static-libs from $(RUSTC)" >&2; exit 1; fi; \
	cmlibs=$$(echo $$libs | tr ' ' ';'); \
	set -ex; \
	$(INSTALL) -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(CMAKEDIR); \
	$(INSTALL) -d $(DESTDIR)$(LIBDIR)/.debug; \
	$(OBJCOPY) --only-keep-debug $(SO) $(DESTDIR)$(LIBDIR)/.debug/libsockflow.so.$(VERSION).debug; \
	$(OBJCOPY) --strip-unneeded --add-gnu-debuglink=$(DESTDIR)$(LIBDIR)/.debug/libsockflow.so.$(VERSION).debug \
	    $(SO) $(DESTDIR)$(LIBDIR)/libsockflow.so.$(VERSION).tmp; \
	chmod 0755 $(DESTDIR)$(LIBDIR)/libsockflow.so.$(VERSION).tmp; \
	mv $(DESTDIR)$(LIBDIR)/libsockflow.so.$(VERSION).tmp $(DESTDIR)$(LIBDIR)/libsockflow.so.$(VERSION); \
	ln -sf libsockflow.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME); \
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libsockflow.so; \
	$(OBJCOPY) --strip-debug --remove-section=.llvmbc --remove-section=.llvmcmd $(STATIC) $(DESTDIR)$(LIBDIR)/libsockflow.a.tmp; \
	chmod 0644 $(DESTDIR)$(LIBDIR)/libsockflow.a.tmp; \
	mv $(DESTDIR)$(LIBDIR)/libsockflow.a.tmp $(DESTDIR)$(LIBDIR)/libsockflow.a; \
	$(INSTALL) -m 0644 $(HEADER) $(CPP_HEADER) $(DESTDIR)$(INCLUDEDIR)/; \
	$(call install_template,sockflow.pc.in,$(DESTDIR)$(PKGCONFIGDIR)/sockflow.pc); \
	$(call install_template,sockflow-static.pc.in,$(DESTDIR)$(PKGCONFIGDIR)/sockflow-static.pc); \
	$(call install_template,cmake/sockflowConfig.cmake.in,$(DESTDIR)$(CMAKEDIR)/sockflowConfig.cmake); \
	$(call install_template,cmake/sockflowConfigVersion.cmake.in,$(DESTDIR)$(CMAKEDIR)/sockflowConfigVersion.cmake)
ifneq ($(HAVE_DOXYGEN),)
	$(INSTALL) -d $(MAN3)
	$(INSTALL) -m 0644 $(DOC_BUILD)/man/man3/sockflow*.3 $(DOC_BUILD)/man/man3/SOCKFLOW*.3 $(MAN3)/
else
	@echo "make install: $(DOXYGEN) not found, man pages not installed (apt-get install doxygen, then make install)"
endif
	@./scripts/after-install.sh $(LIBDIR) $(SONAME) '$(DESTDIR)'

# Every installed name is sockflow-prefixed, so the man pages go by pattern
# (their list is doxygen's: one per group, struct and function).
uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libsockflow.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME) \
	      $(DESTDIR)$(LIBDIR)/libsockflow.so $(DESTDIR)$(LIBDIR)/libsockflow.a \
	      $(DESTDIR)$(INCLUDEDIR)/sockflow.h $(DESTDIR)$(INCLUDEDIR)/sockflow.hpp \
	      $(DESTDIR)$(PKGCONFIGDIR)/sockflow.pc $(DESTDIR)$(PKGCONFIGDIR)/sockflow-static.pc \
	      $(DESTDIR)$(CMAKEDIR)/sockflowConfig.cmake $(DESTDIR)$(CMAKEDIR)/sockflowConfigVersion.cmake \
	      $(MAN3)/sockflow*.3 $(MAN3)/SOCKFLOW*.3 \
	      $(DESTDIR)$(LIBDIR)/.debug/libsockflow.so.$(VERSION).debug
	rmdir $(DESTDIR)$(CMAKEDIR) $(DESTDIR)$(LIBDIR)/.debug 2>/dev/null || true

# The reference manual: doxygen reads the header(s) and docs/ (docs/Doxyfile
# says how; the version, the inputs and the output directory are added
# here), twice:
#   - HTML from the C header, docs/ and the C++ header when present;
#   - man pages from the C header and docs/ only: doxygen names a man page
#     after its compound, and C++ classes sockflow::server, sockflow::conn,
#     sockflow::handler would take the names of the C families'
#     (sockflow_server.3) and structs' pages.
# Any warning fails `make doc`: an undocumented C declaration (either run)
# or public C++ member (the HTML run; namespace sockflow::detail is left
# out, docs/Doxyfile). The docs `make install` builds for its man pages
# only print warnings (a doc comment's flaw does not stop an install;
# tests/doc.rs fails on it).
DOC_BUILD  ?= build/doc
DOC_INPUTS := docs/sockflow.md docs/groups.dox $(HEADER)
DOC_WARN_AS_ERROR ?= FAIL_ON_WARNINGS
install: DOC_WARN_AS_ERROR := NO
# doxygen_run SETTINGS: docs/Doxyfile plus the common and the given settings.
doxygen_run = { cat docs/Doxyfile; echo 'PROJECT_NUMBER = $(VERSION)'; echo 'OUTPUT_DIRECTORY = $(DOC_BUILD)'; \
	echo 'WARN_AS_ERROR = $(DOC_WARN_AS_ERROR)'; $(1) } | $(DOXYGEN) -

doc:
	rm -rf $(DOC_BUILD)
	mkdir -p $(DOC_BUILD)
	awk -f docs/doxygen-groups.awk $(HEADER) > /dev/null || [ '$(DOC_WARN_AS_ERROR)' = NO ]
	$(call doxygen_run,echo 'INPUT = $(DOC_INPUTS) $(CPP_HEADER)'; echo 'GENERATE_MAN = NO';)
	$(call doxygen_run,echo 'INPUT = $(DOC_INPUTS)'; echo 'GENERATE_HTML = NO';)
	@# `man 3 sockflow` is the overview, whose page is labelled sockflow_overview
	@# (a C++ namespace sockflow, in the HTML, has the name sockflow).
	cd $(DOC_BUILD)/man/man3 && \
	  sed -e '1s/^\.TH "sockflow_overview"/.TH "sockflow"/' -e 's/^sockflow_overview \\-/sockflow \\-/' \
	      sockflow_overview.3 > sockflow.3 && rm sockflow_overview.3

clean:
	rm -rf build
	$(CARGO) clean
