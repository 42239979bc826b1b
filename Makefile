# ScopeHold - build, test and install.
#   make            build shadm and scopeholdfs into build/
#   make check      unit, CLI and end-to-end tests; ends with "N passed, N failed"
#   make demo       a demo store, mount, reads and audit (root, /dev/fuse)
#   make deps       install the Debian packages the build and tests need
#   make bench      the benchmark (docs/performance.md); BENCH_QUICK=1 for seconds
#   make stress     the long crash/fault campaign (docs/security.md)
#   make fuzz       libFuzzer targets, each for FUZZ_SECONDS (clang)
#   make install    PREFIX=/usr/local DESTDIR=
#   SANITIZE=1      build and test with AddressSanitizer + UBSan (in build-asan/)
#   V=1             show the commands
PREFIX   ?= /usr/local
BINDIR   ?= $(PREFIX)/bin
MANDIR   ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
UNITDIR  ?= /etc/systemd/system
DESTDIR  ?=

CC       ?= cc
PKGS     := fuse3 libsodium sqlite3 inih jansson
# Debian package that ships each pkg-config module, for the error message.
DEB_fuse3     := libfuse3-dev
DEB_libsodium := libsodium-dev
DEB_sqlite3   := libsqlite3-dev
DEB_inih      := libinih-dev
DEB_jansson   := libjansson-dev
DEPS_DEB := build-essential pkg-config libfuse3-dev fuse3 libsodium-dev \
            libsqlite3-dev libinih-dev libjansson-dev sqlite3 python3 util-linux \
            clang libclang-rt-14-dev valgrind

ifeq ($(filter deps clean,$(MAKECMDGOALS)),)
MISSING := $(strip $(foreach p,$(PKGS),$(if $(shell pkg-config --exists $(p) && echo y),,$(p))))
ifneq ($(MISSING),)
$(error missing pkg-config module(s): $(MISSING); install Debian package(s): $(foreach p,$(MISSING),$(DEB_$(p))) (or run 'make deps'))
endif
endif

WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2
CFLAGS   ?= -O2 -g
CFLAGS   += -std=c11 -D_GNU_SOURCE $(WARN) -I. -MMD -MP -fstack-protector-strong -D_FORTIFY_SOURCE=2
ifeq ($(SANITIZE),1)
CFLAGS   += -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all -U_FORTIFY_SOURCE
LDFLAGS  += -fsanitize=address,undefined
endif
PC_CFLAGS_BASE := $(shell pkg-config --cflags libsodium sqlite3 inih jansson 2>/dev/null)
PC_LIBS_BASE   := $(shell pkg-config --libs libsodium sqlite3 inih 2>/dev/null)
PC_LIBS_JSON   := $(shell pkg-config --libs jansson 2>/dev/null)
PC_CFLAGS_FUSE := $(shell pkg-config --cflags fuse3 2>/dev/null)
PC_LIBS_FUSE   := $(shell pkg-config --libs fuse3 2>/dev/null)
LDLIBS_BASE := $(PC_LIBS_BASE) -lpthread

B := build$(if $(filter 1,$(SANITIZE)),-asan)
ifeq ($(V),1)
Q :=
else
Q := @
endif

