"""Who in this process waits on an `OrderWatcher`: the futures of `wait` per order and the news
event that wakes `settled()` (a component the watcher holds; its state lives in the store).

Waking here is only a shortcut: a waiter also reads the store now and then (`max_idle`), so an
order settled by another process, or before the waiter registered, is seen all the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Awaitable, Callable, Iterator

from ._errors import OrderWaitTimeout, TelegentError
from ._models import Order, OrderOutcome
from ._stores.base import WatchState

__all__ = ["Waiters"]


class Waiters:
    """The futures waiting for orders to settle here, and the news that one did."""

    def __init__(self) -> None:
        self._futures: dict[str, list[asyncio.Future[OrderOutcome]]] = {}
        self.news: asyncio.Event | None = None  # set while the watcher runs here

    def start(self) -> None:
        """The watcher runs here from now on: news comes, no need to poll the store for it."""
        self.news = asyncio.Event()

    def announce(self) -> None:
        """Wake `settled()` iterators (something settled, failed or closed)."""
        if self.news is not None:
            self.news.set()

    def settled(self, outcome: OrderOutcome) -> None:
        """An order settled here: its waiters get the outcome, `settled()` the news."""
        for future in self._futures.get(outcome.order_id, ()):
            if not future.done():
                future.set_result(outcome)
        self.announce()

    def fail(self, error: BaseException, order_id: str | None = None) -> None:
        """The waiters of `order_id` (None: of every order) raise `error`."""
        if order_id is None:
            lists = list(self._futures.values())
        else:
            lists = [self._futures.get(order_id, [])]
        for futures in lists:
            for future in futures:
                if not future.done():
                    future.set_exception(error)

    def removed(self, order_id: str) -> None:
        """The watch of `order_id` was removed: its waiters raise `TelegentError`."""
        self.fail(_removed(order_id), order_id)

    async def wait(
        self,
        order_id: str,
        read: Callable[[], Awaitable[WatchState | None]],
        timeout: float | None,
        max_idle: float,
        cause: Callable[[TelegentError | None], TelegentError | None],
    ) -> Order:
        """`OrderWatcher.wait` once the order is watched: its settled order, or its error.

        Args:
            order_id: The watched order.
            read: Reads its state from the store.
            timeout: Seconds to wait, or None (`OrderWaitTimeout` after them).
            max_idle: Seconds between reads of the store while no news comes here.
            cause: The cause of that timeout, from the watch's `last_error`.
        """
        loop = asyncio.get_running_loop()
        give_up = math.inf if timeout is None else loop.time() + timeout
        with self.waiting(order_id) as future:
            while True:
                # Settled by another process (or before we registered): read it from the store.
                state = await read()
                if state is None:
                    raise _removed(order_id)
                if state.settled:
                    return _result(order_id, state.last_order, state.error)
                remaining = give_up - loop.time()
                if remaining <= 0:
                    raise OrderWaitTimeout(order_id, state.last_order, timeout) from cause(
                        state.last_error
                    )
                # asyncio.wait, not wait_for: see `news_or_timeout` (and it leaves `future`,
                # which other waiters share, uncancelled).
                await asyncio.wait({future}, timeout=min(remaining, max_idle))
                if future.done():
                    outcome = future.result()
                    return _result(order_id, outcome.order, outcome.error)

    @contextlib.contextmanager
    def waiting(self, order_id: str) -> Iterator[asyncio.Future[OrderOutcome]]:
        """A future for `order_id`'s outcome, registered while the block runs."""
        future: asyncio.Future[OrderOutcome] = asyncio.get_running_loop().create_future()
        futures = self._futures.setdefault(order_id, [])
        futures.append(future)
        try:
            yield future
        finally:
            futures.remove(future)
            if not futures:
                del self._futures[order_id]

    async def news_or_timeout(self, timeout: float) -> None:
        """Until news comes or `timeout` seconds pass (at most 1 s when not running here)."""
        news = self.news
        if news is None:  # not running here: another process settles, poll the store
            news = asyncio.Event()
            timeout = min(timeout, 1.0)
        # asyncio.wait, not wait_for: before Python 3.12, wait_for can swallow a cancel that
        # lands as its timeout fires, and a worker stopped by SIGTERM would then run on.
        waiter = asyncio.ensure_future(news.wait())
        try:
            await asyncio.wait({waiter}, timeout=None if math.isinf(timeout) else timeout)
        finally:
            waiter.cancel()


def _result(order_id: str, order: Order | None, error: TelegentError | None) -> Order:
    if error is not None:
        raise error
    if order is None:  # pragma: no cover - a settled watch without error has its order
        raise TelegentError(f"order {order_id!r} settled without an answer")
    return order


def _removed(order_id: str) -> TelegentError:
    return TelegentError(f"the watch of order {order_id!r} was removed")
