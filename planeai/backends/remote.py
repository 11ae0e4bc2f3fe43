"""The remote backend: sessions in tmux on another machine, reached over SSH ([hosts.NAME]).

It is the tmux backend with its server on the host: the control-mode client is ``tmux -C``
run through ``ssh -T`` (planeai.remote.ssh: every word quoted, one multiplexed connection per
host, so a hundred sessions are channels of one login), and what the tmux backend does on
this machine (the pane wrapper's files, signalling an agent's groups, ending what a session
left behind) is done there by short sh scripts whose values are positional parameters.
Status, logs, send, stop, restart, attach and reconcile are the tmux backend's own code.

Losing the network is not losing the session: the agent runs in the host's tmux; a dead
connection fails the control client, and the next call makes a new one (ssh logs in again
through ControlMaster=auto). ``survey`` raises BackendError while the host does not answer,
so reconcile judges nothing then: its sessions are unreachable, not gone.

SSH allows a limited number of channels per connection (sshd's MaxSessions, 10 by default),
so the app does not keep a watcher per remote session: ``subscribe_activity`` reports which
sessions printed from one ``list-panes`` a second over the main client; a live view
(``subscribe_screen``) still streams over a watcher of its own.

Session kinds are ``host:NAME`` (planeai.backends.registry).
"""

from __future__ import annotations

import hashlib
import signal
import threading
import time
from typing import Callable

from planeai.backends.base import OutputCallback
from planeai.backends.registry import host_of, kind_for  # noqa: F401 - re-exported
from planeai.backends.tmux import TmuxBackend, default_socket, session_target, target
from planeai.backends.tmux_control import TmuxControl
from planeai.backends.tmux_wrapper import EXIT_WRAPPER, PY_RESET, RESET
from planeai.errors import BackendError, PlaneaiError
from planeai.remote.ssh import HostUnreachable

ACTIVITY_POLL = 1.0  # seconds between the activity reads of subscribed remote sessions
DOWN_HOLD = 15.0     # after the host did not answer, calls fail at once for this long

# $1 status dir, $2 session name: a fresh start has no files of an earlier run
_FRESH = 'umask 077; mkdir -p -- "$1" && rm -f -- "$1/$2" "$1/$2.pid"'
_CLEAR = 'rm -f -- "$1/$2" "$1/$2.pid"'
# $1 status file: the wrapper's pid, if that process still is the wrapper writing $1
_LEADER = ('p=$(cat -- "$1.pid" 2>/dev/null) || exit 1; '
           '[ "$(tr "\\000" "\\n" < "/proc/$p/cmdline" 2>/dev/null | sed -n 4p)" = "$1" ] '
           '&& printf %s "$p"')
# $1 pid, $2 signal: the wrapper's group and the terminal's foreground group
_SIGNAL = ('t=$(ps -o tpgid= -p "$1" 2>/dev/null | tr -d " "); '
           'kill -s "$2" -- "-$1" 2>/dev/null; '
           'case "$t" in ""|0|-1) ;; *) kill -s "$2" -- "-$t" 2>/dev/null;; esac; exit 0')
# $1 session id (the wrapper's pid), $2 tenths of a second to wait: everything of the
# session, TERM then KILL
_END = ('pkill -TERM -s "$1" 2>/dev/null; i=0; '
        'while pgrep -s "$1" >/dev/null 2>&1 && [ "$i" -lt "$2" ]; do sleep 0.1; i=$((i+1)); '
        'done; pkill -KILL -s "$1" 2>/dev/null; exit 0')


# A login over ssh -T often has no locale: tmux then writes control characters of formats
# as "_" and treats panes as not UTF-8. $1.. is the tmux argv; the user's own LANG wins.
_UTF8 = 'export LANG="${LANG:-C.UTF-8}"; exec "$@"'


def utf8(tmux_argv: list[str]) -> list[str]:
    """A tmux argv run there in UTF-8 (-u, and a UTF-8 LANG when the login has none)."""
    return ["sh", "-c", _UTF8, "sh", tmux_argv[0], "-u", *tmux_argv[1:]]


class HostDown(BackendError):
    """The host does not answer (ssh cannot reach it or log in): its sessions are
    unreachable, not gone."""

    def __init__(self, host: str, said: str) -> None:
        self.host = host
        super().__init__(said)


