"""Pure decisions about time: timestamps, Retry-After, token lifetimes and backoff cadences.

Nothing here touches the network or the clock: callers pass `now` in, so every decision can be
tested without a server and without sleeping.
"""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import ClassVar, Final

import attrs

from ._validate import positive_number

__all__ = [
    "DEFAULT_TOKEN_LIFETIME",
    "PRESETS",
    "PollPolicy",
    "checked_policy",
    "deadline_at",
    "full_jitter",
    "parse_retry_after",
    "parse_timestamp",
    "token_lifetime",
    "token_renewal_delay",
]

#: Assumed when `tokenExpiry` is unparseable, already past, or implausibly far off (the docs
#: say tokens live "a few minutes"; a wrong time zone on either side must not keep a dead token).
DEFAULT_TOKEN_LIFETIME = 120.0
MAX_TRUSTED_TOKEN_LIFETIME = 3600.0
MIN_TRUSTED_TOKEN_LIFETIME = 60.0
#: An HTTP `Date` is truncated to whole seconds: within this, it agrees with the local clock.
DATE_RESOLUTION = 2.0
MAX_RENEWAL_MARGIN = 30.0

_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?"
    r"\s*(Z|[+-]\d{2}(?::?\d{2})?)?",
    re.ASCII | re.IGNORECASE,
)
_DELTA_SECONDS = re.compile(r"[0-9]{1,20}(?:\.[0-9]{1,20})?")
_US = re.compile(
    r"(\d{1,2})/(\d{1,2})/(\d{4})(?:\s+(\d{1,2}):(\d{2})(?::(\d{2}))?(?:\s*([AP])\.?M\.?)?)?",
    re.ASCII | re.IGNORECASE,
)


def _offset(text: str | None) -> timezone:
    if text is None or text.upper() == "Z":
        return timezone.utc
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    minutes = int(digits[:2]) * 60 + (int(digits[2:4]) if len(digits) > 2 else 0)
    return timezone(timedelta(minutes=sign * minutes))


def parse_timestamp(text: object) -> datetime | None:
    """An aware datetime from any timestamp shape Telegent sends, or None.

    Accepts ISO 8601 with or without an offset and with any number of fractional digits
    (`2025-05-14T18:00:00.0000000+00:00`), and US dates with an optional 12-hour time
    (`10/01/2024`, `05/02/2025 06:36:13 PM`). Times without an offset are taken as UTC.
    """
    if not isinstance(text, str) or len(text) > 64:
        return None
    if len(text) >= 10 and text[4] == "-" and text[7] == "-":
        try:  # the C parser first: on 3.11+ it takes any number of fractional digits
            when = datetime.fromisoformat(text)
        except ValueError:
            pass  # Python 3.10 with 7 digits, or a shape only the pattern below accepts
        else:
            return when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)
    text = text.strip()
    try:
        if m := _ISO.fullmatch(text):
            year, month, day, hour, minute, second, fraction, offset = m.groups()
            micro = int((fraction or "0")[:6].ljust(6, "0"))
            return datetime(
                int(year),
                int(month),
                int(day),
                int(hour or 0),
                int(minute or 0),
                int(second or 0),
                micro,
                tzinfo=_offset(offset),
            )
        if m := _US.fullmatch(text):
            month, day, year, hour, minute, second, meridiem = m.groups()
            h = int(hour or 0)
            if meridiem:
                if not 1 <= h <= 12:
                    return None
                h = h % 12 + (12 if meridiem.upper() == "P" else 0)
            return datetime(
                int(year), int(month), int(day), h, int(minute or 0), int(second or 0),
                tzinfo=timezone.utc,
            )  # fmt: skip
    except (ValueError, OverflowError):
        return None
    return None


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), or None.

    Delta-seconds are ASCII digits, with an optional fraction (`0.3`, which test servers
    send); anything else `float()` would take (`1_000`, `1e3`, `+5`, `inf`) is garbage and
    gives None, so the caller falls back to its backoff. A date in the past gives 0. The caller
    caps the result.
    """
    if value is None or len(value) > 64:
        return None
    value = value.strip()
    if _DELTA_SECONDS.fullmatch(value):
        return float(value)
    when = _http_date(value)
    return None if when is None else max(0.0, (when - now).total_seconds())


def token_lifetime(expiry: object, now: datetime, server_date: str | None = None) -> float:
    """Seconds a freshly issued token may be used, from the `tokenExpiry` field.

    `tokenExpiry` is the server's clock with no time zone: measured against the response's
    `Date` header (the same clock, so skew cancels out) when there is one. Against `now`, the
    local clock at issue, a server clock minutes off could make a 5-minute token look like a
    2-second one (a token request per lookup), so there no lifetime below
    `MIN_TRUSTED_TOKEN_LIFETIME` is trusted; a token that dies sooner is renewed after its 401.
    """
    when = parse_timestamp(expiry)
    if when is None:
        return DEFAULT_TOKEN_LIFETIME
    issued = _server_now(server_date, now)
    seconds = (when - (issued or now)).total_seconds()
    if not 0 < seconds <= MAX_TRUSTED_TOKEN_LIFETIME:
        return DEFAULT_TOKEN_LIFETIME
    return seconds if issued is not None else max(seconds, MIN_TRUSTED_TOKEN_LIFETIME)


def _http_date(value: str | None) -> datetime | None:
    if value is None or len(value) > 64:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)


def _server_now(server_date: str | None, now: datetime) -> datetime | None:
    """The server's clock at issue, from its `Date` header; `now` itself when the two clocks
    agree within the header's whole-second resolution (the local clock is the finer one)."""
    when = _http_date(server_date)
    if when is None:
        return None
    return now if abs((when - now).total_seconds()) <= DATE_RESOLUTION else when


