"""What does turning a body into an `Order` cost, beyond `json.loads`?

Times the decode of a lookup's 2xx answer as the send path reads it (bytes -> `Order`, with
its `CarrierError` when the order failed: `_answers.read_answer`, then
`_models.order_from_json`) beside `json.loads` alone, for a settled provision order and a
port-in the carrier rejected with RCODE 8A, in CPU microseconds per order (best of several
timeit repeats, the usual way to read a micro-benchmark on a machine that does other things).
A second table splits the decode into its parts, so a regression points at its cause.

    python benchmarks/decode.py
    python benchmarks/decode.py --quick
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import time
import timeit
from collections.abc import Callable
from typing import Any

from order_server import FAILED_PORT_IN, PROVISION_ORDER

import telegent_async as tg
from telegent_async import _answers, _models, _timing

#: Sample orders: (label, JSON object, what the decoded order must say).
SAMPLES: list[tuple[str, dict[str, Any], tg.OrderStatus, str | None]] = [
    ("provision (Complete)", PROVISION_ORDER, tg.OrderStatus.COMPLETE, None),
    ("failed port-in (8A)", FAILED_PORT_IN, tg.OrderStatus.ERROR, "8A"),
]


def decode_order(body: bytes, order_id: str) -> tg.Order:
    """bytes -> `Order` as a lookup's answer is read (what `decide_attempt` calls on a 2xx)."""
    return _models.order_from_json(_answers.read_answer(200, "application/json", body), order_id)


def per_call_us(func: Callable[[], object], repeat: int, min_seconds: float) -> float:
    """Best-of-`repeat` CPU microseconds per call, each repeat running for about `min_seconds`.

    CPU time of this process, not wall time, so another process on the core does not count.
    """
    timer = timeit.Timer(func, timer=time.process_time)
    elapsed = timer.timeit(number=1000)  # calibrate: about 1 ms for a 1 us call
    loops = max(1, int(1000 * min_seconds / max(elapsed, 1e-9)))
    return min(timer.repeat(repeat=repeat, number=loops)) / loops * 1e6


def part_costs(obj: dict[str, Any], repeat: int, seconds: float) -> dict[str, float]:
    """Microseconds per call of each step the decode takes for this order (0: not taken)."""
    status, date, message = obj["OrderStatus"], obj["OrderDate"], obj.get("OrderStatusMessage")
    return {
        "parse_status": per_call_us(lambda: _models.parse_status(status), repeat, seconds),
        "parse_timestamp": per_call_us(lambda: _timing.parse_timestamp(date), repeat, seconds),
        "decode_carrier_message": per_call_us(
            lambda: tg.decode_carrier_message(message), repeat, seconds
        )
        if message
        else 0.0,
    }


def check(body: bytes, order_id: str, status: tg.OrderStatus, code: str | None) -> None:
    """Refuse to time a decoder that gets the answer wrong."""
    order = decode_order(body, order_id)
    if order.status is not status:
        raise SystemExit(f"decode_order gave {order.status}, expected {status}")
    found = order.carrier_error.code if order.carrier_error is not None else None
    if found != code:
        raise SystemExit(f"decode_order gave carrier code {found!r}, expected {code!r}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer, shorter repeats")
    opts = parser.parse_args(argv)
    repeat, seconds = (3, 0.03) if opts.quick else (5, 0.1)

    print(f"Python {platform.python_version()}; CPU us per order, best of {repeat} repeats")
    header = f"{'order':<22} {'bytes':>6} {'json.loads':>11} {'decode_order':>13} {'beyond':>8}"
    print(header)
    print("-" * len(header))
    parts: list[tuple[str, dict[str, float]]] = []
    for label, obj, status, code in SAMPLES:
        body = json.dumps(obj).encode()
        order_id = str(obj["OrderId"])
        check(body, order_id, status, code)
        loads = per_call_us(functools.partial(json.loads, body), repeat, seconds)
        decode = per_call_us(functools.partial(decode_order, body, order_id), repeat, seconds)
        print(f"{label:<22} {len(body):>6} {loads:>11.2f} {decode:>13.2f} {decode - loads:>8.2f}")
        parts.append((label, part_costs(obj, repeat, seconds)))

    print()
    print("parts of the decode (us per call; 0 = not called for this order)")
    names = list(parts[0][1])
    header = f"{'order':<22} " + " ".join(f"{name:>22}" for name in names)
    print(header)
    print("-" * len(header))
    for label, costs in parts:
        print(f"{label:<22} " + " ".join(f"{costs[name]:>22.2f}" for name in names))


if __name__ == "__main__":
    main()
