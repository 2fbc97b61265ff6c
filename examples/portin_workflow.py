"""A whole port-in: eligibility -> submit -> wait -> fix what the carrier asks for -> wait.

`port_in_number` checks the number is eligible, submits the port-in (never twice: after
`SubmitOutcomeUnknownError` it asks eligibility whether the port-in exists before anything
else), then `complete_port_in` loops: wait until the port-in settles; if the losing carrier
rejected it, its carrier codes say what comes next (`order.next_step`): an update of the
fields they name (`CarrierError.update_fields`: ask the subscriber for exactly those), or for
a 6P number lock, an update that resubmits once the subscriber has removed the lock; then
wait again. Only a rejection no update can fix (6A) is cancelled (a cancel is final); one that
needs Telegent's support (8B, GENS-0041), or `max_attempts` rejections, is left for a person.

    python examples/portin_workflow.py                  # an embedded FakeTelegent, no network
    python examples/portin_workflow.py JNOID-...        # Telegent, with TELEGENT_ACCOUNT_KEY
                                                        # and TELEGENT_ACCOUNT_SECRET set
"""

from __future__ import annotations

import asyncio
import getpass
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import telegent_async as tg
from telegent_async.testing import PORTIN_SUBMIT_PATH, FakeTelegent, Step

logger = logging.getLogger("portin_workflow")

#: Asks the subscriber (or a form, or a ticket) for these `update_port_in` fields of this order.
Ask = Callable[[tg.Order, tuple[str, ...]], Awaitable[dict[str, Any]]]


def fields_to_ask_for(order: tg.Order) -> tuple[str, ...]:
    """Every field that fixes one of the order's carrier codes, in the order they came."""
    fields = (field for error in order.carrier_errors for field in error.update_fields)
    return tuple(dict.fromkeys(fields))


class AlreadyActive(Exception):
    """A submit's outcome was unknown and eligibility shows a port-in active for the number:
    it was created, but its OrderId is lost (no call lists orders): find it in the portal."""


async def port_in_number(
    client: tg.TelegentClient,
    number: str,
    details: dict[str, Any],
    ask: Ask,
    *,
    classification: str = "mvno",
    policy: tg.PollPolicy = tg.PollPolicy.PORT_IN,
    timeout: float | None = None,
) -> tg.Order | tg.PortInEligibility:
    """Eligibility, submit, then `complete_port_in`; an ineligible number's answer as is.

    `details`: `submit_port_in`'s keywords (carrier, account number and password, address).
    """
    eligibility = await client.check_port_in_eligibility(
        number, target_classification=classification
    )
    if not eligibility.eligible:
        logger.info("%s: not eligible (%s)", number, eligibility.message)
        return eligibility
    try:
        submitted = await client.submit_port_in(number, **details)
    except tg.SubmitOutcomeUnknownError as unknown:
        # Never submit blindly again: the first may have been created. Eligibility tells.
        again = await client.check_port_in_eligibility(number, target_classification=classification)
        if not again.eligible:
            raise AlreadyActive(f"{number}: {again.message}") from unknown
        logger.info("%s: the first submit did not go through; submitting again", number)
        submitted = await client.submit_port_in(number, **details)
    logger.info("%s: port-in %s submitted", number, submitted.order_id)
    return await complete_port_in(client, submitted.order_id, ask, policy=policy, timeout=timeout)


async def complete_port_in(
    client: tg.TelegentClient,
    order_id: str,
    ask: Ask,
    *,
    max_attempts: int = 3,
    policy: tg.PollPolicy = tg.PollPolicy.PORT_IN,
    timeout: float | None = None,
) -> tg.Order:
    """Drive one port-in as far as code can: `Complete`, cancelled (6A), or left for a person."""
    attempt = 0
    while True:
        attempt += 1
        order = await client.wait_for_order(order_id, timeout=timeout, policy=policy)
        step = order.next_step
        if step is None:
            return order  # Complete, or Cancelled/Error: nothing an update can change
        codes = ", ".join(e.code or "no code" for e in order.carrier_errors)
        if step is tg.NextStep.CANCEL_AND_SUBMIT:
            logger.info("%s: rejected (%s); no update can fix it: cancelling", order_id, codes)
            await client.cancel_port_in(order_id)
            return await client.get_order(order_id)
        fields = fields_to_ask_for(order)
        if step is tg.NextStep.UPDATE_AFTER_SUBSCRIBER:
            fields = fields or (tg.RESUBMIT_FIELD,)  # resent unchanged: the update resubmits
        if step is tg.NextStep.CONTACT_SUPPORT or not fields or attempt == max_attempts:
            logger.info("%s: rejected (%s); left for a person: %s", order_id, codes, step.value)
            return order
        logger.info("%s: rejected (%s); asking for %s", order_id, codes, ", ".join(fields))
        # An update sends the port-in back to Submitted, so the next wait sees the new verdict.
        await client.update_port_in(order_id, **await ask(order, fields))


