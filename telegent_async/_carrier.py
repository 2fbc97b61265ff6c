"""Decode the carrier codes found in `OrderStatusMessage` of failed port-in orders.

Failed port-ins carry a carrier response code and a text joined by a hyphen, e.g.
`8A-ACCOUNT_NUM_REQ_OR_INCORRECT` or `6P-REMOVE NUMBER LOCK ON VERIZON ACCOUNT`. The codes
are the ATIS WICIS wireless porting response codes (RCODEs: one digit, one letter) shared by
US carriers; Telegent also uses codes of its own such as `GENS-0041`.

This module is sans-I/O and pure: `decode_carrier_message` turns any string into a
`CarrierError` (or `None` for a blank one) and never raises, so it is safe to call on
every failed order.

Parsing rules (deliberately conservative, so free text is not mistaken for a code):

* Leading/trailing whitespace is ignored; `raw` keeps the message verbatim.
* An RCODE at the start of the message is a digit and an ASCII letter, not followed by
  another letter or digit, any case (`8a` is normalised to `8A`). It must be followed by
  the end of the text or a separator: `-`, `:`, an en/em dash, with optional whitespace
  around it (`8A - X`, `8A:X`). A bare whitespace separator (`8A ACCOUNT...`) is
  accepted only for the known groups 1, 6 and 8, because `3D printing...` is more likely
  prose than a code.
* A Telegent code is 2-10 ASCII letters, a hyphen and 3-10 digits (`GENS-0041`), followed by
  the end of the text, a separator or whitespace.
* The text after the code and separator, stripped, is the `reason` (kept verbatim, so an
  UPPER_SNAKE name stays as is). A known code with no text gets its catalogue name as reason.
* Further codes later in the message (`Port rejected: 8A-...`, `8A-...; 8C-...`) are
  taken more strictly, since prose follows no format: an RCODE of the groups 1, 6 or 8 with an
  upper-case letter, after a non-alphanumeric character, then `-`, `:` or a dash, then a
  reason that does not start with a lower-case letter (`iPhone 6S-compatible` is prose).
  Each code's reason runs up to the next code, without the `;`/`,`/`|` joining them.
* Anything else is free text: `code` is `None`, category `UNKNOWN`, `reason` the text.

The head is matched by a short anchored regex and later codes by one bounded pattern scanned
once, so the cost is linear in the length of the message whatever it contains.
"""

from __future__ import annotations

import enum
import re
import types
from collections.abc import Mapping

import attrs

__all__ = [
    "CarrierCategory",
    "CarrierError",
    "carrier_codes",
    "decode_carrier_message",
    "decode_carrier_messages",
]


class CarrierCategory(str, enum.Enum):
    """Group of a carrier code: tells an operator which kind of fix to look for."""

    DUE_DATE_OR_OTHER = "due date or other"
    NUMBER_OR_REQUEST = "number or request"
    CUSTOMER_VALIDATION = "customer validation"
    TELEGENT = "telegent"
    UNKNOWN = "unknown"


@attrs.frozen
class CarrierError:
    """A decoded `OrderStatusMessage`: what went wrong and what to do about it.

    Kept alongside the raw message so nothing the carrier said is lost, while callers can
    branch on `code`/`category`/`fixable_by_update` instead of parsing text.

    Attributes:
        code: The normalised code (`"8A"`, `"GENS-0041"`), or None for free text.
        reason: The text half, stripped; the whole text when there is no code.
        category: The `CarrierCategory`: which kind of fix to look for.
        description: Plain words for an operator: what the code means.
        remedy: The concrete next step.
        fixable_by_update: True when `POST /v1.0/numbers/portin/update` on the same order
            can fix it.
        raw: The message exactly as received.
        update_fields: The `update_port_in` keywords whose corrected value fixes this code
            (8A -> `("current_account_number",)`); `()` when no update field can fix it (6A,
            8B, or 6P until the subscriber lifts the lock).
    """

    code: str | None
    reason: str
    category: CarrierCategory
    description: str
    remedy: str
    fixable_by_update: bool
    raw: str
    update_fields: tuple[str, ...] = ()


@attrs.frozen
class _CodeInfo:
    """Catalogue entry for a known code."""

    name: str
    category: CarrierCategory
    description: str
    remedy: str
    fixable_by_update: bool
    update_fields: tuple[str, ...] = ()


