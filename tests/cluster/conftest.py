"""Cluster fixtures: two real instances (A, B) and nginx in front, on loopback.

Needs PostgreSQL (APP_TEST_DATABASE_URL), Redis (APP_TEST_REDIS_URL) and nginx; every
test here skips with the reason when one is missing. One cluster per module (starting
it costs a few seconds); each test works on repositories and users of its own.
"""

from __future__ import annotations

import secrets
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from tests.cluster.launcher import Cluster, missing_requirements, running_cluster
from tests.helpers import Git

# Anonymous requests are counted per client address: the rate-limit test spends this
# budget from an address of its own (X-Forwarded-For from the trusted balancer).
ANONYMOUS_LIMIT = 25


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    reason = missing_requirements()
    if reason is None:
        return
    skip = pytest.mark.skip(reason=f"cluster: {reason}")
    for item in items:
        if "cluster" in item.keywords:
            item.add_marker(skip)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """On a failure, attach the instances' and nginx's logs to the report."""
    report = yield
    cluster = getattr(item, "funcargs", {}).get("cluster")
    if report.failed and isinstance(cluster, Cluster):
        report.sections.append(("cluster logs", cluster.logs()))
    return report


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    reason = missing_requirements()
    if reason is not None:
        pytest.skip(f"cluster: {reason}")
    env = {
        "APP_RATE_LIMIT_ANONYMOUS": f"{ANONYMOUS_LIMIT}/hour",
        "APP_SHUTDOWN_TIMEOUT": "60",
    }
    with running_cluster(tmp_path_factory.mktemp("cluster"), extra_env=env) as started:
        yield started


@pytest.fixture(scope="module")
def admin_token(cluster: Cluster) -> str:
    return cluster.create_admin("root")


@pytest.fixture(scope="module")
def cluster_git(tmp_path_factory: pytest.TempPathFactory) -> Git:
    home = tmp_path_factory.mktemp("git-home")
    (home / ".gitconfig").write_text("[init]\n\tdefaultBranch = main\n[protocol]\n\tversion = 2\n")
    return Git(home)


@pytest.fixture
def name() -> str:
    """A fresh lowercase name for a user or a repository of one test."""
    return f"t{secrets.token_hex(4)}"


@pytest.fixture
def work(tmp_path: Path) -> Path:
    return tmp_path
