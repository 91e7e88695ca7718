#!/usr/bin/env bash
# tests/bench/decoder-cost.sh: `make bench-decoder`. Instructions per database operation of the
# kernel decoders, counted by callgrind while build/bench/decoder_cost replays a workload's
# traffic through them in userspace (tests/bench/decoder_cost.c). One callgrind process per
# workload; prints a table (total, decoder, shim, harness Ir per operation), writes JSON
# (tests/bench/results/decoder-<UTC timestamp>.json, or --out PATH) and, with --annotate W, the
# functions and the top source lines of W. Deterministic: the same tree gives the same counts.
# Method and reading of the figures: docs/decoder-cost.md.
set -eEuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${DECODER_COST_BIN:-$ROOT/build/bench/decoder_cost}
OPS=20000
CONNS=4
WORKLOADS=""	# empty: every workload the binary knows
OUT=""
ANNOTATE=""
TOP_LINES=30
CG_DIR=""	# callgrind output files (default: next to the binary)
# sources whose change changes the figures (recorded as modified or not in the JSON)
SOURCES=(bpf probes tests/lib tests/bench/decoder_cost.c)

usage()
{
	cat <<EOF
Usage: tests/bench/decoder-cost.sh [OPTIONS]
  --ops N            measured operations per workload [$OPS]
  --conns C          connections taking turns [$CONNS]
  --workloads LIST   comma-separated [all: \$BIN --list]
  --annotate W       also print W's functions and its top $TOP_LINES source lines
  --top N            source lines printed by --annotate [$TOP_LINES]
  --out PATH         result JSON [tests/bench/results/decoder-<UTC timestamp>.json]
  --bin PATH         the replay binary [$BIN] (make build/bench/decoder_cost)
  --cg-dir DIR       where the callgrind.out files go [directory of the binary/decoder-cost]
EOF
}

log() { printf 'decoder-cost: %s\n' "$*" >&2; }
# set -e ends the script at a failing command: say which (its first line), never silently
trap 'log "error: line $LINENO: \"${BASH_COMMAND%%$'"'\\n'"'*}\" failed (status $?)"' ERR
die() { log "error: $*"; exit 1; }

COMMAND_LINE="tests/bench/decoder-cost.sh${*:+ $*}"
while (($#)); do
	case $1 in
	--ops) OPS=$2; shift ;;
	--conns) CONNS=$2; shift ;;
	--workloads) WORKLOADS=${2//,/ }; shift ;;
	--annotate) ANNOTATE=$2; shift ;;
	--top) TOP_LINES=$2; shift ;;
	--out) OUT=$2; shift ;;
	--bin) BIN=$2; shift ;;
	--cg-dir) CG_DIR=$2; shift ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; die "unknown option '$1'" ;;
	esac
	shift
done
[[ $OPS =~ ^[1-9][0-9]*$ ]] || die "--ops '$OPS': not a positive number"
[[ $CONNS =~ ^[1-9][0-9]*$ ]] || die "--conns '$CONNS': not a positive number"
[[ $TOP_LINES =~ ^[1-9][0-9]*$ ]] || die "--top '$TOP_LINES': not a positive number"

command -v valgrind >/dev/null || die "valgrind not found (apt-get install -y valgrind)"
command -v callgrind_annotate >/dev/null || die "callgrind_annotate not found (package valgrind)"
PYTHON=$(command -v python3) || die "python3 not found"
[[ -x $BIN ]] || die "$BIN not built (make build/bench/decoder_cost, or make bench-decoder)"

KNOWN=$("$BIN" --list)
[[ -n $WORKLOADS ]] || WORKLOADS=$KNOWN
WORKLOADS=$(tr -s ' \n' '  ' <<<"$WORKLOADS" | sed 's/^ //; s/ $//') # one line, single spaces
if [[ -n $ANNOTATE && " $WORKLOADS " != *" $ANNOTATE "* ]]; then
	WORKLOADS="$WORKLOADS $ANNOTATE"
fi
for w in $WORKLOADS; do
	grep -qx -- "$w" <<<"$KNOWN" || die "unknown workload '$w' (known: $(paste -sd ' ' <<<"$KNOWN"))"
done
[[ -n $CG_DIR ]] || CG_DIR="$(dirname "$BIN")/decoder-cost"
mkdir -p "$CG_DIR"
[[ -n $OUT ]] || OUT="$ROOT/tests/bench/results/decoder-$(date -u +%Y%m%dT%H%M%SZ).json"
mkdir -p "$(dirname "$OUT")"

# ---- one callgrind process per workload ----
RUNS=()
for w in $WORKLOADS; do
	cg="$CG_DIR/callgrind.out.$w"
	log "$w: $OPS operations on $CONNS connections under callgrind"
	rm -f "$cg"
	# --collect-atstart=no: the program turns collection on around its replay loop only
	if ! valgrind --tool=callgrind --collect-atstart=no --dump-instr=no --dump-line=yes \
		--callgrind-out-file="$cg" "$BIN" --workload "$w" --ops "$OPS" --conns "$CONNS" \
		>"$cg.stdout" 2>"$cg.stderr"; then
		cat "$cg.stdout" "$cg.stderr" >&2
		die "$w: the replay failed its checks (above): its figures would be wrong"
	fi
	line=$(grep '^decoder_cost: workload=' "$cg.stdout") || die "$w: no result line in $cg.stdout"
	RUNS+=("$w|$cg|$line")
