"""`FakeTelegent`: what a test scripts (orders, faults, tokens) and inspects (the log)."""

from __future__ import annotations

import collections
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from .._timing import PollPolicy
from ._create_endpoints import ALL_PATHS, CREATE_PATHS
from ._faults import FaultKind, TokenFaultKind
from ._lifecycle import Order, Step, checked_steps
from ._log import RecordedRequest
from ._portin_endpoints import PORTIN_PATHS
from ._responses import JSON, Fixed
from ._serving import ORDER_PATH, TOKEN_PATH, ServingCore
from ._webhook_endpoints import WEBHOOK_METHODS

if TYPE_CHECKING:
    from .._client import TelegentClient

_FAULTABLE: Final = frozenset({ORDER_PATH, *ALL_PATHS, *PORTIN_PATHS, *WEBHOOK_METHODS})

FAST_RETRY: Final = PollPolicy(initial=0.01, factor=2.0, max_interval=0.05, jitter=0.0)
"""`FakeTelegent.client`'s retry cadence: 10, 20, 40, 50 ms..., no jitter."""
FAST_POLL: Final = PollPolicy(initial=0.02, factor=2.0, max_interval=0.1, jitter=0.0)
"""`FakeTelegent.client`'s poll cadence for waits: 20, 40, 80, 100 ms..., no jitter."""


