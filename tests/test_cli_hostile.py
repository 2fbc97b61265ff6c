"""`telegent-orders` under hostile conditions: signals in the middle of a call or at a prompt,
stdout closed early, an ASCII-only stdout, numbers out of range. Each ends in its documented
exit status with at most one line on stderr and never a traceback."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from helpers import (
    CLI_TIMEOUT,
    FAST,
    KEY,
    SECRET,
    api_env,
    assert_clean,
    run_cli,
    run_cli_process,
    wait_until,
)

from telegent_async.cli._terminal import shown
from telegent_async.testing import FakeTelegent


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegent]:
    async with FakeTelegent(account_key=KEY, account_secret=SECRET) as server:
        server.add_order("JNUOID-done", "Complete", message="Numéro porté \u2013 terminé")
        yield server


async def _stopped(proc: asyncio.subprocess.Process, signum: int) -> tuple[int, str]:
    os.kill(proc.pid, signum)
    _, err = await asyncio.wait_for(proc.communicate(), CLI_TIMEOUT)
    assert proc.returncode is not None
    return proc.returncode, err.decode()


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
async def test_a_signal_during_a_call_exits_130_in_one_line(
    fake: FakeTelegent, signum: int
) -> None:
    fake.inject("stall", 10)  # the cancel is under way until the signal comes
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "telegent_async", "cancel", "JNOID-1", "--yes", *FAST,
        stdin=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env=api_env(fake),
    )  # fmt: skip
    try:
        await wait_until(lambda: any(r.fault == "stall" for r in fake.requests), CLI_TIMEOUT)
        code, err = await _stopped(proc, signum)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert code == 130, err
    assert err.splitlines() == ["telegent-orders: interrupted"]


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
async def test_a_signal_at_the_pin_prompt_exits_130_without_a_traceback(
    fake: FakeTelegent, signum: int
) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "telegent_async", "update", "JNOID-1", "--pin-prompt", *FAST,
        stdin=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=api_env(fake),
    )  # fmt: skip
    assert proc.stderr is not None
    try:
        seen = b""
        while b"PIN" not in seen:  # without a terminal, getpass prompts on stderr
            seen += await asyncio.wait_for(proc.stderr.read(256), CLI_TIMEOUT)
        code, err = await _stopped(proc, signum)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert code == 130
    assert "Traceback" not in err and err.strip().endswith("telegent-orders: interrupted")
    assert fake.requests == []


async def _with_stdout_closed(fake: FakeTelegent, *args: str) -> tuple[int, str]:
    """`telegent-orders ARGS` writing to a pipe whose reading end is already closed."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "telegent_async", *args,
            stdin=asyncio.subprocess.DEVNULL, stdout=write_end, stderr=asyncio.subprocess.PIPE,
            env=api_env(fake),
        )  # fmt: skip
    finally:
        os.close(write_end)
    _, err = await asyncio.wait_for(proc.communicate(), CLI_TIMEOUT)
    assert proc.returncode is not None
    return proc.returncode, err.decode()


@pytest.mark.slow
async def test_watch_list_and_run_into_a_closed_stdout_stop_quietly(
    fake: FakeTelegent, tmp_path: Path
) -> None:
    store = str(tmp_path / "w.db")
    added = await run_cli("watch", "add", "--store", store, "JNUOID-done", env=api_env(fake))
    assert added.code == 0, added.err
    for args in (("watch", "list"), ("watch", "run", "--json", *FAST)):
        code, err = await _with_stdout_closed(fake, *args, "--store", store)
        assert code == 141, err  # not "--store: ... unavailable: BrokenPipeError", exit 2
        assert err == ""
    listed = await run_cli("watch", "list", "--json", "--store", store, env=api_env(fake))
    assert '"acknowledged": false' in listed.out  # never printed, so never acknowledged


async def test_an_ascii_stdout_gets_the_report_with_escapes(fake: FakeTelegent) -> None:
    env = {**api_env(fake), "PYTHONIOENCODING": "ascii"}
    result = await run_cli_process("get", "JNUOID-done", *FAST, env=env)
    assert_clean(result)
    assert result.code == 0, result.err
    assert "Num\\xe9ro port\\xe9 \\u2013 termin\\xe9" in result.out


