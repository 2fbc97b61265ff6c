"""Store locations: one that cannot be used is a `ValueError` naming it when the watcher is made
(a one-line error and exit status 2 in the CLI); `watch list|remove|retry` on SQLite and Redis.
"""

from __future__ import annotations

import os
import pathlib
import sqlite3
from collections.abc import Callable

import pytest
from helpers import api_env, assert_clean, run_cli

import telegent_async as tg
from telegent_async._stores import open_store
from telegent_async._stores.base import NewWatch, Settlement, WatchStore
from telegent_async.testing import FakeTelegent

PASSWORD = "hunter2-redis-pw"


def corrupted(tmp: pathlib.Path) -> str:
    path = tmp / "corrupted.db"
    path.write_bytes(b"this is not an SQLite database, just bytes\n" * 200)
    return str(path)


def newer(tmp: pathlib.Path) -> str:
    path = tmp / "newer.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.execute("CREATE TABLE watches (order_id TEXT)")
    conn.commit()
    conn.close()
    return str(path)


def another_programs(tmp: pathlib.Path) -> str:
    """An SQLite database of another program (version 0, a `watches` table of its own): a
    store must neither write its tables into it nor fail on it with a traceback."""
    path = tmp / "app.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE watches (order_id TEXT, owner TEXT)")
    conn.commit()
    conn.close()
    return str(path)


def unknown_scheme(_tmp: pathlib.Path) -> str:
    return f"postgres://user:{PASSWORD}@db.example/x"


def missing_directory(tmp: pathlib.Path) -> str:
    return str(tmp / "nowhere" / "w.db")


def a_directory(tmp: pathlib.Path) -> str:
    return str(tmp)


def bad_redis_url(_tmp: pathlib.Path) -> str:
    return f"redis://:{PASSWORD}@127.0.0.1:port/0"


def unknown_redis_option(_tmp: pathlib.Path) -> str:
    return f"redis://:{PASSWORD}@127.0.0.1:6379/0?no_such_option=1"


#: A location no store can use, and what its error says (besides naming it).
BAD_LOCATIONS: dict[str, tuple[Callable[[pathlib.Path], str], str]] = {
    "unknown scheme": (unknown_scheme, "unknown store scheme"),
    "not a database": (corrupted, "not a store file"),
    "another program's database": (another_programs, "another program's database"),
    "newer schema": (newer, "store version 99 is newer"),
    "missing directory": (missing_directory, "no such directory"),
    "a directory": (a_directory, "not a file"),
    "bad Redis URL": (bad_redis_url, "not a usable Redis"),
    "unknown Redis option": (unknown_redis_option, "no_such_option"),
}


@pytest.mark.parametrize("kind", sorted(BAD_LOCATIONS))
async def test_an_unusable_location_is_a_value_error_when_the_watcher_is_made(
    kind: str, tmp_path: pathlib.Path, fake: FakeTelegent, client: tg.TelegentClient
) -> None:
    make, words = BAD_LOCATIONS[kind]
    location = make(tmp_path)
    shown = location.replace(PASSWORD, "***")
    with pytest.raises(ValueError, match=words) as caught:
        tg.OrderWatcher(client, location)
    assert shown in str(caught.value) and PASSWORD not in str(caught.value)
    assert not fake.requests


@pytest.mark.parametrize("kind", sorted(BAD_LOCATIONS))
async def test_the_cli_says_so_in_one_line_and_exits_2(
    kind: str, tmp_path: pathlib.Path, fake: FakeTelegent
) -> None:
    make, words = BAD_LOCATIONS[kind]
    location = make(tmp_path)
    commands = [
        ("watch", "list", "--store", location),
        ("watch", "add", "--store", location, "JNOID-1"),
        ("watch", "run", "--store", location),
        ("wait", "--state", location, "JNOID-1"),
    ]
    for command in commands:
        result = await run_cli(*command, env=api_env(fake))
        assert_clean(result)
        assert result.code == 2, command
        (line,) = result.err.splitlines()
        assert words in line and "error:" in line and PASSWORD not in line, command
        assert "UsageError" not in line, command  # not "the watcher stopped: UsageError: ..."
    assert not fake.requests


