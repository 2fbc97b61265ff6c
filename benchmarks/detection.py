"""How soon a budget too small for the poll policy sees orders settle, beside an ideal.

30 orders settle at seeded random times within `--spread` seconds on a FakeTelegent (its own
process); `wait_for_orders` polls them with a policy that wants every order every 0.5 s, on a
budget far below that: 60 requests per rolling 6 s (10/s; the policy asks 60/s). Reported:

- the detection delay (the caller sees the order settled, minus its scripted settle time;
  both processes read the same system-wide monotonic clock): mean and p95, beside a simulated
  ideal, a round-robin over the pending orders at the budget's rate (10/s, no order polled
  twice within 0.5 s) on the same settle times, and their ratio (target: p95 <= 1.25x);
  beside it, the ratio to the same round-robin at the rate the budget leaves background
  polls (8.64/s by default: the reserve of 6 and the window's 0.25 s margin taken out), which
  shows how much of the gap is the scheduling and how much the reserve;
- the 429s a server that also allows only 3 requests per rolling 0.2 s would have answered
  (counted on the arrival times at the fake, as such a server would count them; target 0);
- order requests sent.

Twice: one process on a `LocalBudget`, and three processes sharing a `RedisBudget` (10 orders
each; a redis-server of its own on a free port). `--baseline DIR` runs the same scenarios on
the package found in DIR first (e.g. `git archive main telegent_async | tar -x -C DIR`) and
prints its rows as "before".

    python benchmarks/detection.py                          # spread 20 s (about 60 s)
    python benchmarks/detection.py --baseline /tmp/main     # before and after (about 2 min)
    python benchmarks/detection.py --quick                  # spread 8 s, one process only
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import collections
import json
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

from _common import FakeProcess, environment, print_table

import telegent_async as tg
from telegent_async.testing import RedisServer

ORDERS = 30
LIMIT, WINDOW = 60, 6.0  # the budget: 60 requests per rolling 6 s
RATE = LIMIT / WINDOW
POLICY_INTERVAL = 0.5
FINER = (3, 0.2)  # the finer window a stricter server would also enforce
RUN_TIMEOUT = 120.0
#: A waiting process says it is ready (imported, its client built) and waits for the go: the
#: orders' settle times count from then, as the ideal's polls do from its time 0, so neither
#: side's ratio carries a process start-up (0.3 s and more on a loaded machine).
READY = "ready"


def schedule(spread: float, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.uniform(0.0, spread) for _ in range(ORDERS)]


def ideal(settles: Sequence[float], rate: float = RATE) -> list[float]:
    """Detection delays of a round-robin over the pending orders at `rate` polls a second,
    never polling one order twice within `POLICY_INTERVAL` (the policy's own cadence)."""
    pending = collections.deque(range(len(settles)))  # in round-robin order
    last = [-float("inf")] * len(settles)
    delays = [0.0] * len(settles)
    tick = 0
    while pending:
        now = tick / rate
        tick += 1
        for _ in range(len(pending)):  # the order polled longest ago that the policy allows
            index = pending[0]
            pending.rotate(-1)
            if now - last[index] >= POLICY_INTERVAL:
                last[index] = now
                if now >= settles[index]:
                    delays[index] = now - settles[index]
                    pending.remove(index)
                break
    return delays


def polls_rate(reserve: int | None) -> float:
    """The rate this package's budget leaves background polls: the window's limit less the
    reserve, over the window and its margin (`_budgets.base.background_interval`)."""
    # Imported here: a waiting child may run a baseline package that has no `_budgets`.
    from telegent_async._budgets.base import (
        background_interval,
        checked_reserve,
        span_of,
        window_limit,
    )

    limit = window_limit(60 * RATE, WINDOW)
    return 1.0 / background_interval(limit, checked_reserve(reserve, limit), span_of(WINDOW))


def finer_window_429s(arrivals: Sequence[float]) -> int:
    """The requests a server allowing `FINER` (3 per 0.2 s) would refuse, refused ones not
    counting against its window."""
    allowed, seconds = FINER
    accepted: list[float] = []
    refused = 0
    for at in sorted(arrivals):
        if len(accepted) - bisect.bisect_right(accepted, at - seconds) >= allowed:
            refused += 1
        else:
            accepted.append(at)
    return refused


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


# -- one process's wait (run as a child: `--wait`) ------------------------------------------------


async def wait(options: dict[str, Any]) -> dict[str, float]:
    """`wait_for_orders` over the given IDs; returns when each was seen settled (monotonic)."""
    # `reserve=` only when given: a baseline package (0.2.0) has no such argument.
    shape: dict[str, Any] = {"window": WINDOW}
    if options["reserve"] is not None:
        shape["reserve"] = options["reserve"]
    if options["redis"]:
        budget: Any = tg.RedisBudget(options["redis"], 60 * RATE, options["name"], **shape)
    else:
        budget = tg.LocalBudget(60 * RATE, **shape)
    policy = tg.PollPolicy(
        initial=POLICY_INTERVAL, factor=1.0, max_interval=POLICY_INTERVAL, jitter=0.0
    )
    seen: dict[str, float] = {}
    async with tg.TelegentClient(
        base_url=options["base_url"],
        allow_insecure=True,
        account_key=options["key"],
        account_secret=options["secret"],
        budget=budget,
    ) as client:
        # Imported and ready: the orders' clock starts when every process is (see `GO`).
        print(READY, flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        async for outcome in client.wait_for_orders(
            options["ids"], timeout=RUN_TIMEOUT, policy=policy
        ):
            seen[outcome.order_id] = time.monotonic()
    return seen


# -- the driver --------------------------------------------------------------------------------


def run_scenario(
    baseline: str | None,
    fake: FakeProcess,
    processes: int,
    spread: float,
    seed: int,
    reserve: int | None = None,
) -> dict[str, float]:
    tag = f"{os.getpid()}-{time.monotonic_ns()}"
    ids = [f"JNUOID-det-{tag}-{n}" for n in range(ORDERS)]
    offsets = schedule(spread, seed)
    fake.clear()
    scripts = [
        (i, [("Pending", 0.0), ("Complete", at)]) for i, at in zip(ids, offsets, strict=True)
    ]
    env = dict(os.environ)
    if baseline:
        env["PYTHONPATH"] = baseline
    with RedisServer() if processes > 1 else _no_redis() as redis:
        children = []
        for part in range(processes):
            options = {
                "base_url": fake.base_url,
                "key": fake.account_key,
                "secret": fake.account_secret,
                "ids": ids[part::processes],
                "redis": None if redis is None else redis.url,
                "name": f"detection-{tag}",
                "reserve": reserve,
            }
            children.append(
                subprocess.Popen(
                    [sys.executable, __file__, "--wait", json.dumps(options)],
                    env=env,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
            )
        for child in children:
            assert child.stdout is not None
            if child.stdout.readline().strip() != READY:
                raise RuntimeError("a waiting process failed to start")
        settled_at = fake.add_orders(scripts)
        seen: dict[str, float] = {}
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        for child in children:
            out, _ = child.communicate(timeout=RUN_TIMEOUT + 30)
            if child.returncode != 0:
                raise RuntimeError(f"a waiting process failed ({child.returncode})")
            seen.update(json.loads(out))
    delays = [seen[order_id] - at for order_id, at in zip(ids, settled_at, strict=True)]
    best = ideal(offsets)
    paced = ideal(offsets, polls_rate(reserve))
    arrivals = [at for method, at in fake.request_times() if method == "GET"]
    return {
        "mean": statistics.fmean(delays),
        "p95": percentile(delays, 0.95),
        "ideal_mean": statistics.fmean(best),
        "ideal_p95": percentile(best, 0.95),
        "paced_p95": percentile(paced, 0.95),
        "429s": finer_window_429s(arrivals),
        "requests": len(arrivals),
    }


class _no_redis:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: object) -> None:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", help="a directory holding the package to compare with")
    parser.add_argument("--spread", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--reserve",
        type=int,
        default=None,
        help="the budget's reserve for direct calls (default: a tenth of the limit, 6); none"
        " are made here, so 0 shows what the reserve costs the waits",
    )
    parser.add_argument("--processes", default="1,3", help="scenarios: process counts (1,3)")
    parser.add_argument("--wait", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.wait:
        print(json.dumps(asyncio.run(wait(json.loads(opts.wait)))))
        return
    spread = 8.0 if opts.quick else opts.spread
    scenarios = [1] if opts.quick else [int(n) for n in opts.processes.split(",")]
    versions = ([("before", opts.baseline)] if opts.baseline else []) + [("after", None)]
    print(environment())
    print(
        f"{ORDERS} orders settling within {spread:g} s (seed {opts.seed}), policy every"
        f" {POLICY_INTERVAL:g} s, budget {LIMIT} per {WINDOW:g} s"
        + ("" if opts.reserve is None else f" (reserve {opts.reserve})")
        + f"; 429s: a server allowing {FINER[0]} per {FINER[1]:g} s"
    )
    rows = []
    with FakeProcess(default_status="Pending") as fake:
        for processes in scenarios:
            for label, path in versions:
                r = run_scenario(path, fake, processes, spread, opts.seed, opts.reserve)
                where = "1 process, LocalBudget" if processes == 1 else "3 processes, RedisBudget"
                rows.append(
                    [
                        f"{label}: {where}",
                        r["mean"],
                        r["p95"],
                        r["ideal_p95"],
                        f"{r['p95'] / r['ideal_p95']:.2f}x",
                        "-" if path else f"{r['p95'] / r['paced_p95']:.2f}x",
                        r["429s"],
                        r["requests"],
                    ]
                )
    print_table(
        [
            "run",
            "mean s",
            "p95 s",
            "ideal p95 s",
            "p95 / ideal",
            "p95 / ideal at polls' rate",
            "429s (3/0.2 s)",
            "requests",
        ],
        rows,
    )
    print(
        f"ideal: a round-robin at the budget's rate ({RATE:g}/s); at polls' rate: the same at"
        f" {polls_rate(opts.reserve):.2f}/s,\nthe rate this budget leaves background polls (the"
        " limit less the reserve, over the window and its margin): the reserve's share of the gap"
    )


if __name__ == "__main__":
    main()
