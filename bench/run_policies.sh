#!/usr/bin/env bash
# lunagate's native route policies (issue 4 point 9), next to nginx running the same policy.
# Rows (each a single process on CPU $GW_CPU, same backend, byte-identical requests):
#   plain         lunagate, no policy (the reference: what the policies add)
#   native        lunagate, the bench policy as native policies: key-auth + rate-limit (token
#                 bucket, per-consumer limits) + headers          (bench/conf/lunagate_policies.yaml)
#   nginx_native  nginx, the bench policy as nginx directives (map + limit_req + proxy_set_header):
#                 the shared anchors' conf/nginx_native_policy.conf, unchanged but master_process off
#   nginx_lua     nginx + LuaJIT, the bench policy in an access handler: run_scripts.sh's row
#                 (bench/conf/nginx_lua_policy.conf, bench/conf/lua/)
#   jwt           lunagate, a native `jwt` policy: HS256, consumer from `iss` (consumer_claim),
#                 + headers (remove X-Remove-Me)                  (bench/conf/lunagate_policies.yaml)
#   nginx_lua_jwt nginx + LuaJIT HS256 JWT (Kong jwt plugin shape): the shared anchors'
#                 conf/nginx_lua_jwt.conf + lua/gw_jwt.lua, master_process off
# Redis rows (issue 4 point 9, Redis-backed limits; bench/run_redis.sh runs them with the native
# and nginx_lua references and writes the `redis` section of RESULTS.md instead of `policies`):
#   redis_exact   the native row with the rate-limit on `store: redis` (mode exact: one Redis
#                 round trip per request) and a top-level `redis:` section
#   redis_batch   the same with `mode: batch` (default batch size: min(limit / (4 x workers), 100)
#                 = 100 for the huge limit, 1 for consumer-limited's 1/s)
#   nginx_lua_redis nginx + LuaJIT, the bench policy with the limit in Redis (Kong `policy=redis`
#                 shape: pipelined INCR + EXPIRE per request): the shared anchors'
#                 conf/nginx_lua_redis.conf + lua/gw_policy_redis.lua (needs lua-nginx-redis)
# With any Redis row selected the script starts one redis-server (--port REDIS_PORT --bind
# 127.0.0.1 --save "" --appendonly no --daemonize no) on CPU $LOADGEN_CPU beside the backend and
# stops it by PID at exit; FLUSHALL before each Redis row's functional check. lunagate's Redis rows
# use `on_failure: closed`, so a Redis failure shows as a non-2xx answer, never as a silent bypass.
# The wall clock also reads redis-server's CPU (/proc utime+stime) and Redis commands
# (INFO total_commands_processed) per request; callgrind and strace passes record Redis commands
# per request too (raw redis.tsv).
# The nginx_native and nginx_lua_jwt rows need the shared anchors folder ($ANCHORS_DIR, default
# ../shared/anchors beside the repo); without it they are skipped and only the anchors' published
# figures are quoted.
# The bench policy: API key in header `apikey` (key-0001..key-1000 -> consumer-N, huge limit;
# key-limited -> consumer-limited, 1 req/s, burst 1) -> upstream gets X-Consumer-ID and loses
# X-Remove-Me; a missing or unknown key -> 401; key-limited -> 429 within 3 requests.
# The jwt check (as the anchors'): `Authorization: Bearer <HS256 token>` signed with JWT_SECRET,
# iss issuer-1, exp 2100 -> 200, X-Consumer-ID upstream, X-Remove-Me gone; wrong signature,
# expired or missing token -> 401.
# Every request of every row carries `apikey: key-0042`, `X-Remove-Me: x` and
# `Authorization: Bearer <token>` (the anchors' request shape: one request for all rows).
#
# Steps: (0) functional check of every row (seen through lg-backend's /echo); (a) user-space
# instructions per request: callgrind, h2load --h1 -n REQS -c CONNS, BATCHES batches after a
# 2,000-request warm-up, median; (b) syscalls per request: strace -f -c, one batch; (c) wall clock:
# wrk -t1 -c$CONNS -d${DURATION}s --latency, ROUNDS rounds alternating the rows, median req/s, p50,
# p99, gateway CPU per request; each run waits for the machine to go quiet and is retried when
# foreign CPU (other processes) exceeded NOISE_MAX % of one CPU.
#
# Usage: bench/run_policies.sh [-n REQS] [-k BATCHES] [-c CONNS] [-C] [-S] [-W]
#   -n REQS requests per batch (20000)  -k BATCHES callgrind batches (3)  -c CONNS connections (50)
#   -C / -S / -W  skip callgrind / strace / wall clock
# Environment: DURATION=8 ROUNDS=3 WARMUP=1 NOISE_MAX=15 MAX_TRIES=3 QUIET_MAX=10 QUIET_WAIT=60
#   BACKEND_PORT=18511 PLAIN_PORT=18517 NATIVE_PORT=18512 NGINX_NATIVE_PORT=18513 NGINX_LUA_PORT=18514 JWT_PORT=18515
#   NGINX_LUA_JWT_PORT=18516 REDIS_EXACT_PORT=18518 REDIS_BATCH_PORT=18519 NGINX_LUA_REDIS_PORT=18520
#   REDIS_PORT=18530 (or the next free port) REDIS_TIMEOUT=1s ROWS="plain native nginx_native nginx_lua jwt nginx_lua_jwt"
#   (Redis rows: redis_exact redis_batch nginx_lua_redis) RESULTS_KEY=policies (run_redis.sh: redis)
#   ANCHORS_DIR=../shared/anchors NGINX_MODDIR=/usr/lib/nginx/modules GW_CPU=1 LOADGEN_CPU=0
#   NO_RESULTS=1 (do not touch bench/RESULTS.md)
# Goals (issue 4 point 9): native policy <= 28,000 instructions/req (nginx native: 28,565), >= 1.2x
# nginx+Lua's req/s, p99 no worse than nginx+Lua's; JWT HS256 <= 45,000 instructions/req
# (nginx+LuaJIT: 65,600; HAProxy native: 81,699).
set -euo pipefail
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

REQS=20000; BATCHES=3; CONNS=50; DO_CG=1; DO_ST=1; DO_WALL=1
while getopts "n:k:c:CSWh" opt; do
  case $opt in
    n) REQS=$OPTARG;; k) BATCHES=$OPTARG;; c) CONNS=$OPTARG;; C) DO_CG=0;; S) DO_ST=0;; W) DO_WALL=0;;
    *) sed -n '2,62p' "$0"; exit 0;;
  esac
done
DURATION=${DURATION:-8}; ROUNDS=${ROUNDS:-3}; WARMUP=${WARMUP:-1}
NOISE_MAX=${NOISE_MAX:-15}; MAX_TRIES=${MAX_TRIES:-3}
[ "$DURATION" -le 10 ] || die "DURATION must be at most 10 s"
GOAL_NATIVE_IR=28000; GOAL_NATIVE_RPS_X=1.2; GOAL_JWT_IR=45000
# the shared anchors' published figures (../shared/anchors/README.md), quoted next to ours
ANCHOR_NGINX_NATIVE_IR=28565; ANCHOR_NGINX_LUA_IR=31936; ANCHOR_NGINX_LUA_JWT_IR=65600; ANCHOR_HAPROXY_JWT_IR=81699
# nginx + LuaJIT with a Redis round trip per request (issue 4 point 9; anchors README): Ir, syscalls,
# req/s next to the anchors' nginx proxy (86,445) and nginx+LuaJIT local policy (73,037)
ANCHOR_NGINX_LUA_REDIS_IR=73832; ANCHOR_NGINX_LUA_REDIS_SC=7.09; ANCHOR_NGINX_LUA_REDIS_RPS=35320
ANCHOR_NGINX_PROXY_RPS=86445; ANCHOR_NGINX_LUA_RPS=73037
GOAL_REDIS_RPS_X=0.8; GOAL_REDIS_SC=4.5
RESULTS_KEY=${RESULTS_KEY:-policies}
BACKEND_PORT=${BACKEND_PORT:-18511}
MODDIR=${NGINX_MODDIR:-/usr/lib/nginx/modules}
ANCHORS_DIR=${ANCHORS_DIR:-$(cd "$BENCH_DIR/../.." && pwd)/shared/anchors}
# the anchors harness's secret (run_anchors.sh, callgrind_anchors.sh) and token (lib.sh make_jwt)
JWT_SECRET="bench-secret-issuer-1-0123456789abcdef"
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
make_jwt() {  # make_jwt SECRET [exp] : the anchors' token: {"alg":"HS256","typ":"JWT"}, iss issuer-1, sub user-1, exp 2100, no iat
  local h p s
  h=$(printf '%s' '{"alg":"HS256","typ":"JWT"}' | b64url)
  p=$(printf '{"iss":"issuer-1","sub":"user-1","exp":%s}' "${2:-4102444800}" | b64url)
  s=$(printf '%s' "$h.$p" | openssl dgst -sha256 -hmac "$1" -binary | b64url)
  echo "$h.$p.$s"
}
TOKEN=$(make_jwt "$JWT_SECRET"); BAD_TOKEN=$(make_jwt "wrong-secret-wrong-secret-wrong-secret"); OLD_TOKEN=$(make_jwt "$JWT_SECRET" 1000000000)

