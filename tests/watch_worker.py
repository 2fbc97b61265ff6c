"""A watcher process for multi-process tests: `python tests/watch_worker.py --db FILE ...`.

Runs an `OrderWatcher` on an SQLite file (or a Redis URL, with `--namespace`) against a
FakeTelegent (credentials from TELEGENT_ACCOUNT_KEY / TELEGENT_ACCOUNT_SECRET), consumes
`settled(auto_ack=False)` and writes one line per event to `--log` (line-buffered, so a
SIGKILL loses nothing already written):

    ready <pid>
    start <order_id> <monotonic>     a poll begins (CLOCK_MONOTONIC is system-wide on Linux)
    end <order_id> <monotonic>       ... and ends
    delivered <order_id>             settled() yielded it
    acked <order_id>                 ack() acknowledged it (True: first acknowledgement)

With `--add IDS_FILE` it first adds those IDs (one per line); it exits once every ID of
`--ids IDS_FILE` is acknowledged in the store (by any process).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pathlib
import time
from typing import IO

import telegent_async as tg

FAST = tg.PollPolicy(initial=0.02, factor=2.0, max_interval=0.08, jitter=0.2)


class LoggedLookups:
    """The client, with each poll's start and end written to the log."""

    def __init__(self, client: tg.TelegentClient, log: IO[str]) -> None:
        self._client = client
        self._log = log
        self.max_connections = client.max_connections
        self.budget = client.budget

    async def get_order(self, order_id: str) -> tg.Order:
        self._log.write(f"start {order_id} {time.monotonic():.6f}\n")
        try:
            return await self._client.get_order(order_id)
        finally:
            self._log.write(f"end {order_id} {time.monotonic():.6f}\n")


async def until_all_acknowledged(watcher: tg.OrderWatcher, ids: list[str]) -> None:
    remaining = set(ids)
    while remaining:
        for order_id in list(remaining):
            state = await watcher.get(order_id)
            if state is not None and state.acknowledged:
                remaining.discard(order_id)
        await asyncio.sleep(0.05)


async def run(opts: argparse.Namespace, ids: list[str], log: IO[str]) -> None:
    client = tg.TelegentClient(
        base_url=opts.base_url,
        allow_insecure=True,
        requests_per_minute=None,
        max_connections=opts.max_connections,
        timeout=5.0,
    )
    store: tg.RedisStore | str = opts.db
    if opts.db.startswith("redis://"):
        store = tg.RedisStore(opts.db, namespace=opts.namespace)
    async with (
        client,
        tg.OrderWatcher(
            LoggedLookups(client, log), store, policy=FAST, lease=opts.lease
        ) as watcher,
    ):
        if opts.add:
            await watcher.add_many(ids)
        log.write(f"ready {os.getpid()}\n")
        done = asyncio.ensure_future(until_all_acknowledged(watcher, ids))
        consume = asyncio.ensure_future(consume_outcomes(watcher, log))
        await asyncio.wait([done, consume], return_when=asyncio.FIRST_COMPLETED)
        consume.cancel()
        await asyncio.gather(consume, return_exceptions=True)
        await done
    if isinstance(store, tg.RedisStore):
        await store.aclose()


async def consume_outcomes(watcher: tg.OrderWatcher, log: IO[str]) -> None:
    async for outcome in watcher.settled(auto_ack=False):
        log.write(f"delivered {outcome.order_id}\n")
        if await watcher.ack(outcome.order_id):
            log.write(f"acked {outcome.order_id}\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--ids", required=True)
    parser.add_argument("--add", action="store_true")
    parser.add_argument("--log", required=True)
    parser.add_argument("--namespace", default="telegent")
    parser.add_argument("--lease", type=float, default=0.5)
    parser.add_argument("--max-connections", type=int, default=8)
    opts = parser.parse_args()
    with open(opts.log, "a", buffering=1) as log:
        asyncio.run(run(opts, pathlib.Path(opts.ids).read_text().split(), log))


if __name__ == "__main__":
    main()
