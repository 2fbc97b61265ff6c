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
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .._timing import PollPolicy
from ._exit import EXIT_FAILED, EXIT_OK, UsageError, is_setup_error
from ._outcomes import PROG, Run, Tally
from ._report import Output
from ._session import PRESETS, open_client, record, run_reported, start
from ._terminal import Console, Progress

if TYPE_CHECKING:
    from ..testing import FakeTelegent
    from ._demo import DemoOrder, DemoSettings

logger = logging.getLogger("telegent_async.cli")


# -- commands --------------------------------------------------------------------------------


async def get_orders(run: Run, options: dict[str, Any], output: Output) -> None:
    async with (
        open_client(options, run) as client,
        Progress(output.console, run, client, waiting=False).shown(),
    ):
        outcomes = await client.get_orders(run.tally.order_ids)
    run.finished = time.monotonic()
    refused = [o.error for o in outcomes if is_setup_error(o.error)]
    if refused:
        run.setup_error = refused[0]
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
                if is_setup_error(outcome.error):
                    run.setup_error = outcome.error
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


def cmd_get(args: argparse.Namespace, console: Console) -> int:
    options, run, output = start("get", args, console)
    return run_reported(run, output, lambda: get_orders(run, options, output))


def cmd_wait(args: argparse.Namespace, console: Console) -> int:
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
    if args.ids_file is not None:
        try:
            with open(args.ids_file, "w", encoding="utf-8") as file:
                file.writelines(f"{order.order_id}\n" for order in plan)
        except OSError as exc:
            raise UsageError(f"--ids-file: cannot write {args.ids_file}: {exc}") from None
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
        "  export TELEGENT_ALLOW_INSECURE=1",
        "It speaks plain http on loopback: TELEGENT_ALLOW_INSECURE=1 allows that to",
        "TelegentClient and telegent-orders alike (or allow_insecure=True, or --insecure).",
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