read -r -a ROWS <<< "${ROWS:-plain native nginx_native nginx_lua jwt nginx_lua_jwt}"
declare -A ROW_PORT=([plain]=${PLAIN_PORT:-18517} [native]=${NATIVE_PORT:-18512} [nginx_native]=${NGINX_NATIVE_PORT:-18513}
                     [nginx_lua]=${NGINX_LUA_PORT:-18514} [jwt]=${JWT_PORT:-18515} [nginx_lua_jwt]=${NGINX_LUA_JWT_PORT:-18516}
                     [redis_exact]=${REDIS_EXACT_PORT:-18518} [redis_batch]=${REDIS_BATCH_PORT:-18519}
                     [nginx_lua_redis]=${NGINX_LUA_REDIS_PORT:-18520})
declare -A ROW_LABEL=([plain]="lunagate, no policy (reference)" [native]="lunagate native policies (key-auth + rate-limit + headers)"
                      [nginx_native]="nginx native policy (map + limit_req)" [nginx_lua]="nginx + LuaJIT bench policy"
                      [jwt]="lunagate native jwt HS256 (+ headers)" [nginx_lua_jwt]="nginx + LuaJIT JWT HS256"
                      [redis_exact]="lunagate native policies, rate-limit store: redis, mode: exact"
                      [redis_batch]="lunagate native policies, rate-limit store: redis, mode: batch"
                      [nginx_lua_redis]="nginx + LuaJIT bench policy, Redis INCR+EXPIRE per request")
declare -A ROW_CHECK=([plain]=plain [native]=policy [nginx_native]=policy [nginx_lua]=policy [jwt]=jwt [nginx_lua_jwt]=jwt
                      [redis_exact]=policy [redis_batch]=policy [nginx_lua_redis]=policy)
is_redis_row() { case $1 in redis_exact|redis_batch|nginx_lua_redis) return 0;; esac; return 1; }
# the consumer each row must name upstream for the request below. lunagate's jwt policy attaches
# the consumer whose id is the claim's value (consumer_claim: iss -> `issuer-1`); the anchors' Lua
# looks `iss` up in a credential table that names consumer-1. Both are "iss -> consumer".
declare -A ROW_CONSUMER=([plain]=none [native]=consumer-42 [nginx_native]=consumer-42 [nginx_lua]=consumer-42
                         [jwt]=issuer-1 [nginx_lua_jwt]=consumer-1 [redis_exact]=consumer-42 [redis_batch]=consumer-42
                         [nginx_lua_redis]=consumer-42)
# lunagate and the Lua policy answer 429 with Retry-After; nginx's limit_req sends none
declare -A ROW_RETRY=([native]=1 [nginx_native]=0 [nginx_lua]=1 [redis_exact]=1 [redis_batch]=1 [nginx_lua_redis]=1)
HDRS=(-H "apikey: key-0042" -H "X-Remove-Me: x" -H "Authorization: Bearer $TOKEN")
POLICIES_NATIVE='[ { key-auth: { header: apikey } }, { rate-limit: { limit: 1000000000, per: 1s, consumers: { consumer-limited: [ { limit: 1, per: 1s, burst: 1 } ] } } }, { headers: { request: { remove: [ X-Remove-Me ] } } } ]'
# the Redis rows: the native row's policies, the rate-limit's counters in Redis
POLICIES_REDIS_EXACT='[ { key-auth: { header: apikey } }, { rate-limit: { limit: 1000000000, per: 1s, store: redis, mode: exact, consumers: { consumer-limited: [ { limit: 1, per: 1s, burst: 1 } ] } } }, { headers: { request: { remove: [ X-Remove-Me ] } } } ]'
POLICIES_REDIS_BATCH='[ { key-auth: { header: apikey } }, { rate-limit: { limit: 1000000000, per: 1s, store: redis, mode: batch, consumers: { consumer-limited: [ { limit: 1, per: 1s, burst: 1 } ] } } }, { headers: { request: { remove: [ X-Remove-Me ] } } } ]'
# on_failure closed: a Redis failure is a 503 (counted as an error), never an unchecked 200.
# timeout 1s, not the default 50ms: redis-server shares CPU 0 with wrk and the backend on a machine
# where other work runs too, and one 50 ms stall there turned the functional check's answers into
# 503s; the deadline's value does not change the work per command.
REDIS_TIMEOUT=${REDIS_TIMEOUT:-1s}
REDIS_SECTION_TMPL="redis: { address: \"127.0.0.1:{REDIS_PORT}\", timeout: $REDIS_TIMEOUT, on_failure: closed }"
POLICIES_JWT="[ { jwt: { keys: [ { kid: issuer-1, alg: HS256, secret: \"$JWT_SECRET\" } ], consumer_claim: iss } }, { headers: { request: { remove: [ X-Remove-Me ] } } } ]"

need nginx h2load wrk valgrind callgrind_control callgrind_annotate strace taskset curl ss python3 openssl /usr/bin/time
[ -x "$LUNAGATE_BIN" ] || die "no $LUNAGATE_BIN (build it: flock /tmp/lg-build.lock cmake --build build -j2 --target lunagate lg-backend)"
[ -x "$BACKEND_BIN" ] || die "no $BACKEND_BIN"
for m in ndk_http_module.so ngx_http_lua_module.so; do
  [ -f "$MODDIR/$m" ] || die "no $MODDIR/$m: apt-get install -y libnginx-mod-http-lua lua-resty-core"
done
[ -f /usr/share/lua/5.1/resty/core.lua ] || die "no resty.core: apt-get install -y lua-resty-core"
SKIPPED=()
keep=()
for row in "${ROWS[@]}"; do
  case $row in
    nginx_native) [ -f "$ANCHORS_DIR/conf/nginx_native_policy.conf" ] || { SKIPPED+=("$row: no $ANCHORS_DIR/conf/nginx_native_policy.conf"); continue; };;
    nginx_lua_jwt)
      [ -f "$ANCHORS_DIR/conf/nginx_lua_jwt.conf" ] && [ -f "$ANCHORS_DIR/lua/gw_jwt.lua" ] || { SKIPPED+=("$row: no anchors nginx_lua_jwt.conf / gw_jwt.lua in $ANCHORS_DIR"); continue; }
      [ -f /usr/lib/x86_64-linux-gnu/lua/5.1/cjson.so ] || { SKIPPED+=("$row: no lua-cjson (apt-get install -y lua-cjson)"); continue; };;
    nginx_lua_redis)
      [ -f "$ANCHORS_DIR/conf/nginx_lua_redis.conf" ] && [ -f "$ANCHORS_DIR/lua/gw_policy_redis.lua" ] && [ -f "$ANCHORS_DIR/lua/gw_consumers.lua" ] || { SKIPPED+=("$row: no anchors nginx_lua_redis.conf / gw_policy_redis.lua / gw_consumers.lua in $ANCHORS_DIR"); continue; }
      [ -f /usr/share/lua/5.1/nginx/redis.lua ] || { SKIPPED+=("$row: no lua-resty-redis (apt-get install -y lua-nginx-redis)"); continue; };;
  esac
  if is_redis_row "$row"; then
    command -v redis-server >/dev/null && command -v redis-cli >/dev/null || die "$row needs redis-server and redis-cli: apt-get install -y redis-server"
  fi
  keep+=("$row")
