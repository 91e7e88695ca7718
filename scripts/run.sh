#!/usr/bin/env bash
# run.sh: run dbtap in the foreground; with no database server on the machine, first start the
# built-in demo (a throwaway PostgreSQL plus scripts/demo-workload.sh) and stop it afterwards.
#
# Usage: scripts/run.sh [dbtap flags...]      (what `make run ARGS="..."` calls)
#
# Environment: DBTAP_BIN (default build/dbtap), DEMO_PORT (first port tried, default 54329).
# Everything the demo starts is stopped by PID and its temp folder removed when dbtap exits,
# on Ctrl-C, on SIGTERM/SIGHUP to this script, or on any error. See docs/demo.md.

# SC2317: cleanup and on_signal (and what they call) run from traps, which shellcheck does not
# follow, so it calls them unreachable.
# shellcheck disable=SC2317
set -euo pipefail

ROOT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DBTAP="${DBTAP_BIN:-$ROOT_DIR/build/dbtap}"
NONE_FOUND="no database servers found"
DEMO_FIRST_PORT="${DEMO_PORT:-54329}"
DEMO_PORT_TRIES=100
DEMO_HOST=127.0.0.1
READY_TIMEOUT=30	# seconds to wait for the demo server to accept connections
STOP_TIMEOUT=30		# seconds to wait for a fast shutdown before escalating

# State for cleanup: empty means "not started".
demo_dir=""
pm_pid=""
workload_pid=""
dbtap_pid=""
signals_seen=0
launching=""	# "workload" or "dbtap" while its `cmd &` and `x_pid=$!` are not both done
launch_prev_bg=""	# $! before that launch

say() {
	echo "run.sh: $*" >&2
}

die() {
	say "$*"
	exit 1
}

# ---- cleanup ----

# A trap can run between `cmd &` and the `x_pid=$!` after it (bash runs traps between
# commands): then take the PID from $!, if $! changed since the launch began.
adopt_launched() {
	if [[ -n "$launching" && "${!:-}" != "$launch_prev_bg" ]]; then
		case "$launching" in
		workload) workload_pid=$! ;;
		dbtap) dbtap_pid=$! ;;
		esac
	fi
	launching=""
}

# wait_gone PID SECONDS: true once PID has exited, false if it still runs after SECONDS.
wait_gone() {
	local pid=$1 deadline=$((SECONDS + $2))
	while kill -0 "$pid" 2>/dev/null; do
		if ((SECONDS >= deadline)); then
			return 1
		fi
		sleep 0.2
	done
	return 0
}

# The postmaster is not our child (pg_ctl detaches it): before signalling the PID, check that
# it still is our postmaster, i.e. that its working directory is our data directory.
is_demo_postmaster() {
	[[ -n "$pm_pid" && -n "$demo_dir" ]] &&
		[[ "$(readlink "/proc/$pm_pid/cwd" 2>/dev/null)" == "$demo_dir/data" ]]
}

# group_alive PGID: some process of group PGID is still running (zombies do not count:
# orphans of the group are reaped by init, not by us).
group_alive() {
	local pgid=$1 f line fields
	for f in /proc/[0-9]*/stat; do
		{ read -r line <"$f"; } 2>/dev/null || continue
		# Fields after "pid (comm) ": state ppid pgrp ...; comm may hold spaces.
		read -r -a fields <<<"${line##*) }"
		if [[ "${fields[2]}" == "$pgid" && "${fields[0]}" != Z ]]; then
			return 0
		fi
	done
	return 1
}

stop_workload() {
	if [[ -z "$workload_pid" ]]; then
		return 0
	fi
	# The workload leads its own process group: one signal reaches all its pgbench/psql.
	kill -TERM -- "-$workload_pid" 2>/dev/null || true
	wait "$workload_pid" 2>/dev/null || true
	local deadline=$((SECONDS + 5))
	while group_alive "$workload_pid"; do
		if ((SECONDS >= deadline)); then
			kill -KILL -- "-$workload_pid" 2>/dev/null || true
			break
		fi
		sleep 0.2
	done
	workload_pid=""
}

