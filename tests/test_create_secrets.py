"""The secrets of the calls that create orders (account number and password, port-out PIN) are
never in logs (DEBUG included), reprs, errors, `raw` or span attributes, even when Telegent's
answer quotes them back."""

from __future__ import annotations

import json
import logging

import pytest
from helpers import chain, fast_client
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import telegent_async as tg
from telegent_async import _portin
from telegent_async.testing import PORTIN_SUBMIT_PATH, PORTOUT_PATH, FakeTelegent

ACCOUNT = "ACCT-5551-hush"
PASSWORD = "pw-9182-hush"
PIN = "PIN-7734-hush"
SECRETS = (ACCOUNT, PASSWORD, PIN)
ADDRESS = tg.BillingAddress(street1="1 Main St", city="Houston", state="TX", zip="77002")


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, text


async def submit(client: tg.TelegentClient) -> tg.SubmittedOrder:
    return await client.submit_port_in(
        "+12815551234",
        current_carrier_name="Verizon",
        current_account_number=ACCOUNT,
        current_account_password=PASSWORD,
        current_billing_address=ADDRESS,
    )


def quoting(status: int, **extra: object) -> str:
    """An answer that quotes the request back, secrets included, as a careless API might."""
    echo = {"CurrentAccountNumber": ACCOUNT, "CurrentAccountPassword": PASSWORD}
    message = f"bad: {ACCOUNT}/{PASSWORD}"
    return json.dumps({"StatusCode": status, "Message": message, **extra, **echo})


@pytest.mark.parametrize(
    ("status", "error"),
    [(200, tg.BadRequestError), (422, tg.UnprocessableEntityError), (500, None)],
)
async def test_an_answer_quoting_the_secrets_reaches_no_log_error_or_span(
    fake: FakeTelegent,
    caplog: pytest.LogCaptureFixture,
    spans: InMemorySpanExporter,
    status: int,
    error: type[tg.TelegentError] | None,
) -> None:
    caplog.set_level(logging.DEBUG)
    body = quoting(400 if status == 200 else status)
    fake.set_create_answer(PORTIN_SUBMIT_PATH, status=status, body=body)
    fake.inject("429", path=PORTIN_SUBMIT_PATH, retry_after="0")  # a retry: events, logs
    tracer = trace.get_tracer("test", tracer_provider=spans_provider(spans))
    async with fast_client(fake) as client:
        with (
            tracer.start_as_current_span("caller"),
            pytest.raises(error or tg.SubmitOutcomeUnknownError) as caught,
        ):
            await submit(client)
        client_repr = repr(client)
    texts = [caplog.text, client_repr, repr(fake.requests), str(fake.create_requests())]
    for link in chain(caught.value):
        texts += [str(link), repr(link), repr(getattr(link, "body", None))]
        texts += [repr(vars(link))]
    for span in spans.get_finished_spans():
        texts.append(repr(dict(span.attributes or {})))
        texts += [repr(dict(event.attributes or {})) for event in span.events]
    assert_no_secret(*texts)
    assert "***" in str(caught.value)  # masked where the answer quoted it
    assert any("retry" in record.getMessage() for record in caplog.records)


def spans_provider(exporter: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


async def test_raw_and_reprs_of_a_success_hold_no_secret(
    fake: FakeTelegent, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    answer = {"OrderId": "JNUOID-p1", "Status": "Pending", "Echo": f"PIN {PIN} accepted"}
    fake.set_create_answer(PORTOUT_PATH, body=json.dumps(answer))
    async with fast_client(fake) as client:
        out = await client.port_out("+12815551234", pin=PIN)
        sub = await submit(client)
    assert out.order_id == "JNUOID-p1" and out.raw["Echo"] == "PIN *** accepted"
    assert_no_secret(repr(out), repr(out.raw), repr(sub), repr(sub.raw), caplog.text)
    # The fake's log keeps what was sent (a test may check it) but shows it masked.
    assert fake.create_requests(PORTOUT_PATH)[0].body == {
        "PortOutNumber": "+12815551234",
        "PortOutPIN": PIN,
    }
    assert_no_secret(repr(fake.create_requests()))
    assert "PortOutPIN" in caplog.text  # the fields are named, never their values


def _aspnet(text: str) -> str:
    """`text` as ASP.NET's JSON writer escapes it: `+ & < > '` as upper-case `\\u` escapes."""
    return "".join(f"\\u{ord(c):04X}" if c in "+&<>'" else c for c in text)


def test_a_secret_escaped_another_way_is_masked_in_a_json_body() -> None:
    password, pin, nested = _aspnet("Pa+ss&word1"), _aspnet("12+34"), _aspnet("<&>")
    body = (
        f'{{"StatusCode":400,"Message":"password \'{password}\' refused for +12815551234",'
        f'"PortOutPIN":"{pin}","Nested":[{{"x":"Pa{nested}"}}]}}'
    ).encode()
    masked = json.loads(_portin.redact(body, ("Pa+ss&word1", "12+34", "Pa<&>")))
    assert masked == {
        "StatusCode": 400,
        "Message": "password '***' refused for +12815551234",
        "PortOutPIN": "***",
        "Nested": [{"x": "***"}],
    }
    # Not JSON: masked as bytes, literally.
    assert _portin.redact(b"<p>Pa+ss&word1</p>", ("Pa+ss&word1",)) == b"<p>***</p>"


async def test_a_secret_the_server_escapes_differently_reaches_no_error_or_raw() -> None:
    async with FakeTelegent() as fake, fast_client(fake) as client:
        pin = "12+34&x"
        refused = f'{{"StatusCode":400,"Message":"PIN {_aspnet(pin)} refused"}}'
        fake.set_create_answer(PORTOUT_PATH, status=400, body=refused)
        with pytest.raises(tg.BadRequestError) as caught:
            await client.port_out("+12815551234", pin=pin)
        assert pin not in str(caught.value) and pin not in repr(caught.value.body)
        echoed = {"OrderId": "JNUOID-1", "Status": "Pending", "PortOutPIN": _aspnet(pin)}
        fake.set_create_answer(PORTOUT_PATH, body=json.dumps(echoed).replace("\\\\", "\\"))
        sub = await client.port_out("+12815551234", pin=pin)
    assert sub.order_id == "JNUOID-1"
    assert pin not in json.dumps(sub.raw) and pin not in repr(sub)
