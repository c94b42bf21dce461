# sockflow: build the library and the C/C++ examples, install, test, demo.
#
#   make                      release library (target/release), header, every example in build/
#   make test                 cargo test --all-targets (Rust, C, C++ and end-to-end tests)
#   make demo                 run a server and a client from build/ on loopback (scripts/demo.sh)
#   make install PREFIX=/usr/local [DESTDIR=/stage]   (also LIBDIR, INCLUDEDIR, PKGCONFIGDIR)
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

PREFIX       ?= /usr/local
LIBDIR       ?= $(PREFIX)/lib
INCLUDEDIR   ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig

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

.PHONY: all lib examples test demo install uninstall clean FORCE
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

# The system libraries a program linking libsockflow.a needs, as rustc reports
# them for a staticlib (an empty one: sockflow's dependencies add no native
# libraries beyond libc). Computed when installing, for Libs.private.
native_static_libs = $(shell tmp=$$(mktemp -d) && echo > $$tmp/e.rs && \
	$(RUSTC) --crate-type staticlib --crate-name nslprobe --print native-static-libs \
	-o $$tmp/libnslprobe.a $$tmp/e.rs 2>&1 | sed -n 's/.*native-static-libs: *//p'; rm -rf $$tmp)

install: lib
	@libs='$(native_static_libs)'; \
	if [ -z "$$libs" ]; then echo "make install: could not get native-static-libs from $(RUSTC)" >&2; exit 1; fi; \
	set -ex; \
	$(INSTALL) -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(PKGCONFIGDIR); \
	$(INSTALL) -m 0755 $(SO) $(DESTDIR)$(LIBDIR)/libsockflow.so.$(VERSION); \
	ln -sf libsockflow.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME); \
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libsockflow.so; \
	$(INSTALL) -m 0644 $(STATIC) $(DESTDIR)$(LIBDIR)/libsockflow.a; \
	$(INSTALL) -m 0644 $(HEADER) $(DESTDIR)$(INCLUDEDIR)/sockflow.h; \
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(PC_LIBDIR)|g' -e 's|@INCLUDEDIR@|$(PC_INCLUDEDIR)|g' \
	    -e 's|@VERSION@|$(VERSION)|g' -e "s|@LIBS_PRIVATE@|$$libs|g" \
	    sockflow.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/sockflow.pc.tmp; \
	mv $(DESTDIR)$(PKGCONFIGDIR)/sockflow.pc.tmp $(DESTDIR)$(PKGCONFIGDIR)/sockflow.pc

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libsockflow.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME) \
	      $(DESTDIR)$(LIBDIR)/libsockflow.so $(DESTDIR)$(LIBDIR)/libsockflow.a \
	      $(DESTDIR)$(INCLUDEDIR)/sockflow.h $(DESTDIR)$(PKGCONFIGDIR)/sockflow.pc

clean:
	rm -rf build
	$(CARGO) clean
