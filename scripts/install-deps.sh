#!/usr/bin/env bash
# Install every Debian 12 package that dbtap's build, run and tests need (what `make deps` runs).
# Fast no-op when everything is present: no apt-get update unless a package is missing.
set -euo pipefail

PACKAGES=(
	clang-19 llvm-19 libclang-rt-19-dev clang-format-19	# BPF objects, fuzzers, format
	libbpf-dev bpftool libelf-dev zlib1g-dev libyaml-dev	# loader and config
	pkg-config make gcc					# build
	libcmocka-dev libpq-dev libcjson-dev			# tests
	postgresql postgresql-contrib				# test and demo servers, pgbench
	util-linux iproute2 procps				# unshare, ss, ps
	bpftrace jq						# make bench: peer and results
	valgrind						# make bench-decoder: callgrind
	libcurl4-openssl-dev					# OTLP export (node+npm come with the machine)
	redis-server redis-tools libhiredis-dev			# Redis: server, benchmark, client
	mariadb-server mariadb-client libmariadb-dev sysbench	# MariaDB: server, benchmark, client
	libmongoc-dev libbson-dev libsnappy-dev libzstd-dev	# MongoDB client, OP_COMPRESSED
)

# installed PKG: true when dpkg knows PKG as installed (any architecture).
installed() {
	dpkg-query -W -f='${Status}\n' "$1" 2>/dev/null | grep -q '^install ok installed$'
}

missing=()
for pkg in "${PACKAGES[@]}"; do
	installed "$pkg" || missing+=("$pkg")
done

# Node.js and npm run the test-only OTLP receiver and MongoDB stand-in. Machines of this kind
# come with them (NodeSource's nodejs, which conflicts with Debian's npm package): install
# Debian's only when there is no node at all.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	installed nodejs || missing+=(nodejs)
	installed npm || missing+=(npm)
fi

if [ "${#missing[@]}" -eq 0 ]; then
	echo "install-deps: all ${#PACKAGES[@]} packages present"
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing ${missing[*]}; run as root to install them" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt_quiet() {
	local log
	log=$(mktemp)
	if ! "$@" </dev/null >"$log" 2>&1; then
		cat "$log" >&2
		rm -f "$log"
		echo "install-deps: failed: $*" >&2
		exit 1
	fi
	rm -f "$log"
}
apt_quiet apt-get update
apt_quiet apt-get install -y --no-install-recommends "${missing[@]}"
echo "install-deps: installed ${missing[*]}"
