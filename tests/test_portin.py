"""update_port_in / cancel_port_in over real sockets against FakeTelegent, and the pure parts."""

from __future__ import annotations

import json
import logging
from datetime import date, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from helpers import FAST_POLL, chain, fast_client

import telegent_async as tg
from telegent_async import _portin
from telegent_async.testing import PORTIN_CANCEL_PATH, PORTIN_UPDATE_PATH, FakeTelegent, Step

ORDER = "JNOID-5f2c1a9e-portin"
ACCOUNT = "ACCT-7731-55"
PIN = "pin-9081"
REJECTED_8A = "8A-ACCOUNT_NUM_REQ_OR_INCORRECT"
#: A port date Telegent would accept: not in the past.
SOON = date.today() + timedelta(days=3)


def rejected(fake: FakeTelegent, message: str = REJECTED_8A, order_id: str = ORDER) -> None:
    fake.add_order(order_id, "Rejected", message=message, order_type="PortIn")


# -- the request: field mapping and checks -------------------------------------------------------


async def test_every_field_goes_out_under_telegents_json_name(fake: FakeTelegent) -> None:
    rejected(fake)
    async with fast_client(fake) as client:
        update = await client.update_port_in(
            ORDER,
            current_account_number=ACCOUNT,
            current_account_password=PIN,
            current_carrier_name="Verizon",
            subscriber_name="Ada Lovelace",
            port_in_date=SOON,
            current_billing_address=tg.BillingAddress(
                "1 Main St", "Apt 2", "Springfield", "IL", "62701"
            ),
            iccid="8901260123456789012",
            target_portin_classification="Mobile",
        )
    assert (update.order_id, update.status) == (ORDER, "Updated")
    assert update.message == "Port-in order updated successfully" == update.raw["Message"]
    [sent] = fake.port_in_requests(ORDER)
    assert sent.path == PORTIN_UPDATE_PATH and sent.method == "POST" and sent.status == 200
    assert dict(sent.body or {}) == {
        "OrderId": ORDER,
        "CurrentCarrierName": "Verizon",
        "CurrentAccountNumber": ACCOUNT,
        "CurrentAccountPassword": PIN,
        "PortInDate": SOON.isoformat(),
        "TargetPortinClassification": "Mobile",
        "SubscriberName": "Ada Lovelace",
        "ICCID": "8901260123456789012",
        "CurrentBillingAddress": {
            "Street1": "1 Main St",
            "Street2": "Apt 2",
            "City": "Springfield",
            "State": "IL",
            "Zip": "62701",
        },
    }


async def test_only_the_fields_given_are_sent(fake: FakeTelegent) -> None:
    rejected(fake, "8D-ZIP_CODE_REQ_OR_INCORRECT")
    async with fast_client(fake) as client:
        await client.update_port_in(
            ORDER,
            port_in_date=SOON.isoformat(),
            current_billing_address=tg.BillingAddress(zip="10001"),
        )
    [sent] = fake.port_in_requests(ORDER)
    assert dict(sent.body or {}) == {
        "OrderId": ORDER,
        "PortInDate": SOON.isoformat(),
        "CurrentBillingAddress": {"Zip": "10001"},
    }


def test_a_datetime_is_refused_rather_than_its_time_dropped() -> None:
    with pytest.raises(TypeError, match=r"not a datetime.*'2026-02-01'"):
        _portin.update_body(
            ORDER, {"port_in_date": datetime(2026, 2, 1, 23, 59)}, today=date(2026, 1, 1)
        )


def test_a_past_port_date_is_refused_and_today_is_not() -> None:
    today = date(2026, 3, 10)
    with pytest.raises(ValueError, match=r"port_in_date 2026-03-09 is in the past"):
        _portin.update_body(ORDER, {"port_in_date": "2026-03-09"}, today=today)
    body = _portin.update_body(ORDER, {"port_in_date": date(2026, 3, 10)}, today=today)
    assert body["PortInDate"] == "2026-03-10"


@pytest.mark.parametrize(
    ("call", "error"),
    [
        ({}, ValueError),  # nothing to correct
        ({"port_in_date": None, "iccid": None}, ValueError),
        ({"port_in_date": "2026-02-30"}, ValueError),
        ({"port_in_date": "2026-2-3"}, ValueError),
        ({"port_in_date": "03/12/2026"}, ValueError),
        ({"port_in_date": 20260203}, TypeError),
        ({"port_in_date": "2020-01-31"}, ValueError),  # in the past
        ({"port_in_date": datetime(2099, 1, 31, 9, 30)}, TypeError),  # a time to drop
        ({"current_account_number": ""}, ValueError),
        ({"current_account_number": "   "}, ValueError),
        ({"current_account_number": 7731}, TypeError),
        ({"current_account_password": "12\n34"}, ValueError),
        ({"subscriber_name": "x" * 201}, ValueError),
        ({"iccid": "89012601234"}, ValueError),
        ({"iccid": "8901260123456789O12"}, ValueError),
        ({"current_billing_address": {"Zip": "10001"}}, TypeError),
        ({"target_portin_classification": ["Mobile"]}, TypeError),
    ],
)
async def test_bad_arguments_fail_before_any_request(
    fake: FakeTelegent, call: dict[str, Any], error: type[Exception]
) -> None:
    rejected(fake)
    async with fast_client(fake) as client:
        with pytest.raises(error):
            await client.update_port_in(ORDER, **call)
    assert fake.requests == []  # not even a token request


