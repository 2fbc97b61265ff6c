"""Webhook subscriptions (Telegent v1.1.0): the models, request bodies and answers (pure, no I/O).

`create_webhook` and friends build their bodies here under Telegent's field names
(REFERENCE.md, "Webhooks"): `AccountId`, `WebhookUrl` (HTTPS, at most 255 characters),
`Method` (`POST`/`PUT`), `DataFormat` (`json`/`xml`), `AuthenticationType` (`None`, `Basic`,
`Token`) with `AuthenticationUsername`/`AuthenticationPassword` or `AuthenticationToken`, and
`SubscribedEvents` as one comma-separated string. Every value is checked before a request.

The delivery's credentials are secrets: `WebhookAuth`'s repr hides them, a bad one is refused
without quoting it, and answers are scrubbed of them (by value and by field name, at any depth)
before anything reads or keeps them. The same `WebhookAuth` checks a delivery's `Authorization`
header in the receiver (`webhooks`), in constant time.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final, Literal

import attrs
from yarl import URL

from . import _secrets
from ._secrets import MASK, WEBHOOK_SECRET_FIELDS

__all__ = [
    "CREATE_PATH",
    "DELETE_PATH",
    "GET_PATH",
    "HOW_TO_CHECK_CREATE",
    "LIST_PATH",
    "SECRET_FIELDS",
    "UPDATE_PATH",
    "Webhook",
    "WebhookAuth",
    "create_body",
    "decode_webhook",
    "decode_webhooks",
    "masked_url",
    "masked_urls",
    "scrub",
    "secrets_of",
    "update_body",
    "webhook_id",
]

CREATE_PATH: Final = "/webhook/create"
UPDATE_PATH: Final = "/webhook/update"
DELETE_PATH: Final = "/webhook/delete"
GET_PATH: Final = "/webhook"
LIST_PATH: Final = "/account/webhooks"

#: What to do when a create may or may not have gone through (`SubmitOutcomeUnknownError`).
HOW_TO_CHECK_CREATE: Final = (
    "To find out, look for the URL in list_webhooks() (`telegent-orders webhook list`) before "
    "subscribing again: two subscriptions would deliver every event twice."
)
#: Answer fields whose values are never kept or shown, wherever they appear.
SECRET_FIELDS: Final = WEBHOOK_SECRET_FIELDS
MAX_URL_CHARS: Final = 255
#: Credentials shorter than this are guessable; Telegent stores what it is given.
MIN_SECRET_CHARS: Final = 16
MAX_CREDENTIAL_CHARS: Final = 255
METHODS: Final = ("POST", "PUT")
DATA_FORMATS: Final = ("json", "xml")
_EVENT_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
_TOKEN_RE = re.compile(r"[A-Za-z0-9\-._~+/]+=*")  # RFC 6750 b64token: one header-safe word
_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-_.]{0,127}")


def _text(name: str, value: object, *, limit: int = MAX_CREDENTIAL_CHARS) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    if not value or len(value) > limit:
        raise ValueError(f"{name} must be 1 to {limit} characters")
    return value


def _secret(name: str, value: object) -> str:
    """A password or token: long enough, printable; never quoted in an error."""
    text = _text(name, value)
    if len(text) < MIN_SECRET_CHARS:
        raise ValueError(
            f"{name} must be at least {MIN_SECRET_CHARS} characters (use secrets.token_urlsafe(32))"
        )
    if not text.isprintable() or text != text.strip():
        raise ValueError(f"{name} must be printable, without leading or trailing spaces")
    return text


@attrs.frozen(repr=False)
class WebhookAuth:
    """How Telegent authenticates its deliveries: `WebhookAuth.bearer(token)` (sent as
    `Authorization: Bearer <token>`, AuthenticationType `Token`) or
    `WebhookAuth.basic(username, password)` (HTTP Basic). The repr never shows the secret.

    Attributes:
        kind: `"Token"` or `"Basic"`, Telegent's `AuthenticationType`.
        username: The Basic user name (None for a token).
        secret: The token or password (a private attribute: build with `bearer`/`basic`).
    """

    kind: Literal["Token", "Basic"]
    username: str | None
    _secret: str = attrs.field(alias="secret")

    @classmethod
    def bearer(cls, token: str) -> WebhookAuth:
        """A static Bearer token (at least 16 characters of `A-Z a-z 0-9 - . _ ~ + /`).

        Args:
            token: The token Telegent sends; it never appears in reprs, logs or errors.
        """
        text = _secret("the webhook's bearer token", token)
        if not _TOKEN_RE.fullmatch(text):
            raise ValueError(
                "the webhook's bearer token must be one word of A-Z a-z 0-9 - . _ ~ + / "
                "(secrets.token_urlsafe(32) makes one)"
            )
        return cls("Token", None, secret=text)

    @classmethod
    def basic(cls, username: str, password: str) -> WebhookAuth:
        """HTTP Basic credentials (a user name without `:`, a password of 16+ characters).

        Args:
            username: The user name.
            password: The password; it never appears in reprs, logs or errors.
        """
        user = _text("the webhook's user name", username)
        if ":" in user or not user.isprintable() or user != user.strip():
            raise ValueError(
                "the webhook's user name must be printable, without ':' or outer spaces"
            )
        return cls("Basic", user, secret=_secret("the webhook's password", password))

    def __repr__(self) -> str:
        if self.kind == "Token":
            return "WebhookAuth.bearer('***')"
        return f"WebhookAuth.basic({self.username!r}, '***')"

    __str__ = __repr__

    def fields(self) -> dict[str, str]:
        """Telegent's `Authentication*` fields for a create or update body."""
        if self.kind == "Token":
            return {"AuthenticationType": "Token", "AuthenticationToken": self._secret}
        assert self.username is not None
        return {
            "AuthenticationType": "Basic",
            "AuthenticationUsername": self.username,
            "AuthenticationPassword": self._secret,
        }

    def secrets(self) -> tuple[str, ...]:
        """The secret values, to be masked in whatever an answer echoes back: the token or
        password, and Basic's `user:password` as Telegent sends it (base64)."""
        if self.kind == "Token":
            return (self._secret,)
        return (self._secret, base64.b64encode(f"{self.username}:{self._secret}".encode()).decode())

    def accepts(self, authorization: str | None) -> bool:
        """Whether a delivery's `Authorization` header carries these credentials.

        The scheme is matched case-insensitively; the credentials are compared in constant
        time (`hmac.compare_digest`), so timing tells an attacker nothing of the secret.

        Args:
            authorization: The header's value, or None when there was none.
        """
        if authorization is None:
            return False
        scheme, _, value = authorization.strip().partition(" ")
        value = value.strip()
        if self.kind == "Token":
            if scheme.lower() != "bearer":
                return False
            return hmac.compare_digest(value.encode(), self._secret.encode())
        if scheme.lower() != "basic":
            return False
        try:
            sent = base64.b64decode(value.encode("ascii"), validate=True)
        except (ValueError, binascii.Error):
            return False
        expected = f"{self.username}:{self._secret}".encode()
        return hmac.compare_digest(sent, expected)

    @property
    def challenge(self) -> str:
        """The `WWW-Authenticate` value of a 401 answer."""
        return (
            'Bearer realm="telegent-webhook"'
            if self.kind == "Token"
            else ('Basic realm="telegent-webhook", charset="UTF-8"')
        )


