"""What ends a long CLI run that no order would end: the API refusing the credentials (the
watcher pauses its polls then, and settles nothing), and the watcher's own "stopped" record,
which `watch run` replaces by its one line."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from .._watcher import STOPPED, OrderWatcher, until_refused
from ._outcomes import Run

__all__ = ["not_stopped", "unless_refused"]


async def unless_refused(watcher: OrderWatcher, run: Run, work: Coroutine[Any, Any, None]) -> None:
    """`work`, stopped when the API refuses the credentials: the watcher pauses its polls
    then, and no watch would settle until someone fixes the account (`run.setup_error` says
    so; every watch stays pending in the store)."""
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


def not_stopped(record: logging.LogRecord) -> bool:
    """Drops the watcher's own "stopped" record: `watch run` says it in its one line."""
    return not getattr(record, STOPPED, False)
