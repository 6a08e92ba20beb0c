#!/usr/bin/env bash
# Wall-clock benchmark: lunagate next to nginx as a plain reverse proxy, on loopback.
#
# Usage: bench/run.sh [all|wall|memory]          (default: all)
#   wall    rows "direct to backend", "nginx proxy", "lunagate proxy"; for each row
#           wrk -t1 -c$CONNS -d${DURATION}s --latency, $ROUNDS rounds alternating the rows
#           (direct, nginx, lunagate, direct, ...); median per row of req/s, p50, p99.
#   memory  RSS per idle keep-alive connection: $IDLE_CONNS connections, each after one
#           completed request, held idle; (VmRSS after - VmRSS before) / $IDLE_CONNS.
# Pinning: gateway (nginx or lunagate, one worker each) on CPU $GW_CPU; wrk, the idle client and
# the backend (build/lg-backend, one thread) on CPU $LOADGEN_CPU.
#
# Environment (defaults): DURATION=8 ROUNDS=3 CONNS=50 WARMUP=1 IDLE_CONNS=10000 IDLE_WAVE=50
#   NOISE_MAX=15 (foreign CPU % of one CPU during a wrk run above which it is retried, up to
#   MAX_TRIES=3 attempts, the least noisy kept) QUIET_MAX=10 QUIET_WAIT=60 (before each run, wait
#   up to QUIET_WAIT s for the machine's busy CPU to drop under QUIET_MAX % of one CPU) BACKEND_PORT=18481 NGINX_PORT=18482
#   LUNAGATE_PORT=18483 GW_CPU=1 LOADGEN_CPU=0 LUNAGATE_BIN=build/lunagate BACKEND_BIN=build/lg-backend
#   NO_RESULTS=1: do not touch bench/RESULTS.md.
# Output: bench/out/run-<timestamp>/ (raw wrk outputs, runs.tsv, summary.md, configs, logs) and a
# refreshed section in bench/RESULTS.md.
set -euo pipefail
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

MODE=${1:-all}
case $MODE in all|wall|memory) ;; -h|--help|*) sed -n '2,20p' "$0"; exit 0;; esac
DURATION=${DURATION:-8}; ROUNDS=${ROUNDS:-3}; CONNS=${CONNS:-50}; WARMUP=${WARMUP:-1}
IDLE_CONNS=${IDLE_CONNS:-10000}; IDLE_WAVE=${IDLE_WAVE:-50}
NOISE_MAX=${NOISE_MAX:-15}; MAX_TRIES=${MAX_TRIES:-3}
BACKEND_PORT=${BACKEND_PORT:-18481}; NGINX_PORT=${NGINX_PORT:-18482}; LUNAGATE_PORT=${LUNAGATE_PORT:-18483}
[ "$DURATION" -le 10 ] || die "DURATION must be at most 10 s"

need nginx wrk taskset curl python3 ss /usr/bin/time
[ -x "$LUNAGATE_BIN" ] || die "no $LUNAGATE_BIN (build it: cmake --build build --target lunagate)"
[ -x "$BACKEND_BIN" ] || die "no $BACKEND_BIN (build it: cmake --build build --target lg-backend)"
check_ports_free "$BACKEND_PORT" "$NGINX_PORT" "$LUNAGATE_PORT"

TS=$(date +%Y%m%d-%H%M%S)
OUT="$BENCH_DIR/out/run-$TS"; RUN="$OUT/run"; KEEP_RUN=1
mkdir -p "$OUT/raw" "$RUN"
snapshot_lunagate
# 10,000 idle connections need more than the default 1024 descriptors (gateways inherit this).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge $((IDLE_CONNS + 200)) ] || \
  [ "$MODE" = wall ] || die "ulimit -n is $(ulimit -n); need $((IDLE_CONNS + 200)) for IDLE_CONNS=$IDLE_CONNS"
log "output -> $OUT"

