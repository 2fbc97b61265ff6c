"""Fault names and the two queues that hand them out: API faults and token faults."""

from __future__ import annotations

import collections
import random
from collections.abc import Mapping
from typing import Final, Literal, get_args

FaultKind = Literal[
    "400",
    "401",
    "403",
    "404",
    "405",
    "408",
    "422",
    "429",
    "500",
    "502",
    "503",
    "504",
    "reset",
    "stall",
    "malformed",
    "html",
    "empty",
    "redirect",
    "huge",
    "embedded_error",
    "envelope",
]
"""A fault `FakeTelegent.inject` and `fault_rate` accept: a status, or a broken answer.

"embedded_error" is a 200 whose body is `{"StatusCode": 400, "Message": ...}`; "envelope" is
the right answer wrapped as `{"Successful": true, "Data": ...}` (not a fault to a client that
reads the documented wrapper)."""

TokenFaultKind = FaultKind | Literal["refused"]
"""A fault `FakeTelegent.fail_tokens` accepts: any `FaultKind` but "stall" and
"embedded_error" (a token answer's own refusal is "refused"), or "refused"."""

#: Faults a create endpoint answers before making the order (the request was not acted on);
#: every other fault replaces the answer of an order already made, the worst case.
BEFORE_ACTION: Final[frozenset[str]] = frozenset(
    {"400", "401", "403", "404", "405", "408", "422", "429", "503", "embedded_error", "redirect"}
)

FAULT_KINDS: Final[frozenset[FaultKind]] = frozenset(get_args(FaultKind))
"""Every fault name accepted by `FakeTelegent.inject` and `fault_rate`."""

STATUS_FAULTS: Final[dict[str, int]] = {kind: int(kind) for kind in FAULT_KINDS if kind.isdigit()}


def check_kind(kind: str) -> None:
    """Refuse an unknown name at run time too: a caller's code need not be type-checked."""
    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; expected one of {sorted(FAULT_KINDS)}")


class _Injection:
    __slots__ = ("kind", "remaining", "retry_after")

    def __init__(self, kind: str, remaining: int, retry_after: str | None) -> None:
        self.kind = kind
        self.remaining = remaining
        self.retry_after = retry_after


def _deque() -> collections.deque[_Injection]:
    return collections.deque()


def _take(queue: collections.deque[_Injection]) -> _Injection | None:
    """The head of a FIFO of counted faults, used up one request at a time."""
    if not queue:
        return None
    head = queue[0]
    head.remaining -= 1
    if head.remaining <= 0:
        queue.popleft()
    return head


class ApiFaults:
    """Injected faults first (FIFO), then a random draw from the `fault_rate` table."""

    def __init__(self, fault_rate: Mapping[FaultKind, float] | None, seed: int | None) -> None:
        table: list[tuple[str, float]] = []
        total = 0.0
        for kind, probability in (fault_rate or {}).items():
            check_kind(kind)
            if not 0.0 <= probability <= 1.0:
                raise ValueError(f"fault_rate[{kind!r}] must be within [0, 1]")
            if probability > 0:
                total += probability
                table.append((kind, total))
        if total > 1.0 + 1e-9:
            raise ValueError("fault_rate probabilities must sum to at most 1")
        self._table = tuple(table)
        self._rng = random.Random(seed)
        self._injected: collections.deque[_Injection] = collections.deque()
        self._by_path: dict[str, collections.deque[_Injection]] = {}

    def inject(
        self, kind: str, count: int, retry_after: str | None, path: str | None = None
    ) -> None:
        check_kind(kind)
        if count < 0:
            raise ValueError("count must be >= 0")
        if count:
            queue = self._injected if path is None else self._by_path.setdefault(path, _deque())
            queue.append(_Injection(kind, count, retry_after))

    def clear(self) -> None:
        """Forget the injected faults not handed out yet, any path's (`fault_rate` stays)."""
        self._injected.clear()
        self._by_path.clear()

    def next(self, path: str) -> tuple[str | None, str | None]:
        """The fault for a request of `path` and its Retry-After, or (None, None): the
        faults injected for that path first, then those for any request, then a draw."""
        queue = self._by_path.get(path)
        head = _take(queue) if queue else None
        if head is None:
            head = _take(self._injected)
        if head is not None:
            return head.kind, head.retry_after
        if self._table:
            draw = self._rng.random()
            for kind, cumulative in self._table:
                if draw < cumulative:
                    return kind, None
        return None, None


class TokenFaults:
    """Faults for token requests: counted ones, or an outage until a monotonic time."""

    def __init__(self) -> None:
        self._queue: collections.deque[_Injection] = collections.deque()
        self._outage: tuple[str, float] | None = None  # (kind, until monotonic)

    def add(self, kind: str, count: int, until: float | None) -> None:
        if kind != "refused":
            check_kind(kind)
        if kind == "stall":
            raise ValueError("token requests cannot stall; use a short client timeout instead")
        if kind == "embedded_error":
            raise ValueError("'embedded_error' is not a token fault; use 'refused'")
        if until is not None:
            self._outage = (kind, until)
        elif count > 0:
            self._queue.append(_Injection(kind, count, None))

    def clear(self) -> None:
        """Forget the counted faults and end an outage."""
        self._queue.clear()
        self._outage = None

    def next(self, now: float) -> str | None:
        outage = self._outage
        if outage is not None and now < outage[1]:
            return outage[0]
        head = _take(self._queue)
        return None if head is None else head.kind