@attrs.frozen
class Webhook:
    """A webhook subscription as Telegent answered it (fields it did not send: None / ()).

    Attributes:
        webhook_id: Telegent's `WebhookId` (`WID-...`).
        url: `WebhookUrl`.
        method: `Method` (`POST` or `PUT`).
        data_format: `DataFormat` (`json` or `xml`).
        events: `SubscribedEvents`, split at the commas.
        active: `Active`, or None when not answered.
        raw: The JSON object as received, with any credential masked.
    """

    webhook_id: str
    url: str | None = attrs.field(repr=lambda url: repr(masked_url(url)))
    method: str | None
    data_format: str | None
    events: tuple[str, ...]
    active: bool | None
    raw: Mapping[str, Any] = attrs.field(factory=dict, hash=False, repr=False, eq=False)


def webhook_id(value: object) -> str:
    """A `WebhookId` as sent: a short word (`WID-...`)."""
    text = _text("webhook_id", value, limit=128)
    if not _ID_RE.fullmatch(text):
        raise ValueError(f"webhook_id must be a word such as 'WID-...', got {text[:60]!r}")
    return text


def account_id(value: object) -> str:
    """An `AccountId` as sent (`AID-...`)."""
    text = _text("account_id", value, limit=128)
    if not _ID_RE.fullmatch(text):
        raise ValueError(f"account_id must be a word such as 'AID-...', got {text[:60]!r}")
    return text


