"""The calls that create orders (and the eligibility check), through the fake over real sockets:
the request each sends, the answer each decodes, error bodies inside a 200, the documented
`Successful`/`Data` wrapper, 422, and the checks made before anything is sent."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

import pytest
from helpers import fast_client

import telegent_async as tg
from telegent_async.testing import (
    ELIGIBILITY_PATH,
    ORDER_PATH,
    PORTIN_CANCEL_PATH,
    PORTIN_SUBMIT_PATH,
    PORTIN_UPDATE_PATH,
    PORTOUT_PATH,
    PROVISION_PATH,
    STATUS_PATH,
    TOKEN_PATH,
    FakeTelegent,
    Step,
)

NUMBER = "+12815551234"
ACCOUNT = "ACCT-7731-secret"
PASSWORD = "pw-4242-secret"
PIN = "PIN-8080-secret"
ADDRESS = tg.BillingAddress(street1="1 Main St", city="Houston", state="TX", zip="77002")

Call = Callable[[tg.TelegentClient], Awaitable[Any]]


def submit(client: tg.TelegentClient, number: str = NUMBER) -> Awaitable[tg.SubmittedOrder]:
    return client.submit_port_in(
        number,
        current_carrier_name="Verizon",
        current_account_number=ACCOUNT,
        current_account_password=PASSWORD,
        current_billing_address=ADDRESS,
        target_portin_classification="MVNO",
        subscriber_name="Ada Lovelace",
    )


def provision(client: tg.TelegentClient) -> Awaitable[tg.SubmittedOrder]:
    return client.provision_number(
        number_type="mvno",
        message_type="a2p",
        voice_enabled=True,
        product_type="sms+data+voice",
        area_code="281",
        account_id="AID-1",
    )


def port_out(client: tg.TelegentClient) -> Awaitable[tg.SubmittedOrder]:
    return client.port_out(NUMBER, pin=PIN)


def change_status(client: tg.TelegentClient) -> Awaitable[tg.SubmittedOrder]:
    return client.change_number_status("activate", [NUMBER], effective_date=date(2026, 12, 31))


def eligibility(client: tg.TelegentClient) -> Awaitable[tg.PortInEligibility]:
    return client.check_port_in_eligibility(NUMBER, target_classification="mvno")


#: Each call, its endpoint, and the JSON body it must send (REFERENCE.md's field names).
CALLS: list[tuple[str, Call, str, dict[str, Any]]] = [
    (
        "check_port_in_eligibility",
        eligibility,
        ELIGIBILITY_PATH,
        {"PhoneNumber": NUMBER, "TargetClassification": "mvno"},
    ),
    (
        "submit_port_in",
        submit,
        PORTIN_SUBMIT_PATH,
        {
            "PortInNumber": NUMBER,
            "CurrentCarrierName": "Verizon",
            "CurrentAccountNumber": ACCOUNT,
            "CurrentAccountPassword": PASSWORD,
            "CurrentBillingAddress": {
                "Street1": "1 Main St",
                "City": "Houston",
                "State": "TX",
                "Zip": "77002",
            },
            "TargetPortinClassification": "mvno",
            "SubscriberName": "Ada Lovelace",
        },
    ),
    (
        "provision_number",
        provision,
        PROVISION_PATH,
        {
            "NumberType": "mvno",
            "MessageType": "a2p",
            "VoiceEnabled": True,
            "ProductType": "Sms+Data+Voice",
            "AreaCode": "281",
            "AccountId": "AID-1",
        },
    ),
    ("port_out", port_out, PORTOUT_PATH, {"PortOutNumber": NUMBER, "PortOutPIN": PIN}),
    (
        "change_number_status",
        change_status,
        STATUS_PATH,
        {"StatusChange": "activate", "PhoneNumbers": [NUMBER], "EffectiveDate": "12/31/2026"},
    ),
]
IDS = [name for name, *_ in CALLS]


@pytest.mark.parametrize(("name", "call", "path", "sent"), CALLS, ids=IDS)
async def test_each_call_sends_the_documented_fields_with_a_token_of_its_endpoint(
    fake: FakeTelegent, name: str, call: Call, path: str, sent: dict[str, Any]
) -> None:
    async with fast_client(fake) as client:
        answer = await call(client)
    [request] = [r for r in fake.requests if r.path == path]
    assert request.method == "POST" and dict(request.body or {}) == sent
    assert request.token_scope == path  # scoped to its own endpoint
    [token] = [r for r in fake.token_requests if r.token_scope == path]
    assert token.status == 200
    if name == "check_port_in_eligibility":
        raw: dict[str, Any] = {
            "PhoneNumber": NUMBER,
            "Eligible": True,
            "CurrentCarrier": "Verizon Wireless",
            "NumberType": "Wireless",
            "Message": "The number is eligible for port-in.",
        }
        assert answer == tg.PortInEligibility(
            NUMBER, True, "Verizon Wireless", "Wireless", raw["Message"], raw
        )
    else:
        assert isinstance(answer, tg.SubmittedOrder)
        assert fake.created(path) == [answer.order_id]
        assert answer.order_date is not None and answer.raw["OrderId"] == answer.order_id
        assert answer.status == ("Complete" if path in (PROVISION_PATH, STATUS_PATH) else "Pending")


@pytest.mark.parametrize(("name", "call", "path", "sent"), CALLS, ids=IDS)
async def test_the_documented_wrapper_is_unwrapped(
    fake: FakeTelegent, name: str, call: Call, path: str, sent: dict[str, Any]
) -> None:
    fake.inject("envelope", path=path)
    async with fast_client(fake) as client:
        answer = await call(client)
    assert "Successful" not in answer.raw and "Data" not in answer.raw
    assert [r.fault for r in fake.requests if r.path == path] == ["envelope"]
    if isinstance(answer, tg.SubmittedOrder):
        assert fake.created(path) == [answer.order_id]


@pytest.mark.parametrize(("name", "call", "path", "sent"), CALLS, ids=IDS)
@pytest.mark.parametrize(
    ("fault", "error"),
    [("embedded_error", tg.BadRequestError), ("422", tg.UnprocessableEntityError)],
)
async def test_an_error_inside_a_200_and_a_422_are_errors_and_create_nothing(
    fake: FakeTelegent,
    name: str,
    call: Call,
    path: str,
    sent: dict[str, Any],
    fault: Any,
    error: type[tg.BadRequestError],
) -> None:
    fake.inject(fault, path=path)
    async with fast_client(fake) as client:
        with pytest.raises(error) as caught:
            await call(client)
    assert type(caught.value) is error
    assert len([r for r in fake.requests if r.path == path]) == 1  # never retried
    assert fake.created() == []


async def test_a_port_in_update_answered_200_with_an_error_body_is_that_error(
    fake: FakeTelegent,
) -> None:
    fake.add_order("JNOID-u1", "Rejected", message="8A-ACCOUNT_NUM_REQ_OR_INCORRECT")
    fake.set_response("JNOID-u1", body='{"StatusCode": 400, "Message": "bad field"}')
    async with fast_client(fake) as client:
        with pytest.raises(tg.BadRequestError, match="bad field"):
            await client.update_port_in("JNOID-u1", current_account_number=ACCOUNT)
        with pytest.raises(tg.BadRequestError, match="bad field"):  # the lookup too
            await client.get_order("JNOID-u1")
    assert [r.path for r in fake.requests if r.path != "/v1.0/oauth2/tokens"] == [
        PORTIN_UPDATE_PATH,
        ORDER_PATH,
    ]


async def test_lookups_and_port_in_answers_are_unwrapped_too(fake: FakeTelegent) -> None:
    fake.add_order("JNOID-w1", "Rejected", message="8A-ACCOUNT_NUM_REQ_OR_INCORRECT")
    fake.inject("envelope", path=ORDER_PATH)
    fake.inject("envelope", path=PORTIN_UPDATE_PATH)
    async with fast_client(fake) as client:
        order = await client.get_order("JNOID-w1")
        update = await client.update_port_in("JNOID-w1", current_account_number=ACCOUNT)
    assert order.order_id == "JNOID-w1" and order.needs_action
    assert (update.order_id, update.status) == ("JNOID-w1", "Updated")


async def test_a_token_answer_in_the_wrapper_is_unwrapped(fake: FakeTelegent) -> None:
    fake.add_order("JNUOID-t1", "Complete")
    fake.fail_tokens("envelope")
    async with fast_client(fake) as client:
        assert (await client.get_order("JNUOID-t1")).succeeded
    assert [r.fault for r in fake.token_requests] == ["envelope"]


async def test_a_cancel_made_but_answered_with_an_error_body_is_confirmed_by_a_lookup(
    fake: FakeTelegent,
) -> None:
    # The fake cancels, then answers 200 {"StatusCode": 400, ...}: a 400 like any other, so
    # the cancel looks the order up, finds it Cancelled, and that is success.
    fake.add_order("JNOID-c1", "Rejected", message="6A-MDN_NOT_FOUND")
    fake.inject("embedded_error", path=PORTIN_CANCEL_PATH)
    async with fast_client(fake) as client:
        cancel = await client.cancel_port_in("JNOID-c1")
    assert (cancel.order_id, cancel.status) == ("JNOID-c1", "Cancelled")
    assert [r.path for r in fake.requests if r.path != TOKEN_PATH] == [
        PORTIN_CANCEL_PATH,
        ORDER_PATH,
    ]


async def test_a_submitted_port_in_is_an_order_to_wait_on(fake: FakeTelegent) -> None:
    fake.script_create(
        PORTIN_SUBMIT_PATH,
        [Step("Submitted"), Step("Rejected", 0.05)],
        message="8A-ACCOUNT_NUM_REQ_OR_INCORRECT",
    )
    async with fast_client(fake) as client:
        sub = await submit(client)
        assert not (await eligibility(client)).eligible  # a port-in is active for it
        rejected = await client.wait_for_order(sub.order_id, timeout=5.0)
        assert rejected.needs_action and rejected.carrier_error is not None
        assert rejected.phone_numbers == (NUMBER,)
        await client.update_port_in(sub.order_id, current_account_number=ACCOUNT)
        done = await client.wait_for_order(sub.order_id, timeout=5.0)
    assert done.succeeded
    assert sub.order_id.startswith("JNOID-")


async def test_a_provision_that_is_pending_is_waited_on(fake: FakeTelegent) -> None:
    fake.script_create(PROVISION_PATH, [Step("Pending"), Step("Complete", 0.05)])
    async with fast_client(fake) as client:
        sub = await provision(client)
        assert sub.status == "Pending"
        order = await client.wait_for_order(sub.order_id, timeout=5.0)
    assert order.succeeded and order.order_type == "Provision"


BAD_ARGUMENTS: list[tuple[str, Call, type[Exception], str]] = [
    (
        "number not E.164",
        lambda c: c.check_port_in_eligibility("2815551234", target_classification="mvno"),
        ValueError,
        "E.164",
    ),
    (
        "classification",
        lambda c: c.check_port_in_eligibility(NUMBER, target_classification="wireless"),
        ValueError,
        "mvno, iot",
    ),
    (
        "address lines",
        lambda c: c.submit_port_in(
            NUMBER,
            current_carrier_name="Verizon",
            current_account_number=ACCOUNT,
            current_account_password=PASSWORD,
            current_billing_address=tg.BillingAddress(zip="77002"),
        ),
        ValueError,
        "street1, city, state",
    ),
    (
        "password with a newline",
        lambda c: c.submit_port_in(
            NUMBER,
            current_carrier_name="Verizon",
            current_account_number=ACCOUNT,
            current_account_password=PASSWORD + "\n",
            current_billing_address=ADDRESS,
        ),
        ValueError,
        "current_account_password",
    ),
    (
        "product type",
        lambda c: c.provision_number(
            number_type="mvno", message_type="a2p", voice_enabled=True, product_type="Voice"
        ),
        ValueError,
        "Sms-Only",
    ),
    (
        "voice flag",
        lambda c: c.provision_number(
            number_type="mvno",
            message_type="a2p",
            voice_enabled="yes",  # type: ignore[arg-type]
            product_type="Sms-Only",
        ),
        TypeError,
        "voice_enabled",
    ),
    (
        "route prefix",
        lambda c: c.provision_number(
            number_type="iot",
            message_type="p2p",
            voice_enabled=False,
            product_type="Data-Only",
            message_route_id="RID-1",
        ),
        ValueError,
        "MRID-",
    ),
    ("empty pin", lambda c: c.port_out(NUMBER, pin=" "), ValueError, "pin"),
    (
        "status change",
        lambda c: c.change_number_status("suspend", [NUMBER]),
        ValueError,
        "activate",
    ),
    ("one string", lambda c: c.change_number_status("park", NUMBER), TypeError, "list"),
    (
        "date",
        lambda c: c.change_number_status("park", [NUMBER], effective_date="2026-12-31"),
        ValueError,
        "MM/DD/YYYY",
    ),
    ("timeout", lambda c: port_out_with_timeout(c), ValueError, "timeout"),
]


def port_out_with_timeout(client: tg.TelegentClient) -> Awaitable[tg.SubmittedOrder]:
    return client.port_out(NUMBER, pin=PIN, timeout=-1)


@pytest.mark.parametrize(
    ("what", "call", "error", "words"), BAD_ARGUMENTS, ids=[b[0] for b in BAD_ARGUMENTS]
)
async def test_bad_arguments_are_refused_before_any_request(
    fake: FakeTelegent, what: str, call: Call, error: type[Exception], words: str
) -> None:
    async with fast_client(fake) as client:
        with pytest.raises(error, match=words) as caught:
            await call(client)
    assert fake.requests == []
    for secret in (ACCOUNT, PASSWORD, PIN):
        assert secret not in str(caught.value)
