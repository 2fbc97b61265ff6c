"""examples/portin_workflow.py: run as a script, and its loop driven against FakeTelegent."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from helpers import FAST_POLL, fast_client

import telegent_async as tg
from telegent_async.testing import (
    ELIGIBILITY_PATH,
    ORDER_PATH,
    PORTIN_SUBMIT_PATH,
    PORTIN_UPDATE_PATH,
    FakeTelegent,
    Step,
)

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "portin_workflow.py"
ACCOUNT = "ACCT-wf-3321"


@pytest.fixture(scope="module")
def workflow() -> ModuleType:
    spec = importlib.util.spec_from_file_location("portin_workflow", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_the_script_runs_its_demo_on_an_embedded_fake() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(EXAMPLE),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 30.0)
    assert proc.returncode == 0, err.decode()
    assert "+12815550801: Complete (JNOID-" in out.decode()
    assert "+12815550802: Complete (JNOID-" in out.decode()  # resubmitted by update
    assert "+12815550803: Cancelled (JNOID-" in out.decode()
    assert "no update can fix it" in err.decode()
    for secret in ("ACCT-0001-DEMO", "ACCT-0000-WRONG", "PIN-0000-DEMO"):
        assert secret not in out.decode() + err.decode()


def rejected(fake: FakeTelegent, order_id: str, message: str) -> None:
    fake.add_order(order_id, [Step("Submitted"), Step("Rejected", 0.02)], message=message)


def answers(asked: list[tuple[str, ...]]) -> Any:
    async def ask(order: tg.Order, fields: tuple[str, ...]) -> dict[str, Any]:
        asked.append(fields)
        values = {
            "current_account_number": ACCOUNT,
            "current_account_password": "4321",
            "current_carrier_name": "Verizon",
        }
        return {field: values[field] for field in fields}

    return ask


async def test_8a_is_updated_with_the_account_number_and_completes(
    fake: FakeTelegent, workflow: ModuleType
) -> None:
    rejected(fake, "JNOID-wf-8a", "8A-ACCOUNT_NUM_REQ_OR_INCORRECT")
    asked: list[tuple[str, ...]] = []
    async with fast_client(fake) as client:
        order = await workflow.complete_port_in(
            client, "JNOID-wf-8a", answers(asked), policy=FAST_POLL, timeout=5.0
        )
    assert order.succeeded
    assert asked == [("current_account_number",)]
    [update] = fake.port_in_requests("JNOID-wf-8a")
    assert update.path.endswith("/update")
    assert dict(update.body or {}) == {"OrderId": "JNOID-wf-8a", "CurrentAccountNumber": ACCOUNT}


async def test_6p_is_resubmitted_by_an_update_never_cancelled(
    fake: FakeTelegent, workflow: ModuleType
) -> None:
    rejected(fake, "JNOID-wf-6p", "6P-REMOVE NUMBER LOCK ON VERIZON ACCOUNT")
    fake.script_update("JNOID-wf-6p", [Step("Submitted"), Step("Complete", 0.02)])  # unlocked
    asked: list[tuple[str, ...]] = []
    async with fast_client(fake) as client:
        order = await workflow.complete_port_in(
            client, "JNOID-wf-6p", answers(asked), policy=FAST_POLL, timeout=5.0
        )
    assert order.succeeded
    assert asked == [("current_carrier_name",)]  # resent unchanged, to resubmit
    [update] = fake.port_in_requests("JNOID-wf-6p")
    assert dict(update.body or {}) == {"OrderId": "JNOID-wf-6p", "CurrentCarrierName": "Verizon"}


async def test_6a_is_cancelled_without_asking(fake: FakeTelegent, workflow: ModuleType) -> None:
    rejected(fake, "JNOID-wf-6a", "6A-MDN_NOT_FOUND")
    asked: list[tuple[str, ...]] = []
    async with fast_client(fake) as client:
        order = await workflow.complete_port_in(
            client, "JNOID-wf-6a", answers(asked), policy=FAST_POLL, timeout=5.0
        )
    assert order.status is tg.OrderStatus.CANCELLED
    assert asked == []
    assert [r.path.rsplit("/", 1)[1] for r in fake.port_in_requests("JNOID-wf-6a")] == ["cancel"]


@pytest.mark.parametrize("message", ["8B-SSN_TAX_ID_REQ_OR_INCORRECT", "1P-SEE REMARKS"])
async def test_what_needs_a_person_is_left_as_it_is(
    fake: FakeTelegent, workflow: ModuleType, message: str
) -> None:
    rejected(fake, "JNOID-wf-person", message)
    async with fast_client(fake) as client:
        order = await workflow.complete_port_in(
            client, "JNOID-wf-person", answers([]), policy=FAST_POLL, timeout=5.0
        )
    assert order.status is tg.OrderStatus.REJECTED
    assert fake.port_in_requests("JNOID-wf-person") == []


async def test_left_for_a_person_after_max_attempts_rejections(
    fake: FakeTelegent, workflow: ModuleType
) -> None:
    rejected(fake, "JNOID-wf-again", "8A-ACCOUNT_NUM_REQ_OR_INCORRECT; 8C-PIN")
    for _ in range(2):  # the carrier keeps refusing whatever is sent
        again = [Step("Submitted"), Step("Rejected", 0.02)]
        fake.script_update("JNOID-wf-again", again, message="8C-PASS_PIN_REQ_OR_INCORRECT")
    asked: list[tuple[str, ...]] = []
    async with fast_client(fake) as client:
        order = await workflow.complete_port_in(
            client, "JNOID-wf-again", answers(asked), max_attempts=3, policy=FAST_POLL, timeout=5.0
        )
    assert order.status is tg.OrderStatus.REJECTED  # never cancelled: an update can resubmit
    assert asked == [
        ("current_account_number", "current_account_password"),
        ("current_account_password",),
    ]
    kinds = [r.path.rsplit("/", 1)[1] for r in fake.port_in_requests("JNOID-wf-again")]
    assert kinds == ["update", "update"]


NUMBER = "+12815550999"
DETAILS: dict[str, Any] = {
    "current_carrier_name": "T-Mobile",
    "current_account_number": "ACCT-wrong-1",
    "current_account_password": "PIN-wf-1",
    "current_billing_address": tg.BillingAddress(
        street1="2 Elm St", city="Austin", state="TX", zip="73301"
    ),
}


async def test_eligibility_submit_wait_fix_wait(fake: FakeTelegent, workflow: ModuleType) -> None:
    fake.script_create(
        PORTIN_SUBMIT_PATH,
        [Step("Submitted"), Step("Rejected", 0.02)],
        message="8A-ACCOUNT_NUM_REQ_OR_INCORRECT",
    )
    asked: list[tuple[str, ...]] = []
    async with fast_client(fake) as client:
        order = await workflow.port_in_number(
            client, NUMBER, DETAILS, answers(asked), policy=FAST_POLL, timeout=5.0
        )
    assert isinstance(order, tg.Order) and order.succeeded
    assert fake.created() == [order.order_id]
    assert asked == [("current_account_number",)]
    calls = [r.path for r in fake.requests if r.path != "/v1.0/oauth2/tokens"]
    # eligibility, submit, polls until Rejected, the update, polls until Complete
    assert calls[:2] == [ELIGIBILITY_PATH, PORTIN_SUBMIT_PATH]
    update = calls.index(PORTIN_UPDATE_PATH)
    assert set(calls[2:update]) == {ORDER_PATH} and set(calls[update + 1 :]) == {ORDER_PATH}
    [submitted] = fake.create_requests()
    assert submitted.body is not None and submitted.body["PortInNumber"] == NUMBER
    [fix] = fake.port_in_requests(order.order_id)
    assert dict(fix.body or {}) == {"OrderId": order.order_id, "CurrentAccountNumber": ACCOUNT}


async def test_a_number_with_an_active_port_in_is_not_submitted_again(
    fake: FakeTelegent, workflow: ModuleType
) -> None:
    fake.port_in_delay = 60.0  # the first port-in stays active
    async with fast_client(fake) as client:
        first = await client.submit_port_in(NUMBER, **DETAILS)
        result = await workflow.port_in_number(client, NUMBER, DETAILS, answers([]))
    assert isinstance(result, tg.PortInEligibility) and not result.eligible
    assert first.order_id in (result.message or "")
    assert len(fake.create_requests()) == 1


async def test_an_unknown_submit_outcome_is_resolved_by_eligibility_not_by_resubmitting(
    fake: FakeTelegent, workflow: ModuleType
) -> None:
    fake.port_in_delay = 60.0
    fake.inject("reset", path=PORTIN_SUBMIT_PATH)  # after the fake read it and made the order
    async with fast_client(fake) as client:
        with pytest.raises(workflow.AlreadyActive) as caught:
            await workflow.port_in_number(client, NUMBER, DETAILS, answers([]))
    assert isinstance(caught.value.__cause__, tg.SubmitOutcomeUnknownError)
    assert fake.created()[0] in str(caught.value)
    assert len(fake.create_requests()) == 1


async def test_a_submit_refused_before_it_was_made_is_submitted_once_more(
    fake: FakeTelegent, workflow: ModuleType
) -> None:
    # A 408 says nothing sure about the order (a gateway may have passed the request on): the
    # SDK says "unknown"; the fake made nothing, eligibility says so, the workflow submits again.
    fake.inject("408", path=PORTIN_SUBMIT_PATH)
    async with fast_client(fake) as client:
        order = await workflow.port_in_number(
            client, NUMBER, DETAILS, answers([]), policy=FAST_POLL, timeout=5.0
        )
    assert isinstance(order, tg.Order) and order.succeeded
    assert len(fake.create_requests()) == 2 and fake.created() == [order.order_id]
