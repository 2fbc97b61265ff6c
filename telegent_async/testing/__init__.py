"""A fake Telegent server for tests: a real aiohttp app on 127.0.0.1, driven from your test.

Mocking the HTTP layer hides the bugs that matter to a poller (keep-alive reuse, resets, stalls,
429 pauses, expired tokens), so this fake serves real sockets and lets a test script the rest:
order lifecycles that advance with time, token issue with scope and expiry, a rate limit that
answers 429 with `Retry-After`, and injected faults.

Usage in your own tests (pytest-asyncio)::

    from telegent_async.testing import FakeTelegent, Step

    async def test_port_in_rejected() -> None:
        async with FakeTelegent() as fake:
            fake.add_order(
                "JNOID-1",
                [Step("Submitted", 0.0), Step("Rejected", 0.1)],
                message="8A-ACCOUNT_NUM_REQ_OR_INCORRECT",
            )
            fake.inject("503", count=2)  # the next two API requests fail, then it recovers
            async with fake.client(requests_per_minute=None) as client:
                order = await client.wait_for_order("JNOID-1", timeout=5.0)
            assert order.needs_action
            assert len(fake.order_requests("JNOID-1")) >= 3

`fake.client()` retries and polls at test cadences (`FAST_RETRY`, `FAST_POLL`: tens of
milliseconds), so such a test takes a fraction of a second.

Check order on `GET /v1.0/numbers/order`: method (405), bearer token (401), rate limit (429),
injected faults, then `random` faults from `fault_rate`, then the answer. Token requests
(`POST /v1.0/oauth2/tokens`) are never rate-limited, and faulted only by `fail_tokens`.

The port-in lifecycle endpoints (`POST /v1.0/numbers/portin/update` and `.../cancel`) check
method, token (of their own scope) and rate limit the same way, then make the change, and only
then draw a fault: an injected fault replaces the answer of a change already made, the worst
case for a client's retry. See `script_update` for what an update does to a rejected order.

The endpoints that create orders (`PORTIN_SUBMIT_PATH`, `PROVISION_PATH`, `PORTOUT_PATH`,
`STATUS_PATH`) and the eligibility check answer Telegent's documented shapes; what they create
is served by the order endpoint on a lifecycle (`script_create`), so a whole workflow
(eligibility -> submit -> wait -> update -> wait) runs offline. `inject(..., path=...)` scripts
faults per call; `create_requests()` counts what reached them.

The webhook subscription endpoints (`POST /v1.0/webhook/create`, `.../update`, `.../delete`,
`GET /v1.0/webhook`, `GET /v1.0/account/webhooks`) are gated and faulted the same way, each
with a token of its own scope; `fake.webhooks` holds what they stored and
`fake.webhook_requests()` what they were sent.
"""

from ._create_endpoints import (
    CREATE_PATHS,
    ELIGIBILITY_PATH,
    PORTIN_SUBMIT_PATH,
    PORTOUT_PATH,
    PROVISION_PATH,
    STATUS_PATH,
)
from ._faults import FAULT_KINDS, FaultKind, TokenFaultKind
from ._lifecycle import Step
from ._log import RecordedBody, RecordedRequest
from ._portin_endpoints import API_PREFIX, PORTIN_CANCEL_PATH, PORTIN_UPDATE_PATH
from ._redis_server import RedisServer
from ._server import FAST_POLL, FAST_RETRY, FakeTelegent
from ._serving import ORDER_PATH, TOKEN_PATH
from ._webhook_endpoints import (
    WEBHOOK_CREATE_PATH,
    WEBHOOK_DELETE_PATH,
    WEBHOOK_GET_PATH,
    WEBHOOK_LIST_PATH,
    WEBHOOK_UPDATE_PATH,
)

__all__ = [
    "API_PREFIX",
    "CREATE_PATHS",
    "ELIGIBILITY_PATH",
    "FAST_POLL",
    "FAST_RETRY",
    "FAULT_KINDS",
    "ORDER_PATH",
    "PORTIN_CANCEL_PATH",
    "PORTIN_SUBMIT_PATH",
    "PORTIN_UPDATE_PATH",
    "PORTOUT_PATH",
    "PROVISION_PATH",
    "STATUS_PATH",
    "TOKEN_PATH",
    "WEBHOOK_CREATE_PATH",
    "WEBHOOK_DELETE_PATH",
    "WEBHOOK_GET_PATH",
    "WEBHOOK_LIST_PATH",
    "WEBHOOK_UPDATE_PATH",
    "FakeTelegent",
    "FaultKind",
    "RecordedBody",
    "RecordedRequest",
    "RedisServer",
    "Step",
    "TokenFaultKind",
]
