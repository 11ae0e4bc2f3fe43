"""What every planeai process shares about one tmux server: the environment it may start with,
and the lock that orders control clients coming and going (tmux 3.3a crashes otherwise: see
the package doc)."""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)

# What a tmux server (and so every pane, before its own -e variables) may inherit from the
# process that starts it. Anything else, API keys above all, stays out of the server.
SERVER_ENV_KEYS = frozenset({"PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "TERM",
                             "TMUX_TMPDIR", "TZ"})


def server_env(env: dict[str, str]) -> dict[str, str]:
    """The environment a tmux client runs with: only what a server needs (locale, paths)."""
    return {k: v for k, v in env.items() if k in SERVER_ENV_KEYS or k.startswith("LC_")}


LOCK_TIMEOUT = 30.0


class ServerLock:
    """One lock per tmux server, shared by every planeai process and thread (reentrant in a
    thread): flock on ``$TMUX_TMPDIR/tmux-UID/<socket>.planeai-lock``. See the package doc.

    Never raises: a lock file that cannot be made, or a holder that keeps it past
    LOCK_TIMEOUT, leaves the caller going on unlocked (logged) rather than stuck."""

    _registry: dict[str, "ServerLock"] = {}
    _registry_lock = threading.Lock()

    def __init__(self, path: Path) -> None:
        self.path = path
        self._rlock = threading.RLock()
        self._depth = 0
        self._fd: int | None = None

    @classmethod
    def of(cls, socket_name: str, env: dict[str, str]) -> "ServerLock":
        """The one lock object of server ``socket_name`` as seen with ``env``'s TMUX_TMPDIR."""
        # the directory tmux puts the socket in (it ignores a TMUX_TMPDIR that is not a dir)
        base = env.get("TMUX_TMPDIR") or ""
        base = os.path.realpath(base) if base and os.path.isdir(base) else "/tmp"
        path = Path(base) / f"tmux-{os.getuid()}" / f"{socket_name}.planeai-lock"
        with cls._registry_lock:
            lock = cls._registry.get(str(path))
            if lock is None:
                lock = cls._registry[str(path)] = cls(path)
            return lock

    def __enter__(self) -> "ServerLock":
        self._rlock.acquire()
        if self._depth == 0:
            self._fd = self._open_locked()
        self._depth += 1
        return self

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        if self._depth == 0 and self._fd is not None:
            os.close(self._fd)  # releases the flock
            self._fd = None
        self._rlock.release()

    def _open_locked(self) -> int | None:
        try:
            # tmux makes this directory 0700 itself; making it first the same way is fine
            self.path.parent.mkdir(mode=0o700, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as e:
            log.debug("no tmux server lock %s: %s", self.path, e)
            return None  # unlocked beats unusable
        # a holder that hangs (stopped, or waiting on a hung server) must not hang us forever
        deadline = time.monotonic() + LOCK_TIMEOUT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                if time.monotonic() > deadline:
                    log.warning("tmux server lock %s held for %ss; going on without it",
                                self.path, LOCK_TIMEOUT)
                    break
                time.sleep(0.002)
            except OSError:
                break
        os.close(fd)
        return None
