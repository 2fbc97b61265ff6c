"""Sharing a rate-limited API among many waits: `wait_for_orders` beside the naive design.

N orders settle at seeded random times within `--spread` seconds; the FakeTelegent serving them
(in its own process, so its CPU is not the client's) allows R requests per second and answers
429 with `Retry-After: 1` beyond that. Two runs, one after the other, on the same schedule
(fresh IDs each):

- SDK: `TelegentClient(requests_per_minute=60 * R)` and `wait_for_orders(ids)` with the default
  `PollPolicy.PROVISION` (1 s doubling to 15 s, 20 % jitter);
- naive: `asyncio.gather` of one loop per order over raw aiohttp, `backoff.on_predicate(expo,
  max_value=15)` until settled, each poll retried on 429 by `backoff.on_exception(expo)`, as
  backoff's documentation suggests (full jitter both).

Reported per run: 429 answers, order requests per order, and the delay between an order
settling on the server (its scripted settle time; both processes read the same system-wide
monotonic clock) and the caller seeing it settled: p50, p95, max.

    python benchmarks/fairness.py           # N=2000, R=200, spread 20 s (about 75 s)
    python benchmarks/fairness.py --quick   # N=300, R=50, spread 5 s (about 40 s: the naive
                                            # design's 429 backoff grows to 30 s)
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NamedTuple

import aiohttp
import backoff
from _common import FakeProcess, environment, print_table

FINALS = ("Complete", "Completed", "Error", "Rejected", "ResolutionRequired", "Cancelled")
SETTLED_KEYS = frozenset(
    {"complete", "completed", "error", "failed", "rejected", "resolutionrequired", "cancelled"}
)
#: A run that has not seen every order settle by then is reported as such, not waited out.
RUN_TIMEOUT = 300.0

#: One design: (fake, order IDs) -> {order ID: monotonic time the caller saw it settled}.
Design = Callable[[FakeProcess, Sequence[str]], Awaitable[dict[str, float]]]


def schedule(count: int, spread: float, seed: int) -> list[tuple[float, str]]:
    """(settle after s, final status) per order: the same for every design."""
    rng = random.Random(seed)
    return [(rng.uniform(0.0, spread), rng.choice(FINALS)) for _ in range(count)]


async def sdk_design(fake: FakeProcess, ids: Sequence[str], rate: float) -> dict[str, float]:
    seen: dict[str, float] = {}
    async with fake.client(requests_per_minute=60 * rate) as client:
        async for outcome in client.wait_for_orders(ids, timeout=RUN_TIMEOUT):
            if outcome.error is not None:
                raise outcome.error
            seen[outcome.order_id] = time.monotonic()
    return seen


class RateLimited(Exception):
    """A 429: the naive poll retries it with its own backoff."""


def _settled(body: dict[str, Any]) -> bool:
    return "".join(str(body.get("OrderStatus", "")).split()).lower() in SETTLED_KEYS


async def naive_design(fake: FakeProcess, ids: Sequence[str]) -> dict[str, float]:
    seen: dict[str, float] = {}
    url = fake.base_url + "/numbers/order"
    async with aiohttp.ClientSession() as session:
        credentials = {"AccountKey": fake.account_key, "AccountSecret": fake.account_secret}
        async with session.post(fake.base_url + "/oauth2/tokens", json=credentials) as response:
            headers = {"Authorization": "Bearer " + (await response.json())["token"]}

        @backoff.on_predicate(backoff.expo, lambda body: not _settled(body), max_value=15)
        @backoff.on_exception(backoff.expo, RateLimited, max_value=30)
        async def poll(order_id: str) -> dict[str, Any]:
            async with session.get(url, params={"OrderId": order_id}, headers=headers) as answer:
                if answer.status == 429:
                    raise RateLimited
                answer.raise_for_status()
                body: dict[str, Any] = await answer.json()
                return body

        async def wait(order_id: str) -> None:
            await poll(order_id)
            seen[order_id] = time.monotonic()

        await asyncio.wait_for(asyncio.gather(*(wait(i) for i in ids)), RUN_TIMEOUT)
    return seen


class Result(NamedTuple):
    """One row of the table."""

    design: str
    rate_limited: int
    requests_per_order: float
    p50: float
    p95: float
    worst: float
    wall: float
    cpu: float


HEADERS = [
    "design",
    "429s",
    "requests/order",
    "p50 delay s",
    "p95 delay s",
    "max delay s",
    "wall s",
    "client CPU s",
]


async def run(
    fake: FakeProcess, label: str, design: Design, plan: list[tuple[float, str]]
) -> Result:
    """Script the orders, run one design over them, and summarise what the fake counted."""
    ids = [f"JNUOID-{label.split()[0]}-{n:05d}" for n in range(len(plan))]
    fake.clear()
    settled_at = fake.add_orders(
        [(i, [("Pending", 0.0), (final, at)]) for i, (at, final) in zip(ids, plan, strict=True)]
    )
    started, cpu = time.monotonic(), time.process_time()
    seen = await design(fake, ids)
    wall, cpu = time.monotonic() - started, time.process_time() - cpu
    counts = fake.order_status_counts()
    delays = [seen[i] - at for i, at in zip(ids, settled_at, strict=True)]
    cuts = statistics.quantiles(delays, n=100)
    requests = sum(counts.values()) / len(ids)
    return Result(label, counts.get(429, 0), requests, cuts[49], cuts[94], max(delays), wall, cpu)


async def main_async(count: int, rate: float, spread: float, seed: int) -> None:
    plan = schedule(count, spread, seed)
    with FakeProcess(rate_limit=rate, retry_after="1") as fake:
        rows = []
        designs: list[tuple[str, Design]] = [
            ("wait_for_orders", lambda f, ids: sdk_design(f, ids, rate)),
            ("naive gather+backoff", naive_design),
        ]
        for label, design in designs:
            rows.append(await run(fake, label, design, plan))
            await asyncio.sleep(1.5)  # let the fake's token bucket refill between runs
    print_table(HEADERS, rows)
    sdk, naive = rows
    fewer = sdk.rate_limited == 0 and sdk.rate_limited < naive.rate_limited
    faster = sdk.p95 < naive.p95
    print(
        f"\ntargets: 0 429s and fewer than naive ({sdk.rate_limited} vs {naive.rate_limited}): "
        f"{'met' if fewer else 'MISSED'}; lower p95 delay ({sdk.p95:.2f} vs {naive.p95:.2f} s): "
        f"{'met' if faster else 'MISSED'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=200.0, help="server limit, requests/s")
    parser.add_argument("--spread", type=float, default=20.0, help="settle times within s")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--quick", action="store_true", help="300 orders, 50/s, 5 s")
    opts = parser.parse_args()
    if opts.quick:
        opts.orders, opts.rate, opts.spread = 300, 50.0, 5.0
    print(
        f"{opts.orders:,} orders settling within {opts.spread:g} s, server limit "
        f"{opts.rate:g} requests/s, seed {opts.seed} ({environment()})\n"
    )
    asyncio.run(main_async(opts.orders, opts.rate, opts.spread, opts.seed))


if __name__ == "__main__":
    main()
