"""`telegent-orders`, the command-line tool: look orders up, wait for them, fix port-ins.

Only the standard library (argparse, ANSI escapes) on top of the SDK. One module per concern:
`_args` (parsers and help), `_commands` (get, wait, demo, fake-server), `_portin` (update,
cancel), `_watch` (wait --state, watch add/list/run), `_exit` (the exit-status table),
`_outcomes` (what a run collects), `_terminal` (console, progress line), `_report` and
`_json` (what a run shows).
"""

from ._main import main

__all__ = ["main"]
