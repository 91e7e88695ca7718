#!/usr/bin/env bash
# demo-workload-redis.sh: a light, varied, endless Redis workload for the dbtap demo.
#
# Usage: scripts/demo-workload-redis.sh HOST PORT
#
# Two long-lived redis-cli connections, each fed by a shell loop through a pipe (redis-cli with
# no command and stdin not a terminal reads one command a line and sends each on the same
# connection). Every second:
#   connection 1 (db 0): SET/GET/INCR on user:<n>:cart and user:<n>:visits, LPUSH/LTRIM/LRANGE
#       on user:<n>:recent; a MULTI/INCR/SET/EXEC every 5th second; an INCR on a list key
#       (WRONGTYPE error) every 7th second; a BLPOP with a 1 s timeout on an empty list every
#       10th second;
#   connection 2: SELECT 3 once, then SET EX/GET/EXISTS/DEL on session:<id>.
# About 50 commands/s in total: enough to watch, far from saturating the machine.
#
# Stopping: it starts its own process group (setsid) when it is not already a group leader,
# so `kill -TERM -- -PGID` stops it and every redis-cli it started at once. It also exits by
# itself when the server has stopped answering for a few rounds.
#
# Environment: DEMO_REDIS_USERS (default 1000, how many user:<n> keys are used).
set -euo pipefail

