"""The `telegent-orders` CLI: rendering and exit statuses in-process (`run_cli`), and a few
smoke tests as real subprocesses: `python -m telegent_async`, a tty, Ctrl-C, SIGTERM.

The FakeTelegent runs in the test's own event loop, so every subprocess is driven with
asyncio's subprocess API (a blocking `subprocess.run` would starve the server) and always under
a timeout.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from helpers import (
    CLI_TIMEOUT,
    FAST,
    FAST_POLL,
    KEY,
    SECRET,
    api_env,
    assert_clean,
    clean_env,
    per_poll,
    process,
    run_cli,
)

from telegent_async.cli import _session
from telegent_async.testing import FakeTelegent, Step

TIMEOUT = CLI_TIMEOUT

EIGHT_A = "8A-ACCOUNT_NUM_REQ_OR_INCORRECT"
SIX_P = "6P-REMOVE NUMBER LOCK ON VERIZON ACCOUNT"


@pytest.fixture(autouse=True)
def fast_provision_cadence(monkeypatch: pytest.MonkeyPatch) -> None:
    """`wait` run in-process polls on FAST_POLL rather than the provision preset's 1 s, so an
    order that settles after the first poll costs tens of milliseconds (subprocesses keep 1 s)."""
    monkeypatch.setitem(_session.PRESETS, "provision", FAST_POLL)


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegent]:
    async with FakeTelegent(account_key=KEY, account_secret=SECRET) as server:
        server.add_order("JNUOID-done", "Complete")
        server.add_order("JNUOID-soon", [Step("Pending"), Step("Complete", 0.05)])
        server.add_order("JNUOID-pending", "Pending")
        server.add_order("JNOID-8a", "Rejected", message=EIGHT_A, order_type="Port-In")
        server.add_order("JNOID-6p", "Error", message=SIX_P, order_type="Port-In")
        yield server


# -- get ---------------------------------------------------------------------------------


async def test_get_json_one_lookup_each(fake: FakeTelegent) -> None:
    ids = ["JNUOID-done", "JNOID-8a", "JNUOID-pending", "JNUOID-missing"]
    result = await run_cli("get", "--json", *FAST, *ids, env=api_env(fake))
    assert_clean(result)
    rows = result.json_lines()
    assert list(rows) == ids  # input order, nothing else on stdout
    assert rows["JNUOID-done"]["outcome"] == "completed"
    assert rows["JNUOID-done"]["status"] == "COMPLETE"
    assert rows["JNUOID-pending"]["outcome"] == "pending"
    assert rows["JNOID-8a"]["carrier_code"] == "8A"
    assert rows["JNOID-8a"]["raw_status"] == "Rejected"
    assert "account number" in rows["JNOID-8a"]["remedy"]
    assert rows["JNUOID-missing"]["outcome"] == "not_found"
    assert "404" in rows["JNUOID-missing"]["error"]["text"]
    assert rows["JNUOID-missing"]["error"]["type"] == "NotFoundError"
    assert result.code == 1  # needs action + not found; a pending lookup alone is fine
    assert all(len(fake.order_requests(order_id)) == 1 for order_id in ids)


async def test_get_human_report_groups_and_explains(fake: FakeTelegent) -> None:
    result = await run_cli("get", *FAST, "JNOID-8a", "JNOID-6p", "JNUOID-done", env=api_env(fake))
    assert_clean(result)
    assert result.code == 1
    out = result.out
    assert "Completed (1)" in out
    assert "Failed (1)" in out
    assert "Needs action (1)" in out
    # Grouped by code with counts, each with its description and remedy.
    assert re.search(r"^  8A\s+x1\s+ACCOUNT_NUM_REQ_OR_INCORRECT$", out, re.M)
    assert re.search(r"^  6P\s+x1\s+REMOVE NUMBER LOCK", out, re.M)
    assert "number lock" in out and "Remedy:" in out
    assert "exit status 1" in out


async def test_get_pending_only_exits_0(fake: FakeTelegent) -> None:
    result = await run_cli("get", *FAST, "JNUOID-done", "JNUOID-pending", env=api_env(fake))
    assert (result.code, "Pending (1)" in result.out) == (0, True)


# -- wait --------------------------------------------------------------------------------


async def test_wait_json_statuses_and_codes(fake: FakeTelegent) -> None:
    # Pending at the CLI's first two polls, complete from the third (FAST_POLL: milliseconds).
    ids = ["JNUOID-later", "JNOID-8a", "JNOID-6p"]
    async with per_poll(fake, "JNUOID-later", ["Pending", "Complete"]):
        result = await run_cli("wait", "--json", *FAST, *ids, env=api_env(fake))
    assert_clean(result)
    rows = result.json_lines()
    assert set(rows) == set(ids)
    assert rows["JNUOID-later"]["status"] == "COMPLETE"
    assert len(fake.order_requests("JNUOID-later")) >= 2  # it was pending at first
    assert (rows["JNOID-8a"]["outcome"], rows["JNOID-8a"]["carrier_code"]) == ("needs_action", "8A")
    assert (rows["JNOID-6p"]["outcome"], rows["JNOID-6p"]["carrier_code"]) == ("failed", "6P")
    assert rows["JNOID-6p"]["reason"] == "REMOVE NUMBER LOCK ON VERIZON ACCOUNT"
    assert all(row["error"] is None for row in rows.values())
    assert result.code == 1
    assert "exit status 1" in result.err  # the summary goes to stderr in --json mode


async def test_wait_all_completed_exits_0(fake: FakeTelegent) -> None:
    # Both settled on the first poll (test_wait_json_statuses_and_codes waits for a change).
    fake.add_order("JNUOID-done2", "Completed")
    result = await run_cli("wait", *FAST, "JNUOID-done", "JNUOID-done2", env=api_env(fake))
    assert_clean(result)
    assert result.code == 0
    assert "Completed (2)" in result.out
    assert "exit status 0: every order completed" in result.out


async def test_wait_timeout_exits_3_and_outranks_failures(fake: FakeTelegent) -> None:
    started = time.monotonic()
    result = await run_cli(
        "wait", "--json", "--timeout", "0.25", *FAST, "JNUOID-pending", "JNOID-8a",
        env=api_env(fake),
    )  # fmt: skip
    assert time.monotonic() - started < 5
    rows = result.json_lines()
    assert rows["JNUOID-pending"]["outcome"] == "timed_out"
    assert rows["JNUOID-pending"]["status"] == "PENDING"  # the last status seen
    assert rows["JNUOID-pending"]["error"]["type"] == "OrderWaitTimeout"
    assert rows["JNOID-8a"]["outcome"] == "needs_action"
    assert result.code == 3


@pytest.mark.parametrize("durable", [False, True], ids=["wait", "wait --state"])
async def test_a_timeout_whose_polls_failed_says_why(
    fake: FakeTelegent, tmp_path: Path, durable: bool
) -> None:
    # The report names the last poll's failure beside the last status, in the API's words;
    # with --state, as the store kept it.
    fake.inject("503", count=10_000)
    state = ["--state", str(tmp_path / "watches.db")] if durable else []
    result = await run_cli(
        "wait", "--timeout", "0.5", *state, "--retries", "0", *FAST, "JNUOID-pending",
        env=api_env(fake),
    )  # fmt: skip
    assert_clean(result)
    assert result.code == 3
    assert "Timed out (1)" in result.out
    assert "last status: no answer yet; last poll failed: ServiceUnavailableError: HTTP 503" in (
        " ".join(result.out.split())  # as one line, however the table wraps it
    )
    if durable:  # the watch stays pending, and `watch list` says why its polls fail
        rows = (await run_cli("watch", "list", "--store", state[1], "--json")).json_lines()
        row = rows["JNUOID-pending"]
        assert (row["settled"], row["error"]) == (False, None)
        assert row["last_error"].startswith("ServiceUnavailableError: HTTP 503")
        table = await run_cli("watch", "list", "--store", state[1])
        assert "last poll failed: ServiceUnavailableError: HTTP 503" in table.out


async def test_transport_failure_exits_3(fake: FakeTelegent) -> None:
    fake.inject("503", count=10)
    result = await run_cli("get", *FAST, "--retries", "0", "JNUOID-done", env=api_env(fake))
    assert_clean(result)
    assert result.code == 3
    assert "Other errors (1)" in result.out
    assert "ServiceUnavailableError" in result.out


async def test_from_file_stdin(fake: FakeTelegent) -> None:
    stdin = b"JNUOID-done\n\n# a comment line\nJNOID-8a  # trailing comment\n"
    result = await run_cli(
        "wait", "--json", *FAST, "--from-file", "-", env=api_env(fake), stdin=stdin
    )
    assert set(result.json_lines()) == {"JNUOID-done", "JNOID-8a"}
    assert result.code == 1


async def test_from_file_path_with_arguments(fake: FakeTelegent, tmp_path: Path) -> None:
    path = tmp_path / "ids.txt"
    fake.add_order("JNUOID-done2", "Complete")
    path.write_text("JNUOID-done\nJNUOID-done2\nJNUOID-done\n")
    result = await run_cli(
        "wait", "--json", *FAST, "JNUOID-done2", "--from-file", str(path), env=api_env(fake)
    )
    assert sorted(result.json_lines()) == ["JNUOID-done", "JNUOID-done2"]  # duplicates once
    assert len(result.out.splitlines()) == 2
    assert result.code == 0


# -- exit status 2 and secrets -------------------------------------------------------------


async def test_missing_credentials_one_line_exit_2(fake: FakeTelegent) -> None:
    env = clean_env(TELEGENT_BASE_URL=fake.base_url)
    result = await run_cli("wait", "--insecure", "JNUOID-done", env=env)
    assert result.code == 2
    assert result.out == ""
    lines = result.err.splitlines()
    assert len(lines) == 1
    for name in ("--token", "TELEGENT_TOKEN", "--account-key", "TELEGENT_ACCOUNT_SECRET"):
        assert name in lines[0]
    # Half the pair: the message names the missing half.
    result = await run_cli("get", "--insecure", "--account-key", KEY, "JNUOID-done", env=env)
    assert result.code == 2
    assert "--account-secret/TELEGENT_ACCOUNT_SECRET not set" in result.err
    assert fake.request_count == 0


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["get"], id="no-ids"),
        pytest.param(["get", "bad\x01id"], id="control-char"),
        pytest.param(["wait", "--timeout", "-1", "X"], id="negative-timeout"),
        pytest.param(["get", "--retries", "-1", "X"], id="negative-retries"),
        pytest.param(["wait", "--from-file", "/nonexistent/ids.txt"], id="missing-file"),
        pytest.param(["demo", "--orders", "3"], id="demo-too-small"),
    ],
)
async def test_usage_errors_exit_2(fake: FakeTelegent, args: list[str]) -> None:
    result = await run_cli(*args, *FAST, env=api_env(fake))
    assert result.code == 2, result.err
    assert "error" in result.err and "Traceback" not in result.err
    assert fake.request_count == 0


@pytest.mark.parametrize("rate", ["0.5", "1e-9", "0", "inf", "many"])
async def test_a_rate_below_one_a_minute_is_a_usage_error(fake: FakeTelegent, rate: str) -> None:
    # The budget counts whole requests a minute: 1e-9 ran at one a minute, silently.
    result = await run_cli("get", "--insecure", "--rate", rate, "JNUOID-done", env=api_env(fake))
    assert result.code == 2
    (line,) = result.err.splitlines()[-1:]
    assert "--rate" in line and "Traceback" not in result.err
    assert fake.request_count == 0


async def issue_token(fake: FakeTelegent) -> str:
    body = {"AccountKey": KEY, "AccountSecret": SECRET, "ApiEndpoint": "/v1.0/numbers/order"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{fake.base_url}/oauth2/tokens", json=body) as response,
    ):
        token = (await response.json())["token"]
    assert isinstance(token, str) and len(token) > 20
    return token


async def test_no_secret_in_any_output(fake: FakeTelegent) -> None:
    token = await issue_token(fake)
    bogus = "bogus-token-Hx81Tq"
    env = clean_env(TELEGENT_BASE_URL=fake.base_url)
    ids = ("JNUOID-done", "JNUOID-soon", "JNOID-8a", "JNUOID-missing")
    many = [f"JNUOID-{i}" for i in range(100)]
    runs = [  # `--token=...`: a token may start with "-"
        (await run_cli("wait", "-vv", *FAST, f"--token={token}", *ids, env=env), 1),
        (await run_cli("get", "-vv", "--json", *FAST, f"--token={token}", *ids, env=env), 1),
        (await run_cli("get", "-vv", *FAST, *ids, env=api_env(fake)), 1),
        (await run_cli("wait", "-vv", *FAST, f"--token={bogus}", *many, env=env), 2),
    ]
    for result, code in runs:
        assert result.code == code, result.err
        assert "DEBUG" in result.err  # -vv really logged
        for secret in (token, bogus, SECRET):
            assert secret not in result.out + result.err
    refused = runs[-1][0]
    assert refused.out == ""
    assert "credentials refused" in refused.err
    # The first refusal ends the wait: the other orders are not all tried with a bad token.
    assert len([r for r in fake.requests if r.status == 401]) < len(many) / 2


# -- progress, interruption ----------------------------------------------------------------


async def test_progress_line_only_on_a_terminal(fake: FakeTelegent) -> None:
    pty = pytest.importorskip("pty")
    # The first frame is drawn as the wait starts, before any answer can arrive (a token and a
    # poll over a socket later), so it shows the order pending even though its first poll
    # finds it complete and the run ends at once.
    fake.add_order("JNUOID-slow", "Complete")
    primary, secondary = pty.openpty()
    chunks: list[bytes] = []
    loop = asyncio.get_running_loop()
    drained = asyncio.Event()

    def drain() -> None:
        try:
            chunks.append(os.read(primary, 65536))
        except OSError:  # EIO once the child has closed its end
            loop.remove_reader(primary)
            drained.set()

    loop.add_reader(primary, drain)
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "telegent_async", "wait", *FAST, "JNUOID-slow",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=secondary,
            env={**api_env(fake), "COLUMNS": "200"},
        )  # fmt: skip
        os.close(secondary)
        out, _ = await asyncio.wait_for(proc.communicate(), TIMEOUT)
        await asyncio.wait_for(drained.wait(), TIMEOUT)  # the reader drained what is left
    finally:
        loop.remove_reader(primary)
        os.close(primary)
    err = b"".join(chunks).decode()
    assert proc.returncode == 0
    assert "\r\x1b[2K" in err
    assert re.search(
        r"0/1 settled . 1 pending . 0 failed . [\d.]+ s . \d+ requests . \d+ req/s", err
    )
    assert "\x1b" not in out.decode()  # stdout is a pipe: no colour, no progress


async def test_ctrl_c_reports_what_settled_so_far(fake: FakeTelegent) -> None:
    async with process(
        sys.executable, "-m", "telegent_async", "wait", "-v", *FAST, "JNUOID-done",
        "JNUOID-pending",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=api_env(fake),
    ) as proc:  # fmt: skip
        assert proc.stderr is not None
        seen = b""
        while b"JNUOID-pending: None -> Pending" not in seen:  # -v logs the first poll
            line = await asyncio.wait_for(proc.stderr.readline(), TIMEOUT)
            assert line, seen
            seen += line
        proc.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    assert proc.returncode == 130
    assert "Completed (1)" in out.decode()
    assert "interrupted with 1 order not settled yet" in out.decode()
    assert "Traceback" not in err.decode()
    assert "Unclosed" not in err.decode()


# -- demo and fake-server ------------------------------------------------------------------


async def test_demo_50_tells_the_story() -> None:
    started = time.monotonic()
    result = await run_cli("demo", "--orders", "50", "--seed", "7", "--time-scale", "0.05")
    elapsed = time.monotonic() - started
    assert_clean(result)
    assert result.code == 1
    summary = " ".join(result.out[result.out.index("Summary") :].split())
    assert "waited for 50 orders" in summary
    codes = re.search(r"failures by carrier code: ([^(]*)", summary)
    assert codes is not None
    assert re.search(r"\b8A x\d", codes.group(1)) and re.search(r"\b6P x\d", codes.group(1))
    assert "compressed into seconds" in summary
    assert re.search(r"\d+ requests sent", summary)
    assert "Not found (1)" in result.out
    assert "compressed into seconds" in result.err  # the intro says so before it starts
    assert elapsed < 10


async def test_fake_server_serves_until_sigterm(tmp_path: Path) -> None:
    ids_file = tmp_path / "ids.txt"
    async with process(
        sys.executable, "-m", "telegent_async", "fake-server", "--orders", "10", "--seed", "1",
        "--ids-file", str(ids_file),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=clean_env(),
    ) as proc:  # fmt: skip
        assert proc.stdout is not None
        banner = ""
        while "Stop with" not in banner:
            line = await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)
            assert line, f"fake-server exited early: {banner}"
            banner += line.decode()
        match = re.search(r"listening on (http://127\.0\.0\.1:\d+/v1\.0)", banner)
        assert match is not None
        assert "TELEGENT_ACCOUNT_SECRET=fake-secret" in banner
        order_ids = re.findall(r"^  (JN\w*OID-[0-9a-f-]+)  ", banner, re.M)
        assert len(order_ids) == 10
        assert ids_file.read_text().split() == order_ids  # --ids-file: the IDs it serves
        # It really serves: the listed orders, through the SDK's own CLI, with nothing but
        # the environment the banner prints (TELEGENT_ALLOW_INSECURE=1: no --insecure).
        exports = dict(re.findall(r"export (TELEGENT_\w+)=(\S+)", banner))
        assert exports["TELEGENT_BASE_URL"] == match.group(1)
        assert exports["TELEGENT_ALLOW_INSECURE"] == "1"
        env = clean_env(**exports)
        result = await run_cli("get", "--json", "--from-file", str(ids_file), env=env)
        assert result.code in (0, 1)
        assert len(result.json_lines()) == 10
        assert sum(row["outcome"] == "not_found" for row in result.json_lines().values()) == 1
        proc.terminate()
        _, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    assert proc.returncode == 0
    assert "stopped" in err.decode()
    assert "Traceback" not in err.decode()
