"""What durable watches cost: SQLite beside memory, per add, per poll, and at 1,000,000 watches.

Tables, all from one run:

1. `add_many` of 100,000 IDs (one transaction): seconds and database size. Target <= 2 s.
2. Store overhead per poll, the store calls alone: claim 20 due watches, record 20 answers
   (a pending order, next poll in an hour), repeated; CPU microseconds per poll
   (`time.process_time`) on a store holding 100,000 watches. Target: SQLite <= 50 us.
3. The same overhead end to end: an `OrderWatcher` polling 2,000 pending orders as fast as it
   can against a FakeTelegent in its own process (its CPU is not counted); CPU microseconds
   of this process per poll, memory store vs SQLite store. The difference is the store's cost.
4. 1,000,000 watches in one SQLite file: add time, file size, and claim + record latency at
   that size (median and p99 of 20-watch batches).

    python benchmarks/store.py            # about a minute
    python benchmarks/store.py --quick    # 100,000 instead of 1,000,000 watches in table 4
"""

from __future__ import annotations

import argparse
import asyncio
import pathlib
import statistics
import tempfile
import time

from _common import FakeProcess, environment, print_table

import telegent_async as tg
from telegent_async._models import converter
from telegent_async._stores.base import NewWatch, PendingAnswer, WatchStore

ADD_TARGET_SECONDS = 2.0
POLL_TARGET_US = 50.0
BATCH = 20  # a client's default max_connections: what one claim asks for
PENDING = converter.structure(
    {"OrderId": "JNOID-x", "OrderStatus": "Submitted", "OrderType": "PortIn"}, tg.Order
)
FLAT_OUT = tg.PollPolicy(initial=0.001, factor=1.0, max_interval=0.001, jitter=0.0)


def ids(count: int, prefix: str = "JNOID") -> list[str]:
    return [f"{prefix}-{n:08d}-7d3c-4e5f-9a1b-2c3d4e5f6a7b" for n in range(count)]


