"""Issue 23, point 4: what a new user reached for, from Python: orders and outcomes as JSON and
back, the carrier-code catalogue, the `on_update` type, clearing the fake's faults, and what a
`break` out of `settled()` means."""

from __future__ import annotations

import inspect
import json
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any

import pytest
from helpers import KEY, SECRET, api_env, decode_order, fast_client, run_cli

import telegent_async as tg
from telegent_async.testing import FakeTelegent

MESSAGE = "8A-ACCOUNT_NUM_REQ_OR_INCORRECT; 8D-ZIP_CODE_REQ_OR_INCORRECT"
PORT_IN: dict[str, Any] = {
    "OrderId": "JNOID-7",
    "OrderStatus": "Rejected",
    "OrderType": "PortIn",
    "OrderDate": "2025-05-14T18:00:00.0000000+00:00",
    "OrderStatusMessage": MESSAGE,
    "PhoneNumbersOrdered": [{"Number": "+12815551234"}],
    "CurrentAccountPassword": "pin-4417",  # a server echoing a secret back
}


def order() -> tg.Order:
    return decode_order(200, json.dumps(PORT_IN).encode())


def test_an_order_as_json_and_back() -> None:
    data = json.loads(json.dumps(order().to_json()))  # JSON-ready: dumps takes it as is
    assert data["order_id"] == "JNOID-7"
    assert (data["status"], data["raw_status"]) == ("REJECTED", "Rejected")
    assert data["order_date"] == "2025-05-14T18:00:00+00:00"
    assert data["carrier_error"]["code"] == "8A"
    assert [e["code"] for e in data["carrier_errors"]] == ["8A", "8D"]
    assert data["phone_numbers"] == ["+12815551234"]
    assert "pin-4417" not in json.dumps(data)  # secrets never included
    back = tg.Order.from_json(data)
    assert back.carrier_errors == order().carrier_errors
    assert (back.status, back.order_date) == (
        tg.OrderStatus.REJECTED,
        datetime(2025, 5, 14, 18, tzinfo=timezone.utc),
    )
    assert back.to_json() == data
    with pytest.raises(ValueError, match=r"Order\.to_json"):
        tg.Order.from_json({"order_id": "JNOID-7"})


def test_an_outcome_as_json_and_back_keeps_its_error_class() -> None:
    timed_out = tg.OrderOutcome(
        "JNOID-7", order(), tg.OrderWaitTimeout("JNOID-7", order(), 60.0), tag="ticket-42"
    )
    data = json.loads(json.dumps(timed_out.to_json()))
    assert (data["order_id"], data["ok"], data["tag"]) == ("JNOID-7", False, "ticket-42")
    assert data["error"]["type"] == "OrderWaitTimeout"
    assert "pin-4417" not in json.dumps(data)
    back = tg.OrderOutcome.from_json(data)
    assert isinstance(back.error, tg.OrderWaitTimeout)
    assert str(back.error) == str(timed_out.error)
    assert back.order is not None and back.order.carrier_error == order().carrier_error
    assert back.tag == "ticket-42"
    missing = tg.OrderOutcome("JNOID-8", None, tg.NotFoundError(404, "Order not found", None))
    again = tg.OrderOutcome.from_json(json.loads(json.dumps(missing.to_json())))
    assert isinstance(again.error, tg.NotFoundError) and again.order is None


def test_an_error_caused_by_itself_as_json_and_back() -> None:
    # `raise e from e`: its JSON (which follows `__cause__`) ended in a RecursionError.
    error = tg.TransportError("reset")
    error.__cause__ = error
    data = json.loads(json.dumps(tg.OrderOutcome("JNOID-9", None, error).to_json()))
    back = tg.OrderOutcome.from_json(data)
    assert isinstance(back.error, tg.TransportError) and str(back.error) == "reset"
    chain = 0
    cause: BaseException | None = back.error
    while cause is not None and chain < 100:
        chain, cause = chain + 1, cause.__cause__
    assert cause is None  # a finite chain of the same error


def test_an_answer_without_its_order_id_as_json_and_back() -> None:
    # A lookup takes an answer without `OrderId` (or with `"OrderId": null`) as the order
    # asked for: as JSON and back, in an outcome and in its error, it is that order again.
    for body in ({"OrderStatus": "Submitted"}, {"OrderId": None, "OrderStatus": "Submitted"}):
        pending = decode_order(200, json.dumps(body).encode(), "JNOID-9")
        assert tg.Order.from_json(json.loads(json.dumps(pending.to_json()))) == pending
        timed_out = tg.OrderOutcome(
            "JNOID-9", pending, tg.OrderWaitTimeout("JNOID-9", pending, 60.0)
        )
        back = tg.OrderOutcome.from_json(json.loads(json.dumps(timed_out.to_json())))
        assert isinstance(back.error, tg.OrderWaitTimeout)
        assert (back.order, back.error.last_order) == (pending, pending)


