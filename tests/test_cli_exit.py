"""The exit-status table: its order decides, and `--help` and the README say what it says."""

from __future__ import annotations

import re
from pathlib import Path

from telegent_async.cli._args import build_parser
from telegent_async.cli._exit import (
    EXIT_FAILED,
    EXIT_INCOMPLETE,
    EXIT_OK,
    EXIT_STATUSES,
    EXIT_USAGE,
    combine,
    exit_help,
)

README = Path(__file__).resolve().parent.parent / "README.md"


def _words(text: str) -> str:
    return " ".join(text.split())


def test_the_first_status_of_the_table_that_applies_wins() -> None:
    assert combine([]) == EXIT_OK
    assert combine([EXIT_OK, EXIT_FAILED]) == EXIT_FAILED
    assert combine([EXIT_FAILED, EXIT_INCOMPLETE, EXIT_OK]) == EXIT_INCOMPLETE
    assert combine([EXIT_INCOMPLETE, EXIT_USAGE]) == EXIT_USAGE


def test_help_lists_every_status_in_table_order() -> None:
    text = build_parser().format_help()
    assert exit_help() in text
    codes = [int(code) for code in re.findall(r"^  (\d+) ", exit_help(), re.MULTILINE)]
    assert codes == [status.code for status in EXIT_STATUSES]
    for status in EXIT_STATUSES:
        assert _words(status.meaning) in _words(exit_help())


def test_readme_table_is_the_exit_status_table() -> None:
    readme = README.read_text(encoding="utf-8")
    table = readme[readme.index("| exit status | meaning") :].split("\n\n", 1)[0]
    rows = re.findall(r"^\| (\d+) \| (.+) \|$", table, re.MULTILINE)
    in_readme = [(int(code), meaning.replace("\\|", "|")) for code, meaning in rows]
    assert in_readme == [(status.code, status.meaning) for status in EXIT_STATUSES]
