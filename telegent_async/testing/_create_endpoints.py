"""The endpoints that create orders (and the port-in eligibility check), as Telegent documents
them: each answers the documented shape, and what it creates becomes an order the fake serves
(`GET /numbers/order`), on a lifecycle a test can script (`FakeTelegent.script_create`)."""

from __future__ import annotations

import collections
import json
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from aiohttp import web

from .. import _create
from .._models import parse_status
from ._lifecycle import Order, Step, checked_steps, iso
from ._log import RecordedBody
from ._portin_endpoints import API_PREFIX
from ._responses import JSON, Fixed, error_response

ELIGIBILITY_PATH: Final = API_PREFIX + _create.ELIGIBILITY_PATH
PORTIN_SUBMIT_PATH: Final = API_PREFIX + _create.PORTIN_PATH
PROVISION_PATH: Final = API_PREFIX + _create.PROVISION_PATH
PORTOUT_PATH: Final = API_PREFIX + _create.PORTOUT_PATH
STATUS_PATH: Final = API_PREFIX + _create.STATUS_PATH
#: The endpoints whose requests create an order (the eligibility check does not).
CREATE_PATHS: Final = frozenset({PORTIN_SUBMIT_PATH, PROVISION_PATH, PORTOUT_PATH, STATUS_PATH})
ALL_PATHS: Final = CREATE_PATHS | {ELIGIBILITY_PATH}

#: The fields each endpoint requires (REFERENCE.md): a request without one is answered 400.
REQUIRED: Final[Mapping[str, tuple[str, ...]]] = {
    ELIGIBILITY_PATH: ("PhoneNumber", "TargetClassification"),
    PORTIN_SUBMIT_PATH: (
        "PortInNumber",
        "CurrentCarrierName",
        "CurrentAccountNumber",
        "CurrentAccountPassword",
        "CurrentBillingAddress",
    ),
    PROVISION_PATH: ("NumberType", "MessageType", "VoiceEnabled", "ProductType"),
    PORTOUT_PATH: ("PortOutNumber", "PortOutPIN"),
    STATUS_PATH: ("StatusChange", "PhoneNumbers"),
}

Script = tuple[tuple[Step, ...], str | None]
"""A scripted lifecycle for the next order an endpoint creates: its Steps and message."""


class CreatedOrders:
    """What the create endpoints made, and the lifecycles scripted for the next ones."""

    def __init__(self) -> None:
        self.scripts: dict[str, collections.deque[Script]] = {}
        self.made: list[tuple[str, str]] = []  # (path, order ID), in creation order
        self.port_ins: dict[str, str] = {}  # number -> the latest port-in's order ID
        self.fixed: dict[str, Fixed] = {}  # path -> exact bytes to answer, nothing made

    def script(self, path: str, steps: Sequence[Step], message: str | None) -> None:
        """Queue the lifecycle of the next order the create endpoint `path` makes."""
        if path not in CREATE_PATHS:
            raise ValueError(f"{path!r} is not an endpoint that creates orders")
        self.scripts.setdefault(path, collections.deque()).append((checked_steps(steps), message))

    def fix(self, path: str, fixed: Fixed) -> None:
        """Answer every request to the create (or eligibility) endpoint `path` with `fixed`."""
        if path not in ALL_PATHS:
            raise ValueError(f"{path!r} is not a create or eligibility endpoint")
        self.fixed[path] = fixed

    def answer(
        self,
        path: str,
        body: RecordedBody | None,
        orders: dict[str, Order],
        port_in_delay: float,
        now: float,
    ) -> web.Response:
        """Check the request's fields, create the order (not for eligibility) and answer."""
        fixed = self.fixed.get(path)
        if fixed is not None:
            return fixed.response()
        if body is None:
            return error_response(400, "The request body must be a JSON object.")
        missing = [name for name in REQUIRED[path] if body.get(name) in (None, "", [])]
        if missing:
            return error_response(400, f"The {missing[0]} field is required.")
        if path == ELIGIBILITY_PATH:
            return _json(self._eligibility(str(body["PhoneNumber"]), orders, now))
        prefix = "JNOID-" if path == PORTIN_SUBMIT_PATH else "JNUOID-"
        order_id = prefix + str(uuid.uuid4())
        scripted = self.scripts.get(path)
        steps, message = scripted.popleft() if scripted else _DEFAULTS[path](port_in_delay)
        numbers = _numbers(path, body)
        order = Order(order_id, steps, message, _ORDER_TYPES[path], numbers, None, now, time.time())
        orders[order_id] = order
        self.made.append((path, order_id))
        if path == PORTIN_SUBMIT_PATH:
            self.port_ins[numbers[0]] = order_id
        return _json(_ANSWERS[path](order, body, now))

    def _eligibility(self, number: str, orders: dict[str, Order], now: float) -> dict[str, Any]:
        active = self.port_ins.get(number)
        order = orders.get(active) if active is not None else None
        if order is not None and not parse_status(order.status_at(now)).is_settled:
            eligible, message = False, f"A port-in is already active for this number: {active}"
        else:
            eligible, message = True, "The number is eligible for port-in."
        return {
            "PhoneNumber": number,
            "Eligible": eligible,
            "CurrentCarrier": "Verizon Wireless",
            "NumberType": "Wireless",
            "Message": message,
        }


