#!/usr/bin/env bash
# The cost of route scripts (issue 3), next to nginx + LuaJIT running the same policy.
# Rows (each a single process on CPU $GW_CPU, same backend, byte-identical requests):
#   plain     lunagate, no script                     (bench/conf/lunagate_scripts.yaml, scripts: [])
#   trivial   lunagate + an empty access handler      (bench/conf/scripts/trivial.lua)
#   policy    lunagate + the bench policy             (bench/conf/scripts/bench-policy.lua)
#   nginx_lua nginx + ngx_http_lua_module, same policy (bench/conf/nginx_lua_policy.conf, conf/lua/)
# The bench policy: API key in header `apikey` (key-0001..key-1000 -> consumer-N, huge limit;
# key-limited -> consumer-limited, 1 req/s, burst 1) -> upstream gets X-Consumer-ID and loses
# X-Remove-Me; a missing or unknown key -> 401; key-limited -> 429 within 3 requests.
# Every request of every row carries `apikey: key-0042` and `X-Remove-Me: x`.
#
# Steps: (0) functional check of every row (policy rows: the policy above, seen through
# lg-backend's /echo); (a) user-space instructions per request: callgrind, h2load --h1 -n REQS
# -c CONNS, BATCHES batches after a 2,000-request warm-up, median; (b) syscalls per request:
# strace -f -c, one batch; (c) wall clock: wrk -t1 -c$CONNS -d${DURATION}s --latency, ROUNDS rounds
# alternating the rows, median req/s, p50, p99, gateway CPU per request.
#
# Usage: bench/run_scripts.sh [-n REQS] [-k BATCHES] [-c CONNS] [-C] [-S] [-W]
#   -n REQS requests per batch (20000)  -k BATCHES callgrind batches (3)  -c CONNS connections (50)
#   -C / -S / -W  skip callgrind / strace / wall clock
# Environment: DURATION=8 ROUNDS=3 WARMUP=1 NOISE_MAX=15 MAX_TRIES=3 QUIET_MAX=10 QUIET_WAIT=60
#   BACKEND_PORT=18501 PLAIN_PORT=18502 TRIVIAL_PORT=18503 POLICY_PORT=18504 NGINX_LUA_PORT=18505
#   ROWS="plain trivial policy nginx_lua" NGINX_MODDIR=/usr/lib/nginx/modules GW_CPU=1 LOADGEN_CPU=0
#   NO_RESULTS=1 (do not touch bench/RESULTS.md)
# Goals (issue 3): trivial script < 5% over plain (instructions and throughput); policy
# <= 32,000 instructions/req, >= 1.2x nginx+Lua's req/s, p99 no worse than nginx+Lua's.
set -euo pipefail
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

REQS=20000; BATCHES=3; CONNS=50; DO_CG=1; DO_ST=1; DO_WALL=1
while getopts "n:k:c:CSWh" opt; do
  case $opt in
    n) REQS=$OPTARG;; k) BATCHES=$OPTARG;; c) CONNS=$OPTARG;; C) DO_CG=0;; S) DO_ST=0;; W) DO_WALL=0;;
    *) sed -n '2,28p' "$0"; exit 0;;
  esac
done
DURATION=${DURATION:-8}; ROUNDS=${ROUNDS:-3}; WARMUP=${WARMUP:-1}
NOISE_MAX=${NOISE_MAX:-15}; MAX_TRIES=${MAX_TRIES:-3}
[ "$DURATION" -le 10 ] || die "DURATION must be at most 10 s"
GOAL_TRIVIAL_PCT=5; GOAL_POLICY_IR=32000; GOAL_POLICY_RPS_X=1.2; ANCHOR_NGINX_LUA_IR=31936
BACKEND_PORT=${BACKEND_PORT:-18501}
MODDIR=${NGINX_MODDIR:-/usr/lib/nginx/modules}
read -r -a ROWS <<< "${ROWS:-plain trivial policy nginx_lua}"
declare -A ROW_PORT=([plain]=${PLAIN_PORT:-18502} [trivial]=${TRIVIAL_PORT:-18503}
                     [policy]=${POLICY_PORT:-18504} [nginx_lua]=${NGINX_LUA_PORT:-18505})
declare -A ROW_LABEL=([plain]="lunagate plain proxy (no script)" [trivial]="lunagate + trivial access script"
                      [policy]="lunagate + bench policy script" [nginx_lua]="nginx + LuaJIT bench policy")
