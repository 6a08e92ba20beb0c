#!/usr/bin/env bash
# Micro-benchmarks of hot structures: runs build/bench/lg-bench-router and build/bench/lg-bench-parser
# (built by the bench/ CMake targets; this script builds nothing) and records their output in
# bench/RESULTS.md. A binary that is absent is skipped with a note.
#
# Usage: bench/run_micro.sh
# Environment: MICRO_RUNS=3 (runs per binary; the run with the median wall time is the one shown,
#   all are kept in bench/out/micro-<ts>/) MICRO_TIMEOUT=120 (seconds per run) GW_CPU=1 (pinned
#   CPU) QUIET_MAX=10 QUIET_WAIT=60 (wait for a quiet machine before each run) BENCH_BIN_DIR=build/bench
#   NO_RESULTS=1 (do not touch bench/RESULTS.md)
set -euo pipefail
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

MICRO_RUNS=${MICRO_RUNS:-3}; MICRO_TIMEOUT=${MICRO_TIMEOUT:-120}
BIN_DIR=${BENCH_BIN_DIR:-$ROOT_DIR/build/bench}
need taskset timeout
TS=$(date +%Y%m%d-%H%M%S)
OUT="$BENCH_DIR/out/micro-$TS"
mkdir -p "$OUT"
log "output -> $OUT"

{
  echo "## Micro-benchmarks (bench/run_micro.sh)"
  echo
  machine_facts | grep -v '^- pinning'
  echo "- pinned to CPU $GW_CPU; $MICRO_RUNS runs per binary, the run with the median wall time shown; all runs in bench/out/micro-$TS/ (not in git)"
} > "$OUT/summary.md"

for name in lg-bench-router lg-bench-parser; do
  bin="$BIN_DIR/$name"
  echo >> "$OUT/summary.md"
  echo "### $name" >> "$OUT/summary.md"
  echo >> "$OUT/summary.md"
  if [ ! -x "$bin" ]; then
    log "$name: not built ($bin absent), skipped"
    echo "Not run: \`${bin#"$ROOT_DIR"/}\` is absent (build it with the bench targets of CMake)." >> "$OUT/summary.md"
    continue
  fi
  # a private copy: a rebuild while we run cannot swap the binary
  flock -w 600 /tmp/lg-build.lock cp "$bin" "$OUT/$name" 2>/dev/null || cp "$bin" "$OUT/$name"
  : > "$OUT/$name.times"
  rc_all=0
  for k in $(seq 1 "$MICRO_RUNS"); do
    waited=$(wait_quiet)
    [ "$waited" -gt 0 ] && log "$name run $k: waited ${waited}s for the machine to go quiet"
    t0=$(date +%s.%N)
    rc=0; timeout "$MICRO_TIMEOUT" taskset -c "$GW_CPU" "$OUT/$name" > "$OUT/$name.$k.txt" 2>&1 || rc=$?
    t1=$(date +%s.%N)
    [ $rc = 0 ] || { rc_all=$rc; log "$name run $k: exit status $rc"; }
    echo "$k $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b-a}') $rc" >> "$OUT/$name.times"
    log "$name run $k: $(awk '{print $2}' <(tail -1 "$OUT/$name.times")) s, exit $rc"
  done
  pick=$(sort -k2 -g "$OUT/$name.times" | awk -v n="$MICRO_RUNS" 'NR==int((n+1)/2){print $1}')
  {
    echo "Binary built $(date -r "$bin" '+%F %T'), sha256 $(sha256sum "$OUT/$name" | cut -c1-12); run $pick of $MICRO_RUNS (wall times: $(awk '{printf "%s%ss", (NR>1)?", ":"", $2}' "$OUT/$name.times"))$([ $rc_all = 0 ] || echo "; **a run exited with status $rc_all**")."
    echo
    echo '```'
    cat "$OUT/$name.$pick.txt"
    echo '```'
  } >> "$OUT/summary.md"
  rm -f "$OUT/$name"
done

cat "$OUT/summary.md"
if [ "${NO_RESULTS:-0}" != 1 ]; then
  results_update micro "$OUT/summary.md"
  log "refreshed the micro-benchmark section of bench/RESULTS.md"
fi
