#!/usr/bin/env bash
# TLS termination: lunagate next to nginx with the same certificate (EC P-256, made here) and the
# same TLS 1.2/1.3 settings, on loopback, both proxying to build/lg-backend.
#
# Rows (wrk -t1 --latency, $ROUNDS rounds alternating the rows, median per row):
#   keep-alive   $CONNS connections, many requests each: TLS record cost per request
#   handshakes   "Connection: close" on every request, $HS_CONNS connections: every request is a
#                new TCP connection and a full TLS handshake (wrk does not resume sessions), so
#                req/s = new handshakes/s
#   plain        lunagate without TLS, keep-alive (the reference for the TLS overhead)
# Gateway CPU µs per request from /proc (utime+stime of the gateway process / requests).
# Pinning as bench/run.sh: gateway (one worker) on CPU $GW_CPU, wrk and backend on $LOADGEN_CPU.
#
# Environment (defaults): DURATION=5 ROUNDS=2 CONNS=50 HS_CONNS=16 BACKEND_PORT=18491
#   NGINX_PORT=18492 LUNAGATE_PORT=18493 PLAIN_PORT=18494 NO_RESULTS=1 (do not touch RESULTS.md)
# Output: bench/out/tls-<timestamp>/ (raw wrk outputs, runs.tsv, summary.md) and the "tls" section
# of bench/RESULTS.md.
set -euo pipefail
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

case ${1:-} in -h|--help) sed -n '2,19p' "$0"; exit 0;; esac
DURATION=${DURATION:-5}; ROUNDS=${ROUNDS:-2}; CONNS=${CONNS:-50}; HS_CONNS=${HS_CONNS:-16}
BACKEND_PORT=${BACKEND_PORT:-18491}; NGINX_PORT=${NGINX_PORT:-18492}
LUNAGATE_PORT=${LUNAGATE_PORT:-18493}; PLAIN_PORT=${PLAIN_PORT:-18494}
[ "$DURATION" -le 10 ] || die "DURATION must be at most 10 s"
need nginx wrk taskset openssl
[ -x "$LUNAGATE_BIN" ] || die "no $LUNAGATE_BIN"
[ -x "$BACKEND_BIN" ] || die "no $BACKEND_BIN"
check_ports_free "$BACKEND_PORT" "$NGINX_PORT" "$LUNAGATE_PORT" "$PLAIN_PORT"

TS=$(date +%Y%m%d-%H%M%S)
OUT="$BENCH_DIR/out/tls-$TS"; RUN="$OUT/run"
mkdir -p "$OUT/raw" "$RUN/nginx_tmp"
snapshot_lunagate

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$RUN/cert.key" \
  -out "$RUN/cert.pem" -days 2 -subj /CN=bench.test -addext subjectAltName=DNS:bench.test 2>/dev/null

# nginx: the plain proxy config with a TLS listener and our settings.
PORT_R=$NGINX_PORT
render "$BENCH_DIR/conf/nginx_proxy.conf" "$RUN/nginx_tls.conf"
sed -i -e "s|listen 127.0.0.1:$NGINX_PORT backlog=4096;|listen 127.0.0.1:$NGINX_PORT ssl backlog=4096;\n    ssl_certificate $RUN/cert.pem;\n    ssl_certificate_key $RUN/cert.key;\n    ssl_protocols TLSv1.2 TLSv1.3;\n    ssl_prefer_server_ciphers on;\n    ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305;|" "$RUN/nginx_tls.conf"
grep -q "ssl_certificate " "$RUN/nginx_tls.conf" || die "could not render the nginx TLS config"

PORT_R=$PLAIN_PORT
render "$BENCH_DIR/conf/lunagate_proxy.yaml" "$RUN/lunagate_plain.yaml"
PORT_R=$LUNAGATE_PORT
render "$BENCH_DIR/conf/lunagate_proxy.yaml" "$RUN/lunagate_tls.yaml"
sed -i -e "s|    backlog: 4096|    backlog: 4096\n    tls:\n      certificates: [ { cert: cert.pem, key: cert.key } ]|" "$RUN/lunagate_tls.yaml"
"$LUNAGATE_BIN" check -c "$RUN/lunagate_tls.yaml" >/dev/null || die "lunagate TLS config rejected"

start_backend "$BACKEND_PORT"
start_bg nginx "$GW_CPU" nginx -p "$RUN/" -e "$RUN/nginx.startup.log" -c "$RUN/nginx_tls.conf"
start_bg lunagate "$GW_CPU" "$LUNAGATE_BIN" run -c "$RUN/lunagate_tls.yaml"
start_bg plain "$GW_CPU" "$LUNAGATE_BIN" run -c "$RUN/lunagate_plain.yaml"
for p in "$NGINX_PORT" "$LUNAGATE_PORT" "$PLAIN_PORT"; do wait_port "$p" 10 || die "nothing on $p"; done

# row: name proc scheme port conns extra-wrk-args...
ROWS=("nginx_ka nginx https $NGINX_PORT $CONNS"
      "lunagate_ka lunagate https $LUNAGATE_PORT $CONNS"
      "nginx_hs nginx https $NGINX_PORT $HS_CONNS close"
      "lunagate_hs lunagate https $LUNAGATE_PORT $HS_CONNS close"
      "plain_ka plain http $PLAIN_PORT $CONNS")