if [[ $# -ne 2 ]]; then
	echo "usage: $0 HOST PORT" >&2
	exit 2
fi

# Own process group, so the caller can stop the whole workload with one signal.
if [[ "$(ps -o pgid= -p $$ | tr -d ' ')" != "$$" ]]; then
	exec setsid "$0" "$@"
fi

HOST="$1"
PORT="$2"
USERS="${DEMO_REDIS_USERS:-1000}"
SESSION_DB=3		# the database the second client SELECTs
CART_OPS_PER_SECOND=9	# SET+GET+INCR triples on connection 1
LIST_OPS_PER_SECOND=4	# LPUSH+LTRIM pairs on connection 1 (plus 2 LRANGE)
SESSION_OPS_PER_SECOND=4	# SET+GET+EXISTS on connection 2 (plus 1 DEL)
RECENT_KEEP=20		# list length kept by LTRIM
SESSION_TTL=60		# seconds
BLPOP_TIMEOUT=1		# seconds; the list it waits on is never pushed to
CHECK_SECONDS=5		# how often the main loop PINGs the server
PING_TIMEOUT=5		# seconds
MAX_LAG_SECONDS=3	# behind schedule by more than this: stop catching up
MAX_DOWN_ROUNDS=3	# failed PINGs in a row before giving up

# No history file, whatever the environment says (redis-cli only writes one on a terminal).
export REDISCLI_HISTFILE=/dev/null

log() {
	echo "demo-workload-redis: $*" >&2
}

rand() { # rand MIN MAX: a number in [MIN, MAX]
	echo $(($1 + (RANDOM * 32768 + RANDOM) % ($2 - $1 + 1)))
}

# ping_ok: the server answers PING, within PING_TIMEOUT (--foreground: timeout stays in our
# process group, so a signal to the group reaches it).
ping_ok() {
	local reply
	reply=$(timeout --foreground "$PING_TIMEOUT" redis-cli -h "$HOST" -p "$PORT" PING \
		2>/dev/null)
	[[ "$reply" == PONG ]]
}

# sleep_until N: sleep until N seconds after the generator started (its start_us), so that the
# time spent making a batch does not lower the rate. After a stall of more than a few seconds
# (a full pipe while the server was away) it starts counting again rather than catch up.
sleep_until() {
	local now_us wait_us
	now_us=${EPOCHREALTIME/[.,]/}
	wait_us=$((start_us + $1 * 1000000 - now_us))
	if ((wait_us > 0)); then
		sleep "$((wait_us / 1000000)).$(printf '%06d' $((wait_us % 1000000)))"
	elif ((wait_us < -MAX_LAG_SECONDS * 1000000)); then
		start_us=$((now_us - $1 * 1000000))
	fi
}

# Commands of connection 1, one a line, forever; second TICK of the run in $tick.
user_commands() {
	local tick=0 i u start_us=${EPOCHREALTIME/[.,]/}
	while true; do
		tick=$((tick + 1))
		for ((i = 0; i < CART_OPS_PER_SECOND; i++)); do
			u=$(rand 1 "$USERS")
			echo "SET user:$u:cart item-$(rand 1 500)x$(rand 1 9)"
			echo "GET user:$(rand 1 "$USERS"):cart"
			echo "INCR user:$u:visits"
		done
		for ((i = 0; i < LIST_OPS_PER_SECOND; i++)); do
			u=$(rand 1 "$USERS")
			echo "LPUSH user:$u:recent product-$(rand 1 5000)"
			echo "LTRIM user:$u:recent 0 $((RECENT_KEEP - 1))"
		done
		echo "LRANGE user:$(rand 1 "$USERS"):recent 0 9"
		echo "LRANGE user:$(rand 1 "$USERS"):recent 0 -1"
		if ((tick % 5 == 0)); then
			u=$(rand 1 "$USERS")
			echo "MULTI"
			echo "INCR user:$u:orders"
			echo "SET user:$u:last_order order-$(rand 1 99999)"
			echo "EXEC"
		fi
		if ((tick % 7 == 0)); then
			# WRONGTYPE: user:<n>:recent holds a list.
			u=$(rand 1 "$USERS")
			echo "LPUSH user:$u:recent product-$(rand 1 5000)"
			echo "INCR user:$u:recent"
		fi
		if ((tick % 10 == 0)); then
			echo "BLPOP demo:jobs:idle $BLPOP_TIMEOUT"
		fi
		sleep_until "$tick"
	done
}

# Commands of connection 2: SELECT once, then session keys in that database, forever.
session_commands() {
	local tick=0 i id start_us=${EPOCHREALTIME/[.,]/}
	echo "SELECT $SESSION_DB"
	while true; do
		tick=$((tick + 1))
		for ((i = 0; i < SESSION_OPS_PER_SECOND; i++)); do
			id=$(printf '%08x' "$(rand 0 2147483647)")
			echo "SET session:$id uid-$(rand 1 "$USERS") EX $SESSION_TTL"
			echo "GET session:$id"
			echo "EXISTS session:$(printf '%08x' "$(rand 0 2147483647)")"
		done
		echo "DEL session:$id"
		sleep_until "$tick"
	done
}

# One connection: the generator's lines go to one redis-cli; replies are thrown away. redis-cli
# in this mode does not exit when the server goes away (it reconnects for the next line), so
# the main loop watches the server itself.
connection() {
	"$1" | redis-cli -h "$HOST" -p "$PORT" >/dev/null 2>&1 || true
}

# Stop every process of the group (redis-cli, generators, sleep) and reap them, so that
# nothing is left as an orphan for init to collect.
stop_group() {
	trap '' INT TERM HUP
	kill -TERM 0 2>/dev/null || true
	wait || true
}

on_signal() {
	stop_group
	exit 143
}

main() {
	local down=0 tries user_pid session_pid
	for ((tries = 0; tries < 30; tries++)); do
		if ping_ok; then
			break
		fi
		sleep 1
	done
	log "running on $HOST:$PORT (about 50 commands/s on 2 connections)"
	connection user_commands &
	user_pid=$!
	connection session_commands &
	session_pid=$!
	while true; do
		sleep "$CHECK_SECONDS"
		if ping_ok; then
			down=0
		else
			down=$((down + 1))
			if ((down >= MAX_DOWN_ROUNDS)); then
				log "server $HOST:$PORT stopped answering, exiting"
				stop_group
				exit 1
			fi
		fi
		# A connection ends only if its redis-cli died: start it again.
		if ! kill -0 "$user_pid" 2>/dev/null; then
			connection user_commands &
			user_pid=$!
		fi
		if ! kill -0 "$session_pid" 2>/dev/null; then
			connection session_commands &
			session_pid=$!
		fi
	done
}

trap on_signal INT TERM HUP
main
