#!/usr/bin/env python3
"""REST read benchmark: pooled `cat-file` readers against one git process per request.

    .venv/bin/python bench/api_bench.py [--repo /tmp/benchrepos/big.git] [--seconds 20]
                                        [--connections 32] [--out bench/results/api_bench.json]

Builds a data dir with one public repository holding the given repository's branches
and tags (a local fetch; the default is the shared harness's big repository, else this
checkout's own history), starts `python -m app serve` three times and drives each with an
aiohttp load client: `--connections` concurrent keep-alive connections, each sending
requests back to back for `--seconds` seconds (after a 2 s warm-up) per endpoint.

Variants (settings flags):

    pooled          APP_GIT_READER_POOL=true,  APP_READER_CACHE_MB=64 (the default)
    pooled-nocache  APP_GIT_READER_POOL=true,  APP_READER_CACHE_MB=0
    per-request     APP_GIT_READER_POOL=false, APP_READER_CACHE_MB=0: one `git cat-file`
                    process started per request (and `rev-list` per history page)

Endpoints:

    contents   GET /api/v1/repos/bench/big/contents/<small file>
    tree       GET /api/v1/repos/bench/big/git/trees/main
    commits    GET /api/v1/repos/bench/big/commits?per_page=30

A second part measures the reader layer alone, without HTTP or the database: the same
contents lookup (ref -> commit -> tree walk -> blob) through `ReaderPool` in-process,
pooled against one process per lookup, `--connections` concurrent tasks for
`--reader-seconds` seconds each, cache off in both.

Reports requests per second and p50/p99 latency, and checks the goals: pooled contents
at least 5x the requests per second of the per-request variant, pooled contents p99
under 50 ms. Requests are anonymous on a public repository (rate limits raised, log level
WARNING) so the figures are about reading git, not about logging or password hashing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
DEFAULT_REPO = Path("/tmp/benchrepos/big.git")
VARIANTS = (("pooled", True, 64), ("pooled-nocache", True, 0), ("per-request", False, 0))
SMALL_FILE_CANDIDATES = ("MANIFEST.in", "LICENSE", "README.md", "README.rst", "Makefile")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


def prepare(data_dir: Path, source: Path) -> str:
    """User `bench`, public repository `bench/big` with the source's refs; a small file."""
    env = {**os.environ, "APP_DATA_DIR": str(data_dir)}
    subprocess.run(
        [PY, "-m", "app", "user", "create", "bench", "--password-stdin"],
        input="bench-password-123\n",
        text=True,
        check=True,
        env=env,
        cwd=ROOT,
        capture_output=True,
    )
    subprocess.run(
        [PY, "-m", "app", "repo", "create", "bench/big"],
        check=True,
        env=env,
        cwd=ROOT,
        capture_output=True,
    )
    target = data_dir / "repositories" / "bench" / "big.git"
    git(
        f"--git-dir={target}",
        "fetch",
        "-q",
        str(source),
        "+refs/heads/*:refs/heads/*",
        "+refs/tags/*:refs/tags/*",
    )
    head = git(f"--git-dir={target}", "symbolic-ref", "HEAD").strip()
    branches = git(f"--git-dir={target}", "for-each-ref", "--format=%(refname)", "refs/heads")
    if head not in branches.split():
        first = branches.split()[0]
        git(f"--git-dir={target}", "symbolic-ref", "HEAD", first)
    listing = git(f"--git-dir={target}", "ls-tree", "-l", "HEAD")
    blobs = {}
    for line in listing.splitlines():
        meta, _, name = line.partition("\t")
        mode, kind, _sha, size = meta.split()
        if kind == "blob" and mode == "100644":
            blobs[name] = int(size)
    for name in SMALL_FILE_CANDIDATES:
        if name in blobs and blobs[name] < 16 * 1024:
            return name
    return min(blobs, key=lambda n: blobs[n])


