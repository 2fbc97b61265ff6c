"""`telegent-orders update` / `cancel`, and `wait`'s fix commands, run in-process."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from helpers import FAST, KEY, SECRET, Result, api_env, assert_clean, run_cli, run_cli_process

from telegent_async.testing import FakeTelegent

ACCOUNT = "ACCT-cli-90417"
PIN = "pin-cli-5521"
EIGHT_A = "8A-ACCOUNT_NUM_REQ_OR_INCORRECT"


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegent]:
    async with FakeTelegent(account_key=KEY, account_secret=SECRET) as server:
        server.add_order("JNOID-8a", "Rejected", message=EIGHT_A, order_type="PortIn")
        server.add_order(
            "JNOID-8a8c",
            "Rejected",
            message="Port rejected: 8A-ACCOUNT_NUM_REQ_OR_INCORRECT; 8C-PASS_PIN_REQ_OR_INCORRECT",
            order_type="PortIn",
        )
        server.add_order("JNOID-8d", "ResolutionRequired", message="8D-ZIP", order_type="PortIn")
        server.add_order(
            "JNOID-6p", "Rejected", message="6P-REMOVE NUMBER LOCK", order_type="PortIn"
        )
        server.add_order("JNOID-done", "Complete", order_type="PortIn")
        yield server


def assert_no_secret(result: Result) -> None:
    assert ACCOUNT not in result.out + result.err
    assert PIN not in result.out + result.err


async def test_update_reads_secrets_from_named_variables(fake: FakeTelegent) -> None:
    env = {**api_env(fake), "SUBSCRIBER_ACCT": ACCOUNT, "SUBSCRIBER_PIN": PIN}
    args = ("--account-number-env", "SUBSCRIBER_ACCT", "--pin-env", "SUBSCRIBER_PIN")
    result = await run_cli("update", "JNOID-8a", *args, "--zip", "10001", *FAST, "-vv", env=env)
    assert_clean(result)
    assert_no_secret(result)
    assert result.code == 0, result.err
    assert "port-in JNOID-8a updated: Updated" in result.out
    assert "telegent-orders wait JNOID-8a --preset portin" in result.out
    [sent] = fake.port_in_requests("JNOID-8a")
    assert dict(sent.body or {}) == {
        "OrderId": "JNOID-8a",
        "CurrentAccountNumber": ACCOUNT,
        "CurrentAccountPassword": PIN,
        "CurrentBillingAddress": {"Zip": "10001"},
    }


async def test_update_prompts_for_the_pin_without_echoing_it(fake: FakeTelegent) -> None:
    # Without a terminal, getpass reads stdin; the value must still not be printed. A real
    # process: in-process, getpass would find the test runner's terminal.
    result = await run_cli_process(
        "update", "JNOID-8a", "--pin-prompt", "--json", *FAST,
        env=api_env(fake), stdin=f"{PIN}\n".encode(),
    )  # fmt: skip
    assert_no_secret(result)
    assert result.code == 0, result.err
    assert json.loads(result.out) == {
        "order_id": "JNOID-8a",
        "status": "Updated",
        "message": "Port-in order updated successfully",
    }
    [sent] = fake.port_in_requests("JNOID-8a")
    assert sent.body is not None and sent.body["CurrentAccountPassword"] == PIN


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((" JNOID-8a", "--pin-prompt"), "order_id has leading or trailing whitespace"),
        (("JNOID-8a", "--pin-prompt", "--port-in-date", "2026-02-30"), "YYYY-MM-DD"),
    ],
)
async def test_a_bad_order_id_or_date_is_reported_before_the_pin_is_asked(
    fake: FakeTelegent, args: tuple[str, ...], message: str
) -> None:
    # A real process, as above: the prompt (or getpass's no-terminal warning) would go to
    # stderr before the usage error, and the PIN typed for nothing.
    result = await run_cli_process(
        "update", *args, *FAST, env=api_env(fake), stdin=f"{PIN}\n".encode()
    )
    assert result.code == 2, result.err
    assert message in result.err
    assert "PIN / password" not in result.err and "Password" not in result.err
    assert fake.port_in_requests("JNOID-8a") == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--account-number-env", "NOT_SET_ANYWHERE"), "NOT_SET_ANYWHERE"),
        ((), "at least one field"),
        (("--port-in-date", "2026-02-30"), "YYYY-MM-DD"),
        (("--account-number", ACCOUNT), "ambiguous option"),  # no option takes the value
    ],
)
async def test_update_usage_errors_send_nothing(
    fake: FakeTelegent, args: tuple[str, ...], message: str
) -> None:
    result = await run_cli("update", "JNOID-8a", *args, *FAST, env=api_env(fake))
    assert result.code == 2
    assert message in result.err
    assert fake.requests == []


async def test_update_of_a_completed_order_is_refused(fake: FakeTelegent) -> None:
    result = await run_cli(
        "update", "JNOID-done", "--subscriber-name", "Ada", *FAST, env=api_env(fake)
    )
    assert_clean(result)
    assert result.code == 1
    assert "BadRequestError" in result.err and "cannot be updated" in result.err


async def test_cancel_needs_yes_then_cancels(fake: FakeTelegent) -> None:
    refused = await run_cli("cancel", "JNOID-6p", *FAST, env=api_env(fake))
    assert refused.code == 2 and "--yes" in refused.err
    assert fake.requests == []
    done = await run_cli("cancel", "JNOID-6p", "--yes", *FAST, env=api_env(fake))
    assert_clean(done)
    assert done.code == 0 and "port-in JNOID-6p cancelled: Cancelled" in done.out
    again = await run_cli("cancel", "JNOID-6p", "--yes", *FAST, env=api_env(fake))
    assert again.code == 0  # already cancelled: confirmed by a lookup
    complete = await run_cli("cancel", "JNOID-done", "--yes", *FAST, env=api_env(fake))
    assert complete.code == 1 and "cannot be cancelled" in complete.err


async def test_wait_report_prints_the_command_that_fixes_each_port_in(
    fake: FakeTelegent,
) -> None:
    fake.add_order("JNOID-6a", "Rejected", message="6A-MDN_NOT_FOUND", order_type="PortIn")
    fake.add_order("JNOID-8b", "Rejected", message="8B-SSN_TAX_ID", order_type="PortIn")
    ids = ["JNOID-6a", "JNOID-8b", "JNOID-6p", "JNOID-8a", "JNOID-8a8c", "JNOID-8d", "JNOID-done"]
    result = await run_cli("wait", *FAST, "--timeout", "10", *ids, env=api_env(fake))
    assert_clean(result)
    assert result.code == 1
    out = result.out
    fix_list = out.split("How to fix them")[1].split("\n\n")[0].splitlines()[1:]
    commands = [line[2:] for line in fix_list if line.startswith(("  telegent-orders", "  # "))]
    # Updates first (by carrier code), then the 6P resubmission by update (never a cancel: the
    # subscriber lifts the lock, an update resubmits), the cancel only for 6A, support last.
    assert commands == [
        "telegent-orders update JNOID-8a --account-number-env ACCOUNT_NUMBER",
        "telegent-orders update JNOID-8a8c --account-number-env ACCOUNT_NUMBER "
        "--pin-env ACCOUNT_PIN",
        "telegent-orders update JNOID-8d --zip ZIP",
        "telegent-orders update JNOID-6p --carrier-name 'CARRIER'  "
        "# 6P: once the subscriber has acted (see the remedy), this resubmits",
        "telegent-orders cancel JNOID-6a --yes  # 6A: then submit a new port-in",
        "# JNOID-8b: 8B: open a ticket with Telegent support (see the remedy)",
    ]
    assert "cancel JNOID-6p" not in out
    assert "environment variables to set first" in out
    rows = (await run_cli("wait", "--json", *FAST, *ids, env=api_env(fake))).json_lines()
    assert rows["JNOID-8d"]["fix_command"] == "telegent-orders update JNOID-8d --zip ZIP"
    assert rows["JNOID-6p"]["fix_command"].startswith("telegent-orders update JNOID-6p ")
    assert rows["JNOID-6p"]["next_step"] == "update after the subscriber acts"
    assert rows["JNOID-6a"]["next_step"] == "cancel and submit anew"
    assert rows["JNOID-done"]["next_step"] is None
    assert rows["JNOID-done"]["fix_command"] is None


async def test_gens_0041_from_update_says_to_open_a_ticket_with_both_answers(
    fake: FakeTelegent,
) -> None:
    result = await run_cli(
        "update", "JNOID-gone", "--subscriber-name", "Ada", *FAST, env=api_env(fake)
    )
    assert_clean(result)
    assert result.code == 1
    assert "GENS-0041-No Port-In request found" in result.err
    assert "stuck on Telegent's side" in result.err
    assert "phone number, the OrderId" in result.err and "both answers" in result.err