class RemoteFiles:
    """The pane wrappers' pid and status files, on the host (``<root>/run/tmux-status``):
    the remote twin of ``tmux_wrapper.WrapperFiles``."""

    def __init__(self, backend: "RemoteTmuxBackend") -> None:
        self.be = backend

    @property
    def directory(self) -> str:
        return self.be.root() + "/run/tmux-status"

    def status_file(self, name: str) -> str:
        return f"{self.directory}/{name}"

    def fresh(self, name: str) -> str:
        self.be.run(["sh", "-c", _FRESH, "sh", self.directory, name], check=True)
        return self.status_file(name)

    def clear(self, name: str) -> None:
        try:
            self.be.run(["sh", "-c", _CLEAR, "sh", self.directory, name])
        except BackendError:
            pass

    def leader(self, name: str) -> int | None:
        try:
            r = self.be.run(["sh", "-c", _LEADER, "sh", self.status_file(name)])
        except BackendError:
            return None
        return int(r.out) if r.ok and r.out.isdigit() and int(r.out) > 1 else None

    def status(self, name: str) -> int | None:
        try:
            r = self.be.run(["cat", "--", self.status_file(name)])
        except BackendError:
            return None
        try:
            return int(r.out.strip()) if r.ok else None
        except ValueError:
            return None


