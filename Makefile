# dbtap build. `make` builds build/dbtap; `make test` installs what it needs and runs every
# test; `make run` installs, builds and runs. V=1 shows full commands.

OUT ?= build
CLANG_BPF ?= clang-19
BPFTOOL ?= bpftool
CC ?= gcc
CLANG_FORMAT ?= clang-format-19
ARCH := $(shell uname -m | sed 's/x86_64/x86/;s/aarch64/arm64/')
VMLINUX := vmlinux/$(ARCH)/vmlinux.h

ifeq ($(V),1)
Q =
msg =
else
Q = @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

INCLUDES := -I. -I$(OUT)/skel -Ibpf/include
CFLAGS_COMMON := -g -O2 -Wall -Wextra -Wno-unused-parameter -Werror -std=gnu11 \
	-D_GNU_SOURCE -fno-omit-frame-pointer
CFLAGS ?=
CFLAGS += $(CFLAGS_COMMON) $(INCLUDES) $(EXTRA_CFLAGS)
LIBS := -lbpf -lelf -lz -lyaml -lcurl -lcjson -lm -lpthread
# real client libraries of the test servers
TEST_LIBS := $(LIBS) -lcmocka -lpq -lhiredis -lmariadb \
	$(shell pkg-config --libs libmongoc-1.0 2>/dev/null)
TEST_CFLAGS := $(shell pkg-config --cflags libmongoc-1.0 2>/dev/null)

BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Wall -Werror \
	-Wno-unused-function -Wno-compare-distinct-pointer-types -I. -I$(dir $(VMLINUX)) -Ibpf/include \
	$(BPF_EXTRA_CFLAGS)

# ---- sources, found by folder so a new probe or exporter needs no Makefile change ----
BPF_SRCS := $(wildcard bpf/*.bpf.c)
BPF_OBJS := $(patsubst bpf/%.bpf.c,$(OUT)/bpf/%.bpf.o,$(BPF_SRCS))
SKELS := $(patsubst bpf/%.bpf.c,$(OUT)/skel/%.skel.h,$(BPF_SRCS))
BPF_DEPS := $(wildcard bpf/*.h bpf/include/*.h probes/*/*.h) $(VMLINUX)

LIB_SRCS := $(filter-out userspace/main.c,$(wildcard userspace/*.c probes/*/*.c exporters/*.c \
	receivers/*/*.c))
LIB_OBJS := $(patsubst %.c,$(OUT)/obj/%.o,$(LIB_SRCS))
HDRS := $(wildcard bpf/*.h userspace/*.h probes/*/*.h exporters/*.h receivers/*/*.h)