declare -A ROW_SCRIPTS=([plain]="[]" [trivial]="[ trivial ]" [policy]="[ bench-policy ]")
declare -A ROW_CHECK=([plain]=plain [trivial]=plain [policy]=policy [nginx_lua]=policy)
HDRS=(-H "apikey: key-0042" -H "X-Remove-Me: x")

need nginx h2load wrk valgrind callgrind_control callgrind_annotate strace taskset curl ss python3 /usr/bin/time
[ -x "$LUNAGATE_BIN" ] || die "no $LUNAGATE_BIN (build it: flock /tmp/lg-build.lock cmake --build build -j2 --target lunagate lg-backend)"
[ -x "$BACKEND_BIN" ] || die "no $BACKEND_BIN"
for m in ndk_http_module.so ngx_http_lua_module.so; do
  [ -f "$MODDIR/$m" ] || die "no $MODDIR/$m: apt-get install -y libnginx-mod-http-lua lua-resty-core"
done
[ -f /usr/share/lua/5.1/resty/core.lua ] || die "no resty.core: apt-get install -y lua-resty-core"
check_ports_free "$BACKEND_PORT" "${ROW_PORT[@]}"

TS=$(date +%Y%m%d-%H%M%S)
OUT="$BENCH_DIR/out/scripts-$TS"; RUN="$OUT/run"; KEEP_RUN=1
mkdir -p "$OUT/raw" "$RUN/nginx_tmp"
snapshot_lunagate
# private copies of the scripts and the nginx Lua modules: editing bench/conf during a run changes nothing
cp -r "$BENCH_DIR/conf/scripts" "$RUN/scripts"
cp -r "$BENCH_DIR/conf/lua" "$RUN/lua"
log "output -> $OUT"
start_backend "$BACKEND_PORT"

# ------------------------------------------------------------------ rows
row_cmd() {  # row_cmd ROW -> ROW_ARGS (array): the foreground command of ROW
  local row=$1 cfg
  PORT_R=${ROW_PORT[$row]}
  case $row in
    nginx_lua)
      cfg="$RUN/nginx_lua_policy.conf"
      render "$BENCH_DIR/conf/nginx_lua_policy.conf" "$cfg.tmp"
      sed "s|{MODDIR}|$MODDIR|g" "$cfg.tmp" > "$cfg"; rm -f "$cfg.tmp"
      ROW_ARGS=(nginx -p "$RUN/" -e "$RUN/nginx_lua.startup.log" -c "$cfg");;
    *)
      cfg="$RUN/lunagate_$row.yaml"
      render "$BENCH_DIR/conf/lunagate_scripts.yaml" "$cfg.tmp"
      sed "s|{SCRIPTS}|${ROW_SCRIPTS[$row]}|g" "$cfg.tmp" > "$cfg"; rm -f "$cfg.tmp"
      "$LUNAGATE_BIN" check -c "$cfg" > "$RUN/check_$row.log" 2>&1 || { cat "$RUN/check_$row.log" >&2; die "$row: lunagate check rejected $cfg"; }
      ROW_ARGS=("$LUNAGATE_BIN" run -c "$cfg");;
  esac
}
start_row() {  # start_row ROW [WRAPPER...] -> PIDS[ROW]
  local row=$1; shift
  row_cmd "$row"
  start_bg "$row" "$GW_CPU" "$@" "${ROW_ARGS[@]}"
  wait_port "${ROW_PORT[$row]}" 90 || { tail -20 "$RUN/$row.log" "$RUN"/nginx_lua*.log >&2 2>/dev/null; die "$row did not listen on ${ROW_PORT[$row]}"; }
  local body
  body=$(curl -s --max-time 30 "${HDRS[@]}" "http://127.0.0.1:${ROW_PORT[$row]}/")
  [ "$body" = '{"ok":true}' ] || die "$row: GET / answered '$body'"
}