done

# ---- figures: parse the callgrind files, table, JSON, annotation ----
export ROOT OPS CONNS OUT ANNOTATE TOP_LINES COMMAND_LINE BIN
GIT_COMMIT=$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)
# files of the measured code that differ from the commit (the figures are the working tree's)
SOURCES_MODIFIED=$(git -C "$ROOT" status --porcelain -- "${SOURCES[@]}" 2>/dev/null |
	cut -c4- | tr '\n' ' ' || true)
VALGRIND_VERSION=$(valgrind --version)
# the compiler and flags that built the binary, from its debug information
COMPILER=$(readelf --debug-dump=info "$BIN" 2>/dev/null | sed -n 's/.*DW_AT_producer *: ([^)]*): //p' |
	sort -u | paste -sd '|' || true)
[[ -n $COMPILER ]] || COMPILER="unknown (no DW_AT_producer in $BIN)"
export GIT_COMMIT SOURCES_MODIFIED VALGRIND_VERSION COMPILER

"$PYTHON" - "${RUNS[@]}" <<'PY'
import json, os, re, sys, datetime

root = os.environ["ROOT"]

# Where an instruction's source line lives decides whose cost it is.
def category(path):
    p = path
    if p.startswith(root + "/"):
        p = p[len(root) + 1:]
    while p.startswith("./"):
        p = p[2:]
    if p == "tests/lib/bpf_shim.h":
        return "shim", p
    if re.match(r"(bpf|probes)/", p):
        return "decoder", p
    if p.startswith("tests/lib/pg_harness"):
        return "harness", p
    if p == "tests/bench/decoder_cost.c":
        return "loop", p
    return "other", p


def parse(path):
    """Ir by category and by (file, line), from a callgrind file written with --dump-line=yes:
    the self cost of every line of the replay binary, plus the inclusive cost of each call it
    makes into another object (libc's memcpy, malloc...) charged to the calling line."""
    names = {"ob": {}, "fl": {}, "fn": {}}
    kind_of = {"ob": "ob", "cob": "ob", "fl": "fl", "fi": "fl", "fe": "fl", "cfi": "fl",
               "cfl": "fl", "fn": "fn", "cfn": "fn"}
    main_obj = None
    ob = fl = cur_file = None
    cob = None
    pending_call = False
    line = 0
    summary = None
    by_cat, by_line = {}, {}

    def name(key, value):
        m = re.match(r"\((\d+)\)(?: (.*))?$", value)
        table = names[kind_of[key]]
        if not m:
            return value
        if m.group(2) is not None:
            table[m.group(1)] = m.group(2)
        return table.get(m.group(1), "?")

    def charge(cost):
        cat, rel = category(cur_file or "")
        by_cat[cat] = by_cat.get(cat, 0) + cost
        key = (rel, line)
        by_line[key] = by_line.get(key, 0) + cost

    with open(path) as f:
        for raw in f:
            s = raw.rstrip("\n")
            if not s or s.startswith("#"):
                continue
            c = s[0]
            if c.isdigit() or c in "+-*":
                pos, _, rest = s.partition(" ")
                if pos == "*":
                    pass
                elif pos[0] == "+":
                    line += int(pos[1:])
                elif pos[0] == "-":
                    line -= int(pos[1:])
                else:
                    line = int(pos)
                cost = int(rest.split()[0]) if rest.strip() else 0
                if pending_call:
                    pending_call = False
                    callee_ob = cob if cob is not None else ob
                    cob = None
                    # not from code without debug information: the startup code's call
                    # of __libc_start_main holds the whole run, main() included
                    if ob == main_obj and callee_ob != main_obj and cur_file != "???":
                        charge(cost)
                elif ob == main_obj:
                    charge(cost)
                continue
            key, _, value = s.partition("=")
            if key == "ob":
                ob = os.path.realpath(name("ob", value))
            elif key == "fl":
                fl = cur_file = name("fl", value)
            elif key in ("fi", "fe"):
                cur_file = name(key, value)
            elif key == "fn":
                name("fn", value)
                cur_file = fl
            elif key == "cob":
                cob = os.path.realpath(name("cob", value))
            elif key in ("cfi", "cfl", "cfn"):
                name(key, value)
            elif key == "calls":
                pending_call = True
            elif s.startswith("summary:") or s.startswith("totals:"):
                summary = summary or int(s.split(":", 1)[1].split()[0])
            elif s.startswith("cmd:"):
                main_obj = os.path.realpath(s.split(":", 1)[1].split()[0])
            elif ":" in s:
                continue  # header lines (version:, events:, positions:...)
    if summary is None:
        sys.exit("decoder-cost: no summary/totals line in " + path)
    by_cat["unattributed"] = summary - sum(by_cat.values())
    # every instruction collected is the replay binary's or a library's it called: what is
    # left over means this parser misread the file
    if abs(by_cat["unattributed"]) > summary / 1000:
        sys.exit("decoder-cost: %s: %d of %d Ir not attributed: parser out of step with the "
                 "callgrind format" % (path, by_cat["unattributed"], summary))
    return summary, by_cat, by_line


