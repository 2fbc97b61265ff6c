"""Chaos: 1,000 scripted orders waited on through every fault the fake can inject at once.

One seeded run of a second or two: 5xx answers, connection resets, malformed and HTML bodies,
stalls longer than the attempt timeout, two 429 bursts and tokens that expire every second.
The SDK must still report each order exactly once, as the server finally scripted it, never
early, within a request count derived below, and leave nothing running or unclosed.
"""

from __future__ import annotations

import asyncio
import gc
import math
import random
import time
import warnings
from typing import Any

import pytest
from helpers import FAST_RETRY, client_tasks, fast_client

import telegent_async as tg
from telegent_async.testing import FakeTelegent, FaultKind, Step

SEED = 20250502
N_ORDERS = 1000
#: Every order settles at a seeded time within this many seconds of being added.
SETTLE_WITHIN = 1.0
#: The issue's mix: 10% 5xx, 3% resets, 2% malformed or HTML bodies, 1% stalls.
FAULT_RATE: dict[FaultKind, float] = {
    "500": 0.04,
    "502": 0.02,
    "503": 0.03,
    "504": 0.01,
    "reset": 0.03,
    "malformed": 0.01,
    "html": 0.01,
    "stall": 0.01,
}
ATTEMPT_TIMEOUT = 0.2
STALL_SECONDS = 0.5  # longer than the attempt timeout: a stall is always abandoned
TOKEN_LIFETIME = 1.0
#: High enough that faults never exhaust one poll's retries (0.16**51 is nil).
MAX_RETRIES = 50
DEADLINE = 30.0
MAX_CONNECTIONS = 20
POLICY = tg.PollPolicy(initial=0.1, factor=2.0, max_interval=0.5, jitter=0.2)
#: Two bursts of 429 with a short Retry-After, injected when these many outcomes are in.
BURSTS_AT = (250, 600)
BURST_SIZE = 10
BURST_RETRY_AFTER = "0.1"
#: A 6-sigma allowance on the random fault count (see request_bound).
SIGMAS = 6.0
#: Token requests per second of run at most: a lifetime truncated to the second is renewed
#: at 80% of what is left, so a token second holds ~5 renewals before latency ends the series.
TOKENS_PER_SECOND = 10

#: Final states (status as the server spells it, OrderStatusMessage, expected carrier code).
FINALS: tuple[tuple[str, str | None, str | None], ...] = (
    ("Complete", None, None),
    ("Completed", None, None),
    ("Error", "8A-ACCOUNT_NUM_REQ_OR_INCORRECT", "8A"),
    ("Error", "GENS-0041-No Port-In request found", "GENS-0041"),
    ("Error", "Carrier system unavailable", None),
    ("Rejected", "6P-REMOVE NUMBER LOCK ON VERIZON ACCOUNT", "6P"),
    ("Rejected", "8C-PASS_PIN_REQ_OR_INCORRECT", "8C"),
    ("Cancelled", None, None),
)


def polls_per_order_bound(policy: tg.PollPolicy, horizon: float) -> int:
    """The most polls one order can get when it settles within `horizon` of the first poll.

    Poll k+1 comes at least `(1 - jitter) * intervals[k]` after poll k, so the polls that can
    still see the order unsettled are those k with sum(min delays before k) < horizon; one
    more poll then sees it settled. (A malformed answer is a failed poll: counted separately.)
    """
    steps = policy.intervals
    elapsed, before = 0.0, 0
    while elapsed < horizon:
        elapsed += steps[min(before, len(steps) - 1)] * (1.0 - policy.jitter)
        before += 1
    return before + 1


