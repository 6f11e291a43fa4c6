#!/usr/bin/env python3
"""Event stream benchmark: a real server process, real `git push`, real WebSockets.

    .venv/bin/python bench/events_bench.py [--pushes 100] [--subscribers 1000] [--trials 5]

1. push-to-event latency: one subscriber; for each of --pushes pushes, the time from the
   moment `git push` exits to the moment its push event is read from the socket
   (p50, p99, max).
2. fan-out: --subscribers idle subscribers of one repository (in this process, the
   server in its own); the server's memory growth per idle subscriber (VmRSS and RssAnon
   from /proc, before and after they connected and subscribed); then --trials pushes,
   each timed from the end of `git push` to the moment the LAST subscriber has the event.

Goals (the events issue, a 2-core machine): p99 < 50 ms, all 1,000 subscribers within
250 ms, < 64 KiB per idle subscriber. Writes bench/results/events.json.
Standard library + aiohttp (the project's own dependency).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
PASSWORD = "bench-password-123"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def status_kib(pid: int) -> dict[str, int]:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon"):
                out[key] = int(value.split()[0])
    return out


def cli(data: Path, *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [PY, "-m", "app", *args, "--data-dir", str(data)],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=base_env(),
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"python -m app {' '.join(args)} failed: {result.stderr}")
    return result.stdout.strip()


def base_env() -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "APP_SECRET_KEY": "b" * 48,
        "APP_RATE_LIMIT": "1000000/hour",
        "APP_RATE_LIMIT_ANONYMOUS": "1000000/hour",
    }


class Git:
    def __init__(self, home: Path) -> None:
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_CONFIG_NOSYSTEM": "1",
            "LC_ALL": "C",
            "GIT_AUTHOR_NAME": "Bench",
            "GIT_AUTHOR_EMAIL": "bench@example.com",
            "GIT_COMMITTER_NAME": "Bench",
            "GIT_COMMITTER_EMAIL": "bench@example.com",
        }

    async def __call__(self, cwd: Path, *args: str) -> str:
        proc = await asyncio.create_subprocess_exec(
            "git",
            *args,
            cwd=cwd,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"git {' '.join(args)} failed: {err.decode()}")
        return out.decode().strip()


class Stream:
    """One subscriber socket; records when each event id arrived."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.arrivals: dict[str, float] = {}  # payload.after of push events -> time
        self.waiters: dict[str, asyncio.Future[float]] = {}
        self.task: asyncio.Task[None] | None = None
        self.sink: dict[str, list[float]] | None = None

    async def read(self) -> None:
        async for message in self.ws:
            if message.type is not aiohttp.WSMsgType.TEXT:
                continue
            now = time.perf_counter()
            data = json.loads(message.data)
            if data.get("type") == "event" and data.get("event") == "push":
                after = data["payload"]["after"]
                if self.sink is not None:
                    self.sink.setdefault(after, []).append(now)
                    continue
                self.arrivals[after] = now
                waiter = self.waiters.pop(after, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(now)

    def arrival(self, sha: str) -> asyncio.Future[float]:
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        if sha in self.arrivals:
            future.set_result(self.arrivals.pop(sha))
        else:
            self.waiters[sha] = future
        return future


async def open_stream(
    http: aiohttp.ClientSession, url: str, token: str | None, repo: str
) -> Stream:
    headers = {"Authorization": f"token {token}"} if token else {}
    ws = await http.ws_connect(url, headers=headers, heartbeat=None, autoping=True)
    await ws.send_str(json.dumps({"type": "subscribe", "repos": [repo]}))
    while True:
        message = await ws.receive(timeout=60)
        if message.type is aiohttp.WSMsgType.TEXT and json.loads(message.data)["type"] == (
            "subscribed"
        ):
            break
    stream = Stream(ws)
    stream.task = asyncio.get_running_loop().create_task(stream.read())
    return stream


PUSH_STARTS: dict[str, float] = {}


def _push_and_time(tree: Path, remote: str, env: dict[str, str]) -> tuple[int, float]:
    """In a thread: the exit time is taken the moment git exits, however busy the loop."""
    proc = subprocess.Popen(["git", "push", "-q", remote, "main"], cwd=tree, env=env)
    code = proc.wait()
    return code, time.perf_counter()


async def timed_push(git: Git, tree: Path, remote: str, n: int) -> tuple[str, float]:
    """Commit, push; returns the sha and the moment `git push` exited."""
    (tree / "n.txt").write_text(f"{n}\n")
    await git(tree, "commit", "-q", "-am", f"bench {n}")
    sha = await git(tree, "rev-parse", "HEAD")
    PUSH_STARTS[sha] = time.perf_counter()
    code, ended = await asyncio.to_thread(_push_and_time, tree, remote, git.env)
    if code != 0:
        raise SystemExit("git push failed")
    return sha, ended


async def worker(url: str, count: int) -> None:
    """A subscriber process: `count` sockets; prints "ready", records every push event's
    arrival (CLOCK_MONOTONIC, shared by all processes), and on "done" prints them."""
    arrivals: dict[str, list[float]] = {}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        streams: list[Stream] = []
        for start in range(0, count, 50):
            streams += await asyncio.gather(
                *(
                    open_stream(http, url, None, "alice/bench")
                    for _ in range(min(50, count - start))
                )
            )
        for stream in streams:
            stream.sink = arrivals
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        print(json.dumps(arrivals), flush=True)
        for stream in streams:
            await stream.ws.close()


async def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    data = work / "data"
    cli(data, "user", "create", "alice", "--password-stdin", stdin=PASSWORD + "\n")
    token = cli(data, "token", "create", "alice", "--scopes", "read,write")
    cli(data, "repo", "create", "alice/bench")
    server = subprocess.Popen(
        [PY, "-m", "app", "serve", "--port", "0", "--data-dir", str(data)],
        cwd=ROOT,
        env=base_env(),
        stdout=subprocess.PIPE,
        stderr=open(work / "server.log", "w"),  # noqa: SIM115
        text=True,
    )
    try:
        assert server.stdout is not None
        match = re.search(r"listening on (\S+)", server.stdout.readline())
        if not match:
            raise SystemExit("the server did not start; see server.log")
        base = match.group(1)
        return await measure(args, work, base, token, server.pid)
    finally:
        server.terminate()
        server.wait(timeout=60)


async def measure(
    args: argparse.Namespace, work: Path, base: str, token: str, pid: int
) -> dict[str, Any]:
    url = base.replace("http://", "ws://") + "/api/v1/events"
    remote = base.replace("http://", f"http://alice:{token}@") + "/alice/bench.git"
    git = Git(work)
    tree = work / "tree"
    tree.mkdir()
    await git(tree, "init", "-q", "-b", "main")
    (tree / "n.txt").write_text("0\n")
    await git(tree, "add", "n.txt")
    await git(tree, "commit", "-q", "-m", "initial")
    await git(tree, "push", "-q", remote, "main")
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        # 1. push -> event latency --------------------------------------------------
        probe = await open_stream(http, url, token, "alice/bench")
        for n in range(1, 6):  # warm-up: first process starts, caches
            sha, _ = await timed_push(git, tree, remote, n)
            await probe.arrival(sha)
        latencies, from_start, durations = [], [], []
        for n in range(args.pushes):
            sha, ended = await timed_push(git, tree, remote, 100 + n)
            arrived = await asyncio.wait_for(probe.arrival(sha), 60)
            latencies.append(arrived - ended)
            from_start.append(arrived - PUSH_STARTS[sha])
            durations.append(ended - PUSH_STARTS[sha])
        ms = [x * 1000 for x in latencies]
        start_ms = [x * 1000 for x in from_start]
        push_ms = [x * 1000 for x in durations]
        print(
            f"push exit -> event, {len(ms)} pushes: p50 {pct(ms, 50):.1f} ms, "
            f"p99 {pct(ms, 99):.1f} ms, max {max(ms):.1f} ms, min {min(ms):.1f} ms "
            "(negative: the event was there before `git push` exited)",
            flush=True,
        )
        print(
            f"push start -> event: p50 {pct(start_ms, 50):.1f} ms, p99 {pct(start_ms, 99):.1f} ms;"
            f" `git push` itself: p50 {pct(push_ms, 50):.1f} ms, p99 {pct(push_ms, 99):.1f} ms",
            flush=True,
        )
        # 2. fan-out and memory per idle subscriber ------------------------------------
        # The subscribers live in --workers processes of their own, so that reading 1,000
        # sockets in one Python process does not become the figure being measured.
        await asyncio.sleep(1)
        before = status_kib(pid)
        shares = [args.subscribers // args.workers] * args.workers
        shares[0] += args.subscribers - sum(shares)
        workers = [
            await asyncio.create_subprocess_exec(
                PY,
                __file__,
                "--worker",
                url,
                str(share),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
            for share in shares
        ]
        for proc in workers:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), 300)
            if line.strip() != b"ready":
                raise SystemExit("a subscriber process failed")
        await asyncio.sleep(2)
        after = status_kib(pid)
        subscribers = sum(shares)
        per_rss = (after["VmRSS"] - before["VmRSS"]) * 1024 / subscribers
        per_anon = (after["RssAnon"] - before["RssAnon"]) * 1024 / subscribers
        print(
            f"{subscribers} idle subscribers: server VmRSS {before['VmRSS'] / 1024:.1f} -> "
            f"{after['VmRSS'] / 1024:.1f} MiB = {per_rss / 1024:.1f} KiB each "
            f"(RssAnon {per_anon / 1024:.1f} KiB each)",
            flush=True,
        )
        ended_at = {}
        for n in range(args.trials):
            sha, ended = await timed_push(git, tree, remote, 10_000 + n)
            ended_at[sha] = ended
            await probe.arrival(sha)
            await asyncio.sleep(1.0)
        arrivals: dict[str, list[float]] = {}
        for proc in workers:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(b"done\n")
            await proc.stdin.drain()
            got = json.loads(await asyncio.wait_for(proc.stdout.readline(), 120))
            for sha, times in got.items():
                arrivals.setdefault(sha, []).extend(times)
            await proc.wait()
        trials = []
        for sha, ended in ended_at.items():
            times = arrivals.get(sha, [])
            if len(times) != subscribers:
                raise SystemExit(f"only {len(times)} of {subscribers} subscribers got {sha}")
            trials.append(
                {
                    "first_ms": (min(times) - ended) * 1000,
                    "last_ms": (max(times) - ended) * 1000,
                    "spread_ms": (max(times) - min(times)) * 1000,
                    "from_push_start_last_ms": (max(times) - PUSH_STARTS[sha]) * 1000,
                }
            )
            print(
                f"fan-out to {subscribers}: push exit -> first {trials[-1]['first_ms']:.1f} ms,"
                f" -> last {trials[-1]['last_ms']:.1f} ms "
                f"(first -> last {trials[-1]['spread_ms']:.1f} ms)",
                flush=True,
            )
        await probe.ws.close()
    last = statistics.median(t["last_ms"] for t in trials)
    result = {
        "pushes": args.pushes,
        "latency_ms": {
            "p50": pct(ms, 50),
            "p99": pct(ms, 99),
            "max": max(ms),
            "min": min(ms),
            "all": ms,
        },
        "push_start_to_event_ms": {"p50": pct(start_ms, 50), "p99": pct(start_ms, 99)},
        "git_push_ms": {"p50": pct(push_ms, 50), "p99": pct(push_ms, 99)},
        "subscribers": subscribers,
        "idle_bytes_per_subscriber": {"vmrss": per_rss, "rss_anon": per_anon},
        "rss_kib": {"before": before, "after": after},
        "fanout_trials": trials,
        "fanout_last_ms_median": last,
        "goals": {
            "p99_under_50ms": pct(ms, 99) < 50,
            "all_served_within_250ms": max(max(t["last_ms"], t["spread_ms"]) for t in trials) < 250,
            "under_64KiB_per_idle_subscriber": per_rss < 64 * 1024,
        },
    }
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pushes", type=int, default=100)
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--workers", type=int, default=4, help="subscriber processes")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "events.json"))
    parser.add_argument("--worker", nargs=2, metavar=("URL", "COUNT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        asyncio.run(worker(args.worker[0], int(args.worker[1])))
        return 0
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, 4 * args.subscribers + 256))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))  # the server inherits it
    work = Path(tempfile.mkdtemp(prefix="events-bench-"))
    try:
        result = asyncio.run(run(args, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    goals = result["goals"]
    print("goals: " + ", ".join(f"{k} {'met' if v else 'MISSED'}" for k, v in goals.items()))
    print(f"results: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
