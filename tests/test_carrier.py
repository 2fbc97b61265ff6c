"""Tests for the sans-I/O carrier-code decoder."""

from __future__ import annotations

import time

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from telegent_async._carrier import CarrierCategory, CarrierError, decode_carrier_message

UPDATE = "/v1.0/numbers/portin/update"


def _decode(text: str) -> CarrierError:
    err = decode_carrier_message(text)
    assert err is not None
    return err


def test_seed_8a_account_number() -> None:
    err = _decode("8A-ACCOUNT_NUM_REQ_OR_INCORRECT")
    assert err.code == "8A"
    assert err.reason == "ACCOUNT_NUM_REQ_OR_INCORRECT"
    assert err.category is CarrierCategory.CUSTOMER_VALIDATION
    assert err.fixable_by_update is True
    assert "account number" in err.remedy
    assert UPDATE in err.remedy
    assert err.raw == "8A-ACCOUNT_NUM_REQ_OR_INCORRECT"


def test_seed_6p_number_lock() -> None:
    err = _decode("6P-REMOVE NUMBER LOCK ON VERIZON ACCOUNT")
    assert err.code == "6P"
    assert err.reason == "REMOVE NUMBER LOCK ON VERIZON ACCOUNT"
    assert err.category is CarrierCategory.NUMBER_OR_REQUEST
    assert err.fixable_by_update is True
    assert "number lock" in err.remedy.lower()
    assert UPDATE in err.remedy


@pytest.mark.parametrize(
    ("code", "category", "fixable", "remedy_word"),
    [
        ("1M", CarrierCategory.DUE_DATE_OR_OTHER, True, "due date"),
        ("1N", CarrierCategory.DUE_DATE_OR_OTHER, True, "due date"),
        ("1P", CarrierCategory.DUE_DATE_OR_OTHER, True, "reason text"),
        ("6A", CarrierCategory.NUMBER_OR_REQUEST, False, "cancel"),
        ("6B", CarrierCategory.NUMBER_OR_REQUEST, True, "transfer pin"),
        ("6P", CarrierCategory.NUMBER_OR_REQUEST, True, "number lock"),
        ("8A", CarrierCategory.CUSTOMER_VALIDATION, True, "account number"),
        ("8B", CarrierCategory.CUSTOMER_VALIDATION, False, "ssn"),  # no update field: support
        ("8C", CarrierCategory.CUSTOMER_VALIDATION, True, "pin"),
        ("8D", CarrierCategory.CUSTOMER_VALIDATION, True, "zip"),
    ],
)
def test_every_catalogue_rcode(
    code: str, category: CarrierCategory, fixable: bool, remedy_word: str
) -> None:
    err = _decode(f"{code}-SOME CARRIER TEXT")
    assert err.code == code
    assert err.reason == "SOME CARRIER TEXT"
    assert err.category is category
    assert err.fixable_by_update is fixable
    assert remedy_word in err.remedy.lower()
    assert "not in this SDK's catalogue" not in err.description
    if fixable:
        assert UPDATE in err.remedy
    assert ("/v1.0/numbers/portin/cancel" in err.remedy) is (code == "6A")


def test_bare_known_code_uses_catalogue_name_as_reason() -> None:
    err = _decode("8D")
    assert err.code == "8D"
    assert err.reason == "ZIP_CODE_REQ_OR_INCORRECT"


def test_6b_tmobile_transfer_pin() -> None:
    err = _decode("6B-T-Mobile Number Transfer PIN required or incorrect")
    assert err.code == "6B"
    assert err.reason == "T-Mobile Number Transfer PIN required or incorrect"
    assert err.fixable_by_update is True
    assert "T-Mobile" in err.description
    assert "Transfer PIN" in err.remedy


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("GENS-0041", "No Port-In request found"),
        ("GENS-0041-No Port-In request found", "No Port-In request found"),
        ("GENS-0041: No Port-In request found", "No Port-In request found"),
        ("gens-0041 no port-in request found", "no port-in request found"),
    ],
)
def test_gens_0041(text: str, reason: str) -> None:
    err = _decode(text)
    assert err.code == "GENS-0041"
    assert err.reason == reason
    assert err.category is CarrierCategory.TELEGENT
    assert err.fixable_by_update is False
    assert "stuck on Telegent's side" in err.remedy and "ticket" in err.remedy


def test_unknown_telegent_code() -> None:
    err = _decode("GENS-9999-Something odd")
    assert err.code == "GENS-9999"
    assert err.reason == "Something odd"
    assert err.category is CarrierCategory.TELEGENT
    assert err.fixable_by_update is False


