#!/usr/bin/env bash
# Runs lunagate in the FOREGROUND for the shared anchors harness (a "cmd" row):
#   lunagate_anchor.sh RUN_DIR PORT BACKEND_PORT
# Writes RUN_DIR/lunagate_anchor_PORT.yaml from bench/conf/lunagate_proxy.yaml ({PORT},
# {BACKEND_PORT} filled in) and execs build/lunagate (or $LUNAGATE_BIN) on it. Only bash builtins
# run before the exec, so under `valgrind --trace-children=yes` the process that stays is lunagate
# itself, with this script's PID. Example row (see bench/README.md):
#   -a 'lunagate|18190|/work/main/bench/conf/lunagate_anchor.sh {RUN} {PORT} {BACKEND_PORT}|plain'
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 RUN_DIR PORT BACKEND_PORT" >&2; exit 2; }
run=$1 port=$2 backend_port=$3
conf_dir=${BASH_SOURCE[0]%/*}
bin=${LUNAGATE_BIN:-$conf_dir/../../build/lunagate}
out="$run/lunagate_anchor_$port.yaml"
: > "$out"
while IFS= read -r line || [ -n "$line" ]; do
  line=${line//\{PORT\}/$port}
  line=${line//\{BACKEND_PORT\}/$backend_port}
  printf '%s\n' "$line" >> "$out"
done < "$conf_dir/lunagate_proxy.yaml"
exec "$bin" run -c "$out"