stop_demo_server() {
	# A signal right after pg_ctl start, before pm_pid was set: the PID file has it.
	if [[ -z "$pm_pid" && -n "$demo_dir" && -r "$demo_dir/data/postmaster.pid" ]]; then
		pm_pid=$(head -n 1 "$demo_dir/data/postmaster.pid")
	fi
	if ! is_demo_postmaster; then
		pm_pid=""
		return 0
	fi
	# SIGINT to the postmaster is PostgreSQL's "fast" shutdown (what pg_ctl stop -m fast sends).
	kill -INT "$pm_pid" 2>/dev/null || true
	if ! wait_gone "$pm_pid" "$STOP_TIMEOUT"; then
		say "demo postmaster $pm_pid ignored fast shutdown, sending SIGQUIT"
		kill -QUIT "$pm_pid" 2>/dev/null || true
		if ! wait_gone "$pm_pid" 5; then
			kill -KILL "$pm_pid" 2>/dev/null || true
			wait_gone "$pm_pid" 5 || say "demo postmaster $pm_pid still running"
		fi
	fi
	pm_pid=""
}

cleanup() {
	local rc=$?
	set +e
	# Cleanup must finish: a second Ctrl-C must not leave the demo server behind.
	trap '' INT TERM HUP
	adopt_launched
	if [[ -n "$dbtap_pid" ]] && kill -0 "$dbtap_pid" 2>/dev/null; then
		kill -TERM "$dbtap_pid" 2>/dev/null
		wait "$dbtap_pid" 2>/dev/null
	fi
	if [[ -n "$demo_dir" ]]; then
		stop_workload
		stop_demo_server
		rm -rf -- "$demo_dir"
		say "demo stopped, $demo_dir removed"
		demo_dir=""
	fi
	exit "$rc"
}

# catches_sigint PID: PID has a handler for SIGINT (signal 2: mask 0x2 of SigCgt in
# /proc/PID/status).
catches_sigint() {
	local mask
	mask=$(awk '/^SigCgt:/ { print $2 }' "/proc/$1/status" 2>/dev/null) || return 1
	[[ -n "$mask" ]] && ((0x$mask & 0x2))
}

# Ctrl-C, SIGTERM, SIGHUP: ask dbtap to write its last interval and exit; a third signal kills
# it. dbtap runs in the background, where it starts with SIGINT ignored: if it installed its
# own SIGINT handler, pass SIGINT on (the same request a terminal Ctrl-C gave it), else SIGTERM,
# which it treats the same way. Before dbtap runs, exit and let cleanup undo the setup.
on_signal() {
	local sig=$1 code=$2
	signals_seen=$((signals_seen + 1))
	adopt_launched
	if [[ -n "$dbtap_pid" ]] && kill -0 "$dbtap_pid" 2>/dev/null; then
		if ((signals_seen >= 3)); then
			say "third signal: killing $DBTAP (PID $dbtap_pid)"
			kill -KILL "$dbtap_pid" 2>/dev/null || true
		elif [[ "$sig" == INT ]] && catches_sigint "$dbtap_pid"; then
			kill -INT "$dbtap_pid" 2>/dev/null || true
		else
			kill -TERM "$dbtap_pid" 2>/dev/null || true
		fi
		return 0
	fi
	exit "$code"
}

trap cleanup EXIT
trap 'on_signal INT 130' INT
trap 'on_signal TERM 143' TERM
trap 'on_signal HUP 129' HUP

# ---- demo server ----

# Newest PostgreSQL under Debian's /usr/lib/postgresql/<major>/bin, or empty.
find_pg_bin() {
	local dir
	dir=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -type d -printf '%f\n' 2>/dev/null |
		sort -V | tail -n 1)
	if [[ -n "$dir" && -x "/usr/lib/postgresql/$dir/bin/initdb" ]]; then
		echo "/usr/lib/postgresql/$dir/bin"
	fi
}

