#!/usr/bin/env python3
"""Several instances as one: throughput with one instance and with two behind nginx, side by
side in one run, and the event latency from a push on instance A to a subscriber on B.

    .venv/bin/python bench/cluster_bench.py [--requests 4000] [--concurrency 32]
        [--clones 12] [--clone-concurrency 4] [--pushes 60] [--rounds 3] [--out FILE.json]

Targets, all in the same run on the same machine:
  one       instance A directly
  one+lb    nginx with A only upstream (the balancer's own cost)
  two+lb    nginx with A and B upstream (round robin)
Each figure is the median of `--rounds` rounds taken in turns (one, one+lb, two+lb, one,
...), so a drift of the machine's load hits every target alike.

Needs PostgreSQL and Redis on 127.0.0.1 (APP_TEST_DATABASE_URL / APP_TEST_REDIS_URL, or
the default local ports) and nginx; prints why and exits 0 when one is missing. REST load
comes from ApacheBench (`ab`, Debian's apache2-utils) when installed, else from an aiohttp
client in this process. CPU seconds used by each process are reported next to each figure:
on two cores the load generator, nginx and the instances share the same CPUs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.cluster.launcher import (  # noqa: E402
    Cluster,
    basic_header,
    missing_requirements,
    running_cluster,
)

TICKS = os.sysconf("SC_CLK_TCK")


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _default_services() -> None:
    if not os.environ.get("APP_TEST_DATABASE_URL") and _port_open(5432):
        os.environ["APP_TEST_DATABASE_URL"] = (
            "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
        )
    if not os.environ.get("APP_TEST_REDIS_URL") and _port_open(6379):
        os.environ["APP_TEST_REDIS_URL"] = "redis://127.0.0.1:6379/0"


# CPU accounting ---------------------------------------------------------------------
def _cpu_of(pid: int) -> float:
    """utime + stime of a process and its reaped children, in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    # fields[11..14] = utime stime cutime cstime (stat fields 14-17)
    return sum(int(x) for x in fields[11:15]) / TICKS


def _nginx_cpu(cluster: Cluster) -> float:
    total = 0.0
    for balancer in cluster.balancers:
        total += _cpu_of(balancer.proc.pid)
        with contextlib.suppress(FileNotFoundError):
            children = Path(f"/proc/{balancer.proc.pid}/task/{balancer.proc.pid}/children")
            for child in children.read_text().split():
                total += _cpu_of(int(child))
    return total


