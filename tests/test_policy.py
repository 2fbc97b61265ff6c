"""PollPolicy: the poll cadence as a pure function of the attempt number, tested without a clock."""

from __future__ import annotations

from typing import Any

import pytest

import telegent_async as tg


def no_jitter(value: float) -> float:
    """The jitter function that keeps the whole randomised share: the un-jittered delay."""
    return value


def all_jitter(value: float) -> float:
    """The jitter function that drops the whole randomised share: the shortest delay."""
    return 0.0


def test_sequence_doubles_to_the_cap_then_repeats_it() -> None:
    policy = tg.PollPolicy(initial=1.0, factor=2.0, max_interval=15.0, jitter=0.2)
    assert policy.intervals == (1.0, 2.0, 4.0, 8.0, 15.0)
    delays = [policy.delay(n, jitter=no_jitter) for n in range(8)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 15.0, 15.0, 15.0, 15.0]
    assert policy.delay(10_000, jitter=no_jitter) == 15.0


def test_factor_one_is_a_fixed_interval() -> None:
    policy = tg.PollPolicy(initial=3.0, factor=1.0, max_interval=60.0, jitter=0.0)
    assert {policy.delay(n) for n in range(100)} == {3.0}


def test_initial_above_the_cap_is_refused() -> None:
    with pytest.raises(ValueError, match=r"initial \(1\) must not exceed max_interval \(0.1\)"):
        tg.PollPolicy(initial=1, max_interval=0.1)
    assert tg.PollPolicy(initial=60.0, max_interval=60.0).intervals == (60.0,)  # equal is fine


@pytest.mark.parametrize(
    ("share", "shortest"),
    [
        (0.0, [2.0, 4.0, 8.0, 16.0]),
        (0.2, [1.6, 3.2, 6.4, 12.8]),
        (0.5, [1.0, 2.0, 4.0, 8.0]),
        (1.0, [0.0, 0.0, 0.0, 0.0]),
    ],
)
def test_jitter_spans_exactly_the_randomised_share(share: float, shortest: list[float]) -> None:
    policy = tg.PollPolicy(initial=2.0, factor=2.0, max_interval=16.0, jitter=share)
    longest = [2.0, 4.0, 8.0, 16.0, 16.0]
    assert [policy.delay(n, jitter=no_jitter) for n in range(5)] == pytest.approx(longest)
    assert [policy.delay(n, jitter=all_jitter) for n in range(5)] == pytest.approx(
        [*shortest, shortest[-1]]
    )


def test_jitter_function_receives_the_randomised_share_only() -> None:
    seen: list[float] = []

    def record(value: float) -> float:
        seen.append(value)
        return value / 2

    policy = tg.PollPolicy(initial=10.0, factor=2.0, max_interval=40.0, jitter=0.25)
    assert policy.delay(1, jitter=record) == pytest.approx(20.0 - 5.0 + 2.5)
    assert seen == [pytest.approx(5.0)]
    # No randomised share: the jitter function is not called at all.
    tg.PollPolicy(jitter=0.0).delay(0, jitter=record)
    assert len(seen) == 1


def test_default_jitter_stays_within_bounds() -> None:
    policy = tg.PollPolicy(initial=1.0, factor=2.0, max_interval=8.0, jitter=0.5)
    for attempt, base in enumerate([1.0, 2.0, 4.0, 8.0] + [8.0] * 46):
        for _ in range(20):
            assert base * 0.5 <= policy.delay(attempt) <= base


def test_delay_given_a_jitter_function_is_pure() -> None:
    """PROVISION: 1 s doubling to 15 s, a fifth of each randomised; a jitter function that
    keeps 0.3 of that fifth gives 0.8 + 0.06 = 0.86 of each, every time."""
    expected = [0.86, 1.72, 3.44, 6.88, 12.9, 12.9, 12.9]
    for _ in range(2):
        delays = [tg.PollPolicy.PROVISION.delay(n, jitter=lambda v: v * 0.3) for n in range(7)]
        assert delays == pytest.approx(expected)


def test_presets() -> None:
    assert tg.PollPolicy() == tg.PollPolicy.PROVISION
    provision, port_in = tg.PollPolicy.PROVISION, tg.PollPolicy.PORT_IN
    # Provision orders settle in seconds: poll within a second, never wait more than a minute.
    assert provision.initial <= 1.0 and provision.max_interval <= 60.0
    # Port-ins take days and Telegent advises rare polls: minutes at first, hours at the cap.
    assert port_in.initial >= 60.0 and port_in.max_interval >= 3600.0
    for preset in (provision, port_in):
        delays = [preset.delay(n, jitter=no_jitter) for n in range(20)]
        assert delays == sorted(delays)  # never speeds up
        assert delays[-1] == preset.max_interval
    # Failed requests: Telegent advises 1, 2, 4... s, capped at 30 s, fully jittered.
    assert tg.PollPolicy.RETRY.intervals == (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)
    assert tg.PollPolicy.RETRY.jitter == 1.0
    assert all(0.0 <= tg.PollPolicy.RETRY.delay(n) <= 30.0 for n in range(20))


def test_policy_is_frozen_and_hashable() -> None:
    policy = tg.PollPolicy(initial=0.5)
    with pytest.raises(AttributeError):
        policy.initial = 2.0  # type: ignore[misc]
    assert hash(policy) == hash(tg.PollPolicy(initial=0.5))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"initial": 0}, ValueError, "initial"),
        ({"initial": -1.0}, ValueError, "initial"),
        ({"initial": float("nan")}, ValueError, "initial"),
        ({"initial": float("inf")}, ValueError, "initial"),
        ({"initial": "1"}, TypeError, "initial"),
        ({"initial": True}, TypeError, "initial"),
        ({"max_interval": 0.0}, ValueError, "max_interval"),
        ({"max_interval": None}, TypeError, "max_interval"),
        ({"max_interval": float("nan")}, ValueError, "max_interval"),
        ({"factor": 0.5}, ValueError, "factor"),
        ({"factor": 0}, ValueError, "factor"),
        ({"factor": "2"}, TypeError, "factor"),
        ({"jitter": -0.1}, ValueError, "jitter"),
        ({"jitter": 1.5}, ValueError, "jitter"),
        ({"jitter": float("nan")}, ValueError, "jitter"),
        ({"jitter": False}, TypeError, "jitter"),
        ({"jitter": "0.2"}, TypeError, "jitter"),
    ],
)
def test_invalid_values_are_refused(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        tg.PollPolicy(**kwargs)


def test_the_sqlite_lock_loop_retries_on_the_same_formula() -> None:
    """The SQLite file's wait for another process's lock: 2 ms doubling to 50 ms, half of
    each delay jittered (so two waiting processes do not retry in step)."""
    from telegent_async._stores.sqlite_file import LOCK_RETRY

    assert LOCK_RETRY.intervals == pytest.approx((0.002, 0.004, 0.008, 0.016, 0.032, 0.05))
    assert [LOCK_RETRY.delay(n, jitter=all_jitter) for n in (0, 5, 9)] == pytest.approx(
        [0.001, 0.025, 0.025]
    )
