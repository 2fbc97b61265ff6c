"""telegent_async.contrib.temporal without a server: the pure decisions a workflow and the
activities follow, the dataclasses through Temporal's default converter, the payload codec,
and examples/temporal_portin.py's workflow as Temporal's sandbox sees it."""

from __future__ import annotations

import dataclasses
import importlib
import os
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

pytest.importorskip("temporalio", reason="the temporal extra: pip install -e . --group test")
pytest.importorskip("cryptography", reason="the temporal extra: pip install -e . --group test")

import temporalio.converter
from temporalio import workflow
from temporalio.api.common.v1 import Payload
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

import telegent_async as tg
from telegent_async.contrib import temporal as tgt
from telegent_async.contrib.temporal._data import result_of

CONVERTER = temporalio.converter.DataConverter.default
ACCOUNT = "ACCT-temporal-77310"
PIN = "pin-Xq4-5521"
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "temporal_portin.py"


# -- pure decisions --------------------------------------------------------------------------


def test_poll_retry_policy_is_the_presets_cadence_with_no_attempt_limit() -> None:
    assert tgt.poll_retry_policy("portin") == RetryPolicy(
        initial_interval=timedelta(minutes=10),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(hours=6),
        maximum_attempts=0,
        non_retryable_error_types=["OrderFailed", "SubmitOutcomeUnknownError"],
    )
    provision = tgt.poll_retry_policy("provision")
    assert (provision.initial_interval, provision.maximum_interval) == (
        timedelta(seconds=1),
        timedelta(seconds=15),
    )
    with pytest.raises(ValueError, match="preset must be one of provision, portin"):
        tgt.poll_retry_policy("hourly")


def result(status: str, fields: tuple[str, ...] = (), step: str | None = None) -> tgt.OrderResult:
    return tgt.OrderResult("JNOID-1", status, status.title(), update_fields=fields, next_step=step)


ACCOUNT_FIELD = ("current_account_number",)


@pytest.mark.parametrize(
    ("order", "updates", "action"),
    [
        (result("COMPLETE"), 0, tgt.Action.END),
        (result("CANCELLED"), 0, tgt.Action.END),
        (result("ERROR"), 0, tgt.Action.END),
        (result("REJECTED", ACCOUNT_FIELD, "UPDATE"), 0, tgt.Action.UPDATE),
        (result("RESOLUTION_REQUIRED", ("port_in_date",), "UPDATE"), 1, tgt.Action.UPDATE),
        (result("REJECTED", (), "UPDATE_AFTER_SUBSCRIBER"), 0, tgt.Action.UPDATE),
        (result("REJECTED", ACCOUNT_FIELD, "UPDATE"), 2, tgt.Action.END),  # for a person
        (result("REJECTED", (), "UPDATE"), 0, tgt.Action.END),  # a 1P naming no field
        (result("REJECTED", (), "CANCEL_AND_SUBMIT"), 0, tgt.Action.CANCEL),
        (result("REJECTED", (), "CANCEL_AND_SUBMIT"), 5, tgt.Action.CANCEL),
        (result("REJECTED", (), "CONTACT_SUPPORT"), 0, tgt.Action.END),
    ],
)
def test_next_action(order: tgt.OrderResult, updates: int, action: tgt.Action) -> None:
    assert tgt.next_action(order, updates, max_updates=2) is action


def test_a_resubmit_asks_for_the_field_an_update_resends() -> None:
    assert tgt.fields_to_ask(result("REJECTED", (), "UPDATE_AFTER_SUBSCRIBER")) == (
        tg.RESUBMIT_FIELD,
    )
    assert tgt.fields_to_ask(result("REJECTED", ACCOUNT_FIELD, "UPDATE")) == ACCOUNT_FIELD


@pytest.mark.parametrize(
    ("message", "step", "action"),
    [
        ("8A-ACCOUNT_NUM_REQ_OR_INCORRECT", "UPDATE", tgt.Action.UPDATE),
        ("6P-REMOVE NUMBER LOCK ON VERIZON ACCOUNT", "UPDATE_AFTER_SUBSCRIBER", tgt.Action.UPDATE),
        ("6A-PORTING NUMBER NOT FOUND", "CANCEL_AND_SUBMIT", tgt.Action.CANCEL),
        ("8B-SOMETHING", "CONTACT_SUPPORT", tgt.Action.END),
    ],
)
def test_the_next_action_follows_the_orders_own_next_step(
    message: str, step: str, action: tgt.Action
) -> None:
    """From a rejected order as Telegent answers it, through `result_of`, to the action."""
    body = {"OrderId": "JNOID-1", "OrderStatus": "Rejected", "OrderStatusMessage": message}
    order = tg.Order.from_json({"order_id": "JNOID-1", "raw": body})
    converted = result_of(order)
    assert (converted.next_step, order.next_step) == (step, tg.NextStep[step])
    assert tgt.next_action(converted, 0) is action


