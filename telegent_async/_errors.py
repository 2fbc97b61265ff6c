"""The exception hierarchy: every failure the SDK reports is a `TelegentError`.

Exception text never includes a token or a secret. Messages are built from the HTTP status,
the server's `Message` field (first 500 characters), the first 80 characters of an answer to an
order lookup that is not an order, a connection error's own text (`TransportError`), and the
order's ID, status and carrier message. Nothing comes from a request's headers or body, and an
answer of the token endpoint is never echoed (it may hold a token).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from ._carrier import CarrierError
    from ._models import Order

__all__ = [
    "APIStatusError",
    "AuthenticationError",
    "BadRequestError",
    "ClientClosedError",
    "GatewayTimeoutError",
    "InternalServerError",
    "MethodNotAllowedError",
    "NotFoundError",
    "OrderFailed",
    "OrderWaitTimeout",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestTimeoutError",
    "ResponseDecodeError",
    "ServerError",
    "ServiceUnavailableError",
    "TelegentError",
    "TransportError",
    "TransportTimeoutError",
    "error_for_status",
]

BODY_EXCERPT_CHARS = 500


class TelegentError(Exception):
    """Base class of every error raised by telegent_async.

    `http_status`: the status a web backend would usually answer its own caller with when this
    error ends a request (table `HTTP_STATUS` below; README, "In a web backend").
    """

    http_status: ClassVar[int]


class APIStatusError(TelegentError):
    """The API answered with an error status.

    `body` is the decoded JSON error object when there was one, else the first 500 characters
    of the body as text.
    """

    def __init__(self, status_code: int, message: str, body: object = None) -> None:
        super().__init__(f"HTTP {status_code}: {message}")
        self.status_code = status_code
        self.message = message
        self.body = body


class BadRequestError(APIStatusError):
    """400: the request was malformed; retrying will not help."""


class AuthenticationError(APIStatusError):
    """401, or a token request answered `successful: false`: check the credentials."""


class PermissionDeniedError(APIStatusError):
    """403: the token is valid but not allowed here (often a token of another scope)."""


class NotFoundError(APIStatusError):
    """404: no such order (or endpoint)."""


class MethodNotAllowedError(APIStatusError):
    """405: the endpoint does not accept this method."""


class RequestTimeoutError(APIStatusError):
    """408: the server gave up waiting for the request; retried automatically."""


class RateLimitError(APIStatusError):
    """429: the account's rate limit was exceeded; `retry_after` is the server's advice."""

    def __init__(
        self, status_code: int, message: str, body: object = None, retry_after: float | None = None
    ) -> None:
        super().__init__(status_code, message, body)
        self.retry_after = retry_after


class ServerError(APIStatusError):
    """5xx: the server failed; retried automatically."""


class InternalServerError(ServerError):
    """500."""


class ServiceUnavailableError(ServerError):
    """503."""


class GatewayTimeoutError(ServerError):
    """504."""


class TransportError(TelegentError):
    """The connection failed or an attempt timed out, on every try."""


class TransportTimeoutError(TransportError):
    """No answer in time: the last attempt outlived the client's `timeout`, or the call's own
    `timeout=` passed (while waiting for a token, the request budget or an answer)."""


class ResponseDecodeError(TelegentError):
    """The server answered something that is not an order (or not a token answer), or an
    order other than the one asked for. An order lookup is retried before this is raised.

    Carries the HTTP `status_code` and the first 500 characters of the body in `body`.
    """

    def __init__(self, message: str, *, status_code: int, body: str) -> None:
        super().__init__(f"{message} (HTTP {status_code}; body starts {body[:80]!r})")
        self.status_code = status_code
        self.body = body[:BODY_EXCERPT_CHARS]


class ClientClosedError(RuntimeError):
    """The client was closed, before or while this call waited (for a token, a slot...).

    A misuse of the client rather than an API failure, so not a `TelegentError`: it ends a
    wait or a fan-out instead of becoming one order's outcome.
    """

    def __init__(self) -> None:
        super().__init__("this TelegentClient is closed; create a new one")


class OrderWaitTimeout(TelegentError):
    """The wait's deadline passed before the order settled; `last_order` is the last seen."""

    def __init__(
        self,
        order_id: str,
        last_order: Order | None,
        timeout: float | None,
        *,
        polled: bool = True,
    ) -> None:
        if not polled:  # the request budget never reached it: the server is not to blame
            detail = "never polled: the request budget ran out before its turn"
        else:
            detail = "last status: " + (
                last_order.raw_status if last_order is not None else "no answer"
            )
        within = "by its deadline" if timeout is None else f"after {timeout} s"
        super().__init__(f"order {order_id!r} not settled {within} ({detail})")
        self.order_id = order_id
        self.last_order = last_order
        self.timeout = timeout
        self.polled = polled


class OrderFailed(TelegentError):
    """Raised by `Order.raise_for_status()` for an order that did not succeed."""

    def __init__(self, order: Order) -> None:
        self.order = order
        self.carrier_error: CarrierError | None = order.carrier_error
        detail = ""
        if self.carrier_error is not None:
            detail = f": {self.carrier_error.description} Remedy: {self.carrier_error.remedy}"
        elif order.status_message:
            detail = f": {order.status_message}"
        super().__init__(f"order {order.order_id!r} is {order.raw_status}{detail}")


#: What a web backend would usually answer when the error ends its request. Never 401/403: those
#: would tell the backend's caller that *its* credentials are wrong, when Telegent refused the
#: backend's own. 502: Telegent answered something the backend cannot use (a refusal of the
#: SDK's request, an answer that is not an order, a failing server); 503: Telegent is out of
#: reach or asks us to slow down (retry later); 504: no answer in time.
HTTP_STATUS: Mapping[type[TelegentError], int] = {
    TelegentError: 502,
    APIStatusError: 502,  # a status the SDK has no class for (3xx not followed, 409, 418 ...)
    BadRequestError: 502,  # Telegent refused the SDK's request: not the caller's fault
    AuthenticationError: 502,  # the backend's credentials were refused
    PermissionDeniedError: 502,  # the backend's token is not allowed there
    NotFoundError: 404,  # no such order: the one answer the caller can act on as is
    MethodNotAllowedError: 502,
    RequestTimeoutError: 504,  # Telegent timed out reading the request
    RateLimitError: 503,  # rate limited: come back later (see `retry_after`)
    ServerError: 502,  # 5xx without a class of its own (502 and others)
    InternalServerError: 502,
    ServiceUnavailableError: 503,
    GatewayTimeoutError: 504,
    TransportError: 503,  # Telegent out of reach
    TransportTimeoutError: 504,
    ResponseDecodeError: 502,  # an answer that is not an order (a proxy's HTML page ...)
    OrderWaitTimeout: 504,  # the wait's deadline passed
    OrderFailed: 409,  # the order settled in a state other than success: conflict, not a fault
}
for _error_class, _status in HTTP_STATUS.items():
    _error_class.http_status = _status

_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    405: MethodNotAllowedError,
    408: RequestTimeoutError,
    429: RateLimitError,
    500: InternalServerError,
    503: ServiceUnavailableError,
    504: GatewayTimeoutError,
}


def error_for_status(
    status_code: int, message: str, body: Any = None, retry_after: float | None = None
) -> APIStatusError:
    """The typed error for an HTTP error status (pure)."""
    if status_code == 429:
        return RateLimitError(status_code, message, body, retry_after)
    cls = _BY_STATUS.get(status_code)
    if cls is None:
        cls = ServerError if status_code >= 500 else APIStatusError
    return cls(status_code, message, body)
