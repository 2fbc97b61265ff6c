"""Pure time decisions: timestamps, Retry-After, token lifetimes and the backoff cadence."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from telegent_async._timing import (
    DEFAULT_TOKEN_LIFETIME,
    MIN_TRUSTED_TOKEN_LIFETIME,
    parse_retry_after,
    parse_timestamp,
    token_lifetime,
    token_renewal_delay,
)

NOW = datetime(2025, 5, 2, 18, 30, 0, tzinfo=timezone.utc)
UTC = timezone.utc


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-12-08T00:12:08.89", datetime(2025, 12, 8, 0, 12, 8, 890000, UTC)),
        (
            "2025-10-29T12:36:19.338438+00:00",
            datetime(2025, 10, 29, 12, 36, 19, 338438, UTC),
        ),
        ("2025-05-14T18:00:00.0000000+00:00", datetime(2025, 5, 14, 18, 0, 0, 0, UTC)),
        ("2025-05-14T18:00:00.1234567+00:00", datetime(2025, 5, 14, 18, 0, 0, 123456, UTC)),
        ("2025-05-14T20:00:00+02:00", datetime(2025, 5, 14, 18, 0, 0, tzinfo=UTC)),
        ("2025-05-14T18:00:00Z", datetime(2025, 5, 14, 18, 0, 0, tzinfo=UTC)),
        ("2025-05-14", datetime(2025, 5, 14, tzinfo=UTC)),
        ("10/01/2024", datetime(2024, 10, 1, tzinfo=UTC)),
        ("05/02/2025 06:36:13 PM", datetime(2025, 5, 2, 18, 36, 13, tzinfo=UTC)),
        ("05/02/2025 12:00:00 AM", datetime(2025, 5, 2, 0, 0, 0, tzinfo=UTC)),
        ("05/02/2025 12:00:00 PM", datetime(2025, 5, 2, 12, 0, 0, tzinfo=UTC)),
        ("  10/01/2024  ", datetime(2024, 10, 1, tzinfo=UTC)),
    ],
)
def test_parse_timestamp_accepts_every_documented_shape(text: str, expected: datetime) -> None:
    parsed = parse_timestamp(text)
    assert parsed == expected
    assert parsed is not None and parsed.tzinfo is not None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "yesterday",
        "2025-13-01",
        "2025-02-30T00:00:00",
        "13/45/2024",
        "05/02/2025 13:00:00 PM",
        "2025-05-14T25:00:00",
        "9" * 100,
        None,
        20250514,
        ["2025-05-14"],
    ],
)
def test_parse_timestamp_unparseable_is_none(text: object) -> None:
    assert parse_timestamp(text) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [("0", 0.0), ("0.3", 0.3), (" 5 ", 5.0), ("120", 120.0)],
)
def test_retry_after_seconds(value: str, expected: float) -> None:
    assert parse_retry_after(value, NOW) == expected


def test_retry_after_http_date() -> None:
    later = NOW + timedelta(seconds=42)
    assert parse_retry_after(format_datetime(later, usegmt=True), NOW) == 42.0
    assert parse_retry_after("Fri, 02 May 2025 18:31:00 GMT", NOW) == 60.0
    # A date in the past means "now", not a negative wait.
    assert parse_retry_after(format_datetime(NOW - timedelta(hours=1), usegmt=True), NOW) == 0.0


@pytest.mark.parametrize("value", [None, "", "soon", "-1", "nan", "inf", "1e400", "x" * 100])
def test_retry_after_garbage_is_none(value: str | None) -> None:
    assert parse_retry_after(value, NOW) is None


def test_token_lifetime_from_expiry() -> None:
    assert token_lifetime("05/02/2025 06:35:00 PM", NOW) == 300.0
    assert token_lifetime("2025-05-02T18:32:00+00:00", NOW) == 120.0


@pytest.mark.parametrize(
    "expiry",
    [None, "", "whenever", "05/02/2025 06:29:00 PM", "05/02/2025 06:30:00 PM", "05/03/2025"],
)
def test_token_lifetime_is_conservative_when_unusable(expiry: object) -> None:
    """Unparseable, past, or implausibly far off (a time-zone mix-up): assume a short life."""
    assert token_lifetime(expiry, NOW) == DEFAULT_TOKEN_LIFETIME


@pytest.mark.parametrize(("lifetime", "renew"), [(1.5, 1.2), (120.0, 96.0), (3600.0, 3570.0)])
def test_token_renewed_before_expiry(lifetime: float, renew: float) -> None:
    assert token_renewal_delay(lifetime) == pytest.approx(renew)
    assert 0 < token_renewal_delay(lifetime) < lifetime


def test_token_lifetime_corrects_server_clock_skew_with_the_date_header() -> None:
    # The server's clock is 298 s behind ours: its "5 minutes from now" is 2 s from ours.
    expiry, server_date = "05/02/2025 06:30:02 PM", "Fri, 02 May 2025 18:25:02 GMT"
    assert token_lifetime(expiry, NOW, server_date) == 300.0
    # Without a usable Date header, no lifetime under the floor is trusted.
    assert token_lifetime(expiry, NOW) == MIN_TRUSTED_TOKEN_LIFETIME
    assert token_lifetime(expiry, NOW, "not a date") == MIN_TRUSTED_TOKEN_LIFETIME
    # Clocks that agree within the Date's resolution: the finer local clock is used.
    assert token_lifetime("05/02/2025 06:30:05 PM", NOW, "Fri, 02 May 2025 18:30:01 GMT") == 5.0