# ------------------------------------------------------------------ (0) functional checks
CHECKS="$OUT/checks.txt"; : > "$CHECKS"
check_row() {  # check_row ROW : fails the run if the row does not implement what it should
  local row=$1 port=${ROW_PORT[$1]} url code codes="" retry="" i
  url="http://127.0.0.1:$port"
  curl -s --max-time 5 "${HDRS[@]}" "$url/echo" > "$RUN/echo_$row.json" || die "$row: /echo failed"
  python3 - "$RUN/echo_$row.json" "${ROW_CHECK[$row]}" "$row" >> "$CHECKS" <<'PY' || die "$row: functional check failed (see $CHECKS)"
import json, sys
path, kind, row = sys.argv[1:4]
hdrs = {}
for k, v in json.load(open(path))["headers"]:
    hdrs.setdefault(k.lower(), []).append(v)
cid, rm = hdrs.get("x-consumer-id"), hdrs.get("x-remove-me")
if kind == "policy":
    ok = cid == ["consumer-42"] and rm is None
    print(f"{row}: apikey key-0042 -> upstream X-Consumer-ID={cid} X-Remove-Me={rm}: {'ok' if ok else 'FAIL'}")
else:
    ok = cid is None and rm == ["x"]
    print(f"{row}: upstream sees the request unchanged (X-Consumer-ID={cid} X-Remove-Me={rm}): {'ok' if ok else 'FAIL'}")
sys.exit(0 if ok else 1)
PY
  [ "${ROW_CHECK[$row]}" = policy ] || return 0
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -H "apikey: key-9999" -H "X-Remove-Me: x" "$url/")
  echo "$row: bad key -> $code" >> "$CHECKS"; [ "$code" = 401 ] || die "$row: bad key answered $code, not 401"
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -H "X-Remove-Me: x" "$url/")
  echo "$row: no key -> $code" >> "$CHECKS"; [ "$code" = 401 ] || die "$row: missing key answered $code, not 401"
  for i in 1 2 3; do
    curl -s -D "$RUN/limited_$row.$i.h" -o /dev/null --max-time 5 -H "apikey: key-limited" -H "X-Remove-Me: x" "$url/" || true
    code=$(awk 'NR==1{print $2}' "$RUN/limited_$row.$i.h")
    codes="$codes${codes:+ }$code"
    if [ "$code" = 429 ]; then retry=$(awk -F': *' 'tolower($1)=="retry-after"{gsub(/\r/,"",$2); print $2}' "$RUN/limited_$row.$i.h"); break; fi
  done
  echo "$row: key-limited x3 -> $codes (Retry-After: ${retry:-none})" >> "$CHECKS"
  [[ " $codes " == *" 429 "* ]] || die "$row: key-limited got no 429 in 3 requests ($codes)"
  [ -n "$retry" ] || die "$row: the 429 has no Retry-After"
}

# ------------------------------------------------------------------ (c) wall clock
measure() {  # measure ROUND ROW TRY -> "rps p50_us p99_us errors gw_us_per_req gw_cpu_pct gw_user_us gw_sys_us noise_pct"
  local r=$1 row=$2 t=$3 f pid g0 g1 b0 b1 m0 m1 e0 e1 rps p50 p99 err tool u0 s0 u1 s1
  f="$OUT/raw/wall_r${r}_${row}_try$t.wrk"; pid=${PIDS[$row]}
  [ "$WARMUP" -gt 0 ] && run_wrk "$f.warmup" "$WARMUP" "${ROW_PORT[$row]}"
  g0=$(proc_ticks "$pid"); b0=$(proc_ticks "${PIDS[backend]}"); m0=$(busy_ticks); e0=$(date +%s.%N)
  read -r u0 s0 < <(proc_ticks_us "$pid")
  run_wrk "$f" "$DURATION" "${ROW_PORT[$row]}"
  g1=$(proc_ticks "$pid"); b1=$(proc_ticks "${PIDS[backend]}"); m1=$(busy_ticks); e1=$(date +%s.%N)
  read -r u1 s1 < <(proc_ticks_us "$pid")
  rps=$(awk '/^Requests\/sec:/{print $2}' "$f"); rps=${rps:-0}
  p50=$(awk '$1=="50%"{print $2}' "$f" | to_us); p99=$(awk '$1=="99%"{print $2}' "$f" | to_us)
  err=$(awk '/Non-2xx/{n+=$NF} /Socket errors/{gsub(/,/,""); n+=$4+$6+$8+$10} END{print n+0}' "$f")
  tool=$(awk '{print $1+$2}' "$f.cpu" 2>/dev/null || echo 0)
  awk -v rps="$rps" -v p50="${p50:-NA}" -v p99="${p99:-NA}" -v err="$err" -v hz="$HZ" \
      -v g="$((g1 - g0))" -v b="$((b1 - b0))" -v m="$((m1 - m0))" -v tool="$tool" -v e0="$e0" -v e1="$e1" \
      -v u="$((u1 - u0))" -v sy="$((s1 - s0))" 'BEGIN{
    el=e1-e0; if (el<=0) el=1
    noise=m/hz-g/hz-b/hz-tool; if (noise<0) noise=0
    printf "%s %s %s %s %s %.1f %s %s %.1f\n", rps, p50, p99, err, (rps>0)?sprintf("%.2f", 1e6*g/hz/(rps*el)):"NA", 100*g/hz/el,
      (rps>0)?sprintf("%.2f", 1e6*u/hz/(rps*el)):"NA", (rps>0)?sprintf("%.2f", 1e6*sy/hz/(rps*el)):"NA", 100*noise/el }'
}
WALL_EXTRA=(gw_user_us gw_sys_us)  # measure's own two columns (lib.sh wall)

