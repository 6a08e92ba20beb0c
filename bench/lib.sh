# shellcheck shell=bash disable=SC2034
# Helpers shared by bench/run.sh, bench/run_cost.sh and bench/run_micro.sh (sourced, not run).
#
# Conventions
#   - Everything listens on 127.0.0.1 only.
#   - Every process a script starts is recorded in PIDS[name]; cleanup (EXIT trap) stops exactly
#     those PIDs (and their children), nothing found by name.
#   - Scratch files go to $RUN (bench/out/run-<ts>, removed at the end); kept outputs to $OUT.

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT_DIR="$(cd "$BENCH_DIR/.." && pwd)"
LUNAGATE_BIN=${LUNAGATE_BIN:-$ROOT_DIR/build/lunagate}
BACKEND_BIN=${BACKEND_BIN:-$ROOT_DIR/build/lg-backend}
GW_CPU=${GW_CPU:-1}             # the gateway under test
LOADGEN_CPU=${LOADGEN_CPU:-0}   # wrk / h2load and the backend
HZ=$(getconf CLK_TCK)

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
die() { log "error: $*"; exit 1; }

need() {  # need CMD... : fail early with the apt-get line that provides it
  local c
  for c in "$@"; do
    command -v "$c" >/dev/null 2>&1 && continue
    case $c in
      h2load) die "missing h2load: apt-get install -y nghttp2-client";;
      callgrind_control) die "missing callgrind_control: apt-get install -y valgrind";;
      *) die "missing $c: apt-get install -y $c";;
    esac
  done
}

