"""`telegent-orders` arguments, declared as tables (`_add`), and the entry point `main`.

Every command that talks to the API ends its `--help` with the exit-status table (`_exit`) and
where credentials come from; defaults shown are the library's own constants.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import signal
import sys
import textwrap
from collections.abc import Callable, Sequence
from typing import Any, Final, TypeVar

from .. import __version__, _validate
from .._config import DEFAULT_MAX_RETRIES, DEFAULT_REQUESTS_PER_MINUTE
from .._stores.redis import DEFAULT_NAMESPACE
from .._timing import PRESETS, PollPolicy
from .._webhook import DATA_FORMATS, METHODS
from ._calls import ACCOUNT_ENV, cmd_cancel, cmd_codes, cmd_update, cmd_webhook
from ._demo import DEFAULT_ORDERS, MAX_ORDERS, MIN_ORDERS, cmd_demo, cmd_fake_server
from ._exit import EXIT_BROKEN_PIPE, EXIT_INTERRUPTED, EXIT_USAGE, UsageError, exit_help
from ._outcomes import PROG
from ._session import cmd_get, cmd_wait
from ._terminal import Console, setup_logging
from ._watch import cmd_wait_with_state, cmd_watch

_EPILOG: Final = exit_help() + (
    "\ncredentials: --token or TELEGENT_TOKEN, or --account-key and --account-secret\n"
    "(or TELEGENT_ACCOUNT_KEY and TELEGENT_ACCOUNT_SECRET); --base-url or TELEGENT_BASE_URL.\n"
    "Prefer the environment for secrets: command-line arguments are visible to other local\n"
    "users. A token or secret is never printed, whatever the verbosity.\n"
)
_N = TypeVar("_N", int, float)


def _rate(text: str) -> float:
    """`--rate`: requests per minute, at least 1. The budget counts whole requests in a 60 s
    window, so a lower rate would be one request a minute all the same (0.001 waited a minute
    per lookup without a word)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    try:
        value = _validate.positive_number("the value", value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 request a minute, got {text}")
    return value


def _within(kind: Callable[[str], _N], low: _N, high: _N) -> Callable[[str], _N]:
    """An argparse type: `kind(text)` from `low` to `high` (a port, a count, a scale)."""

    def parse(text: str) -> _N:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not low <= value <= high:  # NaN is not either
            raise argparse.ArgumentTypeError(f"must be from {low} to {high}, got {text}")
        return value

    return parse


def _cadence(policy: PollPolicy) -> str:
    def duration(seconds: float) -> str:
        for unit, size in (("h", 3600), ("min", 60)):
            if seconds >= size and seconds % size == 0:
                return f"{seconds / size:g} {unit}"
        return f"{seconds:g} s"

    return f"{duration(policy.initial)} growing to {duration(policy.max_interval)}"


def _add(parser: argparse.ArgumentParser, spec: str, **extra: dict[str, Any]) -> None:
    """Add the arguments of `spec`, one a line: `--flag... [METAVAR | ! | +]  help` (`!` a
    switch, `+` a counter) or `dest METAVAR[*]  help` (a positional); two spaces before the
    help, an indented line continues it, `[title]` starts a group. `extra` holds more
    `add_argument` keywords by destination (`type`, `default`, `choices` ...)."""
    target: Any = parser
    lines: list[list[str]] = []
    for line in spec.strip("\n").splitlines():
        if line.startswith(" "):
            lines[-1][1] += " " + line.strip()
        else:
            lines.append([*re.split(r"\s{2,}", line, maxsplit=1), ""][:2])
    for head, text in lines:
        if head.startswith("["):
            target = parser.add_argument_group(head.strip("[]"))
            continue
        words = head.split()
        flags = [word for word in words if word.startswith("-")] or words[:1]
        kind = words[-1] if len(words) > len(flags) else None
        dest = next((f for f in flags if f.startswith("--")), flags[0]).lstrip("-")
        keywords: dict[str, Any] = {"help": text}
        if kind == "!":
            keywords["action"] = "store_true"
        elif kind == "+":
            keywords.update(action="count", default=0)
        elif kind is not None:
            keywords.update(metavar=kind.rstrip("*"), nargs="*" if kind.endswith("*") else None)
        target.add_argument(*flags, **keywords, **extra.get(dest.replace("-", "_"), {}))


_PRESETS: Final = dict(choices=sorted(PRESETS))
_PRESET_HELP: Final = (
    f"poll cadence: provision ({_cadence(PollPolicy.PROVISION)}, the default) or "
    f"portin ({_cadence(PollPolicy.PORT_IN)})"
)
_RPM, _RETRIES = DEFAULT_REQUESTS_PER_MINUTE, DEFAULT_MAX_RETRIES

#: The options several commands share: name -> (spec, extra keywords).
_PARENTS: Final[dict[str, tuple[str, dict[str, Any]]]] = {
    "verbose": ("-v --verbose +  -v: INFO logs, -vv: DEBUG (stderr)", {}),
    "output": ("""
--json !  one JSON object per order on stdout, nothing else
--rows N  rows per group in the report (0: all)
""", {"rows": dict(type=_within(int, 0, 10**6), default=10)}),
    "api": (f"""
[credentials and API]
--token TOKEN  bearer token (default: $TELEGENT_TOKEN); write --token=VALUE if it starts with -
--account-key ACCOUNT_KEY  account key (default: $TELEGENT_ACCOUNT_KEY)
--account-secret ACCOUNT_SECRET  account secret (default: $TELEGENT_ACCOUNT_SECRET)
--base-url BASE_URL  API root (default: $TELEGENT_BASE_URL or https://api.telegent.com/v1.0)
--insecure !  allow plain http to a loopback host (a fake)
--rate RPM  client-wide budget, requests per minute, at least 1 (default: {_RPM:g}, the
  standard tier)
--retries N  retries of a transient failure (429, 5xx, timeout) per request
  (default: {_RETRIES})
""", {"rate": dict(type=_rate, default=_RPM),
      "retries": dict(type=int, default=_RETRIES)}),
    "ids": ("""
order_ids ID*  order IDs
--from-file PATH|-  read more IDs from a file, or stdin with -: one per line, # starts a comment
""", {}),
    "seeded": (f"""
--orders N  how many orders (default {DEFAULT_ORDERS}, {MIN_ORDERS} to {MAX_ORDERS})
--seed SEED  same seed, same scenario
--time-scale F  multiply every duration of the scenario by F, 0.001 to 1000 (0.2: 5x faster)
""", {"orders": dict(type=_within(int, MIN_ORDERS, MAX_ORDERS), default=DEFAULT_ORDERS),
      "seed": dict(type=int), "time_scale": dict(type=_within(float, 0.001, 1000), default=1.0)}),
    "store": (f"""
--store FILE|URL  the SQLite file, or a Redis URL (redis://host:6379/0) for workers on many hosts
--namespace NAMESPACE  with a Redis store: the namespace of its keys (default {DEFAULT_NAMESPACE})
""", {"store": dict(required=True), "namespace": dict(default=DEFAULT_NAMESPACE)}),
    "preset": (f"--preset --policy  {_PRESET_HELP}", {"preset": _PRESETS}),
    "account": (f"--account-id AID  the account's AccountId (default: ${ACCOUNT_ENV})", {}),
}  # fmt: skip

#: Every command: (name, parents, handler or None for a group of actions, help, description,
#: its own arguments, their extra keywords). A description with no line break is wrapped.
_COMMANDS: Final[tuple[tuple[str, str, Any, str, str, str, dict[str, Any]], ...]] = (
    ("get", "verbose output api ids", cmd_get, "look each order up once, concurrently",
     "Look each order up once, concurrently.", "", {}),
    ("wait", "verbose output api ids", None, "wait until every order settles, with live progress",
     "Wait until every order settles (or the deadline passes), showing live progress on stderr "
     "when it is a terminal, then report.", f"""
--timeout S  overall deadline in seconds (default 3600; 0: none)
--preset  {_PRESET_HELP}
--state FILE  keep the watches in this SQLite file: run the same command again after an
  interrupt (Ctrl-C, kill) and it resumes, polling no order settled before
""", {"timeout": dict(type=_within(float, 0, 10**9), default=3600.0),
      "preset": dict(_PRESETS, default="provision")}),
    ("demo", "verbose output seeded", cmd_demo,
     "wait for a realistic mix of orders on an embedded fake server",
     "Start an embedded FakeTelegent on 127.0.0.1 (rate limit, a few 503s, a 429), seed it with "
     "a realistic mix of provision orders and port-ins (some rejected with carrier codes), and "
     "run `wait` against it. No network, no credentials.", "", {}),
    ("fake-server", "seeded", cmd_fake_server,
     "run the fake server in the foreground for your own tests",
     "Run FakeTelegent in the foreground with the demo's orders, print its base URL, test "
     "credentials and order IDs, and serve until Ctrl-C or SIGTERM.", """
--host HOST  default 127.0.0.1
--port PORT  default: any free port
--ids-file FILE  also write the IDs it serves to FILE, one a line (for --from-file FILE)
""", {"host": dict(default="127.0.0.1"), "port": dict(type=_within(int, 0, 65535), default=0)}),
    ("codes", "", cmd_codes,
     "the carrier codes of failed port-ins: meaning and next step (no API call)",
     "The carrier codes this SDK knows (or what the given ones mean, from their group when not "
     "listed): meaning, next step, and the update fields that fix it.", """
codes CODE*  only these codes (e.g. 8A 6P)
--json !  one JSON object per code
""", {}),
    ("update", "verbose output api", cmd_update,
     "correct a port-in that needs action (POST /numbers/portin/update)",
     "Correct a port-in in place: send only the fields given. The account number and\n"
     "PIN are read from an environment variable you name, or a prompt, never from the\n"
     f"command line. Then wait for it again: {PROG} wait ID --preset portin", """
order_id ID  the port-in's order ID
[secrets (never on the command line)]
--account-number-env VAR  read the account number from environment variable VAR
--account-number-prompt !  ask for the account number
--pin-env VAR  read the account PIN from environment variable VAR
--pin-prompt !  ask for the account PIN
[fields]
--carrier-name CARRIER  current carrier name
--subscriber-name NAME_ON_THE_ACCOUNT  subscriber name
--port-in-date YYYY-MM-DD  port in date
--iccid ICCID  iccid
--classification Mobile  target portin classification
--street1 STREET1  billing address: street1
--street2 STREET2  billing address: street2
--city CITY  billing address: city
--state STATE  billing address: state
--zip ZIP  billing address: zip
""", {}),
    ("cancel", "verbose output api", cmd_cancel, "cancel a port-in (final; needs --yes)",
     "Cancel a port-in (POST /numbers/portin/cancel). Final: it cannot be reopened.", """
order_id ID  the port-in's order ID
--yes !  confirm: the cancel is final
""", {}),
    ("webhook", "", None, "the account's webhook subscriptions (Order_Update): add, list, remove",
     "Subscribe a URL of yours to Telegent's Order_Update event (and others), list the\n"
     "account's subscriptions, or remove one. Receive the deliveries with\n"
     "telegent_async.webhooks (bearer_token= or basic_auth=, as subscribed here).", "", {}),
    ("webhook add", "verbose output api account", cmd_webhook,
     "subscribe a URL (POST /webhook/create)",
     "Subscribe an HTTPS URL (at most 255 characters). Telegent authenticates each\n"
     "delivery with the credentials given here, read from environment variables only:\n"
     "  --token-env VAR                  a Bearer token (AuthenticationType Token)\n"
     "  --user NAME --password-env VAR   HTTP Basic (AuthenticationType Basic)\n"
     "  neither                          no authentication (a secret URL path instead)", """
url URL  https:// URL Telegent calls
--event NAME  an event to subscribe (repeatable; default: Order_Update)
--method  default POST
--format  default json
[the delivery's credentials (never on the command line)]
--token-env VAR  read the Bearer token from $VAR
--user NAME  the Basic user name
--password-env VAR  read the Basic password from $VAR
""", {"event": dict(dest="events", action="append"),
      "method": dict(choices=METHODS, default="POST"),
      "format": dict(choices=DATA_FORMATS, default="json")}),
    ("webhook list", "verbose output api account", cmd_webhook,
     "the account's subscriptions (GET /account/webhooks)",
     "The account's subscriptions: ID, URL, method, format, events, active.", "", {}),
    ("webhook remove", "verbose output api", cmd_webhook,
     "delete a subscription (POST /webhook/delete)",
     "Delete a subscription: Telegent stops calling its URL.",
     "webhook_id WID  the subscription's WebhookId", {}),
    ("watch", "", None, "durable watches in an SQLite file or Redis: add, list, remove, retry, run",
     "Durable watches kept in an SQLite file or Redis: add order IDs, list their state,\n"
     "remove them, re-arm settled ones (retry), and run a watcher that prints each\n"
     "settled outcome until stopped (Ctrl-C or SIGTERM). A stopped or killed watcher\n"
     "loses nothing: the next one carries on. A store that cannot be used (unknown\n"
     "scheme, missing directory, not a store, newer version) exits 2 with one line.", "", {}),
    ("watch add", "verbose store ids preset", cmd_watch,
     "watch more orders (already watched ones are left as they are)",
     "Watch more orders; returns once they are committed to the file.", """
--deadline S|TIME  settle as timed out after S seconds, or at an ISO 8601 time with its zone
--tag TAG  your label for these watches (e.g. a ticket number)
""", {}),
    ("watch list", "verbose store", cmd_watch, "the state of every watch in the store",
     "The state of every watch: order, tag, last status, polls, next poll, "
     "pending/settled/acknowledged, error.", "--json !  one JSON object per watch", {}),
    ("watch remove", "verbose store ids", cmd_watch, "stop watching orders and forget their state",
     "Stop watching these orders and forget their state (pending or settled).", "", {}),
    ("watch retry", "verbose store ids", cmd_watch,
     "watch settled orders again: pending, polled at once",
     "Re-arm settled watches (e.g. after fixing what made them fail): each is pending\n"
     "again and polled at once by a running `watch run`; its old outcome is no longer\n"
     "delivered. Pending or unknown orders are left as they are.", "", {}),
    ("watch run", "verbose output api store preset", cmd_watch,
     "poll the file's watches, print each settled outcome until stopped",
     "Poll every watch of the store (several `watch run` on one store share the work:\n"
     "on a Redis store, on any number of hosts; give them one --budget to share the\n"
     "account's rate), print each settled outcome as it comes (--json: one object per\n"
     "line, as `wait` writes them, plus its tag) and acknowledge it once printed.\n"
     "Ctrl-C or SIGTERM stops it cleanly (exit status 0): it stops claiming, and\n"
     "polls under way are given back to the store, so nothing stays leased.", """
--budget URL  share the account budget (--rate) with every worker naming this Redis URL
  and --budget-name (default: this process's own budget)
--budget-name BUDGET_NAME  the shared budget's name (default telegent)
""", {"budget_name": dict(default="telegent")}),
)  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    """Every command's parser, help text and handler, from `_PARENTS` and `_COMMANDS`."""
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Look Telegent orders up, or wait until they settle and see why any failed.",
        epilog=_EPILOG,
        formatter_class=formatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parents = {}
    for name, (spec, extra) in _PARENTS.items():
        parents[name] = argparse.ArgumentParser(add_help=False)
        _add(parents[name], spec, **extra)
    groups = {"": parser.add_subparsers(dest="command", required=True, metavar="COMMAND")}
    for path, uses, handler, help, about, spec, extra in _COMMANDS:
        *group, name = path.split()
        command = groups[" ".join(group)].add_parser(
            name,
            help=help,
            description=about if "\n" in about else textwrap.fill(about, 78),
            parents=[parents[use] for use in uses.split()],
            epilog=_EPILOG if "output" in uses else None,
            formatter_class=formatter,
        )
        _add(command, spec, **extra)
        if path == "wait":
            command.set_defaults(handler=_wait)
        elif handler is not None:
            command.set_defaults(handler=handler)
        else:
            groups[path] = command.add_subparsers(
                dest=f"{name}_command", required=True, metavar="ACTION"
            )
    return parser


def _wait(args: argparse.Namespace, console: Console) -> int:
    """`wait`, or with `--state FILE` the durable, resumable `wait` (`_watch`)."""
    if args.state is not None:
        return cmd_wait_with_state(args, console)
    return cmd_wait(args, console)


def main(argv: Sequence[str] | None = None) -> int:
    """The `telegent-orders` entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    if isinstance(sys.stdout, io.TextIOWrapper):  # a server's text in a report to an ASCII stdout
        sys.stdout.reconfigure(errors="backslashreplace")
    console = Console(sys.stderr)
    setup_logging(getattr(args, "verbose", 0), console)
    with contextlib.suppress(ValueError):  # (not in the main thread: a test's) a prompt, reading
        signal.signal(signal.SIGTERM, signal.default_int_handler)  # stdin: SIGTERM as Ctrl-C
    try:
        return int(args.handler(args, console))
    except UsageError as exc:
        console.write(f"{PROG}: error: {exc}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:  # Ctrl-C (at a prompt, too) or SIGTERM, once the work has stopped
        console.write(f"{PROG}: interrupted\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # stdout closed early (`| head`): stop quietly, like Unix tools
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
