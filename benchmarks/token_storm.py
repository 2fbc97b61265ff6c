"""Token storms: a fan-out whose token endpoint refuses or fails (issue 9, item 9).

2,000 order IDs, `wait_for_orders` on a client allowed 50 requests per minute, against a
FakeTelegent on 127.0.0.1 (in this process: what is measured is requests and waiting, not CPU):

- wrong secret: every token request is refused (`successful: false`). Reported: token
  requests sent, and the time until the fan-out yields its first outcome and its last;
- 1 s outage: for the first second every token request fails (an HTML 502 page, a JSON 503,
  an empty 200, or a refusal); the orders are all complete. Reported: token requests, and
  the time to the first settled outcome (the loop is left there).

Each phase has a hard limit (`--limit`, 90 s): a phase that reaches it prints "> limit".

    python benchmarks/token_storm.py
    python benchmarks/token_storm.py --ids 500 --limit 30    # quicker
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from _common import environment, print_table

import telegent_async as tg
from telegent_async.testing import FakeTelegent

RATE = 50.0
#: What the token endpoint answers during the outage: an HTML 502 page from a proxy, a JSON
#: 503, a 200 with an empty body (a gateway), and a refusal (`successful: false`).
OUTAGES = ("html", "503", "empty", "refused")


async def _first_and_last(stream: tg.OrderStream, *, stop_at_first_ok: bool) -> list[float]:
    """Seconds until the first outcome (or the first settled one) and, unless stopping there,
    until the last."""
    started = time.monotonic()
    marks: list[float] = []
    async for outcome in stream:
        if stop_at_first_ok and not outcome.ok:
            continue
        if not marks:
            marks.append(time.monotonic() - started)
            if stop_at_first_ok:
                break
    if not stop_at_first_ok:
        marks.append(time.monotonic() - started)
    return marks


async def _phase(ids: list[str], limit: float, **setup: Any) -> list[object]:
    fault = setup.pop("fault", None)
    async with FakeTelegent(default_status="Complete" if fault else "Pending") as fake:
        if fault is not None:
            fake.fail_tokens(fault, seconds=1.0)
        secret = setup.pop("account_secret", fake.account_secret)
        async with fake.client(requests_per_minute=RATE, account_secret=secret) as client:
            stream = client.wait_for_orders(ids, timeout=3600.0)
            try:
                marks = await asyncio.wait_for(
                    _first_and_last(stream, stop_at_first_ok=fault is not None), limit
                )
                shown = [f"{m:.2f}" for m in marks] or ["none: every outcome failed"]
            except asyncio.TimeoutError:
                shown = [f"> {limit:g}"]
            finally:
                await stream.aclose()
        return [len(fake.token_requests), len(fake.order_requests()), *shown]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ids", type=int, default=2000)
    parser.add_argument("--limit", type=float, default=90.0)
    args = parser.parse_args()
    ids = [f"JNUOID-storm-{index}" for index in range(args.ids)]
    print(environment())
    print(f"{args.ids:,} order IDs, {RATE:g} requests/min, limit {args.limit:g} s per phase\n")
    wrong = await _phase(ids, args.limit, account_secret="wrong-secret")
    print_table(
        ["wrong secret", "token requests", "order requests", "first outcome s", "last s"],
        [["refused", *wrong]],
    )
    print()
    rows = [[kind, *await _phase(ids, args.limit, fault=kind)] for kind in OUTAGES]
    print_table(["1 s token outage", "token requests", "order requests", "first settled s"], rows)


if __name__ == "__main__":
    asyncio.run(main())