POLICY_SRC := $(wildcard policy/*.c)
STORE_SRC  := $(wildcard store/*.c)
FS_SRC     := $(wildcard fs/*.c)
TOOLS_SRC  := $(wildcard tools/*.c)
UNIT_SRC   := $(wildcard tests/unit/*_test.c)
BENCH_SRC  := $(filter-out bench/barefs.c,$(wildcard bench/*.c))

POLICY_OBJ := $(POLICY_SRC:%.c=$(B)/%.o)
STORE_OBJ  := $(STORE_SRC:%.c=$(B)/%.o)
FS_OBJ     := $(FS_SRC:%.c=$(B)/%.o)
TOOLS_OBJ  := $(TOOLS_SRC:%.c=$(B)/%.o)
UNIT_BIN   := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)

PROGS := $(B)/shadm $(B)/scopeholdfs
BENCH_PROGS := $(if $(BENCH_SRC),$(B)/bench/shbench) $(if $(wildcard bench/barefs.c),$(B)/bench/barefs)

.PHONY: all check unit clean install uninstall deps demo bench stress fuzz
all: $(PROGS) $(UNIT_BIN) $(BENCH_PROGS)

$(B)/bench/barefs.o: bench/barefs.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) $(PC_CFLAGS_BASE) $(PC_CFLAGS_FUSE) -c -o $@ $<

$(B)/bench/barefs: $(B)/bench/barefs.o
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(PC_LIBS_FUSE) -lpthread

$(B)/bench/shbench: $(BENCH_SRC:%.c=$(B)/%.o) $(B)/libstore.a $(B)/libpolicy.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $(BENCH_SRC:%.c=$(B)/%.o) $(B)/libstore.a $(B)/libpolicy.a $(LDLIBS_BASE)

$(B)/fs/%.o: fs/%.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) $(PC_CFLAGS_BASE) $(PC_CFLAGS_FUSE) -c -o $@ $<

$(B)/%.o: %.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) $(PC_CFLAGS_BASE) -c -o $@ $<

$(B)/libpolicy.a: $(POLICY_OBJ)
	$(Q)rm -f $@ && ar rcs $@ $^
$(B)/libstore.a: $(STORE_OBJ)
	$(Q)rm -f $@ && ar rcs $@ $^

$(B)/shadm: $(TOOLS_OBJ) $(B)/libstore.a $(B)/libpolicy.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $(TOOLS_OBJ) $(B)/libstore.a $(B)/libpolicy.a $(PC_LIBS_JSON) $(LDLIBS_BASE)

$(B)/scopeholdfs: $(FS_OBJ) $(B)/libstore.a $(B)/libpolicy.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $(FS_OBJ) $(B)/libstore.a $(B)/libpolicy.a $(PC_LIBS_FUSE) $(PC_LIBS_JSON) $(LDLIBS_BASE)

$(B)/tests/%: $(B)/tests/unit/%.o $(B)/libstore.a $(B)/libpolicy.a
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(B)/libstore.a $(B)/libpolicy.a $(LDLIBS_BASE)

check: all
	$(Q)B=$(B) sh tests/run.sh

deps:
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEPS_DEB)

demo: all
	$(Q)B=$(B) sh tests/demo.sh

bench: all
	$(Q)B=$(B) bash bench/run.sh

stress: all
	$(Q)B=$(B) bash tests/stress.sh

fuzz:
	$(Q)bash tests/fuzz/run.sh

install: $(PROGS)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SYSCONFDIR)/scopehold $(DESTDIR)$(UNITDIR) $(DESTDIR)$(MANDIR)/man1
	install -m 0755 $(B)/shadm $(B)/scopeholdfs $(DESTDIR)$(BINDIR)/
	install -m 0644 scopehold.ini.example $(DESTDIR)$(SYSCONFDIR)/scopehold/scopehold.ini.example
	sed 's|@BINDIR@|$(BINDIR)|g' fs/scopeholdfs.service.in > $(DESTDIR)$(UNITDIR)/scopeholdfs.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/scopeholdfs.service
	install -m 0644 docs/shadm.1 docs/scopeholdfs.1 $(DESTDIR)$(MANDIR)/man1/

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/shadm $(DESTDIR)$(BINDIR)/scopeholdfs
	rm -f $(DESTDIR)$(UNITDIR)/scopeholdfs.service
	rm -f $(DESTDIR)$(MANDIR)/man1/shadm.1 $(DESTDIR)$(MANDIR)/man1/scopeholdfs.1
	rm -f $(DESTDIR)$(SYSCONFDIR)/scopehold/scopehold.ini.example

clean:
	rm -rf $(B)

.SECONDARY:
-include $(shell find $(B) -name '*.d' 2>/dev/null)