#: What an answer might carry to act on an operator's terminal: set the clipboard (OSC 52),
#: hide what follows (SGR 8), go back to the line's start, reverse the text's direction.
HOSTILE = "Done\x1b]52;c;cm0gLXJmIH4=\x07 \x1b[8mhidden\x1b[0m\rforged \u202egnitrop"
HOSTILE_SHOWN = "Done\\x1b]52;c;cm0gLXJmIH4=\\x07 \\x1b[8mhidden\x1b[0m\\rforged \\u202egnitrop"


@pytest.mark.parametrize("command", ["get", "wait"])
async def test_an_answers_control_codes_are_shown_not_obeyed(
    fake: FakeTelegent, command: str
) -> None:
    fake.add_order("JNUOID-hostile", "Complete", message=HOSTILE)
    result = await run_cli(command, *FAST, "JNUOID-hostile", env=api_env(fake))
    assert result.code == 0, result.err
    assert HOSTILE_SHOWN in result.out
    printed = result.out + result.err
    assert [c for c in printed if c in "\x07\r\u202e"] == []
    # Only the reset `paint` writes too passes (harmless); OSC 52 and SGR 8 are escaped.
    assert "\x1b]" not in printed and "\x1b[8m" not in printed


def test_shown_escapes_what_a_terminal_acts_on_and_keeps_the_reports_colours() -> None:
    assert shown("ok\tcolumns\nnext line") == "ok\tcolumns\nnext line"
    assert shown("\x1b[1mSummary\x1b[0m \x1b[31mFailed\x1b[0m") == (
        "\x1b[1mSummary\x1b[0m \x1b[31mFailed\x1b[0m"
    )
    assert shown("a\x00b\x7fc\x9bd\x1b[2Je\u2066f") == "a\\x00b\\x7fc\\x9bd\\x1b[2Je\\u2066f"


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["fake-server", "--port", "-1"], id="negative-port"),
        pytest.param(["fake-server", "--port", "65536"], id="port-too-large"),
        pytest.param(["demo", "--time-scale", "1e-320"], id="time-scale-underflows"),
        pytest.param(["demo", "--orders", "100001"], id="too-many-orders"),
        pytest.param(["get", *FAST, "--rows", "-1", "JNUOID-done"], id="negative-rows"),
    ],
)
async def test_numbers_out_of_range_are_usage_errors(fake: FakeTelegent, args: list[str]) -> None:
    result = await run_cli(*args, env=api_env(fake))
    assert_clean(result)
    assert result.code == 2, result.err
    *usage, line = result.err.splitlines()  # argparse's usage, then the error
    assert usage[0].startswith("usage:") and "error: argument --" in line and "must be from" in line
    assert fake.requests == []


@pytest.mark.parametrize(
    ("command", "secret"),
    [
        ("update JNOID-1 --pin-env", "4321"),
        ("update JNOID-1 --account-number-env", "77-0123"),
        ("webhook add https://h.example.com/x --account-id AID-1 --user u --password-env", "p-8H"),
    ],
    ids=["pin", "account", "password"],
)
async def test_a_secret_given_in_place_of_a_variable_name_is_not_repeated(
    fake: FakeTelegent, command: str, secret: str
) -> None:
    result = await run_cli(*command.split(), secret, *FAST, env=api_env(fake))
    assert_clean(result)
    assert result.code == 2
    assert secret not in result.out + result.err
    flag = command.split()[-1]
    assert f"{flag} (not a name): that environment variable is not set" in result.err
    assert fake.requests == []


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
async def test_an_endless_id_file_is_read_only_so_far(fake: FakeTelegent) -> None:
    result = await run_cli_process("get", "--from-file", "/dev/zero", *FAST, env=api_env(fake))
    assert_clean(result)
    assert result.code == 2
    assert result.err.splitlines() == [
        "telegent-orders: error: /dev/zero holds more than 67,108,864 characters of IDs"
    ]
    assert fake.requests == []