_UPDATE = "update_port_in (POST /v1.0/numbers/portin/update) on the same OrderId"

_C = CarrierCategory


_CATALOGUE: Mapping[str, _CodeInfo] = types.MappingProxyType(
    {
        "1M": _CodeInfo(
            "REQ_DATE_LESS_PUB_INT",
            _C.DUE_DATE_OR_OTHER,
            "The requested due date is earlier than the losing carrier's published porting "
            "interval.",
            "Pick a later due date (at least the losing carrier's published interval away, "
            f"usually one or more business days), then send it as PortInDate with {_UPDATE}.",
            True,
            ("port_in_date",),
        ),
        "1N": _CodeInfo(
            "DATE_AND_TIME_NOT_MET",
            _C.DUE_DATE_OR_OTHER,
            "The losing carrier cannot meet the requested due date and time.",
            f"Pick a new due date and time further out, then send it as PortInDate with {_UPDATE}.",
            True,
            ("port_in_date",),
        ),
        "1P": _CodeInfo(
            "OTHER_REASON",
            _C.DUE_DATE_OR_OTHER,
            "The losing carrier rejected the port for another reason, given in the text.",
            "Read the reason text: it says which detail the carrier wants changed. Fix that "
            f"detail, then send it with {_UPDATE}.",
            True,
        ),
        "6A": _CodeInfo(
            "MDN_NOT_FOUND",
            _C.NUMBER_OR_REQUEST,
            "The number was not found, or is not active, at the losing carrier.",
            "Check the number is typed correctly and is active with the losing carrier named "
            "on the order. This cannot be fixed in place: cancel with "
            "POST /v1.0/numbers/portin/cancel and submit a new port-in with "
            "POST /v1.0/numbers/portin using the right number or carrier.",
            False,
        ),
        "6B": _CodeInfo(
            "TRANSFER_PIN_REQ_OR_INCORRECT",
            _C.NUMBER_OR_REQUEST,
            "The losing carrier (T-Mobile) rejected the Number Transfer PIN: missing, wrong "
            "or expired.",
            "Ask the subscriber to generate a new Number Transfer PIN in the T-Mobile app or "
            f"account (or by calling T-Mobile), then send it with {_UPDATE}.",
            True,
            ("current_account_password",),
        ),
        "6P": _CodeInfo(
            "MDN_HAS_SRV_PROV_PORT_PROTECT",
            _C.NUMBER_OR_REQUEST,
            "The number has a number lock (port protection) on the losing carrier account.",
            "Ask the subscriber to remove the number lock / port protection in their losing "
            f"carrier account (e.g. Verizon Number Lock), then resend with {_UPDATE}.",
            True,
        ),
        "8A": _CodeInfo(
            "ACCOUNT_NUM_REQ_OR_INCORRECT",
            _C.CUSTOMER_VALIDATION,
            "The account number at the losing carrier is missing or wrong.",
            "Ask the subscriber for the exact account number from the losing carrier's bill, "
            f"then send it with {_UPDATE}.",
            True,
            ("current_account_number",),
        ),
        "8B": _CodeInfo(
            "SSN_TAX_ID_REQ_OR_INCORRECT",
            _C.CUSTOMER_VALIDATION,
            "The SSN or tax ID of the losing carrier account holder is missing or wrong.",
            "Ask the account holder for the SSN (or business tax ID) exactly as registered with "
            f"the losing carrier, then send it with {_UPDATE}.",
            True,
        ),
        "8C": _CodeInfo(
            "PASS_PIN_REQ_OR_INCORRECT",
            _C.CUSTOMER_VALIDATION,
            "The account password or PIN of the losing carrier account is missing or wrong.",
            "Ask the subscriber for the account PIN or passcode of the losing carrier account "
            f"(some carriers issue a separate port-out PIN), then send it with {_UPDATE}.",
            True,
            ("current_account_password",),
        ),
        "8D": _CodeInfo(
            "ZIP_CODE_REQ_OR_INCORRECT",
            _C.CUSTOMER_VALIDATION,
            "The billing ZIP code of the losing carrier account is missing or wrong.",
            "Ask the subscriber for the billing ZIP code on the losing carrier's bill (the "
            f"billing address, not the service address), then send it with {_UPDATE}.",
            True,
            ("current_billing_address",),
        ),
        "GENS-0041": _CodeInfo(
            "No Port-In request found",
            _C.TELEGENT,
            "Telegent has no port-in request for this order or number.",
            "Check the OrderId and that you use the same account that created it. If the "
            "port-in was never created or was cancelled, submit a new one with "
            "POST /v1.0/numbers/portin.",
            False,
        ),
    }
)

