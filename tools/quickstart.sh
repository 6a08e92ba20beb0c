#!/usr/bin/env bash
# One command: install dependencies, build, start three demo backends and run the gateway on
# examples/quickstart/gateway.yaml in the foreground (Ctrl-C drains it and stops the backends).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
BUILD_DIR=${BUILD_DIR:-build}
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
for spec in users-1:9101 users-2:9102 orders:9103; do
  "$BUILD_DIR/lg-backend" --listen "127.0.0.1:${spec#*:}" --name "${spec%%:*}" >/dev/null &
  pids+=($!)
done
cat <<'TXT'
== lunagate on http://127.0.0.1:8080 (admin on 127.0.0.1:9901). Try, in another terminal:
   curl -i http://127.0.0.1:8080/v1/users/42            # GET by id -> users backends, round robin
   curl -s -X POST -d hello http://127.0.0.1:8080/v1/echo  # what the backend received (X-Forwarded-*, X-Request-ID, ...)
   curl -i http://127.0.0.1:8080/v1/orders/7             # orders backend, least_conn
   curl -i http://127.0.0.1:8080/nowhere                 # 404 with a JSON body and X-Request-ID
   curl -s http://127.0.0.1:9901/metrics | grep gateway_requests_total
   kill -HUP <pid>  # reload the config;  Ctrl-C drains and exits
TXT
"$BUILD_DIR/lunagate" run -c examples/quickstart/gateway.yaml
