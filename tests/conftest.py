"""Shared fixtures: a FakeTelegent on 127.0.0.1 and clients bound to it with fast cadences."""

from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

import telegent_async as tg
from telegent_async.testing import FakeTelegent

#: Retries and polls in milliseconds, so time-dependent tests stay fast.
FAST_RETRY = tg.PollPolicy(initial=0.005, factor=2.0, max_interval=0.02, jitter=1.0)
FAST_POLL = tg.PollPolicy(initial=0.01, factor=2.0, max_interval=0.04, jitter=0.2)


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegent]:
    async with FakeTelegent() as server:
        yield server


def fast_client(server: FakeTelegent, **overrides: Any) -> tg.TelegentClient:
    """A client of `server` with no budget, quick retries and a short attempt timeout."""
    options: dict[str, Any] = {
        "requests_per_minute": None,
        "retry_policy": FAST_RETRY,
        "timeout": 2.0,
    }
    options.update(overrides)
    if "budget" in overrides:
        del options["requests_per_minute"]
    return server.client(**options)


def spaced(requests_per_minute: float) -> tg.LocalBudget:
    """A budget of one request per window of 60 / rpm seconds: evenly spaced requests, the
    shape the timing tests of fairness, phantom slots and token pacing measure."""
    return tg.LocalBudget(requests_per_minute, window=60.0 / requests_per_minute)


@pytest.fixture
async def client(fake: FakeTelegent) -> AsyncIterator[tg.TelegentClient]:
    async with fast_client(fake) as c:
        yield c


# -- Redis -----------------------------------------------------------------------------------


class RedisServer:
    """A redis-server of our own on a free loopback port, without persistence; stopped by PID."""

    def __init__(self, workdir: pathlib.Path) -> None:
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, binary: str) -> None:
        for _ in range(5):  # the free port may be taken between probing and binding it
            self.port = free_port()
            self.proc = subprocess.Popen(
                [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", str(self.workdir), "--daemonize", "no",
                 "--logfile", str(self.workdir / "redis.log")],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            if self._answers():
                return
            self.stop()
        raise RuntimeError(f"redis-server did not start; see {self.workdir / 'redis.log'}")

    def _answers(self) -> bool:
        give_up = time.monotonic() + 10.0
        while time.monotonic() < give_up:
            assert self.proc is not None
            if self.proc.poll() is not None:
                return False
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock,
            ):
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return True
            time.sleep(0.02)
        return False

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(5.0)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the session; without the binary (or redis-py) Redis tests skip."""
    pytest.importorskip("redis", reason="redis-py is not installed: pip install -e '.[test]'")
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server not found on PATH: apt-get install redis-server (or brew)")
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    try:
        server.start(binary)
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture
def namespace() -> str:
    """A namespace of its own per test, so tests sharing the server never see each other."""
    return f"test-{uuid.uuid4().hex[:12]}"
