"""`wait --state FILE` and `watch add|list|remove|retry|run`: waits kept in a store, so a
Ctrl-C, SIGTERM or kill -9 loses nothing. A run's `--timeout` is its own: an order still
pending then is reported as timed out but stays pending in the store for the next run."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
import time
from collections.abc import Coroutine
from datetime import datetime
from typing import Any, Final

from .._budgets.local import LocalBudget
from .._budgets.redis import RedisBudget
from .._errors import OrderWaitTimeout
from .._health import describe, is_transient
from .._models import Order, OrderOutcome
from .._redis_connection import REDIS_SCHEMES
from .._stores import open_store
from .._stores.base import WatchState, WatchStore
from .._timing import PRESETS
from .._watcher import STOPPED, Deadline, OrderWatcher, timeout_cause, until_refused
from ._exit import EXIT_OK, EXIT_USAGE, UsageError, is_setup_error, setup_error_words
from ._outcomes import PROG, Run, Tally, classify, named, outcome_json, state_json
from ._report import Output, detail, table
from ._session import (
    client_options,
    open_client,
    read_order_ids,
    record,
    run_reported,
    run_stoppable,
    start,
)
from ._terminal import Console, Progress, shown

logger = logging.getLogger("telegent_async.cli")

#: How long a run killed mid-poll holds its orders back from the next run, at most.
LEASE: Final = 15.0


class _Offline:
    """Lookups for a watcher that is never started (`watch add|list|remove|retry`): no client."""

    max_connections = 0
    budget = LocalBudget(None)

    async def get_order(self, order_id: str) -> Order:  # pragma: no cover - never started
        raise RuntimeError("this watcher only edits its store")


def _outcome_of(state: WatchState) -> OrderOutcome:
    return OrderOutcome(state.order_id, state.last_order, state.error, state.tag)


async def _settled_before(watcher: OrderWatcher, run: Run, output: Output) -> set[str]:
    """Report the orders the store holds as settled; returns their IDs. One settled by a setup
    error (refused credentials, no API at the base URL) says nothing of its order: re-armed."""
    reported = set()
    pending = 0
    for order_id in run.tally.order_ids:
        state = await watcher.get(order_id)
        if state is None or not state.settled:
            pending += state is not None and state.attempts > 0
            continue
        if is_setup_error(state.error):
            await watcher.remove(order_id)
            await watcher.add(order_id)
            continue
        record(run, output, _outcome_of(state))
        reported.add(order_id)
    await watcher.store.ack(sorted(reported))  # those the earlier run had no time to
    if reported or pending:
        output.console.write(
            f"{PROG}: resuming: {len(reported):,} of {run.tally.total:,} orders settled in an "
            f"earlier run (not polled again), {pending:,} pending ones keep their schedule\n"
        )
    return reported


async def _report_as_settled(
    watcher: OrderWatcher, run: Run, output: Output, done: set[str]
) -> None:
    """Report each order of this run as it settles (acknowledged once reported) until none is
    left; other orders in the file are polled too, and delivered to no one here."""
    wanted = set(run.tally.order_ids)
    if done >= wanted:
        return
    async for outcome in watcher.settled(auto_ack=False):
        if outcome.order_id not in wanted or outcome.order_id in done:
            continue
        if is_setup_error(outcome.error):
            run.setup_error = outcome.error
            return  # every other order would be refused the same way
        record(run, output, outcome)
        await watcher.ack(outcome.order_id)
        done.add(outcome.order_id)
        if done >= wanted:
            return


async def _timed_out(
    watcher: OrderWatcher, run: Run, output: Output, done: set[str], timeout: float | None
) -> None:
    """This run's deadline passed: report what is left as timed out (it stays watched)."""
    for order_id in run.tally.order_ids:
        if order_id not in done:
            state = await watcher.get(order_id)
            last = state.last_order if state is not None else None
            polled = state is not None and state.attempts > 0
            error = OrderWaitTimeout(order_id, last, timeout, polled=polled)
            error.__cause__ = timeout_cause(watcher, state)  # why polls were failing, if they were
            record(run, output, OrderOutcome(order_id, last, error))
            done.add(order_id)


async def _settled_unreported(store: WatchStore, run: Run, output: Output, done: set[str]) -> None:
    """Report (and acknowledge) what the store settled that this run did not report yet: once
    the watcher closed, an interrupted run's report counts what the next run's "resuming" does."""
    wanted = set(run.tally.order_ids) - done
    after = 0
    while wanted and run.setup_error is None:
        batch = await store.outcomes(after)
        if not batch:
            return
        reported = []
        for delivery in batch:
            after, outcome = delivery.seq, delivery.outcome
            if outcome.order_id in wanted and not is_setup_error(outcome.error):
                record(run, output, outcome)
                wanted.discard(outcome.order_id)
                done.add(outcome.order_id)
                reported.append(outcome.order_id)
        if reported:
            await store.ack(reported)