def token_renewal_delay(lifetime: float) -> float:
    """How long after issue to renew a token: early enough that no request carries a stale one."""
    return lifetime - min(MAX_RENEWAL_MARGIN, lifetime * 0.2)


def _positive(_instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    positive_number(attribute.name, value)


def _check_factor(_instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if positive_number("factor", value) < 1:
        raise ValueError(
            f"factor must be >= 1 (a cadence that speeds up hammers the API), got {value}"
        )


def _check_jitter(_instance: object, _attribute: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"jitter must be a number, not {type(value).__name__}")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"jitter must be between 0 and 1, got {value!r}")


@attrs.frozen
class PollPolicy:
    """The cadence between two polls (or two retries): exponential, capped, jittered.

    The n-th delay is `min(initial * factor**n, max_interval)`; `jitter` is the randomised
    share of it (0 = none, 1 = full jitter, uniform in [0, delay]). The one retry formula of
    the package: polls, request retries, token flights and the SQLite file's lock loop.
    Presets: `PollPolicy.PROVISION` (the default; provision orders settle in seconds) and
    `PollPolicy.PORT_IN` (port-ins take 1 to 5 business days and Telegent advises polling them
    rarely: 10 minutes doubling to 6 hours).

    Attributes:
        initial: Seconds before the second poll (or the first retry).
        factor: What each delay is multiplied by (>= 1).
        max_interval: The longest delay, in seconds.
        jitter: The randomised share of each delay, from 0 (none) to 1 (full jitter).
    """

    initial: float = attrs.field(default=1.0, validator=_positive)
    factor: float = attrs.field(default=2.0, validator=_check_factor)
    max_interval: float = attrs.field(default=15.0, validator=_positive)
    jitter: float = attrs.field(default=0.2, validator=_check_jitter)

    PROVISION: ClassVar[PollPolicy]
    PORT_IN: ClassVar[PollPolicy]
    RETRY: ClassVar[PollPolicy]

    def __attrs_post_init__(self) -> None:
        if self.initial > self.max_interval:
            raise ValueError(
                f"initial ({self.initial:g}) must not exceed max_interval "
                f"({self.max_interval:g}): the first delay would already break the cap"
            )

    @property
    def intervals(self) -> tuple[float, ...]:
        """The un-jittered delays until the cap is reached (the cap repeats after the last)."""
        return _intervals(self.initial, self.factor, self.max_interval)

    def delay(self, attempt: int, jitter: Callable[[float], float] | None = None) -> float:
        """The delay before poll number `attempt + 1` (pure given `jitter`).

        Kept as a function of the attempt number, not a generator, so that a scheduler can
        hold 100,000 orders with one integer of state each.

        Args:
            attempt: How many polls (or attempts) came before, from 0.
            jitter: Draws the random part from [0, its argument]; `full_jitter` (uniform)
                by default, injected by tests.
        """
        if attempt < 0:
            raise ValueError(f"attempt must be >= 0, got {attempt}")
        steps = self.intervals
        base = steps[min(attempt, len(steps) - 1)]
        randomised = base * self.jitter
        draw = full_jitter if jitter is None else jitter
        return base - randomised + (draw(randomised) if randomised else 0.0)


def full_jitter(value: float) -> float:
    """A delay drawn uniformly from [0, `value`]: spreads a herd of retries apart."""
    return random.uniform(0.0, value)


@functools.lru_cache(maxsize=64)
def _intervals(initial: float, factor: float, max_interval: float) -> tuple[float, ...]:
    steps = [float(min(initial, max_interval))]
    while steps[-1] < max_interval and factor > 1 and len(steps) < 64:
        steps.append(min(steps[-1] * factor, max_interval))
    return tuple(steps)


PollPolicy.PROVISION = PollPolicy()
PollPolicy.PORT_IN = PollPolicy(initial=600.0, factor=2.0, max_interval=6 * 3600.0, jitter=0.2)
#: Telegent's advice for retries: 1 s doubling, capped at 30 s; full jitter spreads a herd.
PollPolicy.RETRY = PollPolicy(initial=1.0, factor=2.0, max_interval=30.0, jitter=1.0)

#: The poll presets by the names users give them (the CLI's `--preset`, Temporal's `PollInput`).
PRESETS: Final = {"provision": PollPolicy.PROVISION, "portin": PollPolicy.PORT_IN}


def deadline_at(deadline: object, now: float) -> float | None:
    """A watch's `deadline` as seconds since the epoch: an aware datetime, or seconds from
    `now` (itself seconds since the epoch), or None. A datetime in the past (or at `now`) is a
    `ValueError` like a negative number of seconds: such a watch could only time out."""
    if deadline is None:
        return None
    if isinstance(deadline, datetime):
        if deadline.utcoffset() is None:
            raise ValueError("deadline must be an aware datetime (with a time zone)")
        at = deadline.timestamp()
        if at <= now:
            past = datetime.fromtimestamp(now, timezone.utc).isoformat(timespec="seconds")
            raise ValueError(
                f"deadline {deadline.isoformat(timespec='seconds')} is not in the future "
                f"(now: {past})"
            )
        return at
    return now + positive_number("deadline", deadline)


def checked_policy(name: str, policy: object) -> PollPolicy:
    """`policy` if it is a PollPolicy: the one check of every `policy=`, `poll_policy=` and
    `retry_policy=` (a `policy=` that may be None is checked when it is not)."""
    if not isinstance(policy, PollPolicy):
        raise TypeError(f"{name} must be a PollPolicy, not {type(policy).__name__}")
    return policy
