"""Type expectations for fault names, checked by `mypy --strict tests` (never run by pytest).

Strict mode warns about unused `type: ignore` comments, so each ignore below is an assertion:
if `inject` or `fault_rate` accepted any string, mypy would report the ignore as unused.
"""

from __future__ import annotations

from telegent_async.testing import FakeTelegent, FaultKind


def fault_names_are_checked(fake: FakeTelegent, kind: FaultKind, name: str) -> None:
    fake.inject("503")
    fake.inject(kind, count=2)
    fake.fail_tokens("refused")
    fake.inject("5O3")  # type: ignore[arg-type]
    fake.inject(name)  # type: ignore[arg-type]
    fake.inject("refused")  # type: ignore[arg-type]  # a token fault only
    fake.fail_tokens("teapot")  # type: ignore[arg-type]
    FakeTelegent(fault_rate={"reset": 0.1, "5O3": 0.1})  # type: ignore[dict-item]