done
ROWS=("${keep[@]}")
for s in "${SKIPPED[@]}"; do log "skipping $s"; done
ports=(); for row in "${ROWS[@]}"; do ports+=("${ROW_PORT[$row]}"); done
check_ports_free "$BACKEND_PORT" "${ports[@]}"
WITH_REDIS=0; for row in "${ROWS[@]}"; do is_redis_row "$row" && WITH_REDIS=1; done
REDIS_PORT_WANT=${REDIS_PORT:-18530}; REDIS_PORT=0
if [ $WITH_REDIS = 1 ]; then
  REDIS_PORT=$REDIS_PORT_WANT
  while ! port_free "$REDIS_PORT" || [[ " $BACKEND_PORT ${ports[*]} " == *" $REDIS_PORT "* ]]; do REDIS_PORT=$((REDIS_PORT + 1)); done
fi

TS=$(date +%Y%m%d-%H%M%S)
OUT="$BENCH_DIR/out/policies-$TS"; RUN="$OUT/run"; KEEP_RUN=1
mkdir -p "$OUT/raw" "$RUN/nginx_tmp" "$RUN/tmp"
snapshot_lunagate
# private copies of every config input: editing bench/conf or the anchors during a run changes nothing
cp -r "$BENCH_DIR/conf/lua" "$RUN/lua"
cp "$BENCH_DIR/conf/lunagate_policies.yaml" "$BENCH_DIR/conf/nginx_lua_policy.conf" "$RUN/"
if [ -d "$ANCHORS_DIR" ]; then
  mkdir -p "$RUN/anchors/conf" "$RUN/anchors/lua"
  cp "$ANCHORS_DIR"/conf/nginx_common.inc "$ANCHORS_DIR"/conf/nginx_native_policy.conf "$ANCHORS_DIR"/conf/nginx_lua_jwt.conf "$RUN/anchors/conf/" 2>/dev/null || true
  cp "$ANCHORS_DIR"/lua/gw_jwt.lua "$RUN/anchors/lua/" 2>/dev/null || true
  cp "$ANCHORS_DIR"/conf/nginx_lua_redis.conf "$RUN/anchors/conf/" 2>/dev/null || true
  cp "$ANCHORS_DIR"/lua/gw_policy_redis.lua "$ANCHORS_DIR"/lua/gw_consumers.lua "$RUN/anchors/lua/" 2>/dev/null || true
fi
# the consumers (lunagate) and the key map (the anchors' nginx native row), same keys
{ for i in $(seq 1 1000); do printf '  - { id: consumer-%d, keys: [ key-%04d ] }\n' "$i" "$i"; done
  echo '  - { id: consumer-limited, keys: [ key-limited ] }'
  echo '  - { id: issuer-1 }'; } > "$RUN/consumers.yaml"
{ for i in $(seq 1 1000); do printf 'key-%04d consumer-%d;\n' "$i" "$i"; done
  echo "key-limited consumer-limited;"; } > "$RUN/apikeys.nginx.map"
log "output -> $OUT"
start_backend "$BACKEND_PORT"
redis_cli() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"; }
redis_cmds() {  # commands redis-server has processed so far (INFO's count includes the INFO itself)
  if [ $WITH_REDIS = 1 ]; then redis_cli INFO stats | awk -F: '/^total_commands_processed:/{gsub(/\r/,"",$2); print $2+0}'; else echo 0; fi
}
if [ $WITH_REDIS = 1 ]; then
  # one redis-server for all Redis rows, beside the backend and the load generator; stopped by PID
  mkdir -p "$RUN/redis"
  start_bg redis "$LOADGEN_CPU" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
    --daemonize no --dir "$RUN/redis"
  wait_port "$REDIS_PORT" 10 || { cat "$RUN/redis.log" >&2; die "redis-server did not listen on $REDIS_PORT"; }
  [ "$(redis_cli PING)" = PONG ] || die "redis-server on $REDIS_PORT does not answer PING"
  REDIS_VERSION=$(redis-server --version | awk '{print $3}' | sed 's/^v=//')
  log "redis-server $REDIS_VERSION on 127.0.0.1:$REDIS_PORT (pid ${PIDS[redis]}, CPU $LOADGEN_CPU)"
fi

# ------------------------------------------------------------------ rows
anchors_render() {  # anchors_render TEMPLATE NAME PORT OUT : the anchors' placeholders, as their lib.sh renders them
  sed -e "s|@ROOT@|$RUN/anchors|g" -e "s|@RUN@|$RUN|g" -e "s|@NAME@|$2|g" -e "s|@PORT@|$3|g" \
      -e "s|@BACKEND_PORT@|$BACKEND_PORT|g" -e "s|@REDIS_PORT@|$REDIS_PORT|g" -e "s|@MODDIR@|$MODDIR|g" \
      -e "s|@JWT_SECRET@|$JWT_SECRET|g" -e 's/^master_process on;/master_process off;/' "$1" > "$4"
  sed -e "s|@RUN@|$RUN|g" -e "s|@NAME@|$2|g" "$RUN/anchors/conf/nginx_common.inc" > "$RUN/nginx_common_$2.inc"
  grep -q '^master_process off;' "$4" || die "$2: could not make $1 a single process"
}
row_cmd() {  # row_cmd ROW -> ROW_ARGS (array): the foreground command of ROW
  local row=$1 cfg pol
  PORT_R=${ROW_PORT[$row]}
  case $row in
    nginx_lua)
      cfg="$RUN/nginx_lua_policy.rendered.conf"
      render "$RUN/nginx_lua_policy.conf" "$cfg.tmp"
      sed "s|{MODDIR}|$MODDIR|g" "$cfg.tmp" > "$cfg"; rm -f "$cfg.tmp"
      ROW_ARGS=(nginx -p "$RUN/" -e "$RUN/$row.startup.log" -c "$cfg");;
    nginx_native)
      cfg="$RUN/nginx_native.conf"
      anchors_render "$RUN/anchors/conf/nginx_native_policy.conf" "$row" "$PORT_R" "$cfg"
      ROW_ARGS=(nginx -p "$RUN/" -e "$RUN/$row.startup.log" -c "$cfg");;
    nginx_lua_jwt|nginx_lua_redis)
      cfg="$RUN/$row.conf"
      anchors_render "$RUN/anchors/conf/$row.conf" "$row" "$PORT_R" "$cfg"
      ROW_ARGS=(nginx -p "$RUN/" -e "$RUN/$row.startup.log" -c "$cfg");;
    plain|native|jwt|redis_exact|redis_batch)
      cfg="$RUN/lunagate_$row.yaml"
      rsec=""
      case $row in plain) pol="[]";; native) pol=$POLICIES_NATIVE;; jwt) pol=$POLICIES_JWT;;
        redis_exact) pol=$POLICIES_REDIS_EXACT;; redis_batch) pol=$POLICIES_REDIS_BATCH;; esac
      is_redis_row "$row" && rsec=${REDIS_SECTION_TMPL//\{REDIS_PORT\}/$REDIS_PORT}
      render "$RUN/lunagate_policies.yaml" "$cfg.tmp"
      awk -v f="$RUN/consumers.yaml" -v pol="$pol" -v rsec="$rsec" '
        $0 == "{REDIS}" { if (rsec != "") print rsec; next }
        $0 == "{CONSUMERS}" { while ((getline l < f) > 0) print l; next }
        { i = index($0, "{POLICIES}"); if (i) $0 = substr($0, 1, i-1) pol substr($0, i+10); print }' "$cfg.tmp" > "$cfg"
      rm -f "$cfg.tmp"
      "$LUNAGATE_BIN" check -c "$cfg" > "$RUN/check_$row.log" 2>&1 || { cat "$RUN/check_$row.log" >&2; die "$row: lunagate check rejected $cfg"; }
      ROW_ARGS=("$LUNAGATE_BIN" run -c "$cfg");;
    *) die "unknown row $row";;
  esac
}
start_row() {  # start_row ROW [WRAPPER...] -> PIDS[ROW]
  local row=$1; shift
  row_cmd "$row"
  start_bg "$row" "$GW_CPU" "$@" "${ROW_ARGS[@]}"
  wait_port "${ROW_PORT[$row]}" 90 || { tail -20 "$RUN/$row.log" "$RUN/$row".*.log >&2 2>/dev/null; die "$row did not listen on ${ROW_PORT[$row]}"; }
  local body
  body=$(curl -s --max-time 30 "${HDRS[@]}" "http://127.0.0.1:${ROW_PORT[$row]}/")
  [ "$body" = '{"ok":true}' ] || die "$row: GET / answered '$body'"
}

