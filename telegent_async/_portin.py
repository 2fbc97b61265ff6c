"""Port-in update and cancel: request bodies, their checks, and the answers (pure, no I/O).

`update_port_in` keywords map to Telegent's JSON names here, values are checked before any
request (a bad one is a `ValueError`/`TypeError` that never quotes a secret), and the answers
decode into `PortInUpdate`/`PortInCancel`. The account number and password are secrets: an
error answer may quote them back, so `redact` masks them in every body before anything reads
it (error messages, logs, `raw`).
"""

from __future__ import annotations

import json
import re
import types
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any, Final, TypeVar

import attrs

__all__ = [
    "CANCEL_PATH",
    "JSON_NAMES",
    "MASK",
    "SECRET_FIELDS",
    "UPDATE_PATH",
    "BillingAddress",
    "PortInCancel",
    "PortInUpdate",
    "cancel_body",
    "checked_day",
    "checked_text",
    "decode_answer",
    "mask_secrets",
    "port_in_date",
    "redact",
    "secrets_of",
    "update_body",
]

UPDATE_PATH: Final = "/numbers/portin/update"
CANCEL_PATH: Final = "/numbers/portin/cancel"

#: `update_port_in` keyword -> Telegent's JSON name, in the order the docs list them.
JSON_NAMES: Final[Mapping[str, str]] = types.MappingProxyType(
    {
        "current_carrier_name": "CurrentCarrierName",
        "current_account_number": "CurrentAccountNumber",
        "current_account_password": "CurrentAccountPassword",
        "port_in_date": "PortInDate",
        "target_portin_classification": "TargetPortinClassification",
        "subscriber_name": "SubscriberName",
        "iccid": "ICCID",
        "current_billing_address": "CurrentBillingAddress",
    }
)
#: JSON fields whose values are never shown: not in repr, logs, errors or the CLI's output.
#: (Every call's: the port-in update's, and the creates' `PortOutPIN`.)
SECRET_FIELDS: Final = frozenset({"CurrentAccountNumber", "CurrentAccountPassword", "PortOutPIN"})
MASK: Final = "***"
#: Longer than any name, address line or account detail a carrier keeps.
MAX_FIELD_LENGTH: Final = 200


def checked_text(name: str, value: object, *, secret: bool = False) -> str:
    """A non-blank printable string; a secret's value is never quoted in the error."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{name} must not be empty or blank")
    if len(value) > MAX_FIELD_LENGTH:
        raise ValueError(f"{name} is longer than {MAX_FIELD_LENGTH} characters")
    if not value.isprintable():
        shown = "" if secret else f": {value[:60]!r}"
        raise ValueError(f"{name} contains control or non-printable characters{shown}")
    return value


def _optional_text(name: str) -> Any:
    def check(_instance: object, attribute: attrs.Attribute[str | None], value: object) -> None:
        if value is not None:
            checked_text(f"{name}.{attribute.name}", value)

    return check


@attrs.frozen
class BillingAddress:
    """`CurrentBillingAddress` of an update: the billing address on the losing carrier's bill.

    Give only the lines being corrected (an 8D rejection needs the ZIP); at least one.

    Attributes:
        street1: The first street line, or None.
        street2: The second street line, or None.
        city: The city, or None.
        state: The state, or None.
        zip: The ZIP code, or None.
    """

    street1: str | None = attrs.field(default=None, validator=_optional_text("BillingAddress"))
    street2: str | None = attrs.field(default=None, validator=_optional_text("BillingAddress"))
    city: str | None = attrs.field(default=None, validator=_optional_text("BillingAddress"))
    state: str | None = attrs.field(default=None, validator=_optional_text("BillingAddress"))
    zip: str | None = attrs.field(default=None, validator=_optional_text("BillingAddress"))

    def __attrs_post_init__(self) -> None:
        if not self.as_json():
            raise ValueError(
                "BillingAddress needs at least one of street1, street2, city, state, zip"
            )

    def as_json(self) -> dict[str, str]:
        """Telegent's `Street1`...`Zip` object, without the lines not given."""
        lines = attrs.asdict(self)
        return {name.capitalize(): value for name, value in lines.items() if value is not None}


