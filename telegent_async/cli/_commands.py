"""`telegent-orders get`, `wait`, `demo` and `fake-server`: the commands and their client.

The CLI is a thin shell around `TelegentClient.get_orders` / `wait_for_orders`: this module
finds the credentials (the library's own environment fallback) and order IDs and runs the
commands; everything shown, and the exit status, comes from the report and `_exit`. Requests
are counted with an aiohttp TraceConfig on a session handed to the client.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import logging
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, Final, TextIO

import aiohttp

from .. import __version__, _validate
from .._client import TelegentClient
from .._config import (
    DEFAULT_MAX_CONNECTIONS,
    MissingCredentialsError,
    credentials_from,
)
from .._models import OrderOutcome
from .._timing import PollPolicy
from ._exit import EXIT_FAILED, EXIT_OK, UsageError, is_credentials_error
from ._outcomes import PROG, Run, Tally
from ._report import Output
from ._terminal import Console, Progress

if TYPE_CHECKING:
    from ..testing import FakeTelegent
    from ._demo import DemoOrder, DemoSettings

logger = logging.getLogger("telegent_async.cli")

PRESETS: Final = {"provision": PollPolicy.PROVISION, "portin": PollPolicy.PORT_IN}
"""The poll cadences `--preset` names."""

#: The flag that stands for each credential's environment variable in a message.
_FLAGS: Final = {
    "TELEGENT_ACCOUNT_KEY": "--account-key",
    "TELEGENT_ACCOUNT_SECRET": "--account-secret",
}


# -- credentials and client ------------------------------------------------------------------


def client_options(args: argparse.Namespace) -> dict[str, Any]:
    """TelegentClient arguments from flags, else TELEGENT_* variables; UsageError if missing."""
    try:
        found = credentials_from(
            args.token or None,
            args.account_key or None,
            args.account_secret or None,
            args.base_url or None,
        )
    except MissingCredentialsError as exc:
        missing = " and ".join(f"{_FLAGS[name]}/{name}" for name in exc.missing)
        raise UsageError(
            f"missing credentials ({missing} not set): pass --token or set TELEGENT_TOKEN, or "
            "pass --account-key and --account-secret or set TELEGENT_ACCOUNT_KEY and "
            "TELEGENT_ACCOUNT_SECRET"
        ) from None
    options: dict[str, Any] = {
        "base_url": found.base_url,
        "allow_insecure": args.insecure,
        "requests_per_minute": args.rate,
        "max_retries": args.retries,
    }
    if found.token is not None:
        return {**options, "token": found.token}
    return {**options, "account_key": found.account_key, "account_secret": found.account_secret}


@contextlib.asynccontextmanager
async def open_client(options: dict[str, Any], run: Run) -> AsyncIterator[TelegentClient]:
    """A client on a session of ours, so that its requests can be traced and counted."""
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=DEFAULT_MAX_CONNECTIONS),
        headers={"User-Agent": f"{PROG}/{__version__}", "Accept": "application/json"},
        trace_configs=[run.counter.trace_config()],
    ) as session:
        try:
            client = TelegentClient(
                **options, max_connections=DEFAULT_MAX_CONNECTIONS, session=session
            )
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
    for order_id in ids:
        try:
            _validate.order_id(order_id)
        except (TypeError, ValueError) as exc:
            raise UsageError(f"invalid order ID: {exc}") from None
    return list(dict.fromkeys(ids))


# -- commands --------------------------------------------------------------------------------


def record(run: Run, output: Output, outcome: OrderOutcome) -> None:
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
        record(run, output, outcome)


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
                record(run, output, outcome)
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


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.asynccontextmanager
async def sigterm_interrupts() -> AsyncIterator[None]:
    """SIGTERM and Ctrl-C stop a command alike: cancelled (leases given back), reported.

    SIGINT is handled here too, not left to `asyncio.run`: on Python 3.10 its KeyboardInterrupt
    surfaces inside whatever task is running and escapes as a traceback.
    """
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    terminated = False

    def terminate() -> None:
        nonlocal terminated
        terminated = True
        task.cancel()
        # A cancel that lands as a library catches and retries (seen under load with a
        # Redis store) must not leave a stopped worker running: cancel again until it ends.
        loop.call_later(0.5, lambda: None if task.done() else terminate())

    try:
        for signum in _STOP_SIGNALS:
            loop.add_signal_handler(signum, terminate)
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
        for signum in _STOP_SIGNALS:
            loop.remove_signal_handler(signum)


async def _stoppable(coroutine: Callable[[], Coroutine[Any, Any, None]]) -> None:
    async with sigterm_interrupts():
        await coroutine()


def run_reported(
    run: Run, output: Output, coroutine: Callable[[], Coroutine[Any, Any, None]]
) -> int:
    """Run the command's coroutine, then report; Ctrl-C or SIGTERM reports what settled so far."""
    try:
        asyncio.run(_stoppable(coroutine))
    except KeyboardInterrupt:
        run.interrupted = True
        run.finished = time.monotonic()
    return output.finish(run)


def start(
    command: str, args: argparse.Namespace, console: Console
) -> tuple[dict[str, Any], Run, Output]:
    """What `get` and `wait` start from; credentials are checked before the IDs are read."""
    options = client_options(args)
    run = Run(command, Tally(read_order_ids(args, sys.stdin)))
    return options, run, Output(args, console, sys.stdout)


def cmd_get(args: argparse.Namespace, console: Console) -> int:
    options, run, output = start("get", args, console)
    return run_reported(run, output, lambda: get_orders(run, options, output))


def cmd_wait(args: argparse.Namespace, console: Console) -> int:
    if args.state is not None:
        from ._watch import cmd_wait_with_state

        return cmd_wait_with_state(args, console)
    options, run, output = start("wait", args, console)
    timeout = args.timeout if args.timeout > 0 else None
    policy = PRESETS[args.preset]
    return run_reported(
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
    return run_reported(run, output, lambda: run_demo(run, plan, args, output))


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
    from ..testing import FakeTelegent
    from . import _demo

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
