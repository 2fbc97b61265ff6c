"""Canned answers: error bodies modelled on the real API, port-in confirmations."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Final

import attrs
from aiohttp import web
from multidict import CIMultiDict

JSON: Final = "application/json"

# Messages modelled on the real API's error bodies (an ASP.NET Web API behind a gateway).
MESSAGES: Final[dict[int, str]] = {
    400: "The request is invalid.",
    401: "Authorization has been denied for this request.",
    403: "Access to this resource is forbidden for this token.",
    404: "Order not found",
    405: "The requested resource does not support http method 'GET'.",
    408: "The request timed out before the server could complete it.",
    422: "The request could not be processed: a business rule refused it.",
    429: "Too many requests. Rate limit exceeded.",
    500: "An error has occurred.",
    502: "Bad gateway: the upstream service returned an invalid response.",
    503: "The service is temporarily unavailable. Please try again later.",
    504: "The gateway timed out waiting for the upstream service.",
}

HTML_502: Final = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)


@functools.lru_cache(maxsize=256)
def _error_body(status: int, text: str) -> bytes:
    # Cached: a rate-limited benchmark answers the same 429 tens of thousands of times.
    return json.dumps({"StatusCode": status, "Message": text}).encode()


def error_response(status: int, message: str | None = None) -> web.Response:
    """An API error answer; `message` defaults to the real API's text for `status`."""
    text = message if message is not None else MESSAGES.get(status, "Error")
    return web.Response(status=status, body=_error_body(status, text), content_type=JSON)


def no_route(url: str) -> web.Response:
    """ASP.NET Web API's 404 for a URL no endpoint matches: a `Message`, no `StatusCode`."""
    text = f"No HTTP resource was found that matches the request URI '{url}'."
    return web.Response(status=404, body=json.dumps({"Message": text}).encode(), content_type=JSON)


def method_not_allowed(method: str) -> web.Response:
    return error_response(405, f"The requested resource does not support http method '{method}'.")


def json_answer(order_id: str, status: str, message: str) -> web.Response:
    """A port-in update's or cancel's confirmation."""
    body = {"OrderId": order_id, "Status": status, "Message": message}
    return web.Response(body=json.dumps(body).encode(), content_type=JSON)


def enveloped(response: web.Response) -> web.Response:
    """A JSON answer wrapped as `{"Successful": true, "Data": ...}` (the documented wrapper)."""
    assert isinstance(response.body, bytes)
    data = json.loads(response.body)
    body = json.dumps({"Successful": True, "Data": data}).encode()
    kept = {
        k: v for k, v in response.headers.items() if k not in ("Content-Type", "Content-Length")
    }
    return web.Response(status=response.status, body=body, content_type=JSON, headers=kept)


def embedded_error() -> web.Response:
    """A 200 whose body is an error (`{"StatusCode": 400, "Message": ...}`)."""
    body = _error_body(400, "The request is invalid: rejected inside a 200 answer.")
    return web.Response(status=200, body=body, content_type=JSON)


@attrs.frozen
class Fixed:
    """Exact bytes to answer for one order (`FakeTelegent.set_response`)."""

    status: int
    body: bytes
    headers: CIMultiDict[str]

    @classmethod
    def of(
        cls,
        status: int,
        body: bytes | str,
        content_type: str | None,
        headers: Mapping[str, str] | None = None,
    ) -> Fixed:
        """The answer a test scripts: its body as bytes, its Content-Type among its headers."""
        raw = body.encode() if isinstance(body, str) else bytes(body)
        hdrs: CIMultiDict[str] = CIMultiDict(headers or {})
        if content_type is not None and "Content-Type" not in hdrs:
            hdrs["Content-Type"] = content_type
        return cls(status, raw, hdrs)

    def response(self) -> web.Response:
        return web.Response(status=self.status, body=self.body, headers=self.headers)
