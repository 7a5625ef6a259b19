# fetchd: io_uring batch URL fetcher. `make` builds build/fetchd and build/fetchctl;
# `make check` runs every test; `make demo` fetches a sample batch from a local origin.
CC      ?= cc
TLS     ?= mbedtls
VERSION := 0.1.0
CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wmissing-prototypes -Wstrict-prototypes \
           -Wpointer-arith -Wno-unused-parameter -D_GNU_SOURCE -DFETCHD_VERSION=\"$(VERSION)\" -I. -MMD -MP
TLS_LIBS_mbedtls = -lmbedtls -lmbedx509 -lmbedcrypto
TLS_LIBS_openssl = -lssl -lcrypto
ifeq ($(TLS_LIBS_$(TLS)),)
$(error TLS must be mbedtls or openssl, not '$(TLS)')
endif
LDLIBS_D = -luring -linih -lcares -lz -lhiredis -lpthread $(TLS_LIBS_$(TLS))
# SAN=asan: AddressSanitizer + UndefinedBehaviorSanitizer (`make asan`).
SAN     ?=
ifeq ($(SAN),asan)
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
CFLAGS  += $(SAN_FLAGS)
LDFLAGS += $(SAN_FLAGS)
else ifneq ($(SAN),)
$(error SAN must be asan or empty, not '$(SAN)')
endif
# Each TLS backend (and sanitizer build) has its own tree, so switching never mixes objects.
B       := build$(if $(filter-out mbedtls,$(TLS)),-$(TLS))$(if $(SAN),-$(SAN))

