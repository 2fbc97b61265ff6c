"""examples/fastapi_app.py (under uvicorn) and examples/aiohttp_app.py (under aiohttp.web),
each served on 127.0.0.1 against a FakeTelegent and driven with real HTTP requests.

Skipped, with the reason printed, only when FastAPI or uvicorn is missing (the `examples`
extra; the `test` extra installs both, so CI runs these).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import sys
import time
import warnings
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from helpers import FAST_RETRY, wait_until
from web_servers import aiohttp_serving, uvicorn_serving

import telegent_async as tg
from telegent_async.testing import FakeTelegent

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SECRET = "webhook-secret-for-tests-0123456789"
#: A watcher cadence of 30 s between polls: only a webhook can make it look sooner.
EVERY_30_S = tg.PollPolicy(initial=30.0, factor=1.0, max_interval=30.0, jitter=0.0)

Serve = Callable[..., contextlib.AbstractAsyncContextManager[str]]


def _example(name: str) -> Any:
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    return importlib.import_module(name)


@pytest.fixture(params=["fastapi", "aiohttp"])
def serve(
    request: pytest.FixtureRequest, fake: FakeTelegent, tmp_path: Path
) -> Callable[..., contextlib.AbstractAsyncContextManager[str]]:
    """`async with serve(**settings) as base_url`: the example app, served for real."""
    if request.param == "fastapi":
        pytest.importorskip("fastapi", reason="FastAPI is not installed (the `examples` extra)")
        pytest.importorskip("uvicorn", reason="uvicorn is not installed (the `examples` extra)")
    web_common = _example("web_common")

    @contextlib.asynccontextmanager
    async def served(grace: float = 5.0, **overrides: Any) -> AsyncIterator[str]:
        options = {
            "base_url": fake.base_url,
            "allow_insecure": True,
            "account_key": fake.account_key,
            "account_secret": fake.account_secret,
            "requests_per_minute": None,
            "retry_policy": FAST_RETRY,
            "timeout": 2.0,
        }
        settings = web_common.Settings(
            webhook_secret=SECRET,
            store=str(tmp_path / "watches.db"),
            policy=overrides.pop("policy", EVERY_30_S),
            client_options={**options, **overrides},
        )
        if request.param == "fastapi":
            app = _example("fastapi_app").create_app(settings)
            async with uvicorn_serving(app, grace=grace) as url:
                yield url
        else:
            app = _example("aiohttp_app").create_app(settings)
            async with aiohttp_serving(app, grace=grace) as url:
                yield url

    return served


async def _get(session: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    async with session.get(url) as response:
        return response.status, await _answer(response)


async def _post(session: aiohttp.ClientSession, url: str, body: Any = None) -> tuple[int, Any]:
    async with session.post(url, json=body) as response:
        return response.status, await _answer(response)


async def _answer(response: aiohttp.ClientResponse) -> Any:
    if response.content_type == "application/json":
        return await response.json()
    return await response.text()  # a framework's own 404 page


@pytest.mark.slow  # load: 200 concurrent requests through a web app
async def test_200_concurrent_lookups_share_one_client_and_one_token(
    serve: Serve, fake: FakeTelegent
) -> None:
    ids = [f"JNUOID-web-{n}" for n in range(20)]
    for order_id in ids:
        fake.add_order(order_id, "Complete")
    async with serve() as base, aiohttp.ClientSession() as http:
        answers = await asyncio.gather(
            *(_get(http, f"{base}/orders/{ids[n % len(ids)]}") for n in range(200))
        )
        _, health = await _get(http, f"{base}/healthz")
    assert [status for status, _ in answers] == [200] * 200
    assert {body["order_id"] for _, body in answers} == set(ids)
    assert all(body["status"] == "COMPLETE" for _, body in answers)
    assert len(fake.token_requests) == 1
    assert fake.peak_connections <= 20  # one client's pool (max_connections)
    assert health["token_requests"] == 1
    assert health["requests"] == 201 and health["responses"] == {"2xx": 201}


async def test_sdk_errors_become_http_answers(serve: Serve, fake: FakeTelegent) -> None:
    fake.add_order("JNUOID-web-ok", "Complete")
    async with serve() as base, aiohttp.ClientSession() as http:
        status, body = await _get(http, f"{base}/orders/JNUOID-web-unknown")
        assert (status, body["error"]) == (404, "NotFoundError")
        fake.inject("503", count=3)  # the handler's 2 retries are not enough
        assert (await _get(http, f"{base}/orders/JNUOID-web-ok"))[0] == 503
        fake.inject("malformed", count=3)
        status, body = await _get(http, f"{base}/orders/JNUOID-web-ok")
        assert (status, body["error"]) == (502, "ResponseDecodeError")
        fake.inject("401", count=2)  # refused, a new token, refused again
        status, body = await _get(http, f"{base}/orders/JNUOID-web-ok")
        assert (status, body["error"]) == (502, "AuthenticationError")
        assert (await _get(http, f"{base}/orders/%20"))[0] == 400  # refused before sending
        assert (await _get(http, f"{base}/orders/JNUOID-web-ok"))[0] == 200
        assert (await _get(http, f"{base}/orders/JNUOID-web-ok/watch"))[0] == 404


async def test_a_webhook_settles_a_watched_order_long_before_its_next_poll(
    serve: Serve, fake: FakeTelegent
) -> None:
    order_id = "JNOID-web-hooked"
    fake.add_order(order_id, "Submitted")
    async with serve() as base, aiohttp.ClientSession() as http:
        assert await _post(http, f"{base}/orders/{order_id}/watch") == (
            202,
            {"order_id": order_id, "added": True},
        )
        for _ in range(200):  # the first poll goes out at once
            _, state = await _get(http, f"{base}/orders/{order_id}/watch")
            if state["attempts"]:
                break
            await asyncio.sleep(0.01)
        assert state["status"] == "SUBMITTED" and not state["settled"]
        fake.add_order(order_id, "Complete")  # at Telegent; the watcher would look in 30 s
        # The delivery:
        started = time.monotonic()
        status, answer = await _post(
            http,
            f"{base}/hooks/telegent/{SECRET}",
            {"Event": "Order_Update", "data": {"OrderId": order_id}},
        )
        assert (status, answer) == (200, {"woken": [order_id], "unknown": []})
        # An order the watcher does not watch is named apart, never reported woken.
        stranger = {"OrderId": "JNOID-not-watched"}
        status, answer = await _post(http, f"{base}/hooks/telegent/{SECRET}", stranger)
        assert (status, answer) == (200, {"woken": [], "unknown": ["JNOID-not-watched"]})
        _, state = await _get(http, f"{base}/orders/{order_id}/watch?wait=5")
        settled_after = time.monotonic() - started
    assert state["settled"] and state["status"] == "COMPLETE"
    assert settled_after < 1.0
    assert len(fake.order_requests(order_id)) == 2  # the first poll and the woken one


async def test_the_webhook_answers_before_the_poll_it_causes(
    serve: Serve, fake: FakeTelegent
) -> None:
    order_id = "JNOID-web-stalled"
    fake.add_order(order_id, "Submitted")
    async with serve() as base, aiohttp.ClientSession() as http:
        await _post(http, f"{base}/orders/{order_id}/watch")
        await wait_until(lambda: bool(fake.order_requests(order_id)))
        fake.inject("stall")  # the woken poll will hang for 5 s
        started = time.monotonic()
        status, _ = await _post(http, f"{base}/hooks/telegent/{SECRET}", {"OrderId": order_id})
        answered_after = time.monotonic() - started
        assert status == 200 and answered_after < 0.5
        assert (await _post(http, f"{base}/hooks/nope/{order_id}", {"OrderId": order_id}))[0] == 404


async def test_shutdown_with_waits_in_flight_leaves_nothing_behind(
    serve: Serve, fake: FakeTelegent
) -> None:
    order_id = "JNOID-web-forever"
    fake.add_order(order_id, "Pending")
    loop = asyncio.get_running_loop()
    loop_errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: loop_errors.append(context))
    tasks_before = asyncio.all_tasks()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        async with aiohttp.ClientSession() as http:
            async with serve(grace=0.1) as base:
                await _post(http, f"{base}/orders/{order_id}/watch")
                waits = [
                    asyncio.create_task(_get(http, f"{base}/orders/{order_id}/watch?wait=20"))
                    for _ in range(5)
                ]
                await asyncio.sleep(0.1)
                assert not any(wait.done() for wait in waits)
                stopping = time.monotonic()
            stopped_after = time.monotonic() - stopping
            ended = await asyncio.wait_for(asyncio.gather(*waits, return_exceptions=True), 5.0)
        gc.collect()
        await asyncio.sleep(0.05)
    assert stopped_after < 3.0
    assert all(isinstance(e, (aiohttp.ClientError, tuple)) for e in ended)
    assert asyncio.all_tasks() - tasks_before - {asyncio.current_task()} == set()
    assert fake.open_connections == 0  # the app's client closed its pool
    assert [str(w.message) for w in caught] == []
    assert loop_errors == []
    loop.set_exception_handler(None)


@pytest.mark.usefixtures("short_refusal_pauses")
async def test_healthz_says_503_while_credentials_are_refused_then_200(
    serve: Serve, fake: FakeTelegent
) -> None:
    fake.add_order("JNOID-h1", "Completed")
    fake.fail_tokens("refused", seconds=0.3)  # a wrong secret, then the right one
    async with serve() as base, aiohttp.ClientSession() as http:
        assert (await _post(http, f"{base}/orders/JNOID-h1/watch"))[0] == 202

        async def health() -> tuple[int, Any]:
            return await _get(http, f"{base}/healthz")

        give_up = time.monotonic() + 10.0
        while (answer := await health())[0] == 200:
            assert time.monotonic() < give_up, "the refusal never showed"
            await asyncio.sleep(0.02)
        status, body = answer
        assert status == 503 and body["ok"] is False
        assert body["watcher"]["credentials_ok"] is False
        assert body["watcher"]["paused_until"] is not None
        assert "credentials refused" in body["watcher"]["fault"]
        give_up = time.monotonic() + 10.0  # the pause after the first refusal is 0.2 s
        while (answer := await health())[0] != 200:
            assert time.monotonic() < give_up, answer
            await asyncio.sleep(0.05)
        assert answer[1]["watcher"]["fault"] is None and answer[1]["watcher"]["running"]
        assert answer[1]["watcher"]["last_poll_at"] is not None
