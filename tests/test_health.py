"""The pure parts of riding out faults: which faults pass, the cadences, dead lease holders,
and the health an outage adds up to (no socket, no real sleep beyond a few milliseconds)."""

from __future__ import annotations

import asyncio
import errno
import logging
import sqlite3
from datetime import datetime, timezone

import pytest
import redis.exceptions

import telegent_async as tg
from telegent_async._health import (
    FAULT_POLICY,
    REFUSAL_POLICY,
    Outage,
    WatcherHealth,
    is_refusal,
    is_transient,
    retrying,
)
from telegent_async._stores.processes import ProcessName, is_gone, this_process


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (sqlite3.OperationalError("database is locked"), True),
        (sqlite3.OperationalError("database table is locked: watches"), True),
        (sqlite3.OperationalError("no such table: watches"), False),
        (sqlite3.DatabaseError("file is not a database"), False),
        (ValueError("watches.db: store version 9 is not supported"), False),
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), True),
        (ConnectionResetError(errno.ECONNRESET, "reset"), True),
        (TimeoutError(), True),
        (asyncio.TimeoutError(), True),
        (OSError(errno.EHOSTUNREACH, "no route to host"), True),
        (PermissionError(errno.EACCES, "denied"), False),
        (redis.exceptions.ConnectionError("Error 111 connecting"), True),
        (redis.exceptions.BusyLoadingError("Redis is loading the dataset in memory"), True),
        (redis.exceptions.TimeoutError("Timeout reading from socket"), True),
        (redis.exceptions.ReadOnlyError("READONLY You can't write against a replica"), True),
        (redis.exceptions.ResponseError("LOADING Redis is loading"), True),
        (redis.exceptions.ResponseError("MASTERDOWN Link with MASTER is down"), True),
        (redis.exceptions.ResponseError("WRONGTYPE Operation against a key"), False),
        (redis.exceptions.NoScriptError("NOSCRIPT"), False),
        (tg.BudgetUnavailableError("away"), True),
        (tg.NotFoundError(404, "no such order", None), False),
        (ZeroDivisionError(), False),
    ],
)
def test_which_faults_pass_by_themselves(error: BaseException, transient: bool) -> None:
    assert is_transient(error) is transient


def test_only_refused_credentials_are_refusals() -> None:
    assert is_refusal(tg.AuthenticationError(401, "invalid token", None))
    assert is_refusal(tg.PermissionDeniedError(403, "forbidden", None))
    assert not is_refusal(tg.NotFoundError(404, "no such order", None))
    assert not is_refusal(tg.TransportError("reset"))


def no_jitter(delay: float) -> float:
    return delay


def test_a_fault_is_retried_at_most_a_second_apart() -> None:
    # Polling resumes within 2 s of the dependency's return: the longest pause is 1 s.
    delays = [FAULT_POLICY.delay(n) for n in range(200)]
    assert max(delays) <= 1.0 and min(delays) >= 0.05
    assert [FAULT_POLICY.delay(n, no_jitter) for n in range(6)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]


def test_refused_credentials_pause_longer_each_time_up_to_minutes() -> None:
    pauses = [REFUSAL_POLICY.delay(n, no_jitter) for n in range(12)]
    assert pauses[:4] == [1.0, 2.0, 4.0, 8.0]
    assert pauses[-1] == 300.0 and max(pauses) == 300.0


ME = ProcessName("host-a", "boot-1", 100, "5000")


