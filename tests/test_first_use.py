"""Issue 23, points 1 and 2: what a new user got wrong is refused before any request, and
errors say what is wrong (the library; the command's side is in test_first_use_cli.py)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from helpers import fast_client

import telegent_async as tg
from telegent_async import _error_text
from telegent_async._config import credentials_from, insecure_allowed
from telegent_async._timing import deadline_at
from telegent_async.testing import FakeTelegent
from telegent_async.testing._redis_server import free_port

pytestmark = pytest.mark.usefixtures("no_telegent_env")


# -- 1. bad input, refused by name ------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "named"),
    [
        ({"account_key": "k"}, "token= was passed together with account_key=: pass a token"),
        ({"account_secret": "s"}, "token= was passed together with account_secret=: pass"),
        ({"account_key": "k", "account_secret": "s"}, "with account_key= and account_secret="),
    ],
)
def test_a_token_with_an_account_key_is_refused(given: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        tg.TelegentClient(token="t", **given)


def test_an_empty_base_url_variable_is_refused_not_production() -> None:
    with pytest.raises(ValueError, match="TELEGENT_BASE_URL is set but empty"):
        credentials_from(token="t", env={"TELEGENT_BASE_URL": ""})
    with pytest.raises(ValueError, match="TELEGENT_BASE_URL is set but empty"):
        credentials_from(token="t", env={"TELEGENT_BASE_URL": "  "})
    # Unset is the documented default; an argument wins over the variable.
    assert credentials_from(token="t", env={}).base_url == "https://api.telegent.com/v1.0"
    got = credentials_from(token="t", base_url="https://x.invalid", env={"TELEGENT_BASE_URL": ""})
    assert got.base_url == "https://x.invalid"


def test_the_missing_half_of_an_account_key_is_named() -> None:
    env = {"TELEGENT_ACCOUNT_KEY": "DID-1", "TELEGENT_ACCOUNT_SECRET": ""}
    with pytest.raises(ValueError, match=r"^account_secret is missing: account_key was found"):
        credentials_from(env=env)
    with pytest.raises(ValueError, match=r"^account_key is missing: account_secret was found"):
        credentials_from(account_secret="s", env={})
    with pytest.raises(ValueError, match=r"^no credentials"):
        credentials_from(env={})


def test_a_poll_policy_whose_first_delay_breaks_its_cap_is_refused() -> None:
    with pytest.raises(ValueError, match=r"initial \(1\) must not exceed max_interval \(0.1\)"):
        tg.PollPolicy(initial=1, max_interval=0.1)


def test_a_watch_deadline_in_the_past_is_refused_like_a_negative_one() -> None:
    now = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc).timestamp()
    with pytest.raises(ValueError, match=r"2026-03-10T11:59:59.* is not in the future"):
        deadline_at(datetime(2026, 3, 10, 11, 59, 59, tzinfo=timezone.utc), now)
    with pytest.raises(ValueError, match="deadline must be a finite number > 0"):
        deadline_at(-5, now)
    assert deadline_at(datetime(2026, 3, 10, 12, 0, 30, tzinfo=timezone.utc), now) == now + 30
    assert deadline_at(30.0, now) == now + 30


async def test_watcher_add_refuses_a_past_deadline_before_storing(fake: FakeTelegent) -> None:
    async with fast_client(fake) as client, tg.OrderWatcher(client) as watcher:
        an_hour_ago = datetime.now(timezone.utc) - timedelta(hours=1)
        with pytest.raises(ValueError, match="is not in the future"):
            await watcher.add("JNOID-late", deadline=an_hour_ago)
        assert await watcher.get("JNOID-late") is None
    assert fake.requests == []


async def test_update_port_in_refuses_a_past_date_and_a_datetime(fake: FakeTelegent) -> None:
    async with fast_client(fake) as client:
        with pytest.raises(ValueError, match="port_in_date 2020-01-31 is in the past"):
            await client.update_port_in("JNOID-1", port_in_date="2020-01-31")
        with pytest.raises(TypeError, match="not a datetime"):
            noon = datetime.now() + timedelta(days=3)
            await client.update_port_in("JNOID-1", port_in_date=noon)
    assert fake.requests == []


# -- 2. errors that say what is wrong ---------------------------------------------------------


@pytest.mark.parametrize("path", ["/v2.0", ""])
async def test_a_routing_miss_says_the_base_url_looks_wrong(fake: FakeTelegent, path: str) -> None:
    base_url = fake.base_url.replace("/v1.0", path)
    async with fast_client(fake, base_url=base_url) as client:
        with pytest.raises(tg.EndpointNotFoundError) as caught:
            await client.get_order("JNUOID-1")
    assert isinstance(caught.value, tg.NotFoundError)  # still a 404 for code that catches those
    assert "the base URL looks wrong" in str(caught.value)
    assert "No HTTP resource was found" in str(caught.value)
    assert len(fake.requests) == 1  # the token request: final, not retried


async def test_telegents_own_404_about_an_order_is_no_routing_miss(fake: FakeTelegent) -> None:
    async with fast_client(fake) as client:
        with pytest.raises(tg.NotFoundError) as caught:
            await client.get_order("JNUOID-unknown")
    assert type(caught.value) is tg.NotFoundError
    assert "base URL" not in str(caught.value)


def test_routing_miss_decision() -> None:
    framework = {"Message": "No HTTP resource was found that matches the request URI 'x'."}
    assert _error_text.is_routing_miss(404, framework)
    assert _error_text.is_routing_miss(404, "<html>404 Not Found</html>")  # a web server's page
    assert not _error_text.is_routing_miss(404, {"StatusCode": 404, "Message": "Order not found"})
    assert not _error_text.is_routing_miss(400, framework)


async def test_an_html_502_says_bad_gateway_and_what_the_page_said(fake: FakeTelegent) -> None:
    fake.inject("html", count=10)  # a proxy's "502 Bad Gateway" page, on every retry
    async with fast_client(fake, max_retries=1) as client:
        with pytest.raises(tg.ServerError) as caught:
            await client.get_order("JNUOID-1")
    assert str(caught.value) == (
        "HTTP 502: Bad Gateway (non-JSON error body: '502 Bad Gateway 502 Bad Gateway nginx')"
    )


async def test_a_refused_connection_over_http_does_not_mention_ssl() -> None:
    base_url = f"http://127.0.0.1:{free_port()}/v1.0"
    async with tg.TelegentClient(
        token="t", base_url=base_url, allow_insecure=True, max_retries=0
    ) as client:
        with pytest.raises(tg.TransportError) as caught:
            await client.get_order("JNUOID-1")
    text = str(caught.value)
    assert "ssl" not in text.lower()
    assert text.startswith("GET failed: cannot connect to 127.0.0.1:")


async def test_a_wrong_secret_fails_at_once_on_the_defaults(fake: FakeTelegent) -> None:
    # The production retry policy and max_retries: before, 5 jittered retries took ~15 s.
    async with fake.client(
        account_secret="wrong", retry_policy=tg.PollPolicy.RETRY, max_retries=5
    ) as client:
        started = time.monotonic()
        with pytest.raises(tg.AuthenticationError, match="token request was refused") as caught:
            await client.get_order("JNUOID-1")
        assert time.monotonic() - started < 1.0
    assert "not retried" in str(caught.value)
    assert len(fake.token_requests) == 1


def test_allow_insecure_from_the_environment() -> None:
    assert insecure_allowed(False, {"TELEGENT_ALLOW_INSECURE": "1"})
    assert not insecure_allowed(False, {"TELEGENT_ALLOW_INSECURE": "0"})
    assert not insecure_allowed(False, {})
    assert insecure_allowed(True, {})
    with pytest.raises(ValueError, match="TELEGENT_ALLOW_INSECURE must be 1 or 0"):
        insecure_allowed(False, {"TELEGENT_ALLOW_INSECURE": "maybe"})


def test_allow_insecure_variable_permits_loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="or allow_insecure=True"):
        tg.TelegentClient(token="t", base_url="http://127.0.0.1:1/v1.0")
    monkeypatch.setenv("TELEGENT_ALLOW_INSECURE", "1")
    client = tg.TelegentClient(token="t", base_url="http://127.0.0.1:1/v1.0")
    assert str(client.base_url) == "http://127.0.0.1:1/v1.0"
    with pytest.raises(ValueError, match="only permits loopback"):
        tg.TelegentClient(token="t", base_url="http://example.com/v1.0")
