"""The one session-backend protocol. Callers never ask which implementation they hold.

A backend runs named terminals. Names are planeai session names (``PLA-1``, ``PLA-1-2``):
letters, digits and dashes only, so every backend can use them verbatim.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Protocol, runtime_checkable

from planeai.errors import BackendError

SESSION_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")

# Named keys the backends understand in send_keys (tmux's names for the same keys).
KEY_BYTES = {
    "Enter": b"\r", "C-m": b"\r", "Tab": b"\t", "Escape": b"\x1b", "BSpace": b"\x7f",
    "C-c": b"\x03", "C-d": b"\x04", "C-z": b"\x1a", "C-l": b"\x0c", "Space": b" ",
    "Up": b"\x1b[A", "Down": b"\x1b[B", "Right": b"\x1b[C", "Left": b"\x1b[D",
}


def key_bytes(keys: tuple[str, ...] | list[str]) -> bytes:
    """Named keys (tmux's names) as the bytes a terminal sends for them."""
    out = b""
    for k in keys:
        if k not in KEY_BYTES:
            raise BackendError(f"unknown key {k!r}; known: {', '.join(KEY_BYTES)}")
        out += KEY_BYTES[k]
    return out


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


OutputCallback = Callable[[str, bytes], None]


@runtime_checkable
class Backend(Protocol):
    kind: str

    def spawn(self, spec: SpawnSpec) -> SessionInfo: ...
    def list(self) -> list[SessionInfo]: ...
    def info(self, name: str) -> SessionInfo | None: ...
    def write(self, name: str, data: bytes) -> None: ...
    def send_keys(self, name: str, *keys: str) -> None: ...
    def paste(self, name: str, text: str) -> None: ...
    def resize(self, name: str, cols: int, rows: int) -> None: ...
    def snapshot(self, name: str) -> Snapshot: ...
    def scrollback(self, name: str) -> list[str]: ...
    def kill(self, name: str, *, timeout: float = 5.0) -> int | None: ...
    def forget(self, name: str) -> None: ...
    def attach_command(self, name: str) -> list[str] | None: ...
    def subscribe(self, name: str, callback: OutputCallback) -> Callable[[], None]: ...
    def close(self) -> None: ...


def bracketed(text: str, enabled: bool) -> bytes:
    """Paste payload: wrapped in ESC[200~ ... ESC[201~ when the app asked for it.

    An embedded end marker would let pasted text escape the paste and be read as typed keys,
    so it is removed.
    """
    data = text.replace("\x1b[201~", "").encode("utf-8")
    if enabled:
        return b"\x1b[200~" + data + b"\x1b[201~"
    return data
