"""OpenTelemetry: spans and metrics read back from the SDK's in-memory exporter and reader.

Each test gets a `Telemetry` of its own providers (the global ones can be set only once per
process and would make every other test record spans), installed where the client looks it
up. Without OpenTelemetry nothing changes: checked in a subprocess that cannot import it.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from helpers import FAST_POLL, fast_client, process, wait_until
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import telegent_async as tg
from telegent_async import _client, _telemetry, _watcher
from telegent_async.testing import FakeTelegent, Step

ORDER = "JNUOID-otel-1"


class Recorded:
    """The spans and metric points one test produced."""

    def __init__(self) -> None:
        self.spans_exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans_exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.telemetry = _telemetry.Telemetry(self.tracer_provider, self.meter_provider)

    def spans(self, name: str = "telegent.get_order") -> list[ReadableSpan]:
        return [s for s in self.spans_exporter.get_finished_spans() if s.name == name]

    def points(self, metric: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        assert data is not None
        return [
            point
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for m in scope.metrics
            if m.name == metric
            for point in m.data.data_points
        ]

    def values(self, metric: str, key: str | None = None) -> dict[Any, Any]:
        return {
            (p.attributes.get(key) if key else None): getattr(p, "value", None)
            for p in self.points(metric)
        }


@pytest.fixture
def otel(monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorded]:
    recorded = Recorded()
    monkeypatch.setattr(_client, "telemetry", lambda: recorded.telemetry)
    yield recorded
    recorded.tracer_provider.shutdown()
    recorded.meter_provider.shutdown()


async def test_a_lookup_is_one_span_with_id_status_and_retries(
    fake: FakeTelegent, otel: Recorded
) -> None:
    fake.add_order(ORDER, "Complete")
    async with fast_client(fake) as client:
        await client.get_order(ORDER)  # the token first
        fake.inject("503", count=2)
        await client.get_order(ORDER)
    first, second = otel.spans()
    assert first.attributes == {
        "telegent.order_id": ORDER,
        "telegent.retry_count": 0,
        "telegent.order.status": "Complete",
    }
    assert second.attributes is not None and second.attributes["telegent.retry_count"] == 2
    retries = [e for e in second.events if e.name == "telegent.retry"]
    assert [e.attributes and e.attributes["telegent.retry.reason"] for e in retries] == [
        "503",
        "503",
    ]
    assert second.status.is_ok


async def test_a_failed_lookup_records_the_error_type(fake: FakeTelegent, otel: Recorded) -> None:
    async with fast_client(fake) as client:
        with pytest.raises(tg.NotFoundError):
            await client.get_order("JNUOID-missing")
    [span] = otel.spans()
    assert span.attributes is not None
    assert span.attributes["error.type"] == "NotFoundError"
    assert "telegent.order.status" not in span.attributes
    assert span.status.status_code is trace.StatusCode.ERROR
    assert [e.name for e in span.events] == ["exception"]


async def test_aiohttp_trace_configs_see_our_span_as_current(
    fake: FakeTelegent, otel: Recorded
) -> None:
    """What opentelemetry-instrumentation-aiohttp-client does: its HTTP span's parent is the
    span current when the request starts, so it nests under `telegent.get_order`."""
    parents: list[str] = []

    async def on_request_start(*_: object) -> None:
        span = trace.get_current_span()
        parents.append(getattr(span, "name", "none"))

    config = aiohttp.TraceConfig()
    config.on_request_start.append(on_request_start)
    fake.add_order(ORDER, "Complete")
    async with fast_client(fake, trace_configs=[config]) as client:
        await client.get_order(ORDER)
    # The token request runs in a task started from inside the lookup: it nests as well.
    assert parents == ["telegent.get_order", "telegent.get_order"]


def test_trace_configs_are_checked() -> None:
    with pytest.raises(TypeError, match="TraceConfig"):
        tg.TelegentClient(token="t", trace_configs=[object()])  # type: ignore[list-item]


async def test_trace_configs_with_your_own_session_are_refused() -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(TypeError, match="your own session"):
            tg.TelegentClient(token="t", session=session, trace_configs=[aiohttp.TraceConfig()])


async def test_a_long_wait_holds_no_span_but_marks_each_change(
    fake: FakeTelegent, otel: Recorded
) -> None:
    lifecycle = iter(["Scheduled", "Complete"])
    fake.add_order(ORDER, "Submitted")

    def advance(_order: tg.Order) -> None:  # each status seen moves the order on
        fake.add_order(ORDER, next(lifecycle, "Complete"))

    tracer = otel.tracer_provider.get_tracer("the-app")
    async with fast_client(fake) as client:
        with tracer.start_as_current_span("handler"):
            order = await client.wait_for_order(
                ORDER, timeout=5.0, policy=FAST_POLL, on_update=advance
            )
    assert order.succeeded
    [handler] = otel.spans("handler")
    lookups = otel.spans()
    assert len(lookups) >= 3
    # Every span is one lookup, each ended before the next began: none spans the wait.
    for earlier, later in itertools.pairwise(lookups):
        assert earlier.end_time is not None and later.start_time is not None
        assert earlier.end_time <= later.start_time
        assert earlier.parent is not None and earlier.parent.span_id == handler.context.span_id
    changes = [e for e in handler.events if e.name == "telegent.order.status_changed"]
    assert [e.attributes and e.attributes["telegent.order.status"] for e in changes] == [
        "Submitted",
        "Scheduled",
        "Complete",
    ]


async def test_metrics_count_requests_retries_pauses_and_settle_delay(
    fake: FakeTelegent, otel: Recorded
) -> None:
    fake.add_order(ORDER, "Pending")
    async with fast_client(fake) as client:
        fake.inject("503")
        fake.inject("429", retry_after="0.01")
        await client.get_order(ORDER)
        assert otel.values("telegent.watches.pending") in ({}, {None: 0})
        waiting = asyncio.create_task(client.wait_for_order(ORDER, timeout=5.0, policy=FAST_POLL))
        await wait_until(lambda: len(fake.order_requests(ORDER)) >= 4)  # 3 above, 1 of the wait
        assert otel.values("telegent.watches.pending") == {None: 1}
        fake.add_order(ORDER, "Complete")
        await waiting
        stats = client.stats
    assert otel.values("telegent.watches.pending") == {None: 0}
    assert otel.values("telegent.requests", "outcome") == dict(stats.responses)
    assert otel.values("telegent.requests", "outcome")["5xx"] == 1
    assert otel.values("telegent.retries", "reason") == {"503": 1, "429": 1}
    assert otel.values("telegent.rate_limit.pauses") == {None: 1}
    [delay] = otel.points("telegent.order.settle_delay")
    assert delay.attributes == {"telegent.order.status": "Complete"}
    assert delay.count == 1 and 0.0 < delay.sum < 2.0
    assert tuple(delay.explicit_bounds) == _telemetry.SETTLE_DELAY_BUCKETS


async def test_order_ids_are_never_metric_attributes(fake: FakeTelegent, otel: Recorded) -> None:
    ids = [f"JNUOID-otel-many-{n}" for n in range(5)]
    for order_id in ids:
        fake.add_order(order_id, "Complete")
    async with fast_client(fake) as client:
        for order_id in ids:
            await client.wait_for_order(order_id, timeout=5.0, policy=FAST_POLL)
        with pytest.raises(tg.NotFoundError):
            await client.get_order("JNUOID-otel-missing")
    data = otel.reader.get_metrics_data()
    assert data is not None
    text = data.to_json()
    assert "telegent.order.settle_delay" in text and "telegent.requests" in text
    assert "JNUOID" not in text


async def test_counts_of_a_collected_client_stay_in_the_totals(
    fake: FakeTelegent, otel: Recorded
) -> None:
    fake.add_order(ORDER, "Complete")
    for _ in range(2):
        async with fast_client(fake) as client:
            await client.get_order(ORDER)
        del client
    gc.collect()
    assert otel.values("telegent.requests", "outcome") == {"2xx": 4}  # 2 tokens, 2 lookups


async def test_without_opentelemetry_nothing_is_imported_and_lookups_work(
    fake: FakeTelegent,
) -> None:
    fake.add_order("JNUOID-plain", "Complete")
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        sys.modules["opentelemetry"] = None  # as if the `otel` extra were not installed
        import telegent_async as tg
        from telegent_async import _telemetry

        async def main():
            async with tg.TelegentClient(
                account_key="DID-fake-key", account_secret="fake-secret",
                base_url={fake.base_url!r}, allow_insecure=True, requests_per_minute=None,
            ) as client:
                order = await client.wait_for_order("JNUOID-plain", timeout=5.0)
                print(order.raw_status, client.stats.requests)

        asyncio.run(main())
        assert _telemetry.telemetry() is None
        assert not [m for m in sys.modules if m.startswith("opentelemetry.")]
        """
    )
    async with process(
        sys.executable, "-c", script, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as proc:
        stdout, stderr = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, stderr.decode()
    assert stdout.decode().split() == ["Complete", "2"]


async def test_a_fan_out_counts_its_pending_orders_and_their_settle_delays(
    fake: FakeTelegent, otel: Recorded
) -> None:
    quick = [f"JNUOID-otel-fan-{n}" for n in range(4)]
    for order_id in quick:
        fake.add_order(order_id, [Step("Pending", 0.0), Step("Complete", 0.03)])
    fake.add_order("JNUOID-otel-slow", "Pending")
    async with fast_client(fake) as client:
        stream = client.wait_for_orders([*quick, "JNUOID-otel-slow"], policy=FAST_POLL)
        async with stream:
            seen = 0
            async for _outcome in stream:
                seen += 1
                # The slow order at least, and any quick one not settled yet.
                assert otel.values("telegent.watches.pending") == {None: stream.pending}
                assert stream.pending >= 1
                if seen == len(quick):
                    break  # the slow one is left pending: leaving stops its polls
    assert otel.values("telegent.watches.pending") == {None: 0}
    [delays] = otel.points("telegent.order.settle_delay")
    assert delays.count == len(quick) and delays.min > 0.0


async def test_watcher_health_is_exposed_as_metrics(
    fake: FakeTelegent, otel: Recorded, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_watcher, "telemetry", lambda: otel.telemetry)
    fake.add_order("JNOID-1", "Completed")
    fake.fail_tokens("refused", seconds=0.3)
    async with (
        fast_client(fake, max_retries=0) as client,
        tg.OrderWatcher(client) as watcher,
    ):
        await watcher.add("JNOID-1")
        await wait_until(lambda: not watcher.health.credentials_ok, 5.0)
        faults = otel.values("telegent.watcher.faults", "dependency")
        assert faults == {"store": 0, "budget": 0, "credentials": 1, "stopped": 0}
        await watcher.wait("JNOID-1", timeout=10.0)
        assert otel.values("telegent.watcher.faults", "dependency")["credentials"] == 0
        (idle,) = otel.values("telegent.watcher.idle").values()
        assert 0.0 <= idle < 5.0
