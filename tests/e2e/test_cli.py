"""`python -m app` as a user runs it: a real subprocess, a fresh data dir, the real
server answering real git (CONTRACT §1)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

PASSWORD = "cli-password-123"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("APP_")}
    env.update({"GIT_TERMINAL_PROMPT": "0", "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


def cli(
    cwd: Path, *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        cwd=cwd,
        env=env or _env(),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """A refused command: non-zero exit, exactly one line on stderr, no traceback."""
    assert result.returncode != 0, result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("python -m app"), lines
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """An empty current directory: the default data dir is ./data, no .env around."""
    path = tmp_path / "work"
    path.mkdir()
    return path


def test_help(workdir: Path) -> None:
    result = cli(workdir, "--help")
    assert result.returncode == 0
    for command in ("serve", "user", "token", "repo", "db"):
        assert command in result.stdout
    for args in (("serve", "--help"), ("repo", "gc", "--help"), ("user", "create", "--help")):
        assert cli(workdir, *args).returncode == 0


def test_user_token_repo_create(workdir: Path) -> None:
    made = cli(
        workdir, "user", "create", "alice", "--email", "a@example.com", "--admin",
        "--password-stdin", stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip() == "created user alice (site admin)"
    data = workdir / "data"
    assert (data / "app.db").is_file()
    assert (data / "secret_key").is_file()
    assert (data / "secret_key").stat().st_mode & 0o077 == 0

    token = cli(workdir, "token", "create", "alice", "--scopes", "read,write", "--name", "ci")
    assert token.returncode == 0, token.stderr
    assert re.fullmatch(r"ghp_[A-Za-z0-9_-]{40,}\n", token.stdout)

    repo = cli(workdir, "repo", "create", "alice/hello", "--private", "--description", "hi")
    assert repo.returncode == 0, repo.stderr
    assert repo.stdout.strip() == "created private repository alice/hello"
    bare = data / "repositories" / "alice" / "hello.git"
    assert (bare / "HEAD").read_text() == "ref: refs/heads/main\n"
    public = cli(workdir, "repo", "create", "ALICE/pub")
    assert public.stdout.strip() == "created public repository alice/pub"

    gc = cli(workdir, "repo", "gc", "alice/hello", "--prune-now")
    assert gc.returncode == 0, gc.stderr
    assert cli(workdir, "db", "upgrade").stdout.strip() == "database is up to date"


def test_data_dir_flag_and_environment(tmp_path: Path, workdir: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    made = cli(
        workdir, "user", "create", "bob", "--password-stdin", "--data-dir", str(elsewhere),
        stdin=PASSWORD,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert (elsewhere / "app.db").exists() and not (workdir / "data").exists()
    # APP_DATA_DIR names the same place; a flag wins over the environment.
    env = _env(APP_DATA_DIR=str(elsewhere))
    assert cli(workdir, "repo", "create", "bob/x", env=env).returncode == 0
    flagged = cli(workdir, "repo", "create", "bob/y", "--data-dir", str(workdir / "d2"), env=env)
    assert "no user named 'bob'" in one_line_error(flagged)


@pytest.mark.parametrize(
    ("args", "env", "code", "says"),
    [
        ((), {}, 2, "required"),
        (("serve", "--bogus"), {}, 2, "unrecognized arguments: --bogus"),
        (("serve", "--port", "abc"), {}, 2, "invalid int value"),
        (("serve", "--port", "70000"), {}, 2, "port"),
        (("serve", "--port", "-1"), {}, 2, "port"),
        (("frobnicate",), {}, 2, "invalid choice"),
        (("user",), {}, 2, "required"),
        (("repo", "gc"), {}, 2, "required"),
        (("db", "upgrade"), {"APP_PORT": "nope"}, 2, "port"),
        (("db", "upgrade"), {"APP_LOG_FORMAT": "xml"}, 2, "log_format"),
        (("db", "upgrade"), {"APP_SECRET_KEY": "short"}, 2, "secret_key"),
        (("db", "upgrade"), {"APP_RATE_LIMIT": "lots"}, 2, "rate_limit"),
        (("db", "upgrade"), {"APP_DATABASE_URL": "bogus://x"}, 1, "bogus"),
        (("repo", "create", "nobody/x"), {}, 1, "no user named 'nobody'"),
        (("repo", "create", "noslash"), {}, 1, "OWNER/NAME"),
        (("repo", "gc", "nobody/x"), {}, 1, "no repository"),
        (("token", "create", "nobody"), {}, 1, "no user named 'nobody'"),
    ],
)
def test_bad_flag_or_value_is_one_line(
    workdir: Path, args: tuple[str, ...], env: dict[str, str], code: int, says: str
) -> None:
    result = cli(workdir, *args, env=_env(**env))
    assert result.returncode == code, result.stderr
    assert says in one_line_error(result)


def test_refused_values_from_services(workdir: Path) -> None:
    short = cli(workdir, "user", "create", "carol", "--password-stdin", stdin="short\n")
    assert "at least 8 characters" in one_line_error(short)
    bad = cli(workdir, "user", "create", "no_underscores", "--password-stdin", stdin=PASSWORD)
    assert "invalid name" in one_line_error(bad)
    reserved = cli(workdir, "user", "create", "API", "--password-stdin", stdin=PASSWORD)
    assert "reserved name" in one_line_error(reserved)
    assert (
        cli(workdir, "user", "create", "carol", "--password-stdin", stdin=PASSWORD).returncode == 0
    )
    again = cli(workdir, "user", "create", "CAROL", "--password-stdin", stdin=PASSWORD)
    assert "already exists" in one_line_error(again)
    scopes = cli(workdir, "token", "create", "carol", "--scopes", "read,root")
    assert "unknown scope 'root'" in one_line_error(scopes)
    for name in ("carol/../x", "carol/.git", "carol/x.git", "carol/-x"):
        assert "invalid repository name" in one_line_error(cli(workdir, "repo", "create", name)), (
            name
        )
    assert cli(workdir, "repo", "create", "carol/r").returncode == 0
    assert "already exists" in one_line_error(cli(workdir, "repo", "create", "carol/R"))


def test_data_dir_that_is_a_file(workdir: Path) -> None:
    (workdir / "afile").write_text("x")
    result = cli(workdir, "db", "upgrade", "--data-dir", "afile")
    assert result.returncode == 1
    one_line_error(result)


@pytest.fixture
def served(workdir: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`python -m app serve --port 0` on an empty data dir: (process, announced URL)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--port", "0"],
        cwd=workdir,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # blocks until the server printed its URL (or died)
        match = re.fullmatch(r"githost listening on (http://127\.0\.0\.1:(\d+))\n", line)
        assert match, (line, proc.stderr.read() if proc.poll() is not None else "")
        assert match.group(2) != "0"
        yield proc, match.group(1)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=60)
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()


def _git(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    home = cwd / "home"
    home.mkdir(exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_AUTHOR_NAME": "T",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "T",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_serve_port_0_on_empty_data_dir_answers_and_stops_on_sigterm(
    workdir: Path, served: tuple[subprocess.Popen[str], str]
) -> None:
    proc, url = served
    data = workdir / "data"
    for made in ("app.db", "secret_key", "repositories", "hooks/post-receive"):
        assert (data / made).exists(), made
    # The CLI and the running server share the data dir.
    assert (
        cli(workdir, "user", "create", "dave", "--password-stdin", stdin=PASSWORD).returncode == 0
    )
    assert cli(workdir, "repo", "create", "dave/live").returncode == 0
    token = cli(workdir, "token", "create", "dave").stdout.strip()
    work = workdir / "w"
    assert _git(workdir, "init", "-q", "-b", "main", str(work)).returncode == 0
    (work / "f.txt").write_text("served\n")
    assert _git(work, "add", "f.txt").returncode == 0
    assert _git(work, "commit", "-q", "-m", "one").returncode == 0
    remote = url.replace("http://", f"http://dave:{token}@") + "/dave/live.git"
    pushed = _git(work, "push", "-q", remote, "main")
    assert pushed.returncode == 0, pushed.stderr
    cloned = _git(workdir, "clone", "-q", url + "/dave/live", str(workdir / "c"))
    assert cloned.returncode == 0, cloned.stderr
    assert (workdir / "c" / "f.txt").read_text() == "served\n"

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    assert proc.stderr is not None
    log = proc.stderr.read()
    assert "Traceback" not in log
    # One access-log line per request, with method, path and status; never a credential.
    assert re.search(r"POST /dave/live\.git/git-receive-pack 200 ", log), log
    assert token not in log and PASSWORD not in log


def test_sigint_also_stops_cleanly(served: tuple[subprocess.Popen[str], str]) -> None:
    proc, _ = served  # the handlers are installed before the URL is printed
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 0


def test_serve_on_a_port_in_use_is_one_line(
    workdir: Path, served: tuple[subprocess.Popen[str], str]
) -> None:
    _, url = served
    port = url.rsplit(":", 1)[1]
    result = cli(workdir, "serve", "--port", port, "--data-dir", str(workdir / "other"))
    assert result.returncode == 1
    assert "address already in use" in one_line_error(result)


def test_repo_gc_sweeps_quarantines_and_prunes(workdir: Path) -> None:
    assert (
        cli(workdir, "user", "create", "erin", "--password-stdin", stdin=PASSWORD).returncode == 0
    )
    assert cli(workdir, "repo", "create", "erin/tidy").returncode == 0
    bare = workdir / "data" / "repositories" / "erin" / "tidy.git"
    stale = bare / "objects" / "tmp_objdir-incoming-stale"
    fresh = bare / "objects" / "tmp_objdir-incoming-fresh"
    for folder in (stale, fresh):
        folder.mkdir()
        (folder / "junk.pack").write_bytes(b"x" * 1000)
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    blob = workdir / "blob.txt"
    blob.write_text("unreachable\n")
    loose = _git(workdir, "--git-dir", str(bare), "hash-object", "-w", str(blob))
    sha = loose.stdout.strip()
    assert _git(workdir, "--git-dir", str(bare), "cat-file", "-e", sha).returncode == 0

    assert cli(workdir, "repo", "gc", "erin/tidy").returncode == 0
    assert not stale.exists() and fresh.exists()  # only quarantines older than an hour
    assert _git(workdir, "--git-dir", str(bare), "cat-file", "-e", sha).returncode == 0
    assert cli(workdir, "repo", "gc", "erin/tidy", "--prune-now").returncode == 0
    assert _git(workdir, "--git-dir", str(bare), "cat-file", "-e", sha).returncode != 0