@pytest.mark.parametrize(
    ("holder", "processes", "gone"),
    [
        (ProcessName("host-a", "boot-1", 200, "6000"), {200: ("S", "6000")}, False),
        (ProcessName("host-a", "boot-1", 200, "6000"), {}, True),  # no such process
        (ProcessName("host-a", "boot-1", 200, "6000"), {200: ("Z", "6000")}, True),  # zombie
        (ProcessName("host-a", "boot-1", 200, "6000"), {200: ("S", "7000")}, True),  # PID reused
        (ProcessName("host-a", "boot-0", 200, "6000"), {200: ("S", "6000")}, True),  # rebooted
        (ProcessName("host-b", "boot-9", 200, "6000"), {}, False),  # another host: time-based
        (ProcessName("host-a", "", 200, ""), {}, False),  # no boot identity: time-based
        (ProcessName("host-a", "boot-1", 100, "5000"), {}, False),  # this very process
        (ProcessName("host-a", "boot-1", 100, "4000"), {}, True),  # an earlier one, same PID
    ],
)
def test_a_lease_holder_is_gone_only_when_certain(
    holder: ProcessName, processes: dict[int, tuple[str, str]], gone: bool
) -> None:
    assert is_gone(holder, ME, processes.get) is gone


def test_this_process_is_alive_to_itself() -> None:
    me = this_process()
    assert not is_gone(me, me)
    assert me.started  # Linux: from /proc/self/stat


async def test_retrying_rides_out_transient_faults_and_logs_the_outage_twice(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fast = tg.PollPolicy(initial=0.001, factor=2.0, max_interval=0.004, jitter=0.0)
    outage = Outage("store")
    failures = [ConnectionResetError(), sqlite3.OperationalError("database is locked")] * 3
    calls = 0

    async def operation() -> str:
        nonlocal calls
        calls += 1
        if failures:
            raise failures.pop()
        return "done"

    with caplog.at_level(logging.WARNING, "telegent_async"):
        assert await retrying(operation, outage, policy=fast) == "done"
    assert calls == 7 and outage.error is None
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert warnings[0].startswith("store unavailable: OperationalError: database is locked")
    assert "store available again after" in warnings[1]


async def test_retrying_raises_what_does_not_pass_and_gives_up_at_its_deadline() -> None:
    outage = Outage("budget")

    async def corrupt() -> None:
        raise sqlite3.DatabaseError("file is not a database")

    with pytest.raises(sqlite3.DatabaseError):
        await retrying(corrupt, outage)
    assert outage.error is None  # not an outage: a fault that does not pass

    async def away() -> None:
        raise ConnectionRefusedError()

    loop = asyncio.get_running_loop()
    with pytest.raises(ConnectionRefusedError):
        await retrying(away, outage, give_up_at=loop.time() + 0.25)
    assert outage.fault is not None and outage.fault.startswith("budget unavailable")


def test_health_names_the_worst_fault_first() -> None:
    store, credentials = Outage("store"), Outage("credentials", "refused")
    healthy = WatcherHealth.of(
        running=True,
        last_poll_at=0.0,
        paused_until=None,
        fatal=None,
        store=store,
        budget=None,
        credentials=credentials,
    )
    assert healthy == WatcherHealth(
        True, datetime(1970, 1, 1, tzinfo=timezone.utc), True, True, True, None, None
    )
    credentials.error = tg.AuthenticationError(401, "invalid credentials", None)
    store.error = ConnectionRefusedError("refused")
    sick = WatcherHealth.of(
        running=True,
        last_poll_at=None,
        paused_until=60.0,
        fatal=None,
        store=store,
        budget=None,
        credentials=credentials,
    )
    assert (sick.store_ok, sick.credentials_ok, sick.running) == (False, False, True)
    assert sick.fault == "store unavailable: ConnectionRefusedError: refused"
    assert sick.paused_until == datetime(1970, 1, 1, 0, 1, tzinfo=timezone.utc)
    dead = WatcherHealth.of(
        running=True,
        last_poll_at=None,
        paused_until=None,
        fatal=sqlite3.DatabaseError("file is not a database"),
        store=Outage("store"),
        budget=None,
        credentials=Outage("credentials"),
    )
    assert not dead.running and not dead.store_ok
    assert dead.fault == "stopped: store unavailable: DatabaseError: file is not a database"
