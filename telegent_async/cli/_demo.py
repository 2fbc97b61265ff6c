"""`demo` and `fake-server`: a realistic mix of orders, waited for on an embedded fake or
served to the user's own code. Real port-ins take 1 to 5 business days; here every lifecycle
is compressed into seconds, and `time_scale` multiplies every duration at once (lifecycles,
poll and retry cadences, Retry-After) so tests run the same scenario faster."""

from __future__ import annotations

import argparse
import asyncio
import functools
import random
import sys
import uuid
from collections.abc import Sequence

import attrs

from .._timing import PollPolicy
from ..testing import FakeTelegent, Step
from ._exit import EXIT_FAILED, EXIT_OK, UsageError
from ._outcomes import PROG, Run, Tally
from ._report import Output
from ._session import run_reported, run_stoppable, wait_for_orders
from ._terminal import Console

DEFAULT_ORDERS = 300
#: Enough room for every special case plus at least one order of each failing code.
MIN_ORDERS = 10
#: More than a fake serves in the demo's minute (a bound, not a target: memory, start-up).
MAX_ORDERS = 100_000

# Carrier messages as real port-in rejections spell them: code, hyphen, carrier's own text.
# (code, OrderStatus, OrderStatusMessage, weight among the failing port-ins)
_FAILURES: tuple[tuple[str, str, str, float], ...] = (
    ("8A", "Rejected", "8A-ACCOUNT_NUM_REQ_OR_INCORRECT", 0.40),
    ("6P", "Rejected", "6P-REMOVE NUMBER LOCK ON VERIZON ACCOUNT", 0.25),
    ("6B", "Error", "6B-TRANSFER PIN REQUIRED OR INCORRECT", 0.20),
    ("1P", "Error", "1P-OTHER: AUTHORIZED NAME DOES NOT MATCH ACCOUNT", 0.15),
)
_FAILING_SHARE = 0.12
_PORT_IN_SHARE = 0.25


@attrs.frozen
class DemoOrder:
    """One scripted order; `steps` is None for the ID the server does not know."""

    order_id: str
    kind: str  # "provision", "port-in" or "unknown"
    steps: tuple[Step, ...] | None
    message: str | None = None
    phone_number: str = ""

    def outcome(self, time_scale: float = 1.0) -> str:
        """What a waiter will see in the end, in a few words (for `fake-server`'s listing)."""
        if self.steps is None:
            return "404 Not Found"
        last = self.steps[-1]
        text = f"{last.status} after {last.at * time_scale:.1f} s"
        return f"{text}: {self.message}" if self.message else text


@attrs.frozen
class DemoSettings:
    """The fake's limits and faults and the client's cadences (see `scaled`).

    The client's budget sits just under the fake's rate limit, so the only 429s are the burst
    injected on purpose; the 503s come from a small random fault rate.
    """

    fake_rate_limit: float  # requests per second
    client_rpm: float
    fault_rate_503: float
    burst_429_at: float  # seconds after the start
    burst_429_count: int
    retry_after: str
    poll: PollPolicy
    retry: PollPolicy
    wait_timeout: float

    @classmethod
    def scaled(cls, time_scale: float = 1.0) -> DemoSettings:
        """Every duration multiplied (and every rate divided) by `time_scale`."""
        s = time_scale
        limit = 150.0 / s
        return cls(
            fake_rate_limit=limit,
            client_rpm=limit * 60.0 * 0.93,
            fault_rate_503=0.03,
            burst_429_at=3.0 * s,
            burst_429_count=1,
            retry_after=f"{1.0 * s:g}",
            poll=PollPolicy(initial=0.5 * s, factor=1.5, max_interval=2.0 * s),
            retry=PollPolicy(initial=0.1 * s, factor=2.0, max_interval=1.0 * s, jitter=1.0),
            wait_timeout=60.0 * s,
        )

    def intro(self, base_url: str, orders: int) -> str:
        poll, retry = self.poll, self.retry
        return (
            f"{PROG} demo: waiting for {orders} orders on an embedded FakeTelegent at {base_url}\n"
            "  (no network, no credentials; port-ins, which take 1-5 business days in real life,\n"
            "  are compressed into seconds)\n"
            f"  server: rate limit {self.fake_rate_limit:.0f} req/s, {self.fault_rate_503:.0%} of "
            f"answers 503, {self.burst_429_count} x 429 at {self.burst_429_at:g} s (Retry-After "
            f"{self.retry_after} s)\n"
            f"  client: budget {self.client_rpm / 60:.0f} req/s, polls every {poll.initial:g} s "
            f"growing to {poll.max_interval:g} s, retries after {retry.initial:g} s doubling to "
            f"{retry.max_interval:g} s\n"
        )


