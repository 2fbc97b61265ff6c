"""Decoding orders: every documented shape becomes an `Order`, anything else a decode error."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any

import pytest
from helpers import decode_order, fast_client
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import telegent_async as tg
from telegent_async.testing import FakeTelegent

UTC = timezone.utc
ORDER_ID = "JNUOID-10a3g876-0000-4000-8000-000000000001"


def order_body(**fields: Any) -> bytes:
    """A minimal valid order as JSON, with `fields` added or overriding."""
    body: dict[str, Any] = {"OrderId": ORDER_ID, "OrderStatus": "Complete"}
    body.update(fields)
    return json.dumps(body).encode()


def decode(**fields: Any) -> tg.Order:
    return decode_order(200, order_body(**fields))


# -- fields --------------------------------------------------------------------------------------


def test_full_provision_order_decodes() -> None:
    body = {
        "OrderId": ORDER_ID,
        "OrderDate": "2025-12-08T00:12:08.89",
        "OrderStatus": "Complete",
        "OrderStatusMessage": None,
        "OrderType": "Provision",
        "PhoneNumbersOrdered": [{"Number": "+12815703894"}],
        "PhoneNumberAssigned": "+12815703894",
        "PhoneNumberId": "NID-1",
        "QRCode": "LPA:1$x$y",
        "ICCID": "8901",
        "ErrorMessage": None,
        "SubscriberId": "TSUID-1",
        "SomethingNew": {"nested": [1, 2]},
    }
    order = decode_order(200, json.dumps(body).encode())
    assert order.order_id == ORDER_ID
    assert order.status is tg.OrderStatus.COMPLETE and order.raw_status == "Complete"
    assert order.order_type == "Provision"
    assert order.order_date == datetime(2025, 12, 8, 0, 12, 8, 890000, UTC)
    assert order.phone_numbers == ("+12815703894",)
    assert order.carrier_error is None and order.status_message is None
    assert order.raw == body  # unknown fields kept as received
    assert order.is_settled and order.succeeded and not order.failed and not order.needs_action
    assert order.raise_for_status() is order


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-12-08T00:12:08.89", datetime(2025, 12, 8, 0, 12, 8, 890000, UTC)),
        ("2025-10-29T12:36:19.338438+00:00", datetime(2025, 10, 29, 12, 36, 19, 338438, UTC)),
        ("2025-05-14T18:00:00.0000000+00:00", datetime(2025, 5, 14, 18, 0, tzinfo=UTC)),
        ("10/01/2024", datetime(2024, 10, 1, tzinfo=UTC)),
        ("not a date", None),
        ("2025-02-30", None),
        (12345, None),
        (None, None),
        ({"when": "today"}, None),
    ],
)
def test_order_date_formats(text: object, expected: datetime | None) -> None:
    order = decode(OrderDate=text)
    assert order.order_date == expected
    assert order.raw["OrderDate"] == text


def test_numbers_as_int_or_str_and_assigned_fallback() -> None:
    ordered = [{"Number": 12815703894, "NumberId": "JNID-1", "Status": "Active"}, {"Number": "+1"}]
    assert decode(PhoneNumbersOrdered=ordered).phone_numbers == ("12815703894", "+1")
    assert decode(PhoneNumbersOrdered=["+15550001"]).phone_numbers == ("+15550001",)
    odd = [None, {"Number": None}, {"Number": True}, {"Nope": 1}, 3.5, [1]]
    assert decode(PhoneNumbersOrdered=odd).phone_numbers == ("3.5",)
    assert decode(PhoneNumbersOrdered=[], PhoneNumberAssigned="+1999").phone_numbers == ("+1999",)
    assert decode(PhoneNumbersOrdered="garbage").phone_numbers == ()


def test_order_id_as_number_is_kept_as_text() -> None:
    assert decode_order(200, b'{"OrderId": 17, "OrderStatus": "Pending"}').order_id == "17"


# -- statuses ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ("Pending", tg.OrderStatus.PENDING),
        ("Submitted", tg.OrderStatus.SUBMITTED),
        ("Pending Carrier Approval", tg.OrderStatus.PENDING_CARRIER_APPROVAL),
        ("PendingCarrierApproval", tg.OrderStatus.PENDING_CARRIER_APPROVAL),
        ("pending_carrier_approval", tg.OrderStatus.PENDING_CARRIER_APPROVAL),
        ("Scheduled", tg.OrderStatus.SCHEDULED),
        ("InProgress", tg.OrderStatus.IN_PROGRESS),
        ("In Progress", tg.OrderStatus.IN_PROGRESS),
        ("Complete", tg.OrderStatus.COMPLETE),
        ("Completed", tg.OrderStatus.COMPLETE),
        ("COMPLETE", tg.OrderStatus.COMPLETE),
        (" complete ", tg.OrderStatus.COMPLETE),
        ("Error", tg.OrderStatus.ERROR),
        ("Failed", tg.OrderStatus.ERROR),
        ("Rejected", tg.OrderStatus.REJECTED),
        ("ResolutionRequired", tg.OrderStatus.RESOLUTION_REQUIRED),
        ("Resolution Required", tg.OrderStatus.RESOLUTION_REQUIRED),
        ("Cancelled", tg.OrderStatus.CANCELLED),
        ("Canceled", tg.OrderStatus.CANCELLED),
    ],
)
def test_status_spellings(raw: str, status: tg.OrderStatus) -> None:
    order = decode(OrderStatus=raw)
    assert order.status is status
    assert order.raw_status == raw


@pytest.mark.parametrize(
    ("status", "settled", "succeeded", "failed", "needs_action"),
    [
        ("Pending", False, False, False, False),
        ("InProgress", False, False, False, False),
        ("Complete", True, True, False, False),
        ("Error", True, False, True, False),
        ("Rejected", True, False, True, True),
        ("ResolutionRequired", True, False, True, True),
        ("Cancelled", True, False, True, False),
    ],
)
def test_status_properties(
    status: str, settled: bool, succeeded: bool, failed: bool, needs_action: bool
) -> None:
    order = decode(OrderStatus=status)
    assert (order.is_settled, order.succeeded, order.failed, order.needs_action) == (
        settled,
        succeeded,
        failed,
        needs_action,
    )
    assert order.status.is_settled is settled


def test_unknown_status_is_pending_kept_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    raw = f"AwaitingPaperwork-{uuid.uuid4().hex[:8]}"  # new to this process: logged
    with caplog.at_level(logging.WARNING, logger="telegent_async"):
        first = decode(OrderStatus=raw)
        second = decode(OrderStatus=raw)
    assert first.status is second.status is tg.OrderStatus.UNKNOWN
    assert first.raw_status == raw
    assert not first.is_settled and not first.failed
    assert [r.getMessage() for r in caplog.records].count(
        f"unknown order status {raw!r}: treated as pending"
    ) == 1
    with pytest.raises(tg.OrderFailed):
        first.raise_for_status()


@pytest.mark.parametrize("status", ["Error", "Failed", "Rejected", "Cancelled", "Pending"])
def test_raise_for_status_raises_unless_complete(status: str) -> None:
    order = decode(OrderStatus=status, OrderStatusMessage="8B-SSN_TAX_ID_REQ_OR_INCORRECT")
    with pytest.raises(tg.OrderFailed) as caught:
        order.raise_for_status()
    assert caught.value.order is order
    assert caught.value.carrier_error is order.carrier_error
    assert ORDER_ID in str(caught.value) and status in str(caught.value)


def test_carrier_error_only_for_failed_statuses() -> None:
    message = "8A-ACCOUNT_NUM_REQ_OR_INCORRECT"
    assert decode(OrderStatus="Pending", OrderStatusMessage=message).carrier_error is None
    failed = decode(OrderStatus="Failed", OrderStatusMessage=None, ErrorMessage=message)
    assert failed.status_message == message
    assert failed.carrier_error is not None and failed.carrier_error.code == "8A"


# -- the seed examples, over sockets --------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "message", "code", "category", "needs_action"),
    [
        (
            "Error",
            "8A-ACCOUNT_NUM_REQ_OR_INCORRECT",
            "8A",
            tg.CarrierCategory.CUSTOMER_VALIDATION,
            False,
        ),
        (
            "Rejected",
            "6P-REMOVE NUMBER LOCK ON VERIZON ACCOUNT",
            "6P",
            tg.CarrierCategory.NUMBER_OR_REQUEST,
            True,
        ),
    ],
)
async def test_seed_examples_decode_to_carrier_errors(
    fake: FakeTelegent,
    client: tg.TelegentClient,
    status: str,
    message: str,
    code: str,
    category: tg.CarrierCategory,
    needs_action: bool,
) -> None:
    fake.add_order("JNOID-seed", status, message=message, order_type="PortIn")
    order = await client.get_order("JNOID-seed")
    assert order.failed and order.needs_action is needs_action
    assert order.status_message == message
    error = order.carrier_error
    assert error is not None
    assert (error.code, error.category, error.raw) == (code, category, message)
    assert error.reason == message.split("-", 1)[1]
    assert error.fixable_by_update
    with pytest.raises(tg.OrderFailed) as caught:
        order.raise_for_status()
    assert caught.value.carrier_error == error
    assert error.remedy in str(caught.value)


# -- properties: nothing but an Order or a ResponseDecodeError ------------------------------------

_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
_json = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_field_values = _json | st.sampled_from(["Complete", "Rejected", "8A-X", "10/01/2024", ""])
#: Order-shaped objects, so that the decoder's field handling is exercised and not only its
#: "not an object" branch.
_order_like = st.fixed_dictionaries(
    {key: st.text(max_size=20) | _field_values for key in ("OrderId", "OrderStatus")},
    optional={
        key: _field_values
        for key in (
            "OrderDate",
            "OrderStatusMessage",
            "ErrorMessage",
            "OrderType",
            "PhoneNumbersOrdered",
            "PhoneNumberAssigned",
        )
    },
)
json_bodies = _json | _order_like


def _check_decode(status_code: int, body: bytes, result: tg.Order | Exception) -> None:
    """The property: an Order (whose raw is the object sent), or a bounded decode error."""
    event(type(result).__name__)
    if isinstance(result, tg.Order):
        assert json.dumps(result.raw) == json.dumps(json.loads(body))  # NaN-safe equality
        assert isinstance(result.order_id, str) and result.order_id
        assert isinstance(result.status, tg.OrderStatus)
        return
    assert isinstance(result, tg.ResponseDecodeError), repr(result)
    assert result.status_code == status_code
    assert len(result.body) <= 500
    assert body.decode("utf-8", "replace").startswith(result.body)


def test_decode_error_on_deep_nesting_and_huge_numbers() -> None:
    for body in (
        b"[" * 100_000,
        b'{"OrderId": ' + b"9" * 5000 + b"}",
        "\udcff".encode("utf-8", "surrogatepass"),
    ):
        with pytest.raises(tg.ResponseDecodeError):
            decode_order(200, body)


@pytest.fixture
async def unretried(fake: FakeTelegent) -> AsyncIterator[tg.TelegentClient]:
    """A decode error is raised at once: the retries of a garbled answer are tested elsewhere."""
    async with fast_client(fake, max_retries=0) as client:
        yield client


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(value=json_bodies)
async def test_any_json_body_served_decodes_or_raises_decode_error(
    fake: FakeTelegent, unretried: tg.TelegentClient, value: object
) -> None:
    body = json.dumps(value)
    fake.set_response("JNUOID-prop", body=body)
    try:
        result: tg.Order | Exception = await unretried.get_order("JNUOID-prop")
    except Exception as exc:
        result = exc
    _check_decode(200, body.encode(), result)
