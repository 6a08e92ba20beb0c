#!/usr/bin/env bash
# Deterministic cost per proxied request, nginx next to lunagate (same backend, same requests):
#   (a) user-space instructions per request: the gateway runs under valgrind --tool=callgrind;
#       after a warm-up batch the counters are zeroed (callgrind_control -z), one batch of
#       $REQS requests runs, the counters are dumped (callgrind_control --dump) and the Ir totals of
#       the dump are divided by the number of 2xx answers. $BATCHES batches -> median and spread.
#   (b) syscalls per request: the gateway runs natively; strace -f -c attaches for one batch;
#       total syscalls / 2xx answers, plus the top syscalls per request.
#   (c) a short annotated sample: strace of 20 requests on ONE connection (raw/<gw>.sequence),
#       to read which calls make up one request.
# Load: h2load --h1 -n $REQS -c $CONNS (exact request count, keep-alive), on CPU $LOADGEN_CPU with
# the backend (build/lg-backend, 1 thread); the gateway is ONE process (nginx: master_process off,
# lunagate: workers: 1) on CPU $GW_CPU.
#
# Usage: bench/run_cost.sh [-n REQS] [-k BATCHES] [-c CONNS] [-C] [-S]
#   -n REQS     requests per batch (default 20000)    -k BATCHES  callgrind batches (default 3)
#   -c CONNS    keep-alive connections (default 50)   -C / -S     skip callgrind / skip strace
# Environment: BACKEND_PORT=18491 NGINX_PORT=18492 LUNAGATE_PORT=18493 GW_CPU=1 LOADGEN_CPU=0
#   GATEWAYS="nginx lunagate" NO_RESULTS=1 (do not touch bench/RESULTS.md)
# Goals (issue): lunagate <= 24,500 instructions and <= 4.2 syscalls per proxied request.
set -euo pipefail
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

REQS=20000; BATCHES=3; CONNS=50; DO_CG=1; DO_ST=1
while getopts "n:k:c:CSh" opt; do
  case $opt in
    n) REQS=$OPTARG;; k) BATCHES=$OPTARG;; c) CONNS=$OPTARG;; C) DO_CG=0;; S) DO_ST=0;;
    *) sed -n '2,22p' "$0"; exit 0;;
  esac
done
GOAL_IR=24500; GOAL_SC=4.2
BACKEND_PORT=${BACKEND_PORT:-18491}; NGINX_PORT=${NGINX_PORT:-18492}; LUNAGATE_PORT=${LUNAGATE_PORT:-18493}
GATEWAYS=${GATEWAYS:-nginx lunagate}
need nginx h2load valgrind callgrind_control strace taskset curl ss
[ -x "$LUNAGATE_BIN" ] || die "no $LUNAGATE_BIN"
[ -x "$BACKEND_BIN" ] || die "no $BACKEND_BIN"
check_ports_free "$BACKEND_PORT" "$NGINX_PORT" "$LUNAGATE_PORT"

TS=$(date +%Y%m%d-%H%M%S)
OUT="$BENCH_DIR/out/cost-$TS"; RUN="$OUT/run"; KEEP_RUN=1
mkdir -p "$OUT/raw" "$RUN"
snapshot_lunagate
log "output -> $OUT"
start_backend "$BACKEND_PORT"

declare -A GW_PORT=([nginx]=$NGINX_PORT [lunagate]=$LUNAGATE_PORT)
start_gw() {  # start_gw NAME [WRAPPER...] -> PIDS[gw]
  local name=$1; shift
  case $name in
    nginx)    nginx_cmd "$NGINX_PORT";       start_bg gw "$GW_CPU" "$@" "${NGINX_ARGS[@]}";;
    lunagate) lunagate_cmd "$LUNAGATE_PORT"; start_bg gw "$GW_CPU" "$@" "${LUNAGATE_ARGS[@]}";;
  esac
  wait_port "${GW_PORT[$name]}" 60 || { tail -20 "$RUN/gw.log" >&2; die "$name did not listen on ${GW_PORT[$name]}"; }
  [ "$(curl -s --max-time 30 "http://127.0.0.1:${GW_PORT[$name]}/")" = '{"ok":true}' ] || die "$name: wrong answer on /"
}
batch() {  # batch OUTFILE N PORT [CONNS] -> number of 2xx answers
  taskset -c "$LOADGEN_CPU" h2load --h1 -n "$2" -c "${4:-$CONNS}" "http://127.0.0.1:$3/" > "$1" 2>&1 || true
  awk '/^status codes:/{print $3+0}' "$1"
}