TLS_SRC := $(filter-out tls/mbedtls.c tls/openssl.c,$(wildcard tls/*.c)) tls/$(TLS).c
LIB_SRC := $(wildcard ring/*.c conf/*.c) $(TLS_SRC) $(filter-out daemon/main.c,$(wildcard daemon/*.c))
LIB_OBJ := $(LIB_SRC:%.c=$(B)/%.o)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(B)/%)

all: $(B)/fetchd $(B)/fetchctl

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(B)/libfetchd.a: $(LIB_OBJ)
	ar rcs $@ $^

$(B)/fetchd: $(B)/daemon/main.o $(B)/libfetchd.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_D)

FETCHCTL_OBJ := $(patsubst %.c,$(B)/%.o,$(wildcard tools/*.c)) $(B)/conf/redisurl.o
LDLIBS_CTL = -lz -lmbedcrypto -lhiredis
$(B)/fetchctl: $(FETCHCTL_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_CTL)

# fetchctl's WARC writer and body files are not in libfetchd.a: their tests link the tools' objects.
$(B)/test_warc: $(B)/tests/unit/test_warc.o $(B)/tools/warc.o $(B)/tools/spool.o
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_CTL)
$(B)/test_outdir: $(B)/tests/unit/test_outdir.o $(B)/tools/outdir.o
	$(CC) $(LDFLAGS) -o $@ $^

$(B)/test_%: $(B)/tests/unit/test_%.o $(B)/libfetchd.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_D)

deps:
	tools/deps.sh install

deps-check:
	@tools/deps.sh ensure

unit: $(UNIT_BIN)
	@UNIT_ONLY=1 tests/run-all.sh $(B)

units: $(UNIT_BIN)

# Both TLS backends are built and every suite runs against each (tests/run-all.sh).
check: deps-check
	@$(MAKE) --no-print-directory TLS=mbedtls all units
	@$(MAKE) --no-print-directory TLS=openssl all units
	@$(MAKE) --no-print-directory TLS=mbedtls SAN=asan all units
	@$(MAKE) --no-print-directory fuzz-replay-build
	@tests/run-all.sh build build-openssl build-asan build-fuzz

# The ASan+UBSan build (build-asan/); `make check` runs every suite against it too.
asan:
	@$(MAKE) --no-print-directory SAN=asan all units

demo: deps-check
	@$(MAKE) --no-print-directory all
	@python3 tools/demo.py

# The integration suites with fetchd under valgrind memcheck (slow; not part of check).
valgrind: all
	@tests/valgrind.sh $(VALGRIND_SUITES)

# Not part of check: minutes long, and its figures are only meaningful on a quiet machine.
bench: all
	@tools/deps.sh ensure-bench
	@python3 tools/bench/bench.py --fetchd $(B)/fetchd --fetchctl $(B)/fetchctl $(BENCH_ARGS)

# Not part of check: fetchd daemons sharing a Redis stream, 1..3 of them, against one fetchd over its
# socket (docs/scaling.md). QUEUE_BENCH_ARGS="--path /delay --n 6000" for a server with think time.
bench-queue: all
	@FETCHD_BIN=$(B)/fetchd FETCHCTL_BIN=$(B)/fetchctl python3 tools/bench/queue_scale.py $(QUEUE_BENCH_ARGS)

# Not part of check: ten minutes by default (SOAK_ARGS="--minutes 1" for a short run).
soak: all
	@python3 tools/soak.py $(SOAK_ARGS)

# ---- Fuzzing (tests/fuzz/): libFuzzer harnesses, built with clang into build-fuzz/; not part of check.
# `make fuzz` runs each harness for FUZZ_SECONDS, one after another, with its committed corpus
# tests/fuzz/NAME/ (read only: new finds go to build-fuzz/corpus-NAME/, crashes to
# build-fuzz/artifacts-NAME/). `make fuzz-merge` adds the new finds that add coverage to tests/fuzz/NAME/.
# `make fuzz-replay` builds each harness with gcc, ASan and UBSan and tests/fuzz/replay.c instead of
# libFuzzer (no clang needed) and replays the committed corpora. FUZZ_TARGETS picks harnesses.
FUZZ_CC      ?= clang
REPLAY_CC    ?= gcc
FUZZ_SECONDS ?= 60
FUZZ_ALL     := http1 chunked url conf proto robots decode
FUZZ_TARGETS ?= $(FUZZ_ALL)
FUZZ_SRC_http1   := daemon/http1.c
FUZZ_SRC_chunked := daemon/http1.c
FUZZ_SRC_url     := daemon/url.c
FUZZ_SRC_conf    := conf/conf.c conf/cidr.c conf/redisurl.c
FUZZ_SRC_proto   := daemon/proto.c daemon/json.c daemon/buf.c daemon/url.c daemon/opts.c daemon/http1.c
FUZZ_LIBS_conf   := -linih
FUZZ_SRC_robots  := daemon/robots.c
FUZZ_SRC_decode  := daemon/decode.c
FUZZ_LIBS_decode := -lz
FUZZ_HDRS    := $(wildcard daemon/*.h conf/*.h tests/fuzz/*.h)
# The project's flags (warnings, -D_GNU_SOURCE, -DFETCHD_VERSION, -I.) without its optimisation level
# and dependency files.
FUZZ_BASE    := $(filter-out -O% -g -MMD -MP,$(CFLAGS))
FUZZ_CFLAGS  := -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined $(FUZZ_BASE)
REPLAY_CFLAGS := -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined \
                 $(FUZZ_BASE)

define FUZZ_RULES
build-fuzz/fuzz_$(1): tests/fuzz/fuzz_$(1).c $(FUZZ_SRC_$(1)) $(FUZZ_HDRS)
	@mkdir -p build-fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $$@ tests/fuzz/fuzz_$(1).c $(FUZZ_SRC_$(1)) $(FUZZ_LIBS_$(1))

build-fuzz/replay_$(1): tests/fuzz/replay.c tests/fuzz/fuzz_$(1).c $(FUZZ_SRC_$(1)) $(FUZZ_HDRS)
	@mkdir -p build-fuzz
	$(REPLAY_CC) $(REPLAY_CFLAGS) -DREPLAY_DEFAULT_DIR='"$(CURDIR)/tests/fuzz/$(1)"' -o $$@ \
		tests/fuzz/replay.c tests/fuzz/fuzz_$(1).c $(FUZZ_SRC_$(1)) $(FUZZ_LIBS_$(1))
endef
$(foreach n,$(FUZZ_ALL),$(eval $(call FUZZ_RULES,$(n))))

fuzz:
	@tools/deps.sh ensure-fuzz
	@$(MAKE) --no-print-directory fuzz-build
	@tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-build: $(FUZZ_TARGETS:%=build-fuzz/fuzz_%)

fuzz-merge: fuzz-build
	@for n in $(FUZZ_TARGETS); do \
		[ -d build-fuzz/corpus-$$n ] || continue; \
		echo "== fuzz_$$n: merging build-fuzz/corpus-$$n into tests/fuzz/$$n"; \
		build-fuzz/fuzz_$$n -merge=1 tests/fuzz/$$n build-fuzz/corpus-$$n 2>&1 | \
			grep -E '^MERGE-OUTER: [0-9]+ new files' || true; \
		echo "tests/fuzz/$$n: $$(ls tests/fuzz/$$n | wc -l) files, $$(du -sk tests/fuzz/$$n | cut -f1) KiB"; \
	done

# Each replay binary ends with "N passed, N failed"; without arguments it replays its own corpus.
fuzz-replay: fuzz-replay-build
	@rc=0; for n in $(FUZZ_TARGETS); do \
		printf 'replay_%s: ' $$n; build-fuzz/replay_$$n tests/fuzz/$$n || rc=1; \
	done; exit $$rc

fuzz-replay-build: $(FUZZ_TARGETS:%=build-fuzz/replay_%)

.PHONY: fuzz fuzz-build fuzz-merge fuzz-replay fuzz-replay-build

# ---- Installing: `make install` (PREFIX=/usr/local, DESTDIR for staging). fetchd and fetchctl go to
# $(PREFIX)/bin, the units (ExecStart rewritten to BINDIR and SYSCONFDIR) to $(PREFIX)/lib/systemd/system,
# the sysusers snippet to $(PREFIX)/lib/sysusers.d; /etc/fetchd/fetchd.conf is installed only when absent.
# `make uninstall` removes them all, and the configuration only when it is still the shipped one.
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
SYSCONFDIR ?= /etc
UNITDIR    ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
MANDIR     ?= $(PREFIX)/share/man
INSTALL_UNIT_SED := -e 's|/usr/local/bin/|$(BINDIR)/|g' -e 's|/etc/fetchd/|$(SYSCONFDIR)/fetchd/|g'

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(SYSCONFDIR)/fetchd
	install -m 0755 $(B)/fetchd $(B)/fetchctl $(DESTDIR)$(BINDIR)/
	for u in fetchd.service fetchd.socket; do \
		sed $(INSTALL_UNIT_SED) systemd/$$u > $(DESTDIR)$(UNITDIR)/$$u.tmp && chmod 0644 $(DESTDIR)$(UNITDIR)/$$u.tmp && \
		mv $(DESTDIR)$(UNITDIR)/$$u.tmp $(DESTDIR)$(UNITDIR)/$$u || exit 1; \
	done
	install -m 0644 systemd/fetchd.sysusers $(DESTDIR)$(SYSUSERSDIR)/fetchd.conf
	install -d $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8
	install -m 0644 man/fetchctl.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 man/fetchd.conf.5 $(DESTDIR)$(MANDIR)/man5/
	install -m 0644 man/fetchd.8 $(DESTDIR)$(MANDIR)/man8/
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/fetchd/fetchd.conf ]; then \
		echo "install: keeping the existing $(DESTDIR)$(SYSCONFDIR)/fetchd/fetchd.conf"; \
	else install -m 0644 conf/fetchd.conf $(DESTDIR)$(SYSCONFDIR)/fetchd/fetchd.conf; fi
	@[ -n "$(DESTDIR)" ] || echo "install: now run: systemd-sysusers && systemctl daemon-reload && systemctl enable --now fetchd.socket"

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/fetchd $(DESTDIR)$(BINDIR)/fetchctl
	rm -f $(DESTDIR)$(UNITDIR)/fetchd.service $(DESTDIR)$(UNITDIR)/fetchd.socket $(DESTDIR)$(SYSUSERSDIR)/fetchd.conf
	rm -f $(DESTDIR)$(MANDIR)/man1/fetchctl.1 $(DESTDIR)$(MANDIR)/man5/fetchd.conf.5 $(DESTDIR)$(MANDIR)/man8/fetchd.8
	@if cmp -s conf/fetchd.conf $(DESTDIR)$(SYSCONFDIR)/fetchd/fetchd.conf; then \
		rm -f $(DESTDIR)$(SYSCONFDIR)/fetchd/fetchd.conf; rmdir $(DESTDIR)$(SYSCONFDIR)/fetchd 2>/dev/null || true; \
	elif [ -e $(DESTDIR)$(SYSCONFDIR)/fetchd/fetchd.conf ]; then \
		echo "uninstall: keeping $(DESTDIR)$(SYSCONFDIR)/fetchd/fetchd.conf (it was edited)"; fi

.PHONY: install uninstall

clean:
	rm -rf build build-*

.PHONY: all deps deps-check unit units check asan demo bench soak valgrind clean
-include $(shell find $(B) -name '*.d' 2>/dev/null)