async def wait_with_state(
    run: Run, options: dict[str, Any], output: Output, args: argparse.Namespace
) -> None:
    """`wait --state FILE`: `wait`, on an SQLite store that a later run resumes from."""
    policy = PRESETS[args.preset]
    timeout = args.timeout if args.timeout > 0 else None
    done: set[str] = set()
    watched = False
    store = _opened(args.state, "--state")
    async with contextlib.aclosing(store):
        try:
            async with (
                open_client(options, run) as client,
                OrderWatcher(client, store, policy=policy, lease=LEASE) as watcher,
            ):
                run.started = time.monotonic()
                watched = True
                await watcher.add_many(run.tally.order_ids, policy=policy)
                done |= await _settled_before(watcher, run, output)
                async with Progress(output.console, run, client, waiting=True).shown():
                    try:  # (asyncio.timeout is 3.11+)
                        reported = _report_as_settled(watcher, run, output, done)
                        await asyncio.wait_for(unless_refused(watcher, run, reported), timeout)
                    except asyncio.TimeoutError:
                        await _timed_out(watcher, run, output, done, timeout)
        finally:  # on Ctrl-C too: the report counts what the store holds as settled
            if watched:
                await _settled_unreported(store, run, output, done)
        run.finished = time.monotonic()


def cmd_wait_with_state(args: argparse.Namespace, console: Console) -> int:
    options, run, output = start("wait", args, console)
    return run_reported(run, output, lambda: wait_with_state(run, options, output, args))


def _opened(location: str, option: str, namespace: str | None = None) -> WatchStore:
    """The store at `location`; one that cannot be used is a one-line usage error."""
    try:
        return open_store(location, namespace=namespace)
    except (ValueError, TypeError, ImportError) as exc:
        raise UsageError(f"{option}: {exc}") from None


def _where(args: argparse.Namespace) -> str:
    """Where the watches are, for messages (never the Redis URL: it may hold a password)."""
    if args.store.startswith(REDIS_SCHEMES):
        return f"Redis namespace {args.namespace!r}"
    return str(args.store)