def _json(data: Mapping[str, Any]) -> web.Response:
    return web.Response(body=json.dumps(data).encode(), content_type=JSON)


def _numbers(path: str, body: RecordedBody) -> tuple[str, ...]:
    if path == PORTIN_SUBMIT_PATH:
        return (str(body["PortInNumber"]),)
    if path == PORTOUT_PATH:
        return (str(body["PortOutNumber"]),)
    if path == STATUS_PATH:
        return tuple(str(number) for number in body["PhoneNumbers"])
    area = str(body.get("AreaCode") or "281")
    return (f"+1{area}555{int(time.time() * 1000) % 10000:04d}",)


def _pending(delay: float) -> Script:
    return (Step("Pending"), Step("Complete", delay)), None


def _complete(_delay: float) -> Script:
    return (Step("Complete"),), None


_DEFAULTS: Final[Mapping[str, Callable[[float], Script]]] = {
    PORTIN_SUBMIT_PATH: lambda delay: ((Step("Submitted"), Step("Complete", delay)), None),
    PROVISION_PATH: _complete,
    PORTOUT_PATH: _pending,
    STATUS_PATH: _complete,
}
_ORDER_TYPES: Final = {
    PORTIN_SUBMIT_PATH: "PortIn",
    PROVISION_PATH: "Provision",
    PORTOUT_PATH: "PortOut",
    STATUS_PATH: "StatusChange",
}


def _pending_answer(order: Order, number: str) -> dict[str, Any]:
    """What a port (in or out) answers: the order, pending, for its one number."""
    return {
        "OrderId": order.order_id,
        "OrderDate": iso(order.added_wall),
        "Status": "Pending",
        "PhoneNumber": number,
    }


def _port_in_answer(order: Order, body: RecordedBody, now: float) -> dict[str, Any]:
    return {**_pending_answer(order, body["PortInNumber"]), "ICCID": body.get("ICCID")}


def _provision_answer(order: Order, body: RecordedBody, now: float) -> dict[str, Any]:
    return {
        "OrderId": order.order_id,
        "OrderDate": iso(order.added_wall),
        "OrderStatus": order.status_at(now),
        "PhoneNumberAssigned": order.phone_numbers[0],
        "PhoneNumberId": "NID-" + order.order_id[-12:],
        "QRCode": None,
        "ZipCode": body.get("ZipCode"),
        "ICCID": body.get("ICCID"),
        "ErrorMessage": None,
        "SubscriberId": body.get("AssignedSubscriberId"),
    }


def _port_out_answer(order: Order, body: RecordedBody, now: float) -> dict[str, Any]:
    return _pending_answer(order, body["PortOutNumber"])


def _status_answer(order: Order, body: RecordedBody, now: float) -> dict[str, Any]:
    return {
        "OrderId": order.order_id,
        "OrderDate": iso(order.added_wall).replace("+00:00", "Z"),
        "OrderStatus": order.status_at(now),
        "ChangeType": body["StatusChange"],
        "EffectiveDate": body.get("EffectiveDate"),
        "Numbers": [{"Number": number, "QrCode": None} for number in order.phone_numbers],
    }


_ANSWERS: Final[Mapping[str, Callable[[Order, RecordedBody, float], dict[str, Any]]]] = {
    PORTIN_SUBMIT_PATH: _port_in_answer,
    PROVISION_PATH: _provision_answer,
    PORTOUT_PATH: _port_out_answer,
    STATUS_PATH: _status_answer,
}
