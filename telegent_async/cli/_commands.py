"""`telegent-orders`: look orders up, wait for them with a live progress line, run the demo.

Only the standard library (argparse) on top of the SDK: the CLI is a thin shell around
`TelegentClient.get_orders` / `wait_for_orders`. This module parses arguments, finds the
credentials and order IDs and runs the commands; everything shown, and the exit status, comes
from `_cli_output`. Requests are counted with an aiohttp TraceConfig on a session handed to
the client, so the library carries no counters for the CLI's sake.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import logging
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, Final, TextIO

import aiohttp

from . import __version__
from ._cli_output import (
    EXIT_BROKEN_PIPE,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    PROG,
    Console,
    Output,
    Progress,
    Run,
    Tally,
    is_credentials_error,
    setup_logging,
    wrap,
)
from ._client import TelegentClient
from ._models import OrderOutcome
from ._timing import PollPolicy

if TYPE_CHECKING:
    from ._demo import DemoOrder, DemoSettings
    from .testing import FakeTelegent

__all__ = ["main"]

#: Connections of the CLI's session, and so of its client (`TelegentClient`'s default).
_MAX_CONNECTIONS: Final = 20

logger = logging.getLogger("telegent_async.cli")

_EXIT_HELP: Final = """\
exit status (the first that applies wins):
  2    usage error, missing credentials, or credentials refused by the API (401/403)
  3    some order timed out, or could not be looked up (connection failure, 5xx,
       408 or 429 after every retry, an answer that is not an order)
  1    some order failed, needs action, was cancelled, or is unknown (404)
  0    every order completed (get: every lookup answered and none failed;
       orders still pending are fine for a lookup)
  130  interrupted (Ctrl-C or SIGTERM); the report covers the orders settled so far
  141  stdout was closed before the results were written (e.g. `| head`)

