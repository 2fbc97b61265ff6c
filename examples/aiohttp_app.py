"""An aiohttp.web backend over telegent_async: one client and one watcher for the app's lifetime.

    pip install telegent-async
    export TELEGENT_ACCOUNT_KEY=DID-... TELEGENT_ACCOUNT_SECRET=... \\
           TELEGENT_WEBHOOK_SECRET=$(python -c 'import secrets; print(secrets.token_urlsafe(32))')
    python examples/aiohttp_app.py            # serves on 127.0.0.1:8080

Endpoints: see `web_common.py`. Telegent's webhook URL is
`https://<host>/hooks/telegent/<TELEGENT_WEBHOOK_SECRET>`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web
from aiohttp.typedefs import Handler
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


@web.middleware
async def sdk_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except (tg.TelegentError, ValueError) as error:  # ValueError: the SDK's argument checks
        status, body = error_answer(error)  # a TelegentError's http_status; a bad ID's 400
        return web.json_response(body, status=status)


def create_app(settings: Settings | None = None) -> web.Application:
    settings = settings or Settings.from_env()
    client, watcher = settings.watcher()

    async def lifetime(_app: web.Application) -> AsyncIterator[None]:
        async with client, watcher:  # opened at startup, closed (polls stopped) at cleanup
            yield

    async def get_order(request: web.Request) -> web.Response:
        order = await client.get_order(
            request.match_info["order_id"], timeout=REQUEST_TIMEOUT, max_retries=REQUEST_RETRIES
        )
        return web.json_response(order_json(order))

    async def watch(request: web.Request) -> web.Response:
        port_in = request.query.get("port_in", "").lower() in ("1", "true", "yes")
        added = await add_watch(watcher, request.match_info["order_id"], port_in)
        return web.json_response(added, status=202)

    async def watched(request: web.Request) -> web.Response:
        try:
            wait = max(0.0, float(request.query.get("wait", "0")))
        except ValueError:
            raise web.HTTPBadRequest(text="wait must be a number of seconds") from None
        state = await watch_state(watcher, request.match_info["order_id"], wait)
        if state is None:
            return web.json_response({"detail": "not watched"}, status=404)
        return web.json_response(watch_json(state))

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response(health_json(client.stats))

    app = web.Application(middlewares=[sdk_errors])
    app.cleanup_ctx.append(lifetime)
    app.router.add_get("/orders/{order_id}", get_order)
    app.router.add_post("/orders/{order_id}/watch", watch)
    app.router.add_get("/orders/{order_id}/watch", watched)
    app.router.add_get("/healthz", healthz)
    hook = webhooks.aiohttp_handler(watcher, secret=settings.webhook_secret)
    app.router.add_route("*", "/hooks/telegent/{secret}", hook)
    return app


if __name__ == "__main__":
    web.run_app(create_app(), host="127.0.0.1", port=8080)
