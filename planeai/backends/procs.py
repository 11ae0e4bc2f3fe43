"""The processes a session owns, found by session id, and how to end all of them.

A session's wrapper process is a session leader (tmux and our PTYs call setsid before exec),
so its pid is the SID of everything the agent starts: children, grandchildren, and process
groups an interactive shell makes for its jobs. Process groups or a parent pid would miss
those; the SID does not, unless a process calls setsid itself (a daemon leaving on purpose).

Linux only (/proc); elsewhere nothing is found and nothing is killed.
"""

from __future__ import annotations

import os
import signal
import time

_POLL = 0.02


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/PID/stat after the command name: [state, ppid, pgrp, session, ...]."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode("ascii", "replace")
    except OSError:
        return None
    # the command name may hold spaces and ')': the fields start after the last ')'
    return stat[stat.rfind(")") + 2:].split()


def identity(pid: int | None = None) -> str | None:
    """``pid:starttime`` of a process (this one by default): unlike a bare pid, it never
    names a later process that got the same number. None when there is no such process."""
    pid = os.getpid() if pid is None else pid
    fields = _stat_fields(pid)
    if fields is None or len(fields) < 20:
        return None
    return f"{pid}:{fields[19]}"  # field 22 of stat: start time in clock ticks since boot


def alive(ident: str) -> bool:
    """Does the process ``identity()`` named still run (not a zombie)?"""
    try:
        pid = int(ident.split(":", 1)[0])
    except ValueError:
        return False
    fields = _stat_fields(pid)
    return (fields is not None and fields[0] not in ("Z", "X", "x")
            and identity(pid) == ident)


def session_processes(leader_pid: int) -> list[int]:
    """Live (non-zombie) pids whose session id is ``leader_pid``, the leader included."""
    if leader_pid <= 1:
        return []
    try:
        names = os.listdir("/proc")
    except OSError:
        return []
    out = []
    for name in names:
        if not name.isdigit():
            continue
        fields = _stat_fields(int(name))
        if fields is None or len(fields) < 4:
            continue
        if fields[0] in ("Z", "X", "x"):
            continue
        if fields[3] == str(leader_pid):
            out.append(int(name))
    return sorted(out)


def _signal_all(pids: list[int], *sigs: signal.Signals) -> None:
    for pid in pids:
        for sig in sigs:
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass


def _others(leader_pid: int) -> list[int]:
    # never signal ourselves: a planeai command run inside the session it deletes must finish
    me = os.getpid()
    return [p for p in session_processes(leader_pid) if p != me]


def _wait_gone(leader_pid: int, deadline: float, seen: set[int],
               sigs: tuple[signal.Signals, ...]) -> bool:
    """Poll until the session is empty; new pids (forked meanwhile) get ``sigs`` too."""
    while True:
        left = _others(leader_pid)
        if not left:
            return True
        new = [p for p in left if p not in seen]
        if new:
            seen.update(new)
            _signal_all(new, *sigs)
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL)


def kill_session_processes(leader_pid: int, *, timeout: float = 5.0) -> int:
    """End every process of the session ``leader_pid``: SIGHUP and SIGTERM first, SIGKILL
    after ``timeout / 2`` for the rest. Returns how many processes were found (0: nothing
    to do). Never raises for processes that vanish or belong to someone else."""
    if leader_pid <= 1:
        return 0
    start = time.monotonic()
    seen: set[int] = set(_others(leader_pid))
    if not seen:
        return 0
    polite = (signal.SIGHUP, signal.SIGTERM)
    # SIGCONT: a stopped process (^Z) would never act on HUP/TERM
    _signal_all(sorted(seen), *polite, signal.SIGCONT)
    if not _wait_gone(leader_pid, start + timeout / 2, seen, polite):
        _signal_all(_others(leader_pid), signal.SIGKILL)
        _wait_gone(leader_pid, start + timeout, seen, (signal.SIGKILL,))
    return len(seen)


__all__ = ["alive", "identity", "kill_session_processes", "session_processes"]
