"""`telegent-orders webhook add|list|remove`, run in-process against the fake."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from helpers import FAST, KEY, SECRET, api_env, assert_clean, run_cli

from telegent_async.testing import FakeTelegent

URL = "https://hooks.example.com/telegent"
TOKEN = "cli-hook-token-Rk2v9QwX7n"
PASSWORD = "cli-hook-password-Hn3c8LpZ"


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegent]:
    async with FakeTelegent(account_key=KEY, account_secret=SECRET) as server:
        yield server


def env(fake: FakeTelegent, **extra: str) -> dict[str, str]:
    return {**api_env(fake), "TELEGENT_ACCOUNT_ID": "AID-cli", **extra}


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        assert TOKEN not in text and PASSWORD not in text, text


async def test_add_with_a_bearer_token_from_the_environment(fake: FakeTelegent) -> None:
    result = await run_cli(
        "webhook", "add", URL, "--token-env", "HOOK_TOKEN", "--method", "PUT", "--format", "xml",
        "--event", "Order_Update", "--event", "Message_Status", *FAST, "-vv",
        env=env(fake, HOOK_TOKEN=TOKEN),
    )  # fmt: skip
    assert_clean(result)
    assert result.code == 0, result.err
    assert_no_secret(result.out, result.err)
    [(webhook_id, stored)] = fake.webhooks.items()
    assert stored == {
        "WebhookId": webhook_id,
        "AccountId": "AID-cli",
        "WebhookUrl": URL,
        "Method": "PUT",
        "DataFormat": "xml",
        "AuthenticationType": "Token",
        "AuthenticationToken": TOKEN,
        "SubscribedEvents": "Order_Update, Message_Status",
        "Active": True,
    }
    assert result.out.split() == [
        webhook_id, URL, "PUT", "xml", "Token", "Order_Update,", "Message_Status", "active",
    ]  # fmt: skip


async def test_add_with_basic_auth_then_list_and_remove(fake: FakeTelegent) -> None:
    added = await run_cli(
        "webhook", "add", URL, "--user", "telegent", "--password-env", "HOOK_PW",
        "--account-id", "AID-flag", "--json", *FAST, env=env(fake, HOOK_PW=PASSWORD),
    )  # fmt: skip
    assert added.code == 0, added.err
    hook = json.loads(added.out)
    assert hook == {
        "webhook_id": hook["webhook_id"],
        "url": URL,
        "method": "POST",
        "data_format": "json",
        "events": ["Order_Update"],
        "active": True,
        "authentication": "Basic",
    }
    assert fake.webhooks[hook["webhook_id"]]["AuthenticationPassword"] == PASSWORD
    assert fake.webhooks[hook["webhook_id"]]["AccountId"] == "AID-flag"  # the flag wins
    listed = await run_cli(
        "webhook", "list", "--json", "--account-id", "AID-flag", *FAST, env=env(fake)
    )
    assert listed.code == 0, listed.err
    assert [json.loads(line) for line in listed.out.splitlines()] == [hook]
    assert_no_secret(added.out, added.err, listed.out, listed.err)
    [sent] = [r for r in fake.webhook_requests() if r.path.endswith("/account/webhooks")]
    assert sent.query == (("AccountId", "AID-flag"),)
    removed = await run_cli("webhook", "remove", hook["webhook_id"], *FAST, env=env(fake))
    assert (removed.code, removed.out) == (0, f"webhook {hook['webhook_id']} removed\n")
    assert fake.webhooks == {}
    again = await run_cli("webhook", "remove", hook["webhook_id"], *FAST, env=env(fake))
    assert_clean(again)
    assert again.code == 1 and "NotFoundError" in again.err
    empty = await run_cli("webhook", "list", *FAST, env=api_env(fake))  # no AccountId: all
    assert empty.out == "no webhooks subscribed\n"


@pytest.mark.parametrize(
    ("args", "extra", "words"),
    [
        (("--token-env", "NOT_SET_ANYWHERE"), {}, "NOT_SET_ANYWHERE"),
        (("--token-env", "T", "--user", "u"), {"T": TOKEN}, "not both"),
        (("--user", "u"), {}, "both --user and --password-env"),
        (("--password-env", "P"), {"P": PASSWORD}, "both --user and --password-env"),
        (("--token-env", "T"), {"T": "short"}, "at least 16"),
        (("--method", "GET"), {}, "invalid choice"),
        (("--token", TOKEN, "--token-envx", "T"), {}, "unrecognized"),
        (("--event", "Order Update"), {}, "not an event name"),
    ],
)
async def test_usage_errors_send_nothing(
    fake: FakeTelegent, args: tuple[str, ...], extra: dict[str, str], words: str
) -> None:
    result = await run_cli("webhook", "add", URL, *args, *FAST, env=env(fake, **extra))
    assert_clean(result)
    assert result.code == 2, result.err
    assert words in result.err
    assert fake.requests == []
    assert_no_secret(result.err)


async def test_add_needs_an_account_and_an_https_url(fake: FakeTelegent) -> None:
    no_account = await run_cli("webhook", "add", URL, *FAST, env=api_env(fake))
    assert no_account.code == 2 and "TELEGENT_ACCOUNT_ID" in no_account.err
    insecure = await run_cli("webhook", "add", "http://h.example.com/x", *FAST, env=env(fake))
    assert insecure.code == 2 and "https://" in insecure.err
    assert fake.requests == []


async def test_the_help_documents_the_commands() -> None:
    for argv, words in [
        (("webhook", "--help"), ("add", "list", "remove", "Order_Update")),
        (("webhook", "add", "--help"), ("--token-env", "--password-env", "never on the command")),
    ]:
        result = await run_cli(*argv)
        assert result.code == 0
        for word in words:
            assert word in result.out


async def test_a_secret_path_segment_is_never_printed(fake: FakeTelegent) -> None:
    """A receiver in `secret=` mode is reached at `.../<secret>`: add and list show `.../***`."""
    path_secret = "Zr4k0S9xq2Yf7LhN3pW8uQ"
    url = f"{URL}/{path_secret}"
    added = await run_cli("webhook", "add", url, *FAST, "-vv", env=env(fake))
    listed = await run_cli("webhook", "list", "--json", *FAST, env=env(fake))
    for result in (added, listed):
        assert result.code == 0, result.err
        assert path_secret not in result.out + result.err
    assert added.out.split()[1] == f"{URL}/***"
    assert json.loads(listed.out)["url"] == f"{URL}/***"
    assert [hook["WebhookUrl"] for hook in fake.webhooks.values()] == [url]  # sent whole
