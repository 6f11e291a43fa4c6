#!/usr/bin/env python3
"""The foundation issue's performance goals, checked against one harness run.

    goals.py RESULTS/run.jsonl [--rss RESULTS/server-rss.jsonl] [--label custom]

Every figure compared comes from the same run (the machine drifts between runs).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

Summaries = dict[tuple[str, str, str], dict[str, Any]]


def load(path: str) -> Summaries:
    out: Summaries = {}
    with open(path) as f:
        for line in f:
            if line.strip():
                rec = json.loads(line)
                if rec.get("kind") == "summary":
                    out[(rec["label"], str(rec["protocol"]), rec["case"])] = rec
    return out


def median(rec: dict[str, Any] | None, key: str) -> float | None:
    value = (rec or {}).get(key)
    return value.get("median") if isinstance(value, dict) else None


def verdict(ok: bool | None) -> str:
    return "n/a (not measured)" if ok is None else ("**met**" if ok else "**MISSED**")


def fmt(x: float | None, unit: str = "") -> str:
    return "-" if x is None else f"{x:.3g}{unit}"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("results")
    p.add_argument("--rss", default=None)
    p.add_argument("--label", default="custom")
    args = p.parse_args()
    s = load(args.results)
    me = args.label

    def get(label: str, case: str, proto: str = "2") -> dict[str, Any] | None:
        return s.get((label, proto, case))

    rows: list[tuple[str, str, bool | None]] = []
    for proto in ("2", "0"):
        ours = median(get(me, "clone", proto), "wall_s")
        floor = median(get("floor", "clone", proto), "wall_s")
        apache = median(get("apache", "clone", proto), "wall_s")
        ok = None
        if ours and floor and apache:
            ok = ours <= 1.05 * floor and ours <= apache
        rows.append(
            (
                f"big clone v{proto}: <= 1.05x floor and <= Apache",
                f"{fmt(ours, ' s')} = {fmt(ours / floor if ours and floor else None, 'x')} floor "
                f"({fmt(floor, ' s')}), {fmt(ours / apache if ours and apache else None, 'x')} "
                f"Apache ({fmt(apache, ' s')})",
                ok,
            )
        )
    fetch = median(get(me, "fetch"), "wall_ms")
    rows.append(
        ("no-op fetch: median <= 20 ms", fmt(fetch, " ms"), None if fetch is None else fetch <= 20)
    )
    ours = median(get(me, "push-binary"), "wall_s")
    apache = median(get("apache", "push-binary"), "wall_s")
    rows.append(
        (
            "200 MiB binary push: <= 0.5x Apache",
            f"{fmt(ours, ' s')} = {fmt(ours / apache if ours and apache else None, 'x')} Apache "
            f"({fmt(apache, ' s')})",
            None if not (ours and apache) else ours <= 0.5 * apache,
        )
    )
    conc = get(me, "concurrent")
    ours = median(conc, "wall_s")
    floor = median(get("floor", "concurrent"), "wall_s")
    rows.append(
        (
            "8 concurrent clones: total <= 1.05x floor",
            f"{fmt(ours, ' s')} = {fmt(ours / floor if ours and floor else None, 'x')} floor "
            f"({fmt(floor, ' s')})",
            None if not (ours and floor) else ours <= 1.05 * floor,
        )
    )
    p99 = (conc or {}).get("probe_p99_ms")
    ref = (get("apache", "concurrent") or {}).get("probe_p99_ms")
    rows.append(
        (
            "GET every 50 ms during them: p99 <= Apache's",
            f"{fmt(p99, ' ms')} vs Apache {fmt(ref, ' ms')}",
            None if p99 is None or ref is None else p99 <= ref,
        )
    )
    if args.rss:
        with open(args.rss) as f:
            recs = [json.loads(line) for line in f if line.strip()]
        for rec in recs:
            if rec.get("kind") == "server-rss" and (
                "clone, protocol" in rec["label"] or "binary" in rec["label"]
            ):
                rows.append(
                    (
                        f"server process RSS growth < 32 MiB: {rec['label']}",
                        f"{rec['growth_mib']} MiB (peak {rec['peak_mib']}, before "
                        f"{rec['rss_before_mib']})",
                        rec["growth_mib"] < 32 and rec["rc"] == 0,
                    )
                )
    print("### Goals of the foundation issue (this run)\n")
    print("| goal | measured | verdict |")
    print("|---|---|---|")
    for goal, measured, ok in rows:
        print(f"| {goal} | {measured} | {verdict(ok)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
