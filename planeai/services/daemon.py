"""Running the session daemon (``planeai daemon start|stop|status``): where it lives, whether
it runs, starting and stopping it. The front ends ask here; only this module knows the
daemon's client (``planeai.backends.daemon``)."""

from __future__ import annotations

from planeai.backends.daemon import DaemonPaths, daemon_paths
from planeai.backends.daemon import client as _client

__all__ = ["DaemonPaths", "paths", "running_pid", "pid_on_file", "live_sessions", "status",
           "start", "stop"]


def paths(locs=None) -> DaemonPaths:
    """Where this PLANEAI_HOME's daemon keeps its socket, lock and log."""
    return daemon_paths(locs)


def running_pid(where: DaemonPaths) -> int | None:
    """The pid of the daemon that answers on the socket, or None when none answers."""
    try:
        c = _client.DaemonClient(where.socket)
    except _client.DaemonNotRunning:
        return None
    try:
        return c.hello["pid"]  # type: ignore[index]
    finally:
        c.close()


def pid_on_file(where: DaemonPaths) -> int | None:
    """The pid recorded in the lock file (a daemon that may not answer yet), or None."""
    return _client.daemon_pid(where)


def live_sessions(where: DaemonPaths) -> list[str] | None:
    """Names of the daemon's running sessions, or None when no daemon answers."""
    try:
        c = _client.DaemonClient(where.socket)
    except _client.DaemonNotRunning:
        return None
    try:
        return [s["name"] for s in c.request("list") if s["alive"]]  # type: ignore[union-attr]
    finally:
        c.close()


def status(where: DaemonPaths) -> dict | None:
    """The daemon's own status (pid, started, socket, clients, sessions), or None when no
    daemon answers. Raises BackendError when it answers badly."""
    try:
        c = _client.DaemonClient(where.socket)
    except _client.DaemonNotRunning:
        return None
    try:
        st = c.request("status")
    finally:
        c.close()
    assert isinstance(st, dict)
    return st


def start(where: DaemonPaths, *, scrollback: int) -> int:
    """Start a daemon in the background; its pid. Raises BackendError when it does not come up."""
    return _client.start_daemon(where, extra_args=["--scrollback", str(scrollback)])


def stop(where: DaemonPaths) -> int | None:
    """Stop the daemon and every session it runs; the pid it had (None if none ran)."""
    return _client.stop_daemon(where)
