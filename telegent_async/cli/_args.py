"""`telegent-orders` arguments: every command's parser, its help text and its handler.

The epilog of each command that talks to the API is the one exit-status table (`_exit`)
followed by where credentials come from; defaults shown are the library's own constants.
"""

from __future__ import annotations

import argparse
import contextlib
from typing import Any, Final

from .. import __version__, _validate
from .._config import DEFAULT_MAX_RETRIES, DEFAULT_REQUESTS_PER_MINUTE
from .._stores.redis import DEFAULT_NAMESPACE
from .._timing import PollPolicy
from ._codes import add_codes_command
from ._commands import cmd_demo, cmd_fake_server, cmd_get, cmd_wait
from ._demo import DEFAULT_ORDERS, MIN_ORDERS
from ._exit import exit_help
from ._outcomes import PROG, UPDATE_OPTIONS
from ._portin import ADDRESS_LINES, PLAIN, SECRETS, cmd_cancel, cmd_update
from ._session import PRESETS
from ._terminal import Console, wrap
from ._watch import (
    cmd_wait_with_state,
    cmd_watch_add,
    cmd_watch_list,
    cmd_watch_remove,
    cmd_watch_retry,
    cmd_watch_run,
)
from ._webhook import add_webhook_commands

_CREDENTIALS_HELP: Final = """\
credentials: --token or TELEGENT_TOKEN, or --account-key and --account-secret
(or TELEGENT_ACCOUNT_KEY and TELEGENT_ACCOUNT_SECRET); --base-url or TELEGENT_BASE_URL.
Prefer the environment for secrets: command-line arguments are visible to other local
users. A token or secret is never printed, whatever the verbosity.
"""
_EPILOG: Final = exit_help() + "\n" + _CREDENTIALS_HELP


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    try:
        return _validate.positive_number("the value", value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}") from None


def _non_negative_float(text: str) -> float:
    with contextlib.suppress(ValueError):
        if float(text) == 0:
            return 0.0
    return _positive_float(text)


def _orders_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < MIN_ORDERS:
        raise argparse.ArgumentTypeError(f"the demo needs at least {MIN_ORDERS} orders")
    return value


def _para(text: str) -> str:
    """A help paragraph wrapped by hand (the raw formatter keeps the epilog's layout)."""
    return "\n".join(wrap(text, 78, "", ""))