# ------------------------------------------------------------------ processes (by PID only)
declare -A PIDS=()
start_bg() {  # start_bg NAME CPU CMD... ; CMD must stay in the foreground; log in $RUN/NAME.log
  local name=$1 cpu=$2; shift 2
  taskset -c "$cpu" "$@" >>"$RUN/$name.log" 2>&1 &
  PIDS[$name]=$!
}
children_of() { local p; for p in $(ps -o pid= --ppid "$1" 2>/dev/null); do echo "$p"; children_of "$p"; done; }
stop_proc() {  # stop_proc NAME : TERM, wait up to 5 s, then KILL; also its children
  local name=$1 pid=${PIDS[$1]:-} kids k
  [ -n "$pid" ] || return 0
  kids=$(children_of "$pid")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  for k in $kids; do kill -0 "$k" 2>/dev/null && kill -KILL "$k" 2>/dev/null; done
  wait "$pid" 2>/dev/null || true
  unset "PIDS[$name]"
}
cleanup() {
  local n
  for n in "${!PIDS[@]}"; do stop_proc "$n"; done
  if [ -n "${RUN:-}" ] && [ -d "$RUN" ] && [ "${KEEP_RUN:-0}" != 1 ]; then rm -rf "$RUN"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_free() { ! ss -Htln "sport = :$1" 2>/dev/null | grep -q .; }
check_ports_free() { local p; for p in "$@"; do port_free "$p" || die "port $p is in use (pick others: see bench/README.md)"; done; }
wait_port() {  # wait_port PORT [SECONDS=10] : until something accepts on 127.0.0.1:PORT
  local i
  for i in $(seq $(( ${2:-10} * 10 ))); do
    (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
start_backend() {  # start_backend PORT : our lg-backend, 1 thread, on the load-generator CPU
  start_bg backend "$LOADGEN_CPU" "$BACKEND_BIN" --listen "127.0.0.1:$1" --name bench
  wait_port "$1" 10 || { cat "$RUN/backend.log" >&2; die "backend did not listen on $1"; }
}

snapshot_lunagate() {  # run a private copy of the binary: a rebuild during the run cannot swap it
  LUNAGATE_SRC=$LUNAGATE_BIN
  LUNAGATE_BUILT=$(date -r "$LUNAGATE_SRC" '+%F %T')
  # /tmp/lg-build.lock is held by the project's builds (see bench/README.md): copy between builds
  if command -v flock >/dev/null 2>&1; then
    flock -w 600 /tmp/lg-build.lock cp "$LUNAGATE_SRC" "$RUN/lunagate" || die "could not copy $LUNAGATE_SRC"
  else cp "$LUNAGATE_SRC" "$RUN/lunagate"; fi
  LUNAGATE_BIN=$RUN/lunagate
  LUNAGATE_SHA=$(sha256sum "$LUNAGATE_BIN" | cut -c1-12)
  "$LUNAGATE_BIN" version >/dev/null 2>&1 || die "$LUNAGATE_SRC does not run"
}

# ------------------------------------------------------------------ configs
render() {  # render TEMPLATE OUTFILE : replace {PORT} {BACKEND_PORT} {RUN} (and @X@ spellings)
  sed -e "s|{PORT}|$PORT_R|g" -e "s|{BACKEND_PORT}|$BACKEND_PORT|g" -e "s|{RUN}|$RUN|g" \
      -e "s|@PORT@|$PORT_R|g" -e "s|@BACKEND_PORT@|$BACKEND_PORT|g" -e "s|@RUN@|$RUN|g" "$1" > "$2"
}
nginx_cmd() {  # nginx_cmd PORT -> sets NGINX_ARGS (array) for a proxy on PORT
  PORT_R=$1; mkdir -p "$RUN/nginx_tmp"
  render "$BENCH_DIR/conf/nginx_proxy.conf" "$RUN/nginx_proxy.conf"
  NGINX_ARGS=(nginx -p "$RUN/" -e "$RUN/nginx.startup.log" -c "$RUN/nginx_proxy.conf")
}
lunagate_cmd() {  # lunagate_cmd PORT -> sets LUNAGATE_ARGS (array) for a proxy on PORT
  PORT_R=$1
  render "$BENCH_DIR/conf/lunagate_proxy.yaml" "$RUN/lunagate_proxy.yaml"
  "$LUNAGATE_BIN" check -c "$RUN/lunagate_proxy.yaml" >/dev/null || die "lunagate config rejected"
  LUNAGATE_ARGS=("$LUNAGATE_BIN" run -c "$RUN/lunagate_proxy.yaml")
}

# ------------------------------------------------------------------ /proc readings
proc_ticks() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $12+$13}'; }  # utime+stime
proc_ticks_us() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $12, $13}'; }  # "utime stime"
rss_kb() { awk '/^VmRSS/{print $2}' "/proc/$1/status" 2>/dev/null; }
busy_ticks() { awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat; }  # all CPUs, minus idle+iowait
steal_ticks() { awk '/^cpu /{print $9}' /proc/stat; }
wait_quiet() {  # wait until the machine's busy CPU < QUIET_MAX % of one CPU (at most QUIET_WAIT s); echo s waited
  local waited=0 a b
  while :; do
    a=$(busy_ticks); sleep 1; b=$(busy_ticks)
    [ $(( 100 * (b - a) / HZ )) -lt "${QUIET_MAX:-10}" ] && break
    waited=$((waited + 1)); [ "$waited" -ge "${QUIET_WAIT:-60}" ] && break
  done
  echo "$waited"
}

# ------------------------------------------------------------------ numbers
median() { sort -g | awk '{a[NR]=$1} END{ if (NR==0) {print "NA"; exit} print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2 }'; }
to_us() {  # wrk duration (123.45us / 1.2ms / 1.01s) -> microseconds
  awk '{v=$1; if (v ~ /us$/) {sub(/us$/,"",v); print v+0} else if (v ~ /ms$/) {sub(/ms$/,"",v); print v*1000}
        else if (v ~ /s$/) {sub(/s$/,"",v); print v*1e6} else print "NA"}'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b+0>0 && a!="NA") printf "%.3f", a/b; else print "NA" }'; }
fmt_int() { awk -v v="$1" 'BEGIN{ if (v=="NA") {print v; exit} s=sprintf("%.0f", v); o=""
  while (length(s)>3) { o="," substr(s,length(s)-2) o; s=substr(s,1,length(s)-3) } print s o }'; }

