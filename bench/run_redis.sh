#!/usr/bin/env bash
# Redis-backed rate limits (issue 4 point 9): bench/run_policies.sh with its Redis rows next to
# the local-limit references, writing the `redis` section of bench/RESULTS.md (not `policies`).
# Rows (see run_policies.sh for each; all pinned as there, redis-server on CPU $LOADGEN_CPU):
#   plain           lunagate, no policy
#   native          lunagate native policies, rate-limit local (the reference: local limits)
#   redis_exact     the same, rate-limit `store: redis` (exact: a Redis round trip per request)
#   redis_batch     the same, `store: redis, mode: batch` (default batch size)
#   nginx_lua       nginx + LuaJIT bench policy, limit in a shared dict
#   nginx_lua_redis nginx + LuaJIT bench policy, INCR + EXPIRE in Redis per request (the anchors')
# Goals: Redis-backed limits >= 0.8x the throughput of local limits (paired ratio vs native) and
# <= 4.5 syscalls per request amortized (nginx+Lua with a Redis round trip per request: 73,832
# instructions, 7.09 syscalls, 0.41x its plain proxy).
# Usage: bench/run_redis.sh [run_policies.sh options]; environment as run_policies.sh
# (ROWS overrides the rows; NO_RESULTS=1 leaves RESULTS.md alone).
set -euo pipefail
export ROWS=${ROWS:-plain native redis_exact redis_batch nginx_lua nginx_lua_redis}
export RESULTS_KEY=redis
exec bash "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/run_policies.sh" "$@"
