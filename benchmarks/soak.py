"""Soak: watchers left alone with their dependencies failing under them, on a seeded schedule.

    python benchmarks/soak.py [--orders 2000] [--seed 1] [--bound 240]

3 worker processes share a `RedisStore` and 1 works an `SQLiteStore` file; all 4 share one
`RedisBudget` on the same Redis, and poll a FakeTelegent in this process, where 2,000 scripted
orders settle at random moments. Meanwhile faults are injected: Redis stopped and restarted on
its port (store and budget away at once), the SQLite file's write lock held by another process
past the worker's `lock_timeout`, a worker killed with SIGKILL (restarted half a second later),
credentials refused for a while (every token revoked, new ones refused), bursts of 429 and of
5xx. Each worker prints what `settled()` hands it; the table compares that with the status the
fake holds for each order: right, wrong, lost (never delivered within `--bound` seconds),
twice (acknowledged as new twice: a settlement done twice), and the longest time in which the
fake saw no lookup at all while orders were pending, with the fault that overlapped it.

Targets: every order right, none lost or twice; the longest silence at most 2 s beyond the
length of the fault under it (a refusal adds its pause: 1 s doubling while it lasts).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import itertools
import os
import pathlib
import random
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator

import attrs
from _common import environment, print_table

import telegent_async as tg
from telegent_async._stores.base import NewWatch
from telegent_async.testing import FakeTelegent, RedisServer, Step

KEY, SECRET = "DID-soak-key", "soak-secret-7Hq2"
#: Polls every second doubling to 8 s: 2,000 pending orders make ~250 lookups a second.
POLICY = tg.PollPolicy(initial=1.0, factor=2.0, max_interval=8.0, jitter=0.5)
RATE = 60_000.0  # requests per minute of the shared budget: busy, not the bottleneck
LOCK_TIMEOUT = 0.5
REDIS_WORKERS, SQLITE_WORKERS = 3, 1
KINDS = ("redis restart", "sqlite lock", "kill -9", "401 burst", "429 burst", "5xx burst")

LOCK_HOLDER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
"""


# -- a worker process ------------------------------------------------------------------------


async def work(opts: argparse.Namespace) -> None:
    """`--worker`: one watcher, each delivery written to its log (line-buffered)."""
    budget = tg.RedisBudget(opts.redis, RATE, name="soak")
    client = tg.TelegentClient(
        account_key=KEY,
        account_secret=SECRET,
        base_url=opts.base_url,
        allow_insecure=True,
        budget=budget,
        timeout=5.0,
        max_retries=2,
    )
    store: tg.RedisStore | tg.SQLiteStore
    if opts.store == "redis":
        store = tg.RedisStore(opts.redis, namespace="soak")
    else:
        store = tg.SQLiteStore(opts.store, lock_timeout=LOCK_TIMEOUT)
    with open(opts.log, "a", buffering=1) as log:  # noqa: ASYNC230 - once, at start
        async with (
            contextlib.aclosing(store),
            client,
            tg.OrderWatcher(client, store, policy=POLICY, lease=10.0) as watcher,
        ):
            log.write(f"ready {os.getpid()}\n")
            async for outcome in watcher.settled(auto_ack=False):
                if outcome.error is None and outcome.order is not None:
                    status = outcome.order.raw_status
                else:
                    status = type(outcome.error).__name__
                log.write(f"delivered {outcome.order_id} {status}\n")
                if await watcher.ack(outcome.order_id):
                    log.write(f"acked {outcome.order_id}\n")


# -- the run ---------------------------------------------------------------------------------


@attrs.define
class Worker:
    store: str
    log: pathlib.Path
    proc: asyncio.subprocess.Process | None = None