@pytest.mark.parametrize("order_id", ["", " ", "JNOID-1\n", "x" * 500, None])
async def test_bad_order_ids_fail_before_any_request(fake: FakeTelegent, order_id: Any) -> None:
    async with fast_client(fake) as client:
        with pytest.raises((ValueError, TypeError)):
            await client.update_port_in(order_id, subscriber_name="Ada")
        with pytest.raises((ValueError, TypeError)):
            await client.cancel_port_in(order_id)
    assert fake.requests == []


def test_billing_address_checks_its_lines() -> None:
    with pytest.raises(ValueError, match="at least one"):
        tg.BillingAddress()
    with pytest.raises(TypeError):
        tg.BillingAddress(zip=10001)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        tg.BillingAddress(street1="1 Main\r\nSt")


# -- tokens -------------------------------------------------------------------------------------


async def test_each_endpoint_gets_a_token_of_its_own_scope(fake: FakeTelegent) -> None:
    rejected(fake)
    async with fast_client(fake) as client:
        await client.get_order(ORDER)
        await client.update_port_in(ORDER, current_account_number=ACCOUNT)
        await client.update_port_in(ORDER, current_account_number=ACCOUNT)
        await client.cancel_port_in(ORDER)
    scopes = [r.token_scope for r in fake.token_requests]
    assert scopes == ["/v1.0/numbers/order", PORTIN_UPDATE_PATH, PORTIN_CANCEL_PATH]
    tokens = {r.path: r.token for r in fake.requests if r.token is not None}
    assert len(set(tokens.values())) == 3


async def test_the_fake_refuses_a_token_of_another_scope(fake: FakeTelegent) -> None:
    rejected(fake)
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{fake.base_url}/oauth2/tokens",
            json={
                "AccountKey": fake.account_key,
                "AccountSecret": fake.account_secret,
                "ApiEndpoint": f"{fake.base_url}/numbers/order",
            },
        ) as answer,
    ):
        order_token = (await answer.json())["token"]
    async with fast_client(fake, token=order_token) as client:
        assert (await client.get_order(ORDER)).status is tg.OrderStatus.REJECTED
        with pytest.raises(tg.AuthenticationError, match="not valid for this endpoint"):
            await client.update_port_in(ORDER, current_account_number=ACCOUNT)
        with pytest.raises(tg.AuthenticationError):
            await client.cancel_port_in(ORDER)
        assert (await client.get_order(ORDER)).status is tg.OrderStatus.REJECTED


async def test_a_revoked_token_is_renewed_once_for_a_post(fake: FakeTelegent) -> None:
    rejected(fake)
    async with fast_client(fake) as client:
        await client.update_port_in(ORDER, subscriber_name="Ada")
        fake.revoke_tokens()
        await client.update_port_in(ORDER, subscriber_name="Ada")
    assert [r.status for r in fake.port_in_requests(ORDER)] == [200, 401, 200]
    assert len(fake.token_requests) == 2


# -- update semantics ----------------------------------------------------------------------------


async def test_an_update_with_the_fixing_field_completes_the_port_in(fake: FakeTelegent) -> None:
    rejected(fake)
    async with fast_client(fake) as client:
        update = await client.update_port_in(ORDER, current_account_number=ACCOUNT)
        assert update.status == "Updated"
        assert (await client.get_order(ORDER)).status is tg.OrderStatus.SUBMITTED
        order = await client.wait_for_order(ORDER, timeout=5.0, policy=FAST_POLL)
    assert order.succeeded and order.carrier_error is None


async def test_an_update_without_the_fixing_field_is_rejected_again(fake: FakeTelegent) -> None:
    rejected(fake, "Port rejected: 8A-ACCOUNT_NUM_REQ_OR_INCORRECT; 8C-PASS_PIN_REQ_OR_INCORRECT")
    async with fast_client(fake) as client:
        await client.update_port_in(ORDER, current_account_number=ACCOUNT)  # the PIN is missing
        order = await client.wait_for_order(ORDER, timeout=5.0, policy=FAST_POLL)
        assert order.needs_action
        assert [e.code for e in order.carrier_errors] == ["8A", "8C"]
        fields = {f for error in order.carrier_errors for f in error.update_fields}
        assert fields == {"current_account_number", "current_account_password"}
        await client.update_port_in(
            ORDER, current_account_number=ACCOUNT, current_account_password=PIN
        )
        assert (await client.wait_for_order(ORDER, timeout=5.0, policy=FAST_POLL)).succeeded


