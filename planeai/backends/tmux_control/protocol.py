"""tmux control mode's wire format, with no process: quoting commands, unescaping ``%output``,
and splitting the answer stream into command blocks, pane output and notifications.

Everything here is pure, so it is tested from byte strings (tests/test_tmux_control.py).
"""

from __future__ import annotations

import re
from typing import Iterable, NamedTuple

# Commands whose execution inserts further commands (each with its own %begin block): the
# connection follows them with MARKER's command and collects blocks until its answer.
MULTI_BLOCK = frozenset({"if-shell", "if", "source-file", "source"})
MARKER = "__planeai_sync__"

# Notifications whose last argument is a free-form name that may contain spaces:
# name -> number of space splits before the rest is taken as one argument.
_NAME_SPLITS = {
    "session-changed": 1,
    "client-session-changed": 2,
    "session-renamed": 0,
    "window-renamed": 1,
    "unlinked-window-renamed": 1,
    "exit": 0,
    "message": 0,
    "config-error": 0,
    "subscription-changed": -1,  # keep raw split, value after " : " handled below
}

_SAFE = re.compile(r"[A-Za-z0-9_@%+=,./:-]+")
_OCTAL = re.compile(rb"\\([0-7]{3})")


def quote_arg(arg: str) -> str:
    """Quote one argument for tmux's command parser so it arrives verbatim.

    Raises ValueError for NUL, which tmux cannot receive."""
    if "\0" in arg:
        raise ValueError("tmux arguments cannot contain NUL")
    if _SAFE.fullmatch(arg) and not arg.startswith("%"):
        return arg
    out: list[str] = []
    run: list[str] = []
    for ch in arg:
        o = ord(ch)
        if ch == "'" or o < 32 or o == 127:
            if run:
                out.append("'" + "".join(run) + "'")
                run = []
            out.append("\"'\"" if ch == "'" else '"\\%03o"' % o)
        else:
            run.append(ch)
    if run or not out:
        out.append("'" + "".join(run) + "'")
    return "".join(out)


def command_line(args: Iterable[str]) -> str:
    """One control-mode input line for the command ``args`` (an argv list).

    Raises ValueError for an empty command or a NUL in an argument."""
    args = list(args)
    if not args:
        raise ValueError("empty tmux command")
    return " ".join(quote_arg(a) for a in args)


def unescape_output(data: bytes) -> bytes:
    """Decode tmux's %output escaping (octal ``\\ooo`` for bytes < 32 and backslash)."""
    if b"\\" not in data:
        return data
    return _OCTAL.sub(lambda m: bytes((int(m.group(1), 8) & 0xFF,)), data)


def decode(line: bytes) -> str:
    """A line of tmux's answer as text (tmux passes pane bytes through: never fails)."""
    return line.decode("utf-8", "replace")


def pane_target(target: str) -> str:
    """``=NAME`` (an exact session) -> ``=NAME:`` so it works where a pane is expected."""
    if target.startswith("=") and ":" not in target:
        return target + ":"
    return target


def notification_args(name: str, rest: str) -> list[str]:
    """The arguments of notification ``%name rest``, a free-form last name kept whole."""
    splits = _NAME_SPLITS.get(name)
    if not rest:
        return []
    if splits is None or splits < 0:
        return rest.split(" ")
    return rest.split(" ", splits)


# -- the answer stream --------------------------------------------------------------------------


class Block(NamedTuple):
    """A %begin ... %end/%error block: the answer to one command.

    ``ours`` is False for flags 0: the attach command given on tmux's command line (or a hook's
    output), not a line we wrote."""

    ours: bool
    error: bool
    lines: list[bytes]


class Output(NamedTuple):
    """``%output`` / ``%extended-output`` of a pane; ``data`` is still escaped (see
    :func:`unescape_output`, left to the caller so nobody pays for output nobody reads)."""

    pane: str
    data: bytes


class Notification(NamedTuple):
    """Any other ``%name rest`` line outside a block (``rest`` unsplit, see
    :func:`notification_args`)."""

    name: str
    rest: str


Event = Block | Output | Notification


class ControlParser:
    """Splits tmux's control-mode output, fed one line at a time, into events.

    A block's lines are taken verbatim until the ``%end``/``%error`` line whose time, number and
    flags match its ``%begin`` (so pane text that looks like ``%end`` cannot close it)."""

    __slots__ = ("_block", "_lines")

    def __init__(self) -> None:
        self._block: tuple[bytes, bytes] | None = None  # (b"TIME NUM", flags)
        self._lines: list[bytes] = []

    def feed(self, line: bytes) -> Event | None:
        """One line (without or with its ``\\n``); returns the event it completes, or None."""
        if line.endswith(b"\n"):
            line = line[:-1]
        block = self._block
        if block is not None:
            if line.startswith((b"%end ", b"%error ")):
                kind, _, rest = line.partition(b" ")
                key, _, flags = rest.rpartition(b" ")
                if key == block[0] and flags == block[1]:
                    lines = self._lines
                    self._block = None
                    self._lines = []
                    return Block(block[1] == b"1", kind == b"%error", lines)
            self._lines.append(line)
            return None
        if line.startswith(b"%output "):
            parts = line.split(b" ", 2)
            return Output(decode(parts[1]), parts[2] if len(parts) > 2 else b"")
        if line.startswith(b"%extended-output "):
            head, _, data = line.partition(b" : ")
            return Output(decode(head.split(b" ", 2)[1]), data)
        if line.startswith(b"%begin "):
            key, _, flags = line[7:].rpartition(b" ")
            self._block = (key, flags)
            self._lines = []
            return None
        if line.startswith(b"%"):
            name, _, rest = decode(line[1:]).partition(" ")
            return Notification(name, rest)
        return None  # anything else (stray text) is ignored


def parse_stream(data: bytes) -> list[Event]:
    """Every event in a captured stream (for tests and tools; the connection feeds lines)."""
    parser = ControlParser()
    lines = data.split(b"\n")
    if lines and not lines[-1]:
        lines.pop()  # the stream's final newline
    events = (parser.feed(line) for line in lines)
    return [e for e in events if e is not None]
