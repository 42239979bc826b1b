# ScopeHold - build, test and install.
#   make            build shadm, scopeholdfs and scopehold into build/
#   make check      unit, CLI and end-to-end tests; ends with "N passed, N failed"
#   make demo       a demo store, mount, reads and audit (root, /dev/fuse)
#   make deps       install the Debian packages the build and tests need
#   make bench      the benchmark (docs/performance.md); BENCH_QUICK=1 for seconds
#   make stress     the long crash/fault campaign (docs/security.md)
#   make fuzz       libFuzzer targets, each for FUZZ_SECONDS (clang)
#   make install    PREFIX=/usr/local DESTDIR= (SYSCONFDIR: /etc for PREFIX=/usr,
#                   else PREFIX/etc; UNITDIR: systemd's for PREFIX=/usr, else
#                   PREFIX/lib/systemd/system)
#   make deb        build/scopehold_VERSION_ARCH.deb with dpkg-deb (no network)
#   SANITIZE=1      build and test with AddressSanitizer + UBSan (in build-asan/)
#   V=1             show the commands
PREFIX   ?= /usr/local
BINDIR   ?= $(PREFIX)/bin
DATADIR  ?= $(PREFIX)/share
MANDIR   ?= $(DATADIR)/man
COMPLETIONDIR ?= $(DATADIR)/bash-completion/completions
# A distribution install (PREFIX=/usr) puts configuration in /etc and the unit
# where systemd.pc says; anything else keeps both under PREFIX, which systemd
# also searches for /usr/local (/usr/local/lib/systemd/system).
ifeq ($(PREFIX),/usr)
SYSCONFDIR ?= /etc
UNITDIR  ?= $(or $(shell pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null),/lib/systemd/system)
else
SYSCONFDIR ?= $(PREFIX)/etc
UNITDIR  ?= $(PREFIX)/lib/systemd/system
endif
DESTDIR  ?=

CC       ?= cc
PKGS     := fuse3 libsodium sqlite3 inih jansson libpq
# Debian package that ships each pkg-config module, for the error message.
DEB_fuse3     := libfuse3-dev
DEB_libsodium := libsodium-dev
DEB_sqlite3   := libsqlite3-dev
DEB_inih      := libinih-dev
DEB_jansson   := libjansson-dev
DEB_libpq     := libpq-dev
DEPS_DEB := build-essential pkg-config libfuse3-dev fuse3 libsodium-dev \
            libsqlite3-dev libinih-dev libjansson-dev sqlite3 python3 util-linux \
            libpq-dev postgresql \
            clang libclang-rt-14-dev valgrind \
            bash bash-completion groff-base man-db systemd dpkg-dev lintian file

ifeq ($(filter deps clean,$(MAKECMDGOALS)),)
MISSING := $(strip $(foreach p,$(PKGS),$(if $(shell pkg-config --exists $(p) && echo y),,$(p))))
ifneq ($(MISSING),)
$(error missing pkg-config module(s): $(MISSING); install Debian package(s): $(foreach p,$(MISSING),$(DEB_$(p))) (or run 'make deps'))
endif
endif

WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2
CFLAGS   ?= -O2 -g
CFLAGS   += -std=c11 -D_GNU_SOURCE $(WARN) -I. -MMD -MP -fstack-protector-strong -D_FORTIFY_SOURCE=2
# full RELRO: the GOT is read-only once the programs start
LDFLAGS  += -Wl,-z,relro -Wl,-z,now
ifeq ($(SANITIZE),1)
CFLAGS   += -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all -U_FORTIFY_SOURCE
LDFLAGS  += -fsanitize=address,undefined
endif
PC_CFLAGS_BASE := $(shell pkg-config --cflags libsodium sqlite3 inih jansson libpq 2>/dev/null)
PC_LIBS_BASE   := $(shell pkg-config --libs libsodium sqlite3 inih libpq 2>/dev/null)
PC_LIBS_JSON   := $(shell pkg-config --libs jansson 2>/dev/null)
PC_LIBS_SODIUM := $(shell pkg-config --libs libsodium 2>/dev/null)
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
DOTENV_SRC := $(wildcard dotenv/*.c)
AGENT_SRC  := $(wildcard agent/*.c)
UNIT_SRC   := $(wildcard tests/unit/*_test.c)
BENCH_SRC  := $(filter-out bench/barefs.c,$(wildcard bench/*.c))

POLICY_OBJ := $(POLICY_SRC:%.c=$(B)/%.o)
STORE_OBJ  := $(STORE_SRC:%.c=$(B)/%.o)
FS_OBJ     := $(FS_SRC:%.c=$(B)/%.o)
TOOLS_OBJ  := $(TOOLS_SRC:%.c=$(B)/%.o)
DOTENV_OBJ := $(DOTENV_SRC:%.c=$(B)/%.o)
AGENT_OBJ  := $(AGENT_SRC:%.c=$(B)/%.o)
UNIT_BIN   := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)

PROGS := $(B)/shadm $(B)/scopeholdfs $(B)/scopehold
BENCH_PROGS := $(if $(BENCH_SRC),$(B)/bench/shbench) $(if $(wildcard bench/barefs.c),$(B)/bench/barefs)
# tests/exebind.sh's attack programs: plain flags even with SANITIZE=1, since
# libsteal.so is preloaded into programs that have no sanitizer runtime
ATTACK := $(addprefix $(B)/tests/attack/,exeswap libexeswap.so libsteal.so traceme)
ATTACK_CFLAGS := -O2 -std=c11 -D_GNU_SOURCE $(WARN)

VERSION := $(shell sed -n 's/^\#define FS_VERSION "\(.*\)"/\1/p' fs/fs.h)
MAN_PAGES := $(wildcard docs/*.1 docs/*.5)
# the completion of each program that has one (completion/PROGRAM.bash)
COMPLETIONS := $(wildcard $(patsubst $(B)/%,completion/%.bash,$(PROGS)))
CONFIG := $(DESTDIR)$(SYSCONFDIR)/scopehold/scopehold.ini

.PHONY: all check unit clean install uninstall deps demo bench stress fuzz deb
all: $(PROGS) $(UNIT_BIN) $(BENCH_PROGS) $(ATTACK)

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
$(B)/libdotenv.a: $(DOTENV_OBJ)
	$(Q)rm -f $@ && ar rcs $@ $^

$(B)/shadm: $(TOOLS_OBJ) $(B)/libstore.a $(B)/libpolicy.a $(B)/libdotenv.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $(TOOLS_OBJ) $(B)/libstore.a $(B)/libpolicy.a $(B)/libdotenv.a $(PC_LIBS_JSON) $(LDLIBS_BASE)

# The agent-side CLI reads only through the mount: no store, no SQLite, no key.
$(B)/scopehold: $(AGENT_OBJ) $(B)/libdotenv.a $(B)/libpolicy.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $(AGENT_OBJ) $(B)/libdotenv.a $(B)/libpolicy.a $(PC_LIBS_JSON) $(PC_LIBS_SODIUM)

$(B)/scopeholdfs: $(FS_OBJ) $(B)/libstore.a $(B)/libpolicy.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $(FS_OBJ) $(B)/libstore.a $(B)/libpolicy.a $(PC_LIBS_FUSE) $(PC_LIBS_JSON) $(LDLIBS_BASE)

$(B)/tests/%: $(B)/tests/unit/%.o $(B)/libstore.a $(B)/libpolicy.a $(B)/libdotenv.a
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(B)/libstore.a $(B)/libpolicy.a $(B)/libdotenv.a $(LDLIBS_BASE)

$(B)/tests/attack/lib%.so: tests/attack/%.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(ATTACK_CFLAGS) -fPIC -shared -Wl,-z,now -o $@ $<

$(B)/tests/attack/libexeswap.so: tests/attack/exeswap_lib.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(ATTACK_CFLAGS) -fPIC -shared -Wl,-z,now -o $@ $<

$(B)/tests/attack/exeswap: tests/attack/exeswap.c $(B)/tests/attack/libexeswap.so
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(ATTACK_CFLAGS) -Wl,-z,now -o $@ $< -L$(B)/tests/attack -lexeswap '-Wl,-rpath,$$ORIGIN'

$(B)/tests/attack/traceme: tests/attack/traceme.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(ATTACK_CFLAGS) -o $@ $<

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
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(COMPLETIONDIR) \
		$(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5
	@# mkdir, not install -d: that would chmod a directory 'shadm init' made 0700
	mkdir -p $(DESTDIR)$(SYSCONFDIR)/scopehold
	install -m 0755 $(PROGS) $(DESTDIR)$(BINDIR)/
	install -m 0644 scopehold.ini.example $(DESTDIR)$(SYSCONFDIR)/scopehold/scopehold.ini.example
	sed 's|@BINDIR@|$(BINDIR)|g; s|@SYSCONFDIR@|$(SYSCONFDIR)|g' fs/scopeholdfs.service.in \
		> $(DESTDIR)$(UNITDIR)/scopeholdfs.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/scopeholdfs.service
	install -m 0644 $(filter %.1,$(MAN_PAGES)) $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 $(filter %.5,$(MAN_PAGES)) $(DESTDIR)$(MANDIR)/man5/
	for c in $(COMPLETIONS); do \
		install -m 0644 $$c $(DESTDIR)$(COMPLETIONDIR)/$$(basename $$c .bash) || exit 1; done
	@# the working default configuration, never over an existing one
	@if [ -e $(CONFIG) ]; then echo "  KEEP    $(CONFIG) (exists)"; else \
		sed 's|/etc/scopehold/|$(SYSCONFDIR)/scopehold/|g' scopehold.ini.example > $(CONFIG).new && \
		chmod 0600 $(CONFIG).new && mv $(CONFIG).new $(CONFIG) && echo "  CONFIG  $(CONFIG)"; fi

# The configuration is left alone: it may hold the operator's changes.
uninstall:
	rm -f $(addprefix $(DESTDIR)$(BINDIR)/,$(notdir $(PROGS)))
	rm -f $(DESTDIR)$(UNITDIR)/scopeholdfs.service
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man1/,$(notdir $(filter %.1,$(MAN_PAGES))))
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man5/,$(notdir $(filter %.5,$(MAN_PAGES))))
	rm -f $(addprefix $(DESTDIR)$(COMPLETIONDIR)/,$(notdir $(COMPLETIONS:.bash=)))
	rm -f $(DESTDIR)$(SYSCONFDIR)/scopehold/scopehold.ini.example

# The package is the PREFIX=/usr install, staged, then packed by build.sh.
deb: $(PROGS)
	$(Q)rm -rf $(B)/deb $(B)/scopehold_*.deb
	$(Q)$(MAKE) --no-print-directory install DESTDIR=$(CURDIR)/$(B)/deb/debian/scopehold \
		PREFIX=/usr SYSCONFDIR=/etc UNITDIR=/lib/systemd/system >/dev/null
	$(Q)B=$(B) VERSION=$(VERSION) sh packaging/deb/build.sh

clean:
	rm -rf $(B)

.SECONDARY:
-include $(shell find $(B) -name '*.d' 2>/dev/null)
