"""What the two web examples share: their settings and the JSON they answer with.

`fastapi_app.py` and `aiohttp_app.py` serve the same API, each in its framework's idiom:

    GET  /orders/{id}               one lookup, bounded for a request handler
    POST /orders/{id}/watch         watch it durably (?port_in=1 for the port-in cadence)
    GET  /orders/{id}/watch?wait=N  the watch's state, after waiting up to N s for it to settle
    POST /hooks/telegent/{secret}   Telegent's Order_Update webhook: wakes the named orders
    GET  /healthz                   the client's live counters

Set TELEGENT_ACCOUNT_KEY, TELEGENT_ACCOUNT_SECRET and TELEGENT_WEBHOOK_SECRET (make one with
`python -c 'import secrets; print(secrets.token_urlsafe(32))'`), and give Telegent the webhook
URL `https://<host>/hooks/telegent/<TELEGENT_WEBHOOK_SECRET>`. TELEGENT_WATCH_STORE names the
SQLite file of the watches (`watches.db`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import telegent_async as tg

#: A lookup inside a web request: 8 s in all (retries included) and 2 retries, not the
#: client's 5 retries of 30 s attempts, which suit a batch job but not someone waiting.
REQUEST_TIMEOUT = 8.0
REQUEST_RETRIES = 2
#: The longest `?wait=` honoured: under the usual 30 s proxy and load-balancer timeouts.
MAX_WAIT = 25.0


@dataclasses.dataclass(frozen=True)
class Settings:
    """How an example app runs. `from_env()` reads what a deployment sets."""

    webhook_secret: str
    store: str = "watches.db"
    policy: tg.PollPolicy = tg.PollPolicy.PROVISION
    #: Passed to `TelegentClient` (credentials and base URL default to TELEGENT_* variables).
    client_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            webhook_secret=os.environ["TELEGENT_WEBHOOK_SECRET"],
            store=os.environ.get("TELEGENT_WATCH_STORE", "watches.db"),
        )

    def watcher(self) -> tuple[tg.TelegentClient, tg.OrderWatcher]:
        """The app's one client and one watcher, made now and entered for the app's lifetime
        (the client opens its session inside the running loop, when entered)."""
        client = tg.TelegentClient(**self.client_options)
        return client, tg.OrderWatcher(client, self.store, policy=self.policy)


def error_answer(error: Exception) -> tuple[int, dict[str, str]]:
    """The status and body for an error: `http_status` for the SDK's, 400 for a bad argument
    (the SDK checks its arguments before sending anything)."""
    status = error.http_status if isinstance(error, tg.TelegentError) else 400
    return status, {"error": type(error).__name__, "detail": str(error)}


def order_json(order: tg.Order) -> dict[str, Any]:
    carrier = order.carrier_error
    step = order.next_step
    return {
        "order_id": order.order_id,
        "status": order.status.name,
        "raw_status": order.raw_status,
        "settled": order.is_settled,
        "succeeded": order.succeeded,
        "message": order.status_message,
        "carrier_error": None
        if carrier is None
        else {"code": carrier.code, "description": carrier.description, "remedy": carrier.remedy},
        "next_step": None if step is None else step.value,
    }


def watch_json(state: tg.WatchState) -> dict[str, Any]:
    return {
        "order_id": state.order_id,
        "tag": state.tag,
        "status": None if state.status is None else state.status.name,
        "settled": state.settled,
        "attempts": state.attempts,
        "next_poll": None if state.next_poll is None else state.next_poll.isoformat(),
        "order": None if state.last_order is None else order_json(state.last_order),
        "error": None if state.error is None else error_answer(state.error)[1],
    }


def _moment(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat()


def health_answer(stats: tg.ClientStats, health: tg.WatcherHealth) -> tuple[int, dict[str, Any]]:
    """`/healthz`: 200 while the watcher runs with its store, budget and credentials fine, else
    503 and what is wrong (a load balancer or an orchestrator reads the status)."""
    ok = health.running and health.store_ok and health.budget_ok and health.credentials_ok
    body = {
        "ok": ok,
        "watcher": {
            "running": health.running,
            "last_poll_at": _moment(health.last_poll_at),
            "store_ok": health.store_ok,
            "budget_ok": health.budget_ok,
            "credentials_ok": health.credentials_ok,
            "paused_until": _moment(health.paused_until),
            "fault": health.fault,
        },
        "requests": stats.requests,
        "in_flight": stats.in_flight,
        "responses": dict(stats.responses),
        "retries": dict(stats.retries),
        "token_requests": stats.token_requests,
        "rate_limit_pauses": stats.rate_limit_pauses,
        "budget_rate": stats.budget_rate,
        "budget_paused_for": stats.budget_paused_for,
    }
    return (200 if ok else 503), body


async def add_watch(watcher: tg.OrderWatcher, order_id: str, port_in: bool) -> dict[str, Any]:
    policy = tg.PollPolicy.PORT_IN if port_in else None
    added = await watcher.add(order_id, policy=policy)
    return {"order_id": order_id, "added": added}


async def watch_state(watcher: tg.OrderWatcher, order_id: str, wait: float) -> tg.WatchState | None:
    """The watch's state, once it settles or after `wait` seconds (capped at MAX_WAIT)."""
    state = await watcher.get(order_id)
    if state is None or state.settled or wait <= 0:
        return state
    # A failed outcome (404, the watch's deadline) is raised by wait() and is in the state too.
    with contextlib.suppress(tg.TelegentError):
        await watcher.wait(order_id, timeout=min(wait, MAX_WAIT))
    return await watcher.get(order_id)