# ------------------------------------------------------------------ (a) callgrind, (b) strace
# callgrind_pass, strace_pass: lib.sh

# ------------------------------------------------------------------ run
log "functional checks"
for row in "${ROWS[@]}"; do start_row "$row"; check_row "$row"; done
cat "$CHECKS" >&2
if [ $DO_WALL = 1 ]; then
  # let the key-limited bucket and the checks' connections settle; every row stays up for all rounds
  wall
fi
for row in "${ROWS[@]}"; do stop_proc "$row"; done

printf "row\tbatch\treqs_2xx\tIr\tIr_per_req\n" > "$OUT/callgrind.tsv"
printf "row\treqs_2xx\tsyscalls\tsyscalls_per_req\ttop_per_req\n" > "$OUT/strace.tsv"
for row in "${ROWS[@]}"; do
  [ $DO_CG = 1 ] && callgrind_pass "$row"
  [ $DO_ST = 1 ] && strace_pass "$row"
done

# ------------------------------------------------------------------ report
# cg_spread, sc_per, sc_top, annotate, top_self, delta_self: lib.sh

declare -A IR RPS P50 P99 US GWP USR SYS
for row in plain trivial policy nginx_lua; do IR[$row]=NA; RPS[$row]=NA; P50[$row]=NA; P99[$row]=NA; US[$row]=NA; GWP[$row]=NA; done
for row in "${ROWS[@]}"; do
  IR[$row]=$(cg_med "$row")
  if [ $DO_WALL = 1 ]; then
    RPS[$row]=$(wcol "$row" rps | median); P50[$row]=$(wcol "$row" p50_us | median)
    P99[$row]=$(wcol "$row" p99_us | median); US[$row]=$(wcol "$row" gw_us_per_req | median); GWP[$row]=$(wcol "$row" gw_cpu_pct | median)
    USR[$row]=$(wcol "$row" gw_user_us | median); SYS[$row]=$(wcol "$row" gw_sys_us | median)
  fi
