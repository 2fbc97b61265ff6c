"""A hostile server echoes secrets back: the bearer token, a webhook's stored credentials or
its URL's secret path segment, a short PIN. None of them reaches an error (its text, chain,
traceback or `body`), a log, a span or `raw`; and masking never garbles what is no secret."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import traceback

import pytest
from helpers import chain, fast_client
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import telegent_async as tg
from telegent_async import _portin, _webhook
from telegent_async._error_text import broken_answer
from telegent_async.testing import PORTOUT_PATH, FakeTelegent, Step

PATH_SECRET = "Zq7wPathSecret0123456789"
HOOK_URL = f"https://hooks.example.com/telegent/{PATH_SECRET}"
STORED_TOKEN = "stored-bearer-Kx81-0000000000"


def exposed(error: BaseException) -> str:
    """Everything of an error a person, a log or an error tracker may see."""
    texts = ["".join(traceback.format_exception(error))]
    for link in chain(error):
        texts += [str(link), repr(link), repr(vars(link))]
    return "\n".join(texts)


def span_text(exporter: InMemorySpanExporter) -> str:
    texts = []
    for span in exporter.get_finished_spans():
        texts.append(repr(dict(span.attributes or {})) + repr(span.status.description))
        texts += [repr(dict(event.attributes or {})) for event in span.events]
    return "\n".join(texts)


def _aspnet(text: str) -> str:
    """`text` as ASP.NET's JSON writer escapes it: `+ / -` too, as upper-case `\\u` escapes."""
    return "".join(f"\\u{ord(c):04X}" if c in "+/-_" else c for c in text)


