"""Memory per pending order while waiting for 100,000 orders, beside the naive design.

`wait_for_orders` keeps one scheduler, a heap entry per order and, once an order has been
polled, its last answer as compact JSON; the naive design keeps one asyncio task per order,
each running a `backoff.on_predicate` loop over the same client's `get_order`. All wait on one
FakeTelegent (its own process, `default_status="Pending"`, `record=False`, so its memory is not
counted) and nothing ever settles. Rows:

- wait_for_orders, tiny budget (1 request/s): almost no order polled yet, as the issue asks;
- wait_for_orders, each order polled once: no budget and a one-hour poll interval, measured
  once the first round is over (the steady state of a long wait, where every order has a last
  answer to keep for its timeout outcome);
- the naive design, same tiny budget: every task sleeps in the client's budget.

Each row runs in a fresh process: build the ID list, open the client and make one lookup
(session, token, imports), `gc.collect()`, read RSS; start waiting; after `--steady` seconds
(and, for the second row, the first round), `gc.collect()` and read RSS again. Growth / N is
the cost of one pending order.

    python benchmarks/scale.py            # 100,000 IDs (about 60 s)
    python benchmarks/scale.py --quick    # 10,000 IDs (about 15 s)
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import time
import uuid
from typing import Any

import backoff
from _common import FakeProcess, environment, print_table, rss, run_in_child

import telegent_async as tg

#: One request per second: in a few seconds of measurement, a handful of orders are polled.
TINY_BUDGET = 60.0
TARGET_BYTES_PER_ID = 1024
#: For the "every order polled once" row: no budget, and the next poll an hour away.
ONCE = tg.PollPolicy(initial=3600.0, max_interval=3600.0, jitter=0.0)
DESIGNS = [
    ("sdk", "wait_for_orders, tiny budget"),
    ("sdk-polled", "wait_for_orders, each order polled once"),
    ("naive", "task per order + backoff.on_predicate"),
]


@backoff.on_predicate(backoff.expo, lambda order: not order.is_settled, max_value=15)
async def naive_wait(client: tg.TelegentClient, order_id: str) -> tg.Order:
    """The design the SDK replaces: one task per order, each with its own backoff loop."""
    return await client.get_order(order_id)


def measure(design: str, fake: dict[str, str], count: int, steady: float) -> dict[str, Any]:
    """Run in a child process: RSS growth while `count` orders are pending under `design`."""
    return asyncio.run(_measure(design, fake, count, steady))


async def _measure(design: str, fake: dict[str, str], count: int, steady: float) -> dict[str, Any]:
    rng = random.Random(1)
    ids = [f"JNUOID-{uuid.UUID(int=rng.getrandbits(128))}" for _ in range(count)]
    client = tg.TelegentClient(
        base_url=fake["base_url"],
        account_key=fake["account_key"],
        account_secret=fake["account_secret"],
        allow_insecure=True,
        requests_per_minute=None if design == "sdk-polled" else TINY_BUDGET,
    )
    async with client:
        await client.get_order("JNUOID-warm-up")
        gc.collect()
        baseline = rss()
        started = time.perf_counter()
        tasks: list[asyncio.Future[Any]]
        if design == "naive":
            tasks = [asyncio.ensure_future(naive_wait(client, order_id)) for order_id in ids]
            await asyncio.sleep(steady)
        else:
            policy = ONCE if design == "sdk-polled" else None
            stream = client.wait_for_orders(ids, timeout=None, policy=policy)
            tasks = [asyncio.ensure_future(_drain(stream))]
            await asyncio.sleep(steady)
            if design == "sdk-polled":
                # The first round is over when no poll is in flight (the next is an hour off).
                while stream.in_flight:  # noqa: ASYNC110 - a counter, not an event, to watch
                    await asyncio.sleep(0.2)
        gc.collect()
        grown = rss() - baseline
        seconds = time.perf_counter() - started
        alive = len(asyncio.all_tasks()) - 1
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "bytes_per_id": grown / count,
        "grown": grown,
        "tasks": alive,
        "seconds": seconds,
    }


async def _drain(stream: tg.OrderStream) -> None:
    async with stream:
        async for outcome in stream:
            raise AssertionError(f"nothing should settle, got {outcome}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ids", type=int, default=100_000, help="pending order IDs")
    parser.add_argument("--steady", type=float, default=3.0, help="seconds of polling first")
    parser.add_argument("--quick", action="store_true", help="10,000 IDs, 1.5 s")
    opts = parser.parse_args()
    if opts.quick:
        opts.ids, opts.steady = 10_000, 1.5

    print(f"wait_for_orders memory, {opts.ids:,} pending orders ({environment()})")
    print(f"tiny budget = {TINY_BUDGET:g} requests/min; RSS read after >= {opts.steady:g} s\n")
    rows = []
    with FakeProcess(default_status="Pending", record=False) as fake:
        where = {
            "base_url": fake.base_url,
            "account_key": fake.account_key,
            "account_secret": fake.account_secret,
        }
        for design, label in DESIGNS:
            result = run_in_child(measure, design, where, opts.ids, opts.steady)
            rows.append(
                [
                    label,
                    round(result["bytes_per_id"]),
                    result["grown"] / 2**20,
                    result["tasks"],
                    result["seconds"],
                ]
            )
    headers = ["design", "bytes/pending ID", "RSS growth MiB", "tasks alive", "measured after s"]
    print_table(headers, rows)
    sdk = max(row[1] for row in rows if row[0] != DESIGNS[-1][1])
    verdict = "met" if sdk <= TARGET_BYTES_PER_ID else "MISSED"
    print(
        f"\ntarget <= {TARGET_BYTES_PER_ID} bytes per pending ID (wait_for_orders rows): {verdict}"
    )


if __name__ == "__main__":
    main()
