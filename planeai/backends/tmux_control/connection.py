"""One ``tmux -C`` process and its reader thread: writes command lines, matches each answer
block to the command that asked (in order), and hands pane output and notifications to its
owner, the :class:`~planeai.backends.tmux_control.client.TmuxControl`."""

from __future__ import annotations

import collections
import logging
import os
import subprocess
import threading
from typing import TYPE_CHECKING, Callable

from planeai.backends.tmux_control.errors import (TmuxCommandError, TmuxControlClosed,
                                                  TmuxTimeout)
from planeai.backends.tmux_control.protocol import (MARKER, MULTI_BLOCK, Block, ControlParser,
                                                    Output, command_line, decode,
                                                    notification_args, unescape_output)

if TYPE_CHECKING:
    from planeai.backends.tmux_control.client import TmuxControl

log = logging.getLogger(__name__)


class PendingCommand:
    """A command written to tmux and not yet answered; ``event`` is set when its block (or, for
    a multi-block command, its marker) arrives, or when the connection dies (``closed``)."""

    __slots__ = ("event", "lines", "error", "blocks", "closed", "argv", "abandoned", "on_done")

    def __init__(self, argv: list[str], blocks: int) -> None:
        self.event = threading.Event()
        self.lines: list[str] = []
        self.error: str | None = None
        self.blocks = blocks  # -1: collect until the marker block
        self.closed = False
        self.argv = argv
        self.abandoned = False
        self.on_done: Callable[["PendingCommand"], None] | None = None  # runs on the reader thread


