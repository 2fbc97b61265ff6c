"""FastAPI: the client and the watcher live in the app's lifespan; run it with uvicorn.

    pip install 'telegent-async[examples]'
    uvicorn --app-dir examples --factory fastapi_app:create_app

Settings and endpoints: `web_common.py`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, Any

import web_common as common
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse

import telegent_async as tg
from telegent_async import webhooks


def create_app(settings: common.Settings | None = None) -> FastAPI:
    settings = settings or common.Settings.from_env()
    client, watcher = settings.watcher()

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with client, watcher:  # opened at startup, closed (polls stopped) at shutdown
            yield

    app = FastAPI(title="orders", lifespan=lifespan)
    app.mount("/hooks/telegent", webhooks.asgi_app(watcher, secret=settings.webhook_secret))

    async def sdk_error(_request: Request, error: Exception) -> JSONResponse:
        status, body = common.error_answer(error)  # a TelegentError's http_status; a bad ID's 400
        return JSONResponse(body, status_code=status)

    app.add_exception_handler(tg.TelegentError, sdk_error)
    app.add_exception_handler(ValueError, sdk_error)  # the SDK's argument checks

    @app.get("/orders/{order_id}")
    async def get_order(order_id: str) -> dict[str, Any]:
        order = await client.get_order(
            order_id, timeout=common.REQUEST_TIMEOUT, max_retries=common.REQUEST_RETRIES
        )
        return common.order_json(order)

    @app.post("/orders/{order_id}/watch", status_code=202)
    async def watch(order_id: str, port_in: bool = False) -> dict[str, Any]:
        return await common.add_watch(watcher, order_id, port_in)

    @app.get("/orders/{order_id}/watch")
    async def watched(order_id: str, wait: Annotated[float, Query(ge=0)] = 0.0) -> dict[str, Any]:
        state = await common.watch_state(watcher, order_id, wait)
        if state is None:
            raise HTTPException(404, "not watched")
        return common.watch_json(state)

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        status, body = common.health_answer(client.stats, watcher.health)
        return JSONResponse(body, status_code=status)

    return app
