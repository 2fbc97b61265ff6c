"""`RedisServer`: a throwaway redis-server for tests and benchmarks (`telegent_async.testing`).

Its own process on a free loopback port, nothing saved to disk (`--save '' --appendonly no`),
stopped by its PID; for tests of `RedisStore` and `RedisBudget` without a shared Redis. With
`persist=True` every write is in an append-only file synced at once, so `down()` then `up()`
(the same port) is a Redis restart that loses nothing: a real outage for fault tests.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from types import TracebackType

__all__ = ["RedisServer"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """`with RedisServer() as server: RedisStore(server.url, ...)`.

    `binary`: the redis-server to run (default: the one on PATH; `RuntimeError` if none).
    `persist`: keep the data across `down()` and `up()` (an append-only file, synced always).
    """

    def __init__(
        self, binary: str | None = None, workdir: str | None = None, *, persist: bool = False
    ) -> None:
        found = binary or shutil.which("redis-server")
        if found is None:
            raise RuntimeError("redis-server not found on PATH (apt-get install redis-server)")
        self.binary = found
        self._workdir = workdir
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self._persist = persist

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        for _ in range(5):  # the free port may be taken between probing and binding it
            self.port = free_port()
            if self._run():
                return
            self.stop()
        raise RuntimeError(f"redis-server did not start; see {self._log}")

    @property
    def _dir(self) -> str:
        if self._workdir is not None:
            return self._workdir
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="redis-")
        return self._tmp.name

    @property
    def _log(self) -> str:
        return os.path.join(self._dir, "redis.log")

    def _run(self) -> bool:
        aof = ["--appendonly", "yes", "--appendfsync", "always"] if self._persist else [
            "--appendonly", "no"]  # fmt: skip
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", *aof,
             "--dir", self._dir, "--daemonize", "no", "--logfile", self._log],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        return self._answers()

    def down(self, *, kill: bool = False) -> None:
        """Stop the server by its PID (SIGKILL with `kill`), keeping its port and data."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL if kill else signal.SIGTERM)
            proc.wait(10.0)

    def up(self) -> None:
        """Start the server again on the same port (after `down()`)."""
        give_up = time.monotonic() + 10.0
        while not self._run():  # the port may linger a moment after the last process
            self.down(kill=True)
            if time.monotonic() > give_up:
                raise RuntimeError(f"redis-server did not restart; see {self._log}")
            time.sleep(0.05)

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
        """Stop the server by its PID (SIGTERM, then SIGKILL after 5 s)."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(5.0)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
        if self._tmp is not None and self.proc is None:
            self._tmp.cleanup()
            self._tmp = None
