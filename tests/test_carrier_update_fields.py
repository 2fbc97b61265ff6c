"""`CarrierError.update_fields`, codes later in a message, and messages with several codes."""

from __future__ import annotations

import inspect
import json

import pytest
from helpers import decode_order
from hypothesis import given
from hypothesis import strategies as st

import telegent_async as tg


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        ("8A-ACCOUNT_NUM_REQ_OR_INCORRECT", ("current_account_number",)),
        ("6B-T-Mobile Number Transfer PIN required or incorrect", ("current_account_password",)),
        ("8C-PASS_PIN_REQ_OR_INCORRECT", ("current_account_password",)),
        ("8D-ZIP_CODE_REQ_OR_INCORRECT", ("current_billing_address",)),
        ("1M-REQ_DATE_LESS_PUB_INT", ("port_in_date",)),
        ("1N-DATE_AND_TIME_NOT_MET", ("port_in_date",)),
        ("1P-SUBSCRIBER NAME MISMATCH", ("subscriber_name",)),
        ("1P-END_USER_NAME_DOES_NOT_MATCH", ("subscriber_name",)),
        ("1P-SEE REMARKS", ()),
        ("1P-RENAMED ACCOUNT", ()),  # "name" inside a word is not a name mismatch
        ("6A-MDN_NOT_FOUND", ()),
        ("8B-SSN_TAX_ID_REQ_OR_INCORRECT", ()),
        ("6P-REMOVE NUMBER LOCK ON VERIZON ACCOUNT", ()),
        ("8Y-SOMETHING", ()),
        ("GENS-0041-No Port-In request found", ()),
        ("Number is not portable", ()),
    ],
)
def test_update_fields_name_the_keywords_that_fix_the_code(
    text: str, fields: tuple[str, ...]
) -> None:
    decoded = tg.decode_carrier_message(text)
    assert decoded is not None
    assert decoded.update_fields == fields


def test_update_fields_are_update_port_in_keywords() -> None:
    keywords = set(inspect.signature(tg.TelegentClient.update_port_in).parameters)
    for code in ("1M", "1N", "6B", "8A", "8C", "8D"):
        decoded = tg.decode_carrier_message(f"{code}-X")
        assert decoded is not None and decoded.update_fields
        assert set(decoded.update_fields) <= keywords


@pytest.mark.parametrize(
    "text",
    [
        "Port rejected: 8A-ACCOUNT_NUM_REQ_OR_INCORRECT",
        "Port rejected (8A - ACCOUNT_NUM_REQ_OR_INCORRECT)",
        "carrier said 8A: ACCOUNT_NUM_REQ_OR_INCORRECT",
    ],
)
def test_a_code_after_some_words_is_decoded(text: str) -> None:
    decoded = tg.decode_carrier_message(text)
    assert decoded is not None
    assert decoded.code == "8A"
    assert decoded.reason.startswith("ACCOUNT_NUM_REQ_OR_INCORRECT")
    assert decoded.update_fields == ("current_account_number",)
    assert decoded.raw == text


@pytest.mark.parametrize(
    "text",
    [
        "Works with iPhone 6S-compatible SIMs only",  # a lower-case word after the dash
        "Needs a 5G-capable device",  # group 5 is no porting group
        "Error in step 8a-x",  # a later code's letter is upper-case
        "ref AB8A-ACCOUNT",  # glued to a word
    ],
)
def test_prose_with_digit_letter_pairs_is_free_text(text: str) -> None:
    decoded = tg.decode_carrier_message(text)
    assert decoded is not None
    assert decoded.code is None


def test_every_code_of_a_message_in_order() -> None:
    text = "8A-ACCOUNT_NUM_REQ_OR_INCORRECT; 8C-PASS_PIN_REQ_OR_INCORRECT, 1M-REQ_DATE_LESS_PUB_INT"
    errors = tg.decode_carrier_messages(text)
    assert [e.code for e in errors] == ["8A", "8C", "1M"]
    assert [e.reason for e in errors] == [
        "ACCOUNT_NUM_REQ_OR_INCORRECT",
        "PASS_PIN_REQ_OR_INCORRECT",
        "REQ_DATE_LESS_PUB_INT",
    ]
    assert [e.update_fields for e in errors] == [
        ("current_account_number",),
        ("current_account_password",),
        ("port_in_date",),
    ]
    assert all(e.raw == text for e in errors)
    assert tg.decode_carrier_message(text) == errors[0]


def test_a_bare_later_code_gets_its_catalogue_name() -> None:
    errors = tg.decode_carrier_messages("Port rejected: 8A-; 8D-")
    assert [(e.code, e.reason) for e in errors] == [
        ("8A", "ACCOUNT_NUM_REQ_OR_INCORRECT"),
        ("8D", "ZIP_CODE_REQ_OR_INCORRECT"),
    ]


def test_order_carries_every_code_and_the_first_as_carrier_error() -> None:
    body = {
        "OrderId": "JNOID-1",
        "OrderStatus": "Rejected",
        "OrderStatusMessage": "Port rejected: 8A-ACCOUNT_NUM_REQ_OR_INCORRECT; 8C-PIN",
    }
    order = decode_order(200, json.dumps(body).encode())
    assert [e.code for e in order.carrier_errors] == ["8A", "8C"]
    assert order.carrier_error == order.carrier_errors[0]
    pending = decode_order(200, json.dumps({**body, "OrderStatus": "Submitted"}).encode())
    assert pending.carrier_errors == () and pending.carrier_error is None


def test_many_codes_decode_in_linear_time() -> None:
    text = "8A-X; " * 20_000 + "8A-" + "-" * 100_000 + " " * 100_000
    errors = tg.decode_carrier_messages(text)
    assert len(errors) == 20_001


@given(st.text(max_size=200))
def test_plural_is_total_and_agrees_with_the_singular(text: str) -> None:
    errors = tg.decode_carrier_messages(text)
    assert (errors[0] if errors else None) == tg.decode_carrier_message(text)
    assert bool(errors) == bool(text.strip())
    for error in errors:
        assert error.raw == text
        assert error.code is None or error.code in text.upper()
        assert isinstance(error.update_fields, tuple)
