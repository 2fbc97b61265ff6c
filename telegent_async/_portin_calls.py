"""The port-in lifecycle calls of `TelegentClient`: correct a rejected port-in, or cancel it.

What to send and what an answer means is `_portin`'s (pure); this is only the I/O, on the
client's one send path (`Transport.send`), so an update or a cancel is retried, budgeted,
bounded and its answer read (an error body inside a 200 included) like a lookup's.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Coroutine
from datetime import date
from typing import Any, TypeVar

from . import _portin, _validate
from ._errors import BadRequestError
from ._models import Order, OrderStatus
from ._portin import BillingAddress, PortInCancel, PortInUpdate
from ._request import Request
from ._transport import Transport

__all__ = ["PortInCalls"]

_Answer = TypeVar("_Answer", PortInUpdate, PortInCancel)

logger = logging.getLogger("telegent_async")


class PortInCalls:
    """`update_port_in` and `cancel_port_in`: calls of `TelegentClient` on its transport."""

    _transport: Transport
    _lookup: Callable[[str, float | None, int | None], Coroutine[Any, Any, Order]]

    async def update_port_in(
        self,
        order_id: str,
        *,
        current_account_number: str | None = None,
        current_account_password: str | None = None,
        current_carrier_name: str | None = None,
        subscriber_name: str | None = None,
        port_in_date: date | str | None = None,
        current_billing_address: BillingAddress | None = None,
        iccid: str | None = None,
        target_portin_classification: str | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
    ) -> PortInUpdate:
        """Correct a port-in in place (`POST /numbers/portin/update`), e.g. after a rejection.

        Sends the order ID and only the fields given, under Telegent's JSON names; at least one
        is required. `port_in_date` is a `datetime.date` or `"YYYY-MM-DD"`, today or later (a
        `datetime` is refused: its time would be dropped). Which fields fix a
        rejection: `order.carrier_error.update_fields`. The order goes back to `Submitted`:
        wait for it again.

        Retried like a lookup (408, 429, 5xx, connection errors and attempt timeouts, with the
        same backoff): an update resends the same data, so repeating it is safe. The account
        number and password never appear in logs, `repr` or exception text, even when an error
        answer quotes them back.

        Args:
            order_id: The port-in's ID.
            current_account_number: The account number at the losing carrier.
            current_account_password: The account PIN or password at the losing carrier.
            current_carrier_name: The losing carrier's name.
            subscriber_name: The name on the losing carrier's account.
            port_in_date: The requested port date: a `datetime.date` or `"YYYY-MM-DD"`.
            current_billing_address: A `BillingAddress` with the lines being corrected.
            iccid: The SIM's ICCID.
            target_portin_classification: Telegent's `TargetPortinClassification`.
            timeout: Bounds this call as in `get_order`.
            max_retries: As in `get_order`.
        """
        deadline, retries = self._transport.call_bounds(timeout, max_retries)
        body = _portin.update_body(
            _validate.order_id(order_id),
            {
                "current_account_number": current_account_number,
                "current_account_password": current_account_password,
                "current_carrier_name": current_carrier_name,
                "subscriber_name": subscriber_name,
                "port_in_date": port_in_date,
                "current_billing_address": current_billing_address,
                "iccid": iccid,
                "target_portin_classification": target_portin_classification,
            },
            today=date.today(),
        )
        fields = [name for name in body if name != "OrderId"]
        logger.debug("updating port-in %r: %s", body["OrderId"], ", ".join(fields))
        decode = functools.partial(_portin.decode_answer, PortInUpdate, order_id=body["OrderId"])
        return await self._post_port_in(_portin.UPDATE_PATH, body, decode, deadline, retries)

    async def cancel_port_in(
        self, order_id: str, *, timeout: float | None = None, max_retries: int | None = None
    ) -> PortInCancel:
        """Cancel a port-in (`POST /numbers/portin/cancel`). Final: it cannot be reopened.

        Retried like a lookup: a cancel is final, so repeating it is safe. Idempotent: when
        Telegent refuses with 400 because the order is already cancelled (say a retry after
        the first try went through unanswered), a lookup confirms `Cancelled` and that counts
        as success. Any other 400 (a completed order) is raised as `BadRequestError`.

        Args:
            order_id: The port-in's ID.
            timeout: Bounds this call (that lookup included) as in `get_order`.
            max_retries: As in `get_order`.
        """
        order_id = _validate.order_id(order_id)
        body = _portin.cancel_body(order_id)
        deadline, retries = self._transport.call_bounds(timeout, max_retries)
        decode = functools.partial(_portin.decode_answer, PortInCancel, order_id=order_id)
        try:
            return await self._post_port_in(_portin.CANCEL_PATH, body, decode, deadline, retries)
        except BadRequestError as refused:
            order = await self._lookup(order_id, deadline, retries)
            if order.status is not OrderStatus.CANCELLED:
                raise
            logger.info("port-in %r was already cancelled (%s)", order_id, refused.message)
            return PortInCancel(order_id, order.raw_status, refused.message, order.raw)

    async def _post_port_in(
        self,
        path: str,
        body: dict[str, Any],
        decode: Callable[[object], _Answer],
        deadline: float | None,
        retries: int | None,
    ) -> _Answer:
        """POST to a port-in endpoint with a token of its own scope; secrets masked in answers."""
        url = self._transport.endpoint(path)
        request = Request("POST", url, str(url), json=body, secrets=_portin.secrets_of(body))
        return await self._transport.send(request, decode, deadline=deadline, max_retries=retries)