printf "gateway\tbatch\treqs_2xx\tIr\tIr_per_req\n" > "$OUT/callgrind.tsv"
printf "gateway\treqs_2xx\tsyscalls\tsyscalls_per_req\ttop_per_req\n" > "$OUT/strace.tsv"

# ------------------------------------------------------------------ (a) callgrind
callgrind_pass() {
  local name=$1 port=${GW_PORT[$1]} pid k ok ir before
  log "$name: starting under callgrind"
  start_gw "$name" valgrind --tool=callgrind --dump-instr=no --collect-jumps=no \
    --callgrind-out-file="$RUN/cg.$name.%p"
  pid=${PIDS[gw]}
  ok=$(batch "$OUT/raw/$name.cg.warmup" 2000 "$port")
  [ "${ok:-0}" -gt 0 ] || die "$name: warm-up under callgrind got no 2xx (see raw/$name.cg.warmup)"
  for k in $(seq 1 "$BATCHES"); do
    callgrind_control -z "$pid" >/dev/null 2>&1 || die "callgrind_control -z $pid failed"
    before=$(ls "$RUN"/cg."$name".* 2>/dev/null | sort)
    ok=$(batch "$OUT/raw/$name.cg.$k" "$REQS" "$port")
    callgrind_control --dump="batch$k" "$pid" >/dev/null 2>&1 || die "callgrind_control --dump $pid failed"
    # Ir of this dump: the "totals:" line of every file the dump wrote (one per thread if separated)
    ir=$(comm -13 <(echo "$before") <(ls "$RUN"/cg."$name".* | sort) | xargs -r awk '/^totals:/{s+=$2} END{print s+0}')
    printf "%s\t%s\t%s\t%s\t%s\n" "$name" "$k" "${ok:-0}" "$ir" \
      "$(awk -v i="$ir" -v r="${ok:-0}" 'BEGIN{ if (r>0 && i>0) printf "%.0f", i/r; else print "NA" }')" >> "$OUT/callgrind.tsv"
    log "$name batch $k: $(tail -1 "$OUT/callgrind.tsv" | awk -F'\t' '{printf "%s x 2xx, %s Ir, %s Ir/req", $3, $4, $5}')"
  done
  stop_proc gw
  # keep the last dump: callgrind_annotate raw/<name>.callgrind shows where the instructions go
  cp "$(ls -t "$RUN"/cg."$name".*.* | head -1)" "$OUT/raw/$name.callgrind"
}

# ------------------------------------------------------------------ (b) strace -c, (c) sequence
strace_pass() {
  local name=$1 port=${GW_PORT[$1]} pid spid ok
  start_gw "$name"
  pid=${PIDS[gw]}
  batch "$OUT/raw/$name.st.warmup" 2000 "$port" >/dev/null
  strace -f -c -q -o "$OUT/raw/$name.strace" -p "$pid" & spid=$!
  PIDS[strace]=$spid
  sleep 1  # attach to every thread
  ok=$(batch "$OUT/raw/$name.st" "$REQS" "$port")
  kill -INT "$spid"; wait "$spid" 2>/dev/null || true; unset "PIDS[strace]"
  awk -v n="$name" -v r="${ok:-0}" '
    $1 ~ /^[0-9.]+$/ && NF>=5 && $NF!="total" { c[$NF]=$4; e[$NF]=(NF==6)?$5:0; tot+=$4 }
    END { top=""
          for (k=0; k<6; k++) { best=""; bv=-1; for (s in c) if (c[s]+0>bv) { bv=c[s]+0; best=s }
            if (best=="") break
            top=top sprintf("%s%s %.2f", (k?", ":""), best, bv/r)
            if (e[best]/r >= 0.005) top=top sprintf(" (%.2f failed)", e[best]/r)
            delete c[best] }
          printf "%s\t%d\t%d\t%s\t%s\n", n, r, tot, (r>0)?sprintf("%.2f", tot/r):"NA", top }' \
    "$OUT/raw/$name.strace" >> "$OUT/strace.tsv"
  log "$name strace: $(tail -1 "$OUT/strace.tsv" | cut -f2-)"
  # (c) every call for 20 requests on one connection (after 5 to warm the connection up)
  strace -f -tt -q -o "$OUT/raw/$name.sequence" -p "$pid" & spid=$!
  PIDS[strace]=$spid
  sleep 1
  batch "$OUT/raw/$name.seq.h2load" 20 "$port" 1 >/dev/null
  kill -INT "$spid"; wait "$spid" 2>/dev/null || true; unset "PIDS[strace]"
  stop_proc gw
}