@attrs.frozen
class PortInUpdate:
    """The answer to an update.

    Attributes:
        order_id: The order updated.
        status: Telegent's `Status` (`"Updated"`), or None.
        message: Telegent's `Message`, or None.
        raw: The JSON object as received.
    """

    order_id: str
    status: str | None
    message: str | None
    raw: Mapping[str, Any] = attrs.field(factory=dict, hash=False, repr=False)


@attrs.frozen
class PortInCancel:
    """The answer to a cancel. Its shape is not published: `raw` keeps the whole object.

    When the order was already cancelled (a retry after the first try went through), `status`
    is the order's status as looked up (`"Cancelled"`) and `raw` is that order.

    Attributes:
        order_id: The order cancelled.
        status: The answer's status, or None.
        message: The answer's message (or the refusal's), or None.
        raw: The JSON object as received.
    """

    order_id: str
    status: str | None
    message: str | None
    raw: Mapping[str, Any] = attrs.field(factory=dict, hash=False, repr=False)


def checked_day(name: str, value: object, form: str = "%Y-%m-%d") -> date:
    """A `date`, or a string of a real date written in `form` (`"%m/%d/%Y"` ...). A
    `datetime` is refused (`TypeError`): Telegent takes a day, and its time would be dropped
    silently."""
    if isinstance(value, datetime):
        raise TypeError(
            f"{name} must be a datetime.date, not a datetime: Telegent takes a day, and "
            f"the time would be dropped (pass {value.strftime(form)!r} or value.date())"
        )
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a datetime.date or a str, not {type(value).__name__}")
    try:
        if len(value) != 10:
            raise ValueError
        return datetime.strptime(value, form).date()
    except ValueError:
        shown = form.replace("%Y", "YYYY").replace("%m", "MM").replace("%d", "DD")
        raise ValueError(
            f"{name} must be a real date written {shown}, got {value[:40]!r}"
        ) from None


def port_in_date(value: object, today: date) -> str:
    """`port_in_date` as Telegent takes it (`YYYY-MM-DD`): a `date` or such a string, not
    before `today` (a `datetime` is refused, see `checked_day`)."""
    day = checked_day("port_in_date", value)
    if day < today:
        raise ValueError(f"port_in_date {day.isoformat()} is in the past (today: {today})")
    return day.isoformat()


def _iccid(value: object) -> str:
    text = checked_text("iccid", value)
    if not (text.isascii() and text.isdigit() and 18 <= len(text) <= 22):
        raise ValueError(f"iccid must be 18 to 22 digits, got {text[:40]!r}")
    return text


def _field_value(keyword: str, value: object, today: date) -> object:
    if keyword == "port_in_date":
        return port_in_date(value, today)
    if keyword == "iccid":
        return _iccid(value)
    if keyword == "current_billing_address":
        if not isinstance(value, BillingAddress):
            raise TypeError(
                f"current_billing_address must be a BillingAddress, not {type(value).__name__}"
            )
        return value.as_json()
    return checked_text(keyword, value, secret=JSON_NAMES[keyword] in SECRET_FIELDS)


def update_body(order_id: str, fields: Mapping[str, object], today: date) -> dict[str, Any]:
    """The JSON body of an update: `OrderId` (checked by the caller) and only the fields
    given (not None), checked (`today`: the earliest `port_in_date` allowed)."""
    body: dict[str, Any] = {"OrderId": order_id}
    for keyword, json_name in JSON_NAMES.items():
        value = fields.get(keyword)
        if value is not None:
            body[json_name] = _field_value(keyword, value, today)
    if len(body) == 1:
        raise ValueError(
            "update_port_in needs at least one field to correct besides the order ID: "
            + ", ".join(JSON_NAMES)
        )
    return body


