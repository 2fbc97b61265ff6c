"""The `telegent-orders` entry point: parse, set logging up, run the command, exit status."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Sequence

from ._args import build_parser
from ._exit import EXIT_BROKEN_PIPE, EXIT_USAGE, UsageError
from ._outcomes import PROG
from ._terminal import Console, setup_logging


def main(argv: Sequence[str] | None = None) -> int:
    """The `telegent-orders` entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    console = Console(sys.stderr)
    setup_logging(getattr(args, "verbose", 0), console)
    try:
        return int(args.handler(args, console))
    except UsageError as exc:
        console.write(f"{PROG}: error: {exc}\n")
        return EXIT_USAGE
    except BrokenPipeError:
        # stdout was closed early (`| head`): stop quietly, like other Unix tools.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