def _apportion(total: int, weights: Sequence[float]) -> list[int]:
    """Split `total` by `weights`, at least one each, largest remainders first."""
    shares = [max(1.0, total * w / sum(weights)) for w in weights]
    counts = [int(share) for share in shares]
    by_remainder = sorted(range(len(shares)), key=lambda i: counts[i] - shares[i])
    for i in by_remainder[: max(0, total - sum(counts))]:
        counts[i] += 1
    return counts


def build_demo(orders: int = DEFAULT_ORDERS, seed: int | None = None) -> list[DemoOrder]:
    """The scenario for `orders` IDs, shuffled; the same `seed` gives the same scenario.

    About 60 % provision orders completing in 1-3 s, 25 % port-ins passing Submitted ->
    Pending Carrier Approval -> Scheduled -> Completed, 12 % port-ins rejected with 8A, 6P,
    6B or 1P, one Cancelled, one ResolutionRequired and one ID the server does not know.
    """
    if orders < MIN_ORDERS:
        raise ValueError(f"the demo needs at least {MIN_ORDERS} orders, got {orders}")
    rng = random.Random(seed)

    def new_id(prefix: str) -> str:
        return f"{prefix}-{uuid.UUID(int=rng.getrandbits(128), version=4)}"

    def phone() -> str:
        return f"+1{rng.randint(201, 989)}{rng.randint(2000000, 9999999)}"

    def port_in(final: str, at: float, message: str | None = None) -> DemoOrder:
        steps = (
            Step("Submitted", 0.0),
            Step("Pending Carrier Approval", rng.uniform(0.5, 1.5)),
            Step(final, at),
        )
        return DemoOrder(new_id("JNOID"), "port-in", steps, message, phone())

    plan = [
        DemoOrder(new_id("JNUOID"), "unknown", None),
        port_in("Cancelled", 4.0, "Cancelled at the subscriber's request"),
        port_in("ResolutionRequired", 5.0, "Subscriber signature missing on the LOA"),
    ]
    failing = max(len(_FAILURES), round(orders * _FAILING_SHARE))
    counts = _apportion(failing, [weight for *_, weight in _FAILURES])
    for (_code, status, message, _weight), count in zip(_FAILURES, counts, strict=True):
        plan.extend(port_in(status, rng.uniform(3.0, 7.0), message) for _ in range(count))
    for _ in range(round(orders * _PORT_IN_SHARE)):
        approval, scheduled = rng.uniform(0.5, 1.5), rng.uniform(2.5, 4.5)
        steps = (
            Step("Submitted", 0.0),
            Step("Pending Carrier Approval", approval),
            Step("Scheduled", scheduled),
            Step("Completed", scheduled + rng.uniform(2.0, 4.0)),
        )
        plan.append(DemoOrder(new_id("JNOID"), "port-in", steps, None, phone()))
    while len(plan) < orders:
        provision = (Step("Pending"), Step("InProgress", 0.4), Step("Complete", rng.uniform(1, 3)))
        plan.append(DemoOrder(new_id("JNUOID"), "provision", provision, None, phone()))
    rng.shuffle(plan)
    return plan


