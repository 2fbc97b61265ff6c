"""telegent_async.contrib.temporal: lookups, updates and cancels as activities, and the
subscriber's secrets kept out of every result, error and heartbeat Temporal would record."""

from __future__ import annotations

import pytest

pytest.importorskip("temporalio", reason="the temporal extra: pip install -e . --group test")
pytest.importorskip("cryptography", reason="the temporal extra: pip install -e . --group test")

import dataclasses
import os

from temporal_env import (
    ACCOUNT,
    CONVERTER,
    PIN,
    assert_no_secret,
    environment,
    failure_of,
    history,
    raised,
)

from telegent_async.contrib import temporal as tgt
from telegent_async.testing import FakeTelegent

# -- lookups, updates, cancels -----------------------------------------------------------------


async def test_get_order_returns_any_status(
    fake: FakeTelegent, activities: tgt.OrderActivities
) -> None:
    fake.add_order("JNOID-t-g", "Rejected", message="6P-REMOVE NUMBER LOCK ON VERIZON ACCOUNT")
    env, _ = environment()
    result = await env.run(activities.get_order, "JNOID-t-g")
    assert (result.status, result.carrier_code, result.update_fields) == ("REJECTED", "6P", ())
    assert result.remedy


async def test_update_sends_the_fields_given_and_cancel_is_final(
    fake: FakeTelegent, activities: tgt.OrderActivities
) -> None:
    fake.add_order("JNOID-t-u", "Rejected", message="8A-ACCOUNT_NUM_REQ_OR_INCORRECT")
    fields = tgt.PortInFields(current_account_number=ACCOUNT, current_account_password=PIN)
    env, _ = environment()
    update = tgt.UpdateInput("JNOID-t-u", fields.only(("current_account_number",)))
    answer = await env.run(activities.update_port_in, update)
    assert (answer.order_id, answer.status) == ("JNOID-t-u", "Updated")
    [sent] = fake.port_in_requests("JNOID-t-u")
    assert dict(sent.body or {}) == {"OrderId": "JNOID-t-u", "CurrentAccountNumber": ACCOUNT}
    cancelled = await env.run(activities.cancel_port_in, "JNOID-t-u")
    assert cancelled.status == "Cancelled"
    again = await env.run(activities.cancel_port_in, "JNOID-t-u")  # idempotent
    assert again.status == "Cancelled"
    error = await raised(env.run(activities.update_port_in, update))
    assert (error.type, error.non_retryable) == ("BadRequestError", True)


async def test_an_update_with_nothing_to_send_is_refused_before_any_request(
    fake: FakeTelegent, activities: tgt.OrderActivities
) -> None:
    fake.add_order("JNOID-t-e", "Rejected", message="8A-ACCOUNT_NUM_REQ_OR_INCORRECT")
    env, _ = environment()
    error = await raised(
        env.run(activities.update_port_in, tgt.UpdateInput("JNOID-t-e", tgt.PortInFields()))
    )
    assert (error.type, error.non_retryable) == ("ValueError", True)
    assert fake.port_in_requests() == []


# -- secrets ---------------------------------------------------------------------------------


async def test_secrets_reach_no_result_error_or_heartbeat(
    fake: FakeTelegent, activities: tgt.OrderActivities
) -> None:
    fields = tgt.PortInFields(current_account_number=ACCOUNT, current_account_password=PIN)
    echo = f'{{"OrderId": "JNOID-t-x", "Status": "Updated", "Message": "{ACCOUNT} / {PIN}"}}'
    fake.add_order("JNOID-t-x", "Rejected", message="8A-ACCOUNT_NUM_REQ_OR_INCORRECT")
    fake.set_response("JNOID-t-x", body=echo)  # an answer quoting the secrets back
    env, beats = environment()
    answer = await env.run(activities.update_port_in, tgt.UpdateInput("JNOID-t-x", fields))
    refused = f'{{"StatusCode": 400, "Message": "bad account {ACCOUNT}, pin {PIN}"}}'
    fake.set_response("JNOID-t-x", status=400, body=refused)
    error = await raised(env.run(activities.update_port_in, tgt.UpdateInput("JNOID-t-x", fields)))
    leaky = {"OrderId": "JNOID-t-y", "OrderStatus": "Rejected", "CurrentAccountPassword": PIN}
    fake.add_order("JNOID-t-y", "Rejected", extra=leaky, message="8C-PIN")
    env, beats = environment()
    with pytest.raises(tgt.OrderFailed) as failed:
        await env.run(activities.wait_for_order, tgt.PollInput("JNOID-t-y"))
    looked_up = await env.run(activities.get_order, "JNOID-t-y")
    assert looked_up.raw.get("OrderId") == "JNOID-t-y"
    assert_no_secret(history(answer, looked_up, *beats))
    assert_no_secret(repr((answer, looked_up, beats, fields)))
    for err in (error, failed.value):
        assert_no_secret((await failure_of(err)).SerializeToString())
    assert error.type == "BadRequestError"


async def test_inputs_with_secrets_are_ciphertext_in_history_through_the_codec() -> None:
    codec = tgt.EncryptionCodec(os.urandom(32), key_id="k1")
    converter = dataclasses.replace(CONVERTER, payload_codec=codec)
    submit = tgt.SubmitInput(
        "+12815551234",
        "Verizon",
        ACCOUNT,
        PIN,
        tgt.AddressInput(zip="10001"),
        subscriber_name="Ada",
    )
    update = tgt.UpdateInput("JNOID-t-c", tgt.PortInFields(current_account_password=PIN))
    payloads = await converter.encode([submit, update])
    assert_no_secret(b"".join(p.SerializeToString() for p in payloads))
    assert_no_secret(repr((submit, update)))
    assert await converter.decode(payloads, [tgt.SubmitInput, tgt.UpdateInput]) == [submit, update]