def _url(value: object) -> str:
    text = _text("url", value, limit=MAX_URL_CHARS)
    try:
        url = URL(text)
    except ValueError:
        raise ValueError(f"url is not a URL: {masked_url(text)!r:.80}") from None
    if url.scheme != "https" or not url.host or not text.isprintable() or " " in text:
        raise ValueError(
            f"url must be an https:// URL (Telegent calls HTTPS only): {masked_url(text)!r:.80}"
        )
    if url.user is not None or url.password is not None:
        raise ValueError("url must not carry credentials: use auth=WebhookAuth.basic(...)")
    return text


def _secret_segment(raw_path: str) -> tuple[str, str, str] | None:
    """A URL path split around its receiver's secret: the last non-empty segment (the
    receiver ignores trailing slashes, `webhooks._Gate`), when long enough to be one
    (`MIN_SECRET_CHARS`; `webhooks.asgi_app(secret=)` takes none shorter)."""
    kept = raw_path.rstrip("/")
    head, _, last = kept.rpartition("/")
    if len(last) < MIN_SECRET_CHARS:
        return None
    return head, last, raw_path[len(kept) :]


def masked_url(url: str | None) -> str | None:
    """A webhook URL as reprs, logs and the CLI show it: its secret path segment
    (`_secret_segment`) and any query become `***`. `Webhook.url` itself keeps the URL as
    Telegent sent it."""
    if url is None:
        return None
    try:
        parsed = URL(url)
    except ValueError:
        return "***"
    query = "?***" if parsed.raw_query_string else ""
    split = _secret_segment(parsed.raw_path)
    if split is not None:
        parsed = parsed.with_path(f"{split[0]}/***{split[2]}", encoded=True)
    return str(parsed.with_query(None).with_fragment(None)) + query


def secrets_of(body: Mapping[str, str], auth: WebhookAuth | None) -> tuple[str, ...]:
    """The secret values a create or update body carries, to be masked in whatever an answer
    echoes back: the credentials, and the parts of its URL `masked_url` hides (as sent and
    decoded)."""
    parts = set(auth.secrets()) if auth is not None else set()
    url = body.get("WebhookUrl")
    if url is not None:
        parsed = URL(url)
        parts |= {parsed.raw_query_string, parsed.query_string, parsed.raw_fragment}
        split = _secret_segment(parsed.raw_path)
        if split is not None:
            parts |= {split[1], URL.build(path=split[1], encoded=True).path}
    return tuple(sorted(part for part in parts if part))


def _method(value: object) -> str:
    text = _text("method", value, limit=8).upper()
    if text not in METHODS:
        raise ValueError(f"method must be 'POST' or 'PUT', got {value!r}")
    return text


def _data_format(value: object) -> str:
    text = _text("data_format", value, limit=8).lower()
    if text not in DATA_FORMATS:
        raise ValueError(f"data_format must be 'json' or 'xml', got {value!r}")
    return text


def _events(value: object) -> str:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise TypeError("events must be a sequence of event names, e.g. ('Order_Update',)")
    names = list(dict.fromkeys(value))
    if not names:
        raise ValueError("events must name at least one event, e.g. ('Order_Update',)")
    for name in names:
        if not isinstance(name, str) or not _EVENT_RE.fullmatch(name):
            raise ValueError(f"events: {name!r} is not an event name such as 'Order_Update'")
    return ", ".join(names)


def _auth(value: object) -> dict[str, str]:
    if value is None:
        return {"AuthenticationType": "None"}
    if not isinstance(value, WebhookAuth):
        raise TypeError(
            "auth must be WebhookAuth.bearer(...), WebhookAuth.basic(...) or None, "
            f"not {type(value).__name__}"
        )
    return value.fields()


def create_body(
    url: object,
    account_id_: object,
    events: object,
    method: object,
    data_format: object,
    auth: object,
) -> dict[str, str]:
    """The JSON body of `POST /v1.0/webhook/create`, every value checked."""
    return {
        "AccountId": account_id(account_id_),
        "WebhookUrl": _url(url),
        "Method": _method(method),
        "DataFormat": _data_format(data_format),
        **_auth(auth),
        "SubscribedEvents": _events(events),
    }