def seed_fake(fake: FakeTelegent, plan: Sequence[DemoOrder], time_scale: float = 1.0) -> None:
    """Add the plan's orders to `fake`; their lifecycles start now."""
    for order in plan:
        if order.steps is None:
            continue
        fake.add_order(
            order.order_id,
            [Step(step.status, step.at * time_scale) for step in order.steps],
            message=order.message,
            order_type="Port-In" if order.kind == "port-in" else "Provision",
            phone_numbers=(order.phone_number,),
        )


def cmd_demo(args: argparse.Namespace, console: Console) -> int:
    plan = build_demo(args.orders, args.seed)
    run = Run("demo", Tally([order.order_id for order in plan]))
    run.demo = settings = DemoSettings.scaled(args.time_scale)
    output = Output(args, console, sys.stdout)

    async def demo() -> None:
        fake = FakeTelegent(
            rate_limit=settings.fake_rate_limit, retry_after=settings.retry_after,
            fault_rate={"503": settings.fault_rate_503}, seed=args.seed, record=False,
        )  # fmt: skip
        async with fake:
            seed_fake(fake, plan, args.time_scale)
            burst = functools.partial(
                fake.inject, "429", settings.burst_429_count, retry_after=settings.retry_after
            )
            handle = asyncio.get_running_loop().call_later(settings.burst_429_at, burst)
            console.write(settings.intro(fake.base_url, len(plan)))
            options = {
                "base_url": fake.base_url,
                "account_key": fake.account_key,
                "account_secret": fake.account_secret,
                "allow_insecure": True,
                "requests_per_minute": settings.client_rpm,
                "retry_policy": settings.retry,
                "timeout": 5.0,
            }
            try:
                await wait_for_orders(
                    run, options, output, timeout=settings.wait_timeout, policy=settings.poll
                )
            finally:
                handle.cancel()

    return run_reported(run, output, demo)


def cmd_fake_server(args: argparse.Namespace, console: Console) -> int:
    plan = build_demo(args.orders, args.seed)
    if args.ids_file is not None:
        try:
            with open(args.ids_file, "w", encoding="utf-8") as file:
                file.writelines(f"{order.order_id}\n" for order in plan)
        except OSError as exc:
            raise UsageError(f"--ids-file: cannot write {args.ids_file}: {exc}") from None
    try:
        run_stoppable(lambda: _serve(args, plan))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        console.write(f"{PROG}: error: cannot serve on {args.host}:{args.port}: {exc}\n")
        return EXIT_FAILED
    console.write("FakeTelegent stopped\n")
    return EXIT_OK


async def _serve(args: argparse.Namespace, plan: Sequence[DemoOrder]) -> None:
    fake = FakeTelegent(host=args.host, port=args.port, seed=args.seed)
    async with fake:
        seed_fake(fake, plan, args.time_scale)
        scale = f" (x{args.time_scale:g})" if args.time_scale != 1 else ""
        width = max(len(order.order_id) for order in plan)
        sys.stdout.write("\n".join([
            f"FakeTelegent listening on {fake.base_url}",
            "",
            "Test credentials of this fake (not secrets):",
            f"  export TELEGENT_BASE_URL={fake.base_url}",
            f"  export TELEGENT_ACCOUNT_KEY={fake.account_key}",
            f"  export TELEGENT_ACCOUNT_SECRET={fake.account_secret}",
            "  export TELEGENT_ALLOW_INSECURE=1",
            "It speaks plain http on loopback: TELEGENT_ALLOW_INSECURE=1 allows that to",
            "TelegentClient and telegent-orders alike (or allow_insecure=True, or --insecure).",
            "",
            f"{len(plan)} seeded orders; their lifecycles started now, compressed into "
            f"seconds{scale}:",
            *(f"  {order.order_id.ljust(width)}  {order.kind:<9}  {order.outcome(args.time_scale)}"
              for order in plan),
            "",
            "Stop with Ctrl-C or SIGTERM.",
            "",
        ]))  # fmt: skip
        sys.stdout.flush()
        await asyncio.Event().wait()
