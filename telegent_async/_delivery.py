"""What a webhook delivery names: every OrderId in a JSON or XML body (pure, no I/O).

Telegent's `Order_Update` payload is unpublished, so the parsers look everywhere sensible: an
`OrderId` key/element/attribute (any case, `_` or `-` ignored) holding a string, or `OrderIds`
holding a list of strings (JSON) or elements (XML), at the top level, inside wrappers (`data`,
`payload`, `Order`, `event` ... anything) and in lists of events, down to `MAX_DEPTH` levels.
Values that are not plausible order IDs (empty, blank, control characters, over 200
characters) are skipped.

XML goes through `defusedxml` with DTDs forbidden: a document type declaration, an entity
(the "billion laughs" expansion) or an external reference is refused at once, before anything
is expanded or fetched, as `ValueError` like any other unreadable body.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Final, Literal
from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree

from . import _validate

__all__ = ["MAX_DEPTH", "DataFormat", "data_format_of", "order_ids"]

#: How deep an order ID is still looked for (wrappers and event lists nest a few).
MAX_DEPTH: Final = 16

_ID_KEY = "orderid"  # OrderId, orderId, order_id, ORDER-ID ...
_IDS_KEY = "orderids"

DataFormat = Literal["json", "xml"]


def data_format_of(content_type: str | None, body: bytes) -> DataFormat:
    """JSON or XML: as the Content-Type says (`application/xml`, `text/xml`, `...+xml`, or
    JSON's), else by the body's first non-blank byte (`<` is XML)."""
    if content_type:
        media = content_type.partition(";")[0].strip().lower()
        if media.endswith(("/xml", "+xml")):
            return "xml"
        if media.endswith(("/json", "+json")):
            return "json"
    return "xml" if body.lstrip(b" \t\r\n\xef\xbb\xbf").startswith(b"<") else "json"


def order_ids(
    body: bytes | bytearray | memoryview, data_format: DataFormat | None = None
) -> list[str]:
    """Every order ID a delivery names, once each (an object's own before those inside it).

    Pure and total: it raises only `ValueError` for a body that cannot be read in its format
    (not UTF-8/16/32 JSON, malformed, nested too deep, XML with a DTD or entities) and
    `TypeError` for an argument that is not bytes.

    Args:
        body: The delivery's body.
        data_format: `"json"` or `"xml"`; None picks by the body (`data_format_of`).
    """
    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise TypeError(f"body must be bytes, not {type(body).__name__}")
    data = bytes(body)
    if (data_format or data_format_of(None, data)) == "xml":
        return list(dict.fromkeys(_xml_ids(data)))
    return list(dict.fromkeys(_json_ids(data)))


def _keep(value: object) -> Iterator[str]:
    # Not an order ID (a number, an object, a blank or absurd string): skipped.
    with contextlib.suppress(TypeError, ValueError):
        yield _validate.order_id(value)


def _is(key: str, wanted: str) -> bool:
    return key.lower().replace("_", "").replace("-", "") == wanted


def _json_ids(body: bytes) -> Iterator[str]:
    try:
        document = json.loads(body)
    except RecursionError:
        raise ValueError("the body is JSON nested too deeply to read") from None
    stack: list[tuple[object, int]] = [(document, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            continue
        if isinstance(node, dict):
            children = []
            for key, value in node.items():
                if _is(key, _ID_KEY):
                    yield from _keep(value)
                elif _is(key, _IDS_KEY) and isinstance(value, list):
                    for item in value:
                        yield from _keep(item)
                else:
                    children.append(value)
            stack.extend((child, depth + 1) for child in reversed(children))
        elif isinstance(node, list):
            stack.extend((child, depth + 1) for child in reversed(node))


def _local(tag: object) -> str:
    """An element's or attribute's name without its `{namespace}`."""
    return str(tag).rpartition("}")[2]


def _xml_ids(body: bytes) -> Iterator[str]:
    try:
        root = defusedxml.ElementTree.fromstring(body, forbid_dtd=True)
    except defusedxml.DefusedXmlException as exc:
        raise ValueError(f"XML refused: {type(exc).__name__} (no DTDs or entities)") from None
    except (ParseError, RecursionError) as exc:
        raise ValueError(f"the body is not well-formed XML: {exc}") from None
    stack: list[tuple[Element, int]] = [(root, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            continue
        for name, value in node.attrib.items():
            if _is(_local(name), _ID_KEY):
                yield from _keep(value.strip())
        children = []
        for child in node:
            name = _local(child.tag)
            if _is(name, _ID_KEY) and len(child) == 0:
                yield from _keep((child.text or "").strip())
            elif _is(name, _IDS_KEY):
                for item in child:
                    yield from _keep((item.text or "").strip())
            else:
                children.append(child)
        if depth == 0 and _is(_local(node.tag), _ID_KEY) and len(node) == 0:
            yield from _keep((node.text or "").strip())
        stack.extend((child, depth + 1) for child in reversed(children))