@pytest.mark.skipif(os.geteuid() == 0, reason="root may read and write any file")
def test_a_file_without_permission_is_a_value_error(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "w.db"
    path.write_bytes(b"")
    path.chmod(0o400)
    with pytest.raises(ValueError, match="no permission"):
        open_store(path)


def test_a_redis_budget_refuses_an_unusable_url_when_it_is_made() -> None:
    url = unknown_redis_option(pathlib.Path())
    with pytest.raises(ValueError, match="no_such_option") as caught:
        tg.RedisBudget(url, 60)
    assert "redis://:***@127.0.0.1:6379/0" in str(caught.value)
    assert PASSWORD not in str(caught.value)


@pytest.fixture(params=["sqlite", "redis"])
def location(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "watches.db")
    url: str = request.getfixturevalue("redis_url")
    return url


async def settle_some(store: WatchStore, outcomes: dict[str, tg.TelegentError | None]) -> None:
    claims = await store.claim(len(outcomes), 60.0, "earlier-run")
    await store.settle([Settlement(c, None, outcomes[c.order_id]) for c in claims])


async def test_watch_list_remove_and_retry(location: str, namespace: str) -> None:
    store = open_store(location, namespace=namespace)
    try:
        await store.add([NewWatch(i) for i in ("JNOID-a", "JNOID-b", "JNOID-c", "JNOID-d")])
        gone = tg.NotFoundError(404, "Order not found", None)
        await settle_some(store, {"JNOID-a": gone, "JNOID-b": gone})
    finally:
        await store.aclose()
    where = ("--store", location, "--namespace", namespace)

    listed = await run_cli("watch", "list", *where, "--json")
    assert_clean(listed)
    rows = listed.json_lines()
    assert list(rows) == ["JNOID-a", "JNOID-b", "JNOID-c", "JNOID-d"]
    assert [rows[i]["settled"] for i in rows] == [True, True, False, False]
    assert "4 watches" in listed.err and "2 settled, 2 pending" in listed.err
    assert listed.code == 0

    retried = await run_cli("watch", "retry", *where, "JNOID-a", "JNOID-c", "JNOID-x")
    assert (retried.code, retried.out) == (0, "")
    assert "1 of 3 watches re-armed" in retried.err and "2 not settled" in retried.err

    removed = await run_cli("watch", "remove", *where, "JNOID-b", "JNOID-d", "JNOID-x")
    assert removed.code == 0
    assert "2 of 3 watches removed" in removed.err and "1 not watched" in removed.err

    rows = (await run_cli("watch", "list", *where, "--json")).json_lines()
    assert list(rows) == ["JNOID-a", "JNOID-c"]
    assert (rows["JNOID-a"]["settled"], rows["JNOID-a"]["error"]) == (False, None)
    assert PASSWORD not in listed.err


async def test_watch_help_lists_remove_and_retry() -> None:
    result = await run_cli("watch", "--help")
    assert result.code == 0
    assert "remove" in result.out and "retry" in result.out
    retry = await run_cli("watch", "retry", "--help")
    assert "Re-arm settled watches" in retry.out


async def test_an_unreachable_redis_store_is_one_line_and_exit_2(fake: FakeTelegent) -> None:
    # Nothing listens on port 1: the offline commands cannot reach the store at all.
    location = "redis://127.0.0.1:1/0"
    for command in (
        ("watch", "list", "--store", location),
        ("watch", "add", "--store", location, "JNOID-1"),
    ):
        result = await run_cli(*command, env=api_env(fake))
        assert_clean(result)
        assert result.code == 2, command
        (line,) = result.err.splitlines()
        assert "unavailable" in line and "error:" in line, command
    assert not fake.requests
