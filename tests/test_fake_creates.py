"""The fake's create endpoints as a test (or a user's test) drives them with plain aiohttp:
required fields, scoped tokens, per-endpoint faults, and the scripting API's refusals."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from telegent_async.testing import (
    ORDER_PATH,
    PORTIN_SUBMIT_PATH,
    PORTOUT_PATH,
    PROVISION_PATH,
    STATUS_PATH,
    FakeTelegent,
    Step,
)

PORT_OUT = {"PortOutNumber": "+12815551234", "PortOutPIN": "1234"}


async def post(
    fake: FakeTelegent, path: str, body: object, token: str | None = None
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token or fake.issue_token(path)}"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"http://127.0.0.1:{fake.port}{path}", json=body, headers=headers) as resp,
    ):
        return resp.status, json.loads(await resp.read() or b"null")


@pytest.mark.parametrize(
    ("path", "body", "missing"),
    [
        (PORTIN_SUBMIT_PATH, {"PortInNumber": "+12815551234"}, "CurrentCarrierName"),
        (PROVISION_PATH, {"NumberType": "mvno", "MessageType": "a2p"}, "VoiceEnabled"),
        (PORTOUT_PATH, {"PortOutNumber": "+12815551234"}, "PortOutPIN"),
        (STATUS_PATH, {"StatusChange": "park", "PhoneNumbers": []}, "PhoneNumbers"),
    ],
)
async def test_a_request_without_a_required_field_is_a_400_and_makes_nothing(
    fake: FakeTelegent, path: str, body: dict[str, Any], missing: str
) -> None:
    status, answer = await post(fake, path, body)
    assert (status, answer) == (
        400,
        {"StatusCode": 400, "Message": f"The {missing} field is required."},
    )
    assert fake.created() == []


async def test_a_token_of_another_endpoint_is_refused(fake: FakeTelegent) -> None:
    status, answer = await post(fake, PORTOUT_PATH, PORT_OUT, fake.issue_token(ORDER_PATH))
    assert status == 401 and answer["Message"] == "Token is not valid for this endpoint."
    assert fake.created() == []


async def test_faults_per_endpoint_come_before_those_for_any_request(fake: FakeTelegent) -> None:
    fake.inject("503")  # any request
    fake.inject("429", path=PORTOUT_PATH, retry_after="0")
    first, _ = await post(fake, PORTOUT_PATH, PORT_OUT)
    second, _ = await post(fake, PORTOUT_PATH, PORT_OUT)
    third, made = await post(fake, PORTOUT_PATH, PORT_OUT)
    assert (first, second, third) == (429, 503, 200)
    assert fake.created() == [made["OrderId"]]
    assert [r.fault for r in fake.create_requests()] == ["429", "503", None]


async def test_a_fault_after_the_action_replaces_the_answer_of_an_order_made(
    fake: FakeTelegent,
) -> None:
    fake.inject("500", path=PORTOUT_PATH)
    status, answer = await post(fake, PORTOUT_PATH, PORT_OUT)
    assert (status, answer["StatusCode"]) == (500, 500)
    [order_id] = fake.created(PORTOUT_PATH)
    assert order_id.startswith("JNUOID-")


async def test_clear_faults_forgets_the_faults_of_every_endpoint(fake: FakeTelegent) -> None:
    fake.inject("500", path=PORTOUT_PATH)
    fake.inject("500")
    fake.clear_faults()
    status, _ = await post(fake, PORTOUT_PATH, PORT_OUT)
    assert status == 200


async def test_scripted_lifecycles_go_to_the_next_orders_in_turn(fake: FakeTelegent) -> None:
    fake.script_create(PORTOUT_PATH, [Step("Pending"), Step("Error", 0.0)], message="no PIN")
    fake.port_in_delay = 60.0  # the default lifecycle stays Pending while the test looks
    _, first = await post(fake, PORTOUT_PATH, PORT_OUT)
    _, second = await post(fake, PORTOUT_PATH, PORT_OUT)
    token = fake.issue_token(ORDER_PATH)
    async with aiohttp.ClientSession() as session:
        statuses = []
        for made in (first, second):
            url = f"http://127.0.0.1:{fake.port}{ORDER_PATH}?OrderId={made['OrderId']}"
            async with session.get(url, headers={"Authorization": f"Bearer {token}"}) as resp:
                statuses.append((await resp.json())["OrderStatus"])
    assert statuses == ["Error", "Pending"]  # the scripted one, then the default lifecycle


def test_the_scripting_api_refuses_what_it_cannot_do() -> None:
    fake = FakeTelegent()
    with pytest.raises(ValueError, match="not an endpoint that creates"):
        fake.script_create(ORDER_PATH, [Step("Complete")])
    with pytest.raises(ValueError, match="not an API endpoint"):
        fake.inject("500", path="/v1.0/numbers/nope")
    with pytest.raises(ValueError, match="not a create or eligibility endpoint"):
        fake.set_create_answer(ORDER_PATH, body="{}")
    with pytest.raises(ValueError, match="use 'refused'"):
        fake.fail_tokens("embedded_error")