class Server:
    def __init__(self, data_dir: Path, pooled: bool, cache_mb: int):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/tmp"),
            "APP_DATA_DIR": str(data_dir),
            "APP_GIT_READER_POOL": "true" if pooled else "false",
            "APP_READER_CACHE_MB": str(cache_mb),
            "APP_RATE_LIMIT": "100000000/hour",
            "APP_RATE_LIMIT_ANONYMOUS": "100000000/hour",
            "APP_LOG_LEVEL": "WARNING",
        }
        self.proc = subprocess.Popen(
            [PY, "-m", "app", "serve", "--port", str(self.port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    async def wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                try:
                    async with session.get(f"{self.url}/healthz") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.2)
        raise RuntimeError("server did not start")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(the process's own user+system CPU, that of its reaped children) in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick, (int(fields[13]) + int(fields[14])) / tick


async def load(
    url: str, connections: int, seconds: float, warmup: float, pid: int | None = None
) -> dict[str, Any]:
    """`connections` workers, each one request after another on its own connection."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    connector = aiohttp.TCPConnector(limit=connections, force_close=False)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def worker(until: float, record: bool) -> None:
            while time.monotonic() < until:
                started = time.perf_counter()
                async with session.get(url) as response:
                    await response.read()
                    status = response.status
                if record:
                    latencies.append(time.perf_counter() - started)
                    statuses[status] = statuses.get(status, 0) + 1

        end_warm = time.monotonic() + warmup
        await asyncio.gather(*(worker(end_warm, False) for _ in range(connections)))
        cpu_before = cpu_seconds(pid) if pid else (0.0, 0.0)
        started = time.monotonic()
        await asyncio.gather(*(worker(started + seconds, True) for _ in range(connections)))
        elapsed = time.monotonic() - started
        cpu_after = cpu_seconds(pid) if pid else (0.0, 0.0)
    latencies.sort()
    count = max(1, len(latencies))

    def pct(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 2)

    return {
        "requests": len(latencies),
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": round(latencies[-1] * 1000, 2),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "server_cpu_ms_per_req": round((cpu_after[0] - cpu_before[0]) * 1000 / count, 3),
        "git_cpu_ms_per_req": round((cpu_after[1] - cpu_before[1]) * 1000 / count, 3),
    }


async def reader_layer(
    repo: Path, small: str, pooled: bool, concurrency: int, seconds: float
) -> dict[str, Any]:
    """Contents lookups straight through the reader pool: no HTTP, no database."""
    sys.path.insert(0, str(ROOT))
    from app.git.process import GitConfig
    from app.git.reader import ReaderPool
    from app.services.browse import contents, resolve_commit

    home = Path(tempfile.mkdtemp(prefix="api-bench-home-"))
    config = GitConfig(git_bin="git", home=home, hooks_path=home / "hooks", max_push_bytes=1 << 30)
    pool = ReaderPool(config, max_processes=64, per_repo=8, pooled=pooled)
    await pool.start()
    latencies: list[float] = []

    async def worker(until: float) -> None:
        while time.monotonic() < until:
            started = time.perf_counter()
            async with pool.reader(1, repo) as cat:
                commit = await resolve_commit(cat, "main")
                assert commit is not None
                await contents(cat, commit, small)
            latencies.append(time.perf_counter() - started)

    try:
        begin = time.monotonic()
        await asyncio.gather(*(worker(begin + seconds) for _ in range(concurrency)))
        elapsed = time.monotonic() - begin
    finally:
        await pool.close()
        shutil.rmtree(home, ignore_errors=True)
    latencies.sort()
    return {
        "ops": len(latencies),
        "ops_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 3),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 3),
        "processes_started": pool.started,
    }


async def run(args: argparse.Namespace) -> int:
    source = Path(args.repo)
    if not (source / "objects").is_dir():
        print(f"{source} not found: using this checkout's own history", file=sys.stderr)
        source = ROOT / ".git"
    tmp = Path(tempfile.mkdtemp(prefix="api-bench-"))
    results: dict[str, Any] = {
        "source": str(source),
        "connections": args.connections,
        "seconds": args.seconds,
        "cpus": os.cpu_count(),
        "load_before": [round(x, 2) for x in os.getloadavg()],
        "variants": {},
    }
    try:
        small = prepare(tmp / "data", source)
        base = "/api/v1/repos/bench/big"
        endpoints = {
            "contents": f"{base}/contents/{small}",
            "tree": f"{base}/git/trees/main",
            "commits": f"{base}/commits?per_page=30",
        }
        results["endpoints"] = endpoints
        for variant, pooled, cache_mb in VARIANTS:
            server = Server(tmp / "data", pooled, cache_mb)
            try:
                await server.wait_ready()
                figures = {}
                for name, path in endpoints.items():
                    figures[name] = await load(
                        server.url + path,
                        args.connections,
                        args.seconds,
                        args.warmup,
                        server.proc.pid,
                    )
                    print(f"{variant:12} {name:9} {json.dumps(figures[name])}", flush=True)
                results["variants"][variant] = figures
            finally:
                server.stop()
        target = tmp / "data" / "repositories" / "bench" / "big.git"
        results["reader_layer"] = {}
        for label, pooled in (("pooled", True), ("per-request", False)):
            figures = await reader_layer(
                target, small, pooled, args.connections, args.reader_seconds
            )
            results["reader_layer"][label] = figures
            print(f"reader-layer {label:12} {json.dumps(figures)}", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    results["load_after"] = [round(x, 2) for x in os.getloadavg()]
    return report(results, Path(args.out))


def report(results: dict[str, Any], out: Path) -> int:
    variants = results["variants"]
    pooled, naive = variants["pooled"], variants["per-request"]
    print()
    print(
        f"REST reads, {results['connections']} connections x {results['seconds']} s per "
        f"endpoint, {results['cpus']} CPUs, repository {results['source']}"
    )
    print(f"load average before {results['load_before']}, after {results['load_after']}")
    print()
    print("server CPU: the Python process; git CPU: its exited (reaped) git children only")
    print()
    print("| endpoint | variant | req/s | p50 ms | p99 ms | server CPU ms/req | git CPU ms/req |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for name in results["endpoints"]:
        for label, figures in variants.items():
            row = figures[name]
            print(
                f"| {name} | {label} | {row['rps']} | {row['p50_ms']} | {row['p99_ms']} "
                f"| {row['server_cpu_ms_per_req']} | {row['git_cpu_ms_per_req']} |"
            )
    ratio = pooled["contents"]["rps"] / max(naive["contents"]["rps"], 0.1)
    bare = variants["pooled-nocache"]["contents"]["rps"] / max(naive["contents"]["rps"], 0.1)
    checks = {
        "contents pooled >= 5x per-request req/s": ratio >= 5,
        "contents pooled p99 < 50 ms": pooled["contents"]["p99_ms"] < 50,
        "no error answers": all(
            set(f["statuses"]) == {"200"} for v in variants.values() for f in v.values()
        ),
    }
    layer = results["reader_layer"]
    layer_ratio = layer["pooled"]["ops_per_s"] / max(layer["per-request"]["ops_per_s"], 0.1)
    print()
    print("| reader layer (no HTTP, no database) | lookups/s | p50 ms | p99 ms | processes |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for label, row in layer.items():
        print(
            f"| {label} | {row['ops_per_s']} | {row['p50_ms']} | {row['p99_ms']} "
            f"| {row['processes_started']} |"
        )
    print(f"reader layer speed-up pooled / per-request: {layer_ratio:.1f}x")
    results["reader_layer_speedup"] = round(layer_ratio, 2)
    checks["reader layer pooled >= 5x per-request"] = layer_ratio >= 5
    results["contents_speedup"] = round(ratio, 2)
    results["contents_speedup_without_cache"] = round(bare, 2)
    results["checks"] = checks
    print()
    print(f"contents speed-up pooled / per-request: {ratio:.1f}x")
    print(f"contents speed-up pooled-nocache / per-request (the pool alone): {bare:.1f}x")
    for label, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {label}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"(written to {out})")
    return 0 if all(checks.values()) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", default=str(DEFAULT_REPO))
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--reader-seconds", type=float, default=10.0)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "api_bench.json"))
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
