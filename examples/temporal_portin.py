"""A port-in as a Temporal workflow: submit, wait days without holding a worker, fix what the
carrier asks for, wait again, end with the order.

The wait is `telegent.poll_order` under `poll_retry_policy("portin")`: each poll is one
activity attempt, Temporal's retry timer holds the wait between polls (10 minutes doubling to
6 hours), and retries add nothing to workflow history, so a five-day port-in costs a few dozen
polls and a bounded history. On a rejection an update can fix (8A: the account number), the
workflow asks through the `correct` signal for exactly the fields the carrier code names (a 6P
number lock: the carrier's name again, once the subscriber has lifted the lock), updates, and
waits again. Only a rejection no update can fix (6A) is cancelled, a cancel being final; one
that needs Telegent's support, is still rejected after `MAX_UPDATES` updates, or gets no
correction within `CORRECTION_WINDOW` ends the workflow with the order, for a person. Which
activity comes next for each result is `tgt.next_action`, a plain function.

The subscriber's account number and PIN travel in the start input and the signal: the
`EncryptionCodec` on every client below keeps them out of history in clear.

    temporal server start-dev          # a local Temporal server (the Temporal CLI), port 7233
    export TEMPORAL_PAYLOAD_KEY=$(head -c 32 /dev/urandom | base64)   # in a secret store
    export TELEGENT_ACCOUNT_KEY=DID-... TELEGENT_ACCOUNT_SECRET=...    # the worker's only
    python examples/temporal_portin.py worker            # any number, on any hosts
    ACCOUNT_NUMBER=... ACCOUNT_PIN=... python examples/temporal_portin.py start +12815551234 \\
        --carrier Verizon --zip 10001                    # prints the workflow ID
    ACCOUNT_NUMBER=... python examples/temporal_portin.py correct portin-+12815551234
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import dataclasses
import os
import sys
from datetime import timedelta

from temporalio import workflow
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.converter import DataConverter
from temporalio.exceptions import ActivityError
from temporalio.worker import Worker

with workflow.unsafe.imports_passed_through():
    import telegent_async as tg
    from telegent_async.contrib import temporal as tgt

TASK_QUEUE = "telegent"
MAX_UPDATES = 2
#: How long a rejected port-in waits for the subscriber's corrections before it is left to a
#: person (the workflow ends with the order as it is).
CORRECTION_WINDOW = timedelta(days=3)
#: One lookup, update or cancel, the SDK's own retries included.
CALL = timedelta(minutes=2)
#: A port-in takes 1 to 5 business days: the whole wait's deadline.
PORT_IN_DEADLINE = timedelta(days=10)
#: A submit is tried once: the SDK already retried what cannot have created an order, a
#: `SubmitOutcomeUnknownError` must not be sent again (the order may exist), and neither may an
#: attempt whose worker died mid-request (Temporal would retry it when it timed out).
ONCE = RetryPolicy(maximum_attempts=1)


@workflow.defn(name="PortIn")
class PortInWorkflow:
    """Submit a port-in and drive it as far as code can: `Complete`, cancelled (6A), or left
    for a person (the result's `next_step` and `remedy` say what to do)."""

    def __init__(self) -> None:
        self._corrections = tgt.PortInFields()
        self._needed: tuple[str, ...] = ()

    @workflow.signal
    def correct(self, fields: tgt.PortInFields) -> None:
        """Corrected port-in data from the subscriber (only the fields asked for are sent)."""
        self._corrections = fields

    @workflow.query
    def fields_needed(self) -> list[str]:
        """The `update_port_in` fields the workflow waits for ([] when it waits for none)."""
        return list(self._needed)

    @workflow.run
    async def run(self, request: tgt.SubmitInput) -> tgt.OrderResult:
        submitted = await workflow.execute_activity_method(
            tgt.OrderActivities.submit_port_in,
            request,
            start_to_close_timeout=CALL,
            retry_policy=ONCE,
        )
        order_id = submitted.order_id
        updates = 0
        while True:
            result = await self._wait(order_id)
            action = tgt.next_action(result, updates, MAX_UPDATES)
            if action is tgt.Action.UPDATE:
                fields = await self._corrections_for(tgt.fields_to_ask(result))
                if fields is None:
                    return result  # no correction in time: left for a person
                await workflow.execute_activity_method(
                    tgt.OrderActivities.update_port_in,
                    tgt.UpdateInput(order_id, fields),
                    start_to_close_timeout=CALL,
                )
                updates += 1
                continue
            if action is tgt.Action.CANCEL:
                await workflow.execute_activity_method(
                    tgt.OrderActivities.cancel_port_in, order_id, start_to_close_timeout=CALL
                )
                return await workflow.execute_activity_method(
                    tgt.OrderActivities.get_order, order_id, start_to_close_timeout=CALL
                )
            return result

    async def _wait(self, order_id: str) -> tgt.OrderResult:
        """The settled order: one activity attempt per poll, none of them held between polls."""
        try:
            return await workflow.execute_activity_method(
                tgt.OrderActivities.poll_order,
                tgt.PollInput(order_id, preset="portin"),
                start_to_close_timeout=CALL,
                schedule_to_close_timeout=PORT_IN_DEADLINE,
                retry_policy=tgt.poll_retry_policy("portin"),
            )
        except ActivityError as error:
            failed = tgt.failed_result(error)
            if failed is None:
                raise  # a 404, the deadline ...: the workflow fails with it
            return failed

    async def _corrections_for(self, needed: tuple[str, ...]) -> tgt.PortInFields | None:
        """The corrections that carry a field `needed` names, or None after the window."""
        self._needed, self._corrections = needed, tgt.PortInFields()
        try:
            await workflow.wait_condition(
                lambda: bool(set(needed) & set(self._corrections.names())),
                timeout=CORRECTION_WINDOW,
            )
        except asyncio.TimeoutError:
            return None
        finally:
            self._needed = ()
        return self._corrections.only(needed)


# -- the worker and the starters ---------------------------------------------------------------


async def connect() -> Client:
    """A Temporal client whose payloads are encrypted (`TEMPORAL_PAYLOAD_KEY`: 32 bytes, base64)."""
    key = base64.b64decode(os.environ["TEMPORAL_PAYLOAD_KEY"])
    converter = dataclasses.replace(DataConverter.default, payload_codec=tgt.EncryptionCodec(key))
    address = os.environ.get("TEMPORAL_ADDRESS", "localhost:7233")
    return await Client.connect(address, data_converter=converter)


async def run_worker() -> None:
    """One worker process: one TelegentClient (credentials from the environment) for every
    activity, so they share one budget and one token cache."""
    temporal = await connect()
    async with tg.TelegentClient() as client:
        worker = Worker(
            temporal,
            task_queue=TASK_QUEUE,
            workflows=[PortInWorkflow],
            activities=tgt.OrderActivities(client).all(),
        )
        await worker.run()


def corrections_from_env() -> tgt.PortInFields:
    """Corrections from the environment, never from argv (any local user can read a command
    line): ACCOUNT_NUMBER, ACCOUNT_PIN, CARRIER_NAME (a resubmit once a number lock is
    lifted), PORT_IN_DATE, SUBSCRIBER_NAME, BILLING_ZIP."""
    env = os.environ.get
    zip_code = env("BILLING_ZIP")
    return tgt.PortInFields(
        current_account_number=env("ACCOUNT_NUMBER"),
        current_account_password=env("ACCOUNT_PIN"),
        current_carrier_name=env("CARRIER_NAME"),
        port_in_date=env("PORT_IN_DATE"),
        subscriber_name=env("SUBSCRIBER_NAME"),
        current_billing_address=tgt.AddressInput(zip=zip_code) if zip_code else None,
    )


async def start(phone_number: str, carrier: str, zip_code: str) -> str:
    """Start the workflow for one number; its ID names the number, so a second start of the
    port-in while the first runs is refused by Temporal rather than submitted twice."""
    request = tgt.SubmitInput(
        phone_number,
        current_carrier_name=carrier,
        current_account_number=os.environ["ACCOUNT_NUMBER"],
        current_account_password=os.environ["ACCOUNT_PIN"],
        current_billing_address=tgt.AddressInput(zip=zip_code),
    )
    workflow_id = f"portin-{phone_number}"
    temporal = await connect()
    await temporal.start_workflow(
        PortInWorkflow.run, request, id=workflow_id, task_queue=TASK_QUEUE
    )
    return workflow_id


async def correct(workflow_id: str) -> None:
    """Send the subscriber's corrections to a waiting workflow."""
    temporal = await connect()
    await temporal.get_workflow_handle(workflow_id).signal(
        PortInWorkflow.correct, corrections_from_env()
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("worker", help="run a worker until interrupted")
    starting = commands.add_parser("start", help="submit a port-in and drive it")
    starting.add_argument("phone_number")
    starting.add_argument("--carrier", required=True)
    starting.add_argument("--zip", required=True)
    correcting = commands.add_parser("correct", help="send corrections from the environment")
    correcting.add_argument("workflow_id")
    args = parser.parse_args(argv)
    if args.command == "worker":
        asyncio.run(run_worker())
    elif args.command == "start":
        print(asyncio.run(start(args.phone_number, args.carrier, args.zip)))
    else:
        asyncio.run(correct(args.workflow_id))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
