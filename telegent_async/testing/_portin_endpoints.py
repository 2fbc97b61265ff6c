"""The port-in update and cancel endpoints: what a change does to a scripted order."""

from __future__ import annotations

import collections
from typing import Final

from aiohttp import web

from .._carrier import decode_carrier_messages
from .._models import OrderStatus, parse_status
from .._portin import CANCEL_PATH, JSON_NAMES, UPDATE_PATH
from ._lifecycle import Order, Step
from ._log import RecordedBody
from ._responses import Fixed, error_response, json_answer

API_PREFIX: Final = "/v1.0"
PORTIN_UPDATE_PATH: Final = API_PREFIX + UPDATE_PATH
PORTIN_CANCEL_PATH: Final = API_PREFIX + CANCEL_PATH
PORTIN_PATHS: Final = frozenset({PORTIN_UPDATE_PATH, PORTIN_CANCEL_PATH})

_FIXABLE: Final = frozenset({OrderStatus.REJECTED, OrderStatus.RESOLUTION_REQUIRED})

Continuation = tuple[tuple[Step, ...], str | None]
"""What an update of a rejected order leads to: its new Steps and their message."""


def port_in_answer(
    path: str,
    body: RecordedBody | None,
    orders: dict[str, Order],
    fixed: dict[str, Fixed],
    scripts: dict[str, collections.deque[Continuation]],
    port_in_delay: float,
    now: float,
) -> web.Response:
    """Make the change an update or cancel asks for (restarting the order) and answer it."""
    if body is None:
        return error_response(400, "The request body must be a JSON object.")
    order_id = body.get("OrderId")
    if not isinstance(order_id, str) or not order_id:
        return error_response(400, "The OrderId field is required.")
    answer = fixed.get(order_id)
    if answer is not None:
        return answer.response()
    order = orders.get(order_id)
    if order is None:
        return error_response(404, "GENS-0041-No Port-In request found")
    raw_status = order.status_at(now)
    status = parse_status(raw_status)
    if path == PORTIN_CANCEL_PATH:
        if status is OrderStatus.CANCELLED:
            return error_response(400, f"Order {order_id} is already cancelled.")
        if status.is_settled and status not in _FIXABLE:
            return error_response(400, f"Order {order_id} is {raw_status} and cannot be cancelled.")
        order.restart((Step("Cancelled"),), None, now)
        return json_answer(order_id, "Cancelled", "Port-in order cancelled successfully")
    if status.is_settled and status not in _FIXABLE:
        return error_response(400, f"Order {order_id} is {raw_status} and cannot be updated.")
    if len(body) == 1:
        return error_response(400, "At least one field to update is required.")
    if status in _FIXABLE:
        scripted = scripts.get(order_id)
        if scripted:
            steps, message = scripted.popleft()
        else:
            steps, message = _default_continuation(order, body, raw_status, port_in_delay)
        order.restart(steps, message, now)
    return json_answer(order_id, "Updated", "Port-in order updated successfully")


def _default_continuation(
    order: Order, body: RecordedBody, raw_status: str, port_in_delay: float
) -> Continuation:
    """Complete if the update sent every field its carrier codes ask for, else rejected again."""
    needed = {
        JSON_NAMES[field]
        for error in decode_carrier_messages(order.message)
        for field in error.update_fields
    }
    if needed and needed <= body.keys():
        return (Step("Submitted"), Step("Complete", port_in_delay)), None
    return (Step("Submitted"), Step(raw_status, port_in_delay)), order.message