start_gateways() {
  nginx_cmd "$NGINX_PORT";       start_bg nginx "$GW_CPU" "${NGINX_ARGS[@]}"
  lunagate_cmd "$LUNAGATE_PORT"; start_bg lunagate "$GW_CPU" "${LUNAGATE_ARGS[@]}"
  wait_port "$NGINX_PORT" 10 || { cat "$RUN/nginx.log" "$RUN/nginx.error.log" >&2 2>/dev/null; die "nginx did not listen"; }
  wait_port "$LUNAGATE_PORT" 10 || { cat "$RUN/lunagate.log" >&2; die "lunagate did not listen"; }
  local p body
  for p in "$BACKEND_PORT" "$NGINX_PORT" "$LUNAGATE_PORT"; do  # sanity: same answer everywhere
    body=$(curl -s --max-time 5 "http://127.0.0.1:$p/")
    [ "$body" = '{"ok":true}' ] || die "127.0.0.1:$p/ answered '$body'"
  done
}
stop_gateways() { stop_proc nginx; stop_proc lunagate; }

start_backend "$BACKEND_PORT"
start_gateways

# ------------------------------------------------------------------ wall clock
ROWS=(direct nginx lunagate)
declare -A ROW_PORT=([direct]=$BACKEND_PORT [nginx]=$NGINX_PORT [lunagate]=$LUNAGATE_PORT)
declare -A ROW_LABEL=([direct]="direct to backend (no hop)" [nginx]="nginx proxy" [lunagate]="lunagate proxy")

run_wrk() {  # run_wrk OUTFILE SECONDS PORT ; wrk's own CPU (user sys seconds) -> OUTFILE.cpu
  /usr/bin/time -f "%U %S" -o "$1.cpu" taskset -c "$LOADGEN_CPU" \
    wrk -t1 -c"$CONNS" -d"$2"s --latency --timeout 5s "http://127.0.0.1:$3/" > "$1" 2>&1 || true
}
cpu_busy() { awk -v c="cpu$1" '$1==c{print $2+$3+$4+$7+$8}' /proc/stat; }  # busy ticks of one CPU
COLS="round row rps p50_us p99_us errors gw_cpu_pct gw_us_per_req be_us_per_req loadgen_cpu_busy_pct gw_cpu_busy_pct steal_pct noise_pct tries"
colno() { echo "$COLS" | tr ' ' '\n' | awk -v n="$1" '$0==n{print NR}'; }
measure() {  # measure ROUND ROW TRY -> the COLS fields from rps to noise_pct (noise last)
  local r=$1 row=$2 t=$3 f gwpid="" g0=0 g1=0 b0 b1 m0 m1 s0 s1 l0 l1 c0 c1 e0 e1 rps p50 p99 err tool
  f="$OUT/raw/r${r}_${row}_try$t.wrk"
  [ "$WARMUP" -gt 0 ] && run_wrk "$f.warmup" "$WARMUP" "${ROW_PORT[$row]}"
  [ "$row" != direct ] && gwpid=${PIDS[$row]}
  [ -n "$gwpid" ] && g0=$(proc_ticks "$gwpid")
  b0=$(proc_ticks "${PIDS[backend]}"); m0=$(busy_ticks); s0=$(steal_ticks)
  l0=$(cpu_busy "$LOADGEN_CPU"); c0=$(cpu_busy "$GW_CPU"); e0=$(date +%s.%N)
  run_wrk "$f" "$DURATION" "${ROW_PORT[$row]}"
  [ -n "$gwpid" ] && g1=$(proc_ticks "$gwpid")
  b1=$(proc_ticks "${PIDS[backend]}"); m1=$(busy_ticks); s1=$(steal_ticks)
  l1=$(cpu_busy "$LOADGEN_CPU"); c1=$(cpu_busy "$GW_CPU"); e1=$(date +%s.%N)
  rps=$(awk '/^Requests\/sec:/{print $2}' "$f"); rps=${rps:-0}
  p50=$(awk '$1=="50%"{print $2}' "$f" | to_us); p99=$(awk '$1=="99%"{print $2}' "$f" | to_us)
  err=$(awk '/Non-2xx/{n+=$NF} /Socket errors/{gsub(/,/,""); n+=$4+$6+$8+$10} END{print n+0}' "$f")
  tool=$(awk '{print $1+$2}' "$f.cpu" 2>/dev/null || echo 0)
  awk -v rps="$rps" -v p50="${p50:-NA}" -v p99="${p99:-NA}" -v err="$err" -v hz="$HZ" -v gw="$gwpid" \
      -v g="$((g1 - g0))" -v b="$((b1 - b0))" -v m="$((m1 - m0))" -v st="$((s1 - s0))" \
      -v l="$((l1 - l0))" -v c="$((c1 - c0))" -v tool="$tool" -v e0="$e0" -v e1="$e1" 'BEGIN{
    el=e1-e0; if (el<=0) el=1
    gcpu=g/hz; bcpu=b/hz; noise=m/hz-gcpu-bcpu-tool; if (noise<0) noise=0
    printf "%s %s %s %s %s %s %s %.1f %.1f %.1f %.1f\n", rps, p50, p99, err,
      (gw=="")?"NA":sprintf("%.1f", 100*gcpu/el), (gw==""||rps==0)?"NA":sprintf("%.2f", 1e6*gcpu/(rps*el)),
      (rps==0)?"NA":sprintf("%.2f", 1e6*bcpu/(rps*el)), 100*l/hz/el, 100*c/hz/el, 100*st/hz/el, 100*noise/el }'
}

