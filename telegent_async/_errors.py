"""The exception hierarchy: every failure the SDK reports is a `TelegentError`.

    TelegentError
    ├── APIStatusError                 the API answered an error status (`status_code`)
    │   ├── BadRequestError            400
    │   │   └── UnprocessableEntityError  422: a business rule refused the request
    │   ├── AuthenticationError        401 (or a token request refused)
    │   ├── PermissionDeniedError      403
    │   ├── NotFoundError              404
    │   │   └── EndpointNotFoundError  404 from no endpoint at all: the base URL is wrong
    │   ├── MethodNotAllowedError      405
    │   ├── RequestTimeoutError        408, retried
    │   ├── RateLimitError             429, retried (`retry_after`)
    │   └── ServerError                5xx, retried (502 and the undocumented ones)
    │       ├── InternalServerError    500
    │       ├── ServiceUnavailableError  503
    │       └── GatewayTimeoutError    504
    ├── TransportError                 no answer: the connection failed or an attempt timed out
    │   └── TransportTimeoutError      no answer in time (an attempt's or the call's timeout)
    ├── BudgetUnavailableError         a shared budget's Redis unreachable: nothing was sent
    ├── SubmitOutcomeUnknownError      a call that creates an order failed after the request
    │                                  may have reached Telegent (`call`, `cause`)
    ├── ResponseDecodeError            an answer that is not an order (or not a token answer)
    ├── OrderWaitTimeout               a wait's deadline passed (`order_id`, `last_order`)
    └── OrderFailed                    `Order.raise_for_status()` on an unsuccessful order

    RuntimeError
    └── ClientClosedError              a call on (or waiting in) a closed client: a misuse

Which status is retried or ends a wait is `_status.STATUS_RULES`'s to say.

Exception text never includes a token or a secret. Messages are built from the HTTP status,
the server's `Message` field (its first `BODY_EXCERPT_CHARS`), the first 80 characters of an
answer to an order lookup that is not an order, a connection error's own text
(`TransportError`), and the order's ID, status and carrier message. Nothing comes from a
request's headers or body, and an answer of the token endpoint is never echoed (it may hold a
token)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from ._carrier import CarrierError, decode_carrier_message
from ._config import DEFAULT_BASE_URL
from ._error_text import BODY_EXCERPT_CHARS

if TYPE_CHECKING:
    from ._models import Order

__all__ = [
    "APIStatusError",
    "AuthenticationError",
    "BadRequestError",
    "BudgetUnavailableError",
    "ClientClosedError",
    "EndpointNotFoundError",
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
    "SubmitOutcomeUnknownError",
    "TelegentError",
    "TransportError",
    "TransportTimeoutError",
    "UnprocessableEntityError",
    "is_credentials_error",
]


class TelegentError(Exception):
    """Base class of every error raised by telegent_async.

    `http_status`: the status a web backend would usually answer its own caller with when this
    error ends a request (README, "In a web backend"). Never 401/403: those would tell the
    backend's caller that *its* credentials are wrong, when Telegent refused the backend's
    own. 502: Telegent answered something the backend cannot use; 503: Telegent is out of
    reach or asks us to slow down (retry later); 504: no answer in time. An API status's
    is `_status.STATUS_RULES`'s.
    """

    http_status: ClassVar[int] = 502


class APIStatusError(TelegentError):
    """The API answered with an error status.

    Args:
        status_code: The HTTP status of the answer.
        message: The server's `Message` (its first `BODY_EXCERPT_CHARS`), or a description
            of a body that had none.
        body: The decoded JSON error object when there was one, else the first
            `BODY_EXCERPT_CHARS` (500) characters of the body as text.
    """

    http_status: ClassVar[int] = 502  # a status the SDK has no class for (3xx, 409, 418 ...)

    def __init__(self, status_code: int, message: str, body: object = None) -> None:
        super().__init__(f"HTTP {status_code}: {message}")
        self.status_code = status_code
        self.message = message
        self.body = body

    @property
    def carrier_error(self) -> CarrierError | None:
        """The code the refusal's `Message` carries, decoded with what comes next (an update or
        cancel refused with `GENS-0041`: no port-in found; stuck, when both say so), or None
        when the message carries no code."""
        decoded = decode_carrier_message(self.message)
        return decoded if decoded is not None and decoded.code is not None else None


class BadRequestError(APIStatusError):
    """400: the request was malformed; retrying will not help."""


class UnprocessableEntityError(BadRequestError):
    """422: a business rule refused the request (well formed, yet not allowed: say a number
    that is not portable); retrying will not help."""


class AuthenticationError(APIStatusError):
    """401, or a token request answered `successful: false`: check the credentials."""


class PermissionDeniedError(APIStatusError):
    """403: the token is valid but not allowed here (often a token of another scope)."""


class NotFoundError(APIStatusError):
    """404: no such order (or endpoint)."""

    http_status: ClassVar[int] = 404  # the caller can act on it as is


class EndpointNotFoundError(NotFoundError):
    """404 from no endpoint at all (a routing miss, not an answer about an order): the base
    URL is wrong, e.g. `.../v2.0` or the host root. Every call would get it. A web backend
    answers 502 for it (its own setup is wrong), not the 404 of an unknown order.

    Args:
        status_code: 404.
        message: The server's words (its `Message`, or a description of its page).
        body: As in `APIStatusError`.
    """

    http_status: ClassVar[int] = 502  # the backend is misconfigured: no order is to blame

    def __init__(self, status_code: int, message: str, body: object = None) -> None:
        super().__init__(status_code, message, body)
        self.args = (
            f"HTTP {status_code}: no API endpoint at this URL: the base URL looks wrong "
            f"(Telegent's is {DEFAULT_BASE_URL}); the server said: {message}",
        )


class MethodNotAllowedError(APIStatusError):
    """405: the endpoint does not accept this method."""


class RequestTimeoutError(APIStatusError):
    """408: the server gave up waiting for the request; retried automatically."""

    http_status: ClassVar[int] = 504


class RateLimitError(APIStatusError):
    """429: the account's rate limit was exceeded; retried automatically.

    Args:
        status_code: 429.
        message: As in `APIStatusError`.
        body: As in `APIStatusError`.
        retry_after: Seconds the server asked to wait (its Retry-After), or None.
    """

    http_status: ClassVar[int] = 503  # "come back later"

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

    http_status: ClassVar[int] = 503


class GatewayTimeoutError(ServerError):
    """504."""

    http_status: ClassVar[int] = 504


class TransportError(TelegentError):
    """The connection failed or an attempt timed out, on every try."""

    http_status: ClassVar[int] = 503  # Telegent out of reach


class TransportTimeoutError(TransportError):
    """No answer in time: the last attempt outlived the client's `timeout`, or the call's own
    `timeout=` passed (while waiting for a token, the request budget or an answer)."""

    http_status: ClassVar[int] = 504  # no answer in time


class BudgetUnavailableError(TelegentError):
    """A shared budget's Redis could not be reached before the call's deadline.

    The request was not sent: a request never goes out unbudgeted. Transient: a watcher
    keeps the order pending and polls it once the budget answers again.
    """

    http_status: ClassVar[int] = 503  # a dependency of ours is out of reach


class ConnectionNotMadeError(TransportError):
    """The connection was never made (refused, no route, DNS, TLS handshake): the request
    cannot have reached Telegent, so even a call that creates an order is sent again."""


class SubmitOutcomeUnknownError(TelegentError):
    """A call that creates an order (or a webhook subscription: `create_webhook`) failed after
    its request may have reached Telegent.

    The order may or may not exist: after an attempt timed out, a connection reset once the
    request was sent, a 500, 502, 504 (or 408), or a 2xx that could not be read, sending again
    could create it twice, so the SDK does not. The message says how to find out; for a
    port-in, `check_port_in_eligibility` of the number shows a port-in already active.

    Args:
        call: The call's name (`"submit_port_in"`).
        cause: The failure of the last attempt (also `__cause__`).
        how_to_check: What to do before trying again (it never quotes a secret).
    """

    http_status: ClassVar[int] = 502

    def __init__(self, call: str, cause: TelegentError, how_to_check: str) -> None:
        super().__init__(
            f"{call}: the order may or may not have been created ({cause}). {how_to_check}"
        )
        self.call = call
        self.cause = cause
        self.how_to_check = how_to_check
        self.__cause__ = cause


class ResponseDecodeError(TelegentError):
    """The server answered something that is not an order (or not a token answer), or an
    order other than the one asked for. An order lookup is retried before this is raised.

    Args:
        message: What was wrong with the answer.
        status_code: The HTTP status of the answer.
        body: The body as text; only its first `BODY_EXCERPT_CHARS` are kept.
    """

    http_status: ClassVar[int] = 502  # an answer that is not an order (a proxy's page ...)

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
    """The wait's deadline passed before the order settled.

    When polls were failing, the last failure is the `__cause__` (for the `timeout` of
    `OrderWatcher.wait`, too, which gives up waiting while the watch goes on).

    Args:
        order_id: The order waited for.
        last_order: The last `Order` seen, or None when no poll was answered.
        timeout: The wait's timeout in seconds, or None for an absolute deadline.
        polled: False when the request budget never reached the order before its deadline.
    """

    http_status: ClassVar[int] = 504  # the wait's deadline passed

    def __init__(
        self,
        order_id: str,
        last_order: Order | None,
        timeout: float | None,
        *,
        polled: bool = True,
    ) -> None:
        if not polled:  # the request budget never reached it: the server is not to blame
            detail = "never polled: the request budget let no poll of it out in time"
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
    """Raised by `Order.raise_for_status()` for an order that did not succeed.

    Args:
        order: The settled order; its `carrier_error` is also `self.carrier_error`.
    """

    http_status: ClassVar[int] = 409  # settled other than successfully: a conflict, not a fault

    def __init__(self, order: Order) -> None:
        self.order = order
        self.carrier_error: CarrierError | None = order.carrier_error
        detail = ""
        if self.carrier_error is not None:
            detail = f": {self.carrier_error.description} Remedy: {self.carrier_error.remedy}"
        elif order.status_message:
            detail = f": {order.status_message}"
        super().__init__(f"order {order.order_id!r} is {order.raw_status}{detail}")


def is_credentials_error(error: BaseException | None) -> bool:
    """Whether `error` says the API refused the credentials (401/403): about the account, never
    about an order, so no watch settles with it."""
    return isinstance(error, (AuthenticationError, PermissionDeniedError))
