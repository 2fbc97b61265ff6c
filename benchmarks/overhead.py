"""What does the SDK cost per lookup, beside the HTTP clients it could have been written on?

One run, several interleaved rounds: in each, N order lookups at concurrency C by
(a) raw aiohttp (`session.get` + `json()`), (b) httpx `AsyncClient` (`get` + `json()`) and
(c) `TelegentClient.get_order` (every feature on: a window budget, whose limit this load never
reaches, counters, requester tracking, telemetry hooks), all against one loopback order
server in its own process (`order_server.py`), each with a pool of C keep-alive connections.
Reported as medians over the rounds: lookups per second, client CPU microseconds per lookup
(`time.process_time` of this process: the server's CPU is not counted) and both as a ratio
to raw aiohttp. The server's own CPU per lookup is shown so a server-bound run is visible.

    python benchmarks/overhead.py            # defaults: N=10000, C=64, 5 rounds (about 35 s)
    python benchmarks/overhead.py --quick    # N=2000, 3 rounds (about 8 s)
    python benchmarks/overhead.py --extras   # then raw aiohttp and the SDK again, under
                                             # uvloop, and with orjson decoding the answers

`--extras` (needs `pip install uvloop orjson`) measures what they would give, in the same
run and against the same server, each as a table of its own beside raw aiohttp: the SDK
does not use either by itself (the default, pure-Python path is what the target applies
to). For the orjson table the SDK's JSON decoding (`_answers._json_body`) is swapped for
`orjson.loads` while it runs; raw aiohttp is the same code in every table.

A run stops early after `--max-seconds` (httpx's pool is quadratic in its connection count,
encode/httpcore#1035, and would otherwise take minutes at C=64); the table says so.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from typing import Any

import aiohttp
import httpx
import psutil
from order_server import API_ROOT, ORDER_SUFFIX, PROVISION_ORDER, TOKEN, running_server

import telegent_async as tg

#: One lookup: an order ID in, the order ID the server answered out (checked every time).
Fetch = Callable[[str], Awaitable[str]]
#: A contender: given the base URL and C, an async context that yields its `Fetch`.
Contender = Callable[[str, int], contextlib.AbstractAsyncContextManager[Fetch]]

AUTH = {"Authorization": "Bearer " + TOKEN}
#: A rolling-window budget far above what a loopback run can send (about 10,000 lookups/s).
UNREACHED_RATE = 60 * 10_000_000.0


@contextlib.asynccontextmanager
async def raw_aiohttp(base_url: str, concurrency: int) -> AsyncIterator[Fetch]:
    """What a user would write with aiohttp alone: no validation, retries or typed result."""
    url = base_url + ORDER_SUFFIX
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def fetch(order_id: str) -> str:
            async with session.get(url, params={"OrderId": order_id}, headers=AUTH) as resp:
                if resp.status != 200:
                    raise RuntimeError(f"HTTP {resp.status}")
                data = await resp.json()
            return str(data["OrderId"])

        yield fetch


@contextlib.asynccontextmanager
async def raw_httpx(base_url: str, concurrency: int) -> AsyncIterator[Fetch]:
    """The same with httpx."""
    url = base_url + ORDER_SUFFIX
    limits = httpx.Limits(
        max_connections=concurrency, max_keepalive_connections=concurrency, keepalive_expiry=60
    )
    async with httpx.AsyncClient(limits=limits, timeout=30.0) as client:

        async def fetch(order_id: str) -> str:
            resp = await client.get(url, params={"OrderId": order_id}, headers=AUTH)
            if resp.status_code != 200:
                raise RuntimeError(f"HTTP {resp.status_code}")
            return str(resp.json()["OrderId"])

        yield fetch


@contextlib.asynccontextmanager
async def sdk(base_url: str, concurrency: int) -> AsyncIterator[Fetch]:
    """`TelegentClient.get_order`: validation, auth, budget, retries and a decoded `Order`."""
    async with tg.TelegentClient(
        token=TOKEN,
        base_url=base_url,
        allow_insecure=True,
        requests_per_minute=UNREACHED_RATE,  # the window budget works, never holds one back
        max_connections=concurrency,
    ) as client:

        async def fetch(order_id: str) -> str:
            return (await client.get_order(order_id)).order_id

        yield fetch


CONTENDERS: dict[str, Contender] = {
    "raw aiohttp": raw_aiohttp,
    "httpx AsyncClient": raw_httpx,
    "TelegentClient.get_order": sdk,
}
BASELINE = "raw aiohttp"


async def drive(
    fetch: Fetch, order_ids: Iterable[str], concurrency: int, seconds: float = math.inf
) -> int:
    """Look IDs up with `concurrency` workers pulling from one queue, stopping at the end of
    the IDs or after `seconds` (a slow contender must not stretch the run); return the count.
    """
    pending: Iterator[str] = iter(order_ids)
    deadline = time.perf_counter() + seconds
    done = 0

    async def worker() -> None:
        nonlocal done
        for order_id in pending:
            answered = await fetch(order_id)
            if answered != PROVISION_ORDER["OrderId"]:
                raise RuntimeError(f"unexpected answer {answered!r}")
            done += 1
            if time.perf_counter() > deadline:
                return

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done


class Sample:
    """One timed run of one contender: wall time, client CPU, server CPU."""

    def __init__(self, requests: int, wall: float, cpu: float, server_cpu: float) -> None:
        self.requests = requests
        self.rps = requests / wall
        self.cpu_us = cpu / requests * 1e6
        self.server_cpu_us = server_cpu / requests * 1e6


async def timed(
    fetch: Fetch, order_ids: list[str], concurrency: int, seconds: float, server: psutil.Process
) -> Sample:
    await drive(fetch, order_ids[: 2 * concurrency], concurrency)  # warm the pool, untimed
    server_before = sum(server.cpu_times()[:2])
    cpu0, wall0 = time.process_time(), time.perf_counter()
    count = await drive(fetch, order_ids, concurrency, seconds)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return Sample(count, wall, cpu, sum(server.cpu_times()[:2]) - server_before)


async def run(
    opts: argparse.Namespace, port: int, server_pid: int, names: Sequence[str] = tuple(CONTENDERS)
) -> dict[str, list[Sample]]:
    base_url = f"http://127.0.0.1:{port}{API_ROOT}"
    # The server answers one fixed order (it does as little as a server can), and the SDK
    # refuses an answer about another order than the one asked for: every lookup asks for it.
    order_ids = [str(PROVISION_ORDER["OrderId"])] * opts.requests
    server = psutil.Process(server_pid)
    samples: dict[str, list[Sample]] = {name: [] for name in names}
    async with contextlib.AsyncExitStack() as stack:
        fetchers = {
            name: await stack.enter_async_context(CONTENDERS[name](base_url, opts.concurrency))
            for name in names
        }
        for round_no in range(opts.rounds):
            # Rotate who goes first, so no contender always runs on a freshly idle machine.
            order = [*names[round_no % len(names) :], *names[: round_no % len(names)]]
            for name in order:
                sample = await timed(
                    fetchers[name], order_ids, opts.concurrency, opts.max_seconds, server
                )
                samples[name].append(sample)
                print(
                    f"  round {round_no + 1}/{opts.rounds} {name:<26} {sample.rps:>9,.0f} req/s "
                    f"{sample.cpu_us:>8.1f} us CPU/req ({sample.requests} lookups)",
                    file=sys.stderr,
                )
    return samples


def report(
    samples: dict[str, list[Sample]], opts: argparse.Namespace, cpus: list[int] | None
) -> None:
    def median(name: str, field: str) -> float:
        return float(statistics.median(getattr(s, field) for s in samples[name]))

    base_rps, base_cpu = median(BASELINE, "rps"), median(BASELINE, "cpu_us")
    print(
        f"N={opts.requests} lookups x {opts.rounds} rounds, concurrency C={opts.concurrency}, "
        f"pool {opts.concurrency} keep-alive connections; medians. "
        f"Python {platform.python_version()}, aiohttp {aiohttp.__version__}, "
        f"httpx {httpx.__version__}; {os.cpu_count()} CPUs"
        + (f", client on CPU {cpus[0]}, server on CPU {cpus[1]}" if cpus else ", not pinned")
    )
    header = (
        f"{'client':<26} {'req/s':>9} {'CPU us/req':>11} {'req/s ratio':>12} "
        f"{'CPU ratio':>10} {'server us/req':>14}"
    )
    print(header)
    print("-" * len(header))
    capped = []
    for name in samples:
        rps, cpu = median(name, "rps"), median(name, "cpu_us")
        print(
            f"{name:<26} {rps:>9,.0f} {cpu:>11.1f} {rps / base_rps:>11.2f}x "
            f"{cpu / base_cpu:>9.2f}x {median(name, 'server_cpu_us'):>14.1f}"
        )
        if any(s.requests < opts.requests for s in samples[name]):
            capped.append(f"{name} (median {median(name, 'requests'):.0f} lookups)")
    if capped:
        print(f"stopped at the {opts.max_seconds:g} s cap per run: " + ", ".join(capped))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=None, help="lookups per run (10000)")
    parser.add_argument("--concurrency", type=int, default=64, help="C (64)")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (5)")
    parser.add_argument("--quick", action="store_true", help="N=2000, 3 rounds, 1 s cap")
    parser.add_argument(
        "--max-seconds", type=float, default=None, help="cap on one timed run (3 s; httpx)"
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin client and server")
    parser.add_argument(
        "--extras", action="store_true", help="then under uvloop, and with orjson (if installed)"
    )
    opts = parser.parse_args(argv)
    if opts.requests is None:
        opts.requests = 2000 if opts.quick else 10_000
    if opts.rounds is None:
        opts.rounds = 3 if opts.quick else 5
    if opts.max_seconds is None:
        opts.max_seconds = 1.0 if opts.quick else 3.0
    if opts.requests < 1 or opts.concurrency < 1 or opts.rounds < 1:
        parser.error("--requests, --concurrency and --rounds must be >= 1")
    return opts


def extras(opts: argparse.Namespace, port: int, pid: int, cpus: list[int] | None) -> None:
    """The same rounds, raw aiohttp and the SDK only, under uvloop and with orjson."""
    import importlib
    import importlib.util

    from telegent_async import _answers

    names = (BASELINE, "TelegentClient.get_order")
    if importlib.util.find_spec("uvloop"):
        uvloop: Any = importlib.import_module("uvloop")  # optional: no stubs needed
        print("\nUnder uvloop (both clients):")
        report(uvloop.run(run(opts, port, pid, names)), opts, cpus)
    else:
        print("\nuvloop is not installed: no uvloop table")
    if importlib.util.find_spec("orjson"):
        orjson: Any = importlib.import_module("orjson")  # optional: no stubs needed
        plain = _answers._json_body
        _answers._json_body = orjson.loads
        try:
            print("\nThe SDK decoding answers with orjson.loads (raw aiohttp unchanged):")
            report(asyncio.run(run(opts, port, pid, names)), opts, cpus)
        finally:
            _answers._json_body = plain
    else:
        print("\norjson is not installed: no orjson table")


def main(argv: list[str] | None = None) -> None:
    opts = parse_args(argv)
    # Client and server each get a core of their own, so neither steals the other's CPU.
    cpus = None
    if not opts.no_pin and hasattr(os, "sched_setaffinity"):
        allowed = sorted(os.sched_getaffinity(0))
        cpus = allowed[:2] if len(allowed) >= 2 else None
    with running_server(cpu=cpus[1] if cpus else None) as (port, pid):
        if cpus:
            os.sched_setaffinity(0, {cpus[0]})
        samples = asyncio.run(run(opts, port, pid))
        report(samples, opts, cpus)
        if opts.extras:
            extras(opts, port, pid, cpus)


if __name__ == "__main__":
    main()
