"""`telegent-orders codes [CODE ...]`: the carrier codes this SDK knows, or what given codes mean.

A thin view over `carrier_codes()` and `decode_carrier_message` (the catalogue is `_carrier`'s):
needs no credentials and sends nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from typing import Any

from .._carrier import CarrierError, carrier_codes, decode_carrier_message
from .._models import converter
from ._exit import EXIT_OK, UsageError
from ._terminal import Console

__all__ = ["add_codes_command", "cmd_codes"]

_WIDTH = 100


def code_json(carrier: CarrierError) -> dict[str, Any]:
    """One `codes --json` line: the `CarrierError` through the package's converter, the code's
    name as `name` (its `reason` when decoded alone) and no `raw`."""
    row: dict[str, Any] = converter.unstructure(carrier)
    row["name"] = row.pop("reason")
    del row["raw"]
    return row


def _entries(codes: list[str]) -> list[CarrierError]:
    if not codes:
        return list(carrier_codes())
    entries = []
    for text in codes:
        carrier = decode_carrier_message(text)
        if carrier is None or carrier.code is None:
            raise UsageError(f"not a carrier code: {text[:40]!r} (e.g. 8A, 6P or GENS-0041)")
        entries.append(carrier)
    return entries


def _described(carrier: CarrierError) -> list[str]:
    head = "  ".join(filter(None, (carrier.code, carrier.reason, f"({carrier.category.value})")))
    fields = ", ".join(carrier.update_fields)
    lines = [head]
    for label, text in (
        ("meaning", carrier.description),
        ("next step", carrier.next_step.value),
        ("remedy", carrier.remedy),
        ("update fields", fields or "none: no update_port_in field fixes it"),
    ):
        lines += textwrap.wrap(
            f"{label}: {text}", _WIDTH, initial_indent="    ", subsequent_indent="      "
        )
    return [*lines, ""]


def cmd_codes(args: argparse.Namespace, console: Console) -> int:
    """Print the catalogue (or the given codes): a block per code, or `--json` lines."""
    entries = _entries(args.codes)
    if args.json:
        sys.stdout.writelines(json.dumps(code_json(carrier)) + "\n" for carrier in entries)
    else:
        sys.stdout.write("\n".join(line for c in entries for line in _described(c)))
    sys.stdout.flush()
    return EXIT_OK


def add_codes_command(commands: Any) -> None:
    """Register `codes` on the `telegent-orders` subcommands."""
    codes = commands.add_parser(
        "codes",
        help="the carrier codes of failed port-ins: meaning and next step (no API call)",
        description="The carrier codes this SDK knows (or what the given ones mean, from "
        "their group when not listed): meaning, next step, and the update fields that fix it.",
    )
    codes.add_argument("codes", nargs="*", metavar="CODE", help="only these codes (e.g. 8A 6P)")
    codes.add_argument("--json", action="store_true", help="one JSON object per code")
    codes.set_defaults(handler=cmd_codes)