def _services_cpu() -> float:
    """CPU seconds of every PostgreSQL and Redis server process on the machine (shared
    with anything else using them meanwhile)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            text = stat.read_text()
            comm = text[text.index("(") + 1 : text.rindex(")")]
            if comm.startswith(("postgres", "redis-server")):
                fields = text.rsplit(")", 1)[1].split()
                total += sum(int(x) for x in fields[11:13]) / TICKS
    return total


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _system_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields) - idle) / TICKS, sum(fields) / TICKS


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@contextlib.contextmanager
def cpu_meter(cluster: Cluster, into: dict[str, Any]) -> Iterator[None]:
    """CPU seconds spent during the block by A, B (with their git children), nginx and
    the load generator (ab/git clients and this process)."""
    before = {n: _cpu_of(i.proc.pid) for n, i in cluster.instances.items()}
    nginx, kids, me = _nginx_cpu(cluster), _children_cpu(), _self_cpu()
    busy, total = _system_cpu()
    services = _services_cpu()
    wall = time.perf_counter()
    yield
    wall = time.perf_counter() - wall
    cpu = {f"instance_{n}": _cpu_of(i.proc.pid) - before[n] for n, i in cluster.instances.items()}
    cpu["nginx"] = _nginx_cpu(cluster) - nginx
    cpu["clients"] = (_children_cpu() - kids) + (_self_cpu() - me)
    busy_after, total_after = _system_cpu()
    cpu["pg+redis"] = _services_cpu() - services
    # Everything else: the kernel, and whatever else runs on the machine meanwhile.
    cpu["other"] = max(0.0, (busy_after - busy) - sum(cpu.values()))
    into["cpu_s"] = {k: round(v, 2) for k, v in cpu.items()}
    into["cpu_busy"] = round((busy_after - busy) / max(total_after - total, 1e-9), 2)


# Setup ------------------------------------------------------------------------------
def _git(*args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, env=env, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args[:2])}: {done.stderr[-800:]}")
    return done.stdout


def git_env(home: Path) -> dict[str, str]:
    return {
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


def make_source(tree: Path, env: dict[str, str]) -> None:
    """A small project: 600 text files (~8 MB, a ~4 MB pack) over 10 commits."""
    import random

    _git("init", "-q", "-b", "main", str(tree), cwd=tree.parent, env=env)
    words = [f"word{n:05d}" for n in range(20000)]
    rng = random.Random(7)
    for commit in range(10):
        for n in range(60):
            path = tree / f"src/m{commit}/f{n}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(" ".join(rng.choices(words, k=1400)) + "\n")
        (tree / "README.md").write_text(f"# bench\n\nrevision {commit}\n")
        _git("add", "-A", cwd=tree, env=env)
        _git("commit", "-q", "-m", f"commit {commit}", cwd=tree, env=env)


# REST throughput ----------------------------------------------------------------------
def run_ab(url: str, token: str, requests: int, concurrency: int) -> dict[str, Any]:
    ab = shutil.which("ab")
    assert ab
    argv = [ab, "-q", "-k", "-n", str(requests), "-c", str(concurrency)]
    argv += ["-H", f"Authorization: token {token}", url]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    out = done.stdout
    rps = re.search(r"Requests per second:\s+([\d.]+)", out)
    failed = re.search(r"Failed requests:\s+(\d+)", out)
    non2xx = re.search(r"Non-2xx responses:\s+(\d+)", out)
    pct = dict(re.findall(r"^\s+(\d+)%\s+(\d+)", out, re.MULTILINE))
    if rps is None:
        raise RuntimeError(f"ab failed: {done.stderr[-500:]}{out[-500:]}")
    return {
        "req_per_s": float(rps.group(1)),
        "p50_ms": float(pct.get("50", "nan")),
        "p99_ms": float(pct.get("99", "nan")),
        "failed": int(failed.group(1)) if failed else 0,
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "tool": "ab",
    }


async def run_aiohttp(url: str, token: str, requests: int, concurrency: int) -> dict[str, Any]:
    import aiohttp

    latencies: list[float] = []
    bad = 0
    counter = iter(range(requests))
    headers = {"Authorization": f"token {token}"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal bad
            for _ in counter:
                started = time.perf_counter()
                async with session.get(url, headers=headers) as resp:
                    await resp.read()
                    bad += resp.status != 200
                latencies.append((time.perf_counter() - started) * 1000)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    latencies.sort()
    return {
        "req_per_s": round(requests / wall, 1),
        "p50_ms": round(latencies[len(latencies) // 2], 1),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 1),
        "failed": 0,
        "non_2xx": bad,
        "tool": "aiohttp",
    }


def _merge(rounds: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """Rounds of one target -> the median figure, CPU seconds added up."""
    ordered = sorted(rounds, key=lambda r: float(r[key]))
    merged = dict(ordered[len(ordered) // 2])  # the median round, with its latencies
    merged["rounds"] = [r[key] for r in rounds]
    cpu: dict[str, float] = {}
    for r in rounds:
        for name, seconds in r["cpu_s"].items():
            cpu[name] = round(cpu.get(name, 0.0) + seconds, 2)
    merged["cpu_s"] = cpu
    merged["cpu_busy"] = round(statistics.mean(r["cpu_busy"] for r in rounds), 2)
    return merged


def rest_throughput(
    cluster: Cluster, targets: dict[str, str], path: str, token: str, args: argparse.Namespace
) -> dict[str, Any]:
    """Targets in turns, `args.rounds` times (the machine drifts): the median round."""
    per_round = max(1, args.requests // args.rounds)
    rounds: dict[str, list[dict[str, Any]]] = {label: [] for label in targets}
    for base in targets.values():  # warm-up
        if shutil.which("ab"):
            run_ab(base + path, token, min(200, per_round), args.concurrency)
        else:
            asyncio.run(run_aiohttp(base + path, token, min(200, per_round), args.concurrency))
    for _ in range(args.rounds):
        for label, base in targets.items():
            record: dict[str, Any] = {}
            with cpu_meter(cluster, record):
                if shutil.which("ab"):
                    record.update(run_ab(base + path, token, per_round, args.concurrency))
                else:
                    record.update(
                        asyncio.run(run_aiohttp(base + path, token, per_round, args.concurrency))
                    )
            rounds[label].append(record)
    results = {label: _merge(found, "req_per_s") for label, found in rounds.items()}
    for label, record in results.items():
        print(f"  REST {path} via {label}: {record['rounds']} req/s", file=sys.stderr)
    return results


# Clone throughput --------------------------------------------------------------------
async def _clone(url: str, dest: Path, env: dict[str, str], auth: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        "git",
        "-c",
        f"http.extraHeader=Authorization: {auth}",
        "clone",
        "-q",
        "--bare",
        url,
        str(dest),
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"clone failed: {err.decode()[-500:]}")
    shutil.rmtree(dest, ignore_errors=True)


async def _clones(
    url: str, work: Path, env: dict[str, str], auth: str, total: int, conc: int
) -> None:
    queue = iter(range(total))

    async def worker() -> None:
        for n in queue:
            await _clone(url, work / f"c{n}", env, auth)

    await asyncio.gather(*(worker() for _ in range(conc)))


def clone_throughput(
    cluster: Cluster,
    targets: dict[str, str],
    full_name: str,
    auth: str,
    work: Path,
    env: dict[str, str],
    args: argparse.Namespace,
) -> dict[str, Any]:
    rounds: dict[str, list[dict[str, Any]]] = {label: [] for label in targets}
    for base in targets.values():  # warm-up
        asyncio.run(_clones(f"{base}/{full_name}.git", work, env, auth, 2, 2))
    for _ in range(args.rounds):
        for label, base in targets.items():
            url = f"{base}/{full_name}.git"
            record: dict[str, Any] = {}
            with cpu_meter(cluster, record):
                started = time.perf_counter()
                asyncio.run(_clones(url, work, env, auth, args.clones, args.clone_concurrency))
                wall = time.perf_counter() - started
            record["clones_per_s"] = round(args.clones / wall, 2)
            record["wall_s"] = round(wall, 2)
            rounds[label].append(record)
    results = {label: _merge(found, "clones_per_s") for label, found in rounds.items()}
    for label, record in results.items():
        print(f"  clones via {label}: {record['rounds']} clones/s", file=sys.stderr)
    return results


# Event latency ------------------------------------------------------------------------
async def event_latency(
    cluster: Cluster, full_name: str, token: str, tree: Path, env: dict[str, str], pushes: int
) -> dict[str, Any]:
    import aiohttp

    auth = basic_header("bench", token)
    ws_url = cluster.instances["b"].url.replace("http://", "ws://") + "/api/v1/events"
    remote = f"{cluster.instances['a'].url}/{full_name}.git"
    from_start: list[float] = []
    from_exit: list[float] = []
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(ws_url, headers={"Authorization": f"token {token}"}) as ws,
    ):
        await ws.send_json({"type": "subscribe", "repos": [full_name]})
        await ws.send_json({"type": "ping"})
        while json.loads((await ws.receive(timeout=30)).data).get("type") != "pong":
            pass
        for n in range(pushes):
            (tree / "latency.txt").write_text(f"{n}\n")
            _git("add", "latency.txt", cwd=tree, env=env)
            _git("commit", "-q", "-m", f"latency {n}", cwd=tree, env=env)
            sha = _git("rev-parse", "HEAD", cwd=tree, env=env).strip()
            started = time.perf_counter()
            proc = await asyncio.create_subprocess_exec(
                "git",
                "-c",
                f"http.extraHeader=Authorization: {auth}",
                "push",
                "-q",
                remote,
                "main",
                cwd=tree,
                env=env,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            exited: float | None = None
            waiter = asyncio.ensure_future(proc.wait())
            while True:
                receive = asyncio.ensure_future(ws.receive(timeout=30))
                done, _ = await asyncio.wait({receive, waiter}, return_when=asyncio.FIRST_COMPLETED)
                if waiter in done and exited is None:
                    exited = time.perf_counter()
                if receive not in done:
                    message = await receive
                else:
                    message = receive.result()
                now = time.perf_counter()
                data = json.loads(message.data)
                if data.get("type") == "event" and data["payload"].get("after") == sha:
                    break
            await waiter
            if exited is None:
                exited = time.perf_counter()
            from_start.append((now - started) * 1000)
            from_exit.append((now - exited) * 1000)

    def pct(values: list[float], q: float) -> float:
        ordered = sorted(values)
        return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))], 1)

    return {
        "pushes": pushes,
        "push_start_to_event_ms": {"p50": pct(from_start, 0.5), "p99": pct(from_start, 0.99)},
        "push_exit_to_event_ms": {"p50": pct(from_exit, 0.5), "p99": pct(from_exit, 0.99)},
        "mean_push_start_to_event_ms": round(statistics.mean(from_start), 1),
    }


# Main ---------------------------------------------------------------------------------
def _api_path(base: str, token: str, full_name: str) -> list[str]:
    """The REST reads to measure: repository metadata (database) and a file (git)."""
    import urllib.request

    paths = []
    for path in (f"/api/v1/repos/{full_name}", f"/api/v1/repos/{full_name}/contents/README.md"):
        req = urllib.request.Request(base + path, headers={"Authorization": f"token {token}"})
        with contextlib.suppress(OSError), urllib.request.urlopen(req, timeout=10) as resp:
            if resp.status == 200:
                paths.append(path)
    return paths


def _rounds(record: dict[str, Any]) -> str:
    return ", ".join(f"{x:.3g}" for x in record.get("rounds", []))


def report(results: dict[str, Any]) -> str:
    lines = ["# Cluster benchmark", "", f"machine: {os.cpu_count()} cores; {results['when']}", ""]
    labels = list(results["targets"])
    for path, by_target in results["rest"].items():
        lines += [f"## REST `GET {path}`", ""]
        lines += [
            "| target | req/s median (rounds) | p50 ms | p99 ms "
            "| CPU s (A / B / nginx / client / pg+redis / other) | machine busy |"
        ]
        lines += ["| --- | --- | --- | --- | --- | --- |"]
        for label in labels:
            r = by_target[label]
            cpu = r["cpu_s"]
            lines.append(
                f"| {label} | {r['req_per_s']:.0f} ({_rounds(r)}) | {r['p50_ms']} | "
                f"{r['p99_ms']} | "
                f"{cpu.get('instance_a', 0)} / {cpu.get('instance_b', 0)} / {cpu['nginx']} / "
                f"{cpu['clients']} / {cpu['pg+redis']} / {cpu['other']} | {r['cpu_busy']:.0%} |"
            )
        lines.append("")
    lines += ["## Concurrent clones", ""]
    lines += [
        "| target | clones/s median (rounds) | wall s "
        "| CPU s (A / B / nginx / clients / pg+redis / other) | machine busy |"
    ]
    lines += ["| --- | --- | --- | --- | --- |"]
    for label in labels:
        r = results["clones"][label]
        cpu = r["cpu_s"]
        lines.append(
            f"| {label} | {r['clones_per_s']} ({_rounds(r)}) | {r['wall_s']} | "
            f"{cpu.get('instance_a', 0)} / "
            f"{cpu.get('instance_b', 0)} / {cpu['nginx']} / {cpu['clients']} / "
            f"{cpu['pg+redis']} / {cpu['other']} | "
            f"{r['cpu_busy']:.0%} |"
        )
    lines.append("")
    ev = results.get("events")
    if ev:
        lines += [
            "## Event latency: push through A, subscriber on B",
            "",
            f"{ev['pushes']} pushes: push start -> event p50 "
            f"{ev['push_start_to_event_ms']['p50']} ms, p99 {ev['push_start_to_event_ms']['p99']}"
            f" ms; git push exit -> event p50 {ev['push_exit_to_event_ms']['p50']} ms, p99 "
            f"{ev['push_exit_to_event_ms']['p99']} ms.",
            "",
        ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--clones", type=int, default=12)
    parser.add_argument("--clone-concurrency", type=int, default=4)
    parser.add_argument("--pushes", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3, help="targets measured in turns")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    _default_services()
    reason = missing_requirements()
    if reason:
        print(f"cluster bench skipped: {reason}")
        return 0
    env_overrides = {
        "APP_RATE_LIMIT": "100000000/hour",
        "APP_RATE_LIMIT_ANONYMOUS": "100000000/hour",
        "APP_LOG_LEVEL": "WARNING",
    }
    results: dict[str, Any] = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    with (
        tempfile.TemporaryDirectory(prefix="cluster-bench-") as tmp,
        running_cluster(Path(tmp), extra_env=env_overrides, balancer=False) as cluster,
    ):
        work = Path(tmp)
        home = work / "home"
        home.mkdir()
        env = git_env(home)
        token = cluster.create_admin("bench")
        cluster.cli("repo", "create", "bench/data")
        tree = work / "src"
        tree.mkdir()
        make_source(tree, env)
        auth = basic_header("bench", token)
        a_url = cluster.instances["a"].url
        _git(
            "-c",
            f"http.extraHeader=Authorization: {auth}",
            "push",
            "-q",
            f"{a_url}/bench/data.git",
            "main",
            cwd=tree,
            env=env,
        )
        one_lb = cluster.start_balancer(["a"])
        two_lb = cluster.start_balancer(["a", "b"])
        targets = {"one": a_url, "one+lb": one_lb.url, "two+lb": two_lb.url}
        results["targets"] = targets
        paths = _api_path(a_url, token, "bench/data") or [
            "/bench/data.git/info/refs?service=git-upload-pack"
        ]
        results["rest"] = {}
        for path in paths:
            results["rest"][path] = rest_throughput(cluster, targets, path, token, args)
        results["clones"] = clone_throughput(cluster, targets, "bench/data", auth, work, env, args)
        try:
            results["events"] = asyncio.run(
                event_latency(cluster, "bench/data", token, tree, env, args.pushes)
            )
        except Exception as exc:  # the WebSocket endpoint may be missing in a partial build
            print(f"event latency not measured: {exc!r}", file=sys.stderr)
    text = report(results)
    print(text)
    out = (
        args.out
        or ROOT
        / "bench"
        / "results"
        / f"cluster-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\n(results: {out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