# -- asking -------------------------------------------------------------------------------------

_SECRET_FIELDS = frozenset({"current_account_number", "current_account_password"})


async def ask_on_terminal(order: tg.Order, fields: tuple[str, ...]) -> dict[str, Any]:
    """Ask an operator; secrets are read without echo and never printed."""
    for error in order.carrier_errors:
        print(f"{order.order_id}: {error.code} {error.description}\n  {error.remedy}")
    answers: dict[str, Any] = {}
    for field in fields:
        prompt = f"{field.replace('_', ' ')}: "
        read = getpass.getpass if field in _SECRET_FIELDS else input
        value = await asyncio.to_thread(read, prompt)
        if field == "current_billing_address":
            answers[field] = tg.BillingAddress(zip=value)
        else:
            answers[field] = value
    return answers


def scripted_answers(values: dict[str, Any]) -> Ask:
    """Answers known in advance (the demo's subscriber); shows which fields were asked for."""

    async def ask(order: tg.Order, fields: tuple[str, ...]) -> dict[str, Any]:
        print(f"  {order.order_id}: asking the subscriber for {', '.join(fields)}")
        return {field: values[field] for field in fields}

    return ask


# -- running it ---------------------------------------------------------------------------------

#: The demo compresses days into tens of milliseconds.
DEMO_POLICY = tg.PollPolicy(initial=0.02, factor=2.0, max_interval=0.1, jitter=0.2)
#: The numbers the demo ports in, and the carrier's first answer to each.
DEMO_NUMBERS = {
    "+12815550801": "8A-ACCOUNT_NUM_REQ_OR_INCORRECT",
    "+12815550802": "6P-REMOVE NUMBER LOCK ON VERIZON ACCOUNT",
    "+12815550803": "6A-MDN_NOT_FOUND",
}
DEMO_DETAILS: dict[str, Any] = {
    "current_carrier_name": "Verizon",
    "current_account_number": "ACCT-0000-WRONG",
    "current_account_password": "PIN-0000-DEMO",
    "current_billing_address": tg.BillingAddress(
        street1="1 Main St", city="Houston", state="TX", zip="77002"
    ),
}


async def demo() -> dict[str, tg.Order | tg.PortInEligibility]:
    """On an embedded FakeTelegent, from eligibility on: 8A fixed by an update, 6P resubmitted
    by an update once the subscriber removed the number lock, 6A cancelled."""
    async with FakeTelegent() as fake:
        for message in DEMO_NUMBERS.values():
            steps = [Step("Submitted"), Step("Rejected", 0.05)]
            fake.script_create(PORTIN_SUBMIT_PATH, steps, message=message)
        answers = scripted_answers(
            {"current_account_number": "ACCT-0001-DEMO", "current_carrier_name": "Verizon"}
        )

        async def ask(order: tg.Order, fields: tuple[str, ...]) -> dict[str, Any]:
            if any(error.code == "6P" for error in order.carrier_errors):
                # The subscriber removes the lock: the resubmitted 6P goes through.
                fake.script_update(order.order_id, [Step("Submitted"), Step("Complete", 0.05)])
            return await answers(order, fields)

        async with fake.client(requests_per_minute=None) as client:
            results: dict[str, tg.Order | tg.PortInEligibility] = {}
            for number in DEMO_NUMBERS:  # in turn: each takes the next scripted lifecycle
                results[number] = await port_in_number(
                    client, number, DEMO_DETAILS, ask, policy=DEMO_POLICY, timeout=10.0
                )
    return results


async def real(order_ids: list[str]) -> dict[str, tg.Order | tg.PortInEligibility]:
    async with tg.TelegentClient() as client:
        orders = [await complete_port_in(client, oid, ask_on_terminal) for oid in order_ids]
    return {order.order_id: order for order in orders}


def main(argv: list[str]) -> int:
    logging.basicConfig(format="  %(message)s")
    logger.setLevel(logging.INFO)
    results = asyncio.run(real(argv) if argv else demo())
    for key, result in results.items():
        if isinstance(result, tg.PortInEligibility):
            print(f"{key}: not eligible ({result.message})")
        else:
            print(f"{key}: {result.raw_status} ({result.order_id})")
    return 0 if all(isinstance(r, tg.Order) and r.is_settled for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
