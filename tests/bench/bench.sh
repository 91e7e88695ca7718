#!/usr/bin/env bash
# tests/bench/bench.sh: `make bench` and `make bench-quick`. Measures what dbtap costs a
# database server on real benchmarks: per workload, interleaved runs without an agent (A), with
# dbtap in its default mode (B), with a null agent that attaches nothing (N, the noise floor)
# and with the classic peer, a bpftrace script on the server's USDT probes (P). Prints a table
# and writes JSON (tests/bench/results/<timestamp>.json, or --out PATH). Run as root.
# Method and reading of the figures: docs/bench.md.
set -eEuo pipefail # -E: the ERR trap below also reports failures inside functions

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BENCH_DIR="$ROOT/tests/bench"

# ---- settings (flags below) ----
PAIRS=10		# rounds: every mode runs once per round, rotating order
RUN_SECONDS=10		# benchmark client time per run
WARMUP_SECONDS=2	# client run after each server start, not recorded
SCALE=10		# pgbench -i -s
CLIENTS=4		# pgbench -c
THREADS=2		# pgbench -j
LAT_SAMPLING=0.1	# pgbench --sampling-rate for the per-transaction log (p99)
MODES="A B N P"
WORKLOADS=""		# empty = every workload in the table
OUT=""
QUICK=0
KEEP=0
DBTAP_BIN=${DBTAP_BIN:-$ROOT/build/dbtap}
NULL_AGENT_BIN=${NULL_AGENT_BIN:-$ROOT/build/bench/null-agent}
READY_TIMEOUT_S=60	# agent/peer start (bpftrace compiles its script first)
STOP_TIMEOUT_S=30
CLK_TCK=$(getconf CLK_TCK)

# ---- workload table: one line per workload ----
# name | database | statements per transaction | client arguments | setup statements per run
# The last field is what the client sends besides its transactions (pgbench: its scale query
# "select count(*) from pgbench_branches" and its partition query), so the operations the
# server completed are exactly transactions x statements + setup.
# A database named here needs db_<database>_{setup,start,stop,client,peer_start} below.
WORKLOAD_TABLE=(
	"pg-select|postgresql|1|-S|2"
	"pg-tpcb|postgresql|7||2"
	"pg-prepared|postgresql|1|-S -M prepared|2"
	# Redis and MariaDB: the operations the server completed come from its own counters
	# (client.json "ops"), so the last two fields only document the shape.
	"redis-get-set|redis|1|-t get,set|0"
	"redis-get-set-p16|redis|1|-t get,set -P 16|0"
	"mariadb-point-select|mariadb|1|oltp_point_select|0"
	"mariadb-read-write|mariadb|20|oltp_read_write|0"
)

usage()
{
	cat <<EOF
Usage: tests/bench/bench.sh [OPTIONS]
  --pairs N          rounds of interleaved runs, one run per mode each [$PAIRS]
  --seconds S        benchmark time per run [$RUN_SECONDS]
  --workloads LIST   comma-separated names from the table [all: $(workload_names | tr '\n' ' ')]
  --modes LIST       comma-separated from A,B,N,P [A,B,N,P]
  --scale N          pgbench scale [$SCALE]
  --out PATH         result JSON [tests/bench/results/<timestamp>.json]
  --quick            smoke check: 2 pairs, 3 s runs, pg-select, then validate the JSON
  --check FILE       only validate a result file (keys and types), then exit
  --keep             keep the work directory (servers' data and logs, agent outputs)
Modes: A no agent, B dbtap (default mode, \$DBTAP_BIN), N null agent, P bpftrace peer.
EOF
}

log() { printf 'bench: %s\n' "$*" >&2; }
# set -e ends the script at a failing command: say which, never silently
trap 'log "error: line $LINENO: \"$BASH_COMMAND\" failed (status $?)"' ERR
die() { log "error: $*"; exit 1; }

workload_names() { local w; for w in "${WORKLOAD_TABLE[@]}"; do echo "${w%%|*}"; done; }
workload_field() # NAME FIELD(1-5)
{
	local w
	for w in "${WORKLOAD_TABLE[@]}"; do
		[[ ${w%%|*} == "$1" ]] && { cut -d'|' -f"$2" <<<"$w"; return 0; }
	done
	return 1
}

# ---- result validation (also what bench-quick checks) ----
# Structure and types only: never a judgement on timing.
check_result()
{
	local file=$1
	jq -e '
		def num: type == "number";
		def numornull: type == "number" or type == "null";
		def has_all(ks): . as $o | all(ks[]; . as $k | $o | has($k));
		(.schema == "dbtap.bench/1")
		and (.machine | (.nproc | num) and (.model_name | type == "string")
			and (.kernel | type == "string"))
		and (.commit | type == "string")
		and (.config | (.pairs | num) and (.seconds | num) and (.modes | length > 0))
		and (.runs | length > 0)
		and all(.runs[]; has_all(["workload", "mode", "round", "tps", "latency_avg_ms",
			"latency_p99_ms", "transactions", "ops", "server_cpu_s", "agent_cpu_s",
			"agent_peak_rss_bytes", "bpf_run_time_ns", "bpf_run_cnt", "drops",
			"counted_ops", "expected_ops"]))
		and all(.runs[]; (.workload | type == "string") and (.mode | IN("A","B","N","P"))
			and (.tps | num) and (.tps > 0) and (.latency_avg_ms | num)
			and (.latency_p99_ms | numornull) and (.transactions | num)
			and (.ops | num) and (.server_cpu_s | num) and (.agent_cpu_s | numornull)
			and (.bpf_run_time_ns | numornull) and (.bpf_run_cnt | numornull))
		and (.summary | length > 0)
		and all(.summary[]; has_all(["workload", "mode", "runs", "tps_median",
			"throughput_ratio", "server_cpu_ns_per_op_no_agent", "added_cpu_ns_per_op",
			"overhead_pct", "bpf_ns_per_op", "agent_cpu_ns_per_op", "p99_latency_ratio",
			"avg_latency_ratio", "agent_peak_rss_bytes", "events_per_s", "samples_per_s",
			"drops", "counted_ops", "expected_ops"]))
		and all(.summary[]; (.workload | type == "string") and (.mode | type == "string")
			and (.runs | num) and (.tps_median | num)
			and (.throughput_ratio | (.median | numornull) and (.min | numornull)
				and (.max | numornull))
			and (.server_cpu_ns_per_op_no_agent | numornull)
			and (.added_cpu_ns_per_op | numornull) and (.overhead_pct | numornull)
			and (.bpf_ns_per_op | numornull) and (.agent_cpu_ns_per_op | numornull)
			and (.p99_latency_ratio | numornull) and (.avg_latency_ratio | numornull)
			and (.agent_peak_rss_bytes | numornull) and (.events_per_s | numornull)
			and (.samples_per_s | numornull) and (.drops | numornull)
			and (.counted_ops | numornull) and (.expected_ops | numornull))
		and ([.runs[] | select(.mode == "B")] | all(.counted_ops | num))
	' "$file" >/dev/null
}

# ---- flags ----
COMMAND_LINE="tests/bench/bench.sh${*:+ $*}"
CHECK_ONLY=""
while (($#)); do
	case $1 in
	--pairs) PAIRS=$2; shift ;;
	--seconds) RUN_SECONDS=$2; shift ;;
	--workloads) WORKLOADS=${2//,/ }; shift ;;
	--modes) MODES=${2//,/ }; shift ;;
	--scale) SCALE=$2; shift ;;
	--out) OUT=$2; shift ;;
	--quick) QUICK=1 ;;
	--check) CHECK_ONLY=$2; shift ;;
	--keep) KEEP=1 ;;
	-h|--help) usage; exit 0 ;;
	*) usage >&2; die "unknown argument '$1'" ;;
	esac
	shift
