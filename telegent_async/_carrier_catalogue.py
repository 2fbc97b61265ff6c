"""The carrier-code catalogue: what each code means and what comes next (pure data).

One entry per code Telegent's documentation and the ATIS WICIS porting codes describe
(REFERENCE.md, "OrderStatusMessage and carrier codes" and the port-in rules); the remedy text
is derived from each entry's `NextStep` (`remedy_of`), so the words, `update_fields`, the
CLI's fix list and the examples can never disagree on what to do.
"""

from __future__ import annotations

import enum
import types
from collections.abc import Mapping

import attrs

from ._portin import JSON_NAMES

__all__ = [
    "CATALOGUE",
    "GROUP_DIGIT",
    "GROUP_TEXT",
    "RESUBMIT_FIELD",
    "UNKNOWN_REMEDY",
    "CarrierCategory",
    "CodeInfo",
    "NextStep",
    "remedy_of",
]


class CarrierCategory(str, enum.Enum):
    """Group of a carrier code: tells an operator which kind of fix to look for."""

    DUE_DATE_OR_OTHER = "due date or other"
    NUMBER_OR_REQUEST = "number or request"
    CUSTOMER_VALIDATION = "customer validation"
    TELEGENT = "telegent"
    UNKNOWN = "unknown"


class NextStep(str, enum.Enum):
    """What comes next for a rejected port-in, mildest first (the order a fix list keeps).

    Every update resubmits the port-in (Telegent puts it back to `Pending`), so an update is
    never replaced by a cancel, which is final and loses the order.
    """

    UPDATE = "update"
    """Correct the fields named in `update_fields` (for a 1P, those its reason names)."""
    UPDATE_AFTER_SUBSCRIBER = "update after the subscriber acts"
    """Nothing to correct: once the subscriber has acted at the losing carrier (6P: removed the
    number lock), resubmit by an update that resends unchanged data (`RESUBMIT_FIELD`)."""
    CANCEL_AND_SUBMIT = "cancel and submit anew"
    """No update can fix it (6A: the number is wrong or unknown there): cancel, then submit a
    new port-in."""
    CONTACT_SUPPORT = "contact support"
    """Neither an update nor a new port-in is known to help (8B has no update field; GENS-0041
    from both update and cancel means the order is stuck on Telegent's side): open a ticket."""


#: The field an update resends, unchanged, to resubmit a port-in that needs no correction (6P
#: after the lock is lifted): the losing carrier's name, known to the caller and no secret.
RESUBMIT_FIELD = "current_carrier_name"


@attrs.frozen
class CodeInfo:
    """Catalogue entry for a known code: what it means, what to get, what comes next."""

    name: str
    category: CarrierCategory
    description: str
    ask: str
    step: NextStep
    update_fields: tuple[str, ...] = ()


_C = CarrierCategory
_S = NextStep
_UPDATE = "update_port_in (POST /v1.0/numbers/portin/update) on the same OrderId"


def remedy_of(ask: str, step: NextStep, fields: tuple[str, ...] = ()) -> str:
    """The remedy text: the code's own advice (`ask`), then what its next step means."""
    if step is _S.UPDATE:
        what = " and ".join(JSON_NAMES[field] for field in fields) or "the corrected detail"
        then = f"Send {what} with {_UPDATE}: the update resubmits the port-in."
    elif step is _S.UPDATE_AFTER_SUBSCRIBER:
        then = (
            "Nothing needs correcting, and a cancel would lose a recoverable port-in: once the "
            f"subscriber has done so, resubmit with {_UPDATE}, resending unchanged data "
            f"({JSON_NAMES[RESUBMIT_FIELD]})."
        )
    elif step is _S.CANCEL_AND_SUBMIT:
        then = (
            "This cannot be fixed in place: cancel with POST /v1.0/numbers/portin/cancel and "
            "submit a new port-in with POST /v1.0/numbers/portin."
        )
    else:
        then = (
            "Open a ticket with Telegent support, giving the phone number, the OrderId and "
            "Telegent's answers verbatim."
        )
    return f"{ask} {then}"