def db_size(path: pathlib.Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


async def timed_add(store: WatchStore, order_ids: list[str]) -> float:
    watches = [NewWatch(order_id) for order_id in order_ids]
    started = time.perf_counter()
    await store.add(watches)
    return time.perf_counter() - started


async def add_table(directory: pathlib.Path) -> list[list[object]]:
    rows: list[list[object]] = []
    order_ids = ids(100_000)
    for name, make in (
        ("memory", lambda: tg.MemoryStore()),
        ("sqlite", lambda: tg.SQLiteStore(directory / "add.db")),
    ):
        store = make()
        seconds = await timed_add(store, order_ids)
        await store.aclose()
        size = db_size(directory / "add.db") / 2**20 if name == "sqlite" else "-"
        rows.append([name, seconds, size, "met" if seconds <= ADD_TARGET_SECONDS else "MISSED"])
    return rows


async def claim_record_us(store: WatchStore, polls: int) -> list[float]:
    """CPU microseconds per poll for each batch of claim(20) + record(20)."""
    per_poll: list[float] = []
    done = 0
    while done < polls:
        started = time.process_time()
        claims = await store.claim(BATCH, 60.0, "bench")
        if not claims:
            raise RuntimeError("nothing due: add more watches")
        now = await store.now()
        await store.record([PendingAnswer(claim, now + 3600.0, PENDING) for claim in claims])
        per_poll.append((time.process_time() - started) * 1e6 / len(claims))
        done += len(claims)
    return per_poll


async def poll_table(directory: pathlib.Path, polls: int) -> list[list[object]]:
    rows: list[list[object]] = []
    baseline = None
    for name, make in (
        ("memory", lambda: tg.MemoryStore()),
        ("sqlite", lambda: tg.SQLiteStore(directory / "polls.db")),
    ):
        store: WatchStore = make()
        await store.add([NewWatch(order_id) for order_id in ids(100_000)])
        samples = await claim_record_us(store, polls)
        await store.aclose()
        mean = statistics.fmean(samples)
        baseline = baseline or mean
        verdict = "met" if mean <= POLL_TARGET_US else "MISSED"
        rows.append([name, mean, statistics.median(samples), mean / baseline, verdict])
    return rows


async def watcher_cpu_per_poll(
    fake: FakeProcess, store: tg.MemoryStore | str, seconds: float
) -> tuple[float, int]:
    async with (
        fake.client(requests_per_minute=None, max_connections=BATCH) as client,
        tg.OrderWatcher(client, store, policy=FLAT_OUT) as watcher,
    ):
        await watcher.add_many(ids(2_000))
        await asyncio.sleep(0.5)  # warm: token, connections, first round
        before = sum(fake.status_counts().values())
        cpu = time.process_time()
        await asyncio.sleep(seconds)
        cpu = time.process_time() - cpu
        polls = sum(fake.status_counts().values()) - before
    return cpu * 1e6 / polls, polls


async def end_to_end_table(directory: pathlib.Path, seconds: float) -> list[list[object]]:
    rows: list[list[object]] = []
    with FakeProcess(default_status="Submitted", record=False) as fake:
        memory_us, memory_polls = await watcher_cpu_per_poll(fake, tg.MemoryStore(), seconds)
        sqlite_us, sqlite_polls = await watcher_cpu_per_poll(
            fake, str(directory / "watcher.db"), seconds
        )
    rows.append(["OrderWatcher + MemoryStore", memory_polls, memory_us, "-"])
    overhead = sqlite_us - memory_us
    verdict = "met" if overhead <= POLL_TARGET_US else "MISSED"
    rows.append(
        ["OrderWatcher + SQLiteStore", sqlite_polls, sqlite_us, f"{overhead:.1f} {verdict}"]
    )
    return rows


async def million_table(directory: pathlib.Path, count: int) -> list[list[object]]:
    path = directory / "million.db"
    store = tg.SQLiteStore(path)
    all_ids = ids(count)
    step = 100_000
    seconds = 0.0
    for start in range(0, count, step):
        seconds += await timed_add(store, all_ids[start : start + step])
    await store.aclose()
    size = db_size(path)
    store = tg.SQLiteStore(path)
    wall: list[float] = []
    for _ in range(500):
        started = time.perf_counter()
        claims = await store.claim(BATCH, 60.0, "bench")
        now = await store.now()
        await store.record([PendingAnswer(claim, now + 3600.0, PENDING) for claim in claims])
        wall.append((time.perf_counter() - started) * 1e3)
    await store.aclose()
    wall.sort()
    return [
        [
            f"{count:,} watches",
            seconds,
            size / 2**20,
            size / count,
            statistics.median(wall),
            wall[int(len(wall) * 0.99)],
        ]
    ]


def section(title: str, headers: list[str], rows: list[list[object]]) -> None:
    print(f"\n{title}\n")
    print_table(headers, rows)


async def main(opts: argparse.Namespace) -> None:
    print(f"Watch stores ({environment()})")
    with tempfile.TemporaryDirectory() as tmp:
        directory = pathlib.Path(tmp)
        section(
            f"1. add_many of 100,000 IDs, one transaction (target <= {ADD_TARGET_SECONDS:g} s)",
            ["store", "seconds", "db MiB", "target"],
            await add_table(directory),
        )
        section(
            f"2. claim + record per poll, store calls alone, 100,000 watches, batches of "
            f"{BATCH} (target SQLite <= {POLL_TARGET_US:g} us)",
            ["store", "CPU us/poll", "median us/poll", "x memory", "target"],
            await poll_table(directory, opts.polls),
        )
        section(
            f"3. OrderWatcher polling 2,000 pending orders flat out for {opts.seconds:g} s "
            "against a FakeTelegent in another process",
            ["design", "polls", "CPU us/poll", "SQLite overhead us/poll"],
            await end_to_end_table(directory, opts.seconds),
        )
        section(
            "4. One SQLite file at scale: claim 20 + record 20 (wall ms per batch)",
            ["file", "add s", "file MiB", "bytes/watch", "median ms", "p99 ms"],
            await million_table(directory, opts.watches),
        )


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--polls", type=int, default=40_000, help="polls in table 2")
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per row, table 3")
    parser.add_argument("--watches", type=int, default=1_000_000, help="watches in table 4")
    parser.add_argument("--quick", action="store_true", help="100,000 watches in table 4")
    opts = parser.parse_args()
    if opts.quick:
        opts.watches, opts.polls, opts.seconds = 100_000, 10_000, 1.5
    asyncio.run(main(opts))


if __name__ == "__main__":
    cli()