done
pct() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a=="NA" || b=="NA" || b+0==0) print "NA"; else printf "%+.1f%%", 100*(a/b-1) }'; }
{
  echo "Every request: \`GET /\` with \`apikey: key-0042\` and \`X-Remove-Me: x\` (all rows alike), answered 200 \`{\"ok\":true}\` by build/lg-backend. Instructions: callgrind, h2load --h1 -n $REQS -c $CONNS, median of $BATCHES batches (after a 2,000-request warm-up). Syscalls: strace -f -c, one batch. Wall clock: wrk -t1 -c$CONNS -d${DURATION}s --latency, $ROUNDS rounds alternating the rows, median."
  echo
  echo "Functional checks (before any load):"
  echo
  sed 's/^/- /' "$CHECKS"
  echo
  echo "| row | instructions/req | spread | syscalls/req | req/s | p50 | p99 | gateway CPU µs/req | gateway CPU % | req/s per round |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
  for row in "${ROWS[@]}"; do
    printf "| %s | %s | %s | %s | %s | %s µs | %s µs | %s | %s | %s |\n" "${ROW_LABEL[$row]}" "$(fmt_int "${IR[$row]}")" \
      "$(cg_spread "$row")" "$(sc_per "$row")" "$(fmt_int "${RPS[$row]}")" "$(fmt_int "${P50[$row]}")" "$(fmt_int "${P99[$row]}")" \
      "${US[$row]}" "${GWP[$row]}" "$([ $DO_WALL = 1 ] && wcol "$row" rps | awk '{printf "%s%.0f", (NR>1)?", ":"", $1}')"
  done
  echo
  echo "Top syscalls per request: $(for row in "${ROWS[@]}"; do printf '%s: %s; ' "$row" "$(sc_top "$row")"; done | sed 's/; $//')."
  echo
  echo "Ratios (medians; paired = median over rounds of the ratio within one round):"
  echo
  echo "- trivial / plain: instructions $(ratio "${IR[trivial]}" "${IR[plain]}") ($(pct "${IR[trivial]}" "${IR[plain]}")), throughput $(ratio "${RPS[trivial]}" "${RPS[plain]}") (paired $(paired rps trivial plain)), p99 $(ratio "${P99[trivial]}" "${P99[plain]}"), gateway CPU/req $(ratio "${US[trivial]}" "${US[plain]}")"
  # The trivial script's cost as a share of the whole per-request CPU (user + kernel): its added
  # instructions at the plain row's user-space rate (user µs per instruction), over the plain
  # row's total CPU per request; and the same from the measured user CPU alone.
  awk -v it="${IR[trivial]}" -v ip="${IR[plain]}" -v up="${USR[plain]:-NA}" -v sp="${SYS[plain]:-NA}" -v ut="${USR[trivial]:-NA}" -v tp="${US[plain]:-NA}" 'BEGIN{
    if (it=="NA"||ip=="NA"||up=="NA"||tp=="NA"||ip+0==0||tp+0==0) exit
    est=(it-ip)*up/ip
    printf "- trivial / plain, whole CPU per request (user + kernel): plain %.2f µs = user %.2f + kernel %.2f; the trivial script'"'"'s +%d instructions at plain'"'"'s user rate = +%.2f µs = **%+.1f%%** of plain'"'"'s whole CPU per request (measured user CPU: trivial %s µs, %+.1f%%)\n", tp, up, sp, it-ip, est, 100*est/tp, ut, (ut=="NA")?0:100*(ut-up)/tp }'
  echo "- policy / plain: instructions $(ratio "${IR[policy]}" "${IR[plain]}") (+$(fmt_int "$(awk -v a="${IR[policy]}" -v b="${IR[plain]}" 'BEGIN{print a-b}')") per request), throughput $(ratio "${RPS[policy]}" "${RPS[plain]}")"
  echo "- lunagate policy / nginx+Lua policy: instructions $(ratio "${IR[policy]}" "${IR[nginx_lua]}"), syscalls $(ratio "$(sc_per policy)" "$(sc_per nginx_lua)"), throughput **$(ratio "${RPS[policy]}" "${RPS[nginx_lua]}")** (paired $(paired rps policy nginx_lua)), p50 $(ratio "${P50[policy]}" "${P50[nginx_lua]}"), p99 **$(ratio "${P99[policy]}" "${P99[nginx_lua]}")** (paired $(paired p99_us policy nginx_lua)), gateway CPU/req $(ratio "${US[policy]}" "${US[nginx_lua]}")"
  echo
  echo "Goals (issue 3):"
  echo
  awk -v t="${IR[trivial]}" -v p="${IR[plain]}" -v rt="${RPS[trivial]}" -v rp="${RPS[plain]}" -v g="$GOAL_TRIVIAL_PCT" \
      -v up="${USR[plain]:-NA}" -v tp="${US[plain]:-NA}" 'BEGIN{
    if (t=="NA"||p=="NA") ti="not measured"; else { d=100*(t/p-1); ti=sprintf("%s (%+.1f%%)", (d<g)?"**met**":"**not met**", d) }
    if (rt=="NA"||rp=="NA") tr="not measured"; else { d=100*(1-rt/rp); tr=sprintf("%s (%.1f%% fewer req/s)", (d<g)?"**met**":"**not met**", d) }
    if (t=="NA"||p=="NA"||up=="NA"||tp=="NA"||tp+0==0) wc="not measured"; else { d=100*(t-p)*up/p/tp; wc=sprintf("%s (%+.1f%%)", (d<g)?"**met**":"**not met**", d) }
    printf "- trivial script costs under %s%% of plain proxying: user-space instructions %s; throughput %s; whole CPU per request (user + kernel) %s\n", g, ti, tr, wc }'
  awk -v i="${IR[policy]}" -v g="$GOAL_POLICY_IR" -v a="$ANCHOR_NGINX_LUA_IR" -v n="${IR[nginx_lua]}" 'BEGIN{
    if (i=="NA") { print "- policy <= " g " instructions/req: not measured"; exit }
    printf "- policy <= %s instructions/req: %s (%s; %s; nginx+LuaJIT here: %s, shared anchors: %s)\n", g, (i+0<=g)?"**met**":"**not met**",
      i, (i+0<=g)?sprintf("%.0f under", g-i):sprintf("%.0f over, %+.1f%%", i-g, 100*(i/g-1)), n, a }'
  awk -v a="${RPS[policy]}" -v b="${RPS[nginx_lua]}" -v x="$GOAL_POLICY_RPS_X" -v pa="${P99[policy]}" -v pb="${P99[nginx_lua]}" 'BEGIN{
    if (a=="NA"||b=="NA") { print "- policy throughput and p99 vs nginx+Lua: not measured"; exit }
    r=a/b; printf "- policy >= %sx nginx+Lua throughput: %s (%.3fx%s)\n", x, (r>=x)?"**met**":"**not met**", r, (r>=x)?"":sprintf(", %.1f%% short of %sx", 100*(1-r/x), x)
    q=pa/pb; printf "- policy p99 no worse than nginx+Lua: %s (%s µs vs %s µs, %.3fx)\n", (q<=1)?"**met**":"**not met**", pa, pb, q }'
  if [ -f "$OUT/raw/policy.callgrind" ]; then
    echo
    echo "Where the policy row's instructions go (\`callgrind_annotate --inclusive=no\`, last batch, self Ir per request, top 25):"
    echo
    echo "| Ir/req | share | function |"
    echo "|---:|---:|---|"
    top_self policy 25
    if [ -f "$OUT/raw/plain.callgrind" ]; then
      echo
      echo "What the policy script adds over the plain proxy (self Ir per request, policy − plain, top 20):"
      echo
      echo "| added Ir/req | policy | plain | function |"
      echo "|---:|---:|---:|---|"
      delta_self policy plain 20
    fi
    if [ -f "$OUT/raw/trivial.callgrind" ] && [ -f "$OUT/raw/plain.callgrind" ]; then
      echo
      echo "What the trivial script adds over the plain proxy (top 12):"
      echo
      echo "| added Ir/req | trivial | plain | function |"
      echo "|---:|---:|---:|---|"
      delta_self trivial plain 12
    fi
  fi
  echo
  echo "Per batch (Ir/req): $(awk -F'\t' 'NR>1{printf "%s%s #%s %s", (NR>2)?"; ":"", $1, $2, $5}' "$OUT/callgrind.tsv")."
  [ $DO_WALL = 1 ] && echo "Wall-clock errors (non-2xx + socket errors) over all runs: $(awk -F'\t' 'NR>1{n+=$6} END{print n+0}' "$OUT/wall.tsv"); retries for noise: $(awk -F'\t' 'NR>1{n+=$12-1} END{print n+0}' "$OUT/wall.tsv"); kept runs with foreign CPU over ${NOISE_MAX}%: $(awk -F'\t' -v m="$NOISE_MAX" 'NR>1 && $11>m{printf "%s%s r%s (%s%%)", (k++?", ":""), $2, $1, $11} END{if(!k) printf "none"}' "$OUT/wall.tsv")."
  echo "\`valgrind --version\`: $(valgrind --version), $(strace -V | sed -n 1p), h2load $(h2load --version | awk '{print $2}'), $(dpkg-query -W -f '${Package} ${Version}' libnginx-mod-http-lua 2>/dev/null), $(dpkg-query -W -f '${Package} ${Version}' libluajit2-5.1-2 2>/dev/null || true)."
} > "$OUT/scripts.md"
{
  echo "## Route scripts: cost next to nginx + LuaJIT (bench/run_scripts.sh)"
  echo
  machine_facts
  echo "- raw outputs: bench/out/scripts-$TS/ (not in git): callgrind.tsv, strace.tsv, wall.tsv, checks.txt, raw/<row>.callgrind (last dump; \`callgrind_annotate --inclusive=no\` it)"
  echo
  cat "$OUT/scripts.md"
} > "$OUT/summary.md"
cat "$OUT/summary.md"
if [ "${NO_RESULTS:-0}" != 1 ]; then
  results_update scripts "$OUT/summary.md"
  log "refreshed the scripts section of bench/RESULTS.md"
fi
log "done: $OUT"
