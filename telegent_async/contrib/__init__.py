"""Integrations with other frameworks, each behind an extra of its own.

- `telegent_async.contrib.temporal` (extra `temporal`): Temporal activities that wait for
  orders without holding a worker, sharing one client per worker process.
"""