# port_is_free PORT: nothing answers there as PostgreSQL and nothing listens on it.
port_is_free() {
	local rc=0
	"$PG_BIN/pg_isready" -q -h "$DEMO_HOST" -p "$1" -t 2 || rc=$?
	# pg_isready exit status 2: no response (0 accepting, 1 rejecting, 3 no attempt).
	[[ $rc -eq 2 ]] || return 1
	[[ -z "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]]
}

# Start the postmaster on PORT; returns 1 if it could not bind (caller tries the next port).
start_postmaster() {
	local port=$1
	: >"$demo_dir/postgres.log"
	chown postgres: "$demo_dir/postgres.log"
	if (cd "$demo_dir" && runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$demo_dir/data" \
		-l "$demo_dir/postgres.log" -o "-p $port" -w -t "$READY_TIMEOUT" start) \
		>/dev/null 2>&1; then
		return 0
	fi
	if grep -q 'could not bind\|could not create any TCP/IP sockets' "$demo_dir/postgres.log"; then
		return 1
	fi
	tail -n 20 "$demo_dir/postgres.log" >&2
	die "the demo PostgreSQL failed to start (log above, from $demo_dir/postgres.log)"
}

start_demo() {
	local port major tool p

	PG_BIN=$(find_pg_bin)
	if [[ -z "$PG_BIN" ]]; then
		die "$NONE_FOUND, and no PostgreSQL under /usr/lib/postgresql for the demo" \
			"(apt-get install -y postgresql postgresql-contrib, or run scripts/install-deps.sh)"
	fi
	for tool in pgbench psql pg_isready; do
		[[ -x "$PG_BIN/$tool" ]] || die "demo needs $PG_BIN/$tool (apt-get install -y postgresql-client)"
	done
	id postgres >/dev/null 2>&1 || die "demo needs the OS user postgres (apt-get install -y postgresql)"
	major=$(basename "$(dirname "$PG_BIN")")

	demo_dir=$(mktemp -d /tmp/dbtap-demo.XXXXXX)
	# Resolved, to compare with the postmaster's /proc/PID/cwd (see is_demo_postmaster).
	demo_dir=$(realpath -- "$demo_dir")
	chown postgres: "$demo_dir"
	(cd "$demo_dir" && runuser -u postgres -- "$PG_BIN/initdb" -D "$demo_dir/data" -U postgres \
		-A trust -E UTF8 --locale=C >"$demo_dir/initdb.log" 2>&1) ||
		{ cat "$demo_dir/initdb.log" >&2; die "initdb failed for the demo in $demo_dir/data"; }
	# Appended settings win over initdb's defaults; the port is given at start.
	cat >>"$demo_dir/data/postgresql.conf" <<EOF

# ---- dbtap demo server: throwaway, local only, durability off ----
listen_addresses = '$DEMO_HOST'
unix_socket_directories = '$demo_dir'
shared_preload_libraries = 'pg_stat_statements'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 50
EOF

	port=""
	for ((p = DEMO_FIRST_PORT; p < DEMO_FIRST_PORT + DEMO_PORT_TRIES; p++)); do
		if port_is_free "$p" && start_postmaster "$p"; then
			port=$p
			break
		fi
	done
	[[ -n "$port" ]] || die "no free port for the demo in $DEMO_FIRST_PORT..$((p - 1))"

	pm_pid=$(head -n 1 "$demo_dir/data/postmaster.pid")
	is_demo_postmaster || die "demo postmaster PID '$pm_pid' from postmaster.pid is not running"

	local deadline=$((SECONDS + READY_TIMEOUT))
	until "$PG_BIN/pg_isready" -q -h "$DEMO_HOST" -p "$port"; do
		((SECONDS < deadline)) || die "demo PostgreSQL on $DEMO_HOST:$port not ready after ${READY_TIMEOUT}s"
		sleep 0.2
	done
	"$PG_BIN/psql" -X -q -h "$DEMO_HOST" -p "$port" -U postgres -d postgres \
		-c 'CREATE EXTENSION IF NOT EXISTS pg_stat_statements' >/dev/null ||
		die "could not create pg_stat_statements in the demo server"

	# setsid: the workload and all its children get their own process group (PGID = its PID),
	# and terminal Ctrl-C does not reach them: cleanup stops them in order.
	launch_prev_bg=${!:-}
	launching=workload
	PATH="$PG_BIN:$PATH" setsid "$ROOT_DIR/scripts/demo-workload.sh" "$DEMO_HOST" "$port" \
		"$demo_dir" </dev/null >"$demo_dir/workload.log" 2>&1 &
	workload_pid=$!
	launching=""

	cat >&2 <<EOF
run.sh: $NONE_FOUND: started the built-in demo
  PostgreSQL $major   postmaster PID $pm_pid, data $demo_dir/data
                  listening on $DEMO_HOST:$port and $demo_dir/.s.PGSQL.$port
                  connect: psql -h $DEMO_HOST -p $port -U postgres
  workload        scripts/demo-workload.sh, PID $workload_pid, log $demo_dir/workload.log
EOF
}

# ---- main ----

if [[ $(id -u) -ne 0 ]]; then
	die "dbtap loads BPF programs and must run as root: try 'sudo make run'"
fi
if [[ ! -x "$DBTAP" ]]; then
	die "$DBTAP not found or not executable: run 'make' first (or set DBTAP_BIN)"
fi

# A subcommand (list), --help or --version: just run it, no demo.
want_demo=1
for arg in "$@"; do
	case "$arg" in
	-h | --help | --version) want_demo=0 ;;
	esac
done
if [[ $# -gt 0 && "$1" != -* ]]; then
	want_demo=0
fi

user_pid=0
for arg in "$@"; do
	case "$arg" in
	--pid | --pid=*) user_pid=1 ;;
	esac
done

extra_args=()
if ((want_demo)); then
	list_rc=0
	list_out=$("$DBTAP" list 2>/dev/null) || list_rc=$?
	if ((list_rc != 0)); then
		say "'$DBTAP list' failed (exit $list_rc): assuming $NONE_FOUND"
		list_out=$NONE_FOUND
	fi
	if grep -qxF "$NONE_FOUND" <<<"$list_out"; then
		start_demo
		if ((!user_pid)); then
			extra_args=(--pid "$pm_pid")
		fi
	else
		say "found these database servers:"
		mapfile -t servers <<<"$list_out"
		printf '  %s\n' "${servers[@]}" >&2
	fi
fi

cmd=("$DBTAP" "${extra_args[@]}" "$@")
if ((want_demo)); then
	say "starting: ${cmd[*]}"
	say "press Ctrl-C to stop${demo_dir:+ (the demo server and workload stop with it)}"
fi

# dbtap runs as a background child so that signals to this script run the traps at once
# (bash defers traps while a foreground child runs); stdin is passed on explicitly, since a
# background child would otherwise get /dev/null. Ctrl-C reaches dbtap through on_signal.
launch_prev_bg=${!:-}
launching=dbtap
"${cmd[@]}" <&0 &
dbtap_pid=$!
launching=""
# wait also returns (with a status above 128) when a trapped signal arrives: then go on waiting
# while dbtap runs; once it is gone, a second wait gives its own status unless the first had it
# (then bash answers 127: no such child).
while true; do
	rc=0
	wait "$dbtap_pid" || rc=$?
	if ((rc <= 128)); then
		break
	fi
	if ! kill -0 "$dbtap_pid" 2>/dev/null; then
		last_rc=0
		wait "$dbtap_pid" 2>/dev/null || last_rc=$?
		if ((last_rc != 127)); then
			rc=$last_rc
		fi
		break
	fi
done
dbtap_pid=""
exit "$rc"
