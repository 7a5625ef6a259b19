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
LDLIBS_D = -luring -linih -lcares $(TLS_LIBS_$(TLS))
# Each TLS backend builds into its own tree, so switching never mixes objects.
B       := build$(if $(filter-out mbedtls,$(TLS)),-$(TLS))

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

$(B)/fetchctl: $(B)/tools/fetchctl.o
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
	@tests/run-all.sh build build-openssl

demo: deps-check
	@$(MAKE) --no-print-directory all
	@python3 tools/demo.py

# Not part of check: minutes long, and its figures are only meaningful on a quiet machine.
bench: all
	@tools/deps.sh ensure-bench
	@python3 tools/bench/bench.py --fetchd $(B)/fetchd --fetchctl $(B)/fetchctl $(BENCH_ARGS)

clean:
	rm -rf build build-*

.PHONY: all deps deps-check unit units check demo bench clean
-include $(shell find $(B) -name '*.d' 2>/dev/null)