# ------------------------------------------------------------------ (0) functional checks
CHECKS="$OUT/checks.txt"; : > "$CHECKS"
code_of() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@"; }
check_row() {  # check_row ROW : fails the run if the row does not implement what it should
  local row=$1 port=${ROW_PORT[$1]} url code codes="" retry="" i c0
  url="http://127.0.0.1:$port"
  if is_redis_row "$row"; then redis_cli FLUSHALL >/dev/null; c0=$(redis_cmds); fi
  curl -s --max-time 5 "${HDRS[@]}" "$url/echo" > "$RUN/echo_$row.json" || die "$row: /echo failed"
  python3 - "$RUN/echo_$row.json" "${ROW_CONSUMER[$row]}" "$row" "${ROW_CHECK[$row]}" >> "$CHECKS" <<'PY' || die "$row: functional check failed (see $CHECKS)"
import json, sys
path, want, row, kind = sys.argv[1:5]
hdrs = {}
for k, v in json.load(open(path))["headers"]:
    hdrs.setdefault(k.lower(), []).append(v)
cid, rm = hdrs.get("x-consumer-id"), hdrs.get("x-remove-me")
if kind == "plain":
    ok = cid is None and rm == ["x"]
    print(f"{row}: upstream sees the request unchanged (X-Consumer-ID={cid} X-Remove-Me={rm}): {'ok' if ok else 'FAIL'}")
    sys.exit(0 if ok else 1)
ok = cid == [want] and rm is None
cred = "apikey key-0042" if kind == "policy" else "Bearer token (iss issuer-1)"
print(f"{row}: {cred} -> 200, upstream X-Consumer-ID={cid} X-Remove-Me={rm}: {'ok' if ok else 'FAIL'}")
sys.exit(0 if ok else 1)
PY
  [ "${ROW_CHECK[$row]}" = plain ] && return 0
  if [ "${ROW_CHECK[$row]}" = jwt ]; then
    code=$(code_of -H "Authorization: Bearer $BAD_TOKEN" "$url/")
    echo "$row: wrong signature -> $code" >> "$CHECKS"; [ "$code" = 401 ] || die "$row: wrong signature answered $code, not 401"
    code=$(code_of -H "Authorization: Bearer $OLD_TOKEN" "$url/")
    echo "$row: expired (exp 2001) -> $code" >> "$CHECKS"; [ "$code" = 401 ] || die "$row: expired token answered $code, not 401"
    code=$(code_of -H "X-Remove-Me: x" "$url/")
    echo "$row: no token -> $code" >> "$CHECKS"; [ "$code" = 401 ] || die "$row: missing token answered $code, not 401"
    return 0
  fi
  code=$(code_of -H "apikey: key-9999" -H "X-Remove-Me: x" "$url/")
  echo "$row: bad key -> $code" >> "$CHECKS"; [ "$code" = 401 ] || die "$row: bad key answered $code, not 401"
  code=$(code_of -H "X-Remove-Me: x" "$url/")
  echo "$row: no key -> $code" >> "$CHECKS"; [ "$code" = 401 ] || die "$row: missing key answered $code, not 401"
  for i in 1 2 3; do
    curl -s -D "$RUN/limited_$row.$i.h" -o /dev/null --max-time 5 -H "apikey: key-limited" -H "X-Remove-Me: x" "$url/" || true
    code=$(awk 'NR==1{print $2}' "$RUN/limited_$row.$i.h")
    codes="$codes${codes:+ }$code"
    if [ "$code" = 429 ]; then retry=$(awk -F': *' 'tolower($1)=="retry-after"{gsub(/\r/,"",$2); print $2}' "$RUN/limited_$row.$i.h"); break; fi
  done
  echo "$row: key-limited x3 -> $codes (Retry-After: ${retry:-none})" >> "$CHECKS"
  [[ " $codes " == *" 429 "* ]] || die "$row: key-limited got no 429 in 3 requests ($codes)"
  [ "${ROW_RETRY[$row]}" = 0 ] || [ -n "$retry" ] || die "$row: the 429 has no Retry-After"
  if is_redis_row "$row"; then  # the limits live in Redis: it was asked, and holds the counters
    echo "$row: Redis consulted: $(( $(redis_cmds) - c0 - 1 )) commands during the checks above; keys after FLUSHALL: $(redis_cli --scan | sort | tr '\n' ' ' | sed 's/ $//')" >> "$CHECKS"
    [ -n "$(redis_cli --scan | head -1)" ] || die "$row: no key in Redis after the checks"
  fi
}

# ------------------------------------------------------------------ (c) wall clock (as run_scripts.sh)
measure() {  # measure ROUND ROW TRY -> "rps p50_us p99_us errors gw_us_per_req gw_cpu_pct redis_us_per_req redis_cmds_per_req noise_pct"
  local r=$1 row=$2 t=$3 f pid g0 g1 b0 b1 d0=0 d1=0 c0=0 c1=0 m0 m1 e0 e1 rps p50 p99 err tool
  f="$OUT/raw/wall_r${r}_${row}_try$t.wrk"; pid=${PIDS[$row]}
  [ "$WARMUP" -gt 0 ] && run_wrk "$f.warmup" "$WARMUP" "${ROW_PORT[$row]}"
  # redis-server's CPU counts as ours (not foreign) whenever it runs; per request only for Redis rows
  [ $WITH_REDIS = 1 ] && { c0=$(redis_cmds); d0=$(proc_ticks "${PIDS[redis]}"); }
  g0=$(proc_ticks "$pid"); b0=$(proc_ticks "${PIDS[backend]}"); m0=$(busy_ticks); e0=$(date +%s.%N)
  local u0 s0 u1 s1; read -r u0 s0 < <(proc_ticks_us "$pid")
  run_wrk "$f" "$DURATION" "${ROW_PORT[$row]}"
  g1=$(proc_ticks "$pid"); b1=$(proc_ticks "${PIDS[backend]}"); m1=$(busy_ticks); e1=$(date +%s.%N)
  read -r u1 s1 < <(proc_ticks_us "$pid")
  [ $WITH_REDIS = 1 ] && { d1=$(proc_ticks "${PIDS[redis]}"); c1=$(redis_cmds); }
  rps=$(awk '/^Requests\/sec:/{print $2}' "$f"); rps=${rps:-0}
  # The gateway's CPU per request split into user and kernel time (every try; usersys.tsv).
  awk -v r="$r" -v row="$row" -v t="$t" -v rps="$rps" -v hz="$HZ" -v u="$((u1 - u0))" -v sy="$((s1 - s0))" -v e0="$e0" -v e1="$e1" \
    'BEGIN{ el=e1-e0; if (el<=0) el=1; if (rps>0) printf "%s\t%s\t%s\t%.2f\t%.2f\n", r, row, t, 1e6*u/hz/(rps*el), 1e6*sy/hz/(rps*el) }' >> "$OUT/usersys.tsv"
  p50=$(awk '$1=="50%"{print $2}' "$f" | to_us); p99=$(awk '$1=="99%"{print $2}' "$f" | to_us)
  err=$(awk '/Non-2xx/{n+=$NF} /Socket errors/{gsub(/,/,""); n+=$4+$6+$8+$10} END{print n+0}' "$f")
  tool=$(awk '{print $1+$2}' "$f.cpu" 2>/dev/null || echo 0)
  awk -v rps="$rps" -v p50="${p50:-NA}" -v p99="${p99:-NA}" -v err="$err" -v hz="$HZ" -v rr="$(is_redis_row "$row" && echo 1 || echo 0)" \
      -v g="$((g1 - g0))" -v b="$((b1 - b0))" -v d="$((d1 - d0))" -v c="$((c1 - c0 - 1))" -v m="$((m1 - m0))" -v tool="$tool" -v e0="$e0" -v e1="$e1" 'BEGIN{
    el=e1-e0; if (el<=0) el=1
    noise=m/hz-g/hz-b/hz-d/hz-tool; if (noise<0) noise=0
    n=rps*el   # wrk counts requests over its own duration: close to el
    printf "%s %s %s %s %s %.1f %s %s %.1f\n", rps, p50, p99, err, (rps>0)?sprintf("%.2f", 1e6*g/hz/n):"NA", 100*g/hz/el,
      (rr && rps>0)?sprintf("%.2f", 1e6*d/hz/n):"NA", (rr && rps>0)?sprintf("%.4f", c/n):"NA", 100*noise/el }'
}
WALL_EXTRA=(redis_us_per_req redis_cmds_per_req)  # measure's own two columns (lib.sh wall)

