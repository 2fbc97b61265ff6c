"""`wait --state FILE` resumes after Ctrl-C or kill -9; `watch add|list|run` (SIGTERM stops it).

Every CLI run is a real subprocess against a FakeTelegent in this test's event loop, so the
fake's request log counts every poll of every run; the state file is read back with plain
`sqlite3`. Each process is stopped by its PID.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from helpers import FAST, KEY, SECRET, api_env, assert_clean, cli_process, finish, run_cli

from telegent_async.testing import FakeTelegent

if sys.version_info >= (3, 11):
    from asyncio import timeout
else:  # pragma: no cover
    from async_timeout import timeout

ENOUGH = 20.0  # seconds: a CLI run that has not got there by then has hung
SETTLED_AT_ONCE = ["JNUOID-done1", "JNUOID-done2", "JNOID-8a"]


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegent]:
    async with FakeTelegent(account_key=KEY, account_secret=SECRET) as server:
        server.add_order("JNUOID-done1", "Complete")
        server.add_order("JNUOID-done2", "Complete")
        server.add_order("JNOID-8a", "Rejected", message="8A-ACCOUNT_NUM_REQ_OR_INCORRECT")
        yield server


async def read_json_lines(proc: asyncio.subprocess.Process, count: int) -> list[dict[str, Any]]:
    stdout = proc.stdout
    assert stdout is not None

    async def read() -> list[dict[str, Any]]:
        return [json.loads(await stdout.readline()) for _ in range(count)]

    return await asyncio.wait_for(read(), ENOUGH)  # asyncio.timeout is 3.11+


def watches(db: Path) -> dict[str, dict[str, Any]]:
    """The state file's rows, read as any other process would."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.row_factory = sqlite3.Row
        return {row["order_id"]: dict(row) for row in conn.execute("SELECT * FROM watches")}


async def until_polled(db: Path, ids: list[str]) -> dict[str, dict[str, Any]]:
    """Wait until every one of `ids` has a recorded answer and no claim is held."""
    async with timeout(ENOUGH):
        while True:
            rows = watches(db) if db.exists() else {}  # noqa: ASYNC240
            if all(i in rows and rows[i]["attempts"] > 0 and not rows[i]["leased_by"] for i in ids):
                return rows
            await asyncio.sleep(0.02)


def first_request_after(fake: FakeTelegent, order_id: str, moment: float) -> float:
    """Wall-clock time of the first request for `order_id` the fake saw after `moment`."""
    offset = time.time() - time.monotonic()
    times = [r.at for r in fake.order_requests(order_id) if r.at > moment - offset]
    assert times, f"{order_id} was not polled again"
    return min(times) + offset


@pytest.mark.slow
async def test_wait_state_resumes_after_ctrl_c(fake: FakeTelegent, tmp_path: Path) -> None:
    fake.add_order("JNUOID-late", "Pending")  # until the first run is over, however slow
    db = tmp_path / "job.db"
    ids = [*SETTLED_AT_ONCE, "JNUOID-late"]
    command = ("wait", "--json", *FAST, "--state", str(db), *ids)
    async with cli_process(fake, *command) as first:
        early = await read_json_lines(first, 3)
        await until_polled(db, ids)
        first.send_signal(signal.SIGINT)
        code, _, err = await finish(first)
    assert code == 130 and "Traceback" not in err
    assert "interrupted with 1 order not settled yet" in err  # the report, as `wait` gives it
    assert {row["order_id"] for row in early} == set(SETTLED_AT_ONCE)
    stored = watches(db)["JNUOID-late"]
    assert stored["settled_seq"] is None and stored["leased_by"] is None  # given back
    fake.add_order("JNUOID-late", "Complete")  # it settles between the runs
    second_started = time.time()

    result = await run_cli(*command, env=api_env(fake))
    assert_clean(result)
    rows = result.json_lines()
    assert list(rows) == [*SETTLED_AT_ONCE, "JNUOID-late"]  # earlier ones first, then the rest
    assert rows["JNUOID-done1"]["outcome"] == "completed"
    assert rows["JNOID-8a"]["carrier_code"] == "8A"
    assert rows["JNUOID-late"]["outcome"] == "completed"
    assert result.code == 1  # 8A needs action, as a plain `wait` would say
    assert "3 of 4 orders settled in an earlier run" in result.err
    for order_id in SETTLED_AT_ONCE:  # settled in the first run: never polled again
        assert len(fake.order_requests(order_id)) == 1
    # The pending order carried on: its attempts count every poll of both runs, and the
    # second run's first poll did not come before the stored next poll.
    final, polls = watches(db)["JNUOID-late"], len(fake.order_requests("JNUOID-late"))
    assert final["attempts"] > stored["attempts"]
    assert polls - 1 <= final["attempts"] <= polls  # a poll cut short by Ctrl-C is not counted
    assert first_request_after(fake, "JNUOID-late", second_started) >= stored["next_poll"] - 0.01

    # Everything settled: a third run reports it all at once, without a single poll.
    before_third = len(fake.order_requests())
    third = await run_cli(*command, env=api_env(fake), timeout=5.0)
    assert (list(third.json_lines()), third.code) == (list(rows), 1)
    assert len(fake.order_requests()) == before_third
    assert all(row["acked_at"] is not None for row in watches(db).values())


