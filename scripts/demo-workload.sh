#!/usr/bin/env bash
# demo-workload.sh: a light, varied, endless PostgreSQL workload for the dbtap demo.
#
# Usage: scripts/demo-workload.sh HOST PORT [SOCKET_DIR]
#
# Runs `pgbench -i -s 2` once, then loops until killed: each round runs one 10-second pgbench
# at a fixed rate (TPC-B and select-only in turn) while psql clients send queries of several
# shapes (join, aggregate, IN list of varying length, INSERT/DELETE, a slow pg_sleep now and
# then, a query on a missing table now and then, a client over the unix socket in SOCKET_DIR).
# About 55-150 statements/s in total: enough to watch, far from saturating the machine.
#
# Stopping: it starts its own process group (setsid) when it is not already a group leader,
# so `kill -TERM -- -PGID` stops it and every pgbench/psql it started at once. It also exits
# by itself when the server has stopped answering for a few rounds.
#
# Environment: PGUSER (default postgres), PGDATABASE (default postgres),
# DEMO_TPCB_RATE (default 20 transactions/s, 7 statements each),
# DEMO_SELECT_RATE (default 50 transactions/s, 1 statement each).
set -euo pipefail

if [[ $# -lt 2 || $# -gt 3 ]]; then
	echo "usage: $0 HOST PORT [SOCKET_DIR]" >&2
	exit 2
fi

# Own process group, so the caller can stop the whole workload with one signal.
if [[ "$(ps -o pgid= -p $$ | tr -d ' ')" != "$$" ]]; then
	exec setsid "$0" "$@"
fi

export PGHOST="$1"
export PGPORT="$2"
SOCKET_DIR="${3:-}"
export PGUSER="${PGUSER:-postgres}"
export PGDATABASE="${PGDATABASE:-postgres}"
export PGAPPNAME="dbtap-demo"
export PGCONNECT_TIMEOUT=5

TPCB_RATE="${DEMO_TPCB_RATE:-20}"
SELECT_RATE="${DEMO_SELECT_RATE:-50}"
ROUND_SECONDS=10	# length of one pgbench run
PGBENCH_CLIENTS=2
PGBENCH_SCALE=2		# 200,000 rows in pgbench_accounts
ACCOUNTS=$((PGBENCH_SCALE * 100000))
MAX_DOWN_ROUNDS=3	# rounds without an answering server before giving up
KEEP_ITEMS=200		# rows kept in the demo table

log() {
	echo "demo-workload: $*" >&2
}

# psql with no ~/.psqlrc, quiet, errors reported but not fatal (some queries fail on purpose).
sql() {
	psql -X -q -v ON_ERROR_STOP=0 "$@" >/dev/null 2>&1 || true
}

rand() { # rand MIN MAX: a number in [MIN, MAX]
	echo $(($1 + (RANDOM * 32768 + RANDOM) % ($2 - $1 + 1)))
}

# An IN list of 1 to 8 random account ids: the literals and the length vary.
in_list() {
	local n i list
	n=$(rand 1 8)
	list=$(rand 1 "$ACCOUNTS")
	for ((i = 1; i < n; i++)); do
		list+=", $(rand 1 "$ACCOUNTS")"
	done
	echo "$list"
}

# One psql client: one connection, statements sent one by one.
client_batch() {
	local tick=$1 aid lo
	aid=$(rand 1 "$ACCOUNTS")
	lo=$(rand 1 $((ACCOUNTS - 1000)))
	{
		echo "SELECT a.aid, a.abalance, b.bbalance FROM pgbench_accounts a" \
			"JOIN pgbench_branches b ON b.bid = a.bid WHERE a.aid = $aid;"
		echo "SELECT bid, count(*), sum(abalance) FROM pgbench_accounts" \
			"WHERE aid BETWEEN $lo AND $((lo + 999)) GROUP BY bid;"
		echo "SELECT aid, abalance FROM pgbench_accounts WHERE aid IN ($(in_list));"
		echo "INSERT INTO dbtap_demo_items (name, qty) VALUES ('item-$aid', $(rand 1 99));"
		echo "DELETE FROM dbtap_demo_items WHERE id <=" \
			"(SELECT max(id) - $KEEP_ITEMS FROM dbtap_demo_items);"
		if ((tick % 5 == 0)); then
			echo "SELECT pg_sleep(0.2);"
		fi
		if ((tick % 7 == 0)); then
			echo "SELECT * FROM dbtap_demo_missing_table WHERE id = $aid;"
		fi
	} | sql -f -
	if [[ -n "$SOCKET_DIR" ]] && ((tick % 3 == 0)); then
		sql -h "$SOCKET_DIR" -c "SELECT count(*) FROM dbtap_demo_items WHERE qty > $(rand 1 99);"
	fi
}

setup() {
	local tries
	for ((tries = 0; tries < 30; tries++)); do
		if pg_isready -q; then
			break
		fi
		sleep 1
	done
	log "initializing pgbench tables (scale $PGBENCH_SCALE) on $PGHOST:$PGPORT"
	if ! pgbench -i -q -s "$PGBENCH_SCALE" >/dev/null 2>&1; then
		log "pgbench -i failed on $PGHOST:$PGPORT"
		exit 1
	fi
	sql -c "CREATE TABLE IF NOT EXISTS dbtap_demo_items (id bigserial PRIMARY KEY,
		name text NOT NULL, qty integer NOT NULL, created_at timestamptz DEFAULT now());"
}

# On a signal: pass it on to the whole group (pgbench, psql, sleep), then reap them, so that
# nothing is left as an orphan for init to collect.
on_signal() {
	trap '' INT TERM HUP
	kill -TERM 0 2>/dev/null || true
	wait
	exit 143
}

main() {
	local round=0 tick=0 down=0 bench_pid mode_args
	setup
	log "running (TPC-B at ${TPCB_RATE}/s and select-only at ${SELECT_RATE}/s in turn, plus psql clients)"
	while true; do
		if ! pg_isready -q; then
			down=$((down + 1))
			if ((down >= MAX_DOWN_ROUNDS)); then
				log "server $PGHOST:$PGPORT stopped answering, exiting"
				exit 1
			fi
			sleep 2
			continue
		fi
		down=0
		if ((round % 2 == 0)); then
			mode_args=(-R "$TPCB_RATE")
		else
			mode_args=(-S -M prepared -R "$SELECT_RATE")
		fi
		pgbench "${mode_args[@]}" -T "$ROUND_SECONDS" -c "$PGBENCH_CLIENTS" >/dev/null 2>&1 &
		bench_pid=$!
		while kill -0 "$bench_pid" 2>/dev/null; do
			tick=$((tick + 1))
			client_batch "$tick"
			sleep 1
		done
		wait "$bench_pid" || true
		round=$((round + 1))
	done
}

trap on_signal INT TERM HUP
main
