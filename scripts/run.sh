#!/usr/bin/env bash
# run.sh: run dbtap in the foreground; with no database server on the machine, first start the
# built-in demo (a throwaway PostgreSQL, Redis and MariaDB, each with its own light workload
# from scripts/demo-workload*.sh) and stop it afterwards.
#
# Usage: scripts/run.sh [dbtap flags...]      (what `make run ARGS="..."` calls)
#
# Environment: DBTAP_BIN (default build/dbtap); the first port tried for each demo server:
# DEMO_PORT (PostgreSQL, default 54329), DEMO_REDIS_PORT (6390), DEMO_MARIADB_PORT (33069).
# Redis and MariaDB are left out, with one line saying so, when they are not installed.
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
REDIS_FIRST_PORT="${DEMO_REDIS_PORT:-6390}"
MARIADB_FIRST_PORT="${DEMO_MARIADB_PORT:-33069}"
DEMO_PORT_TRIES=100
DEMO_HOST=127.0.0.1
REDIS_SERVER=/usr/bin/redis-server
MARIADBD=/usr/sbin/mariadbd
MARIADB_OS_USER=mysql
READY_TIMEOUT=30	# seconds to wait for a demo server to accept connections
PROBE_TIMEOUT=2		# seconds for one readiness probe (something else may hold the port)
STOP_TIMEOUT=30		# seconds to wait for a server's own shutdown before escalating

# State for cleanup: empty means "not started".
demo_dir=""
pm_pid=""
workload_pid=""
redis_pid=""
redis_workload_pid=""
mariadb_pid=""
mariadb_workload_pid=""
dbtap_pid=""
signals_seen=0
launching=""	# name of the *_pid variable whose `cmd &` and `x_pid=$!` are not both done
launch_prev_bg=""	# $! before that launch
banner=""	# the demo's servers, how to connect, their workloads: printed once all run

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
		printf -v "$launching" '%s' "$!"
	fi
	launching=""
}