for gw in $GATEWAYS; do
  [ $DO_CG = 1 ] && callgrind_pass "$gw"
  [ $DO_ST = 1 ] && strace_pass "$gw"
done

# ------------------------------------------------------------------ report
cg_stats() {  # cg_stats NAME -> "median min max spread%"
  awk -F'\t' -v n="$1" 'NR>1 && $1==n && $5!="NA"{print $5}' "$OUT/callgrind.tsv" | sort -g | awk '
    {a[NR]=$1} END{ if (!NR) {print "NA NA NA NA"; exit}
    m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.0f %.0f %.0f %.2f\n", m, a[1], a[NR], 100*(a[NR]-a[1])/m }'
}
{
  echo "h2load --h1 -n $REQS -c $CONNS per batch (keep-alive; each batch opens its $CONNS connections), \`GET /\` answered 200 \`{\"ok\":true}\` by build/lg-backend; gateway = one process on CPU $GW_CPU."
  echo
  echo "| gateway | instructions/req (median) | [min, max], spread | syscalls/req | top syscalls per request |"
  echo "|---|---:|---|---:|---|"
  for gw in $GATEWAYS; do
    read -r med lo hi sp <<<"$(cg_stats "$gw")"
    st=$(awk -F'\t' -v n="$gw" 'NR>1 && $1==n{print $4 "\t" $5}' "$OUT/strace.tsv")
    printf "| %s | %s | [%s, %s], %s%% | %s | %s |\n" "$gw" "$(fmt_int "$med")" "$(fmt_int "$lo")" "$(fmt_int "$hi")" "$sp" \
      "$(echo "$st" | cut -f1)" "$(echo "$st" | cut -f2)"
  done
  lg_ir=$(cg_stats lunagate | cut -d' ' -f1); ng_ir=$(cg_stats nginx | cut -d' ' -f1)
  lg_sc=$(awk -F'\t' 'NR>1 && $1=="lunagate"{print $4}' "$OUT/strace.tsv"); ng_sc=$(awk -F'\t' 'NR>1 && $1=="nginx"{print $4}' "$OUT/strace.tsv")
  echo
  echo "lunagate / nginx: instructions $(ratio "$lg_ir" "$ng_ir"), syscalls $(ratio "${lg_sc:-NA}" "${ng_sc:-NA}")."
  awk -v i="${lg_ir:-NA}" -v s="${lg_sc:-NA}" -v gi="$GOAL_IR" -v gs="$GOAL_SC" 'BEGIN{
    printf "Goals for lunagate: instructions/req <= %s: %s; syscalls/req <= %s: %s.\n", gi,
      (i=="NA")?"not measured":((i+0<=gi)?"**met** (" i ")":"**not met** (" i ")"), gs,
      (s=="NA")?"not measured":((s+0<=gs)?"**met** (" s ")":"**not met** (" s ")") }'
  echo
  echo "Per batch (Ir/req): $(awk -F'\t' 'NR>1{printf "%s%s #%s %s", (NR>2)?"; ":"", $1, $2, $5}' "$OUT/callgrind.tsv")."
  echo "\`valgrind --version\`: $(valgrind --version), $(strace -V | head -1), h2load $(h2load --version | awk '{print $2}')."
} > "$OUT/cost.md"
{
  echo "## Deterministic cost per request (bench/run_cost.sh)"
  echo
  machine_facts
  echo "- raw outputs: bench/out/cost-$TS/ (not in git): callgrind.tsv, strace.tsv, raw/<gw>.strace, raw/<gw>.callgrind (last dump; \`callgrind_annotate\` it), raw/<gw>.sequence (every syscall of 20 requests on one connection)"
  echo
  cat "$OUT/cost.md"
} > "$OUT/summary.md"
cat "$OUT/summary.md"
if [ "${NO_RESULTS:-0}" != 1 ]; then
  results_update cost "$OUT/summary.md"
  log "refreshed the cost section of bench/RESULTS.md"
fi
log "done: $OUT"