CATALOGUE: Mapping[str, CodeInfo] = types.MappingProxyType(
    {
        "1M": CodeInfo(
            "REQ_DATE_LESS_PUB_INT",
            _C.DUE_DATE_OR_OTHER,
            "The requested due date is earlier than the losing carrier's published porting "
            "interval.",
            "Pick a later due date (at least the losing carrier's published interval away, "
            "usually one or more business days).",
            _S.UPDATE,
            ("port_in_date",),
        ),
        "1N": CodeInfo(
            "DATE_AND_TIME_NOT_MET",
            _C.DUE_DATE_OR_OTHER,
            "The losing carrier cannot meet the requested due date and time.",
            "Pick a new due date and time further out.",
            _S.UPDATE,
            ("port_in_date",),
        ),
        "1P": CodeInfo(
            "OTHER_REASON",
            _C.DUE_DATE_OR_OTHER,
            "The losing carrier rejected the port for another reason, given in the text.",
            "Read the reason text: it says which detail the carrier wants changed (a name "
            "mismatch: the name exactly as on the losing account).",
            _S.UPDATE,
        ),
        "6A": CodeInfo(
            "MDN_NOT_FOUND",
            _C.NUMBER_OR_REQUEST,
            "The number was not found, or is not active, at the losing carrier.",
            "Check the number is typed correctly and is active with the losing carrier named "
            "on the order.",
            _S.CANCEL_AND_SUBMIT,
        ),
        "6B": CodeInfo(
            "TRANSFER_PIN_REQ_OR_INCORRECT",
            _C.NUMBER_OR_REQUEST,
            "The losing carrier (T-Mobile) rejected the Number Transfer PIN: missing, wrong "
            "or expired.",
            "Ask the subscriber to generate a new Number Transfer PIN in the T-Mobile app or "
            "account (or by calling T-Mobile).",
            _S.UPDATE,
            ("current_account_password",),
        ),
        "6P": CodeInfo(
            "MDN_HAS_SRV_PROV_PORT_PROTECT",
            _C.NUMBER_OR_REQUEST,
            "The number has a number lock (port protection) on the losing carrier account.",
            "Ask the subscriber to remove the number lock / port protection in their losing "
            "carrier account (e.g. Verizon Number Lock).",
            _S.UPDATE_AFTER_SUBSCRIBER,
        ),
        "8A": CodeInfo(
            "ACCOUNT_NUM_REQ_OR_INCORRECT",
            _C.CUSTOMER_VALIDATION,
            "The account number at the losing carrier is missing or wrong.",
            "Ask the subscriber for the exact account number from the losing carrier's bill.",
            _S.UPDATE,
            ("current_account_number",),
        ),
        "8B": CodeInfo(
            "SSN_TAX_ID_REQ_OR_INCORRECT",
            _C.CUSTOMER_VALIDATION,
            "The SSN or tax ID of the losing carrier account holder is missing or wrong.",
            "The update call has no SSN/tax ID field: ask the account holder for the SSN (or "
            "business tax ID) as registered with the losing carrier, and give it only over the "
            "channel support asks for.",
            _S.CONTACT_SUPPORT,
        ),
        "8C": CodeInfo(
            "PASS_PIN_REQ_OR_INCORRECT",
            _C.CUSTOMER_VALIDATION,
            "The account password or PIN of the losing carrier account is missing or wrong.",
            "Ask the subscriber for the account PIN or passcode of the losing carrier account "
            "(some carriers issue a separate port-out PIN).",
            _S.UPDATE,
            ("current_account_password",),
        ),
        "8D": CodeInfo(
            "ZIP_CODE_REQ_OR_INCORRECT",
            _C.CUSTOMER_VALIDATION,
            "The billing ZIP code of the losing carrier account is missing or wrong.",
            "Ask the subscriber for the billing ZIP code on the losing carrier's bill (the "
            "billing address, not the service address).",
            _S.UPDATE,
            ("current_billing_address",),
        ),
        "GENS-0041": CodeInfo(
            "No Port-In request found",
            _C.TELEGENT,
            "Telegent has no port-in request for this order or number.",
            "Check the OrderId and that you use the account that created it. When both an "
            "update and a cancel of the order answer GENS-0041, the order is stuck on "
            "Telegent's side: the ticket needs both answers.",
            _S.CONTACT_SUPPORT,
        ),
    }
)

# Codes not in the catalogue, by group: (meaning, advice, next step).
GROUP_DIGIT: Mapping[str, CarrierCategory] = types.MappingProxyType(
    {"1": _C.DUE_DATE_OR_OTHER, "6": _C.NUMBER_OR_REQUEST, "8": _C.CUSTOMER_VALIDATION}
)

GROUP_TEXT: Mapping[CarrierCategory, tuple[str, str, NextStep]] = types.MappingProxyType(
    {
        _C.DUE_DATE_OR_OTHER: (
            "a problem with the requested due date, or another reason given in the text",
            "Read the reason text; usually a new due date or a corrected detail fixes it.",
            _S.UPDATE,
        ),
        _C.NUMBER_OR_REQUEST: (
            "a problem with the number or the request itself (not found, locked, duplicate "
            "or already pending port)",
            "Read the reason text: a lock the subscriber removes is resubmitted by an update, "
            "a wrong number needs a new port-in; when it is not clear which, ask support "
            "before a cancel, which is final.",
            _S.CONTACT_SUPPORT,
        ),
        _C.CUSTOMER_VALIDATION: (
            "a subscriber detail (account number, PIN, SSN/tax ID, name, ZIP) that does not "
            "match the losing carrier's records",
            "Read the reason text to see which field is wrong, and ask the subscriber for the "
            "value exactly as on the losing carrier's bill.",
            _S.UPDATE,
        ),
    }
)

_UNKNOWN_ASK = (
    "Read the message; it is the only explanation available. If it names a detail to correct, "
    f"send the fix with {_UPDATE}; if it does not, or the update is refused:"
)
UNKNOWN_REMEDY = remedy_of(_UNKNOWN_ASK, _S.CONTACT_SUPPORT)