# Generic text for codes not in the catalogue, by group.
_GROUP_DIGIT: Mapping[str, CarrierCategory] = types.MappingProxyType(
    {"1": _C.DUE_DATE_OR_OTHER, "6": _C.NUMBER_OR_REQUEST, "8": _C.CUSTOMER_VALIDATION}
)

_GROUP_TEXT: Mapping[CarrierCategory, tuple[str, str, bool]] = types.MappingProxyType(
    {
        _C.DUE_DATE_OR_OTHER: (
            "a problem with the requested due date, or another reason given in the text",
            "Read the reason text; usually a new due date or a corrected detail fixes it. "
            f"Send the fix with {_UPDATE}.",
            True,
        ),
        _C.NUMBER_OR_REQUEST: (
            "a problem with the number or the request itself (not found, locked, duplicate "
            "or already pending port)",
            "Read the reason text. If the number is locked, ask the subscriber to unlock it "
            f"and update with {_UPDATE}; if it is wrong, not found or a duplicate, cancel with "
            "POST /v1.0/numbers/portin/cancel and submit a new port-in.",
            False,
        ),
        _C.CUSTOMER_VALIDATION: (
            "a subscriber detail (account number, PIN, SSN/tax ID, name, ZIP) that does not "
            "match the losing carrier's records",
            "Read the reason text to see which field is wrong, ask the subscriber for the value "
            f"exactly as on the losing carrier's bill, then send it with {_UPDATE}.",
            True,
        ),
    }
)

_UNKNOWN_REMEDY = (
    "Read the message; it is the only explanation available. If it names a detail to correct, "
    f"send the fix with {_UPDATE}; otherwise contact Telegent support with the OrderId and this "
    "message."
)

# Anchored, bounded heads only; the tail is sliced, never regex-scanned.
_RCODE_RE = re.compile(r"([0-9])([A-Za-z])(?![A-Za-z0-9])")
_TELEGENT_RE = re.compile(r"([A-Za-z]{2,10})-([0-9]{3,10})(?![A-Za-z0-9])")
_SEPARATORS = frozenset("-:\u2013\u2014")
# A later code: stricter than the head (see the module docstring). The trailing whitespace is
# consumed greedily with nothing after it, so the scan never backtracks.
_LATER_RE = re.compile(r"(?<![A-Za-z0-9])([168][A-Z])[ \t]{0,3}[-:\u2013\u2014]\s*")
_JOINERS = ";,|"
# 1P says "other reason" and names the detail in words; a name is the one an update can fix.
_NAME_RE = re.compile(r"(?<![A-Za-z])names?(?![A-Za-z])", re.IGNORECASE)


def _reason_start(text: str, at: int, allow_space: bool) -> int | None:
    """Where the reason begins after a code ending at `at`, or None when no separator follows."""
    stripped = text[at:].lstrip()
    start = len(text) - len(stripped)
    if stripped and stripped[0] in _SEPARATORS:
        return start + 1
    if not stripped or (start > at and allow_space):
        return start
    return None


def _head(text: str) -> tuple[str, int] | None:
    """The code at the very start of `text` and where its reason begins, or None."""
    m = _RCODE_RE.match(text)
    if m is not None:
        digit = m.group(1)
        start = _reason_start(text, m.end(), allow_space=digit in _GROUP_DIGIT)
        if start is not None:
            return digit + m.group(2).upper(), start
    m = _TELEGENT_RE.match(text)
    if m is not None:
        start = _reason_start(text, m.end(), allow_space=True)
        if start is not None:
            return f"{m.group(1).upper()}-{m.group(2)}", start
    return None