class Connection:
    """One ``tmux -C`` process with its reader thread.

    Starting one raises TmuxControlClosed when tmux cannot be run. The owner (a TmuxControl)
    receives pane output, notifications, pauses and the connection's end on the reader thread.
    """

    def __init__(
        self,
        owner: "TmuxControl",
        attach_argv: list[str],
        label: str,
        forward_notifications: bool,
    ) -> None:
        self.owner = owner
        self.label = label
        self.forward_notifications = forward_notifications
        self._write_lock = threading.Lock()  # order of lines on stdin == order in _pending
        self._plock = threading.Lock()  # guards _pending and the dead flag
        self._pending: collections.deque[PendingCommand] = collections.deque()
        self._attached = threading.Event()
        self._attach_error: str | None = None
        self._dead = threading.Event()
        self._exit_reason = ""
        argv = [owner.tmux_bin, "-L", owner.socket_name]
        if owner.config_file is not None:
            argv += ["-f", owner.config_file]
        argv += ["-C", *attach_argv]
        if owner.wrap is not None:
            argv = owner.wrap(argv)
        try:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=owner.env,
                cwd="/",
                bufsize=0,
                start_new_session=True,
            )
        except OSError as e:
            raise TmuxControlClosed(f"cannot run {owner.tmux_bin}: {e}") from e
        self._stdout = os.fdopen(self.proc.stdout.fileno(), "rb", buffering=1 << 16, closefd=False)
        self.reader = threading.Thread(
            target=self._read_loop, name=f"tmux-control-{label}", daemon=True
        )
        self.reader.start()

    # -- state ---------------------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        return not self._dead.is_set() and self.proc.poll() is None

    def wait_attached(self, timeout: float) -> None:
        if not self._attached.wait(timeout):
            if self._dead.is_set():
                raise TmuxControlClosed(self._closed_message())
            raise TmuxTimeout(f"tmux control client ({self.label}) did not attach in {timeout}s")
        if self._attach_error is not None:
            raise TmuxCommandError(self._attach_error)
        if self._dead.is_set():
            raise TmuxControlClosed(self._closed_message())

    def _closed_message(self) -> str:
        reason = f": {self._exit_reason}" if self._exit_reason else ""
        return f"tmux control client ({self.label}) is closed{reason}"

    # -- writing -------------------------------------------------------------------------------

    def submit_many(
        self, cmds: list[list[str]], on_done: Callable[[PendingCommand], None] | None = None
    ) -> list[PendingCommand]:
        """Write ``cmds`` in one go; returns one PendingCommand each, in order. Raises
        TmuxControlClosed when the connection is dead or the write fails."""
        lines: list[bytes] = []
        pendings: list[PendingCommand] = []
        for argv in cmds:
            line = command_line(argv)
            multi = argv[0] in MULTI_BLOCK
            if multi:
                line += "\n" + command_line(["display-message", "-p", MARKER])
            lines.append(line.encode("utf-8") + b"\n")
            pendings.append(PendingCommand(list(argv), -1 if multi else 1))
            pendings[-1].on_done = on_done
        data = b"".join(lines)
        with self._write_lock:
            with self._plock:
                if self._dead.is_set():
                    raise TmuxControlClosed(self._closed_message())
                self._pending.extend(pendings)
            try:
                self.proc.stdin.write(data)
            except (OSError, ValueError) as e:
                # The reader will notice EOF and fail everything pending.
                self._mark_dead(f"write failed: {e}")
                raise TmuxControlClosed(self._closed_message()) from e
        return pendings

    def wait(self, p: PendingCommand, timeout: float) -> list[str]:
        """The answer's output lines. Raises TmuxCommandError (tmux said %error),
        TmuxControlClosed (the connection died first) or TmuxTimeout."""
        if threading.current_thread() is self.reader:
            raise RuntimeError("TmuxControl.command() called from the reader thread (listener)")
        if not p.event.wait(timeout):
            p.abandoned = True
            raise TmuxTimeout(f"tmux did not answer {p.argv[:3]!r} within {timeout}s")
        if p.closed:
            raise TmuxControlClosed(self._closed_message())
        if p.error is not None:
            raise TmuxCommandError(p.error, p.argv)
        return p.lines

    def close(self, timeout: float = 2.0) -> None:
        """Detach under the server lock and wait until the server has dropped us; never
        raises for a connection that is already gone."""
        with self.owner.lock:
            self._close(timeout)

    def _close(self, timeout: float) -> None:
        was_alive = self.proc.poll() is None
        with self._write_lock:
            try:
                self.proc.stdin.close()  # EOF on stdin: tmux detaches the control client
            except OSError:
                pass
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout)
        if was_alive:
            self.owner._wait_client_gone(self.proc.pid, timeout)
        if threading.current_thread() is not self.reader:
            self.reader.join(timeout)
        self._mark_dead("closed")
        for f in (self._stdout, self.proc.stdout, self.proc.stderr):
            try:
                f.close()
            except OSError:
                pass

    # -- reading -------------------------------------------------------------------------------

    def _mark_dead(self, reason: str) -> None:
        with self._plock:
            if self._dead.is_set():
                return
            if not self._exit_reason:
                self._exit_reason = reason
            self._dead.set()
            pend = list(self._pending)
            self._pending.clear()
        for p in pend:
            p.closed = True
            p.event.set()
        self._attached.set()

    def _read_loop(self) -> None:
        owner = self.owner
        readline = self._stdout.readline
        feed = ControlParser().feed
        marker = MARKER.encode()
        try:
            while True:
                raw = readline()
                if not raw:
                    break
                event = feed(raw)
                if event is None:
                    continue
                if type(event) is Output:
                    if owner._output_listeners:
                        owner._emit_output(event.pane, unescape_output(event.data))
                elif type(event) is Block:
                    self._finish_block(event.ours, event.error, event.lines, marker)
                else:
                    self._notification(event.name, event.rest)
        except (OSError, ValueError) as e:
            log.debug("tmux control reader (%s) stopped: %s", self.label, e)
        finally:
            if not self._exit_reason:
                self._exit_reason = self._stderr_text()
            self._mark_dead(self._exit_reason or "tmux control client exited")
            owner._conn_died(self)

    def _stderr_text(self) -> str:
        try:
            self.proc.wait(2.0)
            return self.proc.stderr.read(4096).decode("utf-8", "replace").strip()
        except (OSError, ValueError, subprocess.TimeoutExpired):
            return ""

    def _finish_block(self, ours: bool, error: bool, lines: list[bytes], marker: bytes) -> None:
        if not ours:
            # flags 0: the attach command given on the command line (or a hook's output).
            if not self._attached.is_set():
                if error:
                    self._attach_error = "\n".join(decode(x) for x in lines) or "attach failed"
                self._attached.set()
            return
        with self._plock:
            p = self._pending[0] if self._pending else None
            if p is None:
                return
            if p.blocks == 1:
                self._pending.popleft()
                done = True
            else:
                done = lines == [marker] and not error
                if done:
                    self._pending.popleft()
        if p.blocks == 1:
            p.lines = [decode(x) for x in lines]
            if error:
                p.error = "\n".join(p.lines) or "tmux error"
        elif not done:
            if error and p.error is None:
                p.error = "\n".join(decode(x) for x in lines) or "tmux error"
            elif not error:
                p.lines.extend(decode(x) for x in lines)
            return
        p.event.set()
        if p.on_done is not None:
            try:
                p.on_done(p)
            except Exception:
                log.exception("tmux control completion callback failed")

    def _notification(self, name: str, rest: str) -> None:
        if name == "exit":
            self._exit_reason = rest or "exit"
            return  # reported once, by _conn_died, when the stream ends
        if name == "pause":
            self.owner._on_pause(self, rest.strip())
        if not (self.forward_notifications or name in ("pause", "continue")):
            return
        args = notification_args(name, rest)
        if not self.forward_notifications:
            args = [*args, self.label]
        self.owner._emit_event(name, args)
