"""The webhook subscription calls of `TelegentClient` (Telegent v1.1.0).

What to send and what an answer means is `_webhook`'s (pure); this is only the I/O, each call
on the client's one send path (`Transport.send`) with a token of its own endpoint's scope,
budgeted, retried and bounded like a lookup, its answer read (an error body inside a 200, the
`Successful`/`Data` wrapper) like every other. The delivery's credentials ride in the request
body only: they are masked in every answer before it is read (`secrets`), scrubbed from `raw`
by field name, never quoted from an answer in an error (`private`), and never logged.

A create is retried like the rest: sent twice after an ambiguous failure, it may leave two
subscriptions of the same URL (deliveries are hints, so a second one only wakes an order
twice); `list_webhooks` shows them and `delete_webhook` removes the extra one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from . import _webhook
from ._errors import NotFoundError
from ._request import Creates, Request
from ._transport import Transport
from ._webhook import Webhook, WebhookAuth

__all__ = ["WebhookCalls"]

logger = logging.getLogger("telegent_async")

_T = TypeVar("_T")


class WebhookCalls:
    """`create_webhook`, `update_webhook`, `delete_webhook`, `get_webhook`, `list_webhooks`:
    calls of `TelegentClient` on its transport."""

    _transport: Transport

    async def create_webhook(
        self,
        url: str,
        *,
        account_id: str,
        events: Iterable[str] = ("Order_Update",),
        method: str = "POST",
        data_format: str = "json",
        auth: WebhookAuth | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
    ) -> Webhook:
        """Subscribe `url` to Telegent's events (`POST /webhook/create`).

        Every value is checked before the request: an HTTPS URL of at most 255 characters,
        `method` POST or PUT, `data_format` json or xml, event names (sent as one
        comma-separated `SubscribedEvents`). Receive the deliveries with
        `webhooks.asgi_app(watcher, bearer_token=...)` (or `basic_auth=`) as subscribed here.

        Args:
            url: The https:// URL Telegent calls.
            account_id: The account's `AccountId` (`AID-...`).
            events: The events to subscribe, e.g. `("Order_Update",)`.
            method: `"POST"` or `"PUT"`: how Telegent calls the URL.
            data_format: `"json"` or `"xml"`: the deliveries' body format.
            auth: `WebhookAuth.bearer(token)`, `WebhookAuth.basic(user, password)`, or None
                (AuthenticationType None: use a secret path segment instead).
            timeout: Bounds this call as in `get_order`.
            max_retries: As in `get_order`.
        """
        body = _webhook.create_body(url, account_id, events, method, data_format, auth)
        logger.debug(
            "subscribing %s to %s",
            _webhook.masked_url(body["WebhookUrl"]),
            body["SubscribedEvents"],
        )
        creates = Creates("create_webhook", _webhook.HOW_TO_CHECK_CREATE)
        return await self._subscription(
            _webhook.CREATE_PATH, body, auth, (timeout, max_retries), creates
        )

    async def update_webhook(
        self,
        webhook_id: str,
        *,
        url: str | None = None,
        events: Iterable[str] | None = None,
        method: str | None = None,
        data_format: str | None = None,
        auth: WebhookAuth | None = None,
        account_id: str | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
    ) -> Webhook:
        """Change a subscription (`POST /webhook/update`): only what is given is sent.

        Args:
            webhook_id: The subscription's `WebhookId`.
            url: A new https:// URL.
            events: New events (they replace the old ones).
            method: `"POST"` or `"PUT"`.
            data_format: `"json"` or `"xml"`.
            auth: New credentials (`WebhookAuth.bearer`/`.basic`); None: unchanged.
            account_id: The `AccountId`, if it must be sent.
            timeout: Bounds this call as in `get_order`.
            max_retries: As in `get_order`.
        """
        changes = {
            "url": url,
            "events": events,
            "method": method,
            "data_format": data_format,
            "auth": auth,
            "account_id": account_id,
        }
        body = _webhook.update_body(webhook_id, changes)
        changed = ", ".join(name for name in body if name != "WebhookId")
        logger.debug("updating webhook %s: %s", body["WebhookId"], changed)
        return await self._subscription(_webhook.UPDATE_PATH, body, auth, (timeout, max_retries))

    async def delete_webhook(
        self,
        webhook_id: str,
        *,
        missing_ok: bool = False,
        timeout: float | None = None,
        max_retries: int | None = None,
    ) -> None:
        """Delete a subscription (`POST /webhook/delete`): Telegent stops calling its URL.

        Retried like a lookup. An unknown `WebhookId` raises `NotFoundError`, unless
        `missing_ok` (then a retry whose first try went through unanswered ends quietly too).

        Args:
            webhook_id: The subscription's `WebhookId`.
            missing_ok: Treat "no such webhook" (404) as done.
            timeout: Bounds this call as in `get_order`.
            max_retries: As in `get_order`.
        """
        body = {"WebhookId": _webhook.webhook_id(webhook_id)}
        try:
            await self._webhook_call(
                "POST", _webhook.DELETE_PATH, _ignore, body=body, bounds=(timeout, max_retries)
            )
        except NotFoundError:
            if not missing_ok:
                raise
            logger.info("webhook %s was not there to delete", body["WebhookId"])

    async def get_webhook(
        self, webhook_id: str, *, timeout: float | None = None, max_retries: int | None = None
    ) -> Webhook:
        """One subscription (`GET /webhook?WebhookId=...`).

        Args:
            webhook_id: The subscription's `WebhookId`.
            timeout: Bounds this call as in `get_order`.
            max_retries: As in `get_order`.
        """
        query = {"WebhookId": _webhook.webhook_id(webhook_id)}
        return await self._webhook_call(
            "GET",
            _webhook.GET_PATH,
            lambda data: _webhook.decode_webhook(data, query),
            params=query,
            bounds=(timeout, max_retries),
        )

    async def list_webhooks(
        self,
        *,
        account_id: str | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
    ) -> list[Webhook]:
        """The account's subscriptions (`GET /account/webhooks`).

        Args:
            account_id: Sent as `AccountId` when given (the token's account otherwise).
            timeout: Bounds this call as in `get_order`.
            max_retries: As in `get_order`.
        """
        query = None if account_id is None else {"AccountId": _webhook.account_id(account_id)}
        return await self._webhook_call(
            "GET",
            _webhook.LIST_PATH,
            _webhook.decode_webhooks,
            params=query,
            bounds=(timeout, max_retries),
        )

    async def _subscription(
        self,
        path: str,
        body: Mapping[str, str],
        auth: WebhookAuth | None,
        bounds: tuple[float | None, int | None],
        creates: Creates | None = None,
    ) -> Webhook:
        """A create or an update: POST `body`, `auth`'s credentials kept out of sight; the
        subscription as the answer (or, where it says less, the body) has it. A create is
        never sent twice (`creates`): two subscriptions would deliver every event twice."""
        return await self._webhook_call(
            "POST",
            path,
            lambda data: _webhook.decode_webhook(data, body),
            body=body,
            secrets=_webhook.secrets_of(body, auth),
            bounds=bounds,
            creates=creates,
        )

    async def _webhook_call(
        self,
        method: str,
        path: str,
        decode: Callable[[Any], _T],
        *,
        params: dict[str, str] | None = None,
        body: Mapping[str, str] | None = None,
        secrets: tuple[str, ...] = (),
        bounds: tuple[float | None, int | None],
        creates: Creates | None = None,
    ) -> _T:
        """One webhook call: a token of its endpoint's scope; `decode` reads the JSON value."""
        transport = self._transport
        deadline, retries = transport.call_bounds(*bounds)
        url = transport.endpoint(path)
        request = Request(
            method,
            url,
            str(url),
            params=params,
            json=body,
            secrets=secrets,
            private=True,
            creates=creates,
        )
        return await transport.send(request, decode, deadline=deadline, max_retries=retries)


def _ignore(_data: object) -> None:
    """A delete's answer: its shape is not published, and nothing in it is needed."""
