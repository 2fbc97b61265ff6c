"""The request log: what the fake saw and answered, for a test's assertions."""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

import attrs
from aiohttp import web

from .. import _portin, _webhook


class RecordedBody(dict[str, Any]):
    """A recorded JSON request body: the values as sent, secrets masked in any repr of it
    (port-in account numbers and passwords, webhook passwords and tokens)."""

    def __repr__(self) -> str:
        return repr(_webhook.scrub(_portin.mask_secrets(self)))

    __str__ = __repr__


@attrs.frozen
class RecordedRequest:
    """What the fake saw and answered; kept small because benchmarks record thousands.

    Attributes:
        method: The HTTP method.
        path: The URL path.
        query: The query's (name, value) pairs.
        token: The bearer token sent (None for token requests, or when there was none).
        token_scope: The token's scope; for token requests, the scope asked for.
        at: When it arrived (time.monotonic()).
        status: The status answered; 0 when no answer was sent (a reset, or a stall abandoned
            by the client or by close()).
        fault: The fault it was given, if any.
        body: The JSON object a port-in or webhook request sent (None elsewhere); its repr
            masks secrets.
    """

    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    token: str | None
    token_scope: str | None
    at: float
    status: int
    fault: str | None
    body: RecordedBody | None = None


class RequestLog:
    """Requests in arrival order (if recording) and counts by status (always)."""

    def __init__(self, record: bool) -> None:
        self.record = record
        self.requests: list[RecordedRequest] = []
        self.count = 0
        self.status_counts: dict[int, int] = {}

    def add(
        self,
        request: web.BaseRequest,
        at: float,
        status: int,
        token: str | None = None,
        scope: str | None = None,
        fault: str | None = None,
        body: RecordedBody | None = None,
    ) -> int:
        """Count the answer and, if recording, append it; returns its index in the log."""
        self.count += 1
        counts = self.status_counts
        counts[status] = counts.get(status, 0) + 1
        if not self.record:
            return -1
        self.requests.append(
            RecordedRequest(
                request.method,
                request.path,
                tuple(request.query.items()),
                token,
                scope,
                at,
                status,
                fault,
                body,
            )
        )
        return len(self.requests) - 1

    def answered_late(self, index: int, status: int) -> None:
        """A stall logged at arrival (status 0) was answered after all: fix its entry up."""
        counts = self.status_counts
        counts[0] = max(0, counts.get(0, 0) - 1)
        counts[status] = counts.get(status, 0) + 1
        if 0 <= index < len(self.requests) and self.requests[index].fault == "stall":
            self.requests[index] = attrs.evolve(self.requests[index], status=status)

    def to(self, paths: Collection[str], method: str | None = None) -> list[RecordedRequest]:
        """The recorded requests to any of `paths` (with `method`, if given), in arrival order."""
        return [r for r in self.requests if r.path in paths and method in (None, r.method)]

    def clear(self) -> None:
        self.requests = []
        self.count = 0
        self.status_counts = {}


async def read_body(request: web.Request) -> RecordedBody | None:
    """The request's JSON object (recorded with its secrets masked in any repr), or None."""
    try:
        data = json.loads(await request.read())
    except ValueError:
        data = None
    return RecordedBody(data) if isinstance(data, dict) else None