def _deadline(text: str | None) -> Deadline:
    """Seconds from now, or an ISO 8601 time with its zone."""
    if text is None:
        return None
    with contextlib.suppress(ValueError):
        return float(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--deadline: not seconds nor an ISO 8601 time: {text!r}") from None
    if moment.utcoffset() is None:
        raise UsageError(f"--deadline: give the time zone (e.g. {text}+00:00 or {text}Z)")
    return moment


def _state_word(state: WatchState) -> str:
    if not state.settled:
        return "pending"
    return "acknowledged" if state.acknowledged else "settled"


def _state_row(state: WatchState) -> tuple[str, ...]:
    order, error = state.last_order, state.error
    when = state.next_poll.isoformat(timespec="seconds") if state.next_poll else ""
    status = order.raw_status if order is not None else "-"
    if error is not None:
        error_words = named(error)
    elif state.last_error is not None:
        error_words = f"last poll failed: {named(state.last_error)}"
    else:
        error_words = ""
    return (state.order_id, state.tag or "", status, str(state.attempts), when,
            _state_word(state), error_words)  # fmt: skip


async def _listed(args: argparse.Namespace, watcher: OrderWatcher, where: str) -> str:
    states = sorted([state async for state in watcher.watches()], key=lambda s: s.order_id)
    if args.json:
        sys.stdout.writelines(json.dumps(state_json(state)) + "\n" for state in states)
    elif states:
        head = ("ORDER", "TAG", "STATUS", "POLLS", "NEXT POLL (UTC)", "STATE", "ERROR")
        sys.stdout.write(shown("\n".join(table([head, *map(_state_row, states)], None)) + "\n"))
    sys.stdout.flush()
    words = [_state_word(state) for state in states]
    counts = ", ".join(f"{words.count(w):,} {w}" for w in dict.fromkeys(words))
    return f"{len(states):,} watches in {where}: {counts or 'none'}"


def _offline(args: argparse.Namespace, console: Console) -> int:
    """`watch add|list|remove|retry`: a look at, or one change to, the store; no client."""
    action, where = args.watch_command, _where(args)
    ids = [] if action == "list" else read_order_ids(args, sys.stdin)
    deadline = _deadline(args.deadline) if action == "add" else None

    async def change(watcher: OrderWatcher) -> str:
        if action == "list":
            return await _listed(args, watcher, where)
        if action == "add":
            policy = None if args.preset is None else PRESETS[args.preset]
            try:
                n = await watcher.add_many(ids, policy=policy, deadline=deadline, tag=args.tag)
            except (ValueError, TypeError) as exc:
                raise UsageError(str(exc)) from None
            what, left = f"orders added to {where}", "already watched, left as they were"
        elif action == "remove":
            n, what, left = (
                await watcher.store.remove(ids),
                f"watches removed from {where}",
                "not watched",
            )
        else:
            n, what, left = (
                await watcher.store.retry(ids),
                f"watches re-armed in {where}",
                "not settled",
            )
        return f"{n:,} of {len(ids):,} {what}" + (
            f" ({len(ids) - n:,} {left})" if n < len(ids) else ""
        )

    async def run() -> str:
        store = _opened(args.store, "--store", args.namespace)
        watcher = OrderWatcher(_Offline(), store)
        try:
            return await change(watcher)
        except ValueError as exc:  # the store turned out unusable at first use
            raise UsageError(f"--store: {exc}") from None
        except Exception as exc:  # out of reach: one line, as any store that cannot be used
            if isinstance(exc, BrokenPipeError) or not is_transient(exc):  # stdout closed
                raise
            raise UsageError(f"--store: {describe(where, exc)}") from None
        finally:
            await watcher.aclose()
            await store.aclose()

    console.write(f"{PROG}: {run_stoppable(run)}\n")
    return EXIT_OK


def _print_outcome(args: argparse.Namespace, outcome: OrderOutcome) -> None:
    group = classify(outcome)
    if args.json:
        sys.stdout.write(json.dumps(outcome_json(outcome, group)) + "\n")  # its tag included
    else:
        code, words = detail(outcome, group)
        order = outcome.order
        cells = [outcome.order_id, group.value, order.raw_status if order else "-", code, words]
        if outcome.tag is not None:
            cells.append(f"[{outcome.tag}]")
        sys.stdout.write(shown("  ".join(cell for cell in cells if cell) + "\n"))
    sys.stdout.flush()


async def watch_run(args: argparse.Namespace, options: dict[str, Any], run: Run) -> None:
    """Poll the store's watches and print each settled outcome, acknowledged once printed."""
    policy = PRESETS[args.preset or "provision"]
    store = _opened(args.store, "--store", args.namespace)
    async with (
        contextlib.aclosing(store),
        open_client(options, run) as client,
        OrderWatcher(client, store, policy=policy, lease=LEASE) as watcher,
    ):
        logger.info("watching %s as %s", _where(args), watcher.worker_id)
        await unless_refused(watcher, run, _print_as_settled(args, watcher, run))


async def _print_as_settled(args: argparse.Namespace, watcher: OrderWatcher, run: Run) -> None:
    async for outcome in watcher.settled(auto_ack=False):
        if is_setup_error(outcome.error):  # stored by 0.2.0, which settled on a 401
            run.setup_error = outcome.error
            return  # left unacknowledged: every other poll would be refused the same way
        _print_outcome(args, outcome)
        await watcher.ack(outcome.order_id)


async def unless_refused(watcher: OrderWatcher, run: Run, work: Coroutine[Any, Any, None]) -> None:
    """`work`, stopped when the API refuses the credentials (the watcher pauses its polls then
    and settles nothing until the account is fixed): `run.setup_error` says so."""
    tasks = [asyncio.ensure_future(work), asyncio.ensure_future(until_refused(watcher))]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    if tasks[1] in done:
        run.setup_error = tasks[1].result()
    else:
        tasks[0].result()  # its failure, if it failed


def _not_stopped(record: logging.LogRecord) -> bool:
    """Drops the watcher's own "stopped" record: `watch run` says it in its one line."""
    return not getattr(record, STOPPED, False)


def cmd_watch(args: argparse.Namespace, console: Console) -> int:
    """`watch add|list|remove|retry|run`."""
    if args.watch_command != "run":
        return _offline(args, console)
    options = client_options(args)
    if args.budget is not None:  # a `RedisBudget` of `--rate` shared by every worker
        try:
            rpm = options.pop("requests_per_minute")
            options["budget"] = RedisBudget(args.budget, rpm, args.budget_name)
        except (ValueError, TypeError, ImportError) as exc:
            raise UsageError(f"--budget: {exc}") from None
    run = Run("watch", Tally([]))
    sdk = logging.getLogger("telegent_async")
    sdk.addFilter(_not_stopped)
    try:  # Ctrl-C and SIGTERM are how a service is stopped: claims are given back on the way
        with contextlib.suppress(KeyboardInterrupt):
            run_stoppable(lambda: watch_run(args, options, run))
    except (BrokenPipeError, UsageError):  # stdout closed (`| head`), a bad --store: `main`'s
        raise
    except Exception as exc:  # a fault that does not pass (a store file that is not one ...)
        logger.debug("the watcher stopped", exc_info=exc)
        console.write(f"{PROG}: error: the watcher stopped: {named(exc)}\n")
        return EXIT_USAGE
    finally:
        sdk.removeFilter(_not_stopped)
    if run.setup_error is not None:
        words = setup_error_words(run.setup_error)
        console.write(f"{PROG}: error: {words}; every watch is left pending\n")
        return EXIT_USAGE
    console.write(f"{PROG}: stopped watching {_where(args)}\n")
    return EXIT_OK
