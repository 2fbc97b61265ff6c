"""A watcher holding 100,000 pending SQLite watches: its memory, and how it restarts.

Tables, all from one run, against a FakeTelegent in its own process (every order pending):

1. Memory per pending watch: a fresh process runs an `OrderWatcher` on an SQLite file holding
   100,000 pending watches (all due, polled at the standard 50 requests/min, so they stay
   pending) for a few seconds; its resident memory (RSS) while running, minus the RSS of the
   same process on a file with 0 watches, per watch. Again with `tracemalloc` (Python heap
   only, in separate processes, since tracing inflates RSS). Target <= 200 bytes.
2. Restart: a new process (`python benchmarks/watcher.py --restart-child ...`) on a file with
   100,000 overdue watches. Seconds from its start (the parent's clock just before the spawn)
   to its first request and its first poll at the fake (target <= 1 s), and the most requests
   (token included) the fake saw in any rolling 1 s and 10 s window while the process caught up,
   against what the budget allows in that window (target: never more).

    python benchmarks/watcher.py           # about 40 s
    python benchmarks/watcher.py --quick   # shorter runs
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import gc
import os
import pathlib
import subprocess
import sys
import tempfile
import time
import tracemalloc

from _common import FakeProcess, environment, print_table, rss, run_in_child

import telegent_async as tg
from telegent_async._budgets.base import window_limit
from telegent_async._stores.base import NewWatch

WATCHES = 100_000
MEMORY_TARGET_BYTES = 200.0
FIRST_POLL_TARGET_SECONDS = 1.0
STANDARD_RPM = 50.0
WINDOWS = (1.0, 10.0, 60.0)
RESTART_HEADERS = ["budget, run", "1st request s", "1st poll s", "in 1 s", "in 10 s", "in 60 s"]
RESTART_HEADERS += ["requests", "target"]


def ids(count: int) -> list[str]:
    return [f"JNOID-{n:08d}-7d3c-4e5f-9a1b-2c3d4e5f6a7b" for n in range(count)]


async def fill(path: pathlib.Path, count: int) -> None:
    store = tg.SQLiteStore(path)
    for start in range(0, count, 100_000):
        await store.add([NewWatch(i) for i in ids(min(count, start + 100_000))[start:]])
    await store.aclose()


# -- 1. memory -------------------------------------------------------------------------------


async def _watch_for(db: str, fake: dict[str, str], seconds: float) -> None:
    """Run a watcher on `db` for `seconds` at the standard budget."""
    client = tg.TelegentClient(
        base_url=fake["base_url"],
        account_key=fake["account_key"],
        account_secret=fake["account_secret"],
        allow_insecure=True,
        requests_per_minute=STANDARD_RPM,
    )
    async with client, tg.OrderWatcher(client, db):
        await asyncio.sleep(seconds)


def memory_child(db: str, fake: dict[str, str], seconds: float, traced: bool) -> int:
    """The child's memory while its watcher runs: RSS, or traced Python heap."""
    if traced:
        tracemalloc.start()
    result: list[int] = []

    async def run() -> None:
        task = asyncio.ensure_future(_watch_for(db, fake, seconds + 1.0))
        await asyncio.sleep(seconds)  # measure while the watcher is running
        gc.collect()
        result.append(tracemalloc.get_traced_memory()[0] if traced else rss())
        await task

    asyncio.run(run())
    return result[0]


def memory_table(directory: pathlib.Path, fake: FakeProcess, seconds: float) -> list[list[object]]:
    empty, full = directory / "empty.db", directory / "full.db"
    asyncio.run(fill(empty, 0))
    asyncio.run(fill(full, WATCHES))
    where = {"base_url": fake.base_url, "account_key": fake.account_key}
    where["account_secret"] = fake.account_secret
    rows: list[list[object]] = []
    for what, traced in (("RSS", False), ("tracemalloc (Python heap)", True)):
        base = run_in_child(memory_child, str(empty), where, seconds, traced)
        held = run_in_child(memory_child, str(full), where, seconds, traced)
        per_watch = (held - base) / WATCHES
        verdict = "met" if per_watch <= MEMORY_TARGET_BYTES else "MISSED"
        rows.append([what, base / 2**20, held / 2**20, per_watch, verdict])
    return rows