def _later(text: str, start: int) -> list[tuple[str, int, int]]:
    """(code, where it starts, where its reason starts) for each code after `start`."""
    found: list[tuple[str, int, int]] = []
    if _LATER_RE.search(text, start) is None:  # the common case: cheaper than a finditer
        return found
    for m in _LATER_RE.finditer(text, start):
        if not text[m.end() : m.end() + 1].islower():
            found.append((m.group(1), m.start(), m.end()))
    return found


def _update_fields(code: str, info: _CodeInfo, reason: str) -> tuple[str, ...]:
    if code == "1P" and _NAME_RE.search(reason):
        return ("subscriber_name",)
    return info.update_fields


def _decoded(code: str, reason: str, raw: str) -> CarrierError:
    """The CarrierError of one code: from the catalogue, else from its group."""
    info = _CATALOGUE.get(code)
    if info is not None:
        return CarrierError(
            code=code,
            reason=reason or info.name,
            category=info.category,
            description=info.description,
            remedy=info.remedy,
            fixable_by_update=info.fixable_by_update,
            raw=raw,
            update_fields=_update_fields(code, info, reason),
        )
    if "-" in code:
        description = f"Telegent returned its own error code {code}, which this SDK does not know."
        return CarrierError(code, reason, _C.TELEGENT, description, _UNKNOWN_REMEDY, False, raw)
    digit = code[0]
    category = _GROUP_DIGIT.get(digit, _C.UNKNOWN)
    if category is _C.UNKNOWN:
        description = f"Carrier response code {code} is not a known porting code group."
        return CarrierError(code, reason, category, description, _UNKNOWN_REMEDY, False, raw)
    meaning, remedy, fixable = _GROUP_TEXT[category]
    description = (
        f"Carrier response code {code} is not in this SDK's catalogue; its group "
        f"({digit}x, {category.value}) means {meaning}."
    )
    return CarrierError(code, reason, category, description, remedy, fixable, raw)


def decode_carrier_messages(text: str | None) -> tuple[CarrierError, ...]:
    """Every code in an `OrderStatusMessage`, in order (`"8A-...; 8C-..."` gives two).

    Pure and total like `decode_carrier_message`: `()` for None or a blank string, one
    free-text `CarrierError` for a message without a recognised code.

    Args:
        text: The order's `OrderStatusMessage`, or None.
    """
    if text is None:
        return ()
    stripped = text.strip()
    if not stripped:
        return ()
    head = _head(stripped)
    codes = [(head[0], 0, head[1])] if head is not None else []
    codes += _later(stripped, head[1] if head is not None else 0)
    if not codes:
        return (
            CarrierError(
                code=None,
                reason=stripped,
                category=_C.UNKNOWN,
                description="The carrier or Telegent returned a message without a recognised code.",
                remedy=_UNKNOWN_REMEDY,
                fixable_by_update=False,
                raw=text,
            ),
        )
    if len(codes) == 1:  # the common case, without the slicing between codes
        code, _, start = codes[0]
        return (_decoded(code, stripped[start:].strip(), text),)
    errors = []
    for (code, _, start), following in zip(codes, [*codes[1:], None], strict=True):
        if following is None:
            reason = stripped[start:].strip()
        else:
            reason = stripped[start : following[1]].rstrip().rstrip(_JOINERS).strip()
        errors.append(_decoded(code, reason, text))
    return tuple(errors)


def decode_carrier_message(text: str | None) -> CarrierError | None:
    """Decode an `OrderStatusMessage` into a `CarrierError` (its first code).

    Total on purpose: it runs on every failed order, and a decoder that raised on an odd
    carrier text would hide the failure it is meant to explain. Returns None for None or a
    blank string; any other string decodes, free text included.

    Args:
        text: The order's `OrderStatusMessage`, or None.
    """
    errors = decode_carrier_messages(text)
    return errors[0] if errors else None


def carrier_codes() -> tuple[CarrierError, ...]:
    """The catalogue of the carrier codes this SDK knows, as data, in catalogue order.

    Each entry is the `CarrierError` a message made of that code alone decodes to: `code`,
    `reason` (the code's name, e.g. `ACCOUNT_NUM_REQ_OR_INCORRECT`), `category`, `description`
    (what it means), `remedy` (the next step), `fixable_by_update` and `update_fields`. A code
    not listed still decodes (`decode_carrier_message`), from its group.
    """
    return tuple(_decoded(code, "", code) for code in _CATALOGUE)
