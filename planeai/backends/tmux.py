"""The tmux backend: sessions on planeai's own tmux server (``tmux -L planeai``).

Sessions outlive planeai, and ``tmux -L planeai attach -t PLA-1`` works from any terminal.
Each ``PLANEAI_HOME`` gets a server of its own (``planeai-<hash>``, :func:`default_socket`),
so two homes never see, block or kill each other's sessions.
All talk goes over one control-mode client (``tmux -C``): a capture costs ~0.3 ms instead of
a ~2 ms fork, and 50 panes are swept in one pipelined round trip.

Pitfalls handled here: targets are exact (``=PLA-1:`` never hits PLA-12); ``remain-on-exit``
is on server-wide before any spawn, so a finished agent keeps its pane and exit status; argv
always has 2+ elements so tmux execs it directly instead of through ``sh -c``.

Literal strings only: tmux expands ``#(cmd)`` and ``#{...}`` formats in start directories
(``-c``) and buffer file paths, so no path planeai was given ever goes there. Sessions start
in ``/`` and the wrapper cds into the worktree itself; pasted text goes in as one
``set-buffer`` argument. Names (sessions, buffers) are checked by ``check_name``; argv and
``-e`` values reach the process as they are.

What runs inside a pane (the sh wrapper that records the agent's pid and exit status, the
signal reset before exec) and the files it keeps are ``tmux_wrapper``; the control-mode
connection and its parsing are ``tmux_control/``. Over 450 lines all the same: what is left
is the Backend protocol over one control client, and its streaming, its kill and its status
reads share that client, the pane map and the pitfalls above, so they stay one class.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Mapping

from planeai.backends.base import (KEY_BYTES, OutputCallback, SessionInfo, Snapshot,
                                   SpawnSpec, check_name, key_bytes)
from planeai.backends.procs import kill_session_processes
from planeai.backends.tmux_control import (TmuxCommandError, TmuxControl, TmuxControlClosed,
                                           server_env)
from planeai.backends.tmux_wrapper import EXIT_MARK, WrapperFiles, wrapped_argv
from planeai.errors import BackendError

HISTORY_LIMIT = 10000
END_WAIT = 5.0  # seconds a watched session's end mark waits for tmux to mark the pane dead
_INFO_FMT = ("#{pane_dead}\x1f#{pane_dead_status}\x1f#{pane_pid}\x1f#{cursor_x}\x1f"
             "#{cursor_y}\x1f#{pane_width}\x1f#{pane_height}\x1f#{window_activity}\x1f"
             "#{session_created}")


def default_socket(env: Mapping[str, str]) -> str:
    """The server of this ``PLANEAI_HOME``: "planeai" without one, else "planeai-" and a hash
    of the resolved path (two spellings of one home share a server, two homes never do)."""
    home = env.get("PLANEAI_HOME")
    if not home:
        return "planeai"
    resolved = os.path.realpath(os.path.expanduser(home))
    return "planeai-" + hashlib.sha256(os.fsencode(resolved)).hexdigest()[:10]


def target(name: str) -> str:
    """The exact pane target of a session; the name is checked here, so no tmux command of
    this backend ever carries a name with '#', ':' or '.' in it."""
    return f"={check_name(name)}:"


def session_target(name: str) -> str:
    return f"={check_name(name)}"


def _snapshot_cmds(name: str) -> list[list[str]]:
    """What a Snapshot is read from: the plain screen, the screen with its escapes, the
    pane's state (run back to back: tmux reads no pane output between them)."""
    return [["capture-pane", "-p", "-t", target(name)],
            ["capture-pane", "-p", "-e", "-t", target(name)],
            ["list-panes", "-t", target(name), "-F", _INFO_FMT]]


class _ScreenGate:
    """A ``subscribe_screen`` subscriber: output before its first screen is dropped (that
    screen has it); the end (``b""``) always goes through."""

    def __init__(self, on_screen: Callable[[Snapshot | None], None],
                 on_output: OutputCallback):
        self.on_screen = on_screen
        self.on_output = on_output
        self.synced = False

    def __call__(self, name: str, data: bytes) -> None:
        if self.synced or not data:
            self.on_output(name, data)

    def screen(self, snap: Snapshot | None) -> None:
        """The whole screen, in order (None: it could not be read)."""
        self.synced = snap is not None
        self.on_screen(snap)


