"""OpenTelemetry traces and metrics, when the `otel` extra (`opentelemetry-api`) is installed.

Without it the import below fails, `telemetry()` is None and the client runs exactly as
before. With it:

- a span `telegent.get_order` per lookup, carrying `telegent.order_id`,
  `telegent.order.status`, `telegent.retry_count` (one `telegent.retry` event per retry, with
  its reason and delay) and, when it fails, `error.type`. A wait is many lookups: a port-in's
  lasts days, so no span is held open across it; each status change it sees is an event
  (`telegent.order.status_changed`) on the caller's current span instead;
- metrics: `telegent.requests` (by `outcome`: the status class or `no answer`),
  `telegent.retries` (by `reason`), `telegent.rate_limit.pauses`, the histogram
  `telegent.order.settle_delay` (seconds from the start of a wait to the poll that saw the
  order settled, by settled status) and `telegent.watches.pending` (orders waited on by
  `wait_for_order`, `watch_order` and `wait_for_orders` in this process; an `OrderWatcher`'s
  durable watches live in its store, which `WatchState` reads). Order IDs are never metric
  attributes: one time series per order would swamp any backend;
- the health of this process's `OrderWatcher`s (`watcher.health`): the gauge
  `telegent.watcher.faults` (watchers with a fault now, by `dependency`: `store`, `budget`,
  `credentials`, or `stopped` for a fault that does not pass), and `telegent.watcher.idle`
  (seconds since the last poll of the longest-idle running watcher).

The first three are observed from the clients' own counters (`_stats.Counters`) when the
reader collects, so the send path pays nothing for them. Lookup spans start only once an SDK
has installed a tracer provider: until then they would be no-ops costing ~5 µs per lookup.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import os
import threading
import time
import weakref
from collections.abc import AsyncGenerator, Awaitable, Iterable
from typing import TYPE_CHECKING, Protocol

from ._stats import Counters

try:
    from opentelemetry import metrics, trace
    from opentelemetry.environment_variables import OTEL_PYTHON_TRACER_PROVIDER
    from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation
    from opentelemetry.trace import TracerProvider
except ImportError:  # the `otel` extra is not installed: no telemetry, and nothing imported
    AVAILABLE = False
else:
    AVAILABLE = True


def _provider_unset() -> bool:
    """True while no global tracer provider is set (the API's own global: read, not called;
    an API without it is asked the public way, every time)."""
    return getattr(trace, "_TRACER_PROVIDER", trace) is None


if TYPE_CHECKING:
    from ._health import WatcherHealth
    from ._models import Order

__all__ = ["AVAILABLE", "Telemetry", "telemetry"]

SCOPE = "telegent_async"
#: Settle delays run from a second (a provision order) to days (a port-in).
SETTLE_DELAY_BUCKETS = (1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 86400, 3 * 86400, 7 * 86400)


class Watched(Protocol):
    """What the health metrics read of a watcher."""

    @property
    def health(self) -> WatcherHealth: ...


#: The values of `telegent.watcher.faults`' `dependency` attribute.
DEPENDENCIES = ("store", "budget", "credentials", "stopped")


@functools.cache
def telemetry() -> Telemetry | None:
    """The process's instruments, or None without OpenTelemetry."""
    return Telemetry() if AVAILABLE else None


