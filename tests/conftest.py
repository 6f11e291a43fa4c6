"""Fixtures: every test gets a clean environment, its own data dir and real processes."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from app.settings import Settings
from tests.helpers import Git, Server, make_settings, start_server


@pytest.fixture(autouse=True)
def _clean_app_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Settings come from the test, never from the developer's APP_* variables."""
    for name in list(os.environ):
        if name.startswith("APP_") and not name.startswith("APP_TEST_"):
            monkeypatch.delenv(name)
    yield


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[Server]:
    running = await start_server(settings)
    try:
        yield running
    finally:
        await running.test_server.close()


@pytest.fixture
def git(tmp_path: Path) -> Git:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / ".gitconfig").write_text("[init]\n\tdefaultBranch = main\n[protocol]\n\tversion = 2\n")
    return Git(home)