async def test_a_scripted_continuation_wins(fake: FakeTelegent) -> None:
    rejected(fake)
    fake.script_update(ORDER, [Step("Submitted"), Step("Rejected", 0.02)], message="8C-PIN")
    async with fast_client(fake) as client:
        await client.update_port_in(ORDER, current_account_number=ACCOUNT)
        order = await client.wait_for_order(ORDER, timeout=5.0, policy=FAST_POLL)
    assert order.carrier_error is not None and order.carrier_error.code == "8C"


async def test_an_update_of_a_pending_order_changes_nothing(fake: FakeTelegent) -> None:
    fake.add_order(ORDER, [Step("Submitted"), Step("Complete", 0.05)])
    async with fast_client(fake) as client:
        await client.update_port_in(ORDER, subscriber_name="Ada")
        assert (await client.wait_for_order(ORDER, timeout=5.0, policy=FAST_POLL)).succeeded


@pytest.mark.parametrize("status", ["Complete", "Cancelled"])
async def test_settled_orders_refuse_updates_with_400(fake: FakeTelegent, status: str) -> None:
    fake.add_order(ORDER, status)
    async with fast_client(fake) as client:
        with pytest.raises(tg.BadRequestError, match="cannot be updated"):
            await client.update_port_in(ORDER, subscriber_name="Ada")
    assert len(fake.port_in_requests(ORDER)) == 1  # a 400 is never retried


async def test_unknown_order_is_404(fake: FakeTelegent) -> None:
    async with fast_client(fake) as client:
        with pytest.raises(tg.NotFoundError, match="GENS-0041"):
            await client.update_port_in("JNOID-nope", subscriber_name="Ada")


async def test_a_transient_failure_resends_the_same_update(fake: FakeTelegent) -> None:
    rejected(fake)
    fake.inject("503")  # the update is applied, then its answer is lost
    async with fast_client(fake) as client:
        update = await client.update_port_in(ORDER, current_account_number=ACCOUNT)
        assert update.status == "Updated"
        assert (await client.wait_for_order(ORDER, timeout=5.0, policy=FAST_POLL)).succeeded
    first, second = fake.port_in_requests(ORDER)
    assert (first.status, second.status) == (503, 200)
    assert first.body == second.body


async def test_an_answer_that_is_not_an_object_is_a_decode_error(fake: FakeTelegent) -> None:
    rejected(fake)
    fake.set_response(ORDER, body=b"[1, 2]")
    async with fast_client(fake) as client:
        with pytest.raises(tg.ResponseDecodeError):
            await client.update_port_in(ORDER, subscriber_name="Ada")


# -- cancel -------------------------------------------------------------------------------------


async def test_cancel_is_final_and_the_order_reads_cancelled(fake: FakeTelegent) -> None:
    fake.add_order(ORDER, [Step("Submitted"), Step("Complete", 60.0)])
    async with fast_client(fake) as client:
        cancel = await client.cancel_port_in(ORDER)
        assert (cancel.order_id, cancel.status) == (ORDER, "Cancelled")
        assert cancel.raw["Message"] == "Port-in order cancelled successfully"
        assert (await client.get_order(ORDER)).status is tg.OrderStatus.CANCELLED
        with pytest.raises(tg.BadRequestError):
            await client.update_port_in(ORDER, subscriber_name="Ada")


async def test_cancelling_twice_succeeds_confirmed_by_a_lookup(fake: FakeTelegent) -> None:
    rejected(fake, "6P-REMOVE NUMBER LOCK ON VERIZON ACCOUNT")
    async with fast_client(fake) as client:
        await client.cancel_port_in(ORDER)
        again = await client.cancel_port_in(ORDER)
    assert again.status == "Cancelled" and "already cancelled" in (again.message or "")
    assert [r.status for r in fake.port_in_requests(ORDER)] == [200, 400]
    assert len(fake.order_requests(ORDER)) == 1  # the confirming lookup


async def test_a_retried_cancel_whose_first_try_went_through_succeeds(fake: FakeTelegent) -> None:
    rejected(fake, "6P-REMOVE NUMBER LOCK ON VERIZON ACCOUNT")
    fake.inject("reset")  # the cancel is made, then the connection drops before the answer
    async with fast_client(fake) as client:
        cancel = await client.cancel_port_in(ORDER)
    assert cancel.status == "Cancelled"
    assert [r.status for r in fake.port_in_requests(ORDER)] == [0, 400]
    assert [r.status for r in fake.order_requests(ORDER)] == [200]