@pytest.mark.parametrize(
    ("text", "code", "category", "fixable"),
    [
        ("6Z-SOMETHING", "6Z", CarrierCategory.NUMBER_OR_REQUEST, False),
        ("1Q-SOMETHING", "1Q", CarrierCategory.DUE_DATE_OR_OTHER, True),
        ("8Y-SOMETHING", "8Y", CarrierCategory.CUSTOMER_VALIDATION, True),
    ],
)
def test_unknown_letter_known_digit(
    text: str, code: str, category: CarrierCategory, fixable: bool
) -> None:
    err = _decode(text)
    assert err.code == code
    assert err.reason == "SOMETHING"
    assert err.category is category
    assert err.fixable_by_update is fixable
    assert code in err.description
    assert category.value in err.description
    assert err.remedy


def test_unknown_digit() -> None:
    err = _decode("3Q-WHATEVER HAPPENED")
    assert err.code == "3Q"
    assert err.reason == "WHATEVER HAPPENED"
    assert err.category is CarrierCategory.UNKNOWN
    assert err.fixable_by_update is False
    assert err.remedy.startswith("Read the message")


def test_lowercase_code_is_normalised() -> None:
    err = _decode("8a-account_num_req_or_incorrect")
    assert err.code == "8A"
    assert err.reason == "account_num_req_or_incorrect"
    assert err.category is CarrierCategory.CUSTOMER_VALIDATION
    assert "account number" in err.remedy


@pytest.mark.parametrize(
    "text",
    [
        "  8A-ACCOUNT_NUM_REQ_OR_INCORRECT  ",
        "\t8A-ACCOUNT_NUM_REQ_OR_INCORRECT\n",
        "8A - ACCOUNT_NUM_REQ_OR_INCORRECT",
        "8A:ACCOUNT_NUM_REQ_OR_INCORRECT",
        "8A : ACCOUNT_NUM_REQ_OR_INCORRECT",
        "8A ACCOUNT_NUM_REQ_OR_INCORRECT",
        "8A\tACCOUNT_NUM_REQ_OR_INCORRECT",
        "8A\u2013ACCOUNT_NUM_REQ_OR_INCORRECT",
        "\r\n 8A-\n ACCOUNT_NUM_REQ_OR_INCORRECT \r\n",
    ],
)
def test_odd_whitespace_and_separators(text: str) -> None:
    err = _decode(text)
    assert err.code == "8A"
    assert err.reason == "ACCOUNT_NUM_REQ_OR_INCORRECT"
    assert err.raw == text


@pytest.mark.parametrize(
    "text",
    [
        "Number is not portable",
        "8AB-not a code",
        "8A_SOMETHING",
        "3D printing is not a reason",  # unknown digit needs a real separator
        "COVID-19 delays",  # too few digits for a Telegent code
        "Ошибка: номер не найден",
    ],
)
def test_free_text(text: str) -> None:
    err = _decode(text)
    assert err.code is None
    assert err.reason == text
    assert err.category is CarrierCategory.UNKNOWN
    assert err.fixable_by_update is False
    assert err.remedy.startswith("Read the message")
    assert err.raw == text


def test_non_ascii_reason_kept() -> None:
    err = _decode("6P-número bloqueado 🔒")
    assert err.code == "6P"
    assert err.reason == "número bloqueado 🔒"


@pytest.mark.parametrize("text", [None, "", " ", "\t\n\r ", "\u00a0\u2003"])
def test_blank_is_none(text: str | None) -> None:
    assert decode_carrier_message(text) is None


def test_result_is_frozen() -> None:
    err = _decode("8A-X")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        err.code = "8B"  # type: ignore[misc]


def test_very_long_text_is_linear_and_kept_verbatim() -> None:
    # Shapes that would hurt a backtracking regex: long runs of whitespace and separators.
    texts = [
        "8A" + " " * 200_000 + "x",
        "8A" + "-" * 200_000,
        "GENS-" + "0" * 200_000,
        "a" * 200_000 + "!",
        "8A-" + "ACCOUNT " * 50_000,
    ]
    start = time.perf_counter()
    for text in texts:
        err = _decode(text)
        assert err.raw == text
    assert time.perf_counter() - start < 1.0
    assert _decode(texts[4]).reason == texts[4][3:].strip()


@given(st.text())
def test_never_raises(text: str) -> None:
    err = decode_carrier_message(text)
    if text.strip():
        assert isinstance(err, CarrierError)
        assert err.raw == text
        assert isinstance(err.category, CarrierCategory)
        assert err.description
        assert err.remedy
    else:
        assert err is None


@given(
    st.sampled_from(["1", "6", "8"]),
    st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
    st.text(),
)
def test_any_rcode_with_hyphen_decodes_its_code(digit: str, letter: str, tail: str) -> None:
    err = _decode(f"{digit}{letter.lower()}-{tail}")
    assert err.code == f"{digit}{letter}"
    assert err.category is not CarrierCategory.UNKNOWN
