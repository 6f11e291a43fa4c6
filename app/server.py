"""Running the app: bind, announce the URL, drain cleanly on SIGTERM/SIGINT.

Drain order (aiohttp's runner.cleanup): the listening socket closes (new connections
are refused), idle keep-alive connections close, on_shutdown runs (/readyz turns 503,
git admission refuses new work, WebSockets close with 1001), then in-flight requests
(clones, pushes) get up to `shutdown_timeout` seconds to finish before they are
cancelled; then resources close and the process exits 0.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal

from aiohttp import web

from app.app import create_app, runner_kwargs
from app.git.process import use_pidfd_child_watcher
from app.settings import Settings

log = logging.getLogger(__name__)


async def serve(settings: Settings) -> int:
    app = create_app(settings)
    runner = web.AppRunner(
        app,
        handle_signals=False,
        shutdown_timeout=settings.shutdown_timeout,
        access_log=None,  # app.access writes one line per request
        **runner_kwargs(settings),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    use_pidfd_child_watcher(loop)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        # Inside the try: a port in use or a database that does not answer still closes
        # what setup opened (no "athrow(): asynchronous generator" noise at exit).
        await runner.setup()
        _freeze_startup_heap()
        site = web.TCPSite(runner, settings.host, settings.port)
        await site.start()
        print(f"githost listening on {_url(runner, settings)}", flush=True)
        await stop.wait()
        log.info("stopping: draining in-flight requests (up to %ss)", settings.shutdown_timeout)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await runner.cleanup()
    log.info("stopped")
    return 0


def _freeze_startup_heap() -> None:
    """Move everything alive after startup (modules, routes, schemas: ~115k objects) out
    of the cyclic garbage collector's reach. Otherwise each full collection walks it all
    again, 40 ms or more (hundreds on a busy machine) with the event loop stopped, so
    every request in flight waits. Objects made later (per request) are collected as
    usual."""
    gc.collect()
    gc.freeze()


def _url(runner: web.AppRunner, settings: Settings) -> str:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            host = address[0]
            host = f"[{host}]" if ":" in host else host
            return f"http://{host}:{address[1]}"
    return f"http://{settings.host}:{settings.port}"
