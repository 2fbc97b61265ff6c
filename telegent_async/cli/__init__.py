"""`telegent-orders`, the command-line tool: look orders up, wait for them, fix port-ins.

Only the standard library (argparse, ANSI escapes) on top of the SDK: `_args` (the parsers and
`main`), `_session` (what every command starts from; get, wait), `_demo` (demo, fake-server),
`_calls` (update, cancel, webhook, codes), `_watch` (wait --state, watch),
`_exit` (the exit-status table), `_outcomes` (what a run collects, its JSON), `_terminal`
(console, progress line) and `_report` (the report).
"""

from ._args import main

__all__ = ["main"]
