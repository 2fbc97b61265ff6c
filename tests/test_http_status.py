"""`http_status`: the answer a web backend gives when an SDK error ends its request.

The table is checked purely (every public error class has its own entry) and over real
sockets: what the fake answers, or fails to answer, becomes the status a handler would send.
"""

from __future__ import annotations

import pytest
from helpers import fast_client

import telegent_async as tg
from telegent_async.testing import FakeTelegent, FaultKind

ORDER_ID = "JNUOID-http-status"

PUBLIC_ERRORS = [
    cls
    for name in tg.__all__
    if isinstance(cls := getattr(tg, name), type) and issubclass(cls, tg.TelegentError)
]


def test_every_public_error_class_answers_an_error_status() -> None:
    assert len(PUBLIC_ERRORS) >= 18
    not_int = [cls.__name__ for cls in PUBLIC_ERRORS if type(cls.http_status) is not int]
    assert not_int == []
    for cls in PUBLIC_ERRORS:
        assert 400 <= cls.http_status <= 599


def test_never_tells_the_caller_its_own_credentials_are_wrong() -> None:
    assert {cls.http_status for cls in PUBLIC_ERRORS}.isdisjoint({401, 403, 407})


#: The README's table, written out: a change to an `http_status` must be a change here too.
DOCUMENTED: dict[int, list[type[tg.TelegentError]]] = {
    404: [tg.NotFoundError],
    409: [tg.OrderFailed],
    502: [
        tg.AuthenticationError,
        tg.PermissionDeniedError,
        tg.EndpointNotFoundError,
        tg.BadRequestError,
        tg.UnprocessableEntityError,
        tg.SubmitOutcomeUnknownError,
        tg.MethodNotAllowedError,
        tg.ResponseDecodeError,
        tg.ServerError,
        tg.InternalServerError,
        tg.APIStatusError,
    ],
    503: [
        tg.ServiceUnavailableError,
        tg.RateLimitError,
        tg.TransportError,
        tg.BudgetUnavailableError,
    ],
    504: [
        tg.GatewayTimeoutError,
        tg.RequestTimeoutError,
        tg.TransportTimeoutError,
        tg.OrderWaitTimeout,
    ],
}


def test_the_documented_choices() -> None:
    assert {cls: status for status, classes in DOCUMENTED.items() for cls in classes} == {
        cls: cls.http_status for cls in PUBLIC_ERRORS if cls is not tg.TelegentError
    }
    # Instances carry it too (what a handler reads), subclasses of a listed class inherit it.
    assert tg.NotFoundError(404, "gone").http_status == 404
    assert issubclass(tg.TransportTimeoutError, tg.TransportError)


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ("404", 404),
        ("401", 502),
        ("403", 502),
        ("400", 502),
        ("500", 502),
        ("502", 502),
        ("503", 503),
        ("429", 503),
        ("504", 504),
        ("408", 504),
        ("html", 502),  # a gateway's HTML 502
        ("malformed", 502),  # a 200 that is not JSON: ResponseDecodeError
        ("stall", 504),  # no answer within the attempt timeout
        ("reset", 503),  # the connection dropped
    ],
)
async def test_server_answers_become_the_status_a_backend_sends(
    fake: FakeTelegent, fault: FaultKind, expected: int
) -> None:
    fake.add_order(ORDER_ID, "Complete")
    fake.inject(fault, count=10, retry_after="0" if fault == "429" else None)
    # Only the stall needs a short attempt timeout: a loaded machine may take 0.1 s to answer.
    timeout = 0.1 if fault == "stall" else 2.0
    async with fast_client(fake, max_retries=0, timeout=timeout) as client:
        with pytest.raises(tg.TelegentError) as caught:
            await client.get_order(ORDER_ID)
    assert caught.value.http_status == expected


async def test_unreachable_server_is_503(fake: FakeTelegent) -> None:
    base_url = fake.base_url
    await fake.close()
    async with tg.TelegentClient(
        token="t", base_url=base_url, allow_insecure=True, max_retries=0
    ) as client:
        with pytest.raises(tg.TransportError) as caught:
            await client.get_order(ORDER_ID)
    assert caught.value.http_status == 503


async def test_failed_order_and_wait_timeout(fake: FakeTelegent) -> None:
    fake.add_order(ORDER_ID, "Error", message="8A-ACCOUNT_NUM_REQ_OR_INCORRECT")
    fake.add_order("JNUOID-forever", "Pending")
    async with fast_client(fake) as client:
        order = await client.get_order(ORDER_ID)
        with pytest.raises(tg.OrderFailed) as failed:
            order.raise_for_status()
        with pytest.raises(tg.OrderWaitTimeout) as timed_out:
            await client.wait_for_order("JNUOID-forever", timeout=0.05)
    assert failed.value.http_status == 409
    assert timed_out.value.http_status == 504
