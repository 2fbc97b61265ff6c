"""A process that looks orders up through a shared `RedisBudget`: `python tests/budget_worker.py`.

    --redis URL --name NAME --rpm N [--window S] --base-url URL --count N
    [--concurrency N] [--interval S] [--background] --log FILE

Credentials from TELEGENT_ACCOUNT_KEY / TELEGENT_ACCOUNT_SECRET. Looks up `--count` orders
(`JNUOID-<pid>-<n>`), `--concurrency` at a time, each caller waiting `--interval` seconds
between its lookups (`--background`: as background polls, as a wait's are); writes
`ready <pid>` then `done <pid>` to the log (line-buffered).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import traceback

import telegent_async as tg
from telegent_async._budgets.base import background_polls


async def run(opts: argparse.Namespace) -> None:
    budget = tg.RedisBudget(opts.redis, opts.rpm, opts.name, window=opts.window)
    client = tg.TelegentClient(
        base_url=opts.base_url,
        allow_insecure=True,
        budget=budget,
        max_connections=max(opts.concurrency, 1),
        timeout=5.0,
        max_retries=10,
    )
    queue: asyncio.Queue[str] = asyncio.Queue()
    for n in range(opts.count):
        queue.put_nowait(f"JNUOID-{os.getpid()}-{n}")

    async def caller() -> None:
        while not queue.empty():
            with background_polls() if opts.background else contextlib.nullcontext():
                await client.get_order(queue.get_nowait())
            if opts.interval:
                await asyncio.sleep(opts.interval)

    with open(opts.log, "a", buffering=1) as log:  # noqa: ASYNC230 - before any traffic
        async with client:
            log.write(f"ready {os.getpid()}\n")
            try:
                await asyncio.gather(*(caller() for _ in range(opts.concurrency)))
            except Exception as exc:
                log.write(f"failed {exc!r}\n")  # for the test's assertion message
                raise
            log.write(f"done {os.getpid()}\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--rpm", type=float, required=True)
    parser.add_argument("--window", type=float, default=60.0)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--interval", type=float, default=0.0)
    parser.add_argument("--background", action="store_true")
    parser.add_argument("--log", required=True)
    opts = parser.parse_args()
    try:
        asyncio.run(run(opts))
    except BaseException:
        with open(opts.log, "a") as log:  # the test reads why a worker ended early
            log.write("failed " + traceback.format_exc().replace("\n", " | ") + "\n")
        raise


if __name__ == "__main__":
    main()