def test_a_deeply_nested_answer_as_json_and_back() -> None:
    # A lookup takes an answer nested 900 deep; `to_json` ran out of stack on it. Its `raw`
    # is what a store keeps: 100 levels (`KEPT_DEPTH`), None for what lies deeper.
    deep = "[" * 900 + "]" * 900
    body = f'{{"OrderId": "JNOID-9", "OrderStatus": "Complete", "X": {deep}}}'
    complete = decode_order(200, body.encode(), "JNOID-9")
    data = json.loads(json.dumps(tg.OrderOutcome("JNOID-9", complete).to_json()))
    kept = data["order"]["raw"]["X"]
    for _ in range(99):  # X is the second level
        (kept,) = kept
    assert kept is None
    back = tg.OrderOutcome.from_json(data)
    assert back.ok and back.order is not None and back.order.raw["OrderId"] == "JNOID-9"


async def test_the_cli_json_line_is_the_outcome_json(fake: FakeTelegent) -> None:
    async with FakeTelegent(account_key=KEY, account_secret=SECRET) as own:
        own.add_order("JNOID-7", "Rejected", message=MESSAGE)
        result = await run_cli("get", "--json", "--insecure", "JNOID-7", env=api_env(own))
        async with fast_client(own) as client:
            [outcome] = await client.get_orders(["JNOID-7"])
    [line] = result.json_lines().values()
    assert {key: line[key] for key in outcome.to_json()} == json.loads(
        json.dumps(outcome.to_json())
    )
    assert line["outcome"] == "needs_action" and line["carrier_code"] == "8A"


def test_the_carrier_code_catalogue_as_data() -> None:
    codes = {entry.code: entry for entry in tg.carrier_codes()}
    assert {"1M", "6P", "8A", "8D"} <= set(codes)
    eight_a = codes["8A"]
    assert eight_a.reason == "ACCOUNT_NUM_REQ_OR_INCORRECT"
    assert eight_a.update_fields == ("current_account_number",)
    assert "account number" in eight_a.description
    # A thin view: each entry is what decoding the code gives.
    assert eight_a == tg.decode_carrier_message("8A")


async def test_telegent_orders_codes() -> None:
    listed = await run_cli("codes", "--json")
    rows = [json.loads(line) for line in listed.out.splitlines()]
    assert listed.code == 0
    assert [row["code"] for row in rows] == [entry.code for entry in tg.carrier_codes()]
    eight_a = next(row for row in rows if row["code"] == "8A")
    assert eight_a["name"] == "ACCOUNT_NUM_REQ_OR_INCORRECT"
    assert eight_a["update_fields"] == ["current_account_number"]
    assert eight_a["next_step"] == "update"
    shown = await run_cli("codes", "6P", "9Z")
    assert shown.out.startswith("6P  MDN_HAS_SRV_PROV_PORT_PROTECT")
    shown_text = " ".join(shown.out.split())
    assert "next step: update after the subscriber acts" in shown_text
    assert "remedy: Ask the subscriber to remove the number lock" in shown_text
    assert "9Z  (unknown)" in shown.out  # not listed: explained from its group
    refused = await run_cli("codes", "nonsense")
    assert refused.code == 2 and "not a carrier code" in refused.err


def test_on_update_has_a_public_type() -> None:
    assert "OnUpdate" in tg.__all__
    parameter = inspect.signature(tg.TelegentClient.wait_for_order).parameters["on_update"]
    assert parameter.annotation == "OnUpdate | None"  # the public name, not a private one
    seen: list[tg.Order] = []
    callback: tg.OnUpdate = seen.append  # a plain function fits the type
    callback(order())
    assert seen == [order()]


async def test_clear_faults_forgets_the_injected_ones(fake: FakeTelegent) -> None:
    fake.add_order("JNUOID-1", "Complete")
    fake.inject("503", count=50)
    fake.fail_tokens("html", seconds=60.0)
    fake.clear_faults()
    async with fast_client(fake, max_retries=0) as client:
        assert (await client.get_order("JNUOID-1")).succeeded
    assert [r.status for r in fake.requests] == [200, 200]  # the token, the lookup


async def test_leaving_settled_with_break_delivers_that_outcome_again(fake: FakeTelegent) -> None:
    fake.add_order("JNUOID-1", "Complete")
    fake.add_order("JNUOID-2", "Complete")
    async with fast_client(fake) as client, tg.OrderWatcher(client) as watcher:
        await watcher.add_many(["JNUOID-1", "JNUOID-2"])
        async for outcome in watcher.settled():
            first = outcome
            break
        again = [outcome.order_id async for outcome in _first(watcher.settled(), 2)]
        assert first.order_id in again  # not acknowledged: delivered again
        await watcher.ack(first.order_id)
        state = await watcher.get(first.order_id)
        assert state is not None and state.acknowledged
    # Said where settled() is documented.
    assert "`break`" in (tg.OrderWatcher.settled.__doc__ or "")


async def _first(
    outcomes: AsyncIterator[tg.OrderOutcome], count: int
) -> AsyncIterator[tg.OrderOutcome]:
    got = 0
    async for outcome in outcomes:
        yield outcome
        got += 1
        if got == count:
            return
