"""aiohttp.web: the client and the watcher live in a cleanup context; `python aiohttp_app.py`
serves it on 127.0.0.1:8080. Settings and endpoints: `web_common.py`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import web_common as common
from aiohttp import web
from aiohttp.typedefs import Handler

import telegent_async as tg
from telegent_async import webhooks


@web.middleware
async def sdk_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except (tg.TelegentError, ValueError) as error:  # ValueError: the SDK's argument checks
        status, body = common.error_answer(error)  # a TelegentError's http_status; a bad ID's 400
        return web.json_response(body, status=status)


def create_app(settings: common.Settings | None = None) -> web.Application:
    settings = settings or common.Settings.from_env()
    client, watcher = settings.watcher()

    async def lifetime(_app: web.Application) -> AsyncIterator[None]:
        async with client, watcher:  # opened at startup, closed (polls stopped) at cleanup
            yield

    async def get_order(request: web.Request) -> web.Response:
        order = await client.get_order(
            request.match_info["order_id"],
            timeout=common.REQUEST_TIMEOUT,
            max_retries=common.REQUEST_RETRIES,
        )
        return web.json_response(common.order_json(order))

    async def watch(request: web.Request) -> web.Response:
        port_in = request.query.get("port_in", "").lower() in ("1", "true", "yes")
        added = await common.add_watch(watcher, request.match_info["order_id"], port_in)
        return web.json_response(added, status=202)

    async def watched(request: web.Request) -> web.Response:
        try:
            wait = max(0.0, float(request.query.get("wait", "0")))
        except ValueError:
            raise web.HTTPBadRequest(text="wait must be a number of seconds") from None
        state = await common.watch_state(watcher, request.match_info["order_id"], wait)
        if state is None:
            return web.json_response({"detail": "not watched"}, status=404)
        return web.json_response(common.watch_json(state))

    async def healthz(_request: web.Request) -> web.Response:
        status, body = common.health_answer(client.stats, watcher.health)
        return web.json_response(body, status=status)

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