ops_arg = int(os.environ["OPS"])
results = []
parsed = {}
for entry in sys.argv[1:]:
    w, cg, resline = entry.split("|", 2)
    kv = dict(re.findall(r"(\w+)=([\w.-]+)", resline))
    ops = int(kv["ops"])
    total, cats, lines = parse(cg)
    parsed[w] = (total, cats, lines, ops, cg)
    dec = cats.get("decoder", 0)
    shim = cats.get("shim", 0)
    rest = total - dec - shim
    results.append({
        "workload": w,
        "ops": ops,
        "conns": int(kv["conns"]),
        "chunks": int(kv["chunks"]),
        "bytes": int(kv["bytes"]),
        "warmup_ops": int(kv["warmup_ops"]),
        "series": int(kv["series"]),
        "samples": int(kv["samples"]),
        "ir_total": total,
        "ir_by_part": {k: v for k, v in sorted(cats.items())},
        "ir_per_op": {
            "total": round(total / ops, 1),
            "decoder": round(dec / ops, 1),
            "shim": round(shim / ops, 1),
            "harness": round(rest / ops, 1),
        },
        "ir_per_chunk_decoder": round(dec / int(kv["chunks"]), 1),
        "callgrind_out": os.path.relpath(cg, root),
    })

# ---- table ----
hdr = ("workload", "ops", "Ir/op total", "Ir/op decoder (no shim)", "Ir/op shim",
       "Ir/op harness")
rows = [(r["workload"], str(r["ops"]), "%.1f" % r["ir_per_op"]["total"],
         "%.1f" % r["ir_per_op"]["decoder"], "%.1f" % r["ir_per_op"]["shim"],
         "%.1f" % r["ir_per_op"]["harness"]) for r in results]
width = [max(len(x[i]) for x in [hdr] + rows) for i in range(len(hdr))]
fmt = lambda x: "| " + " | ".join(
    (x[i].ljust(width[i]) if i == 0 else x[i].rjust(width[i])) for i in range(len(x))) + " |"
print(fmt(hdr))
print("|" + "|".join("-" * (w + 2) if i == 0 else "-" * (w + 1) + ":" for i, w in
                     enumerate(width)) + "|")
for x in rows:
    print(fmt(x))
print("(harness: the userspace stand-in for on_chunk() and the replay loop; decoder = "
      "bpf/ and probes/ source lines, shim = tests/lib/bpf_shim.h; libc calls charged to "
      "the line that makes them. docs/decoder-cost.md)")

# ---- JSON ----
doc = {
    "schema": "dbtap.decoder-cost/1",
    "finished": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    "command": os.environ["COMMAND_LINE"],
    "commit": os.environ["GIT_COMMIT"],
    "sources_modified": os.environ["SOURCES_MODIFIED"].split(),
    "valgrind": os.environ["VALGRIND_VERSION"],
    "compiler": os.environ["COMPILER"],
    "ops": ops_arg,
    "conns": int(os.environ["CONNS"]),
    "results": results,
}
with open(os.environ["OUT"], "w") as f:
    json.dump(doc, f, indent=1)
    f.write("\n")
out_rel = os.path.relpath(os.environ["OUT"], os.getcwd())
print("results: " + (os.environ["OUT"] if out_rel.startswith("..") else out_rel))

# ---- top source lines of one workload ----
w = os.environ.get("ANNOTATE")
if w:
    total, cats, lines, ops, cg = parsed[w]
    top = int(os.environ["TOP_LINES"])
    print()
    print("== %s: top %d source lines (self Ir, plus libc calls made from the line), "
          "per operation ==" % (w, top))
    cache = {}

    def text(rel, n):
        if rel not in cache:
            try:
                with open(os.path.join(root, rel)) as f:
                    cache[rel] = f.read().split("\n")
            except OSError:
                cache[rel] = []
        src = cache[rel]
        return src[n - 1].strip() if 0 < n <= len(src) else ""

    print("%8s %6s %6s  %-8s %s" % ("Ir/op", "%", "cum%", "part", "file:line  source"))
    cum = 0
    for (rel, n), cost in sorted(lines.items(), key=lambda kv: -kv[1])[:top]:
        cum += cost
        print("%8.1f %5.1f%% %5.1f%%  %-8s %s:%d  %s" % (
            cost / ops, 100.0 * cost / total, 100.0 * cum / total, category(rel)[0], rel, n,
            text(rel, n)[:90]))
PY

if [[ -n $ANNOTATE ]]; then
	echo
	echo "== $ANNOTATE: functions (callgrind_annotate --auto=no --threshold=99; inlined code" \
		"is listed under the file it comes from) =="
	(cd "$ROOT" && callgrind_annotate --auto=no --threshold=99 "$CG_DIR/callgrind.out.$ANNOTATE")
fi