done
if [[ -n $CHECK_ONLY ]]; then
	check_result "$CHECK_ONLY" && { log "$CHECK_ONLY: well-formed"; exit 0; }
	die "$CHECK_ONLY: not a well-formed result"
fi
if ((QUICK)); then
	PAIRS=2
	RUN_SECONDS=3
	WARMUP_SECONDS=1
	[[ -n $WORKLOADS ]] || WORKLOADS="pg-select"
fi
[[ -n $WORKLOADS ]] || WORKLOADS=$(workload_names | tr '\n' ' ')
[[ $PAIRS =~ ^[1-9][0-9]*$ ]] || die "--pairs must be a positive integer, not '$PAIRS'"
[[ $RUN_SECONDS =~ ^[1-9][0-9]*$ ]] || die "--seconds must be a positive integer"
for m in $MODES; do [[ $m =~ ^[ABNP]$ ]] || die "unknown mode '$m'"; done
for w in $WORKLOADS; do workload_field "$w" 1 >/dev/null || die "unknown workload '$w'"; done
read -r -a MODE_LIST <<<"$MODES"

(($(id -u) == 0)) || die "run as root (BPF, bpftool, the postgres OS user)"
for tool in jq pgbench; do command -v $tool >/dev/null || die "$tool not found"; done
if [[ " $MODES " == *" B "* ]]; then [[ -x $DBTAP_BIN ]] || die "$DBTAP_BIN missing: make"; fi
if [[ " $MODES " == *" P "* ]]; then
	command -v bpftrace >/dev/null || die "bpftrace missing: apt-get install -y bpftrace"
	command -v bpftool >/dev/null || die "bpftool missing: apt-get install -y bpftool"
fi

# ---- processes we started, stopped by PID on every exit ----
WORK=""
SERVER_PID=""
AGENT_PID=""
STATS_RESTORE=""

