"""What every command starts from (credentials, the client, order IDs, signals, the report),
and `get` and `wait`: thin shells around `TelegentClient.get_orders` / `wait_for_orders`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, TextIO, TypeVar

from .. import _validate
from .._client import TelegentClient
from .._config import (
    DEFAULT_MAX_CONNECTIONS,
    ConflictingCredentialsError,
    MissingCredentialsError,
    credentials_from,
)
from .._models import OrderOutcome
from .._timing import PRESETS as PRESETS  # what `--preset` names (tests patch it)
from .._timing import PollPolicy
from ._exit import UsageError, is_setup_error
from ._outcomes import Run, Tally
from ._report import Output
from ._terminal import Console, Progress

logger = logging.getLogger("telegent_async.cli")
_T = TypeVar("_T")


def _flag(name: str) -> str:
    """The option of a credential named by its variable or argument (`TELEGENT_ACCOUNT_KEY`)."""
    return "--" + name.lower().removeprefix("telegent_").replace("_", "-")


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
        missing = " and ".join(f"{_flag(name)}/{name}" for name in exc.missing)
        raise UsageError(
            f"missing credentials ({missing} not set): pass --token or set TELEGENT_TOKEN, or "
            "pass --account-key and --account-secret or set TELEGENT_ACCOUNT_KEY and "
            "TELEGENT_ACCOUNT_SECRET"
        ) from None
    except ConflictingCredentialsError as exc:
        given = " and ".join(_flag(name) for name in exc.given)
        raise UsageError(
            f"--token was given together with {given}: pass a token, or an account key and "
            "secret, not both"
        ) from None
    except ValueError as exc:  # an empty TELEGENT_BASE_URL
        raise UsageError(str(exc)) from None
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
    """The command's client; its `client.stats` and requests per second are kept in `run`."""
    try:
        client = TelegentClient(**options, max_connections=DEFAULT_MAX_CONNECTIONS)
    except _validate.InsecureURLError as exc:
        raise UsageError(str(_validate.InsecureURLError(exc.shown, "--insecure"))) from None
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from None
    run.budget_rpm = client.budget.requests_per_minute
    logger.info(
        "API %s, auth by %s, budget %s requests/min",
        client.base_url,
        "token" if "token" in options else "account key and secret",
        run.budget_rpm,
    )
    sampler = asyncio.ensure_future(_note_sends(client, run))
    try:
        async with client:
            yield client
    finally:
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
        run.stats = client.stats
        run.note_sent(run.stats.requests)


async def _note_sends(client: TelegentClient, run: Run) -> None:
    while True:
        run.note_sent(client.stats.requests)
        await asyncio.sleep(0.2)


#: The most `--from-file` reads: over a million IDs (one a line, about 45 characters each).
MAX_ID_CHARS = 64 * 2**20


def read_order_ids(args: argparse.Namespace, stdin: TextIO) -> list[str]:
    """IDs from the arguments and `--from-file` (one a line; blanks and # comments skipped)."""
    ids = [(order_id, f"argument {n}") for n, order_id in enumerate(args.order_ids, 1)]
    if args.from_file is not None:
        source = "stdin" if args.from_file == "-" else args.from_file
        try:
            stream = contextlib.nullcontext(stdin) if args.from_file == "-" else None
            with stream or open(args.from_file, encoding="utf-8") as file:
                text = file.read(MAX_ID_CHARS + 1)  # not all of /dev/zero, or of `yes |`
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read order IDs from {args.from_file}: {exc}") from None
        if len(text) > MAX_ID_CHARS:
            raise UsageError(f"{source} holds more than {MAX_ID_CHARS:,} characters of IDs")
        for number, line in enumerate(text.splitlines(), 1):
            line = line.split("#", 1)[0].strip()
            if line:
                ids.append((line, f"{source}, line {number}"))
    if not ids:
        raise UsageError("no order IDs: pass them as arguments or with --from-file PATH|-")
    for order_id, where in ids:
        try:
            _validate.order_id(order_id)
        except (TypeError, ValueError) as exc:
            raise UsageError(f"invalid order ID ({where}): {exc}") from None
    return list(dict.fromkeys(order_id for order_id, _ in ids))


def record(run: Run, output: Output, outcome: OrderOutcome) -> None:
    group = run.tally.add(outcome)
    logger.debug("order %s: %s after %.2f s", outcome.order_id, group.value, run.elapsed)
    output.outcome(outcome, group)


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def run_stoppable(coroutine: Callable[[], Awaitable[_T]]) -> _T:
    """`asyncio.run(coroutine())`, stopped alike by SIGTERM and Ctrl-C: cancelled (leases given
    back, connections closed), then `KeyboardInterrupt`, which `main` makes exit status 130.
    (SIGINT is not left to `asyncio.run`: on 3.10 it would escape as a traceback.)"""

    async def stoppable() -> _T:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        terminated = False

        def terminate() -> None:
            nonlocal terminated
            terminated = True
            task.cancel()
            # A cancel a library caught and retried (seen with Redis) must not leave it running.
            loop.call_later(0.5, lambda: None if task.done() else terminate())

        try:
            for signum in _STOP_SIGNALS:
                loop.add_signal_handler(signum, terminate)
        except (NotImplementedError, RuntimeError):  # Windows, or not the main thread
            return await coroutine()
        try:
            return await coroutine()
        except asyncio.CancelledError:
            if terminated:
                raise KeyboardInterrupt from None
            raise
        finally:
            for signum in _STOP_SIGNALS:
                loop.remove_signal_handler(signum)

    return asyncio.run(stoppable())


def run_reported(
    run: Run, output: Output, coroutine: Callable[[], Coroutine[Any, Any, None]]
) -> int:
    """Run the command's coroutine, then report; Ctrl-C or SIGTERM reports what settled so far."""
    try:
        run_stoppable(coroutine)
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
    run: Run, options: dict[str, Any], output: Output, *, timeout: float | None, policy: PollPolicy
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


def cmd_get(args: argparse.Namespace, console: Console) -> int:
    options, run, output = start("get", args, console)
    return run_reported(run, output, lambda: get_orders(run, options, output))


def cmd_wait(args: argparse.Namespace, console: Console) -> int:
    options, run, output = start("wait", args, console)
    timeout = args.timeout if args.timeout > 0 else None
    policy = PRESETS[args.preset]
    return run_reported(
        run, output, lambda: wait_for_orders(run, options, output, timeout=timeout, policy=policy)
    )
