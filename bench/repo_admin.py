"""Bench helper: delete a repository the way the server does (row, then directory via
trash, then the event), for push targets. The CLI has no `repo delete` (CONTRACT §1).

    .venv/bin/python bench/repo_admin.py delete OWNER/NAME[.git] --data-dir D
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from app.services.bootstrap import open_context
from app.services.repos import delete_repo
from app.settings import Settings


async def _delete(settings: Settings, full_name: str) -> int:
    owner, _, name = full_name.partition("/")
    name = name.removesuffix(".git")
    async with open_context(settings) as ctx:
        repo = await ctx.store.repo_by_name(owner, name)
        if repo is None:
            print(f"no repository {owner}/{name}", file=sys.stderr)
            return 1
        await delete_repo(ctx, repo, actor=None)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("action", choices=["delete"])
    parser.add_argument("full_name", metavar="OWNER/NAME")
    parser.add_argument("--data-dir", required=True)
    args = parser.parse_args()
    return asyncio.run(_delete(Settings(data_dir=Path(args.data_dir)), args.full_name))


if __name__ == "__main__":
    sys.exit(main())