@pytest.mark.slow
async def test_wait_state_after_kill_9_keeps_the_stored_schedule(
    fake: FakeTelegent, tmp_path: Path
) -> None:
    # Port-in cadence: the next poll of a pending order is 10 minutes after its first.
    fake.add_order("JNOID-pending", "Pending", order_type="PortIn")
    db = tmp_path / "job.db"
    ids = [*SETTLED_AT_ONCE, "JNOID-pending"]
    command = ("wait", "--json", *FAST, "--preset", "portin", "--timeout", "2", "--state", str(db))
    async with cli_process(fake, *command, *ids) as first:
        await read_json_lines(first, 3)
        before = await until_polled(db, ids)
        first.send_signal(signal.SIGKILL)
        await first.wait()
    assert before["JNOID-pending"]["next_poll"] > time.time() + 400  # 600 s, jittered by 20 %

    result = await run_cli(*command, *ids, env=api_env(fake))
    assert_clean(result)
    rows = result.json_lines()
    assert set(rows) == set(ids)  # every order reported, incl. those of the killed run
    assert [rows[i]["outcome"] for i in SETTLED_AT_ONCE] == [
        "completed",
        "completed",
        "needs_action",
    ]
    # Not polled from scratch: no poll before its stored time; timed out for this run only.
    assert len(fake.order_requests("JNOID-pending")) == 1
    assert rows["JNOID-pending"]["outcome"] == "timed_out"
    assert rows["JNOID-pending"]["status"] == "PENDING"  # the last status, from the store
    assert result.code == 3
    assert all(len(fake.order_requests(i)) == 1 for i in SETTLED_AT_ONCE)
    after = watches(db)["JNOID-pending"]
    assert after["settled_seq"] is None  # still watched: the next run carries on with it
    assert (after["attempts"], after["next_poll"]) == (1, before["JNOID-pending"]["next_poll"])


async def test_watch_add_and_list(fake: FakeTelegent, tmp_path: Path) -> None:
    db = str(tmp_path / "w.db")
    added = await run_cli(
        "watch", "add", "--store", db, "--tag", "ticket-42", "--preset", "portin",
        "--deadline", "2030-01-01T00:00:00+00:00", "JNUOID-a", "JNUOID-b",
    )  # fmt: skip
    assert (added.code, "2 of 2 orders added" in added.err) == (0, True)
    again = await run_cli("watch", "add", "--store", db, "JNUOID-b", "JNUOID-c")
    assert "1 of 2 orders added" in again.err  # JNUOID-b left as it was
    stored = watches(Path(db))
    assert stored["JNUOID-b"]["tag"] == "ticket-42" and stored["JNUOID-c"]["tag"] is None
    assert json.loads(stored["JNUOID-a"]["policy"])["initial"] == 600.0
    assert stored["JNUOID-a"]["deadline"] == 1893456000.0

    listed = await run_cli("watch", "list", "--store", db, "--json")
    assert_clean(listed)
    rows = listed.json_lines()
    assert list(rows) == ["JNUOID-a", "JNUOID-b", "JNUOID-c"]
    assert rows["JNUOID-a"]["tag"] == "ticket-42"
    assert (rows["JNUOID-a"]["attempts"], rows["JNUOID-a"]["settled"]) == (0, False)
    assert rows["JNUOID-a"]["next_poll"].endswith("+00:00")
    assert "3 watches" in listed.err and "3 pending" in listed.err
    table = await run_cli("watch", "list", "--store", db)
    assert "ticket-42" in table.out and "pending" in table.out and "NEXT POLL" in table.out
    assert not fake.requests  # adding and listing need no API and no credentials


