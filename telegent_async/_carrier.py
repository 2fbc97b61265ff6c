"""Decode the carrier codes found in ``OrderStatusMessage`` of failed port-in orders.

Failed port-ins carry a carrier response code and a text joined by a hyphen, e.g.
``8A-ACCOUNT_NUM_REQ_OR_INCORRECT`` or ``6P-REMOVE NUMBER LOCK ON VERIZON ACCOUNT``. The codes
are the ATIS WICIS wireless porting response codes (RCODEs: one digit, one letter) shared by
US carriers; Telegent also uses codes of its own such as ``GENS-0041``.

This module is sans-I/O and pure: :func:`decode_carrier_message` turns any string into a
:class:`CarrierError` (or ``None`` for a blank one) and never raises, so it is safe to call on
every failed order.

Parsing rules (deliberately conservative, so free text is not mistaken for a code):

* Leading/trailing whitespace is ignored; ``raw`` keeps the message verbatim.
* An RCODE is a digit and an ASCII letter at the very start, not followed by another letter
  or digit, any case (``8a`` is normalised to ``8A``). It must be followed by the end of the
  text or a separator: ``-``, ``:``, an en/em dash, with optional whitespace around it
  (``8A - X``, ``8A:X``). A bare whitespace separator (``8A ACCOUNT...``) is accepted only for
  the known groups 1, 6 and 8, because ``3D printing...`` is more likely prose than a code.
* A Telegent code is 2-10 ASCII letters, a hyphen and 3-10 digits (``GENS-0041``), followed by
  the end of the text, a separator or whitespace.
* The text after the code and separator, stripped, is the ``reason`` (kept verbatim, so an
  UPPER_SNAKE name stays as is). A known code with no text gets its catalogue name as reason.
* Anything else is free text: ``code`` is ``None``, category ``UNKNOWN``, ``reason`` the text.

Only a short anchored regex is run on the head of the message and the rest is sliced, so the
cost is linear in the length of the message whatever it contains.
"""

from __future__ import annotations

import enum
import re
import types
from collections.abc import Mapping

import attrs

__all__ = ["CarrierCategory", "CarrierError", "decode_carrier_message"]


class CarrierCategory(str, enum.Enum):
    """Group of a carrier code: tells an operator which kind of fix to look for."""

    DUE_DATE_OR_OTHER = "due date or other"
    NUMBER_OR_REQUEST = "number or request"
    CUSTOMER_VALIDATION = "customer validation"
    TELEGENT = "telegent"
    UNKNOWN = "unknown"


@attrs.frozen
class CarrierError:
    """A decoded ``OrderStatusMessage``: what went wrong and what to do about it.

    Kept alongside the raw message so nothing the carrier said is lost, while callers can
    branch on ``code``/``category``/``fixable_by_update`` instead of parsing text.
    """

    code: str | None
    """Normalised code (``"8A"``, ``"GENS-0041"``), or ``None`` for free text."""
    reason: str
    """The text half, stripped; the whole text when there is no code."""
    category: CarrierCategory
    description: str
    """Plain words for an operator: what the code means."""
    remedy: str
    """Concrete next step."""
    fixable_by_update: bool
    """True when ``POST /v1.0/numbers/portin/update`` on the same order can fix it."""
    raw: str
    """The message exactly as received."""


@attrs.frozen
class _CodeInfo:
    """Catalogue entry for a known code."""

    name: str
    category: CarrierCategory
    description: str
    remedy: str
    fixable_by_update: bool


_UPDATE = "POST /v1.0/numbers/portin/update on the same OrderId"

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
        ),
        "1N": _CodeInfo(
            "DATE_AND_TIME_NOT_MET",
            _C.DUE_DATE_OR_OTHER,
            "The losing carrier cannot meet the requested due date and time.",
            f"Pick a new due date and time further out, then send it as PortInDate with {_UPDATE}.",
            True,
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
        ),
        "8D": _CodeInfo(
            "ZIP_CODE_REQ_OR_INCORRECT",
            _C.CUSTOMER_VALIDATION,
            "The billing ZIP code of the losing carrier account is missing or wrong.",
            "Ask the subscriber for the billing ZIP code on the losing carrier's bill (the "
            f"billing address, not the service address), then send it with {_UPDATE}.",
            True,
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


def _split_tail(rest: str, allow_space: bool) -> str | None:
    """Return the reason after a code, or None when what follows is not a separator."""
    if not rest:
        return ""
    stripped = rest.lstrip()
    if stripped and stripped[0] in _SEPARATORS:
        return stripped[1:].strip()
    if stripped != rest and allow_space:
        return stripped.rstrip()
    if not stripped:
        return ""
    return None


def _known(code: str, info: _CodeInfo, reason: str, raw: str) -> CarrierError:
    return CarrierError(
        code=code,
        reason=reason or info.name,
        category=info.category,
        description=info.description,
        remedy=info.remedy,
        fixable_by_update=info.fixable_by_update,
        raw=raw,
    )


def _decode_rcode(text: str, raw: str) -> CarrierError | None:
    m = _RCODE_RE.match(text)
    if m is None:
        return None
    digit = m.group(1)
    category = _GROUP_DIGIT.get(digit, _C.UNKNOWN)
    reason = _split_tail(text[m.end() :], allow_space=category is not _C.UNKNOWN)
    if reason is None:
        return None
    code = digit + m.group(2).upper()
    info = _CATALOGUE.get(code)
    if info is not None:
        return _known(code, info, reason, raw)
    if category is _C.UNKNOWN:
        return CarrierError(
            code=code,
            reason=reason,
            category=category,
            description=f"Carrier response code {code} is not a known porting code group.",
            remedy=_UNKNOWN_REMEDY,
            fixable_by_update=False,
            raw=raw,
        )
    meaning, remedy, fixable = _GROUP_TEXT[category]
    return CarrierError(
        code=code,
        reason=reason,
        category=category,
        description=f"Carrier response code {code} is not in this SDK's catalogue; its group "
        f"({digit}x, {category.value}) means {meaning}.",
        remedy=remedy,
        fixable_by_update=fixable,
        raw=raw,
    )


def _decode_telegent(text: str, raw: str) -> CarrierError | None:
    m = _TELEGENT_RE.match(text)
    if m is None:
        return None
    reason = _split_tail(text[m.end() :], allow_space=True)
    if reason is None:
        return None
    code = f"{m.group(1).upper()}-{m.group(2)}"
    info = _CATALOGUE.get(code)
    if info is not None:
        return _known(code, info, reason, raw)
    return CarrierError(
        code=code,
        reason=reason,
        category=_C.TELEGENT,
        description=f"Telegent returned its own error code {code}, which this SDK does not know.",
        remedy=_UNKNOWN_REMEDY,
        fixable_by_update=False,
        raw=raw,
    )


def decode_carrier_message(text: str | None) -> CarrierError | None:
    """Decode an ``OrderStatusMessage`` into a :class:`CarrierError`.

    Total on purpose: it runs on every failed order, and a decoder that raised on an odd
    carrier text would hide the failure it is meant to explain. Returns ``None`` for
    ``None`` or a blank string; any other string decodes, free text included.
    """
    if text is None:
        return None
    stripped = text.strip()
    if not stripped:
        return None
    found = _decode_rcode(stripped, text) or _decode_telegent(stripped, text)
    if found is not None:
        return found
    return CarrierError(
        code=None,
        reason=stripped,
        category=_C.UNKNOWN,
        description="The carrier or Telegent returned a message without a recognised code.",
        remedy=_UNKNOWN_REMEDY,
        fixable_by_update=False,
        raw=text,
    )
