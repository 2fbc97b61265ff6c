"""The calls of `TelegentClient` that create an order, and the port-in eligibility check.

What to send and what an answer means is `_create`'s (pure); this is only the I/O, on the
client's one send path. A create is never doubled: it is sent again only when the request
cannot have been acted on (the connection was never made, 429, 503); after a timeout, a reset
once sent, 500, 502, 504 or an unreadable 2xx it raises `SubmitOutcomeUnknownError`, whose
message says how to find out whether the order exists (`_retry.decide_attempt`).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from datetime import date
from typing import Any

from . import _create, _portin
from ._create import PortInEligibility, SubmittedOrder
from ._portin import BillingAddress
from ._request import Request
from ._transport import Transport

__all__ = ["CreateCalls"]

logger = logging.getLogger("telegent_async")


class CreateCalls:
    """`check_port_in_eligibility` and the four creates: calls of `TelegentClient`."""

    _transport: Transport

    async def check_port_in_eligibility(
        self,
        phone_number: str,
        *,
        target_classification: str,
        timeout: float | None = None,
        max_retries: int | None = None,
    ) -> PortInEligibility:
        """Whether a number can be ported in (`POST /numbers/portin/eligibility`); no order.

        Retried like a lookup. After a `submit_port_in` that ended in
        `SubmitOutcomeUnknownError`, it also tells whether that port-in was created: its
        `message` then says a port-in is already active for the number.

        Args:
            phone_number: The number, E.164 (`"+12815551234"`).
            target_classification: `"mvno"` or `"iot"` (Telegent's `TargetClassification`).
            timeout: Bounds this call as in `get_order`.
            max_retries: As in `get_order`.
        """
        body = _create.eligibility_body(phone_number, target_classification)
        decode = functools.partial(_create.eligibility_from_json, number=body["PhoneNumber"])
        deadline, retries = self._transport.call_bounds(timeout, max_retries)
        url = self._transport.endpoint(_create.ELIGIBILITY_PATH)
        request = Request("POST", url, str(url), json=body)
        return await self._transport.send(request, decode, deadline=deadline, max_retries=retries)

    async def submit_port_in(
        self,
        phone_number: str,
        *,
        current_carrier_name: str,
        current_account_number: str,
        current_account_password: str,
        current_billing_address: BillingAddress,
        iccid: str | None = None,
        target_portin_classification: str | None = None,
        subscriber_name: str | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
    ) -> SubmittedOrder:
        """Submit a port-in (`POST /numbers/portin`); wait on the answer's `order_id`.

        Never doubled (see `SubmitOutcomeUnknownError`). The account number and password
        never appear in logs, reprs, errors or `raw`.

        Args:
            phone_number: The number to port in, E.164.
            current_carrier_name: The losing carrier's name.
            current_account_number: The account number at the losing carrier.
            current_account_password: The account PIN or password at the losing carrier.
            current_billing_address: The billing address at the losing carrier (street1,
                city, state and zip at least).
            iccid: The SIM's ICCID (pSIM port-ins only).
            target_portin_classification: `"mvno"` or `"iot"`.
            subscriber_name: The name on the losing account.
            timeout: Bounds this call as in `get_order`.
            max_retries: Retries of a failure that cannot have created the order.
        """
        body = _create.submit_body(
            phone_number,
            current_carrier_name=current_carrier_name,
            current_account_number=current_account_number,
            current_account_password=current_account_password,
            current_billing_address=current_billing_address,
            iccid=iccid,
            target_portin_classification=target_portin_classification,
            subscriber_name=subscriber_name,
        )
        return await self._create("submit_port_in", _create.PORTIN_PATH, body, timeout, max_retries)

    async def provision_number(
        self,
        *,
        number_type: str,
        message_type: str,
        voice_enabled: bool,
        product_type: str,
        message_enabled: bool | None = None,
        data_enabled: bool | None = None,
        message_route_id: str | None = None,
        voice_route_id: str | None = None,
        area_code: str | None = None,
        zip_code: str | None = None,
        iccid: str | None = None,
        assigned_subscriber_id: str | None = None,
        account_id: str | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
    ) -> SubmittedOrder:
        """Provision a new number (`POST /numbers/provision`); never doubled.

        The answer's `status` is `"Complete"` when the number was assigned at once (its
        `raw` then holds `PhoneNumberAssigned`), else `"Pending"`: wait on `order_id`.

        Args:
            number_type: `"mvno"` or `"iot"`.
            message_type: `"a2p"` or `"p2p"`.
            voice_enabled: Whether the number takes voice.
            product_type: `"Sms-Only"`, `"Data-Only"`, `"Sms+Data"` or `"Sms+Data+Voice"`.
            message_enabled: Telegent's `MessageEnabled`.
            data_enabled: Telegent's `DataEnabled`.
            message_route_id: A messaging route (`MRID-...`).
            voice_route_id: A voice route (`CRID-...`).
            area_code: Three digits.
            zip_code: Five digits.
            iccid: The SIM's ICCID.
            assigned_subscriber_id: The subscriber (`TSUID-...`).
            account_id: The account (`AID-...`).
            timeout: Bounds this call as in `get_order`.
            max_retries: Retries of a failure that cannot have created the order.
        """
        optional = {
            "MessageEnabled": message_enabled,
            "DataEnabled": data_enabled,
            "MessageRouteId": message_route_id,
            "VoiceRouteId": voice_route_id,
            "AreaCode": area_code,
            "ZipCode": zip_code,
            "ICCID": iccid,
            "AssignedSubscriberId": assigned_subscriber_id,
            "AccountId": account_id,
        }
        body = _create.provision_body(
            number_type=number_type,
            message_type=message_type,
            voice_enabled=voice_enabled,
            product_type=product_type,
            optional=optional,
        )
        path = _create.PROVISION_PATH
        return await self._create("provision_number", path, body, timeout, max_retries)

    async def port_out(
        self,
        phone_number: str,
        *,
        pin: str,
        timeout: float | None = None,
        max_retries: int | None = None,
    ) -> SubmittedOrder:
        """Port a number out (`POST /numbers/portout`); never doubled. The PIN is never shown.

        Args:
            phone_number: The number, E.164.
            pin: The port-out PIN (Telegent's `PortOutPIN`).
            timeout: Bounds this call as in `get_order`.
            max_retries: Retries of a failure that cannot have created the order.
        """
        body = _create.port_out_body(phone_number, pin)
        return await self._create("port_out", _create.PORTOUT_PATH, body, timeout, max_retries)

    async def change_number_status(
        self,
        change: str,
        phone_numbers: Iterable[str],
        *,
        effective_date: date | str | None = None,
        area_code: str | None = None,
        zip_code: str | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
    ) -> SubmittedOrder:
        """Change numbers' status (`POST /numbers/status`); never doubled.

        During Telegent's maintenance a swap may be refused ("currently unavailable"): that
        refusal is raised as is; try again later.

        Args:
            change: `"activate"`, `"cancel"`, `"swap"`, `"replace"`, `"park"` or `"swap-sim"`.
            phone_numbers: The numbers, E.164 (a list, not one string).
            effective_date: A `datetime.date` or `"MM/DD/YYYY"`.
            area_code: Three digits.
            zip_code: Five digits.
            timeout: Bounds this call as in `get_order`.
            max_retries: Retries of a failure that cannot have created the order.
        """
        body = _create.status_change_body(
            change, phone_numbers, effective_date=effective_date, area_code=area_code,
            zip_code=zip_code,
        )  # fmt: skip
        path = _create.STATUS_PATH
        return await self._create("change_number_status", path, body, timeout, max_retries)

    async def _create(
        self,
        call: str,
        path: str,
        body: dict[str, Any],
        timeout: float | None,
        max_retries: int | None,
    ) -> SubmittedOrder:
        """POST a create with a token of its endpoint's scope, never doubled."""
        deadline, retries = self._transport.call_bounds(timeout, max_retries)
        url = self._transport.endpoint(path)
        logger.debug("%s: sending %s", call, ", ".join(body))  # field names, never values
        request = Request(
            "POST",
            url,
            str(url),
            json=body,
            creates=_create.creates(call, body),
            secrets=_portin.secrets_of(body),
        )
        submitted = await self._transport.send(
            request, _create.submitted_from_json, deadline=deadline, max_retries=retries
        )
        logger.info("%s: order %r created (%s)", call, submitted.order_id, submitted.status)
        return submitted
