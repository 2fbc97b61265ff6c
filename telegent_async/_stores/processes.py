"""Which process holds a lease, and whether it is gone: how an SQLite store takes over the
leases of a worker killed on the same host at once, not after `lease` seconds.

A process is named by its host, the host's boot (`/proc/sys/kernel/random/boot_id`), its PID
and its start time (field 22 of `/proc/PID/stat`, in clock ticks since boot), so a PID that
the kernel gave to a new process since is not mistaken for the old one. A process of another
host cannot be probed: its leases stay time-based (as every lease on Redis is).
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import sqlite3
from collections.abc import Callable, Collection

import attrs

__all__ = ["ProcessName", "is_gone", "name", "take_over", "this_process"]

logger = logging.getLogger("telegent_async")


@attrs.frozen
class ProcessName:
    """A process as a lease names it."""

    host: str
    boot: str  # "" where the platform has no boot identity
    pid: int
    started: str  # "" where the platform does not say

    def row(self) -> tuple[str, str, int, str]:
        return (self.host, self.boot, self.pid, self.started)


def _read(path: str) -> str:
    try:
        with open(path, encoding="ascii", errors="replace") as file:
            return file.read()
    except OSError:
        return ""


def _stat(pid: int) -> tuple[str, str] | None:
    """(state, start time) of a process from /proc, or None if it has none (gone, or no /proc)."""
    text = _read(f"/proc/{pid}/stat")
    if not text:
        return None
    fields = text[text.rfind(")") + 2 :].split()  # the command name may hold spaces
    return (fields[0], fields[19]) if len(fields) > 19 else None


@functools.cache
def _boot() -> str:
    return _read("/proc/sys/kernel/random/boot_id").strip()


def this_process() -> ProcessName:
    """The calling process's name (its PID read now: a forked child names itself)."""
    pid = os.getpid()
    stat = _stat(pid)
    return ProcessName(socket.gethostname(), _boot(), pid, "" if stat is None else stat[1])


def probe(pid: int) -> tuple[str, str] | None:
    """(state, start time) of a live process, None when there is no such process."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # another user's process: alive
    return _stat(pid) or ("?", "")


def is_gone(
    holder: ProcessName,
    me: ProcessName,
    probe: Callable[[int], tuple[str, str] | None] = probe,
) -> bool:
    """True when `holder`, seen from `me`, is certainly gone (pure given `probe`): same host
    and a later boot, or same boot and no such process (or a zombie, or a newer process under
    its PID). A holder on another host, or a platform without boot identity, is never gone."""
    if holder.host != me.host or not me.boot or not holder.boot:
        return False
    if holder.boot != me.boot:
        return True  # the host rebooted since
    if holder.pid == me.pid:
        return holder.started != me.started
    found = probe(holder.pid)
    if found is None:
        return True
    state, started = found
    return state == "Z" or bool(holder.started and started and started != holder.started)


def name(db: sqlite3.Connection, worker: str) -> None:
    """Say in the store's `processes` table which process `worker` is."""
    db.execute(
        "INSERT OR REPLACE INTO processes VALUES (?, ?, ?, ?, ?)", (worker, *this_process().row())
    )


def take_over(db: sqlite3.Connection, now: float, own: Collection[str]) -> None:
    """Make the watches leased by processes that are gone (not one of `own` workers) due now."""
    me = this_process()
    rows = db.execute("SELECT worker, host, boot, pid, started FROM processes").fetchall()
    for worker, *named in rows:
        if worker not in own and is_gone(ProcessName(*named), me):
            taken = db.execute(
                "UPDATE watches SET next_poll = ?, leased_by = NULL, woken = 0"
                " WHERE leased_by = ? AND next_poll IS NOT NULL",
                (now, worker),
            ).rowcount
            db.execute("DELETE FROM processes WHERE worker = ?", (worker,))
            if taken:
                logger.warning("took over %d leases of %s (its process is gone)", taken, worker)
