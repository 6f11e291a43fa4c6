#!/usr/bin/env bash
# `make bench`: every benchmark of the project, one section per script, in order.
# A section whose script is missing is skipped (optional pieces); a failing section is
# reported and the others still run; the exit status is non-zero if any section failed.
#
#   bash bench/run.sh                 # all sections
#   BENCH_ONLY="git" bash bench/run.sh   # only the named sections
#
# To add a benchmark: one `section NAME SCRIPT [ARGS...]` line below (targeted edit).
# Results go under bench/results/ (gitignored); each script prints its own report.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PY:-.venv/bin/python}
failed=()

section() {  # NAME SCRIPT [ARGS...]
  local name=$1 script=$2; shift 2
  if [ -n "${BENCH_ONLY:-}" ] && ! echo " $BENCH_ONLY " | grep -q " $name "; then
    return 0
  fi
  echo
  echo "================================================================ bench: $name"
  if [ ! -f "$script" ]; then
    echo "($script not found: skipped)"
    return 0
  fi
  local runner=(bash)
  case $script in *.py) runner=("$PY");; esac
  if ! "${runner[@]}" "$script" "$@"; then
    echo "bench section '$name' FAILED" >&2
    failed+=("$name")
  fi
}

# ---------------------------------------------------------------- sections
# git over Smart HTTP vs the floor and Apache (shared harness), plus server RSS growth
section git bench/git_bench.sh
# middleware stack overhead (vs a bare app) and an authenticated user's p99 under a flood
section middleware bench/middleware_bench.py
# several instances behind a load balancer (needs PostgreSQL, Redis, nginx; skips itself)
section cluster bench/cluster_bench.py
# REST reads: pooled cat-file readers vs one git process per request (contents, tree, commits)
section api bench/api_bench.py
# event stream: push -> event latency, fan-out to 1,000 subscribers, memory per subscriber
section events bench/events_bench.py

# ---------------------------------------------------------------- summary
echo
if [ ${#failed[@]} -gt 0 ]; then
  echo "bench: failed sections: ${failed[*]}"
  exit 1
fi
echo "bench: all sections done"