def update_body(webhook_id_: object, changes: Mapping[str, object]) -> dict[str, str]:
    """The JSON body of `POST /v1.0/webhook/update`: `WebhookId` and only what is given."""
    checks = {
        "account_id": ("AccountId", account_id),
        "url": ("WebhookUrl", _url),
        "method": ("Method", _method),
        "data_format": ("DataFormat", _data_format),
        "events": ("SubscribedEvents", _events),
    }
    body = {"WebhookId": webhook_id(webhook_id_)}
    for keyword, (name, check) in checks.items():
        value = changes.get(keyword)
        if value is not None:
            body[name] = check(value)
    auth = changes.get("auth")
    if auth is not None:
        body.update(_auth(auth))
    if len(body) == 1:
        raise ValueError(
            "update_webhook needs at least one change: url, events, method, data_format, "
            "auth or account_id"
        )
    return body


#: A URL in text (up to a space, a quote or markup).
_URL_IN_TEXT = re.compile(r"https?://[^\s'\"<>]+")


def masked_urls(text: str) -> str:
    """`text` with every URL in it shown as `masked_url` shows it: a webhook answer's words
    may quote a URL on file, whose secret segment the request did not carry."""
    return _URL_IN_TEXT.sub(lambda url: masked_url(url.group()) or MASK, text)


def scrub(value: Any) -> Any:
    """A webhook answer as `raw` (or an error's `body`) keeps it: every credential-named key's
    value masked at any depth (`_secrets.scrub`), and every URL in its strings
    (`masked_urls`)."""
    return _secrets.scrub(value, _shown)


def _shown(_key: object, value: Any) -> Any:
    return masked_urls(value) if isinstance(value, str) else value


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _webhook_of(data: Mapping[str, Any], sent: Mapping[str, str]) -> Webhook | None:
    """A Webhook from one answer object, the request's values filling what it leaves out.
    The URL sent wins over the answer's: the answer's echo of it has its secret masked."""
    found = _str(data.get("WebhookId")) or _str(sent.get("WebhookId"))
    if found is None:
        return None
    events = data.get("SubscribedEvents", sent.get("SubscribedEvents"))
    if isinstance(events, str):
        names = tuple(part.strip() for part in events.split(",") if part.strip())
    elif isinstance(events, list):
        names = tuple(item for item in events if isinstance(item, str))
    else:
        names = ()
    active = data.get("Active")
    return Webhook(
        found,
        _str(sent.get("WebhookUrl")) or _str(data.get("WebhookUrl")),
        _str(data.get("Method")) or _str(sent.get("Method")),
        _str(data.get("DataFormat")) or _str(sent.get("DataFormat")),
        names,
        active if isinstance(active, bool) else None,
        scrub(data),
    )


def _inner(data: Any, key: str) -> Any:
    """The object carrying `key`: the answer itself, or one wrapper down (`Data`, `Webhook`)."""
    if isinstance(data, dict) and key not in data:
        for value in data.values():
            if isinstance(value, dict) and key in value:
                return value
    return data


def decode_webhook(data: object, sent: Mapping[str, str] | None = None) -> Webhook:
    """The `Webhook` of a create, update or get answer's JSON value: any object naming a
    WebhookId, bare or in one wrapper; the request's values fill what it leaves out.

    Raises:
        ValueError: The answer is no such object (its text never quotes a credential).
    """
    inner = _inner(data, "WebhookId")
    hook = _webhook_of(inner, sent or {}) if isinstance(inner, dict) else None
    if hook is None:
        raise ValueError("expected a webhook (an object with a WebhookId)")
    return hook


def decode_webhooks(data: object) -> list[Webhook]:
    """The `Webhook`s of a list answer's JSON value: a list, or an object holding one.

    Raises:
        ValueError: The answer holds no list.
    """
    if isinstance(data, dict):
        data = next((v for v in data.values() if isinstance(v, list)), None)
    if not isinstance(data, list):
        raise ValueError("expected a list of webhooks")
    return [hook for item in data if isinstance(item, dict) and (hook := _webhook_of(item, {}))]