# ------------------------------------------------------------------ (a) callgrind, (b) strace (lib.sh), with Redis counts
# Redis commands as INFO counts them: a script's own redis.call()s count as commands too, so the
# per-command breakdown (INFO commandstats) shows the round trips (EVALSHA/EVAL, or INCR in the
# Lua row) apart from the work inside the scripts.
REDIS_C0=0
redis_cmdstats() { redis_cli INFO commandstats | tr -d '\r' | awk -F'[:=,]' '/^cmdstat_/{sub(/^cmdstat_/,"",$1); print $1, $3}'; }
redis_mark() { [ $WITH_REDIS = 1 ] && { redis_cmdstats > "$RUN/cmdstats.before"; REDIS_C0=$(redis_cmds); }; return 0; }
redis_note() {  # redis_note ROW PASS REQS_2XX : Redis commands per request since redis_mark -> redis.tsv
  is_redis_row "$1" || return 0
  local c=$(( $(redis_cmds) - REDIS_C0 - 1 )) by   # minus the INFO stats of redis_mark (its INFO commandstats came before REDIS_C0)
  by=$(redis_cmdstats | awk -v r="${3:-0}" 'NR==FNR{b[$1]=$2; next} { d=$2-b[$1]; if ($1=="info") d-=3; if (d>0 && r>0) printf "%s%s %.4f", (k++?", ":""), $1, d/r }' "$RUN/cmdstats.before" -)
  printf "%s\t%s\t%s\t%s\t%s\t%s\n" "$1" "$2" "${3:-0}" "$c" "$(awk -v c="$c" -v r="${3:-0}" 'BEGIN{ if (r>0) printf "%.4f", c/r; else print "NA" }')" "${by:-none}" >> "$OUT/redis.tsv"
}
pass_mark() { redis_mark; }
pass_note() { redis_note "$@"; }

# ------------------------------------------------------------------ callgrind_annotate helpers (annotate, top_self, delta_self: lib.sh)
group_self() {  # group_self ROW -> "group<TAB>Ir/req" : self Ir per request by where it runs
  local f="$OUT/raw/$1.callgrind"
  [ -f "$f" ] || return 0
  annotate "$f" | awk -F'\t' -v r="$(cat "$OUT/raw/$1.callgrind.reqs")" '{
    g = "gateway code + libstdc++ + other"
    if ($2 ~ /libhiredis/) g = "hiredis"; else if ($2 ~ /malloc\/|malloc\.c|arena\.c/) g = "malloc/free"
    else if ($2 ~ /libcrypto/) g = "libcrypto"; else if ($2 ~ /\[libc\.so/) g = "libc (other)"
    else if ($2 ~ /luajit|ngx_http_lua|\[\/usr\/sbin\/nginx\]/) g = "nginx/LuaJIT"
    s[g] += $1 } END { for (g in s) printf "%s\t%.0f\n", g, s[g]/r }' | sort; }
delta_groups() {  # delta_groups ROW BASE -> "group +N (row vs base), ..." sorted by the difference
  join -t $'\t' -a1 -a2 -e 0 -o 0,1.2,2.2 <(group_self "$1") <(group_self "$2") |
    awk -F'\t' '{printf "%d\t%s\t%s\t%s\n", $2-$3, $1, $2, $3}' | sort -t $'\t' -k1,1 -g -r |
    awk -F'\t' '{printf "%s%s %+d (%s vs %s)", (NR>1)?", ":"", $2, $1, $3, $4}'; }

# ------------------------------------------------------------------ run
log "functional checks"
for row in "${ROWS[@]}"; do start_row "$row"; check_row "$row"; done
cat "$CHECKS" >&2
# every row stays up for all rounds (the key-limited bucket is not touched by the load)
[ $DO_WALL = 1 ] && wall
for row in "${ROWS[@]}"; do stop_proc "$row"; done

printf "row\tbatch\treqs_2xx\tIr\tIr_per_req\n" > "$OUT/callgrind.tsv"
printf "row\treqs_2xx\tsyscalls\tsyscalls_per_req\ttop_per_req\n" > "$OUT/strace.tsv"
printf "row\tpass\treqs_2xx\tredis_cmds\tredis_cmds_per_req\tby_command_per_req\n" > "$OUT/redis.tsv"
for row in "${ROWS[@]}"; do
  [ $DO_CG = 1 ] && callgrind_pass "$row"
  [ $DO_ST = 1 ] && strace_pass "$row"
done

# ------------------------------------------------------------------ report
ALL_ROWS=(plain native nginx_native nginx_lua jwt nginx_lua_jwt redis_exact redis_batch nginx_lua_redis)
declare -A IR RPS P50 P99 US GWP RUS RCMD
for row in "${ALL_ROWS[@]}"; do IR[$row]=NA; RPS[$row]=NA; P50[$row]=NA; P99[$row]=NA; US[$row]=NA; GWP[$row]=NA; RUS[$row]=NA; RCMD[$row]=NA; done
for row in "${ROWS[@]}"; do
  IR[$row]=$(cg_med "$row")
  if [ $DO_WALL = 1 ]; then
    RPS[$row]=$(wcol "$row" rps | median); P50[$row]=$(wcol "$row" p50_us | median)
    P99[$row]=$(wcol "$row" p99_us | median); US[$row]=$(wcol "$row" gw_us_per_req | median); GWP[$row]=$(wcol "$row" gw_cpu_pct | median)
    RUS[$row]=$(wcol "$row" redis_us_per_req | median); RCMD[$row]=$(wcol "$row" redis_cmds_per_req | median)
  fi
done
# gateway + redis-server CPU per request (the Redis rows' whole limiting cost on this machine)
sum_us() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a=="NA") print "NA"; else if (b=="NA") print a; else printf "%.2f", a+b }'; }
rcmd_pass() {  # rcmd_pass ROW PASS-PREFIX -> median Redis commands/request over those passes
  awk -F'\t' -v n="$1" -v p="$2" 'NR>1 && $1==n && index($2, p)==1 && $5!="NA"{print $5}' "$OUT/redis.tsv" | median; }
ir_diff() { fmt_int "$(awk -v a="${IR[$1]}" -v b="${IR[$2]}" 'BEGIN{ if (a=="NA" || b=="NA") print "NA"; else print a-b }')"; }
has_row() { [[ " ${ROWS[*]} " == *" $1 "* ]]; }
pr() { if has_row "$2" && has_row "$3" && [ $DO_WALL = 1 ]; then paired "$1" "$2" "$3"; else echo NA; fi; }
noisy_runs() { [ $DO_WALL = 1 ] || { echo "not measured"; return; }
  awk -F'\t' -v m="$NOISE_MAX" 'NR>1 && $11>m{printf "%s%s r%s (%s%%)", (k++?", ":""), $2, $1, $11} END{if(!k) printf "none"}' "$OUT/wall.tsv"; }