class Telemetry:
    """The SDK's tracer and instruments, and the counters of every live client.

    The process's one instance (`telemetry()`) uses the global providers; tests make their own
    with providers of their own.
    """

    def __init__(
        self,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        self._tracer = trace.get_tracer(SCOPE, tracer_provider=tracer_provider)
        self._tracing = tracer_provider is not None
        self._provider_in_environment = OTEL_PYTHON_TRACER_PROVIDER in os.environ
        meter = metrics.get_meter(SCOPE, meter_provider=meter_provider)
        # Observation callbacks run in the metric reader's thread: the lock guards the set.
        self._lock = threading.Lock()
        self._live: set[Counters] = set()
        self._retired = Counters()  # what clients already garbage-collected had counted
        # Clients collected since: a finalizer may run inside any allocation, even one made
        # while this very thread holds `_lock`, so it only queues (deque.append is atomic).
        self._retiring: collections.deque[Counters] = collections.deque()
        self._watchers: weakref.WeakSet[Watched] = weakref.WeakSet()
        # The observed instruments: (how it is made, name, callback, unit, description).
        counter, gauge = meter.create_observable_counter, meter.create_observable_gauge
        observed = (
            (counter, "telegent.requests", self._observe_requests, "{request}",
             "HTTP requests sent, by outcome: the answer's status class or no answer"),
            (counter, "telegent.retries", self._observe_retries, "{retry}",
             "Requests retried, by reason: the status, timeout, connection ..."),
            (counter, "telegent.rate_limit.pauses", self._observe_pauses, "{pause}",
             "429 answers that paused every request of a client"),
            (gauge, "telegent.watcher.faults", self._observe_faults, "{watcher}",
             "Watchers of this process with a fault now, by what failed"),
            (gauge, "telegent.watcher.idle", self._observe_idle, "s",
             "Seconds since the last poll of the longest-idle running watcher"),
        )  # fmt: skip
        for create, name, callback, unit, description in observed:
            create(name, [callback], unit=unit, description=description)
        self._settle_delay = meter.create_histogram(
            "telegent.order.settle_delay",
            unit="s",
            description="From the start of a wait to the poll that saw the order settled",
            explicit_bucket_boundaries_advisory=SETTLE_DELAY_BUCKETS,
        )
        self._pending = meter.create_up_down_counter(
            "telegent.watches.pending",
            unit="{order}",
            description="Orders waited on in this process and not settled yet",
        )

    # -- counters of the clients ---------------------------------------------------------------

    def register(self, client: object, counters: Counters) -> None:
        """Observe `counters` while `client` lives; its counts stay in the totals after."""
        with self._lock:
            self._retire_collected()
            self._live.add(counters)
        weakref.finalize(client, self._retiring.append, counters)

    def _retire_collected(self) -> None:
        """Move the counts of collected clients into `_retired` (with `_lock` held)."""
        while self._retiring:
            counters = self._retiring.popleft()
            self._live.discard(counters)
            _add(self._retired, counters)

    def _totals(self) -> Counters:
        totals = Counters()
        with self._lock:
            self._retire_collected()
            for counters in (self._retired, *self._live):
                _add(totals, counters)
        return totals

    def _observe_requests(self, _options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(n, {"outcome": k}) for k, n in self._totals().responses().items()]

    def _observe_retries(self, _options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(n, {"reason": k}) for k, n in self._totals().retries.items()]

    def _observe_pauses(self, _options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(self._totals().rate_limit_pauses)]

    # -- watchers ------------------------------------------------------------------------------

    def watch(self, watcher: Watched) -> None:
        """Report `watcher`'s health while it lives."""
        with self._lock:
            self._watchers.add(watcher)

    def _healths(self) -> list[WatcherHealth]:
        with self._lock:
            watchers = list(self._watchers)
        return [watcher.health for watcher in watchers]

    def _observe_faults(self, _options: CallbackOptions) -> Iterable[Observation]:
        counts = dict.fromkeys(DEPENDENCIES, 0)
        for health in self._healths():
            counts["store"] += not health.store_ok
            counts["budget"] += not health.budget_ok
            counts["credentials"] += not health.credentials_ok
            counts["stopped"] += not health.running and health.fault is not None
        return [Observation(n, {"dependency": name}) for name, n in counts.items()]

    def _observe_idle(self, _options: CallbackOptions) -> Iterable[Observation]:
        polls = [h.last_poll_at for h in self._healths() if h.running and h.last_poll_at]
        if not polls:
            return []
        return [Observation(max(0.0, time.time() - min(polls).timestamp()))]

    # -- lookups -------------------------------------------------------------------------------

    def tracing(self) -> bool:
        """True once an SDK has installed a global tracer provider (it cannot be uninstalled),
        or when this instance was given one.

        Asked on every lookup: until a provider is installed, the API's own global is read
        (`get_tracer_provider` would look the environment up each time, a tenth of the
        SDK's cost per lookup); the public call decides once it is set, or when the
        environment names a provider to load.
        """
        if not self._tracing:
            if _provider_unset() and not self._provider_in_environment:
                return False
            self._tracing = not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
        return self._tracing

    async def traced_lookup(self, order_id: str, lookup: Awaitable[Order]) -> Order:
        """Await one lookup inside its `telegent.get_order` span."""
        with self._tracer.start_as_current_span(
            "telegent.get_order",
            attributes={"telegent.order_id": order_id, "telegent.retry_count": 0},
        ) as span:
            try:
                order = await lookup
            except BaseException as exc:  # the span records it and sets the error status
                span.set_attribute("error.type", type(exc).__qualname__)
                raise
            span.set_attribute("telegent.order.status", order.status.value)
            return order

    def retrying(self, attempt: int, reason: str, delay: float) -> None:
        """A request of the current lookup is about to be retried (the `attempt`-th time)."""
        span = trace.get_current_span()
        if span.is_recording():
            span.set_attribute("telegent.retry_count", attempt)
            span.add_event(
                "telegent.retry", {"telegent.retry.reason": reason, "telegent.retry.delay": delay}
            )

    # -- waits ---------------------------------------------------------------------------------

    def status_changed(self, order: Order) -> None:
        """A wait saw a new status: an event on the caller's span, which may be long gone
        quiet (a wait outlives any span it could have had of its own)."""
        span = trace.get_current_span()
        if span.is_recording():
            span.add_event(
                "telegent.order.status_changed",
                {"telegent.order_id": order.order_id, "telegent.order.status": order.status.value},
            )

    async def observed_wait(
        self, changes: AsyncGenerator[Order, None]
    ) -> AsyncGenerator[Order, None]:
        """Pass a single wait's status changes through, counting it as pending until it ends."""
        started = time.monotonic()
        self.pending(1)
        last: Order | None = None
        try:
            async with contextlib.aclosing(changes):
                async for last in changes:
                    self.status_changed(last)
                    yield last
        finally:
            self.ended(last, time.monotonic() - started)

    def ended(self, order: Order | None, waited: float) -> None:
        """A wait of one order ended `waited` seconds after it began; if it ended because the
        order settled, that is the order's settle delay."""
        self.pending(-1)
        if order is not None and order.is_settled:
            self._settle_delay.record(waited, {"telegent.order.status": order.status.value})

    def pending(self, change: int) -> None:
        """Orders waited on in this process: +n when waits begin, -n when they end."""
        self._pending.add(change)


def _add(into: Counters, counters: Counters) -> None:
    into.requests += counters.requests
    into.by_class = [a + b for a, b in zip(into.by_class, counters.by_class, strict=True)]
    for reason, n in list(counters.retries.items()):
        into.retries[reason] = into.retries.get(reason, 0) + n
    into.token_requests += counters.token_requests
    into.rate_limit_pauses += counters.rate_limit_pauses
    into.cancelled += counters.cancelled
