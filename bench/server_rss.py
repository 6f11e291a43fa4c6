#!/usr/bin/env python3
"""Memory of the server's OWN process (git children excluded) while a command runs.

gitbench.py reports the whole process tree (server + git http-backend + pack-objects),
which is dominated by git. The goal "nothing buffered" is about the Python process
itself, so this tool reads /proc/PID/status of that one PID only:

  server_rss.py measure --pid PID --label NAME [--out FILE] -- COMMAND...
      resets the kernel's high-water mark (`echo 5 > /proc/PID/clear_refs`), reads VmRSS,
      runs COMMAND, then reads VmHWM: growth = VmHWM - VmRSS(before). A sampler thread
      (every 10 ms) gives a second opinion where clear_refs is not allowed.
  server_rss.py watch --pid PID --out FILE
      samples VmRSS every 50 ms until the process ends or SIGTERM; one JSON summary.
  server_rss.py table FILE...
      markdown table of `measure` records.

Standard library only; one JSON line per measurement.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import threading
import time
from typing import Any

MIB = 1024 * 1024


def status_kib(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM / RssAnon of one process, in KiB (empty if it is gone)."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                    out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


def reset_hwm(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class Sampler(threading.Thread):
    def __init__(self, pid: int, interval: float):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak_rss = self.peak_anon = self.samples = 0
        self.stop_evt = threading.Event()

    def run(self) -> None:
        while not self.stop_evt.is_set():
            st = status_kib(self.pid)
            if not st:
                break
            self.peak_rss = max(self.peak_rss, st.get("VmRSS", 0))
            self.peak_anon = max(self.peak_anon, st.get("RssAnon", 0))
            self.samples += 1
            self.stop_evt.wait(self.interval)


def mib(kib: int) -> float:
    return round(kib / 1024, 1) + 0.0  # no "-0.0"


def measure(args: argparse.Namespace) -> int:
    hwm_reset = reset_hwm(args.pid)
    before = status_kib(args.pid)
    if not before:
        print(f"server_rss: no process {args.pid}", file=sys.stderr)
        return 2
    sampler = Sampler(args.pid, args.interval)
    sampler.start()
    started = time.monotonic()
    rc = subprocess.call(args.command)
    wall = time.monotonic() - started
    sampler.stop_evt.set()
    sampler.join()
    after = status_kib(args.pid)
    peak = after.get("VmHWM", 0) if hwm_reset else max(sampler.peak_rss, after.get("VmRSS", 0))
    record: dict[str, Any] = {
        "kind": "server-rss",
        "label": args.label,
        "command": " ".join(args.command),
        "rc": rc,
        "wall_s": round(wall, 2),
        "rss_before_mib": mib(before["VmRSS"]),
        "rss_after_mib": mib(after.get("VmRSS", 0)),
        "peak_mib": mib(peak),
        "growth_mib": mib(peak - before["VmRSS"]),
        "sampled_peak_mib": mib(sampler.peak_rss),
        "anon_before_mib": mib(before.get("RssAnon", 0)),
        "sampled_anon_peak_mib": mib(sampler.peak_anon),
        "hwm_exact": hwm_reset,
        "samples": sampler.samples,
    }
    line = json.dumps(record)
    print(line, flush=True)
    if args.out:
        with open(args.out, "a") as f:
            f.write(line + "\n")
    return rc


def watch(args: argparse.Namespace) -> int:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    first = status_kib(args.pid)
    if not first:
        return 2
    peak, samples, started = first["VmRSS"], 0, time.monotonic()
    last = first
    while not stop.is_set():
        st = status_kib(args.pid)
        if not st:
            break
        last = st
        peak = max(peak, st["VmRSS"])
        samples += 1
        stop.wait(args.interval)
    record = {
        "kind": "server-rss-watch",
        "label": args.label,
        "duration_s": round(time.monotonic() - started, 1),
        "rss_start_mib": mib(first["VmRSS"]),
        "rss_end_mib": mib(last.get("VmRSS", 0)),
        "peak_mib": mib(peak),
        "growth_mib": mib(peak - first["VmRSS"]),
        "samples": samples,
    }
    with open(args.out, "a") as f:
        f.write(json.dumps(record) + "\n")
    return 0


def table(args: argparse.Namespace) -> int:
    print(
        "| measured while | RSS before MiB | peak MiB | growth MiB | sampled peak MiB | exact HWM "
        "| rc | wall s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for path in args.files:
        with open(path) as f:
            for line in f:
                rec = json.loads(line)
                if rec.get("kind") == "server-rss":
                    print(
                        f"| {rec['label']} | {rec['rss_before_mib']} | {rec['peak_mib']} | "
                        f"**{rec['growth_mib']}** | {rec['sampled_peak_mib']} | "
                        f"{'yes' if rec['hwm_exact'] else 'no'} | {rec['rc']} | {rec['wall_s']} |"
                    )
                elif rec.get("kind") == "server-rss-watch":
                    print(
                        f"| {rec['label']} (whole run, sampled) | {rec['rss_start_mib']} | "
                        f"{rec['peak_mib']} | {rec['growth_mib']} | {rec['peak_mib']} | no | - | "
                        f"{rec['duration_s']} |"
                    )
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="mode", required=True)
    m = sub.add_parser("measure")
    m.add_argument("--pid", type=int, required=True)
    m.add_argument("--label", required=True)
    m.add_argument("--out")
    m.add_argument("--interval", type=float, default=0.01)
    m.add_argument("command", nargs=argparse.REMAINDER)
    w = sub.add_parser("watch")
    w.add_argument("--pid", type=int, required=True)
    w.add_argument("--label", default="server")
    w.add_argument("--out", required=True)
    w.add_argument("--interval", type=float, default=0.05)
    t = sub.add_parser("table")
    t.add_argument("files", nargs="+")
    args = p.parse_args()
    if args.mode == "measure":
        if args.command and args.command[0] == "--":
            args.command = args.command[1:]
        if not args.command:
            p.error("measure needs a command after --")
        return measure(args)
    if args.mode == "watch":
        return watch(args)
    return table(args)


if __name__ == "__main__":
    sys.exit(main())
