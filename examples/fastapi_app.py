"""A FastAPI backend over telegent_async: one client and one watcher for the app's lifetime.

    pip install 'telegent-async[examples]'
    export TELEGENT_ACCOUNT_KEY=DID-... TELEGENT_ACCOUNT_SECRET=... \\
           TELEGENT_WEBHOOK_SECRET=$(python -c 'import secrets; print(secrets.token_urlsafe(32))')
    uvicorn --app-dir examples --factory fastapi_app:create_app

Endpoints: see `web_common.py`. Telegent's webhook URL is
`https://<host>/hooks/telegent/<TELEGENT_WEBHOOK_SECRET>`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from web_common import (
    REQUEST_RETRIES,
    REQUEST_TIMEOUT,
    Settings,
    add_watch,
    error_answer,
    health_json,
    order_json,
    watch_json,
    watch_state,
)

import telegent_async as tg
from telegent_async import webhooks


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    client, watcher = settings.watcher()

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with client, watcher:  # opened at startup, closed (polls stopped) at shutdown
            yield

    app = FastAPI(title="orders", lifespan=lifespan)
    app.mount("/hooks/telegent", webhooks.asgi_app(watcher, secret=settings.webhook_secret))

    async def sdk_error(_request: Request, error: Exception) -> JSONResponse:
        status, body = error_answer(error)  # a TelegentError's http_status; a bad ID's 400
        return JSONResponse(body, status_code=status)

    app.add_exception_handler(tg.TelegentError, sdk_error)
    app.add_exception_handler(ValueError, sdk_error)  # the SDK's argument checks

    @app.get("/orders/{order_id}")
    async def get_order(order_id: str) -> dict[str, Any]:
        order = await client.get_order(
            order_id, timeout=REQUEST_TIMEOUT, max_retries=REQUEST_RETRIES
        )
        return order_json(order)

    @app.post("/orders/{order_id}/watch", status_code=202)
    async def watch(order_id: str, port_in: bool = False) -> dict[str, Any]:
        return await add_watch(watcher, order_id, port_in)

    @app.get("/orders/{order_id}/watch")
    async def watched(order_id: str, wait: Annotated[float, Query(ge=0)] = 0.0) -> dict[str, Any]:
        state = await watch_state(watcher, order_id, wait)
        if state is None:
            raise HTTPException(404, "not watched")
        return watch_json(state)

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return health_json(client.stats)

    return app