class FakeTelegent(ServingCore):
    """A Telegent order API on 127.0.0.1 with scripted orders, tokens, rate limit and faults.

    Use `async with FakeTelegent() as fake:` or `await fake.start()` / `await fake.close()`.
    All state changes (add_order, inject, revoke_tokens...) take effect on the next request.

    Args:
        account_key: The account key the token endpoint accepts.
        account_secret: The account secret the token endpoint accepts.
        token_lifetime: Seconds a token lives (its `tokenExpiry` says the same).
        rate_limit: Requests per second before a 429 (bursts of up to that many), or None.
        retry_after: The `Retry-After` header of a 429 (rate limit or fault).
        fault_rate: The probability of each fault per API request, drawn after injected ones.
        stall_seconds: How long a "stall" fault holds its answer back.
        default_status: The status of an order never added (None: such an order is a 404).
        seed: Seeds the `fault_rate` draws, for a repeatable scenario.
        record: Keep a log of every request (`requests`); counts are kept either way.
        host: The address to listen on.
        port: The port to listen on (0: any free one, see `port`).
        clock_skew: Seconds the server's clock is ahead (negative: behind).
    """

    async def __aenter__(self) -> FakeTelegent:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def record(self) -> bool:
        """Whether requests are logged (counts are kept either way)."""
        return self._log.record

    @record.setter
    def record(self, value: bool) -> None:
        self._log.record = value

    @property
    def request_count(self) -> int:
        """Requests answered (or abandoned) so far, counted even when `record=False`."""
        return self._log.count

    @property
    def status_counts(self) -> dict[int, int]:
        """How many requests got each status (0 = no answer), counted even when `record=False`."""
        return self._log.status_counts

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every recorded request in arrival order (the live list: do not mutate it)."""
        return self._log.requests

    @property
    def token_requests(self) -> list[RecordedRequest]:
        """The recorded token requests (`POST /v1.0/oauth2/tokens`)."""
        return self._log.to({TOKEN_PATH}, "POST")

    def order_requests(self, order_id: str | None = None) -> list[RecordedRequest]:
        """The recorded GETs on /numbers/order, optionally only those asking for `order_id`.

        Args:
            order_id: Only the requests asking for this order (None: all).
        """
        found = self._log.to({ORDER_PATH}, "GET")
        if order_id is None:
            return found
        return [r for r in found if ("OrderId", order_id) in r.query]

    def clear_requests(self) -> None:
        """Forget the request log and counters (e.g. between benchmark phases)."""
        self._log.clear()

    def port_in_requests(self, order_id: str | None = None) -> list[RecordedRequest]:
        """The recorded port-in updates and cancels, optionally only those naming `order_id`.

        Args:
            order_id: Only the requests naming this order (None: all).
        """
        found = self._log.to(PORTIN_PATHS)
        if order_id is None:
            return found
        return [r for r in found if r.body is not None and r.body.get("OrderId") == order_id]

    def create_requests(self, path: str | None = None) -> list[RecordedRequest]:
        """The recorded requests to the endpoints that create orders (port-in submit,
        provision, port-out, status change), answered or not, optionally only `path`'s.

        Args:
            path: Only this endpoint's (`PORTIN_SUBMIT_PATH` ...; None: all four).
        """
        paths = CREATE_PATHS if path is None else {path}
        return self._log.to(paths, "POST")

    def created(self, path: str | None = None) -> list[str]:
        """The IDs of the orders the create endpoints made (served by the order endpoint on
        their lifecycles), in order, optionally only `path`'s.

        Args:
            path: Only this endpoint's (None: all four).
        """
        return [order_id for made, order_id in self._created.made if path in (None, made)]

    def webhook_requests(self) -> list[RecordedRequest]:
        """The recorded webhook subscription calls (create, update, delete, get, list)."""
        return self._log.to(WEBHOOK_METHODS)

    @property
    def webhooks(self) -> dict[str, dict[str, Any]]:
        """The subscriptions stored now, by `WebhookId`, as a create or update sent them
        (credentials included: this is the server's side). A copy: change them through the
        client's calls."""
        return {webhook_id: dict(hook) for webhook_id, hook in self._webhooks.stored.items()}

    @property
    def open_connections(self) -> int:
        """Client connections open now."""
        return self._connections.open

    @property
    def peak_connections(self) -> int:
        """The most client connections open at once so far."""
        return self._connections.peak

    # -- scripting -----------------------------------------------------------------------------

    def add_order(
        self,
        order_id: str,
        status: str | Sequence[Step],
        *,
        message: str | None = None,
        order_type: str | None = "Provision",
        phone_numbers: Sequence[str] = (),
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        """Serve `order_id`: a fixed status, or Steps whose times count from now.

        `message` becomes OrderStatusMessage once the last step is visible (null before), as a
        port-in's carrier code only appears when it is rejected. `extra` is merged last, so it
        can add provision fields or override any field (e.g. an odd OrderDate format).

        Args:
            order_id: The order's ID.
            status: A status shown from now on, or the lifecycle's Steps.
            message: The OrderStatusMessage once the last step is visible.
            order_type: The OrderType field.
            phone_numbers: The PhoneNumbersOrdered numbers.
            extra: More fields, merged last.
        """
        if isinstance(status, str):
            steps = self._static_steps.get(status)
            if steps is None:
                steps = self._static_steps[status] = (Step(status, 0.0),)
        else:
            steps = checked_steps(status)
        if isinstance(phone_numbers, str):
            phone_numbers = (phone_numbers,)
        self._orders[order_id] = Order(
            order_id,
            steps,
            message,
            order_type,
            tuple(phone_numbers),
            dict(extra) if extra else None,
            time.monotonic(),
            time.time(),
        )

    def script_update(
        self, order_id: str, steps: Sequence[Step], *, message: str | None = None
    ) -> None:
        """What the next update of a rejected `order_id` leads to, whatever it sends.

        Each call queues one continuation (Steps counted from the update; `message` is shown
        once the last is visible). Without one, an update of a `Rejected`/`ResolutionRequired`
        order goes to `Submitted`, then after `port_in_delay` to `Complete` if it sent every
        field that fixes the order's carrier codes (`CarrierError.update_fields`), else back
        to the same rejection. An update of a pending order changes nothing; an update or
        cancel of a `Complete`, `Error` or `Cancelled` one answers 400.

        Args:
            order_id: An order already added.
            steps: The lifecycle after the update, counted from it.
            message: The OrderStatusMessage once the last step is visible.
        """
        if order_id not in self._orders:
            raise KeyError(f"add_order({order_id!r}, ...) first")
        lifecycle = checked_steps(steps, "a continuation")
        self._update_scripts.setdefault(order_id, collections.deque()).append((lifecycle, message))

    def script_create(
        self, path: str, steps: Sequence[Step], *, message: str | None = None
    ) -> None:
        """The lifecycle of the next order the create endpoint `path` makes (FIFO per path).

        Without one, a port-in goes `Submitted` then `Complete` after `port_in_delay`, a
        port-out `Pending` then `Complete`, a provision and a status change are `Complete` at
        once. E.g. a port-in rejected for its account number, then fixed by an update:
        `script_create(PORTIN_SUBMIT_PATH, [Step("Submitted"), Step("Rejected", 0.1)],
        message="8A-ACCOUNT_NUM_REQ_OR_INCORRECT")` (the update's default continuation
        completes it when it sends `CurrentAccountNumber`).

        Args:
            path: `PORTIN_SUBMIT_PATH`, `PROVISION_PATH`, `PORTOUT_PATH` or `STATUS_PATH`.
            steps: The lifecycle, counted from the create.
            message: The OrderStatusMessage once the last step is visible.
        """
        self._created.script(path, steps, message)

    def set_create_answer(
        self,
        path: str,
        *,
        status: int = 200,
        body: bytes | str = b"",
        content_type: str | None = JSON,
    ) -> None:
        """Answer every request to the create (or eligibility) endpoint `path` with these
        bytes, making nothing (after auth, rate limit and faults).

        Args:
            path: The endpoint (`PORTIN_SUBMIT_PATH` ...).
            status: The HTTP status.
            body: The body, as is.
            content_type: The Content-Type header (None: none).
        """
        self._created.fix(path, Fixed.of(status, body, content_type))

    def issue_token(self, path: str, *, lifetime: float | None = None) -> str:
        """A token for `path`, as the token endpoint issues it (for a client given `token=`).

        Args:
            path: The endpoint's path (`ORDER_PATH` ...).
            lifetime: Seconds it lives (None: `token_lifetime`).
        """
        seconds = self.token_lifetime if lifetime is None else lifetime
        return self._tokens.issue(path, time.monotonic() + seconds)

    def settled_at(self, order_id: str) -> float:
        """The time.monotonic() at which the order's last step becomes visible.

        Args:
            order_id: An order already added.
        """
        order = self._orders[order_id]
        return order.added_at + order.steps[-1].at

    def set_response(
        self,
        order_id: str,
        *,
        status: int = 200,
        body: bytes | str = b"",
        content_type: str | None = JSON,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer `order_id` with exactly these bytes (after auth, rate limit and faults).

        Lookups, updates and cancels naming the order all get this answer.

        Args:
            order_id: The order whose requests get this answer.
            status: The HTTP status.
            body: The body, as is.
            content_type: The Content-Type header (None: none).
            headers: More headers.
        """
        self._fixed[order_id] = Fixed.of(status, body, content_type, headers)

    def set_webhook_response(
        self,
        status: int | None = 200,
        body: bytes | str = b"",
        *,
        content_type: str | None = JSON,
    ) -> None:
        """Answer every webhook subscription call with exactly these bytes (after auth and rate
        limit, nothing stored), until called with `status=None`.

        Args:
            status: The HTTP status; None: back to the endpoints' own answers.
            body: The body, as is.
            content_type: The Content-Type header (None: none).
        """
        if status is None:
            self._webhooks.fixed = None
            return
        self._webhooks.fixed = Fixed.of(status, body, content_type)

    def inject(
        self,
        kind: FaultKind,
        count: int = 1,
        *,
        retry_after: str | None = None,
        path: str | None = None,
    ) -> None:
        """Give the next `count` API requests fault `kind` (FIFO, before `fault_rate`).

        On a create endpoint, a status that says the request was not acted on (4xx, 429,
        503) and "embedded_error" are answered before the order is made; every other fault
        ("500", "502", "504", "reset", "stall", "malformed", "envelope" ...) replaces the
        answer of an order already made: a reset after the request was read.

        Args:
            kind: The fault: a status ("503") or a broken answer ("reset", "stall", ...).
            count: How many requests in a row get it.
            retry_after: A Retry-After header for a status fault (a 429 always sends one).
            path: Only requests to this endpoint get it (None: any API request); its
                faults come before those injected for any request.
        """
        if path is not None and path not in _FAULTABLE:
            raise ValueError(f"{path!r} is not an API endpoint of the fake")
        self._faults.inject(kind, count, retry_after, path)

    def fail_tokens(
        self, kind: TokenFaultKind, count: int = 1, *, seconds: float | None = None
    ) -> None:
        """Give token requests a fault: the next `count` of them, or all for `seconds`.

        Args:
            kind: Any of `FAULT_KINDS` but "stall", or "refused": a 200 with
                `successful: false`, as for a wrong secret.
            count: How many token requests in a row get it.
            seconds: Instead of `count`, every token request for this long from now.
        """
        until = None if seconds is None else time.monotonic() + seconds
        self._token_faults.add(kind, count, until)

    def clear_faults(self) -> None:
        """Forget every fault injected by `inject` and `fail_tokens` that has not been handed
        out yet, a token outage included: the next requests are answered normally. The random
        faults of `fault_rate` stay (they are the server's configuration)."""
        self._faults.clear()
        self._token_faults.clear()

    def revoke_tokens(self) -> None:
        """Invalidate every token issued so far (as if the account secret were rotated)."""
        self._tokens.revoke_all()

    def client(self, **overrides: Any) -> TelegentClient:
        """A TelegentClient bound to this fake, with cadences fit for tests.

        Retries follow `FAST_RETRY` (10 ms doubling to 50 ms) and waits that pass no `policy`
        poll at `FAST_POLL` (20 ms doubling to 100 ms), so a scripted test takes milliseconds
        rather than the production cadences' seconds. Any TelegentClient argument overrides
        these: `retry_policy=PollPolicy.RETRY` and `poll_policy=PollPolicy.PROVISION` restore
        the production ones; `token=...` replaces the account credentials.

        Args:
            **overrides: TelegentClient arguments.
        """
        from .._client import TelegentClient

        kwargs: dict[str, Any] = {
            "base_url": self.base_url,
            "allow_insecure": True,
            "retry_policy": FAST_RETRY,
            "poll_policy": FAST_POLL,
        }
        if "token" not in overrides:
            kwargs["account_key"] = self.account_key
            kwargs["account_secret"] = self.account_secret
        kwargs.update(overrides)
        return TelegentClient(**kwargs)
