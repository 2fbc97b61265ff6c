"""telegent_async.contrib.temporal: `telegent.submit_port_in`, against FakeTelegent's create
endpoint. Temporal must never send a submit again when the SDK says its outcome is unknown."""

from __future__ import annotations

import pytest

pytest.importorskip("temporalio", reason="the temporal extra: pip install -e . --group test")
pytest.importorskip("cryptography", reason="the temporal extra: pip install -e . --group test")

from helpers import fast_client
from temporal_env import ACCOUNT, PIN, assert_no_secret, environment, failure_of, history, raised

from telegent_async.contrib import temporal as tgt
from telegent_async.testing import PORTIN_SUBMIT_PATH, FakeTelegent, Step

SUBMIT = tgt.SubmitInput(
    "+12815551234",
    current_carrier_name="Verizon",
    current_account_number=ACCOUNT,
    current_account_password=PIN,
    current_billing_address=tgt.AddressInput(
        street1="1 Main St", city="Houston", state="TX", zip="77002"
    ),
    subscriber_name="Ada Lovelace",
)


async def test_submit_returns_the_new_order_to_wait_on(
    fake: FakeTelegent, activities: tgt.OrderActivities
) -> None:
    fake.script_create(PORTIN_SUBMIT_PATH, [Step("Submitted"), Step("Complete", 0.05)])
    env, _ = environment()
    submitted = await env.run(activities.submit_port_in, SUBMIT)
    assert fake.created(PORTIN_SUBMIT_PATH) == [submitted.order_id]
    [sent] = fake.create_requests(PORTIN_SUBMIT_PATH)
    assert sent.body is not None and sent.body["CurrentAccountNumber"] == ACCOUNT
    quick = tgt.PollInput(submitted.order_id, initial=0.01, max_interval=0.02, jitter=0.0)
    result = await env.run(activities.wait_for_order, quick)
    assert result.succeeded
    assert_no_secret(history(submitted, result))
    assert_no_secret(repr((submitted, SUBMIT)))


async def test_an_unknown_outcome_is_never_retried(fake: FakeTelegent) -> None:
    fake.inject("500", path=PORTIN_SUBMIT_PATH)  # the order is made, the answer lost
    async with fast_client(fake, max_retries=3) as client:
        env, _ = environment()
        error = await raised(env.run(tgt.OrderActivities(client).submit_port_in, SUBMIT))
    assert (error.type, error.non_retryable) == ("SubmitOutcomeUnknownError", True)
    assert len(fake.create_requests(PORTIN_SUBMIT_PATH)) == 1
    assert len(fake.created(PORTIN_SUBMIT_PATH)) == 1
    assert "SubmitOutcomeUnknownError" in tgt.NON_RETRYABLE_TYPES
    assert_no_secret((await failure_of(error)).SerializeToString())


async def test_a_submit_refused_before_it_was_acted_on_may_be_retried(fake: FakeTelegent) -> None:
    fake.inject("503", count=2, path=PORTIN_SUBMIT_PATH)
    async with fast_client(fake, max_retries=1) as client:
        env, _ = environment()
        error = await raised(env.run(tgt.OrderActivities(client).submit_port_in, SUBMIT))
    assert (error.type, error.non_retryable) == ("ServiceUnavailableError", False)
    assert fake.created(PORTIN_SUBMIT_PATH) == []


@pytest.mark.parametrize(
    "address", [tgt.AddressInput(), tgt.AddressInput(zip="77002\n"), tgt.AddressInput(city="")]
)
async def test_a_bad_submit_is_refused_before_any_request(
    fake: FakeTelegent, activities: tgt.OrderActivities, address: tgt.AddressInput
) -> None:
    env, _ = environment()
    bad = tgt.SubmitInput("+12815551234", "Verizon", ACCOUNT, PIN, address)
    error = await raised(env.run(activities.submit_port_in, bad))
    assert (error.type, error.non_retryable) == ("ValueError", True)
    assert fake.create_requests() == []
    assert_no_secret((await failure_of(error)).SerializeToString())
