"""`telegent-orders webhook add|list|remove`: the account's `Order_Update` subscriptions.

The delivery's credentials (the Bearer token or Basic password Telegent will send) are secrets:
they come only from an environment variable named on the command line (`--token-env VAR`,
`--password-env VAR`), never from argv, which every local user can read through `ps`. Nothing
printed carries them: a `Webhook`'s `raw` is scrubbed of them by the client.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

from .._client import TelegentClient
from .._errors import TelegentError
from .._webhook import DATA_FORMATS, METHODS, Webhook, WebhookAuth
from ._exit import EXIT_OK, UsageError, failed_request_exit
from ._outcomes import PROG, Run, Tally
from ._session import client_options, open_client
from ._terminal import Console

__all__ = ["add_webhook_commands"]

ACCOUNT_ENV: Final = "TELEGENT_ACCOUNT_ID"
_T = TypeVar("_T")


def add_webhook_commands(
    commands: Any, parents: list[argparse.ArgumentParser], epilog: str
) -> None:
    """Register `webhook add|list|remove` on the `telegent-orders` subcommands."""
    formatter = argparse.RawDescriptionHelpFormatter
    webhook = commands.add_parser(
        "webhook",
        help="the account's webhook subscriptions (Order_Update): add, list, remove",
        description=(
            "Subscribe a URL of yours to Telegent's Order_Update event (and others), list the\n"
            "account's subscriptions, or remove one. Receive the deliveries with\n"
            "telegent_async.webhooks (bearer_token= or basic_auth=, as subscribed here)."
        ),
        formatter_class=formatter,
    )
    actions = webhook.add_subparsers(dest="webhook_command", required=True, metavar="ACTION")
    account = argparse.ArgumentParser(add_help=False)
    account.add_argument(
        "--account-id", metavar="AID", help=f"the account's AccountId (default: ${ACCOUNT_ENV})"
    )

    add = actions.add_parser(
        "add",
        parents=[*parents, account],
        help="subscribe a URL (POST /webhook/create)",
        description=(
            "Subscribe an HTTPS URL (at most 255 characters). Telegent authenticates each\n"
            "delivery with the credentials given here, read from environment variables only:\n"
            "  --token-env VAR                  a Bearer token (AuthenticationType Token)\n"
            "  --user NAME --password-env VAR   HTTP Basic (AuthenticationType Basic)\n"
            "  neither                          no authentication (a secret URL path instead)"
        ),
        epilog=epilog,
        formatter_class=formatter,
    )
    add.add_argument("url", metavar="URL", help="https:// URL Telegent calls")
    add.add_argument(
        "--event",
        dest="events",
        action="append",
        metavar="NAME",
        help="an event to subscribe (repeatable; default: Order_Update)",
    )
    add.add_argument("--method", choices=METHODS, default="POST", help="default POST")
    add.add_argument("--format", choices=DATA_FORMATS, default="json", help="default json")
    secrets = add.add_argument_group("the delivery's credentials (never on the command line)")
    secrets.add_argument("--token-env", metavar="VAR", help="read the Bearer token from $VAR")
    secrets.add_argument("--user", metavar="NAME", help="the Basic user name")
    secrets.add_argument("--password-env", metavar="VAR", help="read the Basic password from $VAR")
    add.set_defaults(handler=cmd_webhook_add)

    listing = actions.add_parser(
        "list",
        parents=[*parents, account],
        help="the account's subscriptions (GET /account/webhooks)",
        description="The account's subscriptions: ID, URL, method, format, events, active.",
        epilog=epilog,
        formatter_class=formatter,
    )
    listing.set_defaults(handler=cmd_webhook_list)

    remove = actions.add_parser(
        "remove",
        parents=parents,
        help="delete a subscription (POST /webhook/delete)",
        description="Delete a subscription: Telegent stops calling its URL.",
        epilog=epilog,
        formatter_class=formatter,
    )
    remove.add_argument("webhook_id", metavar="WID", help="the subscription's WebhookId")
    remove.set_defaults(handler=cmd_webhook_remove)


def _from_env(flag: str, variable: str) -> str:
    value = os.environ.get(variable)
    if not value:
        raise UsageError(f"{flag} {variable}: that environment variable is not set")
    return value


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


def _account_id(args: argparse.Namespace) -> str | None:
    return args.account_id or os.environ.get(ACCOUNT_ENV) or None


def _call(
    args: argparse.Namespace,
    console: Console,
    what: str,
    call: Callable[[TelegentClient], Awaitable[_T]],
) -> _T | int:
    """Run one call on a client made from the options; a failure is reported, its status
    returned."""
    options = client_options(args)
    run = Run(f"webhook {args.webhook_command}", Tally([]))

    async def send() -> _T:
        async with open_client(options, run) as client:
            return await call(client)

    try:
        return asyncio.run(send())
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from None
    except TelegentError as exc:
        console.write(f"{PROG}: error: {what} failed: {type(exc).__name__}: {exc}\n")
        return failed_request_exit(exc)


def _json(hook: Webhook) -> dict[str, Any]:
    return {
        "webhook_id": hook.webhook_id,
        "url": hook.url,
        "method": hook.method,
        "data_format": hook.data_format,
        "events": list(hook.events),
        "active": hook.active,
        "authentication": hook.raw.get("AuthenticationType"),
    }


def _line(hook: Webhook) -> str:
    active = {True: "active", False: "inactive", None: "active?"}[hook.active]
    auth = hook.raw.get("AuthenticationType") or "auth?"
    return (
        f"{hook.webhook_id}  {hook.url or '?'}  {hook.method or '?'} {hook.data_format or '?'}  "
        f"{auth}  {', '.join(hook.events) or '-'}  {active}"
    )


def _print(args: argparse.Namespace, hooks: list[Webhook]) -> None:
    for hook in hooks:
        sys.stdout.write((json.dumps(_json(hook)) if args.json else _line(hook)) + "\n")
    sys.stdout.flush()


def cmd_webhook_add(args: argparse.Namespace, console: Console) -> int:
    try:
        auth = _auth(args)
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from None
    account = _account_id(args)
    if account is None:
        raise UsageError(f"give --account-id or set {ACCOUNT_ENV}")
    events = tuple(args.events or ("Order_Update",))

    def create(client: TelegentClient) -> Awaitable[Webhook]:
        return client.create_webhook(
            args.url,
            account_id=account,
            events=events,
            method=args.method,
            data_format=args.format,
            auth=auth,
        )

    hook = _call(args, console, f"subscribing {args.url}", create)
    if isinstance(hook, int):
        return hook
    _print(args, [hook])
    return EXIT_OK


def cmd_webhook_list(args: argparse.Namespace, console: Console) -> int:
    account = _account_id(args)
    hooks = _call(args, console, "listing webhooks", lambda c: c.list_webhooks(account_id=account))
    if isinstance(hooks, int):
        return hooks
    if not hooks and not args.json:
        sys.stdout.write("no webhooks subscribed\n")
    _print(args, hooks)
    return EXIT_OK


def cmd_webhook_remove(args: argparse.Namespace, console: Console) -> int:
    done = _call(
        args,
        console,
        f"removing {args.webhook_id}",
        lambda client: client.delete_webhook(args.webhook_id),
    )
    if isinstance(done, int):
        return done
    if args.json:
        sys.stdout.write(json.dumps({"webhook_id": args.webhook_id, "deleted": True}) + "\n")
    else:
        sys.stdout.write(f"webhook {args.webhook_id} removed\n")
    return EXIT_OK
