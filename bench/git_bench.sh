#!/usr/bin/env bash
# Git over Smart HTTP: this server side by side with the floor (`git clone --no-local`,
# no HTTP) and Apache + git http-backend, in ONE run of the shared harness
# (/work/shared/bench/run_all.sh), then the server's own RSS growth per case.
#
#   bash bench/git_bench.sh                 # everything (about 15-20 minutes)
#   PEERS="floor custom" CASES="fetch" bash bench/git_bench.sh     # a quick look
#
# Environment (all optional):
#   HARNESS       the shared harness folder      (default /work/shared/bench)
#   GITBENCH_DIR  harness data: repos, src, work (default /tmp/gitbench)
#   PEERS         peers of run_all.sh            (default "floor apache custom")
#   CASES         cases of run_all.sh            (default "clone fetch concurrent push push-binary")
#   MEMORY        1 = also the per-case server-RSS phase (default 1)
#   RESULTS       output folder (default bench/results/git-UTCSTAMP)
#   KEEP_DATA     1 = keep the server's temporary data dir
#   PREPARE       1 = build missing test repositories (make_repos + prepare_repos; ~5 min)
#   PRIORITY      e.g. -20: own session + autogroup nice (fair figures on a shared machine)
# Output: RESULTS/run.jsonl (harness), RESULTS/server-rss.jsonl, RESULTS/report.md,
# RESULTS/server.log; the report is printed on stdout.
set -euo pipefail
# PRIORITY=-20: run everything of this benchmark (our server, Apache, the git clients)
# in a session of its own whose scheduler autogroup gets that nice value (root only).
# With autogroups (Linux default), `nice` alone only ranks processes inside one session,
# so on a machine shared with other work this is what keeps the peers' figures fair.
if [ -n "${PRIORITY:-}" ] && [ -z "${_GIT_BENCH_SESSION:-}" ]; then
  exec setsid --wait env _GIT_BENCH_SESSION=1 bash "${BASH_SOURCE[0]}" "$@"
fi
if [ -n "${PRIORITY:-}" ]; then
  echo "$PRIORITY" >/proc/self/autogroup 2>/dev/null \
    || echo "[git_bench] could not set the autogroup nice to $PRIORITY" >&2
fi
MAIN=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HARNESS=${HARNESS:-/work/shared/bench}
export GITBENCH_DIR=${GITBENCH_DIR:-/tmp/gitbench}
PEERS=${PEERS:-"floor apache custom"}
CASES=${CASES:-"clone fetch concurrent push push-binary"}
MEMORY=${MEMORY:-1}
RESULTS=${RESULTS:-$MAIN/bench/results/git-$(date -u +%Y%m%dT%H%M%SZ)}
PY=$MAIN/.venv/bin/python
HPY=${HARNESS_PYTHON:-python3}
REPOS=$GITBENCH_DIR/repos
mkdir -p "$RESULTS"
RESULTS=$(cd "$RESULTS" && pwd)
say() { echo "[git_bench] $*" >&2; }

# ---------------------------------------------------------------- test data
if [ ! -d "$REPOS/big.git" ] || [ ! -d "$REPOS/small.git" ] || [ ! -d "$GITBENCH_DIR/src/binary.git" ]; then
  if [ "${PREPARE:-0}" = 1 ]; then
    say "building the test repositories (make_repos.py + prepare_repos.sh)"
    "$HPY" "$HARNESS/make_repos.py" --out "$GITBENCH_DIR/made" --cache "$GITBENCH_DIR/cache" >&2
    "$HARNESS/setup/prepare_repos.sh" "$GITBENCH_DIR/made/big.git" big "$GITBENCH_DIR/made/small.git" small >&2
  else
    say "missing $REPOS/{big,small}.git or $GITBENCH_DIR/src/binary.git; build them with"
    say "  $HARNESS/make_repos.py --out /tmp/benchrepos --cache /tmp/benchcache"
    say "  $HARNESS/setup/prepare_repos.sh /tmp/benchrepos/big.git big /tmp/benchrepos/small.git small"
    say "or rerun with PREPARE=1"
    exit 2
  fi
fi
if echo "$PEERS" | grep -qw apache && ! command -v apache2 >/dev/null; then
  say "WARNING: apache2 is not installed ($HARNESS/setup/install.sh installs it): running without it"
  PEERS=$(echo "$PEERS" | sed 's/\bapache\b//')
fi

# ---------------------------------------------------------------- our server
DATA=$(mktemp -d /tmp/githost-bench.XXXXXX)
SERVER_PID="" WATCH_PID=""
cleanup() {
  [ -n "$WATCH_PID" ] && kill "$WATCH_PID" 2>/dev/null && wait "$WATCH_PID" 2>/dev/null
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null; fi
  [ "${KEEP_DATA:-0}" = 1 ] && say "data dir kept: $DATA" || rm -rf "$DATA"
}
trap cleanup EXIT
app() { (cd "$MAIN" && "$PY" -m app "$@" --data-dir "$DATA"); }

echo "bench-password-not-secret" | app user create bench --admin --password-stdin >/dev/null
TOKEN=$(app token create bench --scopes read,write --name bench)
# The log goes through a pipe, as to journald or a container runtime: a synchronous
# write to a file on a disk busy with the benchmark's own clones can stall the loop.
"$PY" -m app serve --host 127.0.0.1 --port 0 --data-dir "$DATA" >"$RESULTS/server.out" \
  2> >(exec cat >"$RESULTS/server.log") &
