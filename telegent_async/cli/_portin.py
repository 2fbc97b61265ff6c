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

from ._cli import UsageError, client_options, open_client
from ._cli_output import (
    EXIT_FAILED,
    EXIT_INCOMPLETE,
    EXIT_OK,
    EXIT_USAGE,
    PROG,
    UPDATE_OPTIONS,
    Console,
    Run,
    Tally,
    is_credentials_error,
)
from ._errors import APIStatusError, TelegentError
from ._portin import BillingAddress, PortInCancel, PortInUpdate

__all__ = ["add_port_in_commands"]

#: (keyword, option of its environment variable, prompt option, prompt text)
_SECRETS: Final = (
    ("current_account_number", "--account-number-prompt", "Account number at the losing carrier: "),
    ("current_account_password", "--pin-prompt", "Account PIN / password at the losing carrier: "),
)
_PLAIN: Final = (
    "current_carrier_name",
    "subscriber_name",
    "port_in_date",
    "iccid",
    "target_portin_classification",
)
_ADDRESS_LINES: Final = ("street1", "street2", "city", "state", "zip")


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
        for keyword, prompt_flag, prompt in _SECRETS
    }
    for keyword in _PLAIN:
        fields[keyword] = getattr(args, _dest(UPDATE_OPTIONS[keyword][0]))
    lines = {line: getattr(args, line) for line in _ADDRESS_LINES}
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
    if is_credentials_error(error):
        return EXIT_USAGE
    if isinstance(error, APIStatusError) and error.status_code < 500:
        return EXIT_FAILED  # refused: a settled order, an unknown ID
    return EXIT_INCOMPLETE


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


def add_port_in_commands(
    commands: Any, parents: list[argparse.ArgumentParser], epilog: str
) -> None:
    """Register `update` and `cancel` on the `telegent-orders` subcommands."""
    formatter = argparse.RawDescriptionHelpFormatter
    update = commands.add_parser(
        "update",
        parents=parents,
        help="correct a port-in that needs action (POST /numbers/portin/update)",
        description=(
            "Correct a port-in in place: send only the fields given. The account number and\n"
            "PIN are read from an environment variable you name, or a prompt, never from the\n"
            f"command line. Then wait for it again: {PROG} wait ID --preset portin"
        ),
        epilog=epilog,
        formatter_class=formatter,
    )
    update.add_argument("order_id", metavar="ID", help="the port-in's order ID")
    secrets = update.add_argument_group("secrets (never on the command line)")
    for keyword, prompt_flag, _prompt in _SECRETS:
        env_flag = UPDATE_OPTIONS[keyword][0]
        what = "account number" if keyword == "current_account_number" else "account PIN"
        secrets.add_argument(
            env_flag, metavar="VAR", help=f"read the {what} from environment variable VAR"
        )
        secrets.add_argument(prompt_flag, action="store_true", help=f"ask for the {what}")
    fields = update.add_argument_group("fields")
    for keyword in _PLAIN:
        flag, placeholder = UPDATE_OPTIONS[keyword]
        fields.add_argument(
            flag, metavar=placeholder.strip("'").replace(" ", "_"), help=keyword.replace("_", " ")
        )
    for line in _ADDRESS_LINES:
        fields.add_argument(f"--{line}", help=f"billing address: {line}")
    update.set_defaults(handler=cmd_update)

    cancel = commands.add_parser(
        "cancel",
        parents=parents,
        help="cancel a port-in (final; needs --yes)",
        description="Cancel a port-in (POST /numbers/portin/cancel). Final: it cannot be reopened.",
        epilog=epilog,
        formatter_class=formatter,
    )
    cancel.add_argument("order_id", metavar="ID", help="the port-in's order ID")
    cancel.add_argument("--yes", action="store_true", help="confirm: the cancel is final")
    cancel.set_defaults(handler=cmd_cancel)
