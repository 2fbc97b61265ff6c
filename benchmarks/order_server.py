"""A minimal loopback order server for the benchmarks, run in its own process.

It answers `GET /v1.0/numbers/order` with one fixed order body after checking the bearer
token, and nothing else: the point is to measure the client, so the server does as little as
an HTTP server can. Run `python benchmarks/order_server.py --port 0`; it prints
`PORT <n>` on stdout once it listens. `running_server()` starts and stops it from a benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aiohttp import web

#: The bearer token every benchmark client sends; any other gets a 401.
TOKEN = "bench-token-0123456789"
#: The API root (what a client's base URL ends with) and the order lookup under it.
API_ROOT = "/v1.0"
ORDER_SUFFIX = "/numbers/order"
ORDER_PATH = API_ROOT + ORDER_SUFFIX

#: A settled provision order, with the fields the Order ID Details page shows.
PROVISION_ORDER: dict[str, Any] = {
    "OrderId": "JNUOID-7c2b3f0e-3d5a-4f4e-9a57-2f1c0d9e8b61",
    "OrderDate": "2025-10-29T12:36:19.338438+00:00",
    "OrderStatus": "Complete",
    "OrderStatusMessage": None,
    "OrderType": "Provision",
    "PhoneNumbersOrdered": [{"Number": "+12815703894"}],
    "PhoneNumberAssigned": "+12815703894",
    "PhoneNumberId": "NID-5b0c6a8e-1f4d-4c1e-8a31-6e2f9d7c4b10",
    "QRCode": "LPA:1$smdp.example.com$A1B2-C3D4-E5F6",
    "ZipCode": "77002",
    "ICCID": "8901260123456789012",
    "ErrorMessage": None,
    "SubscriberId": "TSUID-3e8f1a2b-4c5d-4e6f-8a9b-0c1d2e3f4a5b",
}

#: A port-in the losing carrier rejected for a wrong account number (RCODE 8A).
FAILED_PORT_IN: dict[str, Any] = {
    "OrderId": "JNOID-0f6e2d4c-8b1a-4e3f-9c7d-5a2b1e0d9c8f",
    "OrderDate": "2025-05-14T18:00:00.0000000+00:00",
    "OrderStatus": "Failed",
    "OrderStatusMessage": "8A-ACCOUNT_NUM_REQ_OR_INCORRECT",
    "OrderType": "PortIn",
    "PhoneNumbersOrdered": [{"Number": "+17135550123"}, {"Number": "+17135550124"}],
}


def make_app(body: bytes, token: str = TOKEN) -> web.Application:
    """The app: one route, a token check, and a body encoded once at start-up."""
    expected = "Bearer " + token

    async def order(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != expected:
            return web.json_response({"StatusCode": 401, "Message": "bad token"}, status=401)
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get(ORDER_PATH, order)
    return app


async def _serve(port: int, cpu: int | None) -> None:
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    runner = web.AppRunner(make_app(json.dumps(PROVISION_ORDER).encode()), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=1024)
    await site.start()
    server = site._server  # aiohttp exposes the bound port only here
    assert isinstance(server, asyncio.base_events.Server)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


@contextlib.contextmanager
def running_server(cpu: int | None = None) -> Iterator[tuple[int, int]]:
    """Start the server in a child process (pinned to `cpu` if given); yield (port, pid)."""
    args = [sys.executable, str(Path(__file__).resolve()), "--port", "0"]
    if cpu is not None:
        args += ["--cpu", str(cpu)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"order server did not start (said {line!r})")
        yield int(line.split()[1]), proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--cpu", type=int, default=None, help="pin the server to this CPU")
    opts = parser.parse_args()
    asyncio.run(_serve(opts.port, opts.cpu))


if __name__ == "__main__":
    main()