# -- 2. restart ------------------------------------------------------------------------------


def restart_child(opts: argparse.Namespace) -> None:
    """The new process: a watcher on the file, for `--seconds`, then out."""
    client = tg.TelegentClient(
        base_url=opts.base_url,
        account_key=os.environ["TELEGENT_ACCOUNT_KEY"],
        account_secret=os.environ["TELEGENT_ACCOUNT_SECRET"],
        allow_insecure=True,
        requests_per_minute=opts.rpm,
    )

    async def run() -> None:
        async with client, tg.OrderWatcher(client, opts.db):
            await asyncio.sleep(opts.seconds)

    asyncio.run(run())


def most_in_window(times: list[float], window: float) -> int:
    return max((bisect.bisect_left(times, t + window) - i for i, t in enumerate(times)), default=0)


def restart_row(
    directory: pathlib.Path, fake: FakeProcess, rpm: float, seconds: float
) -> list[object]:
    """One restart at budget `rpm`: a fresh file of overdue watches, a new process on it."""
    db = directory / f"restart-{rpm:g}.db"
    asyncio.run(fill(db, WATCHES))
    fake.clear()
    env = {
        **os.environ,
        "TELEGENT_ACCOUNT_KEY": fake.account_key,
        "TELEGENT_ACCOUNT_SECRET": fake.account_secret,
    }
    command = [sys.executable, __file__, "--restart-child", "--db", str(db)]
    command += ["--base-url", fake.base_url, "--rpm", str(rpm), "--seconds", str(seconds)]
    started = time.monotonic()
    proc = subprocess.Popen(command, env=env)
    try:
        proc.wait(timeout=seconds + 30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    requests = fake.request_times()
    times = sorted(at for _, at in requests)
    first_poll = min(at for method, at in requests if method == "GET") - started
    row: list[object] = [f"{rpm:g}/min, {seconds:g} s", times[0] - started, first_poll]
    over = first_poll > FIRST_POLL_TARGET_SECONDS
    for window in WINDOWS:
        # The budget's promise: no rolling 60 s window (so none shorter) above the limit.
        allowed = window_limit(rpm, 60.0)
        most = most_in_window(times, window)
        over = over or most > allowed
        row.append(f"{most} / {allowed:.4g}")
    row += [len(times), "MISSED" if over else "met"]
    return row


def section(title: str, headers: list[str], rows: list[list[object]]) -> None:
    print(f"\n{title}\n")
    print_table(headers, rows)


def main(opts: argparse.Namespace) -> None:
    print(f"OrderWatcher on SQLite, {WATCHES:,} pending watches ({environment()})")
    with tempfile.TemporaryDirectory() as tmp, FakeProcess(default_status="Submitted") as fake:
        directory = pathlib.Path(tmp)
        section(
            f"1. Memory of a running watcher per pending watch, {opts.seconds:g} s in, "
            f"vs the same process on an empty file (target <= {MEMORY_TARGET_BYTES:g} B)",
            ["measure", "0 watches MiB", f"{WATCHES:,} MiB", "bytes/watch", "target"],
            memory_table(directory, fake, opts.seconds),
        )
        section(
            f"2. Restart: a new process on a file with {WATCHES:,} overdue watches; seconds "
            f"from spawn (target: first poll <= {FIRST_POLL_TARGET_SECONDS:g} s), most requests "
            "in any rolling window / what the budget allows there",
            RESTART_HEADERS,
            [
                restart_row(directory, fake, rpm, opts.restart_seconds)
                for rpm in (STANDARD_RPM, opts.rpm)
            ],
        )


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="run before measuring memory")
    parser.add_argument("--rpm", type=float, default=600.0, help="budget of the restart")
    parser.add_argument("--restart-seconds", type=float, default=15.0)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--restart-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.restart_child:
        restart_child(opts)
        return
    if opts.quick:
        opts.seconds, opts.restart_seconds = 1.5, 6.0
    main(opts)


if __name__ == "__main__":
    cli()
