"""Test helpers shared by every test module (fixtures live in conftest.py).

Clients with fast cadences, waiting for a condition, the tasks a test left running, error
chains, and the `telegent-orders` CLI run in-process (`run_cli`) or, for the few smoke tests
that need a real process (signals, a tty, a closed pipe), as a subprocess (`run_cli_process`).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import functools
import importlib
import io
import json
import logging
import os
import pathlib
import signal
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any, cast

import attrs

import telegent_async as tg
from telegent_async._models import order_from_json
from telegent_async._request import Request, lookup_url
from telegent_async._retry import HTTPAnswer, Raise, RetryRules, Return, decide_attempt
from telegent_async.testing import FakeTelegent

# -- clients ---------------------------------------------------------------------------------

#: Retries and polls in milliseconds, so time-dependent tests stay fast.
FAST_RETRY = tg.PollPolicy(initial=0.005, factor=2.0, max_interval=0.02, jitter=1.0)
FAST_POLL = tg.PollPolicy(initial=0.01, factor=2.0, max_interval=0.04, jitter=0.2)


#: The send path's rules with no retry: a verdict on one answer is final.
_NO_RETRY = RetryRules(0, tg.PollPolicy(), 0.0)
_LOOKUP_SCOPE = "http://127.0.0.1:1/v1.0/numbers/order"


def decode_order(status: int, body: bytes, order_id: str | None = None) -> tg.Order:
    """What `get_order` makes of one answer with this status and body (no content type),
    decided as the send path decides it (`_retry.decide_attempt`): the Order, or the typed
    error raised."""
    request = Request("GET", lookup_url(_LOOKUP_SCOPE, order_id or "JNUOID-any"), _LOOKUP_SCOPE)
    verdict = decide_attempt(
        HTTPAnswer(status, {}, body),
        request,
        lambda value: order_from_json(value, order_id),
        attempt=0,
        rules=_NO_RETRY,
        can_reauthenticate=False,
        now=None,
    )
    if isinstance(verdict, Return):
        return verdict.value
    assert isinstance(verdict, Raise), verdict
    raise verdict.error


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


# -- waiting and leftovers -------------------------------------------------------------------


async def wait_until(
    condition: Callable[[], bool], timeout: float = 2.0, *, interval: float = 0.002
) -> None:
    """Yield to the loop until `condition()` holds; fail after `timeout` s.

    `interval=0` checks after every turn of the loop, to cut into a server-side event.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def per_poll(
    fake: FakeTelegent, order_id: str, statuses: Sequence[str], polls: int = 2, **options: Any
) -> AsyncIterator[None]:
    """Serve `order_id` going through `statuses`, `polls` polls each: the next status is set
    in the loop turn after the last of them arrives, before another poll can (a timer and a
    round trip later). A lifecycle in polls, not seconds, however loaded the machine."""
    fake.add_order(order_id, statuses[0], **options)

    def polled(count: int) -> Callable[[], bool]:
        return lambda: len(fake.order_requests(order_id)) >= count

    async def advance() -> None:
        for index, status in enumerate(statuses[1:], 1):
            await wait_until(polled(index * polls), 10.0, interval=0)
            fake.add_order(order_id, status, **options)

    driver = asyncio.ensure_future(advance())
    try:
        yield
    finally:
        driver.cancel()
        await asyncio.gather(driver, return_exceptions=True)


def client_tasks() -> set[asyncio.Task[Any]]:
    """Every task but the test's own and the fake server's per-connection handlers."""
    current = asyncio.current_task()
    return {
        task
        for task in asyncio.all_tasks()
        if task is not current
        and not getattr(task.get_coro(), "__qualname__", "").startswith("RequestHandler.")
    }


def chain(error: BaseException | None) -> Iterator[BaseException]:
    """The error and everything chained to it, as a traceback printer or Sentry would see."""
    seen: set[int] = set()
    link = error
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        yield link
        link = link.__cause__ or link.__context__


# -- the CLI ---------------------------------------------------------------------------------

