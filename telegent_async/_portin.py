"""Port-in update and cancel: request bodies, their checks, and the answers (pure, no I/O).

`update_port_in` keywords map to Telegent's JSON names here, values are checked before any
request (a bad one is a `ValueError`/`TypeError` that never quotes a secret), and the answers
decode into `PortInUpdate`/`PortInCancel`. The account number and password are secrets: an
error answer may quote them back, so `redact` masks them in every body before anything reads
it (error messages, logs, `raw`).
"""

from __future__ import annotations

import html
import json
import re
import types
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any, Final, TypeVar

import attrs

from ._secrets import MASK, SECRET_FIELDS, scrub

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
        raw: The JSON object as received, credential-named fields masked at any depth.
    """

    order_id: str
    status: str | None
    message: str | None
    raw: Mapping[str, Any] = attrs.field(factory=dict, converter=scrub, hash=False, repr=False)


@attrs.frozen
class PortInCancel:
    """The answer to a cancel. Its shape is not published: `raw` keeps the whole object.

    When the order was already cancelled (a retry after the first try went through), `status`
    is the order's status as looked up (`"Cancelled"`) and `raw` is that order.

    Attributes:
        order_id: The order cancelled.
        status: The answer's status, or None.
        message: The answer's message (or the refusal's), or None.
        raw: The JSON object as received, credential-named fields masked at any depth.
    """

    order_id: str
    status: str | None
    message: str | None
    raw: Mapping[str, Any] = attrs.field(factory=dict, converter=scrub, hash=False, repr=False)


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


#: Secrets shorter than this (a 4-digit PIN) are masked only where they stand as a whole word
#: (no letter or digit right before or after): inside a longer run of letters and digits (an
#: ICCID, a ZIP code, a QR code) so short a value is there by chance, and masking it would
#: garble that value and show where the secret's characters are (PIN `0123` in ICCID
#: `8901234...` -> `89***4...`). A longer secret is masked wherever it appears.
WHOLE_WORD_BELOW: Final = 8
#: Values a secret is not masked inside: Telegent's IDs, E.164 numbers and timestamps. An
#: occurrence strictly inside one is chance (an occurrence that is the whole value is the
#: secret): `JNUOID-...-1234-...`, `+12815551234` or `2025-10-01T12:34:00` with a PIN of 1234
#: or 2025 would otherwise come back mangled (an order ID that does not exist, a date that no
#: longer parses) with the PIN readable from what is left around the mask.
_KEPT_WHOLE = re.compile(
    r"(?:JNUOID|JNOID|JNID|NID|TSUID|AID|WID|MRID|CRID|DID)-[0-9A-Za-z-]{4,}|\+[0-9]{7,15}"
    r"|[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[T ][0-9:.]+(?:Z|[+-][0-9:]{4,5})?)?"
    r"|[0-9]{2}/[0-9]{2}/[0-9]{4}(?: [0-9:]+(?: ?[AP]M)?)?"
)


def redact(body: bytes, secrets: tuple[str, ...]) -> bytes:
    """`body` with every secret masked wherever it appears (a short one as a whole word only,
    `WHOLE_WORD_BELOW`) but strictly inside an ID, a phone number or a timestamp
    (`_KEPT_WHOLE`).

    A JSON body is masked in its parsed strings and written again: a server may escape a
    secret in ways Python's `json.dumps` does not (ASP.NET writes `+` as `\\u002B` and
    upper-case hex), which a byte search for the escaped forms misses and a parser turns back
    into the clear secret. Any other body is masked as text, in the forms JSON and HTML write
    (`_forms`), and a body cut off mid-secret has that tail masked too. Run on whole bodies
    before anything parses or truncates them: a value cut in half by an excerpt could no
    longer be found. A body with nothing to mask is returned as it is (the same object).
    """
    if not secrets:
        return body
    try:
        value = json.loads(body)
        masked = _masked(value, _pattern({secret: len(secret) for secret in secrets}))
        if masked == value:
            return body
        return json.dumps(masked, ensure_ascii=False, separators=(",", ":")).encode()
    except (ValueError, RecursionError):  # not JSON, or too deep to walk
        forms = _forms(secrets)
        text = body.decode("utf-8", "surrogateescape")
        cut = _cut_off(_masked_text(text, _pattern(forms)), forms)
        return body if cut == text else cut.encode("utf-8", "surrogateescape")


def _forms(secrets: tuple[str, ...]) -> dict[str, int]:
    """Each way a body that is not JSON may write a secret (raw, JSON-escaped, HTML-escaped),
    with the length of the secret it writes."""
    return {
        form: len(secret)
        for secret in secrets
        for form in (
            secret,
            json.dumps(secret)[1:-1],
            json.dumps(secret, ensure_ascii=False)[1:-1],
            html.escape(secret),
            html.escape(secret, quote=False),
        )
    }


def _pattern(forms: Mapping[str, int]) -> re.Pattern[str]:
    """A search for `forms` (each with its secret's length), the longest first."""
    return re.compile(
        "|".join(
            re.escape(form)
            if length >= WHOLE_WORD_BELOW
            else rf"(?<![^\W_]){re.escape(form)}(?![^\W_])"
            for form, length in sorted(forms.items(), key=lambda item: len(item[0]), reverse=True)
        )
    )


def _masked_text(text: str, pattern: re.Pattern[str]) -> str:
    """`text` with `pattern`'s matches masked, but those strictly inside `_KEPT_WHOLE`."""
    kept: list[tuple[int, int]] | None = None

    def mask(match: re.Match[str]) -> str:
        nonlocal kept
        if kept is None:  # looked for only once a secret is found
            kept = [found.span() for found in _KEPT_WHOLE.finditer(text)]
        start, end = match.span()
        inside = any(a <= start and end <= b and b - a > end - start for a, b in kept)
        return match.group() if inside else MASK

    return pattern.sub(mask, text)


def _cut_off(text: str, forms: Mapping[str, int]) -> str:
    """`text` (a whole body) with a tail that is a secret cut off masked: its first half or
    more, at least 2 characters (a short secret's starting a word)."""
    for form, length in forms.items():
        for cut in range(len(form) - 1, max(2, (len(form) + 1) // 2) - 1, -1):
            head = len(text) - cut
            if text.endswith(form[:cut]) and (
                length >= WHOLE_WORD_BELOW or head == 0 or not text[head - 1].isalnum()
            ):
                return text[:head] + MASK
    return text


def _masked(value: Any, pattern: re.Pattern[str]) -> Any:
    """`value` (parsed JSON) with `pattern`'s secrets masked in every string, keys included."""
    if isinstance(value, str):
        return _masked_text(value, pattern)
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