# SIGINT, then SIGKILL after STOP_TIMEOUT_S; PID must be our child.
stop_child()
{
	local pid=$1 i
	kill -INT "$pid" 2>/dev/null || true
	for ((i = 0; i < STOP_TIMEOUT_S * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

cleanup()
{
	local rc=$?
	trap - EXIT INT TERM
	[[ -n $AGENT_PID ]] && stop_child "$AGENT_PID"
	AGENT_PID=""
	if [[ -n $STATS_RESTORE ]]; then
		sysctl -qw kernel.bpf_stats_enabled="$STATS_RESTORE" || true
		STATS_RESTORE=""
	fi
	[[ -n $SERVER_PID ]] && db_stop
	if [[ -n $WORK && -d $WORK ]]; then
		if ((KEEP || rc)); then log "work directory kept: $WORK"; else rm -rf "$WORK"; fi
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- /proc accounting ----

# CPU ticks of a process tree: the root's own and its reaped children's (cutime+cstime), plus
# every live child's own. A backend is counted once, live or reaped. comm may hold spaces, so
# the fields are counted after its closing parenthesis.
tree_cpu_ticks()
{
	# processes exit between the glob and the read (backends, at the end of a client run):
	# cat's failure must not end the script (pipefail)
	{ cat /proc/[0-9]*/stat 2>/dev/null || true; } | sed 's/^\([0-9]*\) (.*) /\1 /' |
		awk -v root="$1" '$1 == root { t += $13 + $14 + $15 + $16 }
				  $3 == root { t += $13 + $14 } END { print t + 0 }'
}

proc_cpu_ticks() # PID: own utime+stime
{
	sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}

proc_peak_rss_bytes() # PID: VmHWM
{
	awk '/^VmHWM:/ { print $2 * 1024 }' "/proc/$1/status"
}

ticks_to_s() { awk -v t="$1" -v hz="$CLK_TCK" 'BEGIN { printf "%.3f", t / hz }'; }

now_s() { date +%s.%N; }

# Wait until FILE has a line matching REGEX while PID lives.
wait_for_line()
{
	local file=$1 regex=$2 pid=$3 what=$4 i
	for ((i = 0; i < READY_TIMEOUT_S * 10; i++)); do
		grep -qE "$regex" "$file" 2>/dev/null && return 0
		if ! kill -0 "$pid" 2>/dev/null; then
			log "$what exited before ready:"
			cat "$file" >&2
			return 1
		fi
		sleep 0.1
	done
	log "$what not ready after ${READY_TIMEOUT_S}s"
	return 1
}

# ---- PostgreSQL ----
PG_BINDIR=${DBTAP_PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
PG_USER=postgres
PG_PORT=""

pick_port()
{
	local port i
	for ((i = 0; i < 50; i++)); do
		port=$((20000 + RANDOM % 40000))
		ss -Htln "sport = :$port" | grep -q . || { echo "$port"; return 0; }
	done
	return 1
}

as_pg() { runuser -u "$PG_USER" -- "$@"; }

# initdb, one start, pgbench -i once per bench run; the server is stopped again after.
db_postgresql_setup()
{
	[[ -x $PG_BINDIR/initdb ]] || die "no PostgreSQL in /usr/lib/postgresql/*/bin"
	id "$PG_USER" >/dev/null 2>&1 || die "no OS user '$PG_USER' (postgresql-common)"
	mkdir -p "$WORK/pg/sock"
	chown -R "$PG_USER": "$WORK/pg"
	as_pg "$PG_BINDIR/initdb" -D "$WORK/pg/data" -U postgres -A trust -E UTF8 --no-locale \
		--no-sync >"$WORK/pg/initdb.log" 2>&1 ||
		{ cat "$WORK/pg/initdb.log" >&2; die "initdb"; }
	cat >>"$WORK/pg/data/postgresql.conf" <<-EOF
		# ---- dbtap bench ----
		listen_addresses = '127.0.0.1'
		unix_socket_directories = '$WORK/pg/sock'
		fsync = off
		synchronous_commit = off
		full_page_writes = off
		max_connections = 50
	EOF
	db_postgresql_start
	log "pgbench -i -s $SCALE"
	pgbench -h 127.0.0.1 -p "$PG_PORT" -U postgres -i -s "$SCALE" -q postgres \
		>"$WORK/pg/init.log" 2>&1 || { cat "$WORK/pg/init.log" >&2; die "pgbench -i"; }
	db_postgresql_stop
}

db_postgresql_start()
{
	for _ in 1 2 3 4 5; do
		PG_PORT=$(pick_port) || die "no free port"
		if as_pg "$PG_BINDIR/pg_ctl" -D "$WORK/pg/data" -l "$WORK/pg/server.log" -w -t 60 \
			-o "-p $PG_PORT" start >/dev/null 2>&1; then
			SERVER_PID=$(head -1 "$WORK/pg/data/postmaster.pid")
			return 0
		fi
		grep -q "Address already in use" "$WORK/pg/server.log" || break
	done
	tail -20 "$WORK/pg/server.log" >&2
	die "PostgreSQL did not start"
}

# Fast shutdown by PID (SIGINT to the postmaster), SIGKILL if it hangs. Not our child: poll.
db_postgresql_stop()
{
	local pid=$SERVER_PID i
	SERVER_PID=""
	[[ -n $pid ]] || return 0
	kill -INT "$pid" 2>/dev/null || return 0
	for ((i = 0; i < STOP_TIMEOUT_S * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
}

# Benchmark client: SECONDS ARGS... ; writes $RUN_DIR/client.json with tps (excluding
# connection time), average and p99 latency (p99 from a --sampling-rate log), transactions.
db_postgresql_client()
{
	local seconds=$1 dir=$RUN_DIR
	shift
	(cd "$dir" && pgbench -h 127.0.0.1 -p "$PG_PORT" -U postgres -n -c "$CLIENTS" \
		-j "$THREADS" -T "$seconds" "$@" --log --sampling-rate="$LAT_SAMPLING" \
		--log-prefix="$dir/pgbench_log" postgres) >"$dir/client.out" 2>&1 ||
		{ cat "$dir/client.out" >&2; die "pgbench failed in $dir"; }
	local tps lat tx p99
	tps=$(grep -E '^tps = .*(without initial connection|excluding connections)' \
		"$dir/client.out" | awk '{ print $3 }')
	lat=$(awk '/^latency average =/ { print $4 }' "$dir/client.out")
	tx=$(awk -F': *' '/^number of transactions actually processed/ { split($2, a, "/");
		print a[1] }' "$dir/client.out")
	# log line: client_id transaction_no latency_us script_no epoch_s epoch_us
	p99=$(cat "$dir"/pgbench_log.* 2>/dev/null | awk '{ print $3 }' | sort -n |
		awk '{ v[NR] = $1 } END { if (NR) { r = int(NR * 0.99); if (r < NR * 0.99) r++;
			printf "%.3f", v[r] / 1000 } else print "null" }')
	rm -f "$dir"/pgbench_log.*
	[[ -n $tps && -n $lat && -n $tx ]] ||
		{ cat "$dir/client.out" >&2; die "cannot parse pgbench output"; }
	jq -n --argjson tps "$tps" --argjson lat "$lat" --argjson tx "$tx" --argjson p99 "$p99" \
		'{tps: $tps, latency_avg_ms: $lat, latency_p99_ms: $p99, transactions: $tx}' \
		>"$dir/client.json"
}

# The peer: bpftrace on the server's USDT probes, started in the background (the caller takes
# its PID from $!); "peer: ready" on stdout once attached.
db_postgresql_peer_start()
{
	bpftrace "$BENCH_DIR/peer-pg-usdt.bt" "$PG_BINDIR/postgres" "$SERVER_PID" \
		>"$RUN_DIR/peer.out" 2>"$RUN_DIR/peer.err" &
}

# ---- Redis: a throwaway redis-server on a loopback port, redis-benchmark as the client ----
REDIS_SERVER=${DBTAP_REDIS_SERVER:-/usr/bin/redis-server}
REDIS_REQUESTS=0 # requests per redis-benchmark test, calibrated by db_redis_setup

redis_cli() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"; }

# Commands the server completed so far (INFO stats).
redis_commands()
{
	redis_cli INFO stats | tr -d '\r' | awk -F: '$1 == "total_commands_processed" { print $2 }'
}

db_redis_setup()
{
	[[ -x $REDIS_SERVER ]] || die "no $REDIS_SERVER (apt-get install -y redis-server)"
	command -v redis-benchmark >/dev/null || die "redis-benchmark missing (redis-tools)"
	mkdir -p "$WORK/redis"
	db_redis_start
	# size the runs: requests per test for about RUN_SECONDS per run
	local rps
	rps=$(redis-benchmark -h 127.0.0.1 -p "$REDIS_PORT" -c "$CLIENTS" -t get -n 20000 --csv \
		2>/dev/null | awk -F'","' 'NR == 2 { print int($2) }')
	[[ $rps =~ ^[0-9]+$ && $rps -gt 0 ]] || die "redis-benchmark calibration failed"
	REDIS_REQUESTS=$((rps * RUN_SECONDS / 2))
	log "redis: ~$rps requests/s unpipelined: $REDIS_REQUESTS requests per test"
	db_redis_stop
}

db_redis_start()
{
	for _ in 1 2 3 4 5; do
		REDIS_PORT=$(pick_port) || die "no free port"
		"$REDIS_SERVER" --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
			--dir "$WORK/redis" --logfile "$WORK/redis/server.log" --daemonize no &
		SERVER_PID=$!
		for _ in $(seq 50); do
			redis_cli PING 2>/dev/null | grep -q PONG && return 0
			kill -0 "$SERVER_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$SERVER_PID" 2>/dev/null
		wait "$SERVER_PID" 2>/dev/null
		SERVER_PID=""
	done
	die "redis-server did not start"
}

# Our child: SIGINT, then SIGKILL (stop_child).
db_redis_stop()
{
	local pid=$SERVER_PID
	SERVER_PID=""
	[[ -n $pid ]] && stop_child "$pid"
	return 0
}

# redis-benchmark SECONDS ARGS...: the warm-up takes SECONDS of requests, a run the calibrated
# count. tps = requests / wall time over all tests; latency avg = request-weighted mean of the
# tests' averages, p99 = the worst test's p99. ops = the server's own count of commands
# during the run (INFO stats delta; +1 for the first INFO, which the agent sees too).
db_redis_client()
{
	local seconds=$1 dir=$RUN_DIR n=$REDIS_REQUESTS
	shift
	((seconds < RUN_SECONDS)) && n=$((REDIS_REQUESTS * seconds / RUN_SECONDS + 1))
	local c0 c1 t0 t1
	c0=$(redis_commands)
	t0=$(now_s)
	redis-benchmark -h 127.0.0.1 -p "$REDIS_PORT" -c "$CLIENTS" -n "$n" --csv "$@" \
		>"$dir/client.out" 2>"$dir/client.err" || { cat "$dir/client.err" >&2; die "redis-benchmark"; }
	t1=$(now_s)
	c1=$(redis_commands)
	# csv: "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms",
	#      "p99_latency_ms","max_latency_ms"
	tr -d '"' <"$dir/client.out" | awk -F, -v n="$n" -v t0="$t0" -v t1="$t1" -v c0="$c0" \
		-v c1="$c1" 'NR > 1 && NF >= 7 { tests++; lat += $3; if ($7 > p99) p99 = $7 }
		END { if (!tests) exit 1;
		      printf "{\"tps\": %.1f, \"latency_avg_ms\": %.4f, \"latency_p99_ms\": %.3f,", \
			n * tests / (t1 - t0), lat / tests, p99;
		      printf " \"transactions\": %d, \"ops\": %d}\n", n * tests, c1 - c0 + 1 }' \
		>"$dir/client.json" || { cat "$dir/client.out" >&2; die "cannot parse redis-benchmark"; }
}

db_redis_peer_start()
{
	bpftrace "$BENCH_DIR/peer-redis-uprobe.bt" "$REDIS_SERVER" "$SERVER_PID" \
		>"$RUN_DIR/peer.out" 2>"$RUN_DIR/peer.err" &
}

# ---- MariaDB: a throwaway mariadbd on a loopback port, sysbench as the client ----
MARIADBD=${DBTAP_MARIADBD:-/usr/sbin/mariadbd}
MARIADB_TABLE_SIZE=10000

mariadb_cli() { mariadb -h 127.0.0.1 -P "$MARIADB_PORT" -u root -N -B "$@"; }

db_mariadb_setup()
{
	[[ -x $MARIADBD ]] || die "no $MARIADBD (apt-get install -y mariadb-server)"
	command -v sysbench >/dev/null || die "sysbench missing (apt-get install -y sysbench)"
	mkdir -p "$WORK/mariadb/data"
	chown -R mysql: "$WORK/mariadb"
	mariadb-install-db --user=mysql --datadir="$WORK/mariadb/data" --auth-root-authentication-method=normal \
		--skip-test-db >"$WORK/mariadb/install.log" 2>&1 ||
		{ cat "$WORK/mariadb/install.log" >&2; die "mariadb-install-db"; }
	db_mariadb_start
	mariadb_cli -e "CREATE DATABASE sbtest" || die "create database"
	sysbench oltp_common --mysql-host=127.0.0.1 --mysql-port="$MARIADB_PORT" --mysql-user=root \
		--tables=1 --table-size="$MARIADB_TABLE_SIZE" prepare >"$WORK/mariadb/prepare.log" 2>&1 ||
		{ cat "$WORK/mariadb/prepare.log" >&2; die "sysbench prepare"; }
	db_mariadb_stop
}

db_mariadb_start()
{
	for _ in 1 2 3 4 5; do
		MARIADB_PORT=$(pick_port) || die "no free port"
		"$MARIADBD" --no-defaults --user=mysql --datadir="$WORK/mariadb/data" \
			--bind-address=127.0.0.1 --port="$MARIADB_PORT" \
			--socket="$WORK/mariadb/mysqld.sock" --pid-file="$WORK/mariadb/mysqld.pid" \
			--skip-log-bin --innodb-flush-log-at-trx-commit=0 --skip-name-resolve \
			>"$WORK/mariadb/server.log" 2>&1 &
		SERVER_PID=$!
		for _ in $(seq 100); do
			mariadb_cli -e "SELECT 1" >/dev/null 2>&1 && return 0
			kill -0 "$SERVER_PID" 2>/dev/null || break
			sleep 0.2
		done
		kill -KILL "$SERVER_PID" 2>/dev/null
		wait "$SERVER_PID" 2>/dev/null
		SERVER_PID=""
	done
	tail -20 "$WORK/mariadb/server.log" >&2
	die "mariadbd did not start"
}

db_mariadb_stop()
{
	local pid=$SERVER_PID
	SERVER_PID=""
	[[ -n $pid ]] && stop_child "$pid"
	return 0
}

# sysbench SECONDS TEST: tps, latency avg and p99 from sysbench. ops: the statements sysbench
# counted as performed ("queries performed: total", what it sent with COM_QUERY or
# COM_STMT_EXECUTE), plus its "ignored errors" (statements the server ran and failed, a
# deadlock 1213 in oltp_read_write, which sysbench retries and leaves out of its total), plus
# the two statements of this function's own bracketing client calls, which run while the
# agent is attached. (The server's Questions counter is no reference: MariaDB 10.11 counts
# prepares/closes in it, 1-2 per connection.)
db_mariadb_client()
{
	local seconds=$1 test=$2 dir=$RUN_DIR
	mariadb_cli -e "SELECT 'dbtap bench: run starts'" >/dev/null
	sysbench "$test" --mysql-host=127.0.0.1 --mysql-port="$MARIADB_PORT" --mysql-user=root \
		--tables=1 --table-size="$MARIADB_TABLE_SIZE" --threads="$CLIENTS" --time="$seconds" \
		--percentile=99 run >"$dir/client.out" 2>&1 ||
		{ cat "$dir/client.out" >&2; die "sysbench failed in $dir"; }
	mariadb_cli -e "SELECT 'dbtap bench: run ends'" >/dev/null
	awk '
		/transactions:/ { tx = $2; tps = substr($3, 2) }
		/^ +total:/ && !total { total = $2 }
		/ignored errors:/ { ignored = $3 }
		/^ +avg:/ { avg = $2 }
		/99th percentile:/ { p99 = $3 }
		END { if (tx == "" || avg == "" || total == "") exit 1;
		      printf "{\"tps\": %s, \"latency_avg_ms\": %s, \"latency_p99_ms\": %s,", tps, avg, p99;
		      printf " \"transactions\": %d, \"ops\": %d}\n", tx, total + ignored + 2 }' \
		"$dir/client.out" >"$dir/client.json" ||
		{ cat "$dir/client.out" >&2; die "cannot parse sysbench output"; }
}

db_mariadb_peer_start()
{
	bpftrace "$BENCH_DIR/peer-mariadb-uprobe.bt" "$MARIADBD" "$SERVER_PID" \
		>"$RUN_DIR/peer.out" 2>"$RUN_DIR/peer.err" &
}

# Dispatch on the current workload's database.
db_setup() { "db_${DB}_setup"; }
db_start() { "db_${DB}_start"; }
db_stop() { "db_${DB}_stop"; }
db_client() { "db_${DB}_client" "$@"; }
db_peer_start() { "db_${DB}_peer_start"; }

# ---- agents ----

# BPF programs process PID holds, by the prog_id of its BPF fds (/proc/PID/fdinfo; Debian's
# bpftool shows no owning PIDs), with kernel statistics from bpftool:
# [{id, name, run_cnt, run_time_ns}].
bpf_progs_of_pid()
{
	local ids
	ids=$({ cat /proc/"$1"/fdinfo/* 2>/dev/null || true; } | awk '/^prog_id:/ { print $2 }' |
		sort -un |
		jq -R -s -c 'split("\n") | map(select(. != "") | tonumber)')
	bpftool prog show -j 2>/dev/null | jq -c --argjson ids "$ids" \
		'[.[] | select(.id as $id | $ids | index($id))
		 | {id, name: (.name // ("id" + (.id | tostring))), run_cnt: (.run_cnt // 0),
		    run_time_ns: (.run_time_ns // 0)}]'
}

# kernel.bpf_stats_enabled=1 until agent_stop() restores the value found here.
bpf_stats_on()
{
	STATS_RESTORE=$(sysctl -n kernel.bpf_stats_enabled)
	sysctl -qw kernel.bpf_stats_enabled=1
}

# Start the agent of MODE (nothing for A); sets AGENT_PID once it is ready.
agent_start()
{
	local mode=$1
	case $mode in
	A) return 0 ;;
	B|N)
		local bin=$DBTAP_BIN
		[[ $mode == N ]] && bin=$NULL_AGENT_BIN
		# dbtap leaves the kernel's BPF statistics off by default (they tax every BPF
		# program on the host): on for the measurement only, as for the peer
		[[ $mode == B ]] && bpf_stats_on
		"$bin" --pid "$SERVER_PID" --output json --output-file "$RUN_DIR/agent.json" \
			2>"$RUN_DIR/agent.err" &
		AGENT_PID=$!
		wait_for_line "$RUN_DIR/agent.err" '^dbtap: ready( |$)' "$AGENT_PID" "agent $mode" ||
			die "agent $mode did not start"
		;;
	P)
		bpf_stats_on
		db_peer_start
		AGENT_PID=$!
		wait_for_line "$RUN_DIR/peer.out" '^peer: ready' "$AGENT_PID" "peer" ||
			{ cat "$RUN_DIR/peer.err" >&2; die "peer did not start"; }
		;;
	esac
}

agent_stop()
{
	[[ -n $AGENT_PID ]] && stop_child "$AGENT_PID"
	AGENT_PID=""
	if [[ -n $STATS_RESTORE ]]; then
		sysctl -qw kernel.bpf_stats_enabled="$STATS_RESTORE"
		STATS_RESTORE=""
	fi
}

# ---- one run ----

# run_one WORKLOAD MODE ROUND POSITION: start the agent, measure one client run, stop it, and
# append the run's record to $WORK/runs.jsonl.
run_one()
{
	local workload=$1 mode=$2 round=$3 pos=$4 stmts args setup
	stmts=$(workload_field "$workload" 3)
	args=$(workload_field "$workload" 4)
	setup=$(workload_field "$workload" 5)
	RUN_DIR="$WORK/runs/$workload-r$round-$mode"
	mkdir -p "$RUN_DIR"
	agent_start "$mode"

	local srv0 srv1 ag0=0 ag1=0 t0 t1 rss=null progs0="[]" progs1="[]"
	[[ $mode == P ]] && progs0=$(bpf_progs_of_pid "$AGENT_PID")
	[[ -n $AGENT_PID ]] && ag0=$(proc_cpu_ticks "$AGENT_PID")
	srv0=$(tree_cpu_ticks "$SERVER_PID")
	t0=$(now_s)
	# shellcheck disable=SC2086
	db_client "$RUN_SECONDS" $args
	t1=$(now_s)
	srv1=$(tree_cpu_ticks "$SERVER_PID")
	if [[ -n $AGENT_PID ]]; then
		ag1=$(proc_cpu_ticks "$AGENT_PID")
		rss=$(proc_peak_rss_bytes "$AGENT_PID")
	fi
	[[ $mode == P ]] && progs1=$(bpf_progs_of_pid "$AGENT_PID")
	agent_stop

	local agent_json=null
	if [[ $mode == B || $mode == N ]]; then
		# the agent's own view, summed over its intervals (docs/output.md, dbtap.self)
		agent_json=$(jq -s -c '[.[] | select(.kind == "dbtap.self")] |
			{ops: (map(.ops) | add), events: (map(.events) | add),
			 samples: (map(.samples) | add),
			 samples_dropped: (map(.samples_dropped) | add),
			 drops: (map(.drops | to_entries | map(.value) | add // 0) | add),
			 bpf: (map(.bpf_programs[]) | group_by(.name)
			       | map({name: .[0].name, run_cnt: (map(.run_cnt) | add),
				      run_time_ns: (map(.run_time_ns) | add)})),
			 self_lines: length}' "$RUN_DIR/agent.json")
	fi
	jq -n -c --arg workload "$workload" --arg mode "$mode" --argjson round "$round" \
		--argjson pos "$pos" --argjson stmts "$stmts" --argjson setup "$setup" \
		--slurpfile client "$RUN_DIR/client.json" \
		--argjson srv "$(ticks_to_s $((srv1 - srv0)))" \
		--argjson agcpu "$(ticks_to_s $((ag1 - ag0)))" --argjson rss "$rss" \
		--argjson wall "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')" \
		--argjson agent "$agent_json" --argjson p0 "$progs0" --argjson p1 "$progs1" '
		$client[0] as $c
		| ($c.ops // ($c.transactions * $stmts + $setup)) as $ops
		# peer: per-program deltas over the client run, from bpftool
		| ([$p1[] as $a | ($p0 | map(select(.id == $a.id)) | .[0]) as $b
		    | {name: $a.name, run_cnt: ($a.run_cnt - ($b.run_cnt // 0)),
		       run_time_ns: ($a.run_time_ns - ($b.run_time_ns // 0))}]) as $peer
		| (if $mode == "B" then $agent.bpf elif $mode == "P" then $peer
		   elif $mode == "N" then [] else null end) as $bpf
		| {workload: $workload, mode: $mode, round: $round, position: $pos,
		   seconds: $wall, tps: $c.tps, latency_avg_ms: $c.latency_avg_ms,
		   latency_p99_ms: $c.latency_p99_ms, transactions: $c.transactions,
		   statements_per_transaction: $stmts, ops: $ops, server_cpu_s: $srv,
		   agent_cpu_s: (if $mode == "A" then null else $agcpu end),
		   agent_peak_rss_bytes: $rss,
		   bpf_programs: $bpf,
		   bpf_run_time_ns: (if $bpf == null then null
				     else ($bpf | map(.run_time_ns) | add // 0) end),
		   bpf_run_cnt: (if $bpf == null then null
				 else ($bpf | map(.run_cnt) | add // 0) end),
		   events: (if $mode == "B" then $agent.events else null end),
		   samples: (if $mode == "B" then $agent.samples else null end),
		   drops: (if $mode == "B" then $agent.drops else null end),
		   samples_dropped: (if $mode == "B" then $agent.samples_dropped else null end),
		   counted_ops: (if $mode == "B" then $agent.ops else null end),
		   expected_ops: (if $mode == "B" then $ops else null end)}' >>"$WORK/runs.jsonl"
	log "$(jq -r 'select(.position >= 0) | "\(.workload) round \(.round) \(.mode): tps \(.tps)"
		+ ", server CPU \(.server_cpu_s) s"
		+ (if .agent_cpu_s then ", agent CPU \(.agent_cpu_s) s" else "" end)
		+ (if .bpf_run_time_ns then ", BPF \(.bpf_run_time_ns / .ops | floor) ns/op"
		   else "" end)
		+ (if .counted_ops then ", counted \(.counted_ops)/\(.expected_ops)" else "" end)' \
		<<<"$(tail -1 "$WORK/runs.jsonl")")"
}

# ---- summary ----
SUMMARY_JQ='
def median: sort | if length == 0 then null
	elif length % 2 == 1 then .[length / 2 | floor]
	else (.[length / 2 - 1] + .[length / 2]) / 2 end;
def nn: map(select(. != null));
def r(d): if . == null then null else (. * pow(10; d) | round) / pow(10; d) end;
. as $all
| [$all.runs | group_by(.workload)[] as $wruns
   | ($wruns | map(select(.mode == "A"))) as $a
   | ($a | map(.server_cpu_s * 1e9 / .ops) | median) as $srv_a
   | $wruns | group_by(.mode)[] as $m
   | ($m | map(. as $run | ($a | map(select(.round == $run.round)) | .[0]) as $base
		| select($base != null) | {run: $run, base: $base})) as $pairs
   | ($m | map(if .bpf_run_time_ns == null then null else .bpf_run_time_ns / .ops end)
	| nn | median) as $bpf
   | ($m | map(if .agent_cpu_s == null then null else .agent_cpu_s * 1e9 / .ops end)
	| nn | median) as $agent
   | ($m | map(if .agent_cpu_s == null then null
		else ((.bpf_run_time_ns // 0) + .agent_cpu_s * 1e9) / .ops end)
	| nn | median) as $added
   | {workload: $m[0].workload, mode: $m[0].mode, runs: ($m | length),
      tps_median: ($m | map(.tps) | median | r(1)),
      throughput_ratio: (if $m[0].mode == "A" then {median: 1, min: 1, max: 1}
		else ($pairs | map(.run.tps / .base.tps)) as $x
		| {median: ($x | median | r(4)), min: ($x | min | r(4)),
		   max: ($x | max | r(4))} end),
      server_cpu_ns_per_op: ($m | map(.server_cpu_s * 1e9 / .ops) | median | r(0)),
      server_cpu_ns_per_op_no_agent: ($srv_a | r(0)),
      bpf_ns_per_op: ($bpf | r(1)), agent_cpu_ns_per_op: ($agent | r(1)),
      added_cpu_ns_per_op: ($added | r(1)),
      overhead_pct: (if $added == null or $srv_a == null then null
		     else $added / $srv_a * 100 | r(3) end),
      p99_latency_ratio: ($pairs
		| map(select(.run.latency_p99_ms != null and .base.latency_p99_ms != null)
		| .run.latency_p99_ms / .base.latency_p99_ms) | median | r(4)),
      avg_latency_ratio: ($pairs | map(.run.latency_avg_ms / .base.latency_avg_ms) | median | r(4)),
      agent_peak_rss_bytes: ($m | map(.agent_peak_rss_bytes) | nn | max),
      events_per_s: ($m | map(if .mode == "B" then .events / .seconds
		elif .mode == "P" then .bpf_run_cnt / .seconds else null end) | nn | median | r(0)),
      samples_per_s: ($m | map(if .samples == null then null else .samples / .seconds end)
		| nn | median | r(2)),
      drops: ($m | map(.drops) | nn | if length == 0 then null else add end),
      counted_ops: ($m | map(.counted_ops) | nn | if length == 0 then null else add end),
      expected_ops: ($m | map(.expected_ops) | nn | if length == 0 then null else add end)}]
'

TABLE_JQ='
def f(d): if . == null then "-" else (. * pow(10; d) | round) / pow(10; d) | tostring end;
def mib: if . == null then "-" else (. / 1048576 * 10 | round) / 10 | tostring end;
(["workload", "mode", "runs", "tps", "tps ratio med [min-max]", "srv ns/op (A)", "BPF ns/op",
  "agent ns/op", "added %", "p99 ratio", "avg lat ratio", "RSS MiB", "events/s", "samples/s",
  "drops", "counted/expected"] | join("\t")),
(.summary[] | [.workload, .mode, (.runs | tostring), (.tps_median | f(0)),
  (.throughput_ratio as $t | if .mode == "A" then "1"
   else "\($t.median | f(3)) [\($t.min | f(3))-\($t.max | f(3))]" end),
  (.server_cpu_ns_per_op_no_agent | f(0)), (.bpf_ns_per_op | f(0)), (.agent_cpu_ns_per_op | f(0)),
  (.overhead_pct | f(2)), (.p99_latency_ratio | f(3)), (.avg_latency_ratio | f(3)),
  (.agent_peak_rss_bytes | mib), (.events_per_s | f(0)), (.samples_per_s | f(1)),
  (.drops | f(0)), (if .counted_ops == null then "-" else "\(.counted_ops)/\(.expected_ops)" end)]
  | join("\t"))
'

print_table() { jq -r "$TABLE_JQ" "$1" | column -t -s $'\t'; }

# ---- main ----
WORK=$(mktemp -d /tmp/dbtap-bench.XXXXXX)
chmod 755 "$WORK"
: >"$WORK/runs.jsonl"
if [[ " $MODES " == *" N "* ]]; then
	mkdir -p "$(dirname "$NULL_AGENT_BIN")"
	if [[ ! -x $NULL_AGENT_BIN || $BENCH_DIR/null-agent.c -nt $NULL_AGENT_BIN ]]; then
		gcc -O2 -Wall -Wextra -Werror -std=gnu11 -D_GNU_SOURCE -o "$NULL_AGENT_BIN" \
			"$BENCH_DIR/null-agent.c" || die "cannot build the null agent"
	fi
fi
STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
[[ -n $OUT ]] || OUT="$BENCH_DIR/results/$(date -u +%Y%m%dT%H%M%SZ).json"
mkdir -p "$(dirname "$OUT")"

SET_UP_DBS=" "
for workload in $WORKLOADS; do
	DB=$(workload_field "$workload" 2)
	if [[ $SET_UP_DBS != *" $DB "* ]]; then
		log "setting up $DB"
		db_setup
		SET_UP_DBS+="$DB "
	fi
	# server restarted per workload; agent started fresh per run
	db_start
	log "$workload: server PID $SERVER_PID; warm-up ${WARMUP_SECONDS}s"
	RUN_DIR="$WORK/runs/$workload-warmup"
	mkdir -p "$RUN_DIR"
	# shellcheck disable=SC2046
	db_client "$WARMUP_SECONDS" $(workload_field "$workload" 4)
	for ((round = 0; round < PAIRS; round++)); do
		n=${#MODE_LIST[@]}
		for ((i = 0; i < n; i++)); do
			run_one "$workload" "${MODE_LIST[$(((i + round) % n))]}" "$round" "$i"
		done
	done
	db_stop
done

COMMIT=$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)
git -C "$ROOT" diff --quiet HEAD 2>/dev/null || COMMIT+="-dirty"
jq -s --arg started "$STARTED" --arg finished "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
	--arg commit "$COMMIT" --arg kernel "$(uname -r)" --argjson nproc "$(nproc)" \
	--arg model "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)" \
	--arg cmd "$COMMAND_LINE" --arg pgbench "$(pgbench --version)" \
	--arg dbtap "$("$DBTAP_BIN" --version 2>/dev/null || echo unknown)" \
	--argjson pairs "$PAIRS" --argjson seconds "$RUN_SECONDS" --argjson scale "$SCALE" \
	--argjson clients "$CLIENTS" --argjson threads "$THREADS" --arg modes "$MODES" \
	--arg workloads "$WORKLOADS" --argjson quick "$QUICK" \
	'{schema: "dbtap.bench/1", command: $cmd, started: $started, finished: $finished,
	  commit: $commit,
	  machine: {nproc: $nproc, model_name: $model, kernel: $kernel},
	  versions: {dbtap: $dbtap, pgbench: $pgbench},
	  config: {pairs: $pairs, seconds: $seconds, scale: $scale, clients: $clients,
		   threads: $threads, modes: ($modes | split(" ")),
		   workloads: ($workloads | split(" ") | map(select(. != ""))),
		   quick: ($quick == 1),
		   server: "restarted per workload", agent: "started fresh per run"},
	  runs: .}' "$WORK/runs.jsonl" | jq "$SUMMARY_JQ as \$s | . + {summary: \$s}" >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"

echo
jq -r '"dbtap bench: \(.commit), \(.machine.model_name) x\(.machine.nproc), "
	+ "kernel \(.machine.kernel), \(.config.pairs) pairs x \(.config.seconds) s"' "$OUT"
print_table "$OUT"
echo "results: $OUT"
if ((QUICK)); then
	check_result "$OUT" || die "$OUT is not a well-formed result"
	log "quick: $OUT is well-formed (timings are not judged)"
fi
