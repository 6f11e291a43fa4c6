"""`python -m app events watch [OWNER/NAME ...] [--url URL] [--token T] [--since-id N]`:
a WebSocket client of /api/v1/events that prints every event as one JSON line on
standard output, exactly as the server sent it, and reconnects after any break with the
last id it printed, so nothing is missed and nothing printed twice.

Without --since-id it starts at the server's `last_id` of the first subscription (events
from now on). Credentials: --token, else APP_TOKEN (a personal access token or a JWT).
A refused credential or a bad repository name ends it with status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from typing import Any

import aiohttp

from app.errors import AppError
from app.settings import Settings

log = logging.getLogger(__name__)
BACKOFF = (0.5, 1.0, 2.0, 5.0, 10.0)


class Watcher:
    def __init__(self, url: str, token: str | None, repos: list[str], since_id: int | None):
        self.url = url
        self.token = token
        self.repos = repos
        self.since_id = since_id

    def subscribe_message(self) -> dict[str, Any]:
        message: dict[str, Any] = {"type": "subscribe", "repos": self.repos}
        if self.since_id is not None:
            message["since_id"] = self.since_id
        return message

    def handle(self, text: str) -> None:
        data = json.loads(text)
        kind = data.get("type") if isinstance(data, dict) else None
        if kind == "event":
            event_id = int(data["id"])
            if self.since_id is not None and event_id <= self.since_id:
                return  # already printed before a reconnect
            sys.stdout.write(text + "\n")
            sys.stdout.flush()
            self.since_id = event_id
        elif kind == "subscribed" and self.since_id is None:
            self.since_id = int(data.get("last_id") or 0)
        elif kind == "error":
            message = str(data.get("message", ""))
            if message.startswith("repos must be"):
                raise AppError(f"the server refused the subscription: {message}")
            log.warning("server: %s", message)

    async def session(self, http: aiohttp.ClientSession) -> int | None:
        """One connection until it closes; returns its close code."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        async with http.ws_connect(self.url, headers=headers, heartbeat=30.0) as ws:
            await ws.send_str(json.dumps(self.subscribe_message()))
            async for message in ws:
                if message.type is aiohttp.WSMsgType.TEXT:
                    self.handle(message.data)
            return ws.close_code

    async def run(self) -> int:
        failures = 0
        async with aiohttp.ClientSession() as http:
            while True:
                try:
                    code = await self.session(http)
                    failures = 0  # it connected: start the backoff over
                    log.info("event stream closed (%s); reconnecting", code)
                except aiohttp.WSServerHandshakeError as exc:
                    if exc.status in (401, 403, 404):
                        raise AppError(f"the server refused the connection ({exc.status})") from exc
                    log.warning("event stream: handshake failed (%s); retrying", exc.status)
                except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                    log.warning("event stream: %s; retrying", exc or type(exc).__name__)
                await asyncio.sleep(BACKOFF[min(failures, len(BACKOFF) - 1)])
                failures += 1


def stream_url(base: str) -> str:
    base = base.rstrip("/")
    if base.startswith("https://"):
        base = "wss://" + base[len("https://") :]
    elif base.startswith("http://"):
        base = "ws://" + base[len("http://") :]
    elif not base.startswith(("ws://", "wss://")):
        base = "ws://" + base
    return base + "/api/v1/events"


async def watch(settings: Settings, args: argparse.Namespace) -> int:
    if args.since_id is not None and args.since_id < 0:
        raise AppError("--since-id must be 0 or more")
    base = args.url or settings.base_url or f"http://{settings.host}:{settings.port}"
    watcher = Watcher(
        stream_url(base), args.token or settings.token, list(args.repos), args.since_id
    )
    return await watcher.run()
