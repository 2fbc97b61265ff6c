"""Issue 23 at the command line: bad input named by flag and line, a wrong base URL that fails
the run instead of filing orders as "not found", and the fake server's `--ids-file`."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import io
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    FAST,
    KEY,
    SECRET,
    api_env,
    assert_clean,
    clean_env,
    run_cli,
)

from telegent_async._stores.sqlite import SQLiteStore
from telegent_async.cli._args import build_parser
from telegent_async.cli._outcomes import busiest_window
from telegent_async.cli._session import start
from telegent_async.cli._terminal import Console
from telegent_async.cli._watch import wait_with_state
from telegent_async.testing import FakeTelegent


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegent]:
    async with FakeTelegent(account_key=KEY, account_secret=SECRET) as server:
        server.add_order("JNUOID-done", "Complete")
        yield server


async def test_a_bad_id_in_from_file_is_reported_with_its_line(
    fake: FakeTelegent, tmp_path: Path
) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text(f"# tonight's batch\nJNUOID-done\n\nJNUOID-{'9' * 300}\nJNUOID-ok\n")
    result = await run_cli("get", *FAST, "--from-file", str(ids), env=api_env(fake))
    assert result.code == 2
    assert f"invalid order ID ({ids}, line 4): order_id is 307 characters" in result.err
    stdin = await run_cli("get", *FAST, "--from-file", "-", env=api_env(fake), stdin=b"ok\n\x01x\n")
    assert "invalid order ID (stdin, line 2)" in stdin.err
    assert fake.request_count == 0


async def test_a_token_with_an_account_key_names_the_flags(fake: FakeTelegent) -> None:
    flags = ("--token", "t", "--account-key", KEY)
    result = await run_cli("get", *FAST, *flags, "JNUOID-done", env=api_env(fake))
    assert result.code == 2
    assert "--token was given together with --account-key: pass a token" in result.err
    assert fake.request_count == 0


async def test_an_empty_base_url_variable_is_a_usage_error(fake: FakeTelegent) -> None:
    env = clean_env(TELEGENT_BASE_URL="", TELEGENT_TOKEN="t")
    result = await run_cli("get", "JNUOID-done", env=env)
    assert (result.code, result.err.count("\n")) == (2, 1)
    assert "TELEGENT_BASE_URL is set but empty" in result.err


async def test_plain_http_without_insecure_names_the_flag(fake: FakeTelegent) -> None:
    result = await run_cli("get", "JNUOID-done", env=api_env(fake))
    assert result.code == 2
    assert "--insecure" in result.err and "allow_insecure" not in result.err
    assert_clean(result)


@pytest.mark.parametrize("command", ["get", "wait"])
async def test_a_wrong_base_url_fails_the_run_and_files_no_order(
    fake: FakeTelegent, command: str
) -> None:
    env = api_env(fake)
    env["TELEGENT_BASE_URL"] = fake.base_url.replace("/v1.0", "/v2.0")
    result = await run_cli(command, *FAST, "JNUOID-done", "JNUOID-other", env=env)
    assert result.code == 2  # a setup error, not 1 ("some orders ... are unknown (404)")
    assert result.out == ""  # no report filing the orders as "not found"
    assert "the base URL has no API" in result.err and "--base-url" in result.err
    assert "Not found" not in result.err + result.out
    assert_clean(result)


async def test_a_wrong_base_url_is_no_order_outcome_in_json(fake: FakeTelegent) -> None:
    env = api_env(fake)
    env["TELEGENT_BASE_URL"] = fake.base_url.replace("/v1.0", "")
    result = await run_cli("get", "--json", *FAST, "JNUOID-done", env=env)
    assert result.code == 2 and result.out == ""


# -- 3. reports that agree with themselves ----------------------------------------------------


async def test_an_interrupted_state_run_reports_what_the_store_holds_as_settled(
    fake: FakeTelegent, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C lands right after the store committed a settled outcome, before the run's
    report was told of it: the report must still count it, as the resume will."""
    ids = [f"JNUOID-s{n}" for n in range(5)]
    for order_id in ids:
        fake.add_order(order_id, "Complete")
    state = tmp_path / "state.db"
    args = build_parser().parse_args(["wait", *FAST, "--state", str(state), *ids])
    for name, value in api_env(fake).items():
        monkeypatch.setenv(name, value)
    options, run, output = start("wait", args, Console(io.StringIO()))
    main = asyncio.ensure_future(wait_with_state(run, options, output, args))
    settle = SQLiteStore.settle

    async def settle_then_interrupt(store: SQLiteStore, settlements: Any) -> list[str]:
        settled = await settle(store, settlements)
        main.cancel()  # the signal handler's cancel, at the worst moment
        return settled

    monkeypatch.setattr(SQLiteStore, "settle", settle_then_interrupt)
    with pytest.raises(asyncio.CancelledError):
        await main
    monkeypatch.setattr(SQLiteStore, "settle", settle)
    async with contextlib.aclosing(SQLiteStore(state)) as store:
        in_store = [s for s in [await store.get(i) for i in ids] if s is not None and s.settled]
    assert in_store  # the interrupt came after at least one settle
    assert run.tally.done == len(in_store)
    # And the resume says the same number.
    resumed = await run_cli("wait", *FAST, "--state", str(state), *ids, env=api_env(fake))
    assert f"resuming: {len(in_store)} of 5 orders settled in an earlier run" in resumed.err


async def test_the_summary_rate_agrees_with_the_budget(fake: FakeTelegent) -> None:
    """300 lookups at once fit a budget of 600 a minute; the average rate of a run shorter
    than the budget's minute says nothing about it and must not read like a breach."""
    ids = [f"JNUOID-r{n}" for n in range(300)]
    for order_id in ids:
        fake.add_order(order_id, "Complete")
    result = await run_cli("get", "--insecure", "--rate", "600", *ids, env=api_env(fake))
    assert result.code == 0, result.err
    summary = " ".join(result.out.split("Summary", 1)[1].split())
    assert "(10/s)" not in summary  # the old "paced by a budget of 600/min (10/s)"
    busiest = re.search(r"at most (\d+) in any minute, within the budget of 600 a minute", summary)
    assert busiest is not None, summary
    assert int(busiest.group(1)) == 301  # every lookup and the token request


def test_busiest_window_counts_whole_seconds() -> None:
    per_second = collections.Counter({0: 5, 30: 7, 59: 1, 60: 9, 130: 2})
    assert busiest_window(per_second, 60) == 17  # seconds 1..60: 7 + 1 + 9
    assert busiest_window(per_second, 1) == 9
    assert busiest_window(collections.Counter(), 60) == 0