def _duration(seconds: float) -> str:
    for unit, size in (("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g} {unit}"
    return f"{seconds:g} s"


def _cadence(policy: PollPolicy) -> str:
    return f"{_duration(policy.initial)} growing to {_duration(policy.max_interval)}"


def build_parser() -> argparse.ArgumentParser:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Look Telegent orders up, or wait until they settle and see why any failed.",
        epilog=_EPILOG,
        formatter_class=formatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-v", "--verbose", action="count", default=0, help="-v: INFO logs, -vv: DEBUG (stderr)"
    )
    common.add_argument(
        "--json", action="store_true", help="one JSON object per order on stdout, nothing else"
    )
    common.add_argument(
        "--rows", type=int, default=10, metavar="N", help="rows per group in the report (0: all)"
    )

    api = argparse.ArgumentParser(add_help=False)
    group = api.add_argument_group("credentials and API")
    group.add_argument(
        "--token",
        help="bearer token (default: $TELEGENT_TOKEN); write --token=VALUE if it starts with -",
    )
    group.add_argument("--account-key", help="account key (default: $TELEGENT_ACCOUNT_KEY)")
    group.add_argument(
        "--account-secret", help="account secret (default: $TELEGENT_ACCOUNT_SECRET)"
    )
    group.add_argument(
        "--base-url", help="API root (default: $TELEGENT_BASE_URL or https://api.telegent.com/v1.0)"
    )
    group.add_argument(
        "--insecure", action="store_true", help="allow plain http to a loopback host (a fake)"
    )
    group.add_argument(
        "--rate",
        type=_positive_float,
        default=DEFAULT_REQUESTS_PER_MINUTE,
        metavar="RPM",
        help=f"client-wide budget, requests per minute (default: "
        f"{DEFAULT_REQUESTS_PER_MINUTE:g}, the standard tier)",
    )
    group.add_argument(
        "--retries",
        type=int,
        default=DEFAULT_MAX_RETRIES,
        metavar="N",
        help="retries of a transient failure (429, 5xx, timeout) per request "
        f"(default: {DEFAULT_MAX_RETRIES})",
    )

    ids = argparse.ArgumentParser(add_help=False)
    ids.add_argument("order_ids", nargs="*", metavar="ID", help="order IDs")
    ids.add_argument(
        "--from-file",
        metavar="PATH|-",
        help="read more IDs from a file, or stdin with -: one per line, # starts a comment",
    )

    seeded = argparse.ArgumentParser(add_help=False)
    seeded.add_argument(
        "--orders",
        type=_orders_count,
        default=DEFAULT_ORDERS,
        metavar="N",
        help=f"how many orders (default {DEFAULT_ORDERS}, at least {MIN_ORDERS})",
    )
    seeded.add_argument("--seed", type=int, default=None, help="same seed, same scenario")
    seeded.add_argument(
        "--time-scale",
        type=_positive_float,
        default=1.0,
        metavar="F",
        help="multiply every duration of the scenario by F (0.2 runs it 5x faster)",
    )

    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    get = commands.add_parser(
        "get",
        parents=[common, api, ids],
        help="look each order up once, concurrently",
        description="Look each order up once, concurrently.",
        epilog=_EPILOG,
        formatter_class=formatter,
    )
    get.set_defaults(handler=cmd_get)
    wait = commands.add_parser(
        "wait",
        parents=[common, api, ids],
        help="wait until every order settles, with live progress",
        description=_para(
            "Wait until every order settles (or the deadline passes), showing live "
            "progress on stderr when it is a terminal, then report."
        ),
        epilog=_EPILOG,
        formatter_class=formatter,
    )
    wait.add_argument(
        "--timeout",
        type=_non_negative_float,
        default=3600.0,
        metavar="S",
        help="overall deadline in seconds (default 3600; 0: none)",
    )
    preset_help = (
        f"poll cadence: provision ({_cadence(PollPolicy.PROVISION)}, the default) or "
        f"portin ({_cadence(PollPolicy.PORT_IN)})"
    )
    wait.add_argument("--preset", choices=sorted(PRESETS), default="provision", help=preset_help)
    wait.add_argument(
        "--state",
        metavar="FILE",
        help="keep the watches in this SQLite file: run the same command again after an "
        "interrupt (Ctrl-C, kill) and it resumes, polling no order settled before",
    )
    wait.set_defaults(handler=_wait)
    demo = commands.add_parser(
        "demo",
        parents=[common, seeded],
        help="wait for a realistic mix of orders on an embedded fake server",
        description=_para(
            "Start an embedded FakeTelegent on 127.0.0.1 (rate limit, a few 503s, a "
            "429), seed it with a realistic mix of provision orders and port-ins (some "
            "rejected with carrier codes), and run `wait` against it. No network, no credentials."
        ),
        epilog=_EPILOG,
        formatter_class=formatter,
    )
    demo.set_defaults(handler=cmd_demo)
    server = commands.add_parser(
        "fake-server",
        parents=[seeded],
        help="run the fake server in the foreground for your own tests",
        description=_para(
            "Run FakeTelegent in the foreground with the demo's orders, print its base "
            "URL, test credentials and order IDs, and serve until Ctrl-C or SIGTERM."
        ),
    )
    server.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1")
    server.add_argument("--port", type=int, default=0, help="default: any free port")
    server.add_argument(
        "--ids-file",
        metavar="FILE",
        help="also write the IDs it serves to FILE, one a line (for --from-file FILE)",
    )
    server.set_defaults(handler=cmd_fake_server)

    add_codes_command(commands)
    _add_port_in_commands(commands, [common, api], _EPILOG)
    add_webhook_commands(commands, [common, api], _EPILOG)
    _add_watch_commands(commands, {"common": common, "api": api, "ids": ids}, _EPILOG, preset_help)
    return parser


def _add_port_in_commands(
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
    for keyword, prompt_flag, _prompt in SECRETS:
        env_flag = UPDATE_OPTIONS[keyword][0]
        what = "account number" if keyword == "current_account_number" else "account PIN"
        secrets.add_argument(
            env_flag, metavar="VAR", help=f"read the {what} from environment variable VAR"
        )
        secrets.add_argument(prompt_flag, action="store_true", help=f"ask for the {what}")
    fields = update.add_argument_group("fields")
    for keyword in PLAIN:
        flag, placeholder = UPDATE_OPTIONS[keyword]
        fields.add_argument(
            flag, metavar=placeholder.strip("'").replace(" ", "_"), help=keyword.replace("_", " ")
        )
    for line in ADDRESS_LINES:
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


def _add_watch_commands(
    commands: Any,
    parents: dict[str, argparse.ArgumentParser],
    epilog: str,
    preset_help: str,
) -> None:
    """Register `watch add|list|remove|retry|run` on the `telegent-orders` subcommands."""
    formatter = argparse.RawDescriptionHelpFormatter
    watch = commands.add_parser(
        "watch",
        help="durable watches in an SQLite file or Redis: add, list, remove, retry, run",
        description=(
            "Durable watches kept in an SQLite file or Redis: add order IDs, list their state,\n"
            "remove them, re-arm settled ones (retry), and run a watcher that prints each\n"
            "settled outcome until stopped (Ctrl-C or SIGTERM). A stopped or killed watcher\n"
            "loses nothing: the next one carries on. A store that cannot be used (unknown\n"
            "scheme, missing directory, not a store, newer version) exits 2 with one line."
        ),
        formatter_class=formatter,
    )
    actions = watch.add_subparsers(dest="watch_command", required=True, metavar="ACTION")
    store = argparse.ArgumentParser(add_help=False)
    store.add_argument(
        "--store",
        required=True,
        metavar="FILE|URL",
        help="the SQLite file, or a Redis URL (redis://host:6379/0) for workers on many hosts",
    )
    store.add_argument(
        "--namespace",
        default=DEFAULT_NAMESPACE,
        help=f"with a Redis store: the namespace of its keys (default {DEFAULT_NAMESPACE})",
    )
    verbose = argparse.ArgumentParser(add_help=False)
    verbose.add_argument(
        "-v", "--verbose", action="count", default=0, help="-v: INFO logs, -vv: DEBUG (stderr)"
    )
    preset = argparse.ArgumentParser(add_help=False)
    preset.add_argument("--preset", "--policy", choices=sorted(PRESETS), help=preset_help)

    add = actions.add_parser(
        "add",
        parents=[verbose, store, parents["ids"], preset],
        help="watch more orders (already watched ones are left as they are)",
        description="Watch more orders; returns once they are committed to the file.",
    )
    add.add_argument(
        "--deadline",
        metavar="S|TIME",
        help="settle as timed out after S seconds, or at an ISO 8601 time with its zone",
    )
    add.add_argument("--tag", help="your label for these watches (e.g. a ticket number)")
    add.set_defaults(handler=cmd_watch_add)

    listing = actions.add_parser(
        "list",
        parents=[verbose, store],
        help="the state of every watch in the store",
        description="The state of every watch: order, tag, last status, polls, next poll, "
        "pending/settled/acknowledged, error.",
    )
    listing.add_argument("--json", action="store_true", help="one JSON object per watch")
    listing.set_defaults(handler=cmd_watch_list)

    remove = actions.add_parser(
        "remove",
        parents=[verbose, store, parents["ids"]],
        help="stop watching orders and forget their state",
        description="Stop watching these orders and forget their state (pending or settled).",
    )
    remove.set_defaults(handler=cmd_watch_remove)

    retry = actions.add_parser(
        "retry",
        parents=[verbose, store, parents["ids"]],
        help="watch settled orders again: pending, polled at once",
        description=(
            "Re-arm settled watches (e.g. after fixing what made them fail): each is pending\n"
            "again and polled at once by a running `watch run`; its old outcome is no longer\n"
            "delivered. Pending or unknown orders are left as they are."
        ),
        formatter_class=formatter,
    )
    retry.set_defaults(handler=cmd_watch_retry)

    run = actions.add_parser(
        "run",
        parents=[parents["common"], parents["api"], store, preset],
        help="poll the file's watches, print each settled outcome until stopped",
        description=(
            "Poll every watch of the store (several `watch run` on one store share the work:\n"
            "on a Redis store, on any number of hosts; give them one --budget to share the\n"
            "account's rate), print each settled outcome as it comes (--json: one object per\n"
            "line, as `wait` writes them, plus its tag) and acknowledge it once printed.\n"
            "Ctrl-C or SIGTERM stops it cleanly (exit status 0): it stops claiming, and\n"
            "polls under way are given back to the store, so nothing stays leased."
        ),
        epilog=epilog,
        formatter_class=formatter,
    )
    run.add_argument(
        "--budget",
        metavar="URL",
        help="share the account budget (--rate) with every worker naming this Redis URL "
        "and --budget-name (default: this process's own budget)",
    )
    run.add_argument(
        "--budget-name", default="telegent", help="the shared budget's name (default telegent)"
    )
    run.set_defaults(handler=cmd_watch_run)


def _wait(args: argparse.Namespace, console: Console) -> int:
    """`wait`, or with `--state FILE` the durable, resumable `wait` (`_watch`)."""
    if args.state is not None:
        return cmd_wait_with_state(args, console)
    return cmd_wait(args, console)
