"""The one-way layers of DESIGN.md §1, held by reading the source with `ast`:

    settings, errors, schemas, logs  <-  git, store, auth, events, ratelimit  <-  services
    <-  web  <-  app.py  <-  server.py  <-  __main__

Only app/git/ starts processes; only app/web/ (and the wiring above it) imports aiohttp.web.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[2] / "app"

RANK = {
    "settings": 0,
    "errors": 0,
    "schemas": 0,
    "logs": 0,
    "git": 1,
    "store": 1,
    "auth": 1,
    "events": 1,
    "ratelimit": 1,
    "services": 2,
    "web": 3,
    "app": 4,
    "server": 5,
    "__main__": 6,
}
PROCESS_CALLS = {"create_subprocess_exec", "create_subprocess_shell", "Popen", "system", "popen"}
PROCESS_MODULES = {"subprocess", "pty", "multiprocessing"}


def _modules() -> Iterator[tuple[str, Path, ast.Module]]:
    for path in sorted(APP.rglob("*.py")):
        relative = path.relative_to(APP)
        if relative.parts[0] == "store" and "migrations" in relative.parts:
            top = "store"
        else:
            top = relative.parts[0].removesuffix(".py")
        yield top, relative, ast.parse(path.read_text(), filename=str(path))


def _imports(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """(line, dotted module) for every import, also `from x import y` as `x.y`."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module
            for alias in node.names:
                yield node.lineno, f"{node.module}.{alias.name}"


MODULES = list(_modules())


def test_every_app_package_has_a_layer() -> None:
    assert {top for top, _, _ in MODULES} - {"__init__"} <= set(RANK), (
        "a new top-level package under app/: give it a layer in RANK"
    )


def test_imports_only_go_down() -> None:
    wrong = []
    for top, relative, tree in MODULES:
        if top == "__init__":
            continue
        for line, name in _imports(tree):
            parts = name.split(".")
            if parts[0] != "app" or len(parts) < 2:
                continue
            target = parts[1]
            if target in RANK and RANK[target] > RANK[top]:
                wrong.append(f"app/{relative}:{line} imports {name}")
    assert not wrong, "imports against the layers:\n" + "\n".join(sorted(set(wrong)))


def test_only_app_git_starts_processes() -> None:
    wrong = []
    for top, relative, tree in MODULES:
        if top == "git":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name in PROCESS_CALLS:
                    wrong.append(f"app/{relative}:{node.lineno} calls {name}")
        for line, module in _imports(tree):
            if module.split(".")[0] in PROCESS_MODULES:
                wrong.append(f"app/{relative}:{line} imports {module}")
    assert not wrong, "process starts outside app/git/:\n" + "\n".join(wrong)


def test_no_shell_anywhere() -> None:
    for _, relative, tree in MODULES:
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                for keyword in node.keywords:
                    if keyword.arg == "shell":
                        value = keyword.value
                        assert isinstance(value, ast.Constant) and value.value is False, (
                            f"app/{relative}:{node.lineno} passes shell="
                        )
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                assert name != "create_subprocess_shell", f"app/{relative}:{node.lineno}"


def test_only_the_web_layer_imports_aiohttp_web() -> None:
    wrong = []
    for top, relative, tree in MODULES:
        if RANK.get(top, -1) >= RANK["web"]:
            continue
        for line, name in _imports(tree):
            if name == "aiohttp.web" or name.startswith(("aiohttp.web.", "aiohttp.web_")):
                wrong.append(f"app/{relative}:{line} imports {name}")
    assert not wrong, "aiohttp.web below the web layer:\n" + "\n".join(wrong)


@pytest.mark.parametrize(
    "source",
    [
        "from aiohttp import web",
        "import aiohttp.web",
        "from aiohttp.web import Request",
        "from aiohttp.web_request import Request",
    ],
)
def test_the_import_check_sees_every_spelling(source: str) -> None:
    names = [name for _, name in _imports(ast.parse(source))]
    assert any(n == "aiohttp.web" or n.startswith(("aiohttp.web.", "aiohttp.web_")) for n in names)


def test_only_settings_and_the_git_environment_read_os_environ() -> None:
    """DESIGN §3.8: no module reads os.environ except settings and the git env builder."""
    allowed = {Path("settings.py"), Path("git/process.py")}
    wrong = []
    for top, relative, tree in MODULES:
        if relative in allowed or RANK.get(top, -1) >= RANK["app"]:
            continue
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and node.attr in ("environ", "getenv")
                and isinstance(node.value, ast.Name)
                and node.value.id == "os"
            ):
                wrong.append(f"app/{relative}:{node.lineno} os.{node.attr}")
    assert not wrong, "\n".join(wrong)


def test_responses_are_prepared_through_stamping() -> None:
    """No on_response_prepare receivers stamp headers (app/web/stamping.py): a handler
    that prepares its own response must call stamping.prepare, which stamps X-Request-ID,
    the rate-limit and CORS headers first."""
    offenders = []
    for name, path, tree in _modules():
        if path.name == "stamping.py":
            continue
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "prepare"
                and not (isinstance(node.func.value, ast.Name) and node.func.value.id == "stamping")
            ):
                offenders.append(f"{name}:{node.lineno}")
    assert offenders == []