@attrs.define
class Soak:
    opts: argparse.Namespace
    fake: FakeTelegent
    redis: RedisServer
    db: pathlib.Path
    workers: list[Worker]
    rng: random.Random
    faults: list[tuple[str, float, float]] = attrs.field(factory=list)

    async def start(self, worker: Worker) -> None:
        with open(worker.log.with_suffix(".err"), "ab") as stderr:  # noqa: ASYNC230
            worker.proc = await asyncio.create_subprocess_exec(
                sys.executable, __file__, "--worker", "--store", worker.store,
                "--redis", self.redis.url, "--base-url", self.fake.base_url,
                "--log", str(worker.log), stdout=asyncio.subprocess.DEVNULL, stderr=stderr,
            )  # fmt: skip

    async def stop(self, worker: Worker, sig: int = signal.SIGTERM) -> None:
        proc, worker.proc = worker.proc, None
        if proc is not None and proc.returncode is None:
            os.kill(proc.pid, sig)
            try:
                await asyncio.wait_for(proc.wait(), 15.0)
            except asyncio.TimeoutError:
                os.kill(proc.pid, signal.SIGKILL)
                await proc.wait()

    async def inject(self, kind: str) -> None:
        length = self.rng.uniform(0.8, 2.0)
        began = time.monotonic()
        if kind == "redis restart":
            await asyncio.to_thread(self.redis.down)
            await asyncio.sleep(length)
            await asyncio.to_thread(self.redis.up)
        elif kind == "sqlite lock":
            async with _lock_held(self.db, length):
                await asyncio.sleep(length)
        elif kind == "kill -9":
            victim = self.rng.choice(self.workers)
            await self.stop(victim, signal.SIGKILL)
            await asyncio.sleep(0.5)
            await self.start(victim)
        elif kind == "401 burst":
            self.fake.fail_tokens("refused", seconds=length)
            self.fake.revoke_tokens()
            await asyncio.sleep(length)
        elif kind == "429 burst":
            self.fake.inject("429", self.rng.randint(5, 40), retry_after="1")
        else:
            self.fake.inject(self.rng.choice(["500", "502", "503", "504"]), self.rng.randint(5, 40))
        self.faults.append((kind, began, time.monotonic()))

    async def faults_until(self, done: asyncio.Event, stop_at: float) -> None:
        while not done.is_set() and time.monotonic() < stop_at:
            await asyncio.sleep(self.rng.uniform(2.0, 5.0))
            await self.inject(self.rng.choice(KINDS))


@contextlib.asynccontextmanager
async def _lock_held(db: pathlib.Path, seconds: float) -> AsyncIterator[None]:
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-c", LOCK_HOLDER, str(db), str(seconds + 5),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert holder.stdout is not None
        await asyncio.wait_for(holder.stdout.readline(), 10.0)
        yield
    finally:
        os.kill(holder.pid, signal.SIGKILL)  # by its PID; the lock goes with it
        await holder.wait()


def _lines(workers: list[Worker]) -> list[list[str]]:
    return [
        line.split()
        for worker in workers
        if worker.log.exists()
        for line in worker.log.read_text().splitlines()
    ]


def _acked(workers: list[Worker]) -> set[str]:
    return {words[1] for words in _lines(workers) if words[0] == "acked"}


