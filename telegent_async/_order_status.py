"""`OrderStatus` and the spellings Telegent uses for it (pure, no I/O; one unknown status is
logged once)."""

from __future__ import annotations

import collections
import enum
import logging

__all__ = ["CARRIES_REASON", "NEEDS_ACTION", "SETTLED", "OrderStatus", "parse_status"]

logger = logging.getLogger("telegent_async")


class OrderStatus(enum.Enum):
    """An order's status, whatever spelling the API used (see `Order.raw_status`)."""

    PENDING = "Pending"
    SUBMITTED = "Submitted"
    PENDING_CARRIER_APPROVAL = "Pending Carrier Approval"
    SCHEDULED = "Scheduled"
    IN_PROGRESS = "InProgress"
    COMPLETE = "Complete"
    ERROR = "Error"
    REJECTED = "Rejected"
    RESOLUTION_REQUIRED = "ResolutionRequired"
    CANCELLED = "Cancelled"
    UNKNOWN = "Unknown"

    @property
    def is_settled(self) -> bool:
        """True once the order will not change without someone acting on it."""
        return self in SETTLED


SETTLED = frozenset(
    {
        OrderStatus.COMPLETE,
        OrderStatus.ERROR,
        OrderStatus.REJECTED,
        OrderStatus.RESOLUTION_REQUIRED,
        OrderStatus.CANCELLED,
    }
)
NEEDS_ACTION = frozenset({OrderStatus.REJECTED, OrderStatus.RESOLUTION_REQUIRED})
CARRIES_REASON = frozenset({OrderStatus.ERROR, *NEEDS_ACTION})


def _status_key(text: str) -> str:
    return "".join(text.split()).replace("_", "").replace("-", "").casefold()


_STATUS_BY_KEY: dict[str, OrderStatus] = {
    _status_key(member.value): member for member in OrderStatus if member is not OrderStatus.UNKNOWN
}
_STATUS_BY_KEY.update(
    completed=OrderStatus.COMPLETE,
    failed=OrderStatus.ERROR,
    canceled=OrderStatus.CANCELLED,
)
#: The spellings Telegent actually sends, looked up before any normalising.
_STATUS_EXACT: dict[str, OrderStatus] = {
    **{member.value: member for member in OrderStatus if member is not OrderStatus.UNKNOWN},
    "Completed": OrderStatus.COMPLETE,
    "Failed": OrderStatus.ERROR,
}
#: The unknown statuses logged lately, least recent first: bounded, yet a new one is always logged.
_unknown_statuses_logged: collections.OrderedDict[str, None] = collections.OrderedDict()
_MAX_UNKNOWN_LOGGED = 256


def parse_status(raw_status: str) -> OrderStatus:
    """Map a status as the API spells it, case- and space-insensitively; unknown -> UNKNOWN.

    An unknown status is logged once (a new status in the API is worth an operator's look)
    and treated as still pending by every waiter.
    """
    status = _STATUS_EXACT.get(raw_status) or _STATUS_BY_KEY.get(_status_key(raw_status))
    if status is not None:
        return status
    _log_unknown_status(raw_status)
    return OrderStatus.UNKNOWN


def _log_unknown_status(raw_status: str) -> None:
    """Log a status once while it stays among the last `_MAX_UNKNOWN_LOGGED` seen (an LRU).

    Kept (and logged) by its first 100 characters: a hostile server's megabyte-long statuses
    must not fill the memory.
    """
    shown = raw_status[:100]
    seen = _unknown_statuses_logged
    if shown in seen:
        seen.move_to_end(shown)
        return
    seen[shown] = None
    if len(seen) > _MAX_UNKNOWN_LOGGED:
        seen.popitem(last=False)
    logger.warning("unknown order status %r: treated as pending", shown)