printf 'row\tround\treq_s\tp50_us\tp99_us\tgw_us_per_req\terrors\n' > "$OUT/runs.tsv"
for round in $(seq "$ROUNDS"); do
  for row in "${ROWS[@]}"; do
    read -r name proc scheme port conns close <<<"$row"
    args=(-t1 -c"$conns" -d"${DURATION}s" --latency)
    [ "${close:-}" = close ] && args+=(-H "Connection: close")
    pid=${PIDS[$proc]}
    taskset -c "$LOADGEN_CPU" wrk -t1 -c"$conns" -d1s "${args[@]:3}" "$scheme://127.0.0.1:$port/" >/dev/null 2>&1 || true  # warm-up
    t0=$(proc_ticks "$pid")
    raw="$OUT/raw/$name.$round.txt"
    taskset -c "$LOADGEN_CPU" wrk "${args[@]}" "$scheme://127.0.0.1:$port/" > "$raw" 2>&1 || true
    t1=$(proc_ticks "$pid")
    reqs=$(awk '/requests in/{print $1}' "$raw")
    rps=$(awk '/^Requests\/sec/{print $2}' "$raw")
    p50=$(awk '$1=="50%"{print $2}' "$raw" | to_us)
    p99=$(awk '$1=="99%"{print $2}' "$raw" | to_us)
    errs=$(awk '/Socket errors/{gsub(",","");s=$4+$6+$8+$10} /Non-2xx/{n=$NF} END{print s+n+0}' "$raw")
    cpu=$(awk -v a="$t0" -v b="$t1" -v n="$reqs" -v hz="$HZ" 'BEGIN{ if (n>0) printf "%.1f", (b-a)*1e6/hz/n; else print "NA"}')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$round" "$rps" "$p50" "$p99" "$cpu" "$errs" >> "$OUT/runs.tsv"
    log "$name round $round: $rps req/s p99 ${p99}us gateway ${cpu} us/req errors $errs"
  done
done

# Syscalls per keep-alive TLS request (strace -c on the lunagate TLS process during a short run).
SYSCALLS=NA
if command -v strace >/dev/null 2>&1; then
  timeout $((DURATION + 3)) strace -f -c -o "$OUT/strace_tls.txt" -p "${PIDS[lunagate]}" 2>/dev/null &
  st=$!; sleep 1
  taskset -c "$LOADGEN_CPU" wrk -t1 -c10 -d"${DURATION}s" "https://127.0.0.1:$LUNAGATE_PORT/" > "$OUT/raw/strace_wrk.txt" 2>&1 || true
  wait "$st" 2>/dev/null || true
  sreqs=$(awk '/requests in/{print $1}' "$OUT/raw/strace_wrk.txt")
  SYSCALLS=$(awk -v n="$sreqs" '$NF=="total"{c=$4} END{ if (n>0) printf "%.2f", c/n; else print "NA"}' "$OUT/strace_tls.txt")
  SYSCALL_TOP=$(awk '$1 ~ /^[0-9.]+$/ && NF>=5 && $NF != "total" {printf "%s %s, ", $NF, $4}' "$OUT/strace_tls.txt" | cut -c1-200)
fi

col() { awk -F'\t' -v r="$1" -v c="$2" 'NR>1 && $1==r {print $c}' "$OUT/runs.tsv" | median; }
{
  echo "## TLS termination (bench/run_tls.sh)"
  echo
  machine_facts
  echo "- TLS: EC P-256 certificate, TLS 1.3 negotiated by wrk (OpenSSL 3.0), same TLS 1.2 suites and protocols on both; wrk does not resume sessions, so every \"handshakes\" request is a full handshake"
  echo "- wrk -t1, ${DURATION} s per run, $ROUNDS rounds alternating the rows, medians; keep-alive rows $CONNS connections, handshake rows $HS_CONNS connections with \"Connection: close\""
  echo
  echo "| row | req/s | p50 µs | p99 µs | gateway CPU µs/req | errors (all runs) |"
  echo "|---|---:|---:|---:|---:|---:|"
  for r in nginx_ka lunagate_ka plain_ka nginx_hs lunagate_hs; do
    label=$r
    case $r in
      nginx_ka) label="nginx, TLS keep-alive";; lunagate_ka) label="lunagate, TLS keep-alive";;
      plain_ka) label="lunagate, plain keep-alive (reference)";;
      nginx_hs) label="nginx, new TLS connection per request (handshakes/s)";;
      lunagate_hs) label="lunagate, new TLS connection per request (handshakes/s)";;
    esac
    errs=$(awk -F'\t' -v r="$r" 'NR>1 && $1==r {s+=$7} END{print s+0}' "$OUT/runs.tsv")
    echo "| $label | $(fmt_int "$(col "$r" 3)") | $(col "$r" 4) | $(col "$r" 5) | $(col "$r" 6) | $errs |"
  done
  echo
  echo "lunagate / nginx: keep-alive req/s $(ratio "$(col lunagate_ka 3)" "$(col nginx_ka 3)"), handshakes/s $(ratio "$(col lunagate_hs 3)" "$(col nginx_hs 3)"); gateway CPU per request keep-alive $(ratio "$(col lunagate_ka 6)" "$(col nginx_ka 6)"), handshakes $(ratio "$(col lunagate_hs 6)" "$(col nginx_hs 6)")."
  echo "Syscalls per keep-alive TLS request (strace -f -c, 10 connections, under strace): $SYSCALLS (${SYSCALL_TOP:-}...); the plain path's reference is ~4.05 (ARCHITECTURE.md): a TLS read that drained the socket (short recv through our BIO, read-ahead on) waits for the next edge instead of collecting an EAGAIN."
  echo "The machine is shared (2 cores, other builds and tests running): req/s swings between rounds; the gateway CPU µs/req column is the steadier comparison."
} > "$OUT/summary.md"
cat "$OUT/summary.md"
[ "${NO_RESULTS:-0}" = 1 ] || results_update tls "$OUT/summary.md"
