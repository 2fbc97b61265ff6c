"""What one call asks of the send path: its request, and whether it may be sent twice (pure).

A call of the client (an order lookup, a token request, a port-in update, a create, a webhook
call) builds a `Request` and hands it to `Transport.send` with a `decode` function::

    request = Request("POST", url, scope=str(url), json=body, creates=Creates(...))
    answer = await transport.send(request, decode, deadline=deadline)

and nothing else: status, retries, Retry-After, error bodies inside a 2xx, the
`{"Successful": true, "Data": ...}` wrapper and content types are the send path's
(`_answers.read_answer`, `_retry.decide_attempt`), the same for every call.

`decode` receives the JSON value of a 2xx answer (unwrapped, never an error object) and returns
the call's result, or raises `ValueError` (`TypeError`, `KeyError`) when it is not what the call
expects: the answer is then garbled, a `ResponseDecodeError` retried like a 5xx (a create
raises `SubmitOutcomeUnknownError` instead: its order may exist).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import attrs
from yarl import URL

from ._errors import SubmitOutcomeUnknownError, TelegentError

__all__ = ["Creates", "Request", "lookup_url"]

#: RFC 3986's unreserved characters: a query value made of them is sent as it is.
_UNRESERVED = re.compile(r"[A-Za-z0-9._~-]*")


def lookup_url(endpoint: str, order_id: str) -> URL:
    """The URL of a lookup, `endpoint?OrderId=<order_id>`, built as text.

    Built by yarl from `params=` (`URL.extend_query`), the URL and the parts of it aiohttp
    then reads cost 2 us more per lookup (timeit 2026-12-06). An ID of unreserved characters
    (every Telegent ID: `JNUOID-<uuid>`) goes as it is; any other is percent-encoded.
    """
    value = order_id if _UNRESERVED.fullmatch(order_id) else quote(order_id, safe="")
    return URL(f"{endpoint}?OrderId={value}", encoded=True)


@attrs.frozen
class Creates:
    """The request creates an order: not safe to send twice.

    Attributes:
        call: The call's name, for the error (`"submit_port_in"`).
        how_to_check: How a user finds out whether the order exists (never a secret).
    """

    call: str
    how_to_check: str

    def outcome_unknown(self, cause: TelegentError) -> SubmitOutcomeUnknownError:
        """The error for a failure after which the order may or may not exist."""
        return SubmitOutcomeUnknownError(self.call, cause, self.how_to_check)


@attrs.frozen
class Request:
    """One call's request, as the send path needs it.

    Attributes:
        method: The HTTP method.
        url: The endpoint's URL.
        scope: The token scope the request is sent with (its endpoint's URL), or None for
            the token request itself: that one is sent without a token, takes the budget's
            first free slot, never has its answer quoted (it may hold a token), and reads a
            bare `successful: false` as a 401.
        params: The query parameters, or None.
        json: The JSON body, or None.
        creates: Set for a call that creates an order (see `Creates`); None: the request is
            safe to repeat and is retried like a lookup.
        secrets: Values the request carries that are masked in every answer before anything
            reads it (an error answer may quote them back).
        private: The answers may hold secrets the request does not carry (a webhook's stored
            credentials): a 2xx that cannot be read is never quoted in the error.
    """

    method: str
    url: URL
    scope: str | None
    params: Mapping[str, str] | None = None
    json: Mapping[str, Any] | None = attrs.field(default=None, repr=False)
    creates: Creates | None = None
    secrets: tuple[str, ...] = attrs.field(default=(), repr=False)
    private: bool = False
