"""`python -m app`: serve | user | token | repo | db | events (CONTRACT §1)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, NoReturn

from pydantic import ValidationError

from app.errors import AppError
from app.settings import Settings

Command = Callable[[Settings, argparse.Namespace], Coroutine[Any, Any, int]]


class Parser(argparse.ArgumentParser):
    """A bad flag or value: one line on stderr, exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _data_dir_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="data directory (default: $APP_DATA_DIR or ./data)")


def build_parser() -> Parser:
    parser = Parser(prog="python -m app", description="githost: a self-hosted Git server")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    serve = commands.add_parser("serve", help="run the server")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8080; 0 picks a free one)")
    _data_dir_flag(serve)
    serve.set_defaults(run=_serve)

    user = commands.add_parser("user", help="manage users").add_subparsers(
        dest="action", required=True, parser_class=Parser
    )
    create_user = user.add_parser("create", help="create a user")
    create_user.add_argument("name")
    create_user.add_argument("--email")
    create_user.add_argument("--admin", action="store_true", help="make a site admin")
    create_user.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    _data_dir_flag(create_user)
    create_user.set_defaults(run=_user_create)

    token = commands.add_parser("token", help="manage tokens").add_subparsers(
        dest="action", required=True, parser_class=Parser
    )
    create_token = token.add_parser("create", help="print a new personal access token once")
    create_token.add_argument("name", help="the user the token belongs to")
    create_token.add_argument("--scopes", default="read,write", help="read,write,admin")
    create_token.add_argument("--name", dest="label", default="cli", help="a label")
    _data_dir_flag(create_token)
    create_token.set_defaults(run=_token_create)

    repo = commands.add_parser("repo", help="manage repositories").add_subparsers(
        dest="action", required=True, parser_class=Parser
    )
    create_repo = repo.add_parser("create", help="create a bare repository")
    create_repo.add_argument("full_name", metavar="OWNER/NAME")
    create_repo.add_argument("--private", action="store_true")
    create_repo.add_argument("--description", default="")
    _data_dir_flag(create_repo)
    create_repo.set_defaults(run=_repo_create)

    gc = repo.add_parser("gc", help="repack, sweep stale push quarantines, optionally prune")
    gc.add_argument("full_name", metavar="OWNER/NAME")
    gc.add_argument("--prune-now", action="store_true", help="drop unreachable objects now")
    _data_dir_flag(gc)
    gc.set_defaults(run=_repo_gc)

    db = commands.add_parser("db", help="metadata database").add_subparsers(
        dest="action", required=True, parser_class=Parser
    )
    upgrade = db.add_parser("upgrade", help="apply schema migrations")
    _data_dir_flag(upgrade)
    upgrade.set_defaults(run=_db_upgrade)

    events = commands.add_parser("events", help="event stream").add_subparsers(
        dest="action", required=True, parser_class=Parser
    )
    watch = events.add_parser("watch", help="print events as JSON lines (reconnects)")
    watch.add_argument("repos", nargs="*", metavar="OWNER/NAME")
    watch.add_argument("--url", help="server base URL (default http://HOST:PORT of settings)")
    watch.add_argument("--token", help="token or JWT (default $APP_TOKEN)")
    watch.add_argument("--since-id", type=int, default=None)
    _data_dir_flag(watch)
    watch.set_defaults(run=_events_watch)
    return parser


def make_settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    for name in ("host", "port", "data_dir"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    return Settings(**overrides)


async def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from app.server import serve

    return await serve(settings)


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Repeat password: "):
        raise AppError("passwords do not match")
    return first


async def _user_create(settings: Settings, args: argparse.Namespace) -> int:
    from app.services.bootstrap import open_context
    from app.services.users import create_user

    password = _read_password(args)
    async with open_context(settings) as ctx:
        user = await create_user(
            ctx, args.name, password=password, email=args.email, is_admin=args.admin
        )
    print(f"created user {user.login}" + (" (site admin)" if user.is_admin else ""))
    return 0


async def _token_create(settings: Settings, args: argparse.Namespace) -> int:
    from app.services.bootstrap import open_context
    from app.services.users import create_token, get_user

    async with open_context(settings) as ctx:
        try:
            user = await get_user(ctx, args.name)
        except AppError as exc:
            raise AppError(f"no user named {args.name!r}") from exc
        _, secret = await create_token(ctx, user, name=args.label, scopes=args.scopes)
    print(secret)
    return 0


def _split_full_name(full_name: str) -> tuple[str, str]:
    owner, sep, name = full_name.partition("/")
    if not sep or not owner or not name:
        raise AppError(f"expected OWNER/NAME, got {full_name!r}")
    return owner, name


async def _repo_create(settings: Settings, args: argparse.Namespace) -> int:
    from app.services.bootstrap import open_context
    from app.services.repos import create_repo
    from app.services.users import get_user

    owner_name, name = _split_full_name(args.full_name)
    async with open_context(settings) as ctx:
        try:
            owner = await get_user(ctx, owner_name)
        except AppError as exc:
            raise AppError(f"no user named {owner_name!r}") from exc
        repo = await create_repo(
            ctx, owner, name, description=args.description, private=args.private
        )
    print(f"created {'private' if repo.private else 'public'} repository {repo.full_name}")
    return 0


async def _repo_gc(settings: Settings, args: argparse.Namespace) -> int:
    from app.services.bootstrap import open_context

    owner_name, name = _split_full_name(args.full_name)
    async with open_context(settings) as ctx:
        repo = await ctx.store.repo_by_name(owner_name, name)
        if repo is None:
            raise AppError(f"no repository {args.full_name!r}")
        await ctx.storage.gc(repo.owner, repo.name, prune_now=args.prune_now)
    print(f"gc done for {repo.full_name}")
    return 0


async def _db_upgrade(settings: Settings, args: argparse.Namespace) -> int:
    from app.store import Store

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = await Store.open(settings.resolved_database_url, migrate=True)
    await store.close()
    print("database is up to date")
    return 0


async def _events_watch(settings: Settings, args: argparse.Namespace) -> int:
    from app.events.watch import watch

    return await watch(settings, args)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = make_settings(args)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "settings"
        print(f"python -m app: error: {field}: {first['msg']}", file=sys.stderr)
        return 2
    from app import logs

    logs.configure(settings.log_level, settings.log_format)
    run: Command = args.run
    try:
        return asyncio.run(run(settings, args))
    except AppError as exc:
        detail = next((e.get("message") for e in exc.errors or [] if e.get("message")), None)
        message = f"{exc.message}: {detail}" if detail else exc.message
        print(f"python -m app: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        print(
            f"python -m app: error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "),
            file=sys.stderr,
        )
        return 1
    except Exception as exc:  # e.g. a database URL SQLAlchemy cannot load: one line, no trace
        logging.getLogger("app").debug("command failed", exc_info=True)
        text = " ".join(str(exc).split())[:300] or type(exc).__name__
        print(f"python -m app: error: {type(exc).__name__}: {text}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
