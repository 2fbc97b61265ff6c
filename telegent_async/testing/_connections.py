"""Counting a server's open connections, by wrapping two hooks of aiohttp's Server."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web


class ConnectionCounter:
    """Connections open now and the most open at once, for tests of pooling and leaks."""

    def __init__(self) -> None:
        self.open = 0
        self.peak = 0

    def attach(self, server: web.Server) -> None:
        # aiohttp's Server is the protocol factory's manager: wrapping its hooks is the only
        # way to see connections open and close without a private subclass of AppRunner.
        made, lost = server.connection_made, server.connection_lost

        def connection_made(handler: Any, transport: asyncio.Transport) -> None:
            made(handler, transport)
            self.open += 1
            self.peak = max(self.peak, self.open)

        def connection_lost(handler: Any, exc: BaseException | None = None) -> None:
            lost(handler, exc)
            self.open -= 1

        server.connection_made = connection_made  # type: ignore[method-assign]
        server.connection_lost = connection_lost  # type: ignore[method-assign]
