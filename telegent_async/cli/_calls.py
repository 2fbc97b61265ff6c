"""The commands of one call each: `update`, `cancel` (a port-in), `webhook add|list|remove`, and
`codes` (no call at all: the catalogue of `_carrier`).

Secrets (the account number and PIN, a delivery's Bearer token or Basic password) come only
from an environment variable named on the command line or a prompt that does not echo, never
from argv, which every local user can read through `ps`. Nothing printed carries them (a
`Webhook`'s `raw` is scrubbed of them by the client).
"""

from __future__ import annotations

import argparse
import datetime
import getpass
import json
import os
import re
import sys
import textwrap
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

from .. import _validate
from .._carrier import CarrierError, carrier_codes, decode_carrier_message
from .._client import TelegentClient
from .._errors import APIStatusError, TelegentError
from .._portin import BillingAddress, PortInCancel, PortInUpdate, port_in_date
from .._webhook import Webhook, WebhookAuth, masked_url
from ._exit import EXIT_OK, UsageError, failed_request_exit
from ._outcomes import PROG, UPDATE_OPTIONS, Run, Tally, code_json, named
from ._session import client_options, open_client, run_stoppable
from ._terminal import Console, shown

ACCOUNT_ENV: Final = "TELEGENT_ACCOUNT_ID"
#: (keyword, prompt option, prompt text); the environment option is `UPDATE_OPTIONS`'.
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
_T = TypeVar("_T")


def _option(args: argparse.Namespace, flag: str) -> Any:
    return getattr(args, flag.lstrip("-").replace("-", "_"))


def _from_env(flag: str, variable: str) -> str:
    value = os.environ.get(variable)
    if not value:  # what cannot name a variable may be the secret itself: never repeated
        named = variable if re.fullmatch(r"[A-Za-z_]\w*", variable, re.ASCII) else "(not a name)"
        raise UsageError(f"{flag} {named}: that environment variable is not set")
    return value


def _call(
    args: argparse.Namespace,
    console: Console,
    what: str,
    call: Callable[[TelegentClient], Awaitable[_T]],
) -> _T | int:
    """One call on a client made from the options; a failure is reported, its status returned."""
    options = client_options(args)
    run = Run(args.command, Tally([]))

    async def send() -> _T:
        async with open_client(options, run) as client:
            return await call(client)

    try:
        return run_stoppable(send)
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from None
    except TelegentError as exc:
        console.write(f"{PROG}: error: {what} failed: {named(exc)}\n")
        # A refusal quoting a code (GENS-0041: no port-in found) says what comes next.
        carrier = exc.carrier_error if isinstance(exc, APIStatusError) else None
        if carrier is not None:
            console.write(f"{PROG}: {carrier.code}: {carrier.description} {carrier.remedy}\n")
        return failed_request_exit(exc)  # refused (a settled order, an unknown ID) is final


def _write(lines: list[str]) -> int:
    sys.stdout.write(shown("".join(line + "\n" for line in lines)))
    sys.stdout.flush()
    return EXIT_OK


# -- update, cancel ----------------------------------------------------------------------------


def _secret(args: argparse.Namespace, keyword: str, prompt_flag: str, prompt: str) -> str | None:
    env_flag = UPDATE_OPTIONS[keyword][0]
    variable, asked = _option(args, env_flag), _option(args, prompt_flag)
    if variable is not None:
        if asked:
            raise UsageError(f"give {env_flag} or {prompt_flag}, not both")
        return _from_env(env_flag, variable)
    return (getpass.getpass(prompt) or None) if asked else None


def update_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The `update_port_in` keywords from the options (None where not given)."""
    fields = {keyword: _secret(args, keyword, *prompt) for keyword, *prompt in _SECRETS}
    for keyword in _PLAIN:
        fields[keyword] = _option(args, UPDATE_OPTIONS[keyword][0])
    lines = {line: getattr(args, line) for line in _ADDRESS_LINES}
    address = BillingAddress(**lines) if any(lines.values()) else None
    return {**fields, "current_billing_address": address}


def _port_in(args: argparse.Namespace, console: Console, fields: dict[str, Any] | None) -> int:
    def send(client: TelegentClient) -> Awaitable[PortInUpdate | PortInCancel]:
        if fields is None:
            return client.cancel_port_in(args.order_id)
        return client.update_port_in(args.order_id, **fields)

    answer = _call(args, console, f"{args.command} of {args.order_id}", send)
    if isinstance(answer, int):
        return answer
    if args.json:
        line = {"order_id": answer.order_id, "status": answer.status, "message": answer.message}
        return _write([json.dumps(line)])
    verb = "updated" if isinstance(answer, PortInUpdate) else "cancelled"
    message = f" ({answer.message})" if answer.message else ""
    lines = [f"port-in {answer.order_id} {verb}: {answer.status or 'no status'}{message}"]
    if isinstance(answer, PortInUpdate):
        lines.append(f"next: {PROG} wait {answer.order_id} --preset portin")
    return _write(lines)


def cmd_update(args: argparse.Namespace, console: Console) -> int:
    client_options(args)  # missing credentials are reported before any prompt
    try:
        _validate.order_id(args.order_id)  # and a bad order ID or port date too
        day = _option(args, UPDATE_OPTIONS["port_in_date"][0])
        if day is not None:
            port_in_date(day, datetime.date.today())
        fields = update_fields(args)
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from None
    return _port_in(args, console, fields)


def cmd_cancel(args: argparse.Namespace, console: Console) -> int:
    if not args.yes:
        raise UsageError(
            "a cancel is final (a cancelled port-in cannot be reopened): pass --yes to confirm"
        )
    return _port_in(args, console, None)


# -- webhook add / list / remove ---------------------------------------------------------------


def _auth(args: argparse.Namespace) -> WebhookAuth | None:
    """The delivery's credentials, from the environment variables the options name."""
    if args.token_env is not None:
        if args.user is not None or args.password_env is not None:
            raise UsageError("give --token-env, or --user with --password-env, not both")
        return WebhookAuth.bearer(_from_env("--token-env", args.token_env))
    if (args.user is None) != (args.password_env is None):
        raise UsageError("HTTP Basic needs both --user and --password-env")
    if args.user is None:
        return None
    return WebhookAuth.basic(args.user, _from_env("--password-env", args.password_env))


