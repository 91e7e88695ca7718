#!/usr/bin/env bash
# demo-workload-mariadb.sh: a light, varied, endless MariaDB workload for the dbtap demo.
#
# Usage: scripts/demo-workload-mariadb.sh HOST PORT
#
# Creates the database `demo` with two tables (customers, 200 rows; orders, about 500 rows),
# then one long-lived `mariadb` client connection (as root, over TCP) is fed statements by a
# shell loop through a pipe. Every second: INSERT, point SELECTs, an IN list of 1 to 6 random
# literals, UPDATE, a join with GROUP BY, an aggregate and a DELETE that keeps orders at about
# 500 rows, all with varying literals; a SELECT SLEEP(0.2) every 5th second and a query on a
# missing table (ERROR 1146) every 7th second. About 30 statements/s.
#
# Stopping: it starts its own process group (setsid) when it is not already a group leader,
# so `kill -TERM -- -PGID` stops it and every mariadb client it started at once. It also exits
# by itself when the server has stopped answering for a few rounds.
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
DB=demo
CUSTOMERS=200		# rows in customers, ids 1..CUSTOMERS
ORDERS=500		# rows kept in orders
INSERTS_PER_SECOND=5	# and as many rows deleted, oldest first
POINT_SELECTS_PER_SECOND=13
UPDATES_PER_SECOND=3
CHECK_SECONDS=5		# how often the main loop pings the server
MAX_LAG_SECONDS=3	# behind schedule by more than this: stop catching up
MAX_DOWN_ROUNDS=3	# failed pings in a row before giving up
CONNECT_TIMEOUT=5	# seconds
CITIES=(Lyon Oslo Porto Kyoto Quito)
STATUSES=(new paid shipped cancelled)

# No ~/.my.cnf or /etc/mysql settings: the demo server is reached exactly as told.
CLIENT=(mariadb --no-defaults --connect-timeout="$CONNECT_TIMEOUT" -h "$HOST" -P "$PORT" -u root)

log() {
	echo "demo-workload-mariadb: $*" >&2
}

rand() { # rand MIN MAX: a number in [MIN, MAX]
	echo $(($1 + (RANDOM * 32768 + RANDOM) % ($2 - $1 + 1)))
}

pick() { # pick WORD...: one of the words
	shift $((RANDOM % $#))
	echo "$1"
}

amount() { # a price such as 123.45
	printf '%d.%02d' "$(rand 1 999)" "$(rand 0 99)"
}

ping_ok() {
	mariadb-admin --no-defaults --connect-timeout="$CONNECT_TIMEOUT" -h "$HOST" -P "$PORT" \
		-u root ping >/dev/null 2>&1
}

setup() {
	local tries city_list
	city_list=$(printf "'%s', " "${CITIES[@]}")
	city_list=${city_list%, }
	for ((tries = 0; tries < 30; tries++)); do
		if ping_ok; then
			break
		fi
		sleep 1
	done
	log "creating database $DB on $HOST:$PORT"
	# seq_1_to_N: MariaDB's built-in sequence engine. INSERT IGNORE and the count check keep
	# the setup harmless when the workload is started again on the same server.
	"${CLIENT[@]}" <<EOF || { log "setup failed on $HOST:$PORT"; exit 1; }
CREATE DATABASE IF NOT EXISTS $DB;
USE $DB;
CREATE TABLE IF NOT EXISTS customers (
	id INT PRIMARY KEY,
	name VARCHAR(64) NOT NULL,
	city VARCHAR(32) NOT NULL,
	KEY (city)
);
CREATE TABLE IF NOT EXISTS orders (
	id BIGINT AUTO_INCREMENT PRIMARY KEY,
	customer_id INT NOT NULL,
	amount DECIMAL(10, 2) NOT NULL,
	status VARCHAR(16) NOT NULL,
	created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
	KEY (customer_id)
);
INSERT IGNORE INTO customers (id, name, city)
	SELECT seq, CONCAT('customer-', seq), ELT(1 + seq % ${#CITIES[@]}, $city_list)
	FROM seq_1_to_$CUSTOMERS;
INSERT INTO orders (customer_id, amount, status)
	SELECT 1 + seq % $CUSTOMERS, 1 + seq % 97 + 0.99, 'new' FROM seq_1_to_$ORDERS
	WHERE (SELECT COUNT(*) FROM orders) = 0;
EOF
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

# The statements of the long-lived connection, one a line, forever. Order ids: the seed made
# 1..ORDERS and every second adds INSERTS_PER_SECOND and deletes as many of the oldest, so
# the live ids are about (last - ORDERS, last].
statements() {
	local tick=0 last=$ORDERS i n list start_us=${EPOCHREALTIME/[.,]/}
	echo "USE $DB;"
	while true; do
		tick=$((tick + 1))
		for ((i = 0; i < INSERTS_PER_SECOND; i++)); do
			echo "INSERT INTO orders (customer_id, amount, status) VALUES" \
				"($(rand 1 "$CUSTOMERS"), $(amount), 'new');"
		done
		last=$((last + INSERTS_PER_SECOND))
		for ((i = 0; i < POINT_SELECTS_PER_SECOND; i++)); do
			echo "SELECT id, customer_id, amount, status FROM orders" \
				"WHERE id = $(rand $((last - ORDERS + 1)) "$last");"
		done
		echo "SELECT name, city FROM customers WHERE id = $(rand 1 "$CUSTOMERS");"
		n=$(rand 1 6)
		list=$(rand 1 "$CUSTOMERS")
		for ((i = 1; i < n; i++)); do
			list+=", $(rand 1 "$CUSTOMERS")"
		done
		echo "SELECT id, amount FROM orders WHERE customer_id IN ($list)" \
			"ORDER BY id DESC LIMIT 10;"
		for ((i = 0; i < UPDATES_PER_SECOND; i++)); do
			echo "UPDATE orders SET status = '$(pick "${STATUSES[@]}")'," \
				"amount = amount + $(amount)" \
				"WHERE id = $(rand $((last - ORDERS + 1)) "$last");"
		done
		echo "SELECT c.city, COUNT(*), SUM(o.amount) FROM orders o" \
			"JOIN customers c ON c.id = o.customer_id" \
			"WHERE c.city = '$(pick "${CITIES[@]}")' AND o.amount > $(rand 1 500)" \
			"GROUP BY c.city;"
		echo "SELECT status, COUNT(*), AVG(amount) FROM orders GROUP BY status;"
		echo "DELETE FROM orders ORDER BY id LIMIT $INSERTS_PER_SECOND;"
		if ((tick % 5 == 0)); then
			echo "SELECT SLEEP(0.2);"
		fi
		if ((tick % 7 == 0)); then
			echo "SELECT * FROM missing_table WHERE id = $(rand 1 "$ORDERS");"
		fi
		sleep_until "$tick"
	done
}

# The connection: --force goes on after errors (the missing table); output is thrown away.
connection() {
	statements | "${CLIENT[@]}" --force "$DB" >/dev/null 2>&1 || true
}

# Stop every process of the group (mariadb client, generator, sleep) and reap them, so that
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
	local down=0 conn_pid
	setup
	log "running on $HOST:$PORT (about 30 statements/s on one connection)"
	connection &
	conn_pid=$!
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
		# The connection ends when the client gave up (server restarted, connection lost):
		# start it again.
		if ! kill -0 "$conn_pid" 2>/dev/null; then
			connection &
			conn_pid=$!
		fi
	done
}

trap on_signal INT TERM HUP
main