report_common() {
  echo "Every request: \`GET /\` with \`apikey: key-0042\`, \`X-Remove-Me: x\` and \`Authorization: Bearer <the anchors' HS256 token, 149 bytes>\` (all rows alike), answered 200 \`{\"ok\":true}\` by build/lg-backend. Instructions: callgrind, h2load --h1 -n $REQS -c $CONNS, median of $BATCHES batches (after a 2,000-request warm-up). Syscalls: strace -f -c, one batch. Wall clock: wrk -t1 -c$CONNS -d${DURATION}s --latency, $ROUNDS rounds alternating the rows, median; before each run the script waits (up to ${QUIET_WAIT:-60} s) for the machine to go quiet and retries (up to $MAX_TRIES tries) a run during which other processes used more than ${NOISE_MAX}% of a CPU."
  echo
  echo "lunagate's rows (bench/conf/lunagate_policies.yaml, 1,002 consumers generated into the run's config):"
  echo
  echo "- native: \`policies: $POLICIES_NATIVE\`"
  if [ "$RESULTS_KEY" = redis ]; then
    echo "- redis_exact: \`policies: $POLICIES_REDIS_EXACT\`"
    echo "- redis_batch: \`policies: $POLICIES_REDIS_BATCH\` (default batch: min(limit / (4 × workers), 100), at least 1: 100 for the 10⁹/s limit, 1 for consumer-limited's 1/s)"
    echo "- both Redis rows: top-level \`${REDIS_SECTION_TMPL//\{REDIS_PORT\}/<port>}\` (\`closed\`: a Redis failure is a 503 counted as an error, never an unchecked 200; timeout $REDIS_TIMEOUT rather than the default 50ms because redis-server shares the saturated CPU $LOADGEN_CPU with wrk and the backend on a machine other work also uses: a 50 ms stall there once turned the functional check's answers into 503s); redis-server $REDIS_VERSION started by the script: \`redis-server --port <free port> --bind 127.0.0.1 --save \"\" --appendonly no --daemonize no\`, on CPU $LOADGEN_CPU with wrk and the backend, FLUSHALL before each Redis row's checks, stopped by PID at exit"
    echo "- nginx_lua_redis: the shared anchors' conf/nginx_lua_redis.conf + lua/gw_policy_redis.lua (lua-resty-redis $(dpkg-query -W -f '${Version}' lua-nginx-redis 2>/dev/null || echo '?'); pipelined INCR + EXPIRE on a 1-second fixed window per request, cosocket keepalive pool), \`master_process off\`, the same redis-server"
    echo "- notes: as in the policies section: key-auth hides \`apikey\` upstream, rate-limit adds \`RateLimit-*\` to every response."
  else
  echo "- jwt: \`policies: $(echo "$POLICIES_JWT" | sed "s|$JWT_SECRET|{JWT_SECRET}|")\` (the token has no kid: the one HS256 key is used; no iat, so no max_lifetime)"
  echo "- notes: key-auth's \`hide_credentials\` defaults to true, so lunagate's native row also drops \`apikey\` upstream (the nginx rows forward it); rate-limit adds \`RateLimit-Limit/-Remaining/-Reset\` to every response (nginx native adds none); lunagate also adds X-Request-ID, traceparent and X-Forwarded-* as in every lunagate row. lunagate's jwt row names the consumer by the claim's value (\`consumer_claim: iss\` → X-Consumer-ID \`issuer-1\`, the consumer with that id attached); the anchors' Lua looks \`iss\` up in a credential table naming \`consumer-1\`."
  fi
  [ ${#SKIPPED[@]} -gt 0 ] && { echo; echo "Skipped rows: $(printf '%s; ' "${SKIPPED[@]}" | sed 's/; $//') (compared against the anchors' published figures instead)."; }
  echo
  echo "Functional checks (before any load):"
  echo
  sed 's/^/- /' "$CHECKS"
  echo
  if [ $WITH_REDIS = 0 ]; then
  echo "| row | instructions/req | spread | syscalls/req | req/s | p50 | p99 | gateway CPU µs/req | gateway CPU % | req/s per round |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
  for row in "${ROWS[@]}"; do
    printf "| %s | %s | %s | %s | %s | %s µs | %s µs | %s | %s | %s |\n" "${ROW_LABEL[$row]}" "$(fmt_int "${IR[$row]}")" \
      "$(cg_spread "$row")" "$(sc_per "$row")" "$(fmt_int "${RPS[$row]}")" "$(fmt_int "${P50[$row]}")" "$(fmt_int "${P99[$row]}")" \
      "${US[$row]}" "${GWP[$row]}" "$([ $DO_WALL = 1 ] && wcol "$row" rps | awk '{printf "%s%.0f", (NR>1)?", ":"", $1}')"
  done
  else
  echo "| row | gateway instructions/req | spread | gateway syscalls/req | Redis cmds/req | req/s | p50 | p99 | gateway CPU µs/req | gateway CPU % | redis-server CPU µs/req | req/s per round |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
  for row in "${ROWS[@]}"; do
    printf "| %s | %s | %s | %s | %s | %s | %s µs | %s µs | %s | %s | %s | %s |\n" "${ROW_LABEL[$row]}" "$(fmt_int "${IR[$row]}")" \
      "$(cg_spread "$row")" "$(sc_per "$row")" "$(is_redis_row "$row" && rcmd_pass "$row" callgrind || echo –)" "$(fmt_int "${RPS[$row]}")" "$(fmt_int "${P50[$row]}")" "$(fmt_int "${P99[$row]}")" \
      "${US[$row]}" "${GWP[$row]}" "$(is_redis_row "$row" && echo "${RUS[$row]}" || echo –)" "$([ $DO_WALL = 1 ] && wcol "$row" rps | awk '{printf "%s%.0f", (NR>1)?", ":"", $1}')"
  done
  fi
}
report_policies() {
  echo
  echo "Shared anchors' figures (../shared/anchors/README.md, their harness and backend): nginx native policy $(fmt_int $ANCHOR_NGINX_NATIVE_IR), nginx+LuaJIT policy $(fmt_int $ANCHOR_NGINX_LUA_IR), nginx+LuaJIT JWT HS256 $(fmt_int $ANCHOR_NGINX_LUA_JWT_IR), HAProxy native JWT $(fmt_int $ANCHOR_HAPROXY_JWT_IR) instructions/req."
  echo
  echo "Top syscalls per request: $(for row in "${ROWS[@]}"; do printf '%s: %s; ' "$row" "$(sc_top "$row")"; done | sed 's/; $//')."
  echo
  echo "Ratios (medians; paired = median over rounds of the ratio within one round):"
  echo
  echo "- native / plain: instructions $(ratio "${IR[native]}" "${IR[plain]}") (+$(ir_diff native plain) per request), throughput $(ratio "${RPS[native]}" "${RPS[plain]}") (paired $(pr rps native plain)), gateway CPU/req $(ratio "${US[native]}" "${US[plain]}"); jwt / plain: instructions $(ratio "${IR[jwt]}" "${IR[plain]}") (+$(ir_diff jwt plain) per request)"
  echo "- native / nginx+Lua policy: instructions $(ratio "${IR[native]}" "${IR[nginx_lua]}"), syscalls $(ratio "$(sc_per native)" "$(sc_per nginx_lua)"), throughput **$(ratio "${RPS[native]}" "${RPS[nginx_lua]}")** (paired $(pr rps native nginx_lua)), p50 $(ratio "${P50[native]}" "${P50[nginx_lua]}"), p99 **$(ratio "${P99[native]}" "${P99[nginx_lua]}")** (paired $(pr p99_us native nginx_lua)), gateway CPU/req $(ratio "${US[native]}" "${US[nginx_lua]}")"
  us_med() { awk -F'\t' -v n="$1" -v k="$2" '$2==n{print $k}' "$OUT/usersys.tsv" 2>/dev/null | median; }
  [ -f "$OUT/usersys.tsv" ] && echo "- gateway CPU per request, user + kernel (medians over rounds): $(for row in "${ROWS[@]}"; do printf '%s %s + %s µs; ' "$row" "$(us_med "$row" 4)" "$(us_med "$row" 5)"; done | sed 's/; $//')"
  echo "- native / nginx native policy: instructions $(ratio "${IR[native]}" "${IR[nginx_native]}"), syscalls $(ratio "$(sc_per native)" "$(sc_per nginx_native)"), throughput $(ratio "${RPS[native]}" "${RPS[nginx_native]}") (paired $(pr rps native nginx_native)), p99 $(ratio "${P99[native]}" "${P99[nginx_native]}"), gateway CPU/req $(ratio "${US[native]}" "${US[nginx_native]}")"
  echo "- jwt / nginx+LuaJIT JWT: instructions $(ratio "${IR[jwt]}" "${IR[nginx_lua_jwt]}"), syscalls $(ratio "$(sc_per jwt)" "$(sc_per nginx_lua_jwt)"), throughput $(ratio "${RPS[jwt]}" "${RPS[nginx_lua_jwt]}") (paired $(pr rps jwt nginx_lua_jwt)), p99 $(ratio "${P99[jwt]}" "${P99[nginx_lua_jwt]}"), gateway CPU/req $(ratio "${US[jwt]}" "${US[nginx_lua_jwt]}")"
  echo
  echo "Goals (issue 4 point 9):"
  echo
  awk -v i="${IR[native]}" -v g="$GOAL_NATIVE_IR" -v a="$ANCHOR_NGINX_NATIVE_IR" -v n="${IR[nginx_native]}" 'BEGIN{
    if (i=="NA") { print "- native policy <= " g " instructions/req: not measured"; exit }
    printf "- native policy <= %s instructions/req: %s (%s; %s; nginx native here: %s, shared anchors: %s)\n", g, (i+0<=g)?"**met**":"**not met**",
      i, (i+0<=g)?sprintf("%.0f under", g-i):sprintf("%.0f over, %+.1f%%", i-g, 100*(i/g-1)), n, a }'
  awk -v a="${RPS[native]}" -v b="${RPS[nginx_lua]}" -v x="$GOAL_NATIVE_RPS_X" -v pa="${P99[native]}" -v pb="${P99[nginx_lua]}" -v pr="$(pr rps native nginx_lua)" -v pp="$(pr p99_us native nginx_lua)" 'BEGIN{
    if (a=="NA"||b=="NA") { print "- native throughput and p99 vs nginx+Lua: not measured"; exit }
    r=a/b; printf "- native >= %sx nginx+Lua throughput: %s (%.3fx of medians, paired %s%s)\n", x, (r>=x)?"**met**":"**not met**", r, pr, (r>=x)?"":sprintf("; %.1f%% short of %sx", 100*(1-r/x), x)
    q=pa/pb; printf "- native p99 no worse than nginx+Lua: %s (%s µs vs %s µs, %.3fx, paired %s)\n", (q<=1)?"**met**":"**not met**", pa, pb, q, pp }'
  awk -v i="${IR[jwt]}" -v g="$GOAL_JWT_IR" -v n="${IR[nginx_lua_jwt]}" -v a="$ANCHOR_NGINX_LUA_JWT_IR" -v h="$ANCHOR_HAPROXY_JWT_IR" 'BEGIN{
    if (i=="NA") { print "- JWT HS256 <= " g " instructions/req: not measured"; exit }
    printf "- JWT HS256 <= %s instructions/req: %s (%s; %s; nginx+LuaJIT here: %s, shared anchors: nginx+LuaJIT %s, HAProxy %s)\n", g, (i+0<=g)?"**met**":"**not met**",
      i, (i+0<=g)?sprintf("%.0f under", g-i):sprintf("%.0f over, %+.1f%%", i-g, 100*(i/g-1)), n, a, h }'
  for row in "${ROWS[@]}"; do
    [ -f "$OUT/raw/$row.callgrind" ] || continue
    case $row in native|jwt) n=25;; plain) continue;; *) n=12;; esac
    echo
    echo "Where the $row row's instructions go (\`callgrind_annotate --inclusive=no\`, last batch, self Ir per request, top $n):"
    echo
    echo "| Ir/req | share | function |"
    echo "|---:|---:|---|"
    top_self "$row" "$n"
  done
  for row in native jwt; do
    [ -f "$OUT/raw/$row.callgrind" ] && [ -f "$OUT/raw/plain.callgrind" ] || continue
    echo
    echo "What the $row row adds over lunagate with no policy (self Ir per request, $row − plain, top 20; $(ir_diff "$row" plain) in all):"
    echo
    echo "| added Ir/req | $row | plain | function |"
    echo "|---:|---:|---:|---|"
    delta_self "$row" plain 20
  done
}
report_redis() {
  local row base n
  echo
  echo "Redis commands per request (INFO total_commands_processed over the pass / 2xx answers; it counts a script's own redis.call()s as commands, so the round trips are the EVALSHA/EVAL (lunagate) or INCR (nginx+Lua, pipelined with EXPIRE) of the breakdown): $(for row in redis_exact redis_batch nginx_lua_redis; do has_row "$row" || continue; printf '%s: callgrind %s, strace %s, wall %s; ' "$row" "$(rcmd_pass "$row" callgrind)" "$(rcmd_pass "$row" strace)" "${RCMD[$row]}"; done | sed 's/; $//')."
  echo
  echo "By command, per request (INFO commandstats, strace pass): $(for row in redis_exact redis_batch nginx_lua_redis; do has_row "$row" || continue; printf '%s: %s; ' "$row" "$(awk -F'\t' -v n="$row" 'NR>1 && $1==n && $2=="strace"{print $6}' "$OUT/redis.tsv")"; done | sed 's/; $//')."
  echo
  echo "Shared anchors' figures (../shared/anchors/README.md, their harness and backend): nginx + LuaJIT with a Redis round trip per request $(fmt_int $ANCHOR_NGINX_LUA_REDIS_IR) instructions/req, $ANCHOR_NGINX_LUA_REDIS_SC syscalls/req, $(fmt_int $ANCHOR_NGINX_LUA_REDIS_RPS) req/s = $(ratio $ANCHOR_NGINX_LUA_REDIS_RPS $ANCHOR_NGINX_PROXY_RPS)× their nginx proxy ($(fmt_int $ANCHOR_NGINX_PROXY_RPS)) and $(ratio $ANCHOR_NGINX_LUA_REDIS_RPS $ANCHOR_NGINX_LUA_RPS)× their nginx+LuaJIT local policy ($(fmt_int $ANCHOR_NGINX_LUA_RPS)); nginx+LuaJIT local policy $(fmt_int $ANCHOR_NGINX_LUA_IR) instructions/req."
  echo
  echo "Top syscalls per request: $(for row in "${ROWS[@]}"; do printf '%s: %s; ' "$row" "$(sc_top "$row")"; done | sed 's/; $//')."
  echo
  echo "Ratios (medians; paired = median over rounds of the ratio within one round; \"+ redis\" = gateway CPU + redis-server CPU per request):"
  echo
  for row in redis_exact redis_batch; do
    has_row "$row" || continue
    echo "- $row / native (local limits): instructions $(ratio "${IR[$row]}" "${IR[native]}") (+$(ir_diff "$row" native) per request), syscalls $(ratio "$(sc_per "$row")" "$(sc_per native)"), throughput **$(ratio "${RPS[$row]}" "${RPS[native]}")** (paired **$(pr rps "$row" native)**), p50 $(ratio "${P50[$row]}" "${P50[native]}"), p99 $(ratio "${P99[$row]}" "${P99[native]}") (paired $(pr p99_us "$row" native)), gateway CPU/req $(ratio "${US[$row]}" "${US[native]}") (paired $(pr gw_us_per_req "$row" native)), gateway + redis CPU/req $(ratio "$(sum_us "${US[$row]}" "${RUS[$row]}")" "${US[native]}")"
  done
  has_row nginx_lua_redis && echo "- nginx_lua_redis / nginx_lua (its local-limit policy): instructions $(ratio "${IR[nginx_lua_redis]}" "${IR[nginx_lua]}") (+$(ir_diff nginx_lua_redis nginx_lua) per request), syscalls $(ratio "$(sc_per nginx_lua_redis)" "$(sc_per nginx_lua)"), throughput $(ratio "${RPS[nginx_lua_redis]}" "${RPS[nginx_lua]}") (paired $(pr rps nginx_lua_redis nginx_lua)), p99 $(ratio "${P99[nginx_lua_redis]}" "${P99[nginx_lua]}"), gateway CPU/req $(ratio "${US[nginx_lua_redis]}" "${US[nginx_lua]}"), gateway + redis CPU/req $(ratio "$(sum_us "${US[nginx_lua_redis]}" "${RUS[nginx_lua_redis]}")" "${US[nginx_lua]}")"
  for row in redis_exact redis_batch; do
    has_row "$row" && has_row nginx_lua_redis || continue
    echo "- $row / nginx_lua_redis: instructions $(ratio "${IR[$row]}" "${IR[nginx_lua_redis]}"), syscalls $(ratio "$(sc_per "$row")" "$(sc_per nginx_lua_redis)"), throughput $(ratio "${RPS[$row]}" "${RPS[nginx_lua_redis]}") (paired $(pr rps "$row" nginx_lua_redis)), p99 $(ratio "${P99[$row]}" "${P99[nginx_lua_redis]}"), gateway CPU/req $(ratio "${US[$row]}" "${US[nginx_lua_redis]}"), gateway + redis CPU/req $(ratio "$(sum_us "${US[$row]}" "${RUS[$row]}")" "$(sum_us "${US[nginx_lua_redis]}" "${RUS[nginx_lua_redis]}")")"
  done
  echo
  echo "Goals (issue 4 point 9: Redis-backed limits ≥ ${GOAL_REDIS_RPS_X}× the throughput of local limits, ≤ ${GOAL_REDIS_SC} syscalls per request amortized; the verdict on throughput uses the paired ratio, the ratio of medians beside it):"
  echo
  for row in redis_exact redis_batch; do
    has_row "$row" || continue
    awk -v n="$row" -v a="${RPS[$row]}" -v b="${RPS[native]}" -v p="$(pr rps "$row" native)" -v x="$GOAL_REDIS_RPS_X" \
        -v ga="${US[$row]}" -v gb="${US[native]}" 'BEGIN{
      if (a=="NA" || b=="NA" || p=="NA") { printf "- %s >= %sx local-limit throughput: not measured\n", n, x; exit }
      printf "- %s >= %sx local-limit throughput: %s (paired %.3fx, medians %.0f vs %.0f req/s = %.3fx; gateway CPU/req %.3fx)\n", n, x,
        (p+0>=x)?"**met**":"**not met**", p, a, b, a/b, (gb>0)?ga/gb:0 }'
    awk -v n="$row" -v s="$(sc_per "$row")" -v g="$GOAL_REDIS_SC" -v t="$(sc_top "$row")" -v a="$ANCHOR_NGINX_LUA_REDIS_SC" -v h="$(sc_per nginx_lua_redis)" 'BEGIN{
      if (s=="NA") { printf "- %s <= %s syscalls/req: not measured\n", n, g; exit }
      printf "- %s <= %s syscalls/req amortized: %s (%s: %s; nginx+Lua+Redis here %s, shared anchors %s)\n", n, g, (s+0<=g)?"**met**":"**not met**", s, t, h, a }'
  done
  for row in redis_exact redis_batch nginx_lua_redis; do
    [ -f "$OUT/raw/$row.callgrind" ] || continue
    case $row in nginx_lua_redis) n=15;; *) n=25;; esac
    echo
    echo "Where the $row row's instructions go (\`callgrind_annotate --inclusive=no\`, last batch, self Ir per request, top $n):"
    echo
    echo "| Ir/req | share | function |"
    echo "|---:|---:|---|"
    top_self "$row" "$n"
  done
  for row in redis_exact redis_batch nginx_lua_redis; do
    case $row in nginx_lua_redis) base=nginx_lua;; *) base=native;; esac
    [ -f "$OUT/raw/$row.callgrind" ] && [ -f "$OUT/raw/$base.callgrind" ] || continue
    echo
    echo "What the $row row adds over $base (local limits) (self Ir per request, $row − $base, top 20; $(ir_diff "$row" "$base") in all). By where it runs: $(delta_groups "$row" "$base")."
    echo
    echo "| added Ir/req | $row | $base | function |"
    echo "|---:|---:|---:|---|"
    delta_self "$row" "$base" 20
  done
  if [ $DO_WALL = 1 ]; then
    echo
    echo "Per round (req/s | gateway µs/req | redis-server µs/req | Redis cmds/req): $(awk -F'\t' 'NR>1{printf "%sr%s %s %.0f | %s | %s | %s", (NR>2)?"; ":"", $1, $2, $3, $7, $9, $10}' "$OUT/wall.tsv")."
    echo "CPU $LOADGEN_CPU carries wrk, the backend and redis-server: in the Redis rows redis-server's CPU (column above) comes out of the load generator's CPU, which is already saturated, so those rows' req/s is also held down on the client side; the gateway CPU µs/req ratio is the throughput proxy that does not depend on it."
  fi
}
report_tail() {
  echo
  echo "Per batch (Ir/req): $(awk -F'\t' 'NR>1{printf "%s%s #%s %s", (NR>2)?"; ":"", $1, $2, $5}' "$OUT/callgrind.tsv")."
  [ $DO_WALL = 1 ] && echo "Wall-clock errors (non-2xx + socket errors) over all runs: $(awk -F'\t' 'NR>1{n+=$6} END{print n+0}' "$OUT/wall.tsv"); retries for noise: $(awk -F'\t' 'NR>1{n+=$12-1} END{print n+0}' "$OUT/wall.tsv"); kept runs with foreign CPU over ${NOISE_MAX}%: $(noisy_runs); median foreign CPU over kept runs: $(awk -F'\t' 'NR>1{print $11}' "$OUT/wall.tsv" | median)%."
  [ $DO_WALL = 1 ] && echo "Reading the wall clock: the machine's CPU is shared with other work (C++ builds during this run: see the retries above), and CPU $LOADGEN_CPU (wrk + backend) is saturated in every row while the gateway's CPU is not always (gateway CPU % column), so req/s and p99 are a two-sided race that swings ±15 % between rounds; the gateway CPU µs/req ratio is the steadier throughput proxy. Instructions and syscalls per request are unaffected by the noise."
  echo "\`valgrind --version\`: $(valgrind --version), $(strace -V | sed -n 1p), h2load $(h2load --version | awk '{print $2}'), $(dpkg-query -W -f '${Package} ${Version}' libnginx-mod-http-lua 2>/dev/null), $(dpkg-query -W -f '${Package} ${Version}' libluajit2-5.1-2 2>/dev/null || true), $(dpkg-query -W -f '${Package} ${Version}' lua-cjson 2>/dev/null || true)$([ $WITH_REDIS = 1 ] && echo ", redis-server $REDIS_VERSION, $(dpkg-query -W -f '${Package} ${Version}' lua-nginx-redis 2>/dev/null || true)")."
}
{
  report_common
  if [ "$RESULTS_KEY" = redis ]; then report_redis; else report_policies; fi
  report_tail
} > "$OUT/policies.md"
{
  if [ "$RESULTS_KEY" = redis ]; then
    echo "## Redis-backed rate limits next to local limits and nginx+Lua+Redis (bench/run_redis.sh)"
  else
    echo "## Native policies next to nginx (bench/run_policies.sh)"
  fi
  echo
  machine_facts
  [ $WITH_REDIS = 1 ] && echo "- redis-server $REDIS_VERSION on CPU $LOADGEN_CPU beside the load generator and the backend"
  echo "- raw outputs: bench/out/policies-$TS/ (not in git): callgrind.tsv, strace.tsv, wall.tsv, checks.txt$([ $WITH_REDIS = 1 ] && echo ", redis.tsv"), raw/<row>.callgrind (last dump; \`callgrind_annotate --inclusive=no\` it)"
  echo
  cat "$OUT/policies.md"
} > "$OUT/summary.md"
cat "$OUT/summary.md"
if [ "${NO_RESULTS:-0}" != 1 ]; then
  results_update "$RESULTS_KEY" "$OUT/summary.md"
  log "refreshed the $RESULTS_KEY section of bench/RESULTS.md"
fi
log "done: $OUT"