# ------------------------------------------------------------------ reporting
machine_facts() {  # markdown bullet list
  local dirty src=${LUNAGATE_SRC:-$LUNAGATE_BIN}
  dirty=$(git -C "$ROOT_DIR" status --porcelain --untracked-files=no 2>/dev/null | wc -l)
  echo "- date: $(date -Is)"
  echo "- machine: nproc=$(nproc), CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(awk '/MemTotal/{printf "%.1f GiB RAM", $2/1048576}' /proc/meminfo), kernel $(uname -r)"
  echo "- $(nginx -v 2>&1), $("$LUNAGATE_BIN" version 2>&1 | head -1) (${src#"$ROOT_DIR"/}, built ${LUNAGATE_BUILT:-$(date -r "$LUNAGATE_BIN" '+%F %T')}, sha256 ${LUNAGATE_SHA:-$(sha256sum "$LUNAGATE_BIN" | cut -c1-12)})"
  echo "- git commit: $(git -C "$ROOT_DIR" rev-parse --short HEAD 2>/dev/null || echo unknown)$([ "$dirty" -gt 0 ] && echo " + $dirty modified tracked files in the work tree")"
  echo "- pinning: gateway on CPU $GW_CPU; load generator and backend (build/lg-backend, 1 thread) on CPU $LOADGEN_CPU"
}
results_update() {  # results_update KEY FILE : put FILE between the KEY markers in RESULTS.md (append if new)
  local key=$1 body=$2 res="$BENCH_DIR/RESULTS.md" tmp
  [ -f "$res" ] || printf '# lunagate benchmark results\n\nWritten by the scripts in bench/ (see bench/README.md). Each section is refreshed by the script named in it.\n' > "$res"
  tmp=$(mktemp "$res.XXXXXX")
  if grep -q "^<!-- bench:$key:begin -->$" "$res"; then
    awk -v k="$key" -v f="$body" '
      $0 == "<!-- bench:" k ":begin -->" { print; while ((getline l < f) > 0) print l; skip=1; next }
      $0 == "<!-- bench:" k ":end -->"   { skip=0 }
      !skip { print }' "$res" > "$tmp"
  else
    { cat "$res"; echo; echo "<!-- bench:$key:begin -->"; cat "$body"; echo "<!-- bench:$key:end -->"; } > "$tmp"
  fi
  mv "$tmp" "$res"
}

# ---- shared by run_scripts.sh and run_policies.sh (they set OUT, LOADGEN_CPU, CONNS, HDRS) ----

batch() {  # batch OUTFILE N PORT -> number of 2xx answers
  taskset -c "$LOADGEN_CPU" h2load --h1 -n "$2" -c "$CONNS" "${HDRS[@]}" "http://127.0.0.1:$3/" > "$1" 2>&1 || true
  awk '/^status codes:/{print $3+0}' "$1"
}

cg_med() { awk -F'\t' -v n="$1" 'NR>1 && $1==n && $5!="NA"{print $5}' "$OUT/callgrind.tsv" | median; }

paired() {  # paired COL ROW_A ROW_B : median over rounds of A/B from the same round
  awk -F'\t' -v c="$1" -v a="$2" -v b="$3" 'NR==1{for(i=1;i<=NF;i++) if($i==c) k=i; next}
    $2==a{x[$1]=$k} $2==b{y[$1]=$k} END{for (r in x) if ((r in y) && y[r]+0>0 && x[r]!="NA") printf "%.4f\n", x[r]/y[r]}' "$OUT/wall.tsv" | median
}

run_wrk() {  # run_wrk OUTFILE SECONDS PORT ; wrk's own CPU (user sys seconds) -> OUTFILE.cpu
  /usr/bin/time -f "%U %S" -o "$1.cpu" taskset -c "$LOADGEN_CPU" \
    wrk -t1 -c"$CONNS" -d"$2"s --latency --timeout 5s "${HDRS[@]}" "http://127.0.0.1:$3/" > "$1" 2>&1 || true
}

wcol() { awk -F'\t' -v n="$1" -v c="$2" 'NR==1{for(i=1;i<=NF;i++) if($i==c) k=i; next} $2==n && $k!="NA"{print $k}' "$OUT/wall.tsv"; }

