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

import re
from collections.abc import Iterable

import attrs

from ._carrier_catalogue import (
    CATALOGUE,
    GROUP_DIGIT,
    GROUP_TEXT,
    RESUBMIT_FIELD,
    UNKNOWN_REMEDY,
    CarrierCategory,
    CodeInfo,
    NextStep,
    remedy_of,
)

__all__ = [
    "RESUBMIT_FIELD",
    "CarrierCategory",
    "CarrierError",
    "NextStep",
    "carrier_codes",
    "decode_carrier_message",
    "decode_carrier_messages",
    "next_step_of",
]


_C = CarrierCategory
_S = NextStep


@attrs.frozen
class CarrierError:
    """A decoded `OrderStatusMessage`: what went wrong and what to do about it.

    Kept alongside the raw message so nothing the carrier said is lost, while callers can
    branch on `code`/`category`/`next_step` instead of parsing text.

    Attributes:
        code: The normalised code (`"8A"`, `"GENS-0041"`), or None for free text.
        reason: The text half, stripped; the whole text when there is no code.
        category: The `CarrierCategory`: which kind of fix to look for.
        description: Plain words for an operator: what the code means.
        remedy: The concrete next step, in words (derived from `next_step`).
        fixable_by_update: True when `POST /v1.0/numbers/portin/update` on the same order
            resubmits it (`next_step` is UPDATE or UPDATE_AFTER_SUBSCRIBER).
        raw: The message exactly as received.
        update_fields: The `update_port_in` keywords whose corrected value fixes this code
            (8A -> `("current_account_number",)`); `()` when no update field can fix it (6A,
            8B, or 6P until the subscriber lifts the lock).
        next_step: The `NextStep`: update these fields, update after the subscriber acts,
            cancel and submit anew, or contact support.
    """

    code: str | None
    reason: str
    category: CarrierCategory
    description: str
    remedy: str
    fixable_by_update: bool
    raw: str
    update_fields: tuple[str, ...] = ()
    next_step: NextStep = NextStep.CONTACT_SUPPORT


def next_step_of(errors: Iterable[CarrierError]) -> NextStep | None:
    """The next step for an order with these carrier errors: the strongest any of them needs
    (an update first fixes nothing if another code needs a new port-in); None for none."""
    steps = [error.next_step for error in errors]
    order = list(NextStep)
    return max(steps, key=order.index) if steps else None


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
        start = _reason_start(text, m.end(), allow_space=digit in GROUP_DIGIT)
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


def _update_fields(code: str, info: CodeInfo, reason: str) -> tuple[str, ...]:
    if code == "1P" and _NAME_RE.search(reason):
        return ("subscriber_name",)
    return info.update_fields


def _decoded(code: str, reason: str, raw: str) -> CarrierError:
    """The CarrierError of one code: from the catalogue, else from its group."""
    info = CATALOGUE.get(code)
    if info is not None:
        fields = _update_fields(code, info, reason)
        return _error(
            code,
            reason or info.name,
            info.category,
            info.description,
            remedy_of(info.ask, info.step, fields),
            info.step,
            raw,
            fields,
        )
    category = _C.TELEGENT if "-" in code else GROUP_DIGIT.get(code[0], _C.UNKNOWN)
    if category is _C.TELEGENT:
        description = f"Telegent returned its own error code {code}, which this SDK does not know."
    elif category is _C.UNKNOWN:
        description = f"Carrier response code {code} is not a known porting code group."
    else:
        meaning, ask, step = GROUP_TEXT[category]
        description = (
            f"Carrier response code {code} is not in this SDK's catalogue; its group "
            f"({code[0]}x, {category.value}) means {meaning}."
        )
        return _error(code, reason, category, description, remedy_of(ask, step), step, raw)
    return _error(code, reason, category, description, UNKNOWN_REMEDY, _S.CONTACT_SUPPORT, raw)


def _error(
    code: str | None,
    reason: str,
    category: CarrierCategory,
    description: str,
    remedy: str,
    step: NextStep,
    raw: str,
    fields: tuple[str, ...] = (),
) -> CarrierError:
    fixable = step in (_S.UPDATE, _S.UPDATE_AFTER_SUBSCRIBER)
    return CarrierError(code, reason, category, description, remedy, fixable, raw, fields, step)


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
        description = "The carrier or Telegent returned a message without a recognised code."
        step = _S.CONTACT_SUPPORT
        return (_error(None, stripped, _C.UNKNOWN, description, UNKNOWN_REMEDY, step, text),)
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
    (what it means), `remedy` (the next step in words), `next_step`, `fixable_by_update` and
    `update_fields`. A code
    not listed still decodes (`decode_carrier_message`), from its group.
    """
    return tuple(_decoded(code, "", code) for code in CATALOGUE)