async def test_cancelling_a_completed_order_is_a_400(fake: FakeTelegent) -> None:
    fake.add_order(ORDER, "Complete")
    async with fast_client(fake) as client:
        with pytest.raises(tg.BadRequestError, match="cannot be cancelled"):
            await client.cancel_port_in(ORDER)
        assert (await client.get_order(ORDER)).succeeded


# -- secrets ------------------------------------------------------------------------------------


def quoting_answer(status: int) -> bytes:
    """An error answer that quotes the secrets back, raw and JSON-escaped."""
    message = f"Invalid CurrentAccountNumber {ACCOUNT} or CurrentAccountPassword '{PIN}'"
    return json.dumps({"StatusCode": status, "Message": message, "Echo": {"pin": PIN}}).encode()


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        assert ACCOUNT not in text and PIN not in text, text


@pytest.mark.parametrize("status", [400, 503])
async def test_secrets_are_masked_when_an_error_answer_quotes_them(
    fake: FakeTelegent, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    rejected(fake)
    fake.set_response(ORDER, status=status, body=quoting_answer(status))
    caplog.set_level(logging.DEBUG)
    async with fast_client(fake, max_retries=2) as client:
        with pytest.raises(tg.APIStatusError) as caught:
            await client.update_port_in(
                ORDER, current_account_number=ACCOUNT, current_account_password=PIN
            )
    error = caught.value
    assert error.status_code == status and "***" in error.message
    for link in chain(error):
        assert_no_secret(str(link), repr(link), repr(getattr(link, "body", "")))
    assert_no_secret(caplog.text, *(repr(r.args) for r in caplog.records))
    assert any("retry" in r.getMessage() for r in caplog.records) == (status == 503)


async def test_secrets_are_masked_in_a_200_that_quotes_them(fake: FakeTelegent) -> None:
    rejected(fake)
    fake.set_response(ORDER, body=json.dumps({"OrderId": ORDER, "Echo": PIN}).encode())
    async with fast_client(fake) as client:
        update = await client.update_port_in(ORDER, current_account_password=PIN)
    assert update.raw["Echo"] == "***"
    assert_no_secret(repr(update), str(update.raw))


async def test_secrets_stay_out_of_logs_reprs_and_the_fake_log(
    fake: FakeTelegent, caplog: pytest.LogCaptureFixture
) -> None:
    rejected(fake)
    caplog.set_level(logging.DEBUG)
    fake.inject("503")
    async with fast_client(fake) as client:
        await client.update_port_in(
            ORDER, current_account_number=ACCOUNT, current_account_password=PIN
        )
        client_repr = repr(client)
    assert "CurrentAccountNumber" in caplog.text  # the fields are named, never their values
    assert_no_secret(caplog.text, client_repr, repr(fake.requests), str(fake.port_in_requests()))
    sent = fake.port_in_requests(ORDER)[-1].body
    assert sent is not None and sent["CurrentAccountPassword"] == PIN  # kept for assertions
    assert_no_secret(repr(sent), str(sent), f"{sent}")


@pytest.mark.parametrize(
    "call",
    [
        {"current_account_password": "bad\x00" + PIN},
        {"current_account_number": ACCOUNT + "\n"},
        {"current_account_number": ACCOUNT * 30},
    ],
)
async def test_a_refused_secret_is_not_quoted(fake: FakeTelegent, call: dict[str, Any]) -> None:
    async with fast_client(fake) as client:
        with pytest.raises(ValueError) as caught:
            await client.update_port_in(ORDER, **call)
    assert_no_secret(*(str(link) for link in chain(caught.value)))


def test_redact_masks_every_written_form() -> None:
    secret = 'pa"ss\\wörd'
    body = json.dumps({"a": secret, "b": f"x{secret}y"}).encode()
    body += json.dumps({"c": secret}, ensure_ascii=False).encode() + secret.encode()
    masked = _portin.redact(body, (secret,))
    assert masked.count(b"***") == 4
    assert b"ss" not in masked


def test_redact_leaves_ids_and_phone_numbers_whole() -> None:
    # A 4-digit PIN inside an order ID or a number is not the PIN: masking it there would
    # hand out an order ID that does not exist. So short a secret is masked as a whole word.
    body = b'{"OrderId": "JNUOID-deb0ee59-1234-4282-9add-0e674e526774", "PhoneNumber": '
    body += b'"+12815551234", "Message": "PIN 1234 refused; PIN-1234; x1234y", "PIN": "1234"}'
    masked = json.loads(_portin.redact(body, ("1234",)))
    assert masked["OrderId"] == "JNUOID-deb0ee59-1234-4282-9add-0e674e526774"
    assert masked["PhoneNumber"] == "+12815551234"
    assert masked["Message"] == "PIN *** refused; PIN-***; x1234y"
    assert masked["PIN"] == "***"
