#!/usr/bin/env bash
# Runs every built test (what `make test` runs after building): the unit tests, each fuzzer for a
# bounded time, then the integration tests with real servers. Prints each binary's output and,
# as the very last line, "N passed, N failed"; exits non-zero if anything failed.
#
# Usage: tests/run-tests.sh [SUBSTRING...]   only binaries whose name contains one of them
# Environment: DBTAP_FUZZ_SECONDS (default 20; 0 = only replay the corpus),
#              DBTAP_BUILD (default build), DBTAP_BIN (agent under test, default build/dbtap),
#              DBTAP_UNIT_TIMEOUT (default 120 s per unit binary),
#              DBTAP_INTEG_TIMEOUT (default 900 s per integration binary)
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1

BUILD=${DBTAP_BUILD:-build}
FUZZ_SECONDS=${DBTAP_FUZZ_SECONDS:-20}
UNIT_TIMEOUT=${DBTAP_UNIT_TIMEOUT:-120}
INTEG_TIMEOUT=${DBTAP_INTEG_TIMEOUT:-900}
FUZZ_TIMEOUT=$((FUZZ_SECONDS + 120)) # libFuzzer's own limit, plus loading and the last run
KILL_GRACE=15                        # after `timeout` sends SIGTERM, SIGKILL this much later

passed=0
failed=0
selected_any=0
failures=()

# selected NAME: true when no filter was given or NAME contains one of the filter arguments.
selected() {
	local f
	[ "$#" -gt 0 ] || return 1
	[ "${#FILTERS[@]}" -eq 0 ] && return 0
	for f in "${FILTERS[@]}"; do
		[[ "$1" == *"$f"* ]] && return 0
	done
	return 1
}
FILTERS=("$@")

banner() {
	printf '\n==== %s ====\n' "$1"
}

record() { # record NAME PASSED FAILED
	passed=$((passed + $2))
	failed=$((failed + $3))
	[ "$3" -gt 0 ] && failures+=("$1")
	return 0
}

# run_cmocka NAME BINARY TIMEOUT: count cmocka's summary lines; no summary and a non-zero exit
# (crash, timeout) counts as one failure, as does a non-zero exit with no failure reported.
run_cmocka() {
	local name=$1 bin=$2 limit=$3 log rc p f setup
	log=$(mktemp)
	banner "$name"
	timeout --kill-after="$KILL_GRACE" "$limit" "$bin" 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	p=$(sed -n 's/^\[  PASSED  \] \([0-9]\+\) test(s)\..*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
	f=$(sed -n 's/^\[  FAILED  \] \([0-9]\+\) test(s), listed below:.*/\1/p' "$log" |
		awk '{s+=$1} END {print s+0}')
	setup=$(grep -c '^\[  FAILED  \] GROUP SETUP' "$log")
	f=$((f + setup))
	rm -f "$log"
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		case $rc in
		124 | 137) echo "run-tests: $name timed out after ${limit}s" ;;
		*) echo "run-tests: $name exited with status $rc" ;;
		esac
		f=1
	fi
	record "$name" "$p" "$f"
}

# run_fuzzer NAME BINARY: bounded libFuzzer run on build/fuzz-corpus/NAME, seeded from
# tests/fuzz/corpus/NAME; passes when it exits 0.
run_fuzzer() {
	local name=$1 bin=$2 corpus="$BUILD/fuzz-corpus/$1" seeds="tests/fuzz/corpus/$1"
	local artifacts="$BUILD/fuzz-artifacts/$1/" log rc limit_arg
	banner "$name (${FUZZ_SECONDS}s)"
	mkdir -p "$corpus" "$artifacts"
	if [ -d "$seeds" ]; then
		cp -rn "$seeds"/. "$corpus"/ 2>/dev/null || true
	fi
	if [ "$FUZZ_SECONDS" -gt 0 ]; then
		limit_arg=-max_total_time=$FUZZ_SECONDS
	else
		limit_arg=-runs=0 # just replay the corpus
	fi
	log=$(mktemp)
	timeout --kill-after="$KILL_GRACE" "$FUZZ_TIMEOUT" "$bin" "$limit_arg" \
		-artifact_prefix="$artifacts" "$corpus" >"$log" 2>&1
	rc=$?
	if [ "$rc" -eq 0 ]; then
		tail -n 3 "$log"
		record "$name" 1 0
	else
		tail -n 60 "$log"
		echo "run-tests: $name failed with status $rc (crash inputs in $artifacts)"
		record "$name" 0 1
	fi
	rm -f "$log"
}

# run_suite DIR KIND TIMEOUT: every tests/DIR/test_*.c has a build/tests/test_* binary.
run_suite() {
	local dir=$1 limit=$2 src name bin
	for src in tests/"$dir"/test_*.c; do
		[ -e "$src" ] || continue
		name=$(basename "$src" .c)
		selected "$name" || continue
		selected_any=1
		bin="$BUILD/tests/$name"
		if [ ! -x "$bin" ]; then
			banner "$name"
			echo "run-tests: $bin was not built (run make unit-tests)"
			record "$name" 0 1
			continue
		fi
		run_cmocka "$name" "$bin" "$limit"
	done
}

run_fuzzers() {
	local src name bin
	for src in tests/fuzz/fuzz_*.c; do
		[ -e "$src" ] || continue
		name=$(basename "$src" .c)
		selected "$name" || continue
		selected_any=1
		bin="$BUILD/fuzz/$name"
		if [ ! -x "$bin" ]; then
			banner "$name"
			echo "run-tests: $bin was not built (run make fuzz)"
			record "$name" 0 1
			continue
		fi
		run_fuzzer "$name" "$bin"
	done
}

if [ "$(id -u)" -ne 0 ]; then
	echo "run-tests: not root: integration tests (BPF, servers as user postgres) will fail" >&2
fi

# run_check NAME TAIL CMD...: a command that passes or fails as a whole, counted as one test;
# on failure the first 40 lines of its output, on success its last TAIL lines.
run_check() {
	local name=$1 tail_lines=$2 log
	shift 2
	selected "$name" || return 0
	selected_any=1
	banner "$name"
	log=$(mktemp)
	if "$@" >"$log" 2>&1; then
		tail -n "$tail_lines" "$log"
		record "$name" 1 0
	else
		head -n 40 "$log"
		echo "run-tests: $name failed"
		record "$name" 0 1
	fi
	rm -f "$log"
}

# the tree is formatted as `make format` leaves it
run_check format-check 1 make --no-print-directory format-check
run_suite unit "$UNIT_TIMEOUT"
run_fuzzers
run_suite integration "$INTEG_TIMEOUT"
# `make bench-quick`: the harness runs end to end and writes a well-formed result (format only,
# never a timing)
run_check bench-quick 12 timeout --kill-after="$KILL_GRACE" 600 tests/bench/bench.sh --quick \
	--out "$BUILD/bench/quick.json"

echo
if [ "$selected_any" -eq 0 ] && [ "${#FILTERS[@]}" -gt 0 ]; then
	echo "run-tests: no test matches: ${FILTERS[*]}"
	failed=$((failed + 1))
fi
if [ "${#failures[@]}" -gt 0 ]; then
	echo "failed: ${failures[*]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
