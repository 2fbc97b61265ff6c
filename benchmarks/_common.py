"""Shared benchmark helpers: a FakeTelegent in its own process, and table printing.

The fake runs in a child process so that neither its CPU time nor its memory (100,000 scripted
orders, a request log) is counted against the client being measured. The parent drives it over
a pipe: add orders, read counters, clear them. Both processes read `time.monotonic()`, which on
Linux is one system-wide clock, so settle times the child reports compare directly with the
times the parent observes.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.connection
import os
import platform
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

import psutil

import telegent_async as tg
from telegent_async.testing import FakeTelegent, Step

__all__ = ["FakeProcess", "environment", "print_table", "rss", "run_in_child"]

#: Spawned, not forked: forking a process that already ran an event loop is unsafe.
_CONTEXT = multiprocessing.get_context("spawn")


def rss() -> int:
    """Resident memory of this process, in bytes."""
    return int(psutil.Process().memory_info().rss)


def environment() -> str:
    """One line naming what the numbers were measured on."""
    return (
        f"Python {platform.python_version()} on {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs, telegent_async {tg.__version__}"
    )


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A plain-text table, right-aligned numbers, for pasting into a report."""
    cells = [[str(h) for h in headers], *([_cell(v) for v in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        print(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if n == 0:
            print("  ".join("-" * w for w in widths))


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def run_in_child(function: Callable[..., Any], *args: Any) -> Any:
    """Run `function(*args)` in a fresh spawned process and return its result.

    Each memory measurement gets a process of its own, so that what one design freed (but the
    allocator kept) cannot hide what the next one allocates.
    """
    parent, child = _CONTEXT.Pipe()
    process = _CONTEXT.Process(target=_call_and_send, args=(child, function, args))
    process.start()
    child.close()
    try:
        ok, result = parent.recv()
    finally:
        process.join()
        parent.close()
    if not ok:
        raise RuntimeError(f"{function.__name__} failed in its child process:\n{result}")
    return result


def _call_and_send(
    conn: multiprocessing.connection.Connection, function: Callable[..., Any], args: Any
) -> None:
    try:
        conn.send((True, function(*args)))
    except BaseException:
        import traceback

        conn.send((False, traceback.format_exc()))
    finally:
        conn.close()


class FakeProcess:
    """A `FakeTelegent` serving 127.0.0.1 from a child process; use it as a context manager.

    `options` go to `FakeTelegent(...)`. Calls block the caller for one round trip over the
    pipe, so make them between measurements, not during one.
    """

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._conn: multiprocessing.connection.Connection | None = None
        self._process: Any = None
        self.base_url = ""
        self.account_key = ""
        self.account_secret = ""
        self.pid = 0

    def __enter__(self) -> FakeProcess:
        parent, child = _CONTEXT.Pipe()
        self._process = _CONTEXT.Process(target=_serve, args=(child, self._options), daemon=True)
        self._process.start()
        child.close()
        self._conn = parent
        self.base_url, self.account_key, self.account_secret = parent.recv()
        self.pid = self._process.pid
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._conn is not None:
            self._conn.send(("stop", ()))
            self._conn.recv()
            self._conn.close()
            self._conn = None
        if self._process is not None:
            self._process.join(timeout=10)
            if self._process.is_alive():
                self._process.kill()
                self._process.join()

    def _call(self, command: str, *args: Any) -> Any:
        assert self._conn is not None, "FakeProcess is not started"
        self._conn.send((command, args))
        ok, result = self._conn.recv()
        if not ok:
            raise RuntimeError(f"fake server command {command!r} failed: {result}")
        return result

    def add_orders(self, orders: Sequence[tuple[str, Sequence[tuple[str, float]]]]) -> list[float]:
        """Script orders `(id, [(status, at), ...])`; returns each one's settle time (monotonic)."""
        result: list[float] = self._call("add_orders", orders)
        return result

    def order_status_counts(self) -> dict[int, int]:
        """How many order GETs got each HTTP status since the last `clear()` (0 = no answer)."""
        result: dict[int, int] = self._call("order_status_counts")
        return result

    def status_counts(self) -> dict[int, int]:
        """Every request's status counts (kept even when the fake does not record requests)."""
        result: dict[int, int] = self._call("status_counts")
        return result

    def request_times(self) -> list[tuple[str, float]]:
        """(method, monotonic arrival time) of every recorded request since the last `clear()`."""
        result: list[tuple[str, float]] = self._call("request_times")
        return result

    def clear(self) -> None:
        self._call("clear")

    def client(self, **overrides: Any) -> tg.TelegentClient:
        """A TelegentClient of this fake, with its account credentials."""
        options: dict[str, Any] = {"base_url": self.base_url, "allow_insecure": True}
        if "token" not in overrides:  # a token, or the account's key and secret, not both
            options.update(account_key=self.account_key, account_secret=self.account_secret)
        options.update(overrides)
        return tg.TelegentClient(**options)


def _serve(conn: multiprocessing.connection.Connection, options: dict[str, Any]) -> None:
    asyncio.run(_serve_async(conn, options))


async def _serve_async(
    conn: multiprocessing.connection.Connection, options: dict[str, Any]
) -> None:
    loop = asyncio.get_running_loop()
    async with FakeTelegent(**options) as fake:
        conn.send((fake.base_url, fake.account_key, fake.account_secret))
        while True:
            command, args = await loop.run_in_executor(None, conn.recv)
            if command == "stop":
                conn.send((True, None))
                break
            try:
                result = _command(fake, command, args)
            except Exception as exc:  # report it to the parent rather than hang it
                conn.send((False, repr(exc)))
            else:
                conn.send((True, result))
    conn.close()


def _command(fake: FakeTelegent, command: str, args: Sequence[Any]) -> Any:
    if command == "add_orders":
        (orders,) = args
        for order_id, steps in orders:
            fake.add_order(order_id, [Step(status, at) for status, at in steps])
        return [fake.settled_at(order_id) for order_id, _ in orders]
    if command == "order_status_counts":
        counts: dict[int, int] = {}
        for request in fake.order_requests():
            counts[request.status] = counts.get(request.status, 0) + 1
        return counts
    if command == "status_counts":
        return dict(fake.status_counts)
    if command == "request_times":
        return [(request.method, request.at) for request in fake.requests]
    if command == "clear":
        fake.clear_requests()
        return None
    raise ValueError(f"unknown command {command!r}")
