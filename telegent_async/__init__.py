"""telegent_async: an asyncio SDK for Telegent's order API.

import telegent_async as tg

async with tg.TelegentClient(account_key="DID-...", account_secret="...") as client:
    order = await client.wait_for_order("JNUOID-...")
    if order.failed and order.carrier_error:
        print(order.carrier_error.description, order.carrier_error.remedy)
"""

from ._budgets.local import LocalBudget
from ._budgets.redis import RedisBudget
from ._carrier import (
    RESUBMIT_FIELD,
    CarrierCategory,
    CarrierError,
    NextStep,
    carrier_codes,
    decode_carrier_message,
    decode_carrier_messages,
)
from ._client import OnUpdate, TelegentClient
from ._create import PortInEligibility, SubmittedOrder
from ._errors import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    BudgetUnavailableError,
    ClientClosedError,
    EndpointNotFoundError,
    GatewayTimeoutError,
    InternalServerError,
    MethodNotAllowedError,
    NotFoundError,
    OrderFailed,
    OrderWaitTimeout,
    PermissionDeniedError,
    RateLimitError,
    RequestTimeoutError,
    ResponseDecodeError,
    ServerError,
    ServiceUnavailableError,
    SubmitOutcomeUnknownError,
    TelegentError,
    TransportError,
    TransportTimeoutError,
    UnprocessableEntityError,
)
from ._health import WatcherHealth
from ._models import Order, OrderOutcome, OrderStatus
from ._poller import OrderStream
from ._portin import BillingAddress, PortInCancel, PortInUpdate
from ._stats import ClientStats
from ._stores.base import WatchCounts, WatchState
from ._stores.memory import MemoryStore
from ._stores.redis import RedisStore
from ._stores.sqlite import SQLiteStore
from ._timing import PollPolicy
from ._watcher import OrderWatcher
from ._webhook import Webhook, WebhookAuth

__version__ = "0.2.0"

__all__ = [
    "RESUBMIT_FIELD",
    "APIStatusError",
    "AuthenticationError",
    "BadRequestError",
    "BillingAddress",
    "BudgetUnavailableError",
    "CarrierCategory",
    "CarrierError",
    "ClientClosedError",
    "ClientStats",
    "EndpointNotFoundError",
    "GatewayTimeoutError",
    "InternalServerError",
    "LocalBudget",
    "MemoryStore",
    "MethodNotAllowedError",
    "NextStep",
    "NotFoundError",
    "OnUpdate",
    "Order",
    "OrderFailed",
    "OrderOutcome",
    "OrderStatus",
    "OrderStream",
    "OrderWaitTimeout",
    "OrderWatcher",
    "PermissionDeniedError",
    "PollPolicy",
    "PortInCancel",
    "PortInEligibility",
    "PortInUpdate",
    "RateLimitError",
    "RedisBudget",
    "RedisStore",
    "RequestTimeoutError",
    "ResponseDecodeError",
    "SQLiteStore",
    "ServerError",
    "ServiceUnavailableError",
    "SubmitOutcomeUnknownError",
    "SubmittedOrder",
    "TelegentClient",
    "TelegentError",
    "TransportError",
    "TransportTimeoutError",
    "UnprocessableEntityError",
    "WatchCounts",
    "WatchState",
    "WatcherHealth",
    "Webhook",
    "WebhookAuth",
    "carrier_codes",
    "decode_carrier_message",
    "decode_carrier_messages",
]