async def test_watch_add_bad_input_exits_2(tmp_path: Path) -> None:
    db = str(tmp_path / "w.db")
    for args in (["--deadline", "2030-01-01T00:00:00", "JNUOID-a"], [" JNUOID-a"], ["--tag", "x"]):
        result = await run_cli("watch", "add", "--store", db, *args)
        assert result.code == 2, args
        assert "error:" in result.err and "Traceback" not in result.err
    assert not os.path.exists(db) or not watches(Path(db))  # noqa: ASYNC240


@pytest.mark.slow
async def test_watch_run_prints_acks_and_stops_on_sigterm(
    fake: FakeTelegent, tmp_path: Path
) -> None:
    fake.add_order("JNUOID-pending", "Pending")
    db = str(tmp_path / "w.db")
    await run_cli("watch", "add", "--store", db, "--tag", "t1", *SETTLED_AT_ONCE)
    await run_cli("watch", "add", "--store", db, "JNUOID-pending")
    async with cli_process(fake, "watch", "run", "--json", *FAST, "--store", db) as proc:
        rows = {row["order_id"]: row for row in await read_json_lines(proc, 3)}
        await until_polled(Path(db), ["JNUOID-pending"])
        proc.send_signal(signal.SIGTERM)
        code, out, err = await finish(proc)
    assert (code, "stopped watching" in err, "Traceback" in err) == (0, True, False)
    assert set(rows) == set(SETTLED_AT_ONCE) and not out.strip()  # nothing more
    assert rows["JNOID-8a"]["outcome"] == "needs_action" and rows["JNOID-8a"]["tag"] == "t1"
    stored = watches(Path(db))
    assert all(stored[i]["acked_at"] is not None for i in SETTLED_AT_ONCE)
    assert stored["JNUOID-pending"]["leased_by"] is None  # no claim left behind

    # A second run prints nothing already acknowledged.
    async with cli_process(fake, "watch", "run", "-v", "--json", *FAST, "--store", db) as proc:
        assert proc.stderr is not None
        async with timeout(ENOUGH):
            while b"watching" not in await proc.stderr.readline():
                pass  # the watcher runs: its signal handlers are in place
        await asyncio.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        code, out, _ = await finish(proc)
    assert (code, out) == (0, "")
    assert all(len(fake.order_requests(i)) == 1 for i in SETTLED_AT_ONCE)


async def test_sigterm_stops_wait_like_ctrl_c(fake: FakeTelegent) -> None:
    fake.add_order("JNUOID-pending", "Pending")
    async with cli_process(fake, "wait", "--json", *FAST, "JNUOID-done1", "JNUOID-pending") as proc:
        rows = await read_json_lines(proc, 1)
        proc.send_signal(signal.SIGTERM)
        code, _, err = await finish(proc)
    assert rows[0]["order_id"] == "JNUOID-done1"
    assert code == 130  # interrupted: the report of what settled, not a silent death
    assert "interrupted with 1 order not settled yet" in err and "Traceback" not in err


async def test_watch_run_with_a_wrong_secret_exits_2_leaving_every_watch_pending(
    fake: FakeTelegent, tmp_path: Path
) -> None:
    db = str(tmp_path / "w.db")
    await run_cli("watch", "add", "--store", db, *SETTLED_AT_ONCE)
    wrong = {**api_env(fake), "TELEGENT_ACCOUNT_SECRET": "not-the-secret"}
    refused = await run_cli("watch", "run", *FAST, "--retries", "0", "--store", db, env=wrong)
    assert refused.code == 2 and refused.out == ""
    lines = refused.err.strip().splitlines()
    assert "credentials refused" in lines[-1] and "left pending" in lines[-1]
    assert "Traceback" not in refused.err and "not-the-secret" not in refused.err
    assert all(row["settled_seq"] is None for row in watches(Path(db)).values())
    assert fake.order_requests() == []  # no token, no lookup
    # The right secret: every watch settles (nothing was poisoned by the refusal).
    async with cli_process(fake, "watch", "run", "--json", *FAST, "--store", db) as proc:
        rows = {row["order_id"]: row for row in await read_json_lines(proc, 3)}
        proc.send_signal(signal.SIGTERM)
        code, _, _ = await finish(proc)
    assert code == 0 and set(rows) == set(SETTLED_AT_ONCE)


async def test_watch_run_on_a_file_that_is_not_a_database_exits_2_with_one_line(
    fake: FakeTelegent, tmp_path: Path
) -> None:
    db = tmp_path / "w.db"
    db.write_bytes(b"this is not an SQLite file, but it is long enough to have a header" * 20)
    result = await run_cli("watch", "run", *FAST, "--store", str(db), env=api_env(fake))
    assert result.code == 2, result.err
    assert len(result.err.strip().splitlines()) == 1 and "not a database" in result.err
    assert "Traceback" not in result.err
