"""Shared fixtures: a FakeTelegent on 127.0.0.1 and a client bound to it with fast cadences.

Helpers (fast_client, wait_until, the CLI runner...) live in helpers.py, never here.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import pytest
from helpers import fast_client
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import telegent_async as tg
from telegent_async import _client, _scheduler, _telemetry
from telegent_async.testing import FakeTelegent, RedisServer

if TYPE_CHECKING:
    from telegent_async.contrib.temporal import OrderActivities


def pytest_configure(config: pytest.Config) -> None:
    """Ctrl-C reaches the processes the tests interrupt as it would at a terminal.

    A runner started in the background (`cmd &` in a script, nohup) ignores SIGINT; every
    process it starts inherits that, and Python then leaves SIGINT ignored. The CLI at its
    PIN prompt never saw the test's SIGINT (a fresh-clone CI run started so waited out the
    test's 20 s, 2026-12-07). A handler, unlike an ignored signal, is reset by exec, so the
    processes started from here get Python's own."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow scenarios (seconds of real time each) run first, so that in one run of the
    whole suite under xdist (`--dist worksteal`) the quick tests fill the workers around
    them, not after them."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


_TASK_DUMP = pytest.StashKey[threading.Timer]()


@pytest.hookimpl(tryfirst=True)
def pytest_timeout_set_timer(item: pytest.Item, settings: Any) -> None:
    """A second before pytest-timeout fails a test that hangs (pyproject's `timeout`), write
    every asyncio task of its loop, with where each one waits, to the test's captured stderr:
    the failure's own traceback shows only the loop's select(). pytest-timeout sets its own
    timer after this (this returns None)."""
    timer = threading.Timer(max(settings.timeout - 1.0, 0.0), _print_tasks)
    timer.daemon = True
    timer.start()
    item.stash[_TASK_DUMP] = timer


@pytest.hookimpl(tryfirst=True)
def pytest_timeout_cancel_timer(item: pytest.Item) -> None:
    timer = item.stash.get(_TASK_DUMP, None)
    if timer is not None:
        timer.cancel()


def _print_tasks() -> None:
    """The tasks of the loop the main thread runs (found on its stack), with their stacks."""
    frame = sys._current_frames().get(threading.main_thread().ident or 0)
    while frame is not None and not isinstance(frame.f_locals.get("self"), asyncio.BaseEventLoop):
        frame = frame.f_back
    if frame is None:
        return
    for task in asyncio.all_tasks(frame.f_locals["self"]):
        print(f"still waiting: {task!r}", file=sys.stderr)
        task.print_stack(file=sys.stderr)


@pytest.fixture
def no_telegent_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own TELEGENT_* variables must not change what a test sees."""
    for name in ("TOKEN", "ACCOUNT_KEY", "ACCOUNT_SECRET", "BASE_URL", "ALLOW_INSECURE"):
        monkeypatch.delenv(f"TELEGENT_{name}", raising=False)


@pytest.fixture
def short_refusal_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refused credentials pause a watcher's polls 0.2 s doubling, not `REFUSAL_POLICY`'s 1 s
    doubling (tests/test_health.py checks that cadence): a test of a refusal that passes waits
    a fifth as long for the watcher to look again."""
    quick = tg.PollPolicy(initial=0.2, factor=2.0, max_interval=300.0, jitter=0.2)
    monkeypatch.setattr(_scheduler, "REFUSAL_POLICY", quick)


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegent]:
    async with FakeTelegent() as server:
        yield server


@pytest.fixture
async def client(fake: FakeTelegent) -> AsyncIterator[tg.TelegentClient]:
    async with fast_client(fake) as c:
        yield c


@pytest.fixture
def activities(client: tg.TelegentClient) -> OrderActivities:
    """The Temporal activities over `client` (only the tests of the temporal extra ask)."""
    from telegent_async.contrib.temporal import OrderActivities

    return OrderActivities(client)


# -- Redis -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the session; without the binary (or redis-py) Redis tests skip."""
    pytest.importorskip("redis", reason="redis-py is not installed: pip install -e . --group test")
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server not found on PATH: apt-get install redis-server (or brew)")
    with RedisServer(workdir=str(tmp_path_factory.mktemp("redis"))) as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture
def namespace() -> str:
    """A namespace of its own per test, so tests sharing the server never see each other."""
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """Every span a client built in the test records (its `Telemetry` on an SDK provider)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    meters = MeterProvider()
    recorded = _telemetry.Telemetry(provider, meters)
    monkeypatch.setattr(_client, "telemetry", lambda: recorded)
    yield exporter
    provider.shutdown()
    meters.shutdown()