def _foreground_group(pid: int) -> int | None:
    """The foreground process group of the terminal ``pid`` runs on (/proc stat's tpgid)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    try:
        tpgid = int(fields[5])
    except (IndexError, ValueError):
        return None
    return tpgid if tpgid > 0 else None


class TmuxBackend:
    kind = "tmux"
    in_process = False
    persistent = True
    has_screen = False
    lost_reason = "tmux session gone"

    @classmethod
    def from_settings(cls, config, locs, env: dict[str, str]) -> TmuxBackend:
        return cls(config.tmux.socket, env=env, runtime_dir=locs.runtime_dir)

    def __init__(self, socket: str = "", *, env: dict[str, str] | None = None,
                 tmux_bin: str = "tmux", runtime_dir: Path | None = None) -> None:
        self.env = dict(os.environ if env is None else env)
        self.socket = socket or default_socket(self.env)
        self.tmux_bin = tmux_bin
        self.runtime_dir = runtime_dir
        self._ctl: TmuxControl | None = None
        self._lock = threading.Lock()
        self._subs: dict[str, list[OutputCallback]] = {}
        self._pane_to_name: dict[str, str] = {}
        # the wrappers' pid and status files (tmux_wrapper), one private directory per server
        self._files = WrapperFiles((runtime_dir or Path(tempfile.gettempdir()))
                                   / f"tmux-{self.socket}-status")

    # ------------------------------------------------------------------ control client
    def ctl(self) -> TmuxControl:
        with self._lock:
            if self._ctl is not None and self._ctl.alive:
                return self._ctl
            ctl = self._new_control()
            try:
                ctl.start()
                ctl.commands([["set-option", "-g", "remain-on-exit", "on"],
                              ["set-option", "-g", "history-limit", str(HISTORY_LIMIT)],
                              ["set-option", "-g", "status", "off"]])
            except (OSError, BackendError) as e:
                ctl.close()
                raise BackendError(f"cannot start tmux server -L {self.socket}: {e}") from None
            ctl.add_output_listener(self._on_output)
            ctl.add_event_listener(self._on_event)
            self._ctl = ctl
            return ctl

    def _new_control(self) -> TmuxControl:
        return TmuxControl(self.socket, tmux_bin=self.tmux_bin, env=self.env)

    def _on_event(self, name: str, args: list[str]) -> None:
        """A session's watcher ended while someone still subscribes (tmux dropped that client,
        e.g. it attached as the session was being made): watch it again, off the reader
        thread, so the app's view keeps getting output instead of freezing silently."""
        if name == "continue" and args:
            self._repaint_after_pause(args)
            return
        if name != "watch-ended" or not args or not self._subs.get(args[0]):
            return

        def rewatch(session: str = args[0]) -> None:
            cur = self._ctl
            if not self._subs.get(session) or (cur is not None and session in cur.watched):
                return
            try:
                gone = self._pane_info(session) is None
                if not gone:
                    # the client that answers now: a new one when the old died with its
                    # connection (a remote host's dropped ssh), even one another thread
                    # is making this moment
                    ctl = self.ctl()
                    if session not in ctl.watched:
                        ctl.watch(session)
                    self.list()
            except BackendError:
                gone = True  # tmux cannot be asked (its server died): as good as gone
            if gone:
                # no end mark will come (the server died, or it was killed): say the
                # output has ended, so its observers look now instead of at a safety check
                for cb in list(self._subs.get(session, [])):
                    try:
                        cb(session, b"")
                    except Exception:
                        pass
                return
            # what it printed while nobody watched is lost from the stream: repaint
            try:
                self._capture_in_stream(session)
            except BackendError:
                pass

        threading.Thread(target=rewatch, name=f"tmux-rewatch-{args[0]}", daemon=True).start()

    def _on_end_mark(self, session: str) -> None:
        """The wrapper printed its end mark (tmux_wrapper.EXIT_MARK): once tmux has marked
        the pane dead (a moment later), subscribers get ``b""``, the end of output. With
        remain-on-exit no notification says a pane died, and this needs no polling of idle
        sessions: only this short wait at the end, off the reader thread."""

        def wait_dead() -> None:
            deadline = time.monotonic() + END_WAIT
            while time.monotonic() < deadline:
                try:
                    info = self._pane_info(session)
                except BackendError:
                    info = None
                if info is None or not info.alive:
                    break
                time.sleep(0.02)
            for cb in list(self._subs.get(session, [])):
                try:
                    cb(session, b"")
                except Exception:
                    pass

        threading.Thread(target=wait_dead, name=f"tmux-end-{session}", daemon=True).start()

    def _repaint_after_pause(self, args: list[str]) -> None:
        """tmux paused a pane for a client that fell behind (``pause-after``; a loaded
        machine) and dropped what it printed meanwhile: hand subscribers the whole screen
        again, captured in the stream (never from another client: a screen read elsewhere
        and handed over late would paint over newer output), so a view never keeps a stale
        or blank screen."""
        session = args[1] if len(args) > 1 else self._pane_to_name.get(args[0])
        if not session or not self._subs.get(session):
            return
        try:
            self._capture_in_stream(session)
        except BackendError:
            pass  # the watcher is gone: watch-ended brings a new one and a new screen

    def _cmd(self, *args: str) -> list[str]:
        try:
            return self.ctl().command(*args)
        except TmuxControlClosed:
            # the server died (or was killed): one fresh try starts a new one
            with self._lock:
                self._ctl = None
            return self.ctl().command(*args)

    def server_running(self) -> bool:
        """True when the server answers, without starting one."""
        r = subprocess.run([self.tmux_bin, "-L", self.socket, "list-sessions"],
                           capture_output=True, env=server_env(self.env), cwd="/", timeout=10)
        return r.returncode == 0

    # ------------------------------------------------------------------ protocol
    def spawn(self, spec: SpawnSpec) -> SessionInfo:
        check_name(spec.name)
        existing = self.info(spec.name)
        if existing is not None and existing.alive:
            raise BackendError(f"tmux session {spec.name} is already running")
        argv = self._pane_argv(str(self._files.fresh(spec.name)), spec.cwd, spec.argv)
        env_args: list[str] = []
        for k, v in spec.env.items():
            if "\x00" in k or "\x00" in v or "=" in k:
                continue
            env_args += ["-e", f"{k}={v}"]
        if existing is not None:
            # a restart: respawn the dead pane in place. Killing the session and creating a
            # new one of the same name left tmux 3.3a unable to reap the next child now and
            # then (a zombie with no exit status); respawning keeps one pane for the session.
            args = ["respawn-pane", "-k", "-t", target(spec.name), "-c", "/", *env_args, *argv]
            try:
                self._cmd("resize-window", "-t", target(spec.name), "-x", str(spec.cols),
                          "-y", str(spec.rows))
            except TmuxCommandError:
                pass
        else:
            args = ["new-session", "-d", "-s", spec.name, "-x", str(spec.cols), "-y",
                    str(spec.rows), "-c", "/", *env_args, *argv]
        try:
            self._cmd(*args)
        except TmuxCommandError as e:
            raise BackendError(f"tmux could not start {spec.name}: {e}") from None
        info = self.info(spec.name)
        if info is None:
            raise BackendError(f"tmux session {spec.name} vanished right after start")
        return info

    def _sessions(self) -> list[dict]:
        """Every session; raises when tmux cannot be asked. An error must never read as
        "no sessions": reconcile would mark every running agent lost."""
        for attempt in (1, 2):
            try:
                return self.ctl().list_sessions()
            except TmuxControlClosed:
                # e.g. attached just as a killed client's control session was destroyed
                with self._lock:
                    self._ctl = None
                if attempt == 2:
                    raise BackendError(f"cannot list sessions on tmux -L {self.socket}")
        return []

    def list(self) -> list[SessionInfo]:
        out = []
        for d in self._sessions():
            self._pane_to_name[d["pane_id"]] = d["name"]
            status = d["pane_dead_status"]
            if d["pane_dead"] and status is None:
                status = self._dead_status(d["name"])
            out.append(SessionInfo(d["name"], not d["pane_dead"], status, d["pane_pid"]))
        return out

    def survey(self) -> dict[str, SessionInfo]:
        # no server: none of its sessions runs, for certain; a listing error says nothing.
        # A missing tmux binary is no hiccup: its OSError escapes, so the caller sees it.
        if not self.server_running():
            return {}
        return {i.name: i for i in self.list()}

    def screen(self, name: str):
        raise BackendError("the tmux backend has no in-process screen (has_screen is False)")

    def info(self, name: str) -> SessionInfo | None:
        info = self._pane_info(name)
        if info is not None and not info.alive and info.exit_code is None:
            info.exit_code = self._files.status(name)
        return info

    def _pane_info(self, name: str) -> SessionInfo | None:
        try:
            # list-panes, not display-message: the latter answers "" for a missing target
            line = self._cmd("list-panes", "-t", target(name), "-F", _INFO_FMT)
        except TmuxCommandError:
            return None
        parts = line[0].split("\x1f") if line else []
        if len(parts) < 3:
            return None
        dead = parts[0] == "1"
        status = int(parts[1]) if dead and parts[1].lstrip("-").isdigit() else None
        pid = int(parts[2]) if parts[2].isdigit() else None
        return SessionInfo(name, not dead, status, pid)

    def _dead_status(self, name: str, tries: int = 25) -> int | None:
        """tmux marks a pane dead a moment before it has reaped the exit status (and now and
        then never does); the wrapper's file has it."""
        for _ in range(tries):
            code = self._files.status(name)
            if code is not None:
                return code
            info = self._pane_info(name)
            if info is None or info.exit_code is not None:
                return info.exit_code if info else None
            time.sleep(0.02)
        return None

    def write(self, name: str, data: bytes) -> None:
        if not data:
            return
        # -H sends raw bytes (hex), so any byte sequence reaches the agent unchanged
        for i in range(0, len(data), 512):
            chunk = data[i:i + 512]
            try:
                self._cmd("send-keys", "-t", target(name), "-H", *(f"{b:02x}" for b in chunk))
            except TmuxCommandError as e:
                raise BackendError(f"cannot write to {name}: {e}") from None

    def send_keys(self, name: str, *keys: str) -> None:
        key_bytes(keys)  # the same names as the other backends, or a clear error
        try:
            # names as tmux's own (it knows the pane's cursor-key mode); a single character
            # literally (-l), so tmux never reads it as a key name or option
            for k in keys:
                if k in KEY_BYTES:
                    self._cmd("send-keys", "-t", target(name), k)
                else:
                    self._cmd("send-keys", "-t", target(name), "-l", "--", k)
        except TmuxCommandError as e:
            raise BackendError(f"cannot send keys to {name}: {e}") from None

    def paste(self, name: str, text: str) -> None:
        """Through a tmux buffer: -p wraps it in bracketed paste when the agent asked for it.
        The text is one set-buffer argument (literal); load-buffer would expand its path."""
        text = text.replace("\x1b[201~", "")
        if not text:
            return
        buf = f"planeai-{check_name(name)}"
        try:
            self._cmd("set-buffer", "-b", buf, "--", text)
            self._cmd("paste-buffer", "-p", "-d", "-b", buf, "-t", target(name))
        except (TmuxCommandError, ValueError) as e:
            raise BackendError(f"cannot paste into {name}: {e}") from None

    def resize(self, name: str, cols: int, rows: int) -> None:
        try:
            self._cmd("resize-window", "-t", target(name), "-x", str(cols), "-y", str(rows))
        except TmuxCommandError as e:
            raise BackendError(f"cannot resize {name}: {e}") from None

    def snapshot(self, name: str) -> Snapshot:
        return self._snapshot_from(name, self.ctl().commands(_snapshot_cmds(name)))

    def _snapshot_from(self, name: str, res: list, *, wait_status: bool = True) -> Snapshot:
        """The Snapshot of ``_snapshot_cmds``' answers; ``wait_status=False`` on a reader
        thread (no command, no wait: a dead pane's status from the wrapper's file only)."""
        if len(res) != 3 or any(isinstance(r, TmuxCommandError) for r in res) \
                or not res[2]:
            raise BackendError(f"no tmux session {name}")
        plain, ansi, info = res  # type: ignore[misc]
        p = info[0].split("\x1f")
        if len(p) < 9:
            raise BackendError(f"no tmux session {name}")
        dead = p[0] == "1"
        status = int(p[1]) if dead and p[1].lstrip("-").isdigit() else None
        if dead and status is None:
            status = self._dead_status(name) if wait_status else self._files.status(name)
        now = time.time()
        activity = int(p[7]) if p[7].isdigit() else None
        created = int(p[8]) if p[8].isdigit() else None
        rows = int(p[6]) if p[6].isdigit() else len(plain)
        lines = [ln.rstrip() for ln in plain][:rows]
        lines += [""] * (rows - len(lines))
        return Snapshot(
            lines=lines,
            ansi="\r\n".join(ansi).encode("utf-8"),
            cursor=(int(p[3]), int(p[4])) if p[3].isdigit() and p[4].isdigit() else (0, 0),
            cols=int(p[5]) if p[5].isdigit() else 0,
            rows=rows,
            alive=not dead,
            exit_code=status,
            # tmux keeps activity in whole seconds: good enough for the busy window
            seconds_since_output=max(0.0, now - activity) if activity else None,
            extra={"seconds_since_start": now - created if created else None},
        )

    def subscribe_screen(self, name: str, on_screen: Callable[[Snapshot | None], None],
                         on_output: OutputCallback) -> Callable[[], None]:
        """``subscribe``, ordered with a first screen: ``on_screen(snapshot)`` first, then
        ``on_output`` with exactly the output after it (both on the reader thread). The
        screen is captured over the session's own watcher, so its answer sits in the output
        stream at the point it was taken (one channel: no output lost or applied twice).
        ``on_screen`` comes again, in order too, whenever tmux dropped output (a pause, a
        watcher that had to be replaced); ``on_screen(None)`` when the first screen could
        not be read (the session is gone). Returns the function that unsubscribes."""
        gate = _ScreenGate(on_screen, on_output)
        unsub = self.subscribe(name, gate)
        try:
            self._capture_in_stream(name, only=gate)
        except BaseException:
            unsub()
            raise
        return unsub

    def _capture_in_stream(self, name: str, only: "_ScreenGate | None" = None) -> None:
        """Capture ``name``'s screen in its output stream and hand it to ``only`` (or every
        subscriber: a whole screen to an ordered one, the bytes that redraw it to the rest).
        Safe from the reader thread (it only writes)."""
        ctl = self._ctl

        def done(res: list) -> None:
            try:
                snap = self._snapshot_from(name, res, wait_status=False)
            except BackendError:
                if only is not None:
                    only.screen(None)  # no screen to start from: its attach fails now
                return  # gone: its other subscribers see it end
            for cb in [only] if only is not None else list(self._subs.get(name, [])):
                try:
                    if isinstance(cb, _ScreenGate):
                        cb.screen(snap)
                    else:
                        cb(name, snap.replay())
                except Exception:
                    pass

        if ctl is None:
            raise BackendError(f"tmux -L {self.socket} is not connected")
        try:
            ctl.watcher_commands(name, _snapshot_cmds(name), done)
        except TmuxControlClosed as e:
            raise BackendError(f"cannot read {name}: {e}") from None

    def snapshots(self, names: list[str]) -> dict[str, str | None]:
        """Plain screens of many sessions in one round trip (for the app's previews)."""
        caps = self.ctl().capture_panes([target(n) for n in names], escapes=False)
        return {n: caps.get(target(n)) for n in names}

    def scrollback(self, name: str) -> list[str]:
        try:
            lines = self._cmd("capture-pane", "-p", "-J", "-S", "-", "-E", "-", "-t", target(name))
        except TmuxCommandError as e:
            raise BackendError(f"no tmux session {name}: {e}") from None
        while lines and not lines[-1].strip():
            lines.pop()
        return [ln.rstrip() for ln in lines]

    def kill(self, name: str, *, timeout: float = 5.0) -> int | None:
        """End the agent and everything it started; its exit code when known."""
        info = self.info(name)
        if info is None:
            leader = self._files.leader(name)
            if leader is None:
                raise BackendError(f"no tmux session {name}")
            # the server is gone but the agent is not (it ignored the hangup)
            self._end_processes(leader, timeout)
            return None
        try:
            return self._kill_pane(name, info, timeout)
        finally:
            if info.pid:
                # what the agent started in groups of their own, or that ignored every signal
                self._end_processes(info.pid, timeout)

    def _kill_pane(self, name: str, info: SessionInfo, timeout: float) -> int | None:
        if not info.alive or info.pid is None:
            return info.exit_code
        for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGKILL):
            self._signal_pane(info.pid, sig)
            deadline = time.monotonic() + (timeout / 3 if sig != signal.SIGKILL else timeout)
            while time.monotonic() < deadline:
                cur = self.info(name)
                if cur is None:
                    return 128 + sig
                if not cur.alive:
                    if cur.exit_code is None:
                        cur.exit_code = self._dead_status(name)
                    return cur.exit_code if cur.exit_code is not None else 128 + sig
                time.sleep(0.02)
        return None

    # ------------------------------------------------------------------ the machine it runs on
    # (planeai.backends.remote does these over SSH)
    def _pane_argv(self, status_file: str, cwd: str, argv: list[str]) -> list[str]:
        return wrapped_argv(status_file, cwd, argv)

    def _signal_pane(self, pid: int, sig: int) -> None:
        """``sig`` to the wrapper's group and the terminal's foreground group: an interactive
        agent (a shell with job control) puts itself in a group of its own."""
        for pgid in {pid, _foreground_group(pid)} - {None, 0}:
            try:
                os.killpg(pgid, sig)  # type: ignore[arg-type]
            except (ProcessLookupError, PermissionError):
                pass

    def _end_processes(self, leader: int, timeout: float) -> None:
        kill_session_processes(leader, timeout=timeout)

    def forget(self, name: str) -> None:
        """Remove the session and end every process it still has."""
        info = self._pane_info(name)
        leader = info.pid if info is not None else self._files.leader(name)
        try:
            self._cmd("kill-session", "-t", session_target(name))
        except TmuxCommandError:
            pass
        if leader:
            self._end_processes(leader, 5.0)
        self._files.clear(name)

    def attach_command(self, name: str) -> list[str] | None:
        """The window follows the attaching terminal's size (the app's view had fixed it
        with resize-window: filler around a small screen otherwise), then attaches.
        tmux's argv ``;`` separates commands."""
        return [self.tmux_bin, "-L", self.socket,
                "set-option", "-w", "-t", target(name), "window-size", "latest", ";",
                "attach-session", "-t", session_target(name)]

    # ------------------------------------------------------------------ streaming
    def _on_output(self, pane: str, data: bytes) -> None:
        name = self._pane_to_name.get(pane)
        for cb in list(self._subs.get(name or "", [])):
            try:
                cb(name, data)  # type: ignore[arg-type]
            except Exception:
                pass
        if name and EXIT_MARK in data:
            self._on_end_mark(name)

    def subscribe(self, name: str, callback: OutputCallback) -> Callable[[], None]:
        check_name(name)
        ctl = self.ctl()
        subs = self._subs.setdefault(name, [])
        subs.append(callback)
        # watch unless a live watcher is already there: one that died (its session was gone
        # when it attached, e.g. the app subscribed while the session was still being set up)
        # is replaced; a failed watch leaves no subscriber behind that would make the next
        # subscribe think it is watched
        if name not in ctl.watched:
            try:
                ctl.watch(name)
            except BaseException:
                subs.remove(callback)
                if not subs:
                    self._subs.pop(name, None)
                raise
        # pane -> name, read once the watcher is attached: the session surely exists now (read
        # before, a session created in between had no name, and its output went nowhere)
        self.list()

        def unsubscribe() -> None:
            subs = self._subs.get(name, [])
            if callback in subs:
                subs.remove(callback)
            if not subs:
                try:
                    ctl.unwatch(name)
                except BackendError:
                    pass

        return unsubscribe

    def close(self) -> None:
        with self._lock:
            if self._ctl is not None:
                self._ctl.close()
                self._ctl = None

    def kill_server(self) -> None:
        """Tests and `planeai doctor --reset` only: ends every session on this socket, and
        every process of theirs (an agent that ignores the hangup too)."""
        try:
            leaders = [i.pid for i in self.list() if i.pid]
        except BackendError:
            leaders = []
        try:
            self._cmd("kill-server")
        except (TmuxCommandError, TmuxControlClosed):
            pass
        self.close()
        for pid in leaders:
            self._end_processes(pid, 5.0)
