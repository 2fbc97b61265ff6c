"""`telegent-orders watch run --store redis://...`: workers on one Redis store and one shared
budget divide the work, print each outcome once, and leave nothing leased on SIGTERM."""

from __future__ import annotations

import asyncio
import collections
import json
import random
import signal
import sys
from typing import Any

import pytest
import redis.asyncio
from helpers import CLI_TIMEOUT, FAST, KEY, SECRET, cli_process, finish, run_cli

from telegent_async._stores.redis_scripts import redis_keys
from telegent_async.testing import FakeTelegent, Step

if sys.version_info >= (3, 11):
    from asyncio import timeout
else:  # pragma: no cover
    from async_timeout import timeout


async def leased(url: str, namespace: str) -> int:
    """Watches of the namespace still leased to some worker."""
    keys = redis_keys(namespace)
    client = redis.asyncio.Redis.from_url(url)
    try:
        return sum(
            [
                await client.hexists(key, "leased")
                async for key in client.scan_iter(match=keys.watch + "*", count=1000)
            ]
        )
    finally:
        await client.aclose()


async def running(proc: asyncio.subprocess.Process) -> None:
    """Until `watch run -v` logs that it is watching."""
    assert proc.stderr is not None
    async with timeout(CLI_TIMEOUT):
        while b"watching" not in await proc.stderr.readline():
            pass


@pytest.mark.slow
async def test_workers_share_a_redis_store_and_budget_and_stop_cleanly_on_sigterm(
    redis_url: str, namespace: str
) -> None:
    rng = random.Random(5)
    # Half the polls stall for 0.4 s, so that SIGTERM finds polls under way in both workers.
    async with FakeTelegent(
        account_key=KEY, account_secret=SECRET, fault_rate={"stall": 0.5}, stall_seconds=0.4
    ) as fake:
        settling = [f"JNUOID-s{n}" for n in range(30)]
        for order_id in settling:
            fake.add_order(order_id, [Step("Pending"), Step("Complete", rng.uniform(0.1, 1.0))])
        pending = [f"JNOID-p{n}" for n in range(10)]
        for order_id in pending:
            fake.add_order(order_id, "Submitted", order_type="PortIn")
        store = ("--store", redis_url, "--namespace", namespace)
        added = await run_cli("watch", "add", *store, *settling, *pending)
        assert added.code == 0 and "40 of 40 orders added" in added.err, added.err
        assert redis_url not in added.err  # a Redis URL may hold a password: never printed
        budget = ("--budget", redis_url, "--budget-name", namespace)
        command = ("watch", "run", "-v", "--json", *FAST, *store, *budget)
        async with cli_process(fake, *command) as first, cli_process(fake, *command) as second:
            for proc in (first, second):  # running (signal handler in place) before going on
                await running(proc)
            printed: collections.Counter[str] = collections.Counter()
            rows: list[dict[str, Any]] = []

            async def read(proc: asyncio.subprocess.Process) -> None:
                assert proc.stdout is not None
                while len(rows) < len(settling):
                    line = await proc.stdout.readline()
                    if not line:
                        return
                    rows.append(json.loads(line))
                    printed[rows[-1]["order_id"]] += 1

            readers = [asyncio.ensure_future(read(p)) for p in (first, second)]
            async with timeout(CLI_TIMEOUT):
                while len(rows) < len(settling):  # noqa: ASYNC110 - two pipes, one count
                    await asyncio.sleep(0.02)
            for reader in readers:
                reader.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
            async with timeout(CLI_TIMEOUT):  # stop them while polls are under way
                while not await leased(redis_url, namespace):  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
            first.send_signal(signal.SIGTERM)
            second.send_signal(signal.SIGTERM)
            results = [await finish(first), await finish(second)]
    for code, _out, err in results:
        assert code == 0 and "stopped watching" in err and "Traceback" not in err, err
    assert set(printed) == set(settling) and max(printed.values()) == 1  # each once, in all
    assert all(row["outcome"] == "completed" for row in rows)
    assert await leased(redis_url, namespace) == 0  # polls under way were given back
    assert all(fake.order_requests(order_id) for order_id in pending)