# -- the bearer token ----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 500, 200])
async def test_an_answer_quoting_the_bearer_token_reaches_no_error_log_or_span(
    fake: FakeTelegent,
    caplog: pytest.LogCaptureFixture,
    spans: InMemorySpanExporter,
    status: int,
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.add_order("JNUOID-t1", [Step("Pending", 0.0)])
    token = fake.issue_token("/v1.0/numbers/order")
    code = 400 if status == 200 else status  # a 200 carries the error inside
    message = f"token {_aspnet(token)} refused (Authorization: Bearer {token})"
    body = f'{{"StatusCode": {code}, "Message": "{message}", "Echo": {{"t": "{token}"}}}}'
    fake.set_response("JNUOID-t1", status=status, body=body)
    async with fast_client(fake, token=token, max_retries=1) as client:
        with pytest.raises(tg.APIStatusError) as caught:
            await client.get_order("JNUOID-t1")
    text = exposed(caught.value) + repr(caught.value.body) + caplog.text + span_text(spans)
    assert token not in text
    assert caught.value.status_code == code
    assert caught.value.message == "token *** refused (Authorization: Bearer ***)"
    if status == 500:
        assert "retry 1/1" in caplog.text  # the retry's DEBUG line quoted the masked failure


async def test_an_answer_http_cannot_parse_is_reported_without_the_bytes_it_held(
    fake: FakeTelegent, caplog: pytest.LogCaptureFixture
) -> None:
    # A wrong Content-Length: the rest of the body is read as the next status line, which
    # aiohttp's error quotes (as it quotes a header line it refuses).
    caplog.set_level(logging.DEBUG)
    token = fake.issue_token("/v1.0/numbers/order")
    fake.set_response("JNUOID-t3", body=f"Bearer {token}", headers={"Content-Length": "3"})
    async with fast_client(fake, token=token, max_retries=1) as client:
        with pytest.raises(tg.TransportError) as caught:
            await client.get_order("JNUOID-t3")
    assert token not in exposed(caught.value) + caplog.text
    assert str(caught.value).startswith("GET failed: ClientResponseError: ")
    assert "retry 1/1" in caplog.text


@pytest.mark.parametrize("ending", [b"", b"Content-Length: 9\r\n\r\n{", b"X: 1\r\n\r\n5\r\n"])
async def test_an_answer_cut_off_after_its_head_keeps_the_head_out_of_the_error(
    ending: bytes,
) -> None:
    # Headers echoing the token, then the connection closes: mid-head (aiohttp's error then
    # holds the head it read, headers included), mid-body, or mid-chunk. The FakeTelegent
    # answers whole heads, so this is a bare server on 127.0.0.1.
    token = "tok-" + "Hx7" * 10
    head = f"HTTP/1.1 200 OK\r\nWWW-Authenticate: Bearer {token}\r\n".encode() + ending
    if ending.startswith(b"X"):
        head = head.replace(b"X: 1", b"Transfer-Encoding: chunked")

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(head)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    base_url = f"http://127.0.0.1:{port}/v1.0"
    async with (
        server,
        tg.TelegentClient(
            token=token, base_url=base_url, allow_insecure=True, max_retries=0
        ) as client,
    ):
        with pytest.raises(tg.TransportError) as lookup:
            await client.get_order("JNUOID-t4")
        with pytest.raises(tg.SubmitOutcomeUnknownError) as create:
            await client.port_out("+12815551234", pin="PIN-7734-hush")
    for error in (lookup.value, create.value):
        assert token not in exposed(error)
    assert str(lookup.value).startswith("GET failed: ")


def test_a_parser_error_is_said_by_its_reason_only() -> None:
    # aiohttp's pure-Python parser quotes inline; its C parser after a colon and a newline.
    texts = {
        "Bad status line 'HTTP/1.1 40 s3cret'": "Bad status line",
        "Invalid HTTP header: b'Authorization Bearer s3cret'": "Invalid HTTP header",
        "Got more than 99 bytes when reading: b's3cret'.": "Got more than 99 bytes when reading",
        "Invalid character in chunk size:\n\n  b's3cret'\n  ^": "Invalid character in chunk size",
        "400, message:\n  Can not decode content-encoding: gzip": "Can not decode content-encoding",
        "Response payload is not completed: <TransferEncodingError: 400, message='s3cret'>": (
            "Response payload is not completed"
        ),
        "Server disconnected": "Server disconnected",
    }
    for text, reason in texts.items():
        assert broken_answer("GET", OSError(text)) == f"GET failed: OSError: {reason}"
    assert broken_answer("POST", OSError()) == "POST failed: OSError"


async def test_an_order_quoting_the_bearer_token_keeps_it_out_of_raw(fake: FakeTelegent) -> None:
    token = fake.issue_token("/v1.0/numbers/order")
    answer = {"OrderId": "JNUOID-t2", "OrderStatus": "Pending", "Debug": f"Bearer {token}"}
    fake.set_response("JNUOID-t2", body=json.dumps(answer))
    async with fast_client(fake, token=token) as client:
        order = await client.get_order("JNUOID-t2")
    assert order.raw["Debug"] == "Bearer ***"
    assert order.order_id == "JNUOID-t2"


# -- webhook subscriptions -----------------------------------------------------------------------


def test_a_trailing_slash_does_not_unmask_the_urls_secret_segment() -> None:
    assert _webhook.masked_url(HOOK_URL + "/") == "https://hooks.example.com/telegent/***/"
    assert (
        _webhook.masked_url(HOOK_URL + "//?x=1") == "https://hooks.example.com/telegent/***//?***"
    )
    assert _webhook.masked_url("https://h.example.com/a/short/") == "https://h.example.com/a/short/"


async def test_a_webhook_url_with_a_trailing_slash_is_masked_in_logs_and_reprs(
    fake: FakeTelegent, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with fast_client(fake) as client:
        hook = await client.create_webhook(HOOK_URL + "/", account_id="AID-1")
    assert hook.url == HOOK_URL + "/"  # the URL itself, as set
    assert PATH_SECRET not in caplog.text + repr(hook) + json.dumps(hook.raw)
    assert "subscribing" in caplog.text


async def test_a_refusal_quoting_the_webhook_url_keeps_its_secret_segment_out(
    fake: FakeTelegent, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    refusal = {"StatusCode": 400, "Message": f"WebhookUrl {HOOK_URL} did not answer"}
    fake.set_webhook_response(400, json.dumps(refusal))
    async with fast_client(fake) as client:
        with pytest.raises(tg.BadRequestError) as caught:
            await client.create_webhook(HOOK_URL, account_id="AID-1")
        fake.set_webhook_response(None)
        hook = await client.create_webhook(HOOK_URL, account_id="AID-1")
    assert PATH_SECRET not in exposed(caught.value) + caplog.text
    assert (
        caught.value.message == "WebhookUrl https://hooks.example.com/telegent/*** did not answer"
    )
    assert hook.url == HOOK_URL  # an answer that echoes it whole still gives the real URL


async def test_a_refusal_quoting_basic_credentials_as_sent_keeps_them_out(
    fake: FakeTelegent,
) -> None:
    password = "pw-" + "Vb3" * 6
    sent = base64.b64encode(f"telegent:{password}".encode()).decode()
    refusal = {"StatusCode": 400, "Message": f"test delivery refused: Authorization: Basic {sent}"}
    fake.set_webhook_response(400, json.dumps(refusal))
    async with fast_client(fake) as client:
        with pytest.raises(tg.BadRequestError) as caught:
            auth = tg.WebhookAuth.basic("telegent", password)
            await client.create_webhook(HOOK_URL, account_id="AID-1", auth=auth)
    assert sent not in exposed(caught.value) and password not in exposed(caught.value)
    assert caught.value.message == "test delivery refused: Authorization: Basic ***"


@pytest.mark.parametrize(
    ("status", "body", "content_type"),
    [
        (400, json.dumps({"StatusCode": 400, "Message": f"WebhookUrl {HOOK_URL} is down"}), None),
        (200, json.dumps({"StatusCode": 422, "Message": f"'{HOOK_URL}?k=v' is down"}), None),
        (
            404,
            f"<html><p>No webhook at <a href='{HOOK_URL}'>{HOOK_URL}</a></p></html>",
            "text/html",
        ),
    ],
)
async def test_a_webhook_refusal_quoting_a_url_on_file_masks_its_secret_segment(
    fake: FakeTelegent,
    caplog: pytest.LogCaptureFixture,
    status: int,
    body: str,
    content_type: str | None,
) -> None:
    # The request carries no URL (an update of the events, a lookup): found as a URL.
    caplog.set_level(logging.DEBUG)
    fake.set_webhook_response(status, body, content_type=content_type or "application/json")
    async with fast_client(fake, max_retries=0) as client:
        with pytest.raises(tg.APIStatusError) as updating:
            await client.update_webhook("WID-1", events=("Order_Update",))
        with pytest.raises(tg.APIStatusError) as getting:
            await client.get_webhook("WID-1")
    for caught in (updating, getting):
        assert PATH_SECRET not in exposed(caught.value) + repr(caught.value.body)
        assert "https://hooks.example.com/telegent/***" in caught.value.message
    assert PATH_SECRET not in caplog.text


@pytest.mark.parametrize("status", [200, 400, 500])
async def test_a_webhook_error_never_keeps_stored_credentials_in_its_body(
    fake: FakeTelegent, status: int
) -> None:
    stored = {
        "WebhookId": "WID-1",
        "AuthenticationToken": STORED_TOKEN,
        "authenticationPassword": STORED_TOKEN,
    }
    code = 400 if status == 200 else status
    refusal = {"StatusCode": code, "Message": "refused", "Data": stored}
    fake.set_webhook_response(status, json.dumps(refusal))
    async with fast_client(fake, max_retries=0) as client:
        with pytest.raises(tg.APIStatusError) as caught:
            await client.get_webhook("WID-1")
    assert STORED_TOKEN not in exposed(caught.value) + repr(caught.value.body)
    assert caught.value.status_code == code
    assert caught.value.body == {
        "StatusCode": code,
        "Message": "refused",
        "Data": {
            "WebhookId": "WID-1",
            "AuthenticationToken": "***",
            "authenticationPassword": "***",
        },
    }


# -- short secrets -------------------------------------------------------------------------------


ORDER_DATE = "2025-10-01T12:36:19.338438+00:00"


@pytest.mark.parametrize("pin", ["1", "01", "2025", "8901"])
async def test_a_short_pin_garbles_nothing_it_is_not(fake: FakeTelegent, pin: str) -> None:
    answer = {
        "OrderId": "JNUOID-10a3g876-2025-4abc",
        "Status": "Pending",
        "OrderDate": ORDER_DATE,
        "PhoneNumber": "+12815551234",
        "ICCID": "89012025678901234567",
        "ZipCode": "77001",
        "Message": f"PIN {pin} accepted; {pin}-day hold, code {pin}.",
    }
    fake.set_create_answer(PORTOUT_PATH, body=json.dumps(answer))
    async with fast_client(fake) as client:
        sub = await client.port_out("+12815551234", pin=pin)
    assert sub.order_date is not None and sub.order_date.year == 2025
    assert sub.raw == {**answer, "Message": "PIN *** accepted; ***-day hold, code ***."}


def test_a_short_secret_is_masked_only_as_a_whole_word() -> None:
    redact = _portin.redact
    body = b'{"a": "PIN 12 ok", "b": "x12y 312 12", "c": "12", "d": "p=12&q"}'
    assert json.loads(redact(body, ("12",))) == {
        "a": "PIN *** ok",
        "b": "x12y 312 ***",
        "c": "***",
        "d": "p=***&q",
    }
    assert redact(b"<p>PIN 12, 312, x12</p>", ("12",)) == b"<p>PIN ***, 312, x12</p>"
    # A long secret is masked wherever it appears, inside other words too.
    long = "Pa55word-9182"
    assert json.loads(redact(json.dumps({"m": f"x{long}y"}).encode(), (long,))) == {"m": "x***y"}
    # A whole value that is a date is still masked when it is the secret itself.
    assert json.loads(redact(b'{"m": "pw 1990-05-17 refused"}', ("1990-05-17",))) == {
        "m": "pw *** refused"
    }


def test_a_body_that_is_not_json_is_masked_html_escaped_and_cut_off() -> None:
    redact, password = _portin.redact, "Pa+ss&word<1>"
    page = b"<p>password Pa+ss&amp;word&lt;1&gt; refused</p>"
    assert redact(page, (password,)) == b"<p>password *** refused</p>"
    cut = b'{"StatusCode": 400, "Message": "bad password Pa+ss&w'  # the body ends mid-secret
    assert redact(cut, (password,)) == b'{"StatusCode": 400, "Message": "bad password ***'
    assert redact(b"total 1", ("1234",)) == b"total 1"  # less than half of it: no secret
    assert redact(b"PIN 123", ("1234",)) == b"PIN ***"
    assert redact(b"code x123", ("1234",)) == b"code x123"  # not where a short one starts


async def test_an_html_page_quoting_the_pin_escaped_reaches_no_error(fake: FakeTelegent) -> None:
    pin = "12&34<5>"
    page = "<html><body><h1>400</h1><p>PIN 12&amp;34&lt;5&gt; refused</p></body></html>"
    fake.set_create_answer(PORTOUT_PATH, status=400, body=page, content_type="text/html")
    async with fast_client(fake) as client:
        with pytest.raises(tg.BadRequestError) as caught:
            await client.port_out("+12815551234", pin=pin)
    text = exposed(caught.value)
    assert "12&amp;34" not in text and pin not in text
    assert "PIN *** refused" in caught.value.message


async def test_a_deeply_nested_answer_to_a_call_with_secrets_is_a_typed_error(
    fake: FakeTelegent,
) -> None:
    # Deep enough for json.loads, too deep to walk: masked as text, never a RecursionError.
    pin = "7734-hush"
    nested = "[" * 600 + f'"PIN {pin}"' + "]" * 600
    body = f'{{"StatusCode": 400, "Message": "refused", "Echo": {nested}}}'
    fake.set_create_answer(PORTOUT_PATH, status=400, body=body)
    async with fast_client(fake) as client:
        with pytest.raises(tg.BadRequestError) as caught:
            await client.port_out("+12815551234", pin=pin)
    assert caught.value.message == "refused"
    assert pin not in exposed(caught.value) + repr(caught.value.body)


async def test_a_secret_on_file_an_answer_echoes_by_name_is_kept_out_of_raw(
    fake: FakeTelegent,
) -> None:
    # Not the value sent (so not found by value): the account number on file, an old PIN.
    on_file, old_pin = "ACCT-ON-FILE-991", "9999-old"
    fake.add_order("JNOID-u1", [Step("Rejected", 0.0)], message="8C-PASS_PIN_REQ_OR_INCORRECT")
    echoed = {"CurrentAccountNumber": on_file, "currentAccountPassword": "OLD-PW-77"}
    update = {"OrderId": "JNOID-u1", "Status": "Updated", "Order": echoed}
    fake.set_response("JNOID-u1", body=json.dumps(update))
    created = {"OrderId": "JNUOID-p", "Status": "Pending", "Echo": [{"PortOutPIN": old_pin}]}
    fake.set_create_answer(PORTOUT_PATH, body=json.dumps(created))
    async with fast_client(fake) as client:
        updated = await client.update_port_in("JNOID-u1", current_account_password="NEW-PW-1234")
        submitted = await client.port_out("+12815551234", pin="1234-new")
    masked = {"CurrentAccountNumber": "***", "currentAccountPassword": "***"}
    assert updated.raw == {**update, "Order": masked}
    assert submitted.raw == {**created, "Echo": [{"PortOutPIN": "***"}]}


async def test_an_unusable_answer_quoting_a_secret_on_file_keeps_it_out_of_the_error(
    fake: FakeTelegent,
) -> None:
    old_pin = "9999-old"
    answer = {"Status": "Pending", "Echo": {"PortOutPIN": old_pin}}  # and no OrderId
    fake.set_create_answer(PORTOUT_PATH, body=json.dumps(answer))
    async with fast_client(fake) as client:
        with pytest.raises(tg.SubmitOutcomeUnknownError) as caught:
            await client.port_out("+12815551234", pin="1234-new")
    assert old_pin not in exposed(caught.value)
    assert isinstance(caught.value.cause, tg.ResponseDecodeError)
    assert caught.value.cause.body == '{"Status": "Pending", "Echo": {"PortOutPIN": "***"}}'