class RemoteTmuxBackend(TmuxBackend):
    kind = "host"          # each instance's is host:NAME
    in_process = False
    persistent = True
    has_screen = False
    lost_reason = "tmux session on the host gone"

    @classmethod
    def from_settings(cls, config, locs, env: dict[str, str]):
        raise BackendError("the remote backend is opened for a host: host:NAME")

    @classmethod
    def for_host(cls, name: str, config, locs, env: dict[str, str]) -> "RemoteTmuxBackend":
        from planeai.services import hosts

        try:
            host = hosts.get(config, name)
        except PlaneaiError as e:
            raise BackendError(str(e)) from None
        return cls(host, hosts.connection(host, locs), socket=config.tmux.socket, env=env)

    def __init__(self, host, conn, *, socket: str = "", env: dict[str, str] | None = None
                 ) -> None:
        super().__init__(socket or default_socket(env or {}), env=env)
        self.host = host
        self.conn = conn
        self.kind = kind_for(host.name)
        self._files = RemoteFiles(self)  # type: ignore[assignment]
        self._root: str | None = None
        self._reset: tuple[str, ...] | None = None
        self._login_facts: tuple[int, int, str] | None = None
        self._down_until = 0.0
        self._down_said = ""
        self._activity_subs: dict[str, list[OutputCallback]] = {}
        self._activity_seen: dict[str, tuple[str, str]] = {}
        self._activity_thread: threading.Thread | None = None
        self._activity_stop = threading.Event()

    # ------------------------------------------------------------------ the host
    def run(self, argv: list[str], *, check: bool = False, timeout: float = 60):
        """A command on the host; BackendError when the host cannot be reached or (with
        ``check``) the command failed."""
        self._fail_fast()
        try:
            return self.conn.run(argv, check=check, timeout=timeout)
        except HostUnreachable as e:
            raise self._down(e) from None
        except PlaneaiError as e:
            raise BackendError(str(e)) from None

    def _down(self, e: HostUnreachable) -> HostDown:
        """The host did not answer: so say every call for DOWN_HOLD seconds without asking
        again (a list of 30 sessions there must not wait 30 connect timeouts)."""
        self._down_until = time.monotonic() + DOWN_HOLD
        self._down_said = str(e)
        return HostDown(self.host.name, str(e))

    def _fail_fast(self) -> None:
        if time.monotonic() < self._down_until:
            raise HostDown(self.host.name, self._down_said)

    def root(self) -> str:
        """planeai's directory there ([hosts.NAME] root), absolute."""
        if self._root is None:
            self._fail_fast()
            try:
                self._root = self.conn.path(self.host.root).rstrip("/") or "/"
            except HostUnreachable as e:
                raise self._down(e) from None
            except PlaneaiError as e:
                raise BackendError(str(e)) from None
        return self._root

    def _login(self) -> tuple[int, int, str]:
        if self._login_facts is None:
            r = self.run(["sh", "-c", 'printf "%s\\n%s\\n%s" "$(id -u)" "$(id -g)" "$PATH"'],
                         check=True)
            uid, gid, path = (r.out.split("\n", 2) + ["", "", ""])[:3]
            self._login_facts = (int(uid) if uid.strip().isdigit() else -1,
                                 int(gid) if gid.strip().isdigit() else -1,
                                 path.strip() or "/usr/local/bin:/usr/bin:/bin")
        return self._login_facts

    def remote_uid(self) -> int:
        """The login's uid there."""
        return self._login()[0]

    def remote_gid(self) -> int:
        return self._login()[1]

    def remote_path(self) -> str:
        """The login's PATH there (what its agents find)."""
        return self._login()[2]

    def _new_control(self) -> TmuxControl:
        # log in first: a host that does not answer is HostDown, not a tmux failure
        self._fail_fast()
        try:
            self.conn.connect()
        except HostUnreachable as e:
            raise self._down(e) from None
        except PlaneaiError as e:
            raise BackendError(str(e)) from None
        digest = hashlib.sha256(f"{self.conn.target}\0{self.conn.port}".encode()).hexdigest()
        return TmuxControl(self.socket, tmux_bin=self.tmux_bin, env=self.env,
                           wrap=lambda argv: self.conn.argv(utf8(argv)),
                           lock_name=f"host-{digest[:12]}-{self.socket}")

    def server_running(self) -> bool:
        """True when the host's server answers; BackendError when the host does not."""
        return self.run(utf8([self.tmux_bin, "-L", self.socket, "list-sessions"])).ok

    def _pane_argv(self, status_file: str, cwd: str, argv: list[str]) -> list[str]:
        if not cwd.startswith("/"):
            raise BackendError(f"a session's directory on host {self.host.name} must be "
                               f"absolute, not {cwd!r}")
        return [*EXIT_WRAPPER, status_file, cwd, *self._reset_signals(), *argv]

    def _reset_signals(self) -> tuple[str, ...]:
        """GNU env's --default-signal there, else python3 (asked once per backend)."""
        if self._reset is None:
            ok = self.run(["env", f"--default-signal={RESET}", "true"]).ok
            self._reset = (("env", f"--default-signal={RESET}") if ok
                           else ("python3", "-S", "-c", PY_RESET))
        return self._reset

    def _signal_pane(self, pid: int, sig: int) -> None:
        self.run(["sh", "-c", _SIGNAL, "sh", str(pid), signal.Signals(sig).name[3:]])

    def _end_processes(self, leader: int, timeout: float) -> None:
        try:
            self.run(["sh", "-c", _END, "sh", str(leader), str(max(1, int(timeout * 10)))],
                     timeout=timeout + 30)
        except BackendError:
            pass  # unreachable now: the session's tmux ends them with the hangup

    def attach_command(self, name: str) -> list[str] | None:
        """``ssh -t host tmux attach`` (the window follows the terminal's size first)."""
        return self.conn.argv(utf8([self.tmux_bin, "-L", self.socket,
                                    "set-option", "-w", "-t", target(name), "window-size",
                                    "latest", ";", "attach-session", "-t",
                                    session_target(name)]), tty=True)

    # ------------------------------------------------------------------ activity
    def subscribe_activity(self, name: str, callback: OutputCallback) -> Callable[[], None]:
        """``callback(name, b"?")`` when the session printed, ``b""`` when it ended, found
        by one ``list-panes -a`` a second for every subscribed session of this host (no
        channel per session)."""
        self._activity_subs.setdefault(name, []).append(callback)
        if self._activity_thread is None or not self._activity_thread.is_alive():
            self._activity_stop.clear()
            self._activity_thread = threading.Thread(
                target=self._poll_activity, name=f"host-activity-{self.host.name}", daemon=True)
            self._activity_thread.start()

        def unsubscribe() -> None:
            subs = self._activity_subs.get(name, [])
            if callback in subs:
                subs.remove(callback)
            if not subs:
                self._activity_subs.pop(name, None)
                self._activity_seen.pop(name, None)

        return unsubscribe

    def _poll_activity(self) -> None:
        fmt = "#{session_name}\x1f#{window_activity}\x1f#{pane_dead}"
        while not self._activity_stop.wait(ACTIVITY_POLL):
            if not self._activity_subs:
                continue
            try:
                lines = self._cmd("list-panes", "-a", "-F", fmt)
            except BackendError:
                continue  # unreachable for now: the next round asks again
            now: dict[str, tuple[str, str]] = {}
            for line in lines:
                parts = line.split("\x1f")
                if len(parts) == 3:
                    now[parts[0]] = (parts[1], parts[2])
            for name, subs in list(self._activity_subs.items()):
                state = now.get(name, ("", "1"))
                before = self._activity_seen.get(name)
                self._activity_seen[name] = state
                if before is None or before == state:
                    continue
                data = b"" if state[1] == "1" else b"?"
                for cb in list(subs):
                    try:
                        cb(name, data)
                    except Exception:
                        pass

    def close(self) -> None:
        self._activity_stop.set()
        super().close()
