"""Several real server processes behind a real nginx, on loopback.

Used by the cluster tests (tests/cluster/conftest.py) and the cluster benchmark
(bench/cluster_bench.py). Nothing here imports pytest.

- a fresh PostgreSQL database per cluster (CREATE DATABASE cluster_<hex>, dropped at stop),
- one Redis database with a key/channel prefix of its own (APP_REDIS_PREFIX),
- instances: `python -m app serve --port 0 --data-dir D` (one shared D), each a process,
- nginx from Debian's package, running in the foreground with a generated main config
  that includes the example site of deploy/nginx-githost.conf with the ports substituted,
  so the example that operators copy is the one the tests run.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import getpass
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[2]
DEPLOY_SITE = ROOT / "deploy" / "nginx-githost.conf"
PASSWORD = "cluster-horse-battery-staple"
_LISTENING = re.compile(r"listening on (http://\S+)")


class ClusterError(RuntimeError):
    """A part of the cluster could not be started."""


def find_nginx() -> str | None:
    for candidate in (shutil.which("nginx"), "/usr/sbin/nginx"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def missing_requirements() -> str | None:
    """Why a cluster cannot run here (None when it can)."""
    if not os.environ.get("APP_TEST_DATABASE_URL"):
        return "APP_TEST_DATABASE_URL is not set (PostgreSQL needed for a cluster)"
    if not os.environ.get("APP_TEST_REDIS_URL"):
        return "APP_TEST_REDIS_URL is not set (Redis needed for a cluster)"
    if not os.environ["APP_TEST_DATABASE_URL"].startswith("postgresql"):
        return "APP_TEST_DATABASE_URL is not a PostgreSQL URL"
    if find_nginx() is None:
        return "nginx is not installed (apt-get install nginx)"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _asyncpg_dsn(url: str) -> str:
    return re.sub(r"^postgresql\+asyncpg://", "postgresql://", url)


async def _admin(url: str, statement: str) -> None:
    import asyncpg  # type: ignore[import-untyped]  # the driver the server uses

    conn = await asyncpg.connect(_asyncpg_dsn(url), timeout=10)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def _run_async(coro: object) -> None:
    """Run a coroutine from synchronous code, even when a loop is running in this thread."""
    import threading

    errors: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(coro)  # type: ignore[arg-type]
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


def _redis_cleanup(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=500))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
    finally:
        client.close()


def basic_header(login: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{login}:{secret}".encode()).decode()


@dataclass
class Instance:
    name: str
    proc: subprocess.Popen[bytes]
    url: str
    log_path: Path

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def alive(self) -> bool:
        return self.proc.poll() is None


@dataclass
class Balancer:
    proc: subprocess.Popen[bytes]
    url: str
    prefix: Path

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])


@dataclass
class Cluster:
    """A shared database, Redis prefix and data dir; instances and a balancer on demand."""

    root: Path
    admin_database_url: str
    redis_url: str
    extra_env: dict[str, str] = field(default_factory=dict)
    database_name: str = field(default_factory=lambda: f"cluster_{secrets.token_hex(6)}")
    redis_prefix: str = field(default_factory=lambda: f"githost-test-{secrets.token_hex(6)}:")
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(48))
    instances: dict[str, Instance] = field(default_factory=dict)
    balancer: Balancer | None = None  # the first one started
    balancers: list[Balancer] = field(default_factory=list)
    _database_created: bool = False

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def database_url(self) -> str:
        return _with_database(self.admin_database_url, self.database_name)

    # Lifecycle ---------------------------------------------------------------
    def create_database(self) -> None:
        _run_async(_admin(self.admin_database_url, f'CREATE DATABASE "{self.database_name}"'))
        self._database_created = True

    def env(self) -> dict[str, str]:
        """What every instance (and every CLI run against the cluster) is given."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("APP_")}
        env.update(
            {
                "APP_DATABASE_URL": self.database_url,
                "APP_REDIS_URL": self.redis_url,
                "APP_REDIS_PREFIX": self.redis_prefix,
                "APP_SECRET_KEY": self.secret_key,
                "APP_TRUSTED_PROXIES": "127.0.0.1/32",
                "APP_DATA_DIR": str(self.data_dir),
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.extra_env)
        return env

    def cli(self, *args: str, stdin: str | None = None, timeout: float = 120) -> str:
        """`python -m app ARGS` against the cluster's database and data dir; stdout."""
        done = subprocess.run(
            [sys.executable, "-m", "app", *args],
            input=stdin.encode() if stdin is not None else None,
            capture_output=True,
            env=self.env(),
            cwd=self.root,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise ClusterError(
                f"python -m app {' '.join(args)} exited {done.returncode}: "
                f"{done.stderr.decode(errors='replace')[-2000:]}"
            )
        return done.stdout.decode()

    def start_instances(self, *names: str, timeout: float = 60) -> list[Instance]:
        """Start several instances at once (they migrate the same database together)."""
        procs = [self._spawn(name) for name in names]
        return [self._wait_listening(name, proc, timeout) for name, proc in procs]

    def start_instance(self, name: str, *, port: int = 0, timeout: float = 60) -> Instance:
        """One instance; `port` to bring a stopped one back where the balancer expects it."""
        return self._wait_listening(name, self._spawn(name, port)[1], timeout)

    def _spawn(self, name: str, port: int = 0) -> tuple[str, subprocess.Popen[bytes]]:
        if name in self.instances and self.instances[name].alive():
            raise ClusterError(f"instance {name} is already running")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.root / f"instance-{name}.log"
        with log_path.open("ab") as log:
            proc = subprocess.Popen(
                [
                    *(sys.executable, "-m", "app", "serve", "--host", "127.0.0.1"),
                    *("--port", str(port), "--data-dir", str(self.data_dir)),
                ],
                stdout=subprocess.PIPE,
                stderr=log,
                env=self.env(),
                cwd=self.root,
                start_new_session=True,
            )
        return name, proc

    def _wait_listening(self, name: str, proc: subprocess.Popen[bytes], timeout: float) -> Instance:
        log_path = self.root / f"instance-{name}.log"
        url = _read_url(proc, timeout)
        if url is None:
            proc.kill()
            proc.wait()
            raise ClusterError(f"instance {name} did not start:\n{tail(log_path)}")
        instance = Instance(name, proc, url, log_path)
        self.instances[name] = instance
        wait_http(f"{url}/healthz", timeout=timeout, accept_any_status=True)
        return instance

    def wait(self, name: str, timeout: float = 90) -> int:
        """Wait for an instance that was told to stop; its exit status."""
        proc = self.instances[name].proc
        try:
            return proc.wait(timeout=timeout)
        finally:
            if proc.stdout:
                proc.stdout.close()

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        instance = self.instances[name]
        if instance.alive():
            instance.proc.send_signal(sig)
        try:
            instance.proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            instance.proc.kill()
            instance.proc.wait()
        if instance.proc.stdout:
            instance.proc.stdout.close()

    def start_balancer(self, names: Sequence[str] | None = None, *, workers: int = 1) -> Balancer:
        """nginx in the foreground, the deploy example's site with these instances upstream."""
        nginx = find_nginx()
        if nginx is None:
            raise ClusterError("nginx is not installed")
        names = list(names or self.instances)
        upstreams = [self.instances[n].port for n in names]
        last_error = ""
        for _attempt in range(5):
            port = free_port()
            prefix = self.root / f"nginx-{port}"
            conf = write_nginx_config(prefix, port, upstreams, workers=workers)
            proc = subprocess.Popen(
                [nginx, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            url = f"http://127.0.0.1:{port}"
            try:
                wait_http(f"{url}/healthz", timeout=20, accept_any_status=True, proc=proc)
            except ClusterError:
                proc.kill()
                proc.wait()
                last_error = tail(prefix / "error.log")
                continue
            balancer = Balancer(proc, url, prefix)
            self.balancers.append(balancer)
            self.balancer = self.balancer or balancer
            return balancer
        raise ClusterError(f"nginx did not start:\n{last_error}")

    def stop_balancer(self) -> None:
        for balancer in self.balancers:
            stop_process(balancer.proc, signal.SIGQUIT)
        self.balancers.clear()
        self.balancer = None

    def stop(self) -> None:
        """Stop everything this cluster started, drop its database and Redis keys."""
        self.stop_balancer()
        for name, instance in list(self.instances.items()):
            if instance.alive():
                stop_process(instance.proc, signal.SIGTERM)
            if instance.proc.stdout:
                instance.proc.stdout.close()
            del self.instances[name]
        if self._database_created:
            with contextlib.suppress(Exception):
                _run_async(
                    _admin(
                        self.admin_database_url,
                        f'DROP DATABASE IF EXISTS "{self.database_name}" WITH (FORCE)',
                    )
                )
            self._database_created = False
        with contextlib.suppress(Exception):
            _redis_cleanup(self.redis_url, self.redis_prefix)

    def logs(self) -> str:
        parts = [f"--- {path.name}\n{tail(path)}" for path in sorted(self.root.glob("*.log"))]
        for balancer in self.balancers:
            parts.append(f"--- nginx error.log\n{tail(balancer.prefix / 'error.log')}")
        return "\n".join(parts)

    # Bootstrap -------------------------------------------------------------
    def create_admin(self, login: str = "root") -> str:
        """An admin user through the CLI; returns a personal access token (all scopes)."""
        self.cli("user", "create", login, "--admin", "--password-stdin", stdin=PASSWORD + "\n")
        return self.cli("token", "create", login, "--scopes", "read,write,admin").strip()


@contextlib.contextmanager
def running_cluster(
    root: Path,
    *,
    instances: Sequence[str] = ("a", "b"),
    extra_env: Mapping[str, str] | None = None,
    balancer: bool = True,
) -> Iterator[Cluster]:
    """A started cluster from APP_TEST_DATABASE_URL / APP_TEST_REDIS_URL, stopped at exit."""
    cluster = Cluster(
        root=root,
        admin_database_url=os.environ["APP_TEST_DATABASE_URL"],
        redis_url=os.environ["APP_TEST_REDIS_URL"],
        extra_env=dict(extra_env or {}),
    )
    try:
        cluster.create_database()
        if instances:
            cluster.start_instances(*instances)
        if balancer and instances:
            cluster.start_balancer()
        yield cluster
    finally:
        cluster.stop()


def write_nginx_config(prefix: Path, port: int, upstreams: Sequence[int], *, workers: int) -> Path:
    """A main nginx.conf in prefix that includes the deploy example with our ports."""
    prefix.mkdir(parents=True, exist_ok=True)
    for folder in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / folder).mkdir(exist_ok=True)
    site = render_site(DEPLOY_SITE.read_text(), port, upstreams)
    (prefix / "githost-site.conf").write_text(site)
    user = ""
    if os.geteuid() == 0:
        # Workers of a root master switch to `user`; keep them able to use our temp dirs.
        user = f"user {getpass.getuser()};\n"
    conf = prefix / "nginx.conf"
    conf.write_text(
        f"""{user}worker_processes {workers};
daemon off;
master_process on;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    include {prefix}/githost-site.conf;
}}
"""
    )
    return conf


def render_site(template: str, port: int, upstreams: Sequence[int]) -> str:
    """Substitute the example's listen address and upstream servers (which must be there)."""
    listen = re.compile(r"^(\s*)listen\s+[^;]+;", re.MULTILINE)
    server = re.compile(r"^(\s*)server\s+127\.0\.0\.1:\d+([^;]*);\n", re.MULTILINE)
    if not listen.search(template) or len(server.findall(template)) < 2:
        raise ClusterError(f"{DEPLOY_SITE} lacks a listen line or two upstream servers")
    template = listen.sub(lambda m: f"{m.group(1)}listen 127.0.0.1:{port};", template, count=1)
    first = server.search(template)
    assert first is not None
    indent, options = first.group(1), first.group(2)
    lines = "".join(f"{indent}server 127.0.0.1:{p}{options};\n" for p in upstreams)
    template = server.sub("", template)
    return template[: first.start()] + lines + template[first.start() :]


def _read_url(proc: subprocess.Popen[bytes], timeout: float) -> str | None:
    """The URL from the instance's `githost listening on URL` line."""
    import selectors

    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    buffer = b""
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if not selector.select(timeout=0.2):
                if proc.poll() is not None:
                    return None
                continue
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                return None
            buffer += chunk
            match = _LISTENING.search(buffer.decode(errors="replace"))
            if match:
                return match.group(1).rstrip("/")
    return None


def wait_http(
    url: str,
    *,
    timeout: float,
    accept_any_status: bool = False,
    proc: subprocess.Popen[bytes] | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ClusterError(f"process exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 (http only)
                return
        except urllib.error.HTTPError:
            if accept_any_status:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise ClusterError(f"{url} did not answer within {timeout}s")


def stop_process(proc: subprocess.Popen[bytes], sig: int) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def tail(path: Path, limit: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:]
    except FileNotFoundError:
        return "(no log)"