def test_failed_result_is_none_for_other_errors() -> None:
    assert tgt.failed_result(ValueError("x")) is None
    assert tgt.failed_result(ApplicationError("x", type="OrderPending")) is None
    assert tgt.failed_result(ApplicationError("x", type="OrderFailed")) is None
    assert tgt.failed_result(ApplicationError("x", {"order_id": "a"}, type="OrderFailed")) is None


def test_port_in_fields_keep_only_what_is_named() -> None:
    fields = tgt.PortInFields(
        current_account_number=ACCOUNT, port_in_date="2026-03-02",
        current_billing_address=tgt.AddressInput(zip="10001"),
    )  # fmt: skip
    kept = fields.only(["port_in_date", "current_billing_address"])
    assert kept.keywords() == {
        "port_in_date": "2026-03-02",
        "current_billing_address": tg.BillingAddress(zip="10001"),
    }


def test_every_input_and_result_round_trips_through_the_default_converter() -> None:
    values: list[Any] = [
        tgt.PollInput("JNOID-t-1", preset="portin", jitter=0.0),
        result("REJECTED", ("current_account_number",)),
        tgt.UpdateInput(
            "JNOID-1",
            tgt.PortInFields(
                iccid="8901260123456789012", current_billing_address=tgt.AddressInput(city="Austin")
            ),
        ),
        tgt.PortInResult("JNOID-1", "Updated", "ok", {"a": [1, None]}),
        tgt.SubmittedResult("JNOID-1", "Submitted", "2026-03-02T10:00:00+00:00", {}),
    ]
    payloads = CONVERTER.payload_converter.to_payloads(values)
    assert CONVERTER.payload_converter.from_payloads(payloads, [type(v) for v in values]) == values


# -- the codec ---------------------------------------------------------------------------------


async def test_the_codec_decrypts_its_own_and_previous_keys_and_refuses_tampering() -> None:
    old, new = os.urandom(32), os.urandom(32)
    plain = CONVERTER.payload_converter.to_payloads([PIN])
    written = await tgt.EncryptionCodec(old, key_id="2025").encode(plain)
    rotated = tgt.EncryptionCodec(new, key_id="2026", previous_keys={"2025": old})
    assert await rotated.decode(written) == plain
    assert await rotated.decode(plain) == plain  # written before the codec: as is
    assert PIN.encode() not in b"".join(p.SerializeToString() for p in await rotated.encode(plain))
    with pytest.raises(ValueError, match="unknown key ID '2025'"):
        await tgt.EncryptionCodec(new, key_id="2026").decode(written)
    data = written[0].data
    tampered = Payload(metadata=dict(written[0].metadata), data=data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(ValueError, match="does not decrypt"):
        await rotated.decode([tampered])
    with pytest.raises(ValueError, match="32 bytes"):
        tgt.EncryptionCodec(b"short")
    assert "2026" in repr(rotated) and new.hex() not in repr(rotated)


# -- examples/temporal_portin.py -----------------------------------------------------------------


@pytest.fixture(scope="module")
def example() -> Iterator[ModuleType]:
    """The example imported by its module name, as the sandbox imports it again."""
    sys.path.insert(0, str(EXAMPLE.parent))
    try:
        yield importlib.import_module("temporal_portin")
    finally:
        sys.path.remove(str(EXAMPLE.parent))
        sys.modules.pop("temporal_portin", None)


async def test_the_example_workflow_passes_the_sandboxs_validation(example: ModuleType) -> None:
    """What a worker does before it runs the workflow: load its module in the sandbox."""
    defn = workflow._Definition.must_from_class(example.PortInWorkflow)
    SandboxedWorkflowRunner().prepare_workflow(defn)
    assert defn.name == "PortIn"
    assert set(defn.signals) == {"correct"} and set(defn.queries) == {"fields_needed"}


def test_every_activity_the_example_calls_is_registered(example: ModuleType) -> None:
    source = EXAMPLE.read_text()
    called = {name for name in tgt.OrderActivities.__dict__ if f"OrderActivities.{name}," in source}
    assert called == {
        "submit_port_in",
        "poll_order",
        "update_port_in",
        "cancel_port_in",
        "get_order",
    }
    client = tg.TelegentClient(token="t", base_url="https://api.example.test/v1.0")
    registered = {fn.__name__ for fn in tgt.OrderActivities(client).all()}
    assert called <= registered


def test_the_example_reads_corrections_from_the_environment(
    example: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("ACCOUNT_PIN", "PORT_IN_DATE", "SUBSCRIBER_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ACCOUNT_NUMBER", ACCOUNT)
    monkeypatch.setenv("BILLING_ZIP", "10001")
    fields = example.corrections_from_env()
    assert fields.names() == ("current_account_number", "current_billing_address")
    assert ACCOUNT not in repr(fields)


def test_order_result_keeps_the_designed_positions() -> None:
    # DESIGN.md: OrderResult(order_id, status, raw_status, carrier_code, reason, remedy,
    # update_fields, raw); anything added comes after them.
    names = [field.name for field in dataclasses.fields(tgt.OrderResult)]
    assert names[:8] == [
        "order_id", "status", "raw_status", "carrier_code", "reason", "remedy",
        "update_fields", "raw",
    ]  # fmt: skip