wall() {
  local r row t line best bestnoise noise waited
  echo "$COLS" | tr ' ' '\t' > "$OUT/runs.tsv"
  for r in $(seq 1 "$ROUNDS"); do
    for row in "${ROWS[@]}"; do
      best=""; bestnoise=1e9
      for t in $(seq 1 "$MAX_TRIES"); do
        waited=$(wait_quiet)
        [ "$waited" -gt 0 ] && log "round $r $row: waited ${waited}s for the machine to go quiet"
        line=$(measure "$r" "$row" "$t")
        noise=${line##* }
        if awk -v a="$noise" -v b="$bestnoise" 'BEGIN{exit !(a<b)}'; then best=$line; bestnoise=$noise; fi
        awk -v a="$noise" -v m="$NOISE_MAX" 'BEGIN{exit !(a<=m)}' && break
        log "round $r $row: foreign CPU ${noise}% > ${NOISE_MAX}% (try $t/$MAX_TRIES)$([ "$t" -lt "$MAX_TRIES" ] && echo ", retrying" || echo ", keeping the least noisy try")"
      done
      echo "$r $row $best $t" | tr ' ' '\t' >> "$OUT/runs.tsv"   # t = tries made
      log "round $r $(echo "$best" | awk -v n="$row" -v lc="$LOADGEN_CPU" '{printf "%-9s %7.0f req/s  p50 %5sus  p99 %5sus  err %s  gw CPU %s%% %s us/req  backend %s us/req  CPU%s busy %s%%  steal %s%%  noise %s%%", n, $1, $2, $3, $4, $5, $6, $7, lc, $8, $10, $11}')"
    done
  done
  # medians per row
  local rps p50 p99 us gwp be lg
  declare -gA MED_RPS MED_P50 MED_P99 MED_US
  col() { awk -F'\t' -v n="$1" -v c="$(colno "$2")" 'NR>1 && $2==n && $c!="NA"{print $c}' "$OUT/runs.tsv"; }
  {
    echo "wrk -t1 -c$CONNS -d${DURATION}s --latency, $ROUNDS rounds alternating the rows; median per row over rounds (req/s of every round in the last column)."
    echo
    echo "| row | req/s | p50 | p99 | gateway CPU µs/req | gateway CPU % | backend CPU µs/req | CPU $LOADGEN_CPU (wrk + backend) busy % | req/s per round |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---|"
    for row in "${ROWS[@]}"; do
      rps=$(col "$row" rps | median); p50=$(col "$row" p50_us | median); p99=$(col "$row" p99_us | median)
      us=$(col "$row" gw_us_per_req | median); gwp=$(col "$row" gw_cpu_pct | median)
      be=$(col "$row" be_us_per_req | median); lg=$(col "$row" loadgen_cpu_busy_pct | median)
      MED_RPS[$row]=$rps; MED_P50[$row]=$p50; MED_P99[$row]=$p99; MED_US[$row]=$us
      printf "| %s | %s | %s µs | %s µs | %s | %s | %s | %s | %s |\n" "${ROW_LABEL[$row]}" "$(fmt_int "$rps")" "$(fmt_int "$p50")" \
        "$(fmt_int "$p99")" "$us" "$gwp" "$be" "$lg" "$(col "$row" rps | awk '{printf "%s%.0f", (NR>1)?", ":"", $1}')"
    done
    echo
    echo "lunagate / nginx: throughput **$(ratio "${MED_RPS[lunagate]}" "${MED_RPS[nginx]}")**, p50 $(ratio "${MED_P50[lunagate]}" "${MED_P50[nginx]}"), p99 **$(ratio "${MED_P99[lunagate]}" "${MED_P99[nginx]}")**, gateway CPU per request $(ratio "${MED_US[lunagate]}" "${MED_US[nginx]}") (throughput: higher is better for lunagate; latency and CPU: lower is better)."
    paired() {  # median over rounds of lunagate/nginx of one column (same round = same machine state)
      awk -F'\t' -v c="$(colno "$1")" 'NR>1 && $2=="nginx" {n[$1]=$c} NR>1 && $2=="lunagate" {l[$1]=$c}
        END { for (r in l) if ((r in n) && n[r]+0>0 && l[r]!="NA") printf "%.4f\n", l[r]/n[r] }' "$OUT/runs.tsv" | median
    }
    echo "Paired per round (median over rounds of lunagate/nginx from the same round, measured ~10 s apart, which cancels slow drifts of the machine): throughput **$(paired rps | awk '{printf "%.3f", $1}')**, p50 $(paired p50_us | awk '{printf "%.3f", $1}'), p99 **$(paired p99_us | awk '{printf "%.3f", $1}')**, gateway CPU per request $(paired gw_us_per_req | awk '{printf "%.3f", $1}'), backend CPU per request $(paired be_us_per_req | awk '{printf "%.3f", $1}')."
    local nc sc tc
    nc=$(colno noise_pct); sc=$(colno steal_pct); tc=$(colno tries)
    echo "Errors (non-2xx + socket errors) over all runs: $(awk -F'\t' -v c="$(colno errors)" 'NR>1{n+=$c} END{print n+0}' "$OUT/runs.tsv"). Retries for noise: $(awk -F'\t' -v c="$tc" 'NR>1{n+=$c-1} END{print n+0}' "$OUT/runs.tsv"). Kept runs with foreign CPU over ${NOISE_MAX}%: $(awk -F'\t' -v m="$NOISE_MAX" -v c="$nc" 'NR>1 && $c>m{printf "%s%s r%s (%s%%)", (k++?", ":""), $2, $1, $c} END{if(!k) printf "none"}' "$OUT/runs.tsv"); max steal $(awk -F'\t' -v c="$sc" 'NR>1 && $c>m{m=$c} END{printf "%.1f", m}' "$OUT/runs.tsv")%."
  } > "$OUT/wall.md"
}

# ------------------------------------------------------------------ idle keep-alive memory
memory_one() {  # memory_one NAME PORT -> one markdown table row
  local name=$1 port=$2 pid rss0 rss1 rss2 fds ready open
  pid=${PIDS[$name]}
  taskset -c "$LOADGEN_CPU" wrk -t1 -c"$IDLE_WAVE" -d1s "http://127.0.0.1:$port/" > "$OUT/raw/mem_$name.warmup" 2>&1 || true
  sleep 1; rss0=$(rss_kb "$pid")
  start_bg "idle_$name" "$LOADGEN_CPU" python3 "$BENCH_DIR/conf/idle_clients.py" "$port" "$IDLE_CONNS" "$IDLE_WAVE" 300
  ready=""
  for _ in $(seq 1500); do  # at most 150 s
    ready=$(grep -m1 '^ready' "$RUN/idle_$name.log" 2>/dev/null || true)
    [ -n "$ready" ] && break
    kill -0 "${PIDS[idle_$name]}" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$ready" ] || { cat "$RUN/idle_$name.log" >&2; die "idle client for $name did not get ready"; }
  open=$(echo "$ready" | awk '{print $2}')
  sleep 2; rss1=$(rss_kb "$pid"); fds=$(ls "/proc/$pid/fd" | wc -l)
  stop_proc "idle_$name"
  cp "$RUN/idle_$name.log" "$OUT/raw/mem_$name.client"
  sleep 2; rss2=$(rss_kb "$pid")
  echo "$name rss_before_kb=$rss0 rss_idle_kb=$rss1 rss_after_close_kb=$rss2 fds=$fds $(tr '\n' ' ' < "$OUT/raw/mem_$name.client")" >> "$OUT/memory.txt"
  awk -v n="${ROW_LABEL[$name]}" -v a="$rss0" -v b="$rss1" -v c="$rss2" -v k="$IDLE_CONNS" -v o="$open" \
      -v s="$(awk '/^still_open/{print $2}' "$OUT/raw/mem_$name.client")" 'BEGIN{
    printf "| %s | %.1f MiB | %.1f MiB | %.1f MiB | **%.0f B** (%.2f KiB) | %.1f MiB | %s / %s |\n",
      n, a/1024, b/1024, (b-a)/1024, (b-a)*1024/k, (b-a)/k, c/1024, o, s }'
}
memory() {
  # fresh gateways: nothing left over from the wall-clock runs
  stop_gateways; start_gateways
  : > "$OUT/memory.txt"
  {
    echo "$IDLE_CONNS keep-alive connections, each after one completed \`GET /\` (sent in waves of $IDLE_WAVE; the upstream pool was filled by a 1 s wrk -c$IDLE_WAVE warm-up before the first reading), then idle. Per connection = (VmRSS with them open − VmRSS before) / $IDLE_CONNS."
    echo
    echo "| gateway | RSS before | RSS with idle conns | delta | per connection | RSS after they close | opened / still open at the end |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    memory_one nginx "$NGINX_PORT"
    memory_one lunagate "$LUNAGATE_PORT"
  } > "$OUT/memory.md"
  local ng lg
  ng=$(awk '/^nginx/{split($2,a,"="); split($3,b,"="); print (b[2]-a[2])}' "$OUT/memory.txt")
  lg=$(awk '/^lunagate/{split($2,a,"="); split($3,b,"="); print (b[2]-a[2])}' "$OUT/memory.txt")
  echo >> "$OUT/memory.md"
  echo "lunagate / nginx memory per idle connection: **$(ratio "$lg" "$ng")**." >> "$OUT/memory.md"
}

[ "$MODE" = memory ] || wall
[ "$MODE" = wall ] || memory
stop_gateways

# ------------------------------------------------------------------ report
report() {  # report KEY TITLE BODY_FILE
  {
    echo "## $2"
    echo
    machine_facts
    echo "- raw outputs: bench/out/run-$TS/ (not in git)"
    echo
    cat "$3"
  } > "$OUT/$1.section.md"
  cat "$OUT/$1.section.md"; echo
  if [ "${NO_RESULTS:-0}" != 1 ]; then
    results_update "$1" "$OUT/$1.section.md"
    log "refreshed section '$2' of bench/RESULTS.md"
  fi
}
[ -f "$OUT/wall.md" ] && report run-wall "Wall clock: throughput and latency (bench/run.sh wall)" "$OUT/wall.md"
[ -f "$OUT/memory.md" ] && report run-memory "Memory per idle keep-alive connection (bench/run.sh memory)" "$OUT/memory.md"
log "done: $OUT"