# launch_begin VAR: a `cmd &` whose PID goes to VAR follows (see adopt_launched).
launch_begin() {
	launch_prev_bg=${!:-}
	launching=$1
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

# is_our_child PID: PID is a live child of this script. redis-server and mariadbd are (setsid
# execs them in place): while that holds, the PID cannot belong to anything else.
is_our_child() {
	local line fields
	[[ -n "$1" ]] || return 1
	{ read -r line <"/proc/$1/stat"; } 2>/dev/null || return 1
	read -r -a fields <<<"${line##*) }"
	[[ "${fields[1]}" == "$$" && "${fields[0]}" != Z ]]
}

# stop_workload VAR: stop the workload whose PID is in VAR, then clear VAR.
stop_workload() {
	local var=$1 pid=${!1}
	if [[ -z "$pid" ]]; then
		return 0
	fi
	# The workload leads its own process group: one signal reaches all its clients.
	kill -TERM -- "-$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	local deadline=$((SECONDS + 5))
	while group_alive "$pid"; do
		if ((SECONDS >= deadline)); then
			kill -KILL -- "-$pid" 2>/dev/null || true
			break
		fi
		sleep 0.2
	done
	printf -v "$var" '%s' ""
}

# Ask every demo server to shut down, all at once; finish_stop_* then wait for each.
request_server_stops() {
	# A signal right after pg_ctl start, before pm_pid was set: the PID file has it.
	if [[ -z "$pm_pid" && -n "$demo_dir" && -r "$demo_dir/data/postmaster.pid" ]]; then
		pm_pid=$(head -n 1 "$demo_dir/data/postmaster.pid")
	fi
	if is_demo_postmaster; then
		# SIGINT is PostgreSQL's "fast" shutdown (what pg_ctl stop -m fast sends).
		kill -INT "$pm_pid" 2>/dev/null || true
	else
		pm_pid=""
	fi
	# SIGTERM: redis-server's shutdown (no save here: --save ""), mariadbd's normal shutdown.
	if is_our_child "$redis_pid"; then
		kill -TERM "$redis_pid" 2>/dev/null || true
	fi
	if is_our_child "$mariadb_pid"; then
		kill -TERM "$mariadb_pid" 2>/dev/null || true
	fi
}

finish_stop_postmaster() {
	if [[ -z "$pm_pid" ]]; then
		return 0
	fi
	if ! wait_gone "$pm_pid" "$STOP_TIMEOUT" && is_demo_postmaster; then
		say "demo postmaster $pm_pid ignored fast shutdown, sending SIGQUIT"
		kill -QUIT "$pm_pid" 2>/dev/null || true
		if ! wait_gone "$pm_pid" 5 && is_demo_postmaster; then
			kill -KILL "$pm_pid" 2>/dev/null || true
			wait_gone "$pm_pid" 5 || say "demo postmaster $pm_pid still running"
		fi
	fi
	pm_pid=""
}

# finish_stop_child NAME VAR: wait for the server whose PID is in VAR (a child of ours, already
# sent its stop signal), SIGKILL it after STOP_TIMEOUT, reap it, clear VAR.
finish_stop_child() {
	local name=$1 var=$2 pid=${!2}
	if [[ -z "$pid" ]]; then
		return 0
	fi
	local deadline=$((SECONDS + STOP_TIMEOUT))
	while is_our_child "$pid"; do
		if ((SECONDS >= deadline)); then
			say "demo $name $pid did not stop within ${STOP_TIMEOUT}s, sending SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
			break
		fi
		sleep 0.2
	done
	wait "$pid" 2>/dev/null || true
	printf -v "$var" '%s' ""
}

stop_demo_servers() {
	request_server_stops
	finish_stop_postmaster
	finish_stop_child redis-server redis_pid
	finish_stop_child mariadbd mariadb_pid
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
		stop_workload workload_pid
		stop_workload redis_workload_pid
		stop_workload mariadb_workload_pid
		stop_demo_servers
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
	# mktemp made it 0700: let the OS user mysql reach its own subfolder (traverse only).
	chmod 0711 "$demo_dir"
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
	launch_begin workload_pid
	PATH="$PG_BIN:$PATH" setsid "$ROOT_DIR/scripts/demo-workload.sh" "$DEMO_HOST" "$port" \
		"$demo_dir" </dev/null >"$demo_dir/workload.log" 2>&1 &
	workload_pid=$!
	launching=""

	banner_add "PostgreSQL $major" "postmaster PID $pm_pid, data $demo_dir/data" \
		"listening on $DEMO_HOST:$port and $demo_dir/.s.PGSQL.$port" \
		"connect: psql -h $DEMO_HOST -p $port -U postgres"
	banner_add workload \
		"scripts/demo-workload.sh, PID $workload_pid, log $demo_dir/workload.log"
}

# banner_add LABEL LINE...: one entry of the demo banner, LABEL beside the first LINE and the
# other LINEs under it.
banner_add() {
	local label=$1 line
	shift
	for line in "$@"; do
		banner+="$(printf '  %-15s %s' "$label" "$line")"$'\n'
		label=""
	done
}

# missing_tools TOOL...: the ones not installed (as "a b c"), empty if all are.
missing_tools() {
	local tool missing=()
	for tool in "$@"; do
		if [[ "$tool" == /* ]]; then
			[[ -x "$tool" ]] || missing+=("$tool")
		else
			command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
		fi
	done
	echo "${missing[*]}"
}

# port_unused PORT: nothing listens on TCP PORT.
port_unused() {
	[[ -z "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]]
}

# wait_server_ready NAME VAR LOG CHECK...: wait until the command CHECK succeeds while the
# child whose PID is in VAR runs. 0 ready; 1 the server exited because its port was taken (the
# caller tries the next port; VAR is cleared); dies on any other failure.
wait_server_ready() {
	local name=$1 var=$2 log=$3 deadline=$((SECONDS + READY_TIMEOUT))
	shift 3
	while ! "$@" >/dev/null 2>&1; do
		if ! is_our_child "${!var}"; then
			wait "${!var}" 2>/dev/null || true
			printf -v "$var" '%s' ""
			if grep -qs 'Address already in use\|Bind on TCP/IP port' "$log"; then
				return 1
			fi
			tail -n 20 "$log" >&2
			die "the demo $name failed to start (log above, from $log)"
		fi
		((SECONDS < deadline)) ||
			die "the demo $name not ready after ${READY_TIMEOUT}s (log: $log)"
		sleep 0.2
	done
	return 0
}

# redis_answers PORT: a Redis answers PING there. Bounded: if another program grabbed the port
# first, it may accept the connection and never answer.
redis_answers() {
	local reply
	reply=$(timeout --foreground "$PROBE_TIMEOUT" redis-cli -h "$DEMO_HOST" -p "$1" PING \
		2>/dev/null)
	[[ "$reply" == PONG ]]
}

# A throwaway Redis on the first free port from REDIS_FIRST_PORT, in the foreground as our
# child, no persistence; then its workload. Left out, with one line, if not installed.
start_redis() {
	local missing port="" p version
	missing=$(missing_tools "$REDIS_SERVER" redis-cli)
	if [[ -n "$missing" ]]; then
		say "demo without Redis: $missing not installed" \
			"(apt-get install -y redis-server redis-tools)"
		return 0
	fi
	mkdir -p "$demo_dir/redis"
	for ((p = REDIS_FIRST_PORT; p < REDIS_FIRST_PORT + DEMO_PORT_TRIES; p++)); do
		port_unused "$p" || continue
		# setsid: own session, so a terminal Ctrl-C does not reach it; it execs in place,
		# so $! is redis-server's own PID.
		launch_begin redis_pid
		setsid "$REDIS_SERVER" --bind "$DEMO_HOST" --port "$p" --save "" --appendonly no \
			--dir "$demo_dir/redis" --daemonize no \
			</dev/null >"$demo_dir/redis.log" 2>&1 &
		redis_pid=$!
		launching=""
		if wait_server_ready redis-server redis_pid "$demo_dir/redis.log" \
			redis_answers "$p"; then
			port=$p
			break
		fi
	done
	[[ -n "$port" ]] || die "no free port for the demo Redis in $REDIS_FIRST_PORT..$((p - 1))"
	version=$("$REDIS_SERVER" --version | sed -n 's/.* v=\([0-9]*\.[0-9]*\).*/\1/p')

	launch_begin redis_workload_pid
	setsid "$ROOT_DIR/scripts/demo-workload-redis.sh" "$DEMO_HOST" "$port" \
		</dev/null >"$demo_dir/workload-redis.log" 2>&1 &
	redis_workload_pid=$!
	launching=""

	banner_add "Redis $version" \
		"redis-server PID $redis_pid, dir $demo_dir/redis, log $demo_dir/redis.log" \
		"listening on $DEMO_HOST:$port" \
		"connect: redis-cli -h $DEMO_HOST -p $port"
	banner_add workload "scripts/demo-workload-redis.sh, PID $redis_workload_pid," \
		"log $demo_dir/workload-redis.log"
}

# mariadb_answers SOCKET: the demo mariadbd answers a ping on its own unix socket.
mariadb_answers() {
	timeout --foreground "$PROBE_TIMEOUT" mariadb-admin --no-defaults \
		--connect-timeout="$PROBE_TIMEOUT" -u root --socket="$1" ping
}

# A throwaway MariaDB (root without password, local only) on the first free port from
# MARIADB_FIRST_PORT, in the foreground as our child; then its workload. Left out, with one
# line, if not installed.
start_mariadb() {
	local missing port="" p version dir=$demo_dir/mariadb
	missing=$(missing_tools "$MARIADBD" mariadb-install-db mariadb mariadb-admin)
	if [[ -z "$missing" ]] && ! id "$MARIADB_OS_USER" >/dev/null 2>&1; then
		missing="the OS user $MARIADB_OS_USER"
	fi
	if [[ -n "$missing" ]]; then
		say "demo without MariaDB: $missing not installed" \
			"(apt-get install -y mariadb-server mariadb-client)"
		return 0
	fi
	mkdir -p "$dir"
	chown "$MARIADB_OS_USER": "$dir"
	# --no-defaults (first, as both programs require): nothing from /etc/mysql applies.
	mariadb-install-db --no-defaults --user="$MARIADB_OS_USER" \
		--datadir="$dir/data" --auth-root-authentication-method=normal --skip-test-db \
		>"$dir/install.log" 2>&1 ||
		{
			tail -n 20 "$dir/install.log" >&2
			die "mariadb-install-db failed for the demo in $dir/data"
		}
	for ((p = MARIADB_FIRST_PORT; p < MARIADB_FIRST_PORT + DEMO_PORT_TRIES; p++)); do
		port_unused "$p" || continue
		# As for Redis: own session, and $! is mariadbd's own PID (it switches to the OS
		# user mysql itself, in place). --log-error: its messages in the demo folder.
		launch_begin mariadb_pid
		setsid "$MARIADBD" --no-defaults --user="$MARIADB_OS_USER" --datadir="$dir/data" \
			--bind-address="$DEMO_HOST" --port="$p" --socket="$dir/mysqld.sock" \
			--pid-file="$dir/mariadbd.pid" --log-error="$dir/mariadbd.log" \
			--skip-log-bin --skip-name-resolve </dev/null >"$dir/mariadbd.out" 2>&1 &
		mariadb_pid=$!
		launching=""
		if wait_server_ready mariadbd mariadb_pid "$dir/mariadbd.log" \
			mariadb_answers "$dir/mysqld.sock"; then
			port=$p
			break
		fi
	done
	[[ -n "$port" ]] ||
		die "no free port for the demo MariaDB in $MARIADB_FIRST_PORT..$((p - 1))"
	version=$("$MARIADBD" --version | sed -n 's/.* Ver \([0-9]*\.[0-9]*\).*/\1/p')

	launch_begin mariadb_workload_pid
	setsid "$ROOT_DIR/scripts/demo-workload-mariadb.sh" "$DEMO_HOST" "$port" \
		</dev/null >"$demo_dir/workload-mariadb.log" 2>&1 &
	mariadb_workload_pid=$!
	launching=""

	banner_add "MariaDB $version" "mariadbd PID $mariadb_pid, data $dir/data" \
		"log $dir/mariadbd.log" \
		"listening on $DEMO_HOST:$port and $dir/mysqld.sock" \
		"connect: mariadb -h $DEMO_HOST -P $port -u root" \
		"     or: mariadb -S $dir/mysqld.sock -u root"
	banner_add workload "scripts/demo-workload-mariadb.sh, PID $mariadb_workload_pid," \
		"log $demo_dir/workload-mariadb.log"
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
		start_redis
		start_mariadb
		say "$NONE_FOUND: started the built-in demo"
		printf '%s' "$banner" >&2
		if ((!user_pid)); then
			for pid in "$pm_pid" "$redis_pid" "$mariadb_pid"; do
				if [[ -n "$pid" ]]; then
					extra_args+=(--pid "$pid")
				fi
			done
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
	say "press Ctrl-C to stop${demo_dir:+ (the demo servers and workloads stop with it)}"
fi

# dbtap runs as a background child so that signals to this script run the traps at once
# (bash defers traps while a foreground child runs); stdin is passed on explicitly, since a
# background child would otherwise get /dev/null. Ctrl-C reaches dbtap through on_signal.
launch_begin dbtap_pid
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
