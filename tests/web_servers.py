"""Real web servers on 127.0.0.1 for tests: uvicorn (ASGI apps) and aiohttp.web, in-process.

Each binds port 0 on loopback, yields its base URL once it accepts connections, and is stopped
(with its app's shutdown) when the `async with` ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web


@contextlib.asynccontextmanager
async def uvicorn_serving(
    app: Any, *, lifespan: str = "on", grace: float = 5.0
) -> AsyncIterator[str]:
    """Serve an ASGI app with uvicorn, lifespan included, on a loopback port of its own.
    `grace`: how long requests under way may run on at shutdown before they are cancelled."""
    uvicorn = pytest.importorskip("uvicorn", reason="uvicorn is not installed (`examples` extra)")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit this. asyncio sets it itself only on sockets made with
    # proto=IPPROTO_TCP (this one has proto 0): without it, every request but the first on a
    # kept-alive connection waited 40 ms for a delayed ACK (Nagle's algorithm).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        app, lifespan=lifespan, log_level="warning", ws="none", timeout_graceful_shutdown=grace
    )
    server = _prompt_server(uvicorn.Server)(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        for _ in range(500):
            if server.started or task.done():
                break
            await asyncio.sleep(0.01)
        if task.done():
            task.result()  # it failed to start: say why
        assert server.started, "uvicorn did not start within 5 s"
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


def _prompt_server(base: Any) -> Any:
    """uvicorn.Server looking at `should_exit` every 5 ms instead of every 0.1 s (its tick), so a
    test does not wait out a tick to stop the server. The tick's other duty, refreshing the
    Date header every tenth call, is kept. Its shutdown, likewise, waits for the connections
    and tasks to end (checked every 5 ms) instead of a fixed 0.1 s and then 0.1 s ticks: a
    stop took 0.105 s, now a few ms (60 tests start and stop one)."""

    class PromptServer(base):  # type: ignore[misc]
        async def main_loop(self) -> None:
            counter = 0
            while not await self.on_tick(counter):
                counter = (counter + 1) % 864000
                await asyncio.sleep(0.005)

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            # uvicorn's Server.shutdown, its sleeps replaced by 5 ms checks.
            for server in self.servers:
                server.close()
            for sock in sockets or []:
                sock.close()
            for connection in list(self.server_state.connections):
                connection.shutdown()
            try:
                await asyncio.wait_for(self._drained(), self.config.timeout_graceful_shutdown)
            except asyncio.TimeoutError:
                for task in self.server_state.tasks:
                    task.cancel(msg="Task cancelled, timeout graceful shutdown exceeded")
            if not self.force_exit:
                await self.lifespan.shutdown()

        async def _drained(self) -> None:
            # (uvicorn offers no event for "the last connection closed")
            while self.server_state.connections or self.server_state.tasks:  # noqa: ASYNC110
                await asyncio.sleep(0.005)
            for server in self.servers:
                await server.wait_closed()

    return PromptServer


@contextlib.asynccontextmanager
async def aiohttp_serving(app: web.Application, *, grace: float = 5.0) -> AsyncIterator[str]:
    """Serve an aiohttp.web app (its cleanup contexts included) on a loopback port."""
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=grace)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()