# ------------------------------------------------------------------ shared passes of the row benches
# (run_scripts.sh, run_policies.sh). A bench defines ROW_PORT, start_row ROW [WRAPPER...] (-> PIDS[ROW])
# and measure ROUND ROW TRY (-> "rps p50_us p99_us errors gw_us_per_req gw_cpu_pct X Y noise_pct",
# X and Y its two own columns, named in WALL_EXTRA), and may redefine pass_mark / pass_note ROW
# PASS REQS_2XX, called around each measured callgrind and strace batch.
pass_mark() { :; }
pass_note() { :; }
wall() {  # ROUNDS rounds alternating ROWS, noisy runs retried -> $OUT/wall.tsv
  local r row t line best bestnoise noise waited
  printf "round\trow\trps\tp50_us\tp99_us\terrors\tgw_us_per_req\tgw_cpu_pct\t%s\t%s\tnoise_pct\ttries\n" \
    "${WALL_EXTRA[0]}" "${WALL_EXTRA[1]}" > "$OUT/wall.tsv"
  for r in $(seq 1 "$ROUNDS"); do
    for row in "${ROWS[@]}"; do
      best=""; bestnoise=1e9
      for t in $(seq 1 "$MAX_TRIES"); do
        waited=$(wait_quiet)
        [ "$waited" -gt 0 ] && log "round $r $row: waited ${waited}s for the machine to go quiet"
        line=$(measure "$r" "$row" "$t"); noise=${line##* }
        if awk -v a="$noise" -v b="$bestnoise" 'BEGIN{exit !(a<b)}'; then best=$line; bestnoise=$noise; fi
        awk -v a="$noise" -v m="$NOISE_MAX" 'BEGIN{exit !(a<=m)}' && break
        log "round $r $row: foreign CPU ${noise}% > ${NOISE_MAX}% (try $t/$MAX_TRIES)"
      done
      echo "$r $row $best $t" | tr ' ' '\t' >> "$OUT/wall.tsv"
      log "wall round $r $(echo "$best" | awk -v n="$row" -v x="${WALL_EXTRA[0]}" -v y="${WALL_EXTRA[1]}" '{printf "%-9s %7.0f req/s  p50 %6sus  p99 %6sus  err %s  gw %s us/req (%s%% CPU)  %s %s  %s %s  noise %s%%", n, $1, $2, $3, $4, $5, $6, x, $7, y, $8, $9}')"
    done
  done
}
callgrind_pass() {
  local row=$1 port=${ROW_PORT[$1]} pid k ok ir before last
  log "$row: starting under callgrind"
  start_row "$row" valgrind --tool=callgrind --dump-instr=no --collect-jumps=no \
    --callgrind-out-file="$RUN/cg.$row.%p"
  pid=${PIDS[$row]}
  ok=$(batch "$OUT/raw/$row.cg.warmup" 2000 "$port")
  [ "${ok:-0}" -gt 0 ] || die "$row: warm-up under callgrind got no 2xx (see raw/$row.cg.warmup)"
  for k in $(seq 1 "$BATCHES"); do
    callgrind_control -z "$pid" >/dev/null 2>&1 || die "callgrind_control -z $pid failed"
    before=$(ls "$RUN"/cg."$row".* 2>/dev/null | sort)
    pass_mark
    ok=$(batch "$OUT/raw/$row.cg.$k" "$REQS" "$port")
    pass_note "$row" "callgrind#$k" "$ok"
    [ "${ok:-0}" -eq "$REQS" ] || log "$row batch $k: only ${ok:-0} of $REQS answers were 2xx"
    callgrind_control --dump="batch$k" "$pid" >/dev/null 2>&1 || die "callgrind_control --dump $pid failed"
    last=$(comm -13 <(echo "$before") <(ls "$RUN"/cg."$row".* | sort))
    ir=$(echo "$last" | xargs -r awk '/^totals:/{s+=$2} END{print s+0}')
    printf "%s\t%s\t%s\t%s\t%s\n" "$row" "$k" "${ok:-0}" "$ir" \
      "$(awk -v i="$ir" -v r="${ok:-0}" 'BEGIN{ if (r>0 && i>0) printf "%.0f", i/r; else print "NA" }')" >> "$OUT/callgrind.tsv"
    log "$row batch $k: $(tail -1 "$OUT/callgrind.tsv" | awk -F'\t' '{printf "%s x 2xx, %s Ir/req", $3, $5}')"
  done
  stop_proc "$row"
  # keep the last dump (one file unless threads were separated) for callgrind_annotate
  cp "$(echo "$last" | sed -n 1p)" "$OUT/raw/$row.callgrind"
  echo "${ok:-0}" > "$OUT/raw/$row.callgrind.reqs"
}
strace_pass() {
  local row=$1 port=${ROW_PORT[$1]} pid spid ok
  start_row "$row"
  pid=${PIDS[$row]}
  batch "$OUT/raw/$row.st.warmup" 2000 "$port" >/dev/null
  strace -f -c -q -o "$OUT/raw/$row.strace" -p "$pid" & spid=$!
  PIDS[strace]=$spid
  sleep 1
  pass_mark
  ok=$(batch "$OUT/raw/$row.st" "$REQS" "$port")
  pass_note "$row" strace "$ok"
  kill -INT "$spid"; wait "$spid" 2>/dev/null || true; unset "PIDS[strace]"
  stop_proc "$row"
  awk -v n="$row" -v r="${ok:-0}" '
    $1 ~ /^[0-9.]+$/ && NF>=5 && $NF!="total" { c[$NF]=$4; tot+=$4 }
    END { top=""
          for (k=0; k<5; k++) { best=""; bv=-1; for (s in c) if (c[s]+0>bv) { bv=c[s]+0; best=s }
            if (best=="") break
            top=top sprintf("%s%s %.2f", (k?", ":""), best, bv/r); delete c[best] }
          printf "%s\t%d\t%d\t%s\t%s\n", n, r, tot, (r>0)?sprintf("%.2f", tot/r):"NA", top }' \
    "$OUT/raw/$row.strace" >> "$OUT/strace.tsv"
  log "$row strace: $(tail -1 "$OUT/strace.tsv" | cut -f2-)"
}

# ------------------------------------------------------------------ report helpers of the row benches
cg_spread() { awk -F'\t' -v n="$1" 'NR>1 && $1==n && $5!="NA"{print $5}' "$OUT/callgrind.tsv" | sort -g | awk '
  {a[NR]=$1} END{ if (!NR) {print "NA"; exit} m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.2f%%", 100*(a[NR]-a[1])/m }'; }
sc_per() { local v; v=$(awk -F'\t' -v n="$1" 'NR>1 && $1==n{print $4}' "$OUT/strace.tsv"); echo "${v:-NA}"; }
sc_top() { awk -F'\t' -v n="$1" 'NR>1 && $1==n{print $5}' "$OUT/strace.tsv"; }
# annotate FILE -> "Ir<TAB>function" (self cost over the whole dump), from the function list of
# callgrind_annotate (not its source annotations); thread entry frames that callgrind charges with
# the whole program (clone, start_thread, the worker's thread body) and PROGRAM TOTALS are dropped
annotate() { callgrind_annotate --inclusive=no --auto=no --threshold=100 "$1" 2>/dev/null | awk '
  done { next }                 # read to the end: an early exit would SIGPIPE callgrind_annotate
  /^-+$/ { if (inlist) done=1; if (hdr) inlist=1; next }
  /^Ir +file:function/ { hdr=1; next }
  inlist && match($0, /^ *[0-9,]+ \( *[0-9.]+%\) +/) {
    ir=$1; gsub(/,/,"",ir); pct=$0; sub(/^ *[0-9,]+ \( */,"",pct); sub(/%.*/,"",pct)
    fn=substr($0, RLENGTH+1)
    if (pct+0 >= 99.5 || fn ~ /PROGRAM TOTALS/) next
    gsub(/std::basic_string_view<char, std::char_traits<char> >/, "std::string_view", fn)
    gsub(/std::__cxx11::basic_string<char, std::char_traits<char>, std::allocator<char> >/, "std::string", fn)
    gsub(/\[[^]]*\/run\/lunagate\]/, "[lunagate]", fn); gsub(/\[\/usr\/lib\/x86_64-linux-gnu\//, "[", fn)
    if (length(fn) > 170) fn=substr(fn, 1, 167) "..."
    print ir "\t" fn }'; }
top_self() {  # top_self ROW N -> markdown rows: self Ir/req, share, function
  local f="$OUT/raw/$1.callgrind" reqs
  [ -f "$f" ] || return 0
  reqs=$(cat "$OUT/raw/$1.callgrind.reqs")
  annotate "$f" | awk -F'\t' -v r="$reqs" -v n="$2" '{t+=$1; ir[NR]=$1; fn[NR]=$2} END{
    for (i=1; i<=NR && i<=n; i++) { g=fn[i]; gsub(/\|/,"\\|",g); printf "| %.0f | %.1f%% | `%s` |\n", ir[i]/r, 100*ir[i]/t, g } }'
}
delta_self() {  # delta_self ROW BASE N -> markdown rows: functions that cost more per request in ROW than in BASE
  local a="$OUT/raw/$1.callgrind" b="$OUT/raw/$2.callgrind"
  [ -f "$a" ] && [ -f "$b" ] || return 0
  join -t $'\t' -a1 -a2 -e 0 -o 0,1.2,2.2 \
    <(annotate "$a" | awk -F'\t' -v r="$(cat "$OUT/raw/$1.callgrind.reqs")" '{printf "%s\t%.1f\n", $2, $1/r}' | sort -t $'\t' -k1,1) \
    <(annotate "$b" | awk -F'\t' -v r="$(cat "$OUT/raw/$2.callgrind.reqs")" '{printf "%s\t%.1f\n", $2, $1/r}' | sort -t $'\t' -k1,1) |
    awk -F'\t' '{d=$2-$3; if (d>0) printf "%.1f\t%s\t%s\t%s\n", d, $2, $3, $1}' | sort -t $'\t' -k1,1 -g -r | awk -v n="$3" 'NR<=n' |
    awk -F'\t' '{g=$4; gsub(/\|/,"\\|",g); printf "| +%.0f | %.0f | %.0f | `%s` |\n", $1, $2, $3, g}'
}
