"""One next step per carrier code: REFERENCE.md's table, stated here on its own, not read from
the catalogue; and what derives from the step (fixable_by_update, the remedy, the order's step).
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import telegent_async as tg
from telegent_async._carrier import NextStep, next_step_of

UPDATE = NextStep.UPDATE
AFTER_SUBSCRIBER = NextStep.UPDATE_AFTER_SUBSCRIBER
CANCEL = NextStep.CANCEL_AND_SUBMIT
SUPPORT = NextStep.CONTACT_SUPPORT

# REFERENCE.md, "Which update field fixes which carrier code" and the port-in rules.
EXPECTED = [
    ("1M-REQ_DATE_LESS_PUB_INT", UPDATE, ("port_in_date",)),
    ("1N-DATE_AND_TIME_NOT_MET", UPDATE, ("port_in_date",)),
    ("1P-OTHER_REASON", UPDATE, ()),  # read the text: usually fixable by update
    ("1P-SUBSCRIBER NAME MISMATCH", UPDATE, ("subscriber_name",)),
    ("6A-MDN_NOT_FOUND", CANCEL, ()),  # cancel and resubmit
    ("6B-T-Mobile transfer PIN required", UPDATE, ("current_account_password",)),
    ("6P-REMOVE NUMBER LOCK ON VERIZON ACCOUNT", AFTER_SUBSCRIBER, ()),  # then update
    ("8A-ACCOUNT_NUM_REQ_OR_INCORRECT", UPDATE, ("current_account_number",)),
    ("8B-SSN_TAX_ID_REQ_OR_INCORRECT", SUPPORT, ()),  # no update field: contact support
    ("8C-PASS_PIN_REQ_OR_INCORRECT", UPDATE, ("current_account_password",)),
    ("8D-ZIP_CODE_REQ_OR_INCORRECT", UPDATE, ("current_billing_address",)),
    ("GENS-0041-No Port-In request found", SUPPORT, ()),  # stuck: open a ticket
]


@pytest.mark.parametrize(("message", "step", "fields"), EXPECTED)
def test_each_documented_code_has_its_next_step(
    message: str, step: NextStep, fields: tuple[str, ...]
) -> None:
    error = tg.decode_carrier_message(message)
    assert error is not None
    assert error.next_step is step
    assert error.update_fields == fields
    assert error.fixable_by_update is (step in (UPDATE, AFTER_SUBSCRIBER))


@pytest.mark.parametrize(("message", "step", "fields"), EXPECTED)
def test_the_remedy_says_the_step(message: str, step: NextStep, fields: tuple[str, ...]) -> None:
    error = tg.decode_carrier_message(message)
    assert error is not None
    remedy = error.remedy
    names = {
        "port_in_date": "PortInDate",
        "subscriber_name": "SubscriberName",
        "current_account_password": "CurrentAccountPassword",
        "current_account_number": "CurrentAccountNumber",
        "current_billing_address": "CurrentBillingAddress",
    }
    for field in fields:
        assert names[field] in remedy
    # Only a code no update can fix sends the reader to a cancel.
    assert ("cancel with POST /v1.0/numbers/portin/cancel" in remedy) is (step is CANCEL)
    assert ("POST /v1.0/numbers/portin/update" in remedy) is (step in (UPDATE, AFTER_SUBSCRIBER))
    assert ("ticket" in remedy) is (step is SUPPORT)


def test_6p_resubmits_by_update_once_the_lock_is_lifted() -> None:
    error = tg.decode_carrier_message("6P-REMOVE NUMBER LOCK ON VERIZON ACCOUNT")
    assert error is not None
    assert "number lock" in error.remedy and "resubmit" in error.remedy
    assert "CurrentCarrierName" in error.remedy  # what the update resends, unchanged


def test_gens_0041_says_what_the_ticket_needs() -> None:
    error = tg.decode_carrier_message("GENS-0041-No Port-In request found")
    assert error is not None
    for needed in ("both an update and a cancel", "stuck", "phone number", "OrderId"):
        assert needed in error.remedy


@pytest.mark.parametrize(
    ("messages", "step"),
    [
        ([], None),
        (["8A-X"], UPDATE),
        (["8A-X", "6P-X"], AFTER_SUBSCRIBER),  # the lock first, then one update for both
        (["6P-X", "6A-X"], CANCEL),  # a new port-in is needed whatever else
        (["8A-X", "8B-X"], SUPPORT),
    ],
)
def test_an_orders_step_is_the_strongest_its_codes_need(
    messages: list[str], step: NextStep | None
) -> None:
    errors = [tg.decode_carrier_message(m) for m in messages]
    assert next_step_of(e for e in errors if e is not None) is step


@given(st.text(max_size=60))
def test_every_message_has_one_consistent_step(text: str) -> None:
    for error in tg.decode_carrier_messages(text):
        assert isinstance(error.next_step, NextStep)
        assert error.fixable_by_update is (error.next_step in (UPDATE, AFTER_SUBSCRIBER))
        if error.update_fields:
            assert error.next_step is UPDATE


@pytest.mark.parametrize("error", [tg.NotFoundError, tg.BadRequestError])
def test_a_refusal_quoting_gens_0041_says_the_order_is_stuck(
    error: type[tg.APIStatusError],
) -> None:
    refused = error(404, "GENS-0041-No Port-In request found")
    carrier = refused.carrier_error
    assert carrier is not None and carrier.code == "GENS-0041"
    assert carrier.next_step is SUPPORT and "stuck" in carrier.remedy
    assert error(400, "The request is invalid.").carrier_error is None  # no code: nothing
