"""The one session-backend protocol. Callers never ask which implementation they hold:
what differs between backends is declared as capabilities on the protocol.

A backend runs named terminals. Names are planeai session names (``PLA-1``, ``PLA-1-2``):
letters, digits and dashes only, so every backend can use them verbatim.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Protocol, runtime_checkable

from planeai.errors import BackendError

if TYPE_CHECKING:
    from planeai.terminal.screen import TerminalScreen

SESSION_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")

# Named keys, the one table for every backend (tmux's names for the same keys): the local
# and daemon backends write these bytes, tmux sends the names. Besides these, a key can be
# a single printable character (a digit, a letter, "y"): sent as itself.
KEY_BYTES = {
    "Enter": b"\r", "C-m": b"\r", "Tab": b"\t", "Escape": b"\x1b", "BSpace": b"\x7f",
    "Space": b" ", "Up": b"\x1b[A", "Down": b"\x1b[B", "Right": b"\x1b[C", "Left": b"\x1b[D",
    **{f"C-{c}": bytes([ord(c) - 96]) for c in "abcdefghijklmnopqrstuvwxyz"},
}

# How the accepted names are described in errors and help.
KEYS_ACCEPTED = ("Enter, Escape, Tab, Up, Down, Left, Right, Space, BSpace, C-a ... C-z "
                 "(ctrl+letter), or one printable character (a digit, a letter, ...)")


def is_char_key(key: str) -> bool:
    """A key that is one printable character, sent as itself."""
    return len(key) == 1 and key.isprintable()


def unknown_keys(keys: tuple[str, ...] | list[str]) -> list[str]:
    """The names in ``keys`` that are neither in KEY_BYTES nor one printable character."""
    return [k for k in keys if k not in KEY_BYTES and not is_char_key(k)]


def key_bytes(keys: tuple[str, ...] | list[str]) -> bytes:
    """Named keys (tmux's names) and single characters as the bytes a terminal sends."""
    bad = unknown_keys(keys)
    if bad:
        raise BackendError(f"unknown key {bad[0]!r}; accepted: {KEYS_ACCEPTED}")
    return b"".join(KEY_BYTES[k] if k in KEY_BYTES else k.encode("utf-8") for k in keys)


def check_name(name: str) -> str:
    if not SESSION_NAME_RE.match(name):
        raise BackendError(f"session name {name!r} is not accepted: letters, digits, - and _")
    return name


@dataclass
class SpawnSpec:
    name: str
    argv: list[str]
    cwd: str
    env: dict[str, str]          # the complete environment of the agent process
    cols: int = 120
    rows: int = 40


@dataclass
class SessionInfo:
    name: str
    alive: bool
    exit_code: int | None = None
    pid: int | None = None


@dataclass
class Snapshot:
    """The visible screen at one moment."""

    lines: list[str]                       # plain text rows, right-stripped
    ansi: bytes = b""                      # the same with colours, to replay into an emulator
    cursor: tuple[int, int] = (0, 0)
    cols: int = 0
    rows: int = 0
    alive: bool = True
    exit_code: int | None = None
    seconds_since_output: float | None = None
    extra: dict = field(default_factory=dict)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def replay(self) -> bytes:
        """Bytes that redraw this screen, cursor included, in an emulator of the same size."""
        return (b"\x1b[H\x1b[2J" + self.ansi
                + f"\x1b[{self.cursor[1] + 1};{self.cursor[0] + 1}H".encode())


OutputCallback = Callable[[str, bytes], None]


@runtime_checkable
class Backend(Protocol):
    """A place where sessions run. Callers read the capability flags below instead of
    comparing names; ``planeai.backends.registry`` says which backends exist.

    Errors: every method raises ``BackendError`` when the backend cannot do what was asked
    (unknown session, server unreachable, bad name); nothing else escapes on purpose."""

    kind: str                # the registry name, stored with each session

    # ---- capabilities (class attributes; constant for a backend)
    in_process: bool         # sessions live inside this process and end with it: the CLI
                             # refuses to start them, the app warns before quitting
    persistent: bool         # sessions outlive the process that started them
    has_screen: bool         # screen(name) gives the live emulator (no snapshot copying)
    lost_reason: str         # why a session this backend no longer knows is gone

    @classmethod
    def from_settings(cls, config, locs, env: dict[str, str]) -> Backend:
        """A backend set up from planeai's config, locations and the sessions' base
        environment (how the registry opens it). Raises ConfigError on bad settings."""
        ...

    def spawn(self, spec: SpawnSpec) -> SessionInfo:
        """Start ``spec.argv`` as session ``spec.name``; its info (alive, pid). Raises
        BackendError when the name is taken by a live session or the start fails."""
        ...

    def list(self) -> list[SessionInfo]:
        """Every session this backend knows, live or exited-but-not-forgotten."""
        ...

    def survey(self) -> dict[str, SessionInfo]:
        """For reconcile: name -> info of every session this backend knows, as a definite
        answer (a session missing here is gone). Never starts a server. Raises BackendError
        when it cannot tell this time (the caller judges nothing then)."""
        ...

    def info(self, name: str) -> SessionInfo | None:
        """The session's info, or None when this backend does not know it."""
        ...

    def write(self, name: str, data: bytes) -> None:
        """Send raw bytes to the session's terminal. Raises when it is unknown or ended."""
        ...

    def send_keys(self, name: str, *keys: str) -> None:
        """Send keys: names from ``KEY_BYTES`` or single printable characters, in order;
        raises BackendError on anything else (nothing is sent then)."""
        ...

    def paste(self, name: str, text: str) -> None:
        """Paste text, bracketed when the agent enabled bracketed paste."""
        ...

    def resize(self, name: str, cols: int, rows: int) -> None:
        """Set the terminal size (clamped to what the backend accepts)."""
        ...

    def snapshot(self, name: str) -> Snapshot:
        """The visible screen now; works on an ended session until it is forgotten."""
        ...

    def scrollback(self, name: str) -> list[str]:
        """Plain lines: history then the visible screen, oldest first."""
        ...

    def screen(self, name: str) -> tuple[TerminalScreen, threading.Lock]:
        """Only when ``has_screen``: the live emulator and the lock to hold while reading
        it. Raises BackendError for an unknown session (or when ``has_screen`` is false)."""
        ...

    def kill(self, name: str, *, timeout: float = 5.0) -> int | None:
        """End the session (HUP, TERM, then KILL, ``timeout`` seconds or so) and return its
        exit status: 128+N when signal N ended it, None when it cannot be known. An ended
        session returns its recorded status; an unknown one raises BackendError."""
        ...

    def forget(self, name: str) -> None:
        """Drop an ended session's remains; a no-op for an unknown one."""
        ...

    def attach_command(self, name: str) -> list[str] | None:
        """argv that opens the session full screen in a terminal, or None when it cannot be
        opened outside this process."""
        ...

    def subscribe(self, name: str, callback: OutputCallback) -> Callable[[], None]:
        """Call ``callback(name, data)`` with output as it comes (``b""`` when it ends);
        returns the function that unsubscribes. Raises for an unknown session."""
        ...

    def close(self) -> None:
        """Let go of connections and threads; in-process sessions end with it."""
        ...


def bracketed(text: str, enabled: bool) -> bytes:
    """Paste payload: wrapped in ESC[200~ ... ESC[201~ when the app asked for it.

    An embedded end marker would let pasted text escape the paste and be read as typed keys,
    so it is removed.
    """
    data = text.replace("\x1b[201~", "").encode("utf-8")
    if enabled:
        return b"\x1b[200~" + data + b"\x1b[201~"
    return data