def _hook_line(args: argparse.Namespace, hook: Webhook) -> str:
    auth = hook.raw.get("AuthenticationType")
    if args.json:
        keys = ("webhook_id", "url", "method", "data_format", "events", "active")
        row = {key: getattr(hook, key) for key in keys}
        shown = {"url": masked_url(hook.url), "events": list(hook.events)}
        return json.dumps({**row, **shown, "authentication": auth})
    active = {True: "active", False: "inactive", None: "active?"}[hook.active]
    return (
        f"{hook.webhook_id}  {masked_url(hook.url) or '?'}  "
        f"{hook.method or '?'} {hook.data_format or '?'}  {auth or 'auth?'}  "
        f"{', '.join(hook.events) or '-'}  {active}"
    )


def cmd_webhook(args: argparse.Namespace, console: Console) -> int:
    """`webhook add|list|remove`."""
    action = args.webhook_command
    account = getattr(args, "account_id", None) or os.environ.get(ACCOUNT_ENV) or None
    if action == "remove":
        wid = args.webhook_id
        done = _call(args, console, f"removing {wid}", lambda c: c.delete_webhook(wid))
        if isinstance(done, int):
            return done
        deleted = json.dumps({"webhook_id": wid, "deleted": True})
        return _write([deleted if args.json else f"webhook {wid} removed"])
    if action == "list":
        hooks = _call(
            args, console, "listing webhooks", lambda c: c.list_webhooks(account_id=account)
        )
        if isinstance(hooks, int):
            return hooks
        empty = [] if hooks or args.json else ["no webhooks subscribed"]
        return _write(empty + [_hook_line(args, hook) for hook in hooks])
    try:
        auth = _auth(args)
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from None
    if account is None:
        raise UsageError(f"give --account-id or set {ACCOUNT_ENV}")
    events = tuple(args.events or ("Order_Update",))

    def create(client: TelegentClient) -> Awaitable[Webhook]:
        return client.create_webhook(
            args.url, account_id=account, events=events, method=args.method,
            data_format=args.format, auth=auth,
        )  # fmt: skip

    hook = _call(args, console, f"subscribing {masked_url(args.url)}", create)
    return hook if isinstance(hook, int) else _write([_hook_line(args, hook)])


# -- codes -------------------------------------------------------------------------------------


def _described(carrier: CarrierError) -> list[str]:
    head = "  ".join(filter(None, (carrier.code, carrier.reason, f"({carrier.category.value})")))
    fields = ", ".join(carrier.update_fields) or "none: no update_port_in field fixes it"
    lines = [head]
    for label, text in (
        ("meaning", carrier.description),
        ("next step", carrier.next_step.value),
        ("remedy", carrier.remedy),
        ("update fields", fields),
    ):
        lines += textwrap.wrap(f"{label}: {text}", 100, initial_indent="    ",
                               subsequent_indent="      ")  # fmt: skip
    return [*lines, ""]


def cmd_codes(args: argparse.Namespace, console: Console) -> int:
    """The catalogue (or the given codes): a block per code, or `--json` lines."""
    entries = []
    for text in args.codes:
        carrier = decode_carrier_message(text)
        if carrier is None or carrier.code is None:
            raise UsageError(f"not a carrier code: {text[:40]!r} (e.g. 8A, 6P or GENS-0041)")
        entries.append(carrier)
    entries = entries or list(carrier_codes())
    if args.json:
        return _write([json.dumps(code_json(carrier)) for carrier in entries])
    sys.stdout.write(shown("\n".join(line for c in entries for line in _described(c))))
    sys.stdout.flush()
    return EXIT_OK