KEY = "DID-cli-test-key"
SECRET = "cli-secret-Qz8w1"  # distinctive, so a leak into any output is found
CLI_TIMEOUT = 20.0  # seconds: a CLI run that has not finished by then has hung

#: Loopback http, and a budget high enough that pacing does not slow the tests down.
FAST = ("--insecure", "--rate", "60000")

#: `telegent-orders`'s function, taken from `python -m telegent_async` (which runs the console
#: script's `main`), so that it is found wherever the CLI's modules live.
cli_main = cast(
    "Callable[[Sequence[str] | None], int]",
    importlib.import_module("telegent_async.__main__").main,
)


@attrs.frozen
class Result:
    code: int
    out: str
    err: str

    def json_lines(self) -> dict[str, dict[str, Any]]:
        """Every stdout line parsed as JSON (fails on anything else), keyed by order_id."""
        rows = [json.loads(line) for line in self.out.splitlines()]
        return {row["order_id"]: row for row in rows}


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGENT_", "NO_COLOR"))}
    env.update(extra)
    return env


def api_env(fake: FakeTelegent) -> dict[str, str]:
    return clean_env(
        TELEGENT_BASE_URL=fake.base_url,
        TELEGENT_ACCOUNT_KEY=KEY,
        TELEGENT_ACCOUNT_SECRET=SECRET,
    )


def assert_clean(result: Result) -> None:
    """No traceback, no unclosed-session warning, and no terminal control codes off a tty."""
    assert "Traceback" not in result.err
    assert "Unclosed" not in result.err
    assert "\x1b" not in result.err + result.out


async def run_cli(
    *args: str,
    env: dict[str, str] | None = None,
    stdin: bytes | None = None,
    timeout: float = CLI_TIMEOUT,
) -> Result:
    """`telegent-orders ARGS` in this process: the entry point runs in a thread of its own (it
    runs its own event loop, while the FakeTelegent keeps serving in the test's), with `env` as
    the environment and stdin, stdout and stderr captured. Takes milliseconds, not a start-up.
    A daemon thread: a command that never ends fails its test, not the run's exit (a
    `to_thread` worker held the process, and with it the whole xdist run, at exit)."""
    out, err = io.StringIO(), io.StringIO()
    stdin_text = io.StringIO(stdin.decode() if stdin is not None else "")
    with (
        _environment(env if env is not None else clean_env()),
        _sdk_logging_restored(),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
        _replaced_stdin(stdin_text),
    ):
        try:
            code = await asyncio.wait_for(_in_daemon_thread(_exit_status, args), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"CLI did not finish within {timeout} s: {args}") from None
    return Result(code, out.getvalue(), err.getvalue())


async def _in_daemon_thread(function: Callable[[Sequence[str]], int], argv: Sequence[str]) -> int:
    loop = asyncio.get_running_loop()
    result: asyncio.Future[int] = loop.create_future()

    def run() -> None:
        try:
            outcome: Callable[[], None] = functools.partial(result.set_result, function(argv))
        except BaseException as exc:  # handed to the awaiting test
            outcome = functools.partial(result.set_exception, exc)
        with contextlib.suppress(RuntimeError):  # the test's loop is gone: nobody waits
            loop.call_soon_threadsafe(lambda: None if result.done() else outcome())

    threading.Thread(target=run, daemon=True).start()
    return await result


def _exit_status(argv: Sequence[str]) -> int:
    try:
        return cli_main(list(argv))
    except SystemExit as exc:  # argparse's usage errors and --help
        return exc.code if isinstance(exc.code, int) else int(exc.code is not None)


@contextlib.contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def _sdk_logging_restored() -> Iterator[None]:
    """The CLI points the SDK's logger at its console; give the logger back as it was."""
    logger = logging.getLogger("telegent_async")
    handlers, level, propagate = logger.handlers[:], logger.level, logger.propagate
    try:
        yield
    finally:
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate


@contextlib.contextmanager
def _replaced_stdin(stream: io.StringIO) -> Iterator[None]:
    saved = sys.stdin
    sys.stdin = stream
    try:
        yield
    finally:
        sys.stdin = saved


@contextlib.asynccontextmanager
async def process(*argv: str, **options: Any) -> AsyncIterator[asyncio.subprocess.Process]:
    """`argv` running as a subprocess (asyncio's API: the fake in this loop keeps serving),
    stdin closed; stopped by its PID with SIGKILL at the end if it is still running."""
    proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.DEVNULL, **options)
    try:
        yield proc
    finally:
        if proc.returncode is None:
            os.kill(proc.pid, signal.SIGKILL)
            await proc.wait()


@contextlib.asynccontextmanager
async def cli_process(fake: FakeTelegent, *args: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """`telegent-orders ARGS` running against `fake`, stdout and stderr piped; killed by its PID
    at the end."""
    async with process(
        sys.executable, "-m", "telegent_async", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=api_env(fake),
    ) as proc:  # fmt: skip
        yield proc


async def finish(
    proc: asyncio.subprocess.Process, timeout: float = CLI_TIMEOUT
) -> tuple[int, str, str]:
    """Wait for `proc` to end: its exit status, stdout and stderr."""
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def run_cli_process(
    *args: str,
    env: dict[str, str] | None = None,
    stdin: bytes | None = None,
    timeout: float = CLI_TIMEOUT,
) -> Result:
    """`python -m telegent_async ARGS` as a real subprocess (asyncio's API, so the fake in this
    loop keeps serving), killed by its PID if it has not finished within `timeout`."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "telegent_async",
        *args,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env if env is not None else clean_env(),
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"CLI did not finish within {timeout} s: {args}") from None
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


# -- worker processes (tests/watch_worker.py) and request logs ----------------------------------

WORKER = pathlib.Path(__file__).with_name("watch_worker.py")
ENOUGH = 30.0  # seconds: a worker that has not finished by then has hung


@contextlib.asynccontextmanager
async def worker(
    fake: FakeTelegent, db: pathlib.Path | str, ids: pathlib.Path, log: pathlib.Path, *extra: str
) -> AsyncIterator[asyncio.subprocess.Process]:
    """A worker process, stopped by its PID whatever happens."""
    env = {
        **os.environ,
        "TELEGENT_ACCOUNT_KEY": fake.account_key,
        "TELEGENT_ACCOUNT_SECRET": fake.account_secret,
    }
    async with process(
        sys.executable, str(WORKER), "--db", str(db), "--base-url", fake.base_url,
        "--ids", str(ids), "--log", str(log), *extra, env=env,
    ) as proc:  # fmt: skip
        yield proc


async def log_shows(log: pathlib.Path, word: str, count: int = 1) -> None:
    """Wait (ENOUGH at most) until `count` lines of `log` start with `word`."""

    def seen() -> int:
        text = log.read_text() if log.exists() else ""
        return sum(line.startswith(word) for line in text.splitlines())

    async def appears() -> None:
        while seen() < count:  # noqa: ASYNC110 - another process writes the log
            await asyncio.sleep(0.01)

    await asyncio.wait_for(appears(), ENOUGH)  # asyncio.timeout is 3.11+


async def ready(log: pathlib.Path) -> None:
    await log_shows(log, "ready")


def log_lines(*logs: pathlib.Path) -> list[list[str]]:
    return [line.split() for log in logs if log.exists() for line in log.read_text().splitlines()]


def write_ids(path: pathlib.Path, ids: Sequence[str]) -> pathlib.Path:
    path.write_text("\n".join(ids))
    return path


class FakeClock:
    """Time for the pure decisions and the stores: moves only when a test moves it."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def busiest_window(times: list[float], window: float) -> int:
    """The most requests any rolling `window` (half-open, as a server counts) holds."""
    times = sorted(times)
    return max((bisect.bisect_left(times, t + window) - i for i, t in enumerate(times)), default=0)
