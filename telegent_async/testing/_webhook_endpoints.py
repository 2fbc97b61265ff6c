"""The webhook subscription endpoints (Telegent v1.1.0): create, update, delete, get, list.

Telegent does not publish their 200 bodies, so the fake answers the whole subscription as it
stores it, credentials included (the worst case for a client that must keep them out of
`raw`, reprs and logs). Refusals are `{StatusCode, Message}` as everywhere: 400 for a missing
or invalid field, 404 for an unknown `WebhookId`.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from typing import Any, Final

from aiohttp import web
from yarl import URL

from .._webhook import CREATE_PATH, DELETE_PATH, GET_PATH, LIST_PATH, UPDATE_PATH
from ._log import RecordedBody
from ._portin_endpoints import API_PREFIX
from ._responses import JSON, Fixed, error_response

WEBHOOK_CREATE_PATH: Final = API_PREFIX + CREATE_PATH
WEBHOOK_UPDATE_PATH: Final = API_PREFIX + UPDATE_PATH
WEBHOOK_DELETE_PATH: Final = API_PREFIX + DELETE_PATH
WEBHOOK_GET_PATH: Final = API_PREFIX + GET_PATH
WEBHOOK_LIST_PATH: Final = API_PREFIX + LIST_PATH
#: Each webhook path and the one method it takes.
WEBHOOK_METHODS: Final[Mapping[str, str]] = {
    WEBHOOK_CREATE_PATH: "POST",
    WEBHOOK_UPDATE_PATH: "POST",
    WEBHOOK_DELETE_PATH: "POST",
    WEBHOOK_GET_PATH: "GET",
    WEBHOOK_LIST_PATH: "GET",
}

_CHOICES: Final = {
    "Method": ("POST", "PUT"),
    "DataFormat": ("json", "xml"),
    "AuthenticationType": ("None", "Basic", "Token", "Bearer"),
}
_CREDENTIALS: Final = {
    "None": (),
    "Basic": ("AuthenticationUsername", "AuthenticationPassword"),
    "Token": ("AuthenticationToken",),
    "Bearer": ("AuthenticationToken",),
}
_FIELDS: Final = (
    "AccountId",
    "WebhookUrl",
    "Method",
    "DataFormat",
    "AuthenticationType",
    "AuthenticationUsername",
    "AuthenticationPassword",
    "AuthenticationToken",
    "SubscribedEvents",
)


def _answer(data: object) -> web.Response:
    return web.Response(body=json.dumps(data).encode(), content_type=JSON)


def _invalid(fields: Mapping[str, Any]) -> str | None:
    """Why a subscription's fields are refused, or None."""
    for name in ("AccountId", "WebhookUrl", "SubscribedEvents", *_CHOICES):
        if not isinstance(fields.get(name), str) or not fields[name]:
            return f"The {name} field is required."
    url = fields["WebhookUrl"]
    if len(url) > 255 or URL(url).scheme != "https":
        return "The WebhookUrl must be an HTTPS URL of at most 255 characters."
    for name, allowed in _CHOICES.items():
        if fields[name] not in allowed:
            return f"The {name} must be one of: {', '.join(allowed)}."
    for name in _CREDENTIALS[fields["AuthenticationType"]]:
        if not isinstance(fields.get(name), str) or not fields[name]:
            return f"The {name} field is required for {fields['AuthenticationType']}."
    return None


class FakeWebhooks:
    """The subscriptions the fake stores, by `WebhookId`, and the answers of their endpoints."""

    def __init__(self) -> None:
        self.stored: dict[str, dict[str, Any]] = {}
        self.fixed: Fixed | None = None
        self._ids = itertools.count(1)

    def answer(
        self, path: str, query: Mapping[str, str], body: RecordedBody | None
    ) -> web.Response:
        """Make the change a create, update or delete asks for, or read; and answer it."""
        if self.fixed is not None:
            return self.fixed.response()
        if path == WEBHOOK_LIST_PATH:
            account = query.get("AccountId")
            hooks = [h for h in self.stored.values() if account in (None, h["AccountId"])]
            return _answer(hooks)
        if path == WEBHOOK_GET_PATH:
            missing = self._existing(query.get("WebhookId"))
            return missing if missing is not None else _answer(self.stored[query["WebhookId"]])
        if body is None:
            return error_response(400, "The request body must be a JSON object.")
        if path == WEBHOOK_CREATE_PATH:
            fields = {name: body[name] for name in _FIELDS if name in body}
            refused = _invalid(fields)
            if refused is not None:
                return error_response(400, refused)
            created = f"WID-{next(self._ids):08d}-fake"
            self.stored[created] = {"WebhookId": created, **fields, "Active": True}
            return _answer(self.stored[created])
        missing = self._existing(body.get("WebhookId"))
        if missing is not None:
            return missing
        webhook_id = str(body["WebhookId"])
        if path == WEBHOOK_DELETE_PATH:
            del self.stored[webhook_id]
            return _answer({"WebhookId": webhook_id, "Message": "Webhook deleted successfully"})
        changes = {name: body[name] for name in _FIELDS if name in body}
        if not changes:
            return error_response(400, "At least one field to update is required.")
        merged = {**self.stored[webhook_id], **changes}
        if changes.get("AuthenticationType") is not None:  # the old credentials go
            kept = _CREDENTIALS[str(changes["AuthenticationType"])]
            for name in ("AuthenticationUsername", "AuthenticationPassword", "AuthenticationToken"):
                if name not in kept:
                    merged.pop(name, None)
        refused = _invalid(merged)
        if refused is not None:
            return error_response(400, refused)
        self.stored[webhook_id] = merged
        return _answer(merged)

    def _existing(self, webhook_id: object) -> web.Response | None:
        """None when `webhook_id` names a stored subscription, else the refusal."""
        if not isinstance(webhook_id, str) or not webhook_id:
            return error_response(400, "The WebhookId field is required.")
        if webhook_id not in self.stored:
            return error_response(404, f"Webhook {webhook_id} not found.")
        return None