credentials: --token or TELEGENT_TOKEN, or --account-key and --account-secret
(or TELEGENT_ACCOUNT_KEY and TELEGENT_ACCOUNT_SECRET); --base-url or TELEGENT_BASE_URL.
Prefer the environment for secrets: command-line arguments are visible to other local
users. A token or secret is never printed, whatever the verbosity.
"""


class UsageError(Exception):
    """Bad arguments or missing credentials: one line on stderr, exit status 2."""


# -- credentials and client ------------------------------------------------------------------


def client_options(args: argparse.Namespace) -> dict[str, Any]:
    """TelegentClient arguments from flags, else TELEGENT_* variables; UsageError if missing."""
    env = os.environ
    token = args.token or None
    key = args.account_key or env.get("TELEGENT_ACCOUNT_KEY") or None
    secret = args.account_secret or env.get("TELEGENT_ACCOUNT_SECRET") or None
    if token is None and not (args.account_key or args.account_secret):
        token = env.get("TELEGENT_TOKEN") or None
    options: dict[str, Any] = {
        "base_url": args.base_url or env.get("TELEGENT_BASE_URL") or None,
        "allow_insecure": args.insecure,
        "requests_per_minute": args.rate,
        "max_retries": args.retries,
    }
    if token is not None:
        return {**options, "token": token}
    if key and secret:
        return {**options, "account_key": key, "account_secret": secret}
    missing = [
        name
        for name, value in (
            ("--account-key/TELEGENT_ACCOUNT_KEY", key),
            ("--account-secret/TELEGENT_ACCOUNT_SECRET", secret),
        )
        if not value
    ]
    raise UsageError(
        f"missing credentials ({' and '.join(missing)} not set): pass --token or set "
        "TELEGENT_TOKEN, or pass --account-key and --account-secret or set "
        "TELEGENT_ACCOUNT_KEY and TELEGENT_ACCOUNT_SECRET"
    )


@contextlib.asynccontextmanager
async def open_client(options: dict[str, Any], run: Run) -> AsyncIterator[TelegentClient]:
    """A client on a session of ours, so that its requests can be traced and counted."""
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=_MAX_CONNECTIONS),
        headers={"User-Agent": f"{PROG}/{__version__}", "Accept": "application/json"},
        trace_configs=[run.counter.trace_config()],
    ) as session:
        try:
            client = TelegentClient(**options, max_connections=_MAX_CONNECTIONS, session=session)
        except (ValueError, TypeError) as exc:
            raise UsageError(str(exc)) from None
        run.budget_rpm = client.budget.requests_per_minute
        logger.info(
            "API %s, auth by %s, budget %s requests/min",
            client.base_url,
            "token" if "token" in options else "account key and secret",
            run.budget_rpm,
        )
        async with client:
            yield client


def read_order_ids(args: argparse.Namespace, stdin: TextIO) -> list[str]:
    """IDs from the arguments and `--from-file` (one a line; blanks and # comments skipped)."""
    ids = list(args.order_ids)
    if args.from_file is not None:
        try:
            if args.from_file == "-":
                text = stdin.read()
            else:
                with open(args.from_file, encoding="utf-8") as file:
                    text = file.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read order IDs from {args.from_file}: {exc}") from None
        for line in text.splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                ids.append(line)
    if not ids:
        raise UsageError("no order IDs: pass them as arguments or with --from-file PATH|-")
    from . import _validate

    for order_id in ids:
        try:
            _validate.order_id(order_id)
        except (TypeError, ValueError) as exc:
            raise UsageError(f"invalid order ID: {exc}") from None
    return list(dict.fromkeys(ids))


# -- commands --------------------------------------------------------------------------------


def _record(run: Run, output: Output, outcome: OrderOutcome) -> None:
    group = run.tally.add(outcome)
    logger.debug("order %s: %s after %.2f s", outcome.order_id, group.value, run.elapsed)
    output.outcome(outcome, group)


async def get_orders(run: Run, options: dict[str, Any], output: Output) -> None:
    async with (
        open_client(options, run) as client,
        Progress(output.console, run, client, waiting=False).shown(),
    ):
        outcomes = await client.get_orders(run.tally.order_ids)
    run.finished = time.monotonic()
    refused = [o.error for o in outcomes if is_credentials_error(o.error)]
    if refused:
        run.credentials_error = refused[0]
        logger.debug("%d of %d lookups refused: %s", len(refused), len(outcomes), refused[0])
        return
    for outcome in outcomes:
        _record(run, output, outcome)


async def wait_for_orders(
    run: Run,
    options: dict[str, Any],
    output: Output,
    *,
    timeout: float | None,
    policy: PollPolicy,
) -> None:
    async with open_client(options, run) as client:
        run.started = time.monotonic()
        stream = client.wait_for_orders(run.tally.order_ids, timeout=timeout, policy=policy)
        async with Progress(output.console, run, client, waiting=True).shown(), stream:
            async for outcome in stream:
                if is_credentials_error(outcome.error):
                    run.credentials_error = outcome.error
                    logger.debug("order %s refused: %s", outcome.order_id, outcome.error)
                    break  # every other order would be refused the same way
                _record(run, output, outcome)
        run.finished = time.monotonic()


async def run_demo(
    run: Run, plan: Sequence[DemoOrder], args: argparse.Namespace, output: Output
) -> None:
    from . import _demo

    settings = run.demo
    assert settings is not None
    loop = asyncio.get_running_loop()
    async with settings.fake(seed=args.seed) as fake:
        _demo.seed_fake(fake, plan, args.time_scale)
        burst = functools.partial(
            fake.inject, "429", settings.burst_429_count, retry_after=settings.retry_after
        )
        handle = loop.call_later(settings.burst_429_at, burst)
        output.console.write(_demo_intro(fake.base_url, len(plan), settings))
        options = {
            "base_url": fake.base_url,
            "account_key": fake.account_key,
            "account_secret": fake.account_secret,
            "allow_insecure": True,
            "requests_per_minute": settings.client_rpm,
            "retry_policy": settings.retry,
            "timeout": 5.0,
        }
        try:
            await wait_for_orders(
                run, options, output, timeout=settings.wait_timeout, policy=settings.poll
            )
        finally:
            handle.cancel()


def _demo_intro(base_url: str, orders: int, s: DemoSettings) -> str:
    poll, retry = s.poll, s.retry
    return (
        f"{PROG} demo: waiting for {orders} orders on an embedded FakeTelegent at {base_url}\n"
        "  (no network, no credentials; port-ins, which take 1-5 business days in real life,\n"
        "  are compressed into seconds)\n"
        f"  server: rate limit {s.fake_rate_limit:.0f} req/s, {s.fault_rate_503:.0%} of answers "
        f"503, {s.burst_429_count} x 429 at {s.burst_429_at:g} s (Retry-After {s.retry_after} s)\n"
        f"  client: budget {s.client_rpm / 60:.0f} req/s, polls every {poll.initial:g} s "
        f"growing to {poll.max_interval:g} s, retries after {retry.initial:g} s doubling to "
        f"{retry.max_interval:g} s\n"
    )


@contextlib.asynccontextmanager
async def sigterm_interrupts() -> AsyncIterator[None]:
    """SIGTERM stops a command the way Ctrl-C does: cancelled (leases given back), reported."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    terminated = False

    def terminate() -> None:
        nonlocal terminated
        terminated = True
        task.cancel()

    try:
        loop.add_signal_handler(signal.SIGTERM, terminate)
    except (NotImplementedError, RuntimeError):  # pragma: no cover - Windows
        yield
        return
    try:
        yield
    except asyncio.CancelledError:
        if terminated:
            raise KeyboardInterrupt from None
        raise
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


async def _stoppable(coroutine: Callable[[], Coroutine[Any, Any, None]]) -> None:
    async with sigterm_interrupts():
        await coroutine()


def _run_reported(
    run: Run, output: Output, coroutine: Callable[[], Coroutine[Any, Any, None]]
) -> int:
    """Run the command's coroutine, then report; Ctrl-C or SIGTERM reports what settled so far."""
    try:
        asyncio.run(_stoppable(coroutine))
    except KeyboardInterrupt:
        run.interrupted = True
        run.finished = time.monotonic()
    return output.finish(run)


def _start(
    command: str, args: argparse.Namespace, console: Console
) -> tuple[dict[str, Any], Run, Output]:
    """What `get` and `wait` start from; credentials are checked before the IDs are read."""
    options = client_options(args)
    run = Run(command, Tally(read_order_ids(args, sys.stdin)))
    return options, run, Output(args, console, sys.stdout)


def cmd_get(args: argparse.Namespace, console: Console) -> int:
    options, run, output = _start("get", args, console)
    return _run_reported(run, output, lambda: get_orders(run, options, output))


_PRESETS: Final = {"provision": PollPolicy.PROVISION, "portin": PollPolicy.PORT_IN}


def cmd_wait(args: argparse.Namespace, console: Console) -> int:
    if args.state is not None:
        from ._cli_watch import cmd_wait_with_state

        return cmd_wait_with_state(args, console)
    options, run, output = _start("wait", args, console)
    timeout = args.timeout if args.timeout > 0 else None
    policy = _PRESETS[args.preset]
    return _run_reported(
        run,
        output,
        lambda: wait_for_orders(run, options, output, timeout=timeout, policy=policy),
    )


def cmd_demo(args: argparse.Namespace, console: Console) -> int:
    from . import _demo

    plan = _demo.build_demo(args.orders, args.seed)
    run = Run("demo", Tally([order.order_id for order in plan]))
    run.demo = _demo.DemoSettings.scaled(args.time_scale)
    output = Output(args, console, sys.stdout)
    return _run_reported(run, output, lambda: run_demo(run, plan, args, output))


def cmd_fake_server(args: argparse.Namespace, console: Console) -> int:
    from . import _demo

    plan = _demo.build_demo(args.orders, args.seed)
    try:
        asyncio.run(serve_fake(args, plan))
    except KeyboardInterrupt:  # where signal handlers are not available (Windows)
        pass
    except OSError as exc:
        console.write(f"{PROG}: error: cannot serve on {args.host}:{args.port}: {exc}\n")
        return EXIT_FAILED
    console.write("FakeTelegent stopped\n")
    return EXIT_OK


async def serve_fake(args: argparse.Namespace, plan: Sequence[DemoOrder]) -> None:
    from . import _demo
    from .testing import FakeTelegent

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    async with FakeTelegent(host=args.host, port=args.port, seed=args.seed) as fake:
        _demo.seed_fake(fake, plan, args.time_scale)
        sys.stdout.write(_fake_server_banner(fake, plan, args.time_scale))
        sys.stdout.flush()
        await stop.wait()


def _fake_server_banner(fake: FakeTelegent, plan: Sequence[DemoOrder], time_scale: float) -> str:
    lines = [
        f"FakeTelegent listening on {fake.base_url}",
        "",
        "Test credentials of this fake (not secrets):",
        f"  export TELEGENT_BASE_URL={fake.base_url}",
        f"  export TELEGENT_ACCOUNT_KEY={fake.account_key}",
        f"  export TELEGENT_ACCOUNT_SECRET={fake.account_secret}",
        "It speaks plain http on loopback: pass --insecure to telegent-orders, or",
        "allow_insecure=True to TelegentClient.",
        "",
        f"{len(plan)} seeded orders; their lifecycles started now, compressed into seconds"
        + (f" (x{time_scale:g})" if time_scale != 1 else "")
        + ":",
    ]
    width = max(len(order.order_id) for order in plan)
    for order in plan:
        described = order.outcome(time_scale)
        lines.append(f"  {order.order_id.ljust(width)}  {order.kind:<9}  {described}")
    lines += ["", "Stop with Ctrl-C or SIGTERM.", ""]
    return "\n".join(lines)


# -- arguments -------------------------------------------------------------------------------


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def _non_negative_float(text: str) -> float:
    with contextlib.suppress(ValueError):
        if float(text) == 0:
            return 0.0
    return _positive_float(text)


def _orders_count(text: str) -> int:
    from ._demo import MIN_ORDERS

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
        epilog=_EXIT_HELP,
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
        default=50.0,
        metavar="RPM",
        help="client-wide budget, requests per minute (default: 50, the standard tier)",
    )
    group.add_argument(
        "--retries",
        type=int,
        default=5,
        metavar="N",
        help="retries of a transient failure (429, 5xx, timeout) per request (default: 5)",
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
        default=300,
        metavar="N",
        help="how many orders (default 300, at least 10)",
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
        epilog=_EXIT_HELP,
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
        epilog=_EXIT_HELP,
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
    wait.add_argument("--preset", choices=sorted(_PRESETS), default="provision", help=preset_help)
    wait.add_argument(
        "--state",
        metavar="FILE",
        help="keep the watches in this SQLite file: run the same command again after an "
        "interrupt (Ctrl-C, kill) and it resumes, polling no order settled before",
    )
    wait.set_defaults(handler=cmd_wait)
    demo = commands.add_parser(
        "demo",
        parents=[common, seeded],
        help="wait for a realistic mix of orders on an embedded fake server",
        description=_para(
            "Start an embedded FakeTelegent on 127.0.0.1 (rate limit, a few 503s, a "
            "429), seed it with a realistic mix of provision orders and port-ins (some "
            "rejected with carrier codes), and run `wait` against it. No network, no credentials."
        ),
        epilog=_EXIT_HELP,
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
    server.set_defaults(handler=cmd_fake_server)

    from ._cli_portin import add_port_in_commands

    add_port_in_commands(commands, [common, api], _EXIT_HELP)
    from ._cli_watch import add_watch_commands

    add_watch_commands(
        commands, {"common": common, "api": api, "ids": ids}, _EXIT_HELP, preset_help
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The `telegent-orders` entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    console = Console(sys.stderr)
    setup_logging(getattr(args, "verbose", 0), console)
    try:
        return int(args.handler(args, console))
    except UsageError as exc:
        console.write(f"{PROG}: error: {exc}\n")
        return EXIT_USAGE
    except BrokenPipeError:
        # stdout was closed early (`| head`): stop quietly, like other Unix tools.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
