"""`telegent-orders` exit statuses: one table that the code, `--help` and the README follow;
the first in its order that any outcome asks for wins, so a script can tell "fix your setup"
from "try again later" from "look at the orders"."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

import attrs

from .._errors import EndpointNotFoundError, TelegentError, is_credentials_error
from .._models import OrderOutcome
from .._status import is_permanent
from ._outcomes import Group, named

if TYPE_CHECKING:
    from ._outcomes import Run

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2
EXIT_INCOMPLETE: Final = 3
EXIT_INTERRUPTED: Final = 130
EXIT_BROKEN_PIPE: Final = 141


@attrs.frozen
class ExitStatus:
    """One exit status: what `--help` and the README say, and what a report's summary says."""

    code: int
    meaning: str
    summary: str | None = None
    summary_of_get: str | None = None  # for `get`, when it differs from `summary`


EXIT_STATUSES: Final = (
    ExitStatus(
        EXIT_USAGE,
        "usage error, missing credentials, credentials refused by the API (401/403), or a "
        "base URL with no API behind it (a routing 404)",
        "credentials refused",
    ),
    ExitStatus(
        EXIT_INCOMPLETE,
        "some order timed out, or could not be looked up (connection failure, 5xx, 408 or 429 "
        "after every retry, an answer that is not an order)",
        "some orders timed out or could not be looked up",
    ),
    ExitStatus(
        EXIT_FAILED,
        "some order failed, needs action, was cancelled, or is unknown (404)",
        "some orders failed, need action, were cancelled or are unknown",
    ),
    ExitStatus(
        EXIT_OK,
        "every order completed (get: every lookup answered and none failed; orders still "
        "pending are fine for a lookup)",
        "every order completed",
        "every lookup answered",
    ),
    ExitStatus(
        EXIT_INTERRUPTED,
        "interrupted (Ctrl-C or SIGTERM); the report covers the orders settled so far",
        "interrupted",
    ),
    ExitStatus(
        EXIT_BROKEN_PIPE,
        "stdout was closed before the results were written (e.g. `| head`): 128 + SIGPIPE, as "
        "shells report it",
    ),
)
"""In precedence order; the README's table repeats the `meaning`s (tests/test_cli_exit.py)."""

_BY_CODE: Final = {status.code: status for status in EXIT_STATUSES}


class UsageError(Exception):
    """Bad arguments or missing credentials: one line on stderr, exit status 2."""


def exit_help(wrap: int = 80) -> str:
    """The `exit status` paragraph of every command's `--help` (before the credentials one)."""
    lines = ["exit status (the first that applies wins):"]
    for status in EXIT_STATUSES:
        lines += textwrap.wrap(
            status.meaning,
            wrap,
            initial_indent=f"  {status.code:<5}",
            subsequent_indent=" " * 7,
            break_on_hyphens=False,
        )
    return "\n".join(lines) + "\n"


def summary_of(code: int, command: str) -> str:
    """What a report's last line says about the exit status `code` of `command`."""
    status = _BY_CODE[code]
    words = status.summary_of_get if command == "get" and status.summary_of_get else None
    return words or status.summary or status.meaning


def is_setup_error(error: BaseException | None) -> bool:
    """Refused credentials (401/403) or a base URL with no API (a routing 404): every other
    order would get it too, so it ends a run (exit status 2), not as one order's outcome."""
    return is_credentials_error(error) or isinstance(error, EndpointNotFoundError)


def setup_error_words(error: TelegentError) -> str:
    """The one line a run ends with after `is_setup_error(error)`: what to check."""
    if isinstance(error, EndpointNotFoundError):
        return f"the base URL has no API: {error}; check --base-url or TELEGENT_BASE_URL"
    return (
        f"credentials refused by the API ({named(error)}); check "
        "--token/TELEGENT_TOKEN or --account-key/--account-secret and --base-url"
    )


def exit_status_of(outcome: OrderOutcome, group: Group) -> int:
    """The exit status one outcome asks for (`combine` picks among several)."""
    if group in (Group.COMPLETED, Group.PENDING):
        return EXIT_OK
    error = outcome.error
    if is_setup_error(error):
        return EXIT_USAGE
    if group is Group.TIMED_OUT or (error is not None and not is_permanent(error)):
        return EXIT_INCOMPLETE
    return EXIT_FAILED


def failed_request_exit(error: TelegentError) -> int:
    """The exit status of a single request that failed (`update`, `cancel`, `webhook`)."""
    return exit_status_of(OrderOutcome("", None, error), Group.ERROR)


def combine(statuses: Sequence[int]) -> int:
    """The first status of the table that any outcome asks for (EXIT_OK if none)."""
    present = set(statuses)
    return next((s.code for s in EXIT_STATUSES if s.code in present), EXIT_OK)


def run_exit_status(run: Run) -> int:
    """A `get`/`wait`/`demo` run's status: refused credentials, Ctrl-C, else its outcomes."""
    if run.setup_error is not None:
        return EXIT_USAGE
    if run.interrupted:
        return EXIT_INTERRUPTED
    return combine([exit_status_of(outcome, group) for group, outcome in run.tally.rows])
