"""Server-owned hooks, written at startup into `DATA_DIR/hooks` (core.hooksPath).

No repository ever runs a hook of its own: the path comes from the environment of
every git process the server starts.

`post-receive` hands the exact `old new ref` lines of the refs git actually updated
to the server through the per-request file named by `APP_PUSH_REPORT`. The server
records events from that file after receive-pack exits, so a refused or failed
update never produces an event.
"""

from __future__ import annotations

import os
from pathlib import Path

PUSH_REPORT_ENV = "APP_PUSH_REPORT"

_POST_RECEIVE = f"""#!/bin/sh
# githost: report updated refs to the server (written by the server; do not edit)
[ -n "${PUSH_REPORT_ENV}" ] || exit 0
cat >> "${PUSH_REPORT_ENV}"
"""

_PRE_RECEIVE = """#!/bin/sh
# githost: nothing is refused here yet; policy hooks (protected branches) go here.
cat > /dev/null
"""

HOOKS = {"post-receive": _POST_RECEIVE, "pre-receive": _PRE_RECEIVE}


def install_hooks(hooks_dir: Path) -> Path:
    """Write the hook scripts (idempotent, atomic per file) and return the folder."""
    hooks_dir.mkdir(parents=True, exist_ok=True)
    for name, text in HOOKS.items():
        target = hooks_dir / name
        if target.exists() and target.read_text() == text and os.access(target, os.X_OK):
            continue
        tmp = target.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(text)
        tmp.chmod(0o755)
        tmp.replace(target)
    return hooks_dir


def parse_push_report(data: bytes) -> list[tuple[str, str, str]]:
    """`old new ref` lines -> tuples; malformed lines are dropped."""
    updates = []
    for line in data.decode("utf-8", "replace").splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and len(parts[0]) in (40, 64) and len(parts[1]) in (40, 64):
            updates.append((parts[0], parts[1], parts[2]))
    return updates