async def soak(opts: argparse.Namespace) -> None:
    rng = random.Random(opts.seed)
    finals: dict[str, str] = {}
    with (
        RedisServer(persist=True) as redis,
        tempfile.TemporaryDirectory(prefix="soak-") as scratch,
    ):
        tmp = opts.workdir or scratch  # --workdir keeps the logs for a look afterwards
        async with FakeTelegent(account_key=KEY, account_secret=SECRET) as fake:
            for n in range(opts.orders):
                order_id = f"JNOID-{n:05d}"
                finals[order_id] = rng.choice(["Completed", "Completed", "Rejected", "Cancelled"])
                settle_at = rng.uniform(2.0, opts.spread)
                fake.add_order(order_id, [Step("Submitted"), Step(finals[order_id], settle_at)])
            ids = list(finals)
            on_sqlite = ids[: len(ids) // 4]
            db = pathlib.Path(tmp) / "watches.db"
            sqlite_store = tg.SQLiteStore(db)
            await sqlite_store.add([NewWatch(i) for i in on_sqlite])
            await sqlite_store.aclose()
            redis_store = tg.RedisStore(redis.url, namespace="soak")
            await redis_store.add([NewWatch(i) for i in ids[len(on_sqlite) :]])
            await redis_store.aclose()
            workers = [Worker("redis", pathlib.Path(tmp) / f"r{n}.log") for n in range(3)]
            workers += [Worker(str(db), pathlib.Path(tmp) / "s0.log")]
            run = Soak(opts, fake, redis, db, workers, rng)
            started = time.monotonic()
            for worker in workers:
                await run.start(worker)
            done = asyncio.Event()
            injecting = asyncio.ensure_future(run.faults_until(done, started + opts.spread))
            give_up = started + opts.bound
            while len(_acked(workers)) < len(ids) and time.monotonic() < give_up:  # noqa: ASYNC110
                await asyncio.sleep(0.25)  # other processes write the logs
            finished = time.monotonic()
            done.set()
            await injecting
            for worker in workers:
                await run.stop(worker)
            lookups = sorted(r.at for r in fake.order_requests())
            report(opts, finals, run, lookups, finished)


def report(
    opts: argparse.Namespace,
    finals: dict[str, str],
    run: Soak,
    lookups: list[float],
    finished: float,
) -> None:
    """The tables; silences are measured from the first lookup until every order is done."""
    lines = _lines(run.workers)
    delivered: dict[str, set[str]] = collections.defaultdict(set)
    acked = collections.Counter(words[1] for words in lines if words[0] == "acked")
    for words in lines:
        if words[0] == "delivered":
            delivered[words[1]].add(words[2])
    right = sum(delivered.get(i) == {status} for i, status in finals.items())
    lost = sum(i not in delivered for i in finals)
    wrong = len(finals) - right - lost
    twice = sum(n > 1 for n in acked.values())
    redelivered = sum(
        sum(1 for w in lines if w[0] == "delivered" and w[1] == i) > 1 for i in delivered
    )
    started = lookups[0] if lookups else finished
    gap, at = 0.0, started
    for before, after in itertools.pairwise(lookups):
        if before >= finished:
            break
        if after - before > gap:
            gap, at = after - before, before
    under = [(kind, b, e) for kind, b, e in run.faults if b < at + gap and e > at]
    fault_length = max((e - b for _, b, e in under), default=0.0)
    kinds = collections.Counter(kind for kind, _, _ in run.faults)
    logged = [
        line
        for worker in run.workers
        if worker.log.with_suffix(".err").exists()
        for line in worker.log.with_suffix(".err").read_text().splitlines()
    ]
    outages = sum("unavailable:" in line or "refused:" in line for line in logged)
    recoveries = sum(" again after " in line for line in logged)

    print(f"soak: {environment()}")
    print(
        f"{opts.orders:,} orders settling within {opts.spread:.0f} s, seed {opts.seed}, "
        f"{REDIS_WORKERS} workers on Redis + {SQLITE_WORKERS} on SQLite, one RedisBudget; "
        f"done {finished - started:.1f} s after the first lookup\n"
    )
    print_table(["fault injected", "times"], [(kind, kinds[kind]) for kind in KINDS])
    print(f"(the workers logged {outages} outage starts and {recoveries} ends, at WARNING)\n")
    print_table(
        ["orders", "right", "wrong", "lost", "twice", "redelivered (kill -9)"],
        [(len(finals), right, wrong, lost, twice, redelivered)],
    )
    print()
    print_table(
        ["longest silence s", "fault under it", "its length s", "beyond the fault s"],
        [
            (
                gap,
                ", ".join(sorted({kind for kind, _, _ in under})) or "none",
                fault_length,
                max(0.0, gap - fault_length),
            )
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--spread", type=float, default=60.0, help="orders settle within (s)")
    parser.add_argument("--bound", type=float, default=240.0, help="give up after (s)")
    parser.add_argument("--workdir", help="keep the workers' logs here (default: a temp dir)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    parser.add_argument("--redis", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--log", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    asyncio.run(work(opts) if opts.worker else soak(opts))


if __name__ == "__main__":
    main()