def cancel_body(order_id: str) -> dict[str, Any]:
    """The JSON body of a cancel (`order_id` checked by the caller)."""
    return {"OrderId": order_id}


def secrets_of(body: Mapping[str, Any]) -> tuple[str, ...]:
    """The secret values a request body carries, to be masked in whatever comes back."""
    return tuple(body[name] for name in sorted(SECRET_FIELDS) if name in body)


def mask_secrets(body: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a request body fit to show: secret values replaced by `MASK`."""
    return {name: MASK if name in SECRET_FIELDS else value for name, value in body.items()}


#: What a short secret (a 4-digit PIN) must not be masked inside: Telegent's IDs and E.164
#: numbers. `JNUOID-...-1234-...` or `+12815551234` with a PIN of 1234 would otherwise come
#: back mangled, and the SDK would hand out an order ID that does not exist.
_KEPT_WHOLE = (
    rb"(?:JNUOID|JNOID|JNID|NID|TSUID|AID|WID|MRID|CRID|DID)-[0-9A-Za-z-]{4,}|\+[0-9]{7,15}"
)


def redact(body: bytes, secrets: tuple[str, ...]) -> bytes:
    """`body` with every secret masked wherever it appears (inside other words too) but inside
    an ID or a phone number (`_KEPT_WHOLE`).

    A JSON body is masked in its parsed strings and written again: a server may escape a
    secret in ways Python's `json.dumps` does not (ASP.NET writes `+` as `\\u002B` and
    upper-case hex), which a byte search for the escaped forms misses and a parser turns back
    into the clear secret. Any other body is masked as bytes. Run on whole bodies before
    anything parses or truncates them: a value cut in half by an excerpt could no longer be
    found.
    """
    if not secrets:
        return body
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return _masked_bytes(body, secrets)
    alternatives = "|".join(re.escape(s) for s in sorted(set(secrets), key=len, reverse=True))
    pattern = re.compile("(" + alternatives + ")|" + _KEPT_WHOLE.decode())
    return json.dumps(_masked(value, pattern), ensure_ascii=False, separators=(",", ":")).encode()


def _masked_bytes(body: bytes, secrets: tuple[str, ...]) -> bytes:
    """A body that is not JSON, masked raw and in the forms JSON writes (escaped or not)."""
    forms = {
        form.encode()
        for secret in secrets
        for form in (secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1])
    }
    alternatives = b"|".join(re.escape(form) for form in sorted(forms, key=len, reverse=True))
    pattern = re.compile(b"(" + alternatives + b")|" + _KEPT_WHOLE)
    return pattern.sub(lambda m: MASK.encode() if m.group(1) else m.group(0), body)


def _masked(value: Any, pattern: re.Pattern[str]) -> Any:
    """`value` (parsed JSON) with `pattern`'s secrets masked in every string, keys included."""
    if isinstance(value, str):
        return pattern.sub(lambda m: MASK if m.group(1) else m.group(0), value)
    if isinstance(value, dict):
        return {_masked(k, pattern): _masked(v, pattern) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(item, pattern) for item in value]
    return value


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


_Answer = TypeVar("_Answer", PortInUpdate, PortInCancel)


def decode_answer(kind: type[_Answer], data: object, order_id: str) -> _Answer:
    """A `PortInUpdate`/`PortInCancel` from the JSON value of a 2xx answer, kept in `raw`.

    The update answers `{"OrderId", "Status", "Message"}`; the cancel's shape is not published,
    so its status is also looked for as `OrderStatus`. `ValueError` when it is not an object.
    """
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object answering the {kind.__name__}")
    return kind(
        _str_or_none(data.get("OrderId")) or order_id,
        _str_or_none(data.get("Status", data.get("OrderStatus"))),
        _str_or_none(data.get("Message")),
        data,
    )