TESTLIB_SRCS := $(wildcard tests/lib/*.c)
TESTLIB_OBJS := $(patsubst %.c,$(OUT)/obj/%.o,$(TESTLIB_SRCS))
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(OUT)/tests/%,$(UNIT_SRCS))
INTEG_SRCS := $(wildcard tests/integration/test_*.c)
INTEG_BINS := $(patsubst tests/integration/%.c,$(OUT)/tests/%,$(INTEG_SRCS))
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(OUT)/fuzz/%,$(FUZZ_SRCS))

VERSION := $(shell cat VERSION 2>/dev/null || echo 0.0.0)
GIT_REV := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
CFLAGS += -DDBTAP_VERSION='"$(VERSION)"' -DDBTAP_GIT_REV='"$(GIT_REV)"'

.PHONY: all deps test unit-tests run format format-check vmlinux clean fuzz bench bench-quick \
	bench-decoder bench-hooks
.DEFAULT_GOAL := all
# keep generated objects and skeletons between builds
.SECONDARY:

all: $(OUT)/dbtap

# ---- BPF ----
$(OUT)/bpf/%.bpf.o: bpf/%.bpf.c $(BPF_DEPS) | $(OUT)/bpf
	$(call msg,BPF,$@)
	$(Q)$(CLANG_BPF) $(BPF_CFLAGS) -c $< -o $@

$(OUT)/skel/%.skel.h: $(OUT)/bpf/%.bpf.o | $(OUT)/skel
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name $(subst -,_,$*)_bpf > $@.tmp && mv $@.tmp $@

# ---- userspace ----
$(OUT)/obj/%.o: %.c $(HDRS) $(SKELS)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(OUT)/libdbtap.a: $(LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(OUT)/dbtap: $(OUT)/obj/userspace/main.o $(OUT)/libdbtap.a
	$(call msg,LINK,$@)
	$(Q)$(CC) -o $@ $^ $(LIBS)

# ---- tests ----
$(OUT)/tests/%: tests/unit/%.c $(OUT)/libdbtap.a $(TESTLIB_OBJS) $(HDRS)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) $(TEST_CFLAGS) -Itests -o $@ $< $(TESTLIB_OBJS) $(OUT)/libdbtap.a $(TEST_LIBS)

$(OUT)/tests/%: tests/integration/%.c $(OUT)/libdbtap.a $(TESTLIB_OBJS) $(HDRS)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) $(TEST_CFLAGS) -Itests -o $@ $< $(TESTLIB_OBJS) $(OUT)/libdbtap.a $(TEST_LIBS)

$(OUT)/obj/tests/lib/%.o: tests/lib/%.c $(HDRS) $(wildcard tests/lib/*.h)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) $(TEST_CFLAGS) -Itests -c $< -o $@

# Fuzz targets: libFuzzer + ASan/UBSan, sources compiled directly (no libdbtap.a).
FUZZ_CFLAGS := -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-D_GNU_SOURCE -I. -Ibpf/include -Wall -Werror -Wno-unused-function
$(OUT)/fuzz/%: tests/fuzz/%.c $(LIB_SRCS) $(HDRS) $(SKELS)
	$(call msg,FUZZ-CC,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CLANG_BPF) $(FUZZ_CFLAGS) -I$(OUT)/skel -o $@ $< $(shell sed -n 's/^\/\/ fuzz-sources: //p' $<)

fuzz: $(FUZZ_BINS)

unit-tests: $(UNIT_BINS) $(INTEG_BINS) $(FUZZ_BINS) $(OUT)/dbtap

# `make test`: install, build, then every unit, fuzz and integration test with real servers.
test: deps
	$(Q)$(MAKE) --no-print-directory unit-tests
	$(Q)tests/run-tests.sh

run: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)scripts/run.sh $(ARGS)

deps:
	$(Q)scripts/install-deps.sh

# Overhead on real database benchmarks (docs/bench.md): interleaved runs without and with the
# agent, a null agent and the bpftrace peer. Needs root. BENCH_ARGS adds options.
bench: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)tests/bench/bench.sh --pairs 10 --seconds 10 $(BENCH_ARGS)

# Smoke check of the harness (2 short pairs, one workload): format only, never timings.
bench-quick: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)tests/bench/bench.sh --quick --out $(OUT)/bench/quick.json

# ---- hook cost: what a socket-tracepoint hook costs per syscall (tests/bench/README.md) ----
# BPF object and skeleton built like those of bpf/ (CLANG_BPF, BPF_CFLAGS, BPFTOOL), into
# $(OUT)/bench/ next to the null agent.
$(OUT)/bench/hookcost.bpf.o: tests/bench/hookcost.bpf.c bpf/pid_bitmap.bpf.h $(VMLINUX)
	$(call msg,BPF,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CLANG_BPF) $(BPF_CFLAGS) -c $< -o $@

$(OUT)/bench/hookcost.skel.h: $(OUT)/bench/hookcost.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name hookcost_bpf > $@.tmp && mv $@.tmp $@

$(OUT)/bench/hookcost: tests/bench/hookcost.c $(OUT)/bench/hookcost.skel.h
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -I$(OUT)/bench -o $@ $< -lbpf -lelf -lz -lcjson -lm

# A send+recv loop on loopback with no hook, an empty one, the PID filter and the tracked path,
# BPF statistics off and on (~1.5 min; table, JSON in tests/bench/results/). Needs root.
# BENCH_HOOKS_ARGS adds options, e.g. BENCH_HOOKS_ARGS="--unix --rounds 3".
bench-hooks: deps
	$(Q)$(MAKE) --no-print-directory $(OUT)/bench/hookcost
	$(Q)$(OUT)/bench/hookcost $(BENCH_HOOKS_ARGS)

# ---- decoder cost: instructions per operation of the kernel decoders (docs/decoder-cost.md) ----
# The decoders replayed in userspace through the harness object alone (no BPF build needed),
# compiled like the unit tests (CFLAGS: -g -O2).
$(OUT)/bench/decoder_cost: tests/bench/decoder_cost.c $(OUT)/obj/tests/lib/pg_harness.o $(HDRS) \
		$(wildcard tests/lib/*.h)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) -Itests -o $@ $< $(OUT)/obj/tests/lib/pg_harness.o

# Callgrind counts per workload (table, JSON in tests/bench/results/). Needs valgrind.
# BENCH_DECODER_ARGS adds options, e.g. BENCH_DECODER_ARGS="--annotate pg-select".
bench-decoder: deps
	$(Q)$(MAKE) --no-print-directory $(OUT)/bench/decoder_cost
	$(Q)DECODER_COST_BIN=$(OUT)/bench/decoder_cost tests/bench/decoder-cost.sh $(BENCH_DECODER_ARGS)

# ---- housekeeping ----
# vmlinux.h for this architecture from the running kernel's BTF; records where it came from.
vmlinux:
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $(VMLINUX).tmp
	mv $(VMLINUX).tmp $(VMLINUX)
	printf 'kernel: %s\nmade by: %s\ncommand: make vmlinux (bpftool btf dump file /sys/kernel/btf/vmlinux format c)\n' \
		"$$(uname -r)" "$$($(BPFTOOL) version | head -1)" > vmlinux/$(ARCH)/SOURCE

FORMAT_FILES = $(shell git ls-files '*.c' '*.h' | grep -v '^vmlinux/')
format:
	$(CLANG_FORMAT) -i $(FORMAT_FILES)

format-check:
	$(CLANG_FORMAT) --dry-run --Werror $(FORMAT_FILES)

$(OUT)/bpf $(OUT)/skel:
	$(Q)mkdir -p $@

clean:
	rm -rf $(OUT)
