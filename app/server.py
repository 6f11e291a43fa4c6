"""Running the app: bind, announce the URL, stop cleanly on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from app.app import RUNNER_KWARGS, create_app
from app.settings import Settings

log = logging.getLogger(__name__)


async def serve(settings: Settings) -> int:
    app = create_app(settings)
    runner = web.AppRunner(app, handle_signals=False, **RUNNER_KWARGS)
    await runner.setup()
    site = web.TCPSite(
        runner, settings.host, settings.port, shutdown_timeout=settings.shutdown_timeout
    )
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"githost listening on {_url(runner, settings)}", flush=True)
    try:
        await stop.wait()
        log.info("stopping: draining in-flight requests (up to %ss)", settings.shutdown_timeout)
    finally:
        await runner.cleanup()
    return 0


def _url(runner: web.AppRunner, settings: Settings) -> str:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            host = address[0]
            host = f"[{host}]" if ":" in host else host
            return f"http://{host}:{address[1]}"
    return f"http://{settings.host}:{settings.port}"
