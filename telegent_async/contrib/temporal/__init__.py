"""Temporal activities for Telegent orders (extra `temporal`).

    pip install 'telegent-async[temporal]'

    from telegent_async.contrib import temporal as tgt

    async with tg.TelegentClient() as client:  # one per worker process: one budget, one token
        worker = Worker(temporal_client, task_queue="telegent",
                        activities=tgt.OrderActivities(client).all())
        await worker.run()

    # in a workflow: one activity attempt per poll, no worker held between polls, for days
    result = await workflow.execute_activity(
        "telegent.poll_order", tgt.PollInput(order_id, preset="portin"),
        result_type=tgt.OrderResult,
        start_to_close_timeout=timedelta(minutes=2),
        schedule_to_close_timeout=timedelta(days=10),   # the wait's overall deadline
        retry_policy=tgt.poll_retry_policy("portin"),
    )

Activities: `telegent.poll_order` (one poll; a pending order is a retryable `OrderPending`
whose `next_retry_delay` is the next poll), `telegent.wait_for_order` (a heartbeating loop
for short waits), `telegent.get_order`, `telegent.update_port_in`, `telegent.cancel_port_in`,
`telegent.submit_port_in`. A settled failure is a non-retryable `OrderFailed` carrying the
`OrderResult` (`failed_result(error)` in the workflow). `EncryptionCodec` keeps the secrets a
submit or an update carries out of workflow history in clear.
"""

from ._activities import OrderActivities
from ._codec import EncryptionCodec
from ._data import (
    AddressInput,
    OrderResult,
    PollInput,
    PortInFields,
    PortInResult,
    SubmitInput,
    SubmittedResult,
    UpdateInput,
)
from ._decisions import (
    NON_RETRYABLE_TYPES,
    Action,
    OrderFailed,
    OrderPending,
    failed_result,
    fields_to_ask,
    next_action,
    poll_retry_policy,
)

__all__ = [
    "NON_RETRYABLE_TYPES",
    "Action",
    "AddressInput",
    "EncryptionCodec",
    "OrderActivities",
    "OrderFailed",
    "OrderPending",
    "OrderResult",
    "PollInput",
    "PortInFields",
    "PortInResult",
    "SubmitInput",
    "SubmittedResult",
    "UpdateInput",
    "failed_result",
    "fields_to_ask",
    "next_action",
    "poll_retry_policy",
]
