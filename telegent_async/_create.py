"""Calls that create an order: request bodies, their checks, and the answers (pure, no I/O).

Field names are Telegent's (REFERENCE.md, "Calls that create an order"). Every value is checked
before any request: a bad one is a `ValueError`/`TypeError` that never quotes a secret. The
secrets (`_secrets.SECRET_FIELDS`: `CurrentAccountNumber`, `CurrentAccountPassword`,
`PortOutPIN`) are masked in every answer before anything reads it (`_portin.redact`), so they
reach no error, log or `raw`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Final

import attrs

from ._portin import BillingAddress, checked_day, checked_text
from ._request import Creates
from ._secrets import scrub
from ._timing import parse_timestamp

__all__ = [
    "ELIGIBILITY_PATH",
    "PORTIN_PATH",
    "PORTOUT_PATH",
    "PROVISION_PATH",
    "STATUS_PATH",
    "PortInEligibility",
    "SubmittedOrder",
    "eligibility_body",
    "eligibility_from_json",
    "port_out_body",
    "provision_body",
    "status_change_body",
    "submit_body",
    "submitted_from_json",
]

ELIGIBILITY_PATH: Final = "/numbers/portin/eligibility"
PORTIN_PATH: Final = "/numbers/portin"
PROVISION_PATH: Final = "/numbers/provision"
PORTOUT_PATH: Final = "/numbers/portout"
STATUS_PATH: Final = "/numbers/status"

CLASSIFICATIONS: Final = ("mvno", "iot")
MESSAGE_TYPES: Final = ("a2p", "p2p")
PRODUCT_TYPES: Final = ("Sms-Only", "Data-Only", "Sms+Data", "Sms+Data+Voice")
STATUS_CHANGES: Final = ("activate", "cancel", "swap", "replace", "park", "swap-sim")
MAX_NUMBERS: Final = 1000

_E164 = re.compile(r"\+[1-9][0-9]{1,14}")
_DIGITS = {"AreaCode": 3, "ZipCode": 5}
_PREFIXED = {
    "MessageRouteId": "MRID-",
    "VoiceRouteId": "CRID-",
    "AssignedSubscriberId": "TSUID-",
    "AccountId": "AID-",
}


@attrs.frozen
class SubmittedOrder:
    """The answer to a call that creates an order: wait on `order_id` as on any other.

    Attributes:
        order_id: The new order's ID (`JNOID-...`/`JNUOID-...`).
        status: Its status as Telegent wrote it (`Status` or `OrderStatus`: `"Pending"`, or
            `"Complete"` for a provision that finished at once), or None.
        order_date: `OrderDate` as an aware datetime, or None.
        raw: The JSON object as received (secrets masked, credential-named fields at any
            depth).
    """

    order_id: str
    status: str | None
    order_date: datetime | None
    raw: Mapping[str, Any] = attrs.field(factory=dict, converter=scrub, hash=False, repr=False)


@attrs.frozen
class PortInEligibility:
    """Whether a number can be ported in (`check_port_in_eligibility`); no order is made.

    Attributes:
        phone_number: The number checked.
        eligible: Telegent's `Eligible`.
        current_carrier: The carrier that holds the number now, or None.
        number_type: Telegent's `NumberType` (wireless, landline ...), or None.
        message: Telegent's `Message` (why not, or that a port-in is already active), or None.
        raw: The JSON object as received.
    """

    phone_number: str
    eligible: bool
    current_carrier: str | None
    number_type: str | None
    message: str | None
    raw: Mapping[str, Any] = attrs.field(factory=dict, hash=False, repr=False)


def phone_number(name: str, value: object) -> str:
    """An E.164 number (`+12815551234`)."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    if not _E164.fullmatch(value):
        raise ValueError(f"{name} must be an E.164 number such as +12815551234, got {value[:40]!r}")
    return value