SERVER_PID=$!
for _ in $(seq 1 150); do grep -q "listening on" "$RESULTS/server.out" 2>/dev/null && break; sleep 0.2; done
BASE=$(sed -n 's/^githost listening on //p' "$RESULTS/server.out")
[ -n "$BASE" ] || { say "server did not start; see $RESULTS/server.log"; exit 1; }
say "server pid $SERVER_PID at $BASE, data dir $DATA"
AUTH_BASE=${BASE/http:\/\//http://bench:$TOKEN@}

# Import the harness's repositories, then one pack with bitmaps (as the peers' repack -adf).
for name in big small; do
  app repo create "bench/$name" >/dev/null
  git -C "$REPOS/$name.git" push -q --mirror "$AUTH_BASE/bench/$name.git"
  app repo gc "bench/$name" >/dev/null
  want=$(git -C "$REPOS/$name.git" for-each-ref --format='%(objectname) %(refname)' | sort)
  got=$(git ls-remote "$BASE/bench/$name.git" | grep -v -e 'HEAD$' -e '\^{}$' | tr '\t' ' ' | sort)
  [ "$want" = "$got" ] || { say "import of $name: refs differ"; exit 1; }
  say "imported bench/$name: $(ls "$DATA/repositories/bench/$name.git/objects/pack/" | tr '\n' ' ')"
done
# Warm the server up (imports, first connections) before any memory baseline.
git ls-remote "$BASE/bench/small.git" >/dev/null

# ---------------------------------------------------------------- one run: floor, Apache, us
OUT=$RESULTS/run.jsonl
{
  echo "# git benchmark $(date -u +%FT%TZ) on $(hostname), $(nproc) CPUs, load: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "# $(git --version); server commit $(git -C "$MAIN" rev-parse --short HEAD); scheduler $(cat /proc/self/autogroup 2>/dev/null || echo '-')"
} >"$RESULTS/report.md"
"$PY" "$MAIN/bench/server_rss.py" watch --pid "$SERVER_PID" --label "server during run_all.sh" \
  --out "$RESULTS/server-rss.jsonl" &
WATCH_PID=$!

CREATE="cd $MAIN && $PY -m app repo create --data-dir $DATA \"bench/\$(basename {name} .git)\" >/dev/null"
DELETE="cd $MAIN && $PY bench/repo_admin.py delete --data-dir $DATA \"bench/{name}\""
RUN_ALL=(env PEERS="$PEERS" CASES="$CASES" OUT="$OUT" GITBENCH_BIG=big.git GITBENCH_SMALL=small.git
  CUSTOM_URL="$AUTH_BASE/bench" CUSTOM_PID="$SERVER_PID"
  CUSTOM_CREATE_CMD="$CREATE" CUSTOM_DELETE_CMD="$DELETE"
  CUSTOM_TARGET_PATH="$DATA/repositories/bench/{name}" PYTHON="$HPY" "$HARNESS/run_all.sh")
say "running: PEERS=\"$PEERS\" CASES=\"$CASES\" GITBENCH_BIG=big.git GITBENCH_SMALL=small.git CUSTOM_URL=http://bench:TOKEN@${BASE#http://}/bench CUSTOM_PID=$SERVER_PID ... $HARNESS/run_all.sh"
"${RUN_ALL[@]}" >"$RESULTS/harness-report.md" || say "run_all.sh exited non-zero"
kill "$WATCH_PID" 2>/dev/null; wait "$WATCH_PID" 2>/dev/null || true
WATCH_PID=""

# ---------------------------------------------------------------- the server's own RSS, per case
RSS=$RESULTS/server-rss.jsonl
if [ "$MEMORY" = 1 ] && echo "$PEERS" | grep -qw custom; then
  gb=("$HPY" "$HARNESS/gitbench.py" --label custom-rss --url "$AUTH_BASE/bench" --server-pid "$SERVER_PID"
      --big big.git --small small.git --repo-root "$REPOS" --out "$RESULTS/rss-phase.jsonl"
      --create-cmd "$CREATE" --delete-cmd "$DELETE" --target-path "")
  measure() { local label=$1; shift
    "$PY" "$MAIN/bench/server_rss.py" measure --pid "$SERVER_PID" --label "$label" --out "$RSS" -- "$@" >/dev/null; }
  measure "big clone, protocol v2 (1+3 runs)" "${gb[@]}" --runs 3 clone
  measure "big clone, protocol v0 (1+3 runs)" "${gb[@]}" --runs 3 --protocol 0 clone
  measure "push --mirror of the big repo (1+1 runs)" "${gb[@]}" --push-runs 1 push
  measure "push of the 200 MiB binary repo (1+2 runs)" "${gb[@]}" --push-runs 2 push-binary
  measure "8 concurrent small clones (1+1 reps)" "${gb[@]}" --concurrent-reps 1 concurrent
fi

# ---------------------------------------------------------------- report
{
  echo
  echo "Command: ${RUN_ALL[*]}" | sed "s/$TOKEN/TOKEN/g"
  echo
  cat "$RESULTS/harness-report.md"
  echo
  echo "### The server's own process (PID $SERVER_PID, git children excluded): RSS growth"
  echo
  "$PY" "$MAIN/bench/server_rss.py" table "$RSS"
  echo
  "$PY" "$MAIN/bench/goals.py" "$OUT" --rss "$RSS"
} >>"$RESULTS/report.md"
sed -i "s/$TOKEN/TOKEN/g" "$RESULTS"/*.jsonl "$RESULTS/report.md" 2>/dev/null || true
cat "$RESULTS/report.md"
say "results in $RESULTS"
