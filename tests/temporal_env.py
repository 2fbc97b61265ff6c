"""What the Temporal tests share: an activity context as a worker gives one, and what Temporal
would write to workflow history for a value or an error (imported after the modules'
importorskip of temporalio)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest
import temporalio.converter
from temporalio.api.failure.v1 import Failure
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from telegent_async.contrib import temporal as tgt

CONVERTER = temporalio.converter.DataConverter.default
ACCOUNT = "ACCT-temporal-77310"  # distinctive, so any leak is found
PIN = "pin-Xq4-5521"
SECRETS = (ACCOUNT, PIN)
#: A port-in cadence without jitter: 10 minutes doubling to 6 hours.
PORTIN = tgt.PollInput("JNOID-t-1", preset="portin", jitter=0.0)


def environment(
    *, attempt: int = 1, details: Any = None, heartbeat_timeout: float | None = None
) -> tuple[ActivityEnvironment, list[Any]]:
    """An activity context as a worker gives one: the attempt number, the last heartbeat's
    details as the next attempt receives them, and a record of every heartbeat."""
    env = ActivityEnvironment()
    env.info = dataclasses.replace(
        env.info,
        attempt=attempt,
        heartbeat_details=[] if details is None else [details],
        heartbeat_timeout=None
        if heartbeat_timeout is None
        else timedelta(seconds=heartbeat_timeout),
    )
    beats: list[Any] = []
    env.on_heartbeat = lambda *details: beats.append(details[0])
    return env, beats


async def raised(run: Any) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        await run
    return caught.value


def history(*values: Any) -> bytes:
    """The bytes Temporal would write to workflow history for these values (no codec)."""
    return b"".join(p.SerializeToString() for p in CONVERTER.payload_converter.to_payloads(values))


async def failure_of(error: BaseException) -> Failure:
    """The failure Temporal records for an error an activity raised (message, type, details,
    causes and stack traces)."""
    failure = Failure()
    await CONVERTER.encode_failure(error, failure)
    return failure


def assert_no_secret(data: bytes | str) -> None:
    text = data.decode(errors="replace") if isinstance(data, bytes) else data
    for secret in SECRETS:
        assert secret not in text
