"""`telegent-orders update` and `cancel`: close the loop on a port-in that needs action.

The account number and PIN are secrets: they come from an environment variable named on the
command line (`--account-number-env VAR`) or a prompt that does not echo, never from argv,
which every local user can read through `ps`. Nothing printed carries them.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
from typing import Any, Final

from .._errors import APIStatusError, TelegentError
from .._portin import BillingAddress, PortInCancel, PortInUpdate
from ._exit import EXIT_OK, UsageError, failed_request_exit
from ._outcomes import PROG, UPDATE_OPTIONS, Run, Tally
from ._session import client_options, open_client
from ._terminal import Console

__all__ = ["cmd_cancel", "cmd_update"]

#: (keyword, option of its environment variable, prompt option, prompt text)
SECRETS: Final = (
    ("current_account_number", "--account-number-prompt", "Account number at the losing carrier: "),
    ("current_account_password", "--pin-prompt", "Account PIN / password at the losing carrier: "),
)
PLAIN: Final = (
    "current_carrier_name",
    "subscriber_name",
    "port_in_date",
    "iccid",
    "target_portin_classification",
)
ADDRESS_LINES: Final = ("street1", "street2", "city", "state", "zip")


def _secret(args: argparse.Namespace, keyword: str, prompt_flag: str, prompt: str) -> str | None:
    env_flag = UPDATE_OPTIONS[keyword][0]
    variable = getattr(args, _dest(env_flag))
    if variable is not None:
        if getattr(args, _dest(prompt_flag)):
            raise UsageError(f"give {env_flag} or {prompt_flag}, not both")
        value = os.environ.get(variable)
        if not value:
            raise UsageError(f"{env_flag} {variable}: that environment variable is not set")
        return value
    if getattr(args, _dest(prompt_flag)):
        return getpass.getpass(prompt) or None
    return None


def _dest(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


def update_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The `update_port_in` keywords from the options (None where not given)."""
    fields: dict[str, Any] = {
        keyword: _secret(args, keyword, prompt_flag, prompt)
        for keyword, prompt_flag, prompt in SECRETS
    }
    for keyword in PLAIN:
        fields[keyword] = getattr(args, _dest(UPDATE_OPTIONS[keyword][0]))
    lines = {line: getattr(args, line) for line in ADDRESS_LINES}
    fields["current_billing_address"] = BillingAddress(**lines) if any(lines.values()) else None
    return fields


def _report(args: argparse.Namespace, answer: PortInUpdate | PortInCancel) -> int:
    if args.json:
        line = {"order_id": answer.order_id, "status": answer.status, "message": answer.message}
        sys.stdout.write(json.dumps(line) + "\n")
    else:
        verb = "updated" if isinstance(answer, PortInUpdate) else "cancelled"
        sys.stdout.write(
            f"port-in {answer.order_id} {verb}: {answer.status or 'no status'}"
            + (f" ({answer.message})" if answer.message else "")
            + "\n"
        )
        if isinstance(answer, PortInUpdate):
            sys.stdout.write(f"next: {PROG} wait {answer.order_id} --preset portin\n")
    sys.stdout.flush()
    return EXIT_OK


def _failed(console: Console, what: str, error: TelegentError) -> int:
    console.write(f"{PROG}: error: {what} failed: {type(error).__name__}: {error}\n")
    # A refusal quoting a code (GENS-0041: no port-in found) says what comes next.
    carrier = error.carrier_error if isinstance(error, APIStatusError) else None
    if carrier is not None:
        console.write(f"{PROG}: {carrier.code}: {carrier.description} {carrier.remedy}\n")
    return failed_request_exit(error)  # refused (a settled order, an unknown ID) is final


def _run(args: argparse.Namespace, console: Console, kind: str) -> int:
    options = client_options(args)
    try:
        fields = update_fields(args) if kind == "update" else {}
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from None
    run = Run(kind, Tally([args.order_id]))

    async def send() -> PortInUpdate | PortInCancel:
        async with open_client(options, run) as client:
            if kind == "update":
                return await client.update_port_in(args.order_id, **fields)
            return await client.cancel_port_in(args.order_id)

    try:
        answer = asyncio.run(send())
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from None
    except TelegentError as exc:
        return _failed(console, f"{kind} of {args.order_id}", exc)
    return _report(args, answer)


def cmd_update(args: argparse.Namespace, console: Console) -> int:
    return _run(args, console, "update")


def cmd_cancel(args: argparse.Namespace, console: Console) -> int:
    if not args.yes:
        raise UsageError(
            "a cancel is final (a cancelled port-in cannot be reopened): pass --yes to confirm"
        )
    return _run(args, console, "cancel")