def _choice(name: str, value: object, choices: tuple[str, ...]) -> str:
    """One of `choices`, matched case-insensitively, sent as Telegent spells it."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    for choice in choices:
        if value.casefold() == choice.casefold():
            return choice
    raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value[:40]!r}")


def _flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, not {type(value).__name__}")
    return value


def _optional(body: dict[str, Any], json_name: str, value: object) -> None:
    """Add a checked optional field (digits, prefixed IDs, ICCID, text) when it is given."""
    if value is None:
        return
    text = checked_text(json_name, value)
    digits = _DIGITS.get(json_name)
    prefix = _PREFIXED.get(json_name)
    if digits is not None and not (text.isascii() and text.isdigit() and len(text) == digits):
        raise ValueError(f"{json_name} must be {digits} digits, got {text[:40]!r}")
    if prefix is not None and not text.startswith(prefix):
        raise ValueError(f"{json_name} must start with {prefix!r}, got {text[:40]!r}")
    if json_name == "ICCID" and not (text.isascii() and text.isdigit() and 18 <= len(text) <= 22):
        raise ValueError(f"ICCID must be 18 to 22 digits, got {text[:40]!r}")
    body[json_name] = text


def eligibility_body(number: object, target_classification: object) -> dict[str, Any]:
    """`POST /numbers/portin/eligibility`: `PhoneNumber`, `TargetClassification`."""
    return {
        "PhoneNumber": phone_number("phone_number", number),
        "TargetClassification": _choice(
            "target_classification", target_classification, CLASSIFICATIONS
        ),
    }


def submit_body(
    number: object,
    *,
    current_carrier_name: object,
    current_account_number: object,
    current_account_password: object,
    current_billing_address: object,
    iccid: object = None,
    target_portin_classification: object = None,
    subscriber_name: object = None,
) -> dict[str, Any]:
    """`POST /numbers/portin`: the new port-in, every required field checked."""
    address = current_billing_address
    if not isinstance(address, BillingAddress):
        raise TypeError(
            f"current_billing_address must be a BillingAddress, not {type(address).__name__}"
        )
    missing = [
        line for line in ("street1", "city", "state", "zip") if getattr(address, line) is None
    ]
    if missing:
        raise ValueError(f"current_billing_address needs {', '.join(missing)} for a port-in")
    body: dict[str, Any] = {
        "PortInNumber": phone_number("phone_number", number),
        "CurrentCarrierName": checked_text("current_carrier_name", current_carrier_name),
        "CurrentAccountNumber": checked_text(
            "current_account_number", current_account_number, secret=True
        ),
        "CurrentAccountPassword": checked_text(
            "current_account_password", current_account_password, secret=True
        ),
        "CurrentBillingAddress": address.as_json(),
    }
    _optional(body, "ICCID", iccid)
    if target_portin_classification is not None:
        body["TargetPortinClassification"] = _choice(
            "target_portin_classification", target_portin_classification, CLASSIFICATIONS
        )
    _optional(body, "SubscriberName", subscriber_name)
    return body


def provision_body(
    *,
    number_type: object,
    message_type: object,
    voice_enabled: object,
    product_type: object,
    optional: Mapping[str, object],
) -> dict[str, Any]:
    """`POST /numbers/provision`. `optional`: the optional fields by Telegent's JSON names."""
    body: dict[str, Any] = {
        "NumberType": _choice("number_type", number_type, CLASSIFICATIONS),
        "MessageType": _choice("message_type", message_type, MESSAGE_TYPES),
        "VoiceEnabled": _flag("voice_enabled", voice_enabled),
        "ProductType": _choice("product_type", product_type, PRODUCT_TYPES),
    }
    for json_name, value in optional.items():
        if json_name in ("MessageEnabled", "DataEnabled"):
            if value is not None:
                body[json_name] = _flag(json_name, value)
        else:
            _optional(body, json_name, value)
    return body


def port_out_body(number: object, pin: object) -> dict[str, Any]:
    """`POST /numbers/portout`: `PortOutNumber`, `PortOutPIN` (a secret)."""
    return {
        "PortOutNumber": phone_number("phone_number", number),
        "PortOutPIN": checked_text("pin", pin, secret=True),
    }


def status_change_body(
    change: object,
    numbers: object,
    *,
    effective_date: object = None,
    area_code: object = None,
    zip_code: object = None,
) -> dict[str, Any]:
    """`POST /numbers/status`: `StatusChange`, `PhoneNumbers` and the optional fields."""
    if isinstance(numbers, str) or not isinstance(numbers, Iterable):
        raise TypeError("phone_numbers must be a list of E.164 numbers, not a single string")
    listed = [phone_number("phone_numbers[]", number) for number in numbers]
    if not listed or len(listed) > MAX_NUMBERS:
        raise ValueError(f"phone_numbers must hold 1 to {MAX_NUMBERS} numbers")
    body: dict[str, Any] = {
        "StatusChange": _choice("change", change, STATUS_CHANGES),
        "PhoneNumbers": listed,
    }
    if effective_date is not None:
        day = checked_day("effective_date", effective_date, "%m/%d/%Y")
        body["EffectiveDate"] = day.strftime("%m/%d/%Y")
    _optional(body, "AreaCode", area_code)
    _optional(body, "ZipCode", zip_code)
    return body


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def submitted_from_json(data: object) -> SubmittedOrder:
    """A `SubmittedOrder` from a create's 2xx answer; `ValueError` without an `OrderId`."""
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object with the new order's OrderId")
    order_id = _text(data.get("OrderId"))
    if not order_id:
        raise ValueError("the answer names no OrderId")
    status = _text(data.get("Status")) or _text(data.get("OrderStatus"))
    return SubmittedOrder(order_id, status, parse_timestamp(data.get("OrderDate")), data)


def eligibility_from_json(data: object, number: str) -> PortInEligibility:
    """A `PortInEligibility`; `ValueError` when `Eligible` is not a boolean."""
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object answering the eligibility check")
    eligible = data.get("Eligible")
    if not isinstance(eligible, bool):
        raise ValueError("the answer's Eligible is not a boolean")
    return PortInEligibility(
        _text(data.get("PhoneNumber")) or number,
        eligible,
        _text(data.get("CurrentCarrier")),
        _text(data.get("NumberType")),
        _text(data.get("Message")),
        data,
    )


def creates(call: str, body: Mapping[str, Any]) -> Creates:
    """The never-doubled rule of a create call, with how to find out whether it went through."""
    if call == "submit_port_in":
        number = body["PortInNumber"]
        check = (
            f"To find out, call check_port_in_eligibility({number!r}): a port-in already active "
            "for the number means this one was created; submit again only if there is none."
        )
    elif call == "port_out":
        check = (
            f"To find out, look for a port-out of {body['PortOutNumber']!r} in Telegent's portal "
            "(or ask support) before sending it again."
        )
    elif call == "change_number_status":
        check = (
            "To find out, look at the numbers' status in Telegent's portal (or ask support) "
            f"before sending the {body['StatusChange']!r} again."
        )
    else:
        check = (
            "To find out (no call lists orders), look for a newly provisioned number in "
            "Telegent's portal (or ask support, with the time of this request) before "
            "provisioning again."
        )
    return Creates(call, check)