def request_bound(run_seconds: float) -> tuple[int, dict[str, int]]:
    """The most requests the run may make, and the terms it is built from.

    - good answers: each poll ends with at most one clean 200 and an order gets at most
      `polls_per_order_bound` clean polls, so clean answers <= N * P.
    - random faults: each request the fake draws for is a fault with probability p
      (sum of FAULT_RATE), independently, so the drawn requests needed for G clean answers
      follow a negative binomial: mean G / (1 - p), sd sqrt(G * p) / (1 - p). The bound adds
      SIGMAS standard deviations. (aiohttp's silent re-send after a reset is drawn too.)
      max_retries only caps this per poll (worst case N * P * (MAX_RETRIES + 2) requests, far
      looser); the deadline is never reached, so it does not bound anything here.
    - 429s: exactly the injected bursts (the fake has no rate limit of its own here).
    - tokens: at most TOKENS_PER_SECOND per second of run, and each token can be refused
      (401) at most once per connection that holds it when it expires: 401s <= max_connections
      * token requests.
    """
    polls = polls_per_order_bound(POLICY, SETTLE_WITHIN)
    p = sum(FAULT_RATE.values())
    clean = N_ORDERS * polls
    drawn = clean / (1 - p) + SIGMAS * math.sqrt(clean * p) / (1 - p)
    tokens = TOKENS_PER_SECOND * math.ceil(run_seconds + 1)
    unauthorized = MAX_CONNECTIONS * tokens
    terms = {
        "polls_per_order": polls,
        "drawn": round(drawn),
        "429": len(BURSTS_AT) * BURST_SIZE,
        "tokens": tokens,
        "401": unauthorized,
    }
    total = drawn + terms["429"] + tokens + unauthorized
    return math.ceil(total), terms


def script_orders(fake: FakeTelegent, rng: random.Random) -> dict[str, tuple[str, str | None]]:
    """Add N_ORDERS lifecycles settling at seeded times; returns id -> (final status, code)."""
    expected: dict[str, tuple[str, str | None]] = {}
    for index in range(N_ORDERS):
        order_id = f"JNUOID-chaos-{index:04d}"
        settle = rng.uniform(0.05, SETTLE_WITHIN)
        status, message, code = rng.choice(FINALS)
        lifecycle = [Step("Submitted", 0.0), Step("InProgress", settle / 2), Step(status, settle)]
        fake.add_order(order_id, lifecycle, message=message)
        expected[order_id] = (status, code)
    return expected


@pytest.mark.slow  # a real-time run of a second or two
async def test_chaos_every_order_settles_once_as_scripted() -> None:
    received: dict[str, tuple[tg.OrderOutcome, float]] = {}
    loop_errors: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, context: loop_errors.append(context))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fake = FakeTelegent(
            token_lifetime=TOKEN_LIFETIME,
            fault_rate=FAULT_RATE,
            stall_seconds=STALL_SECONDS,
            seed=SEED,
        )
        async with fake:
            expected = script_orders(fake, random.Random(SEED))
            started = time.monotonic()
            client = fast_client(
                fake,
                timeout=ATTEMPT_TIMEOUT,
                max_retries=MAX_RETRIES,
                max_connections=MAX_CONNECTIONS,
                retry_policy=FAST_RETRY,
            )
            async with client:
                stream = client.wait_for_orders(expected, timeout=DEADLINE, policy=POLICY)
                async for outcome in stream:
                    assert outcome.order_id not in received, f"{outcome.order_id} yielded twice"
                    received[outcome.order_id] = (outcome, time.monotonic())
                    if len(received) in BURSTS_AT:
                        fake.inject("429", BURST_SIZE, retry_after=BURST_RETRY_AFTER)
            elapsed = time.monotonic() - started
            assert fake.open_connections == 0
            total, tokens = fake.request_count, len(fake.token_requests)
            counts = dict(fake.status_counts)
            settled_at = {order_id: fake.settled_at(order_id) for order_id in expected}
        loop.set_exception_handler(None)
        gc.collect()

    assert received.keys() == expected.keys()
    wrong = []
    for order_id, (outcome, at) in received.items():
        assert outcome.error is None, f"{order_id}: {outcome.error!r}"
        assert outcome.order is not None
        got = (outcome.order.raw_status, getattr(outcome.order.carrier_error, "code", None))
        if got != expected[order_id]:
            wrong.append((order_id, got, expected[order_id]))
        assert at >= settled_at[order_id], f"{order_id} reported before the server settled it"
    assert not wrong, wrong[:5]

    # The faults really happened: every kind was served, and both bursts were answered.
    assert counts.get(429) == len(BURSTS_AT) * BURST_SIZE
    for status in (500, 502, 503, 504, 0):
        assert counts.get(status, 0) > 0, f"no request was answered {status}: {counts}"
    assert tokens >= 2, "tokens never expired during the run"

    bound, terms = request_bound(elapsed)
    print(f"chaos: {total} requests ({tokens} token) in {elapsed:.2f} s; bound {bound} {terms}")
    assert total <= bound, f"{total} requests, bound {bound}: {terms}"

    assert client_tasks() == set()
    assert not loop_errors, loop_errors
    leaks = [w for w in caught if issubclass(w.category, ResourceWarning) or "nclosed" in str(w)]
    assert not leaks, [str(w.message) for w in leaks]
