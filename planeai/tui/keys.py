"""Textual key events -> the bytes a terminal would send to the program in the PTY.

Pure (no Textual import): Textual names keys ("up", "ctrl+a", "shift+tab", "alt+x") and gives
the character for single-byte keys; this turns both into xterm input sequences.
"""

from __future__ import annotations

# Keys whose bytes depend on DECCKM (application cursor mode, ESC[?1h): vim, less, agents' TUIs.
_CURSOR = {"up": "A", "down": "B", "right": "C", "left": "D", "home": "H", "end": "F"}

_FIXED = {
    "enter": b"\r", "tab": b"\t", "shift+tab": b"\x1b[Z", "escape": b"\x1b",
    "backspace": b"\x7f", "ctrl+h": b"\x08", "delete": b"\x1b[3~", "insert": b"\x1b[2~",
    "pageup": b"\x1b[5~", "pagedown": b"\x1b[6~", "space": b" ",
    "ctrl+space": b"\x00", "ctrl+@": b"\x00",
    "f1": b"\x1bOP", "f2": b"\x1bOQ", "f3": b"\x1bOR", "f4": b"\x1bOS",
    "f5": b"\x1b[15~", "f6": b"\x1b[17~", "f7": b"\x1b[18~", "f8": b"\x1b[19~",
    "f9": b"\x1b[20~", "f10": b"\x1b[21~", "f11": b"\x1b[23~", "f12": b"\x1b[24~",
}

# xterm modifier parameter: 1 + shift(1) + alt(2) + ctrl(4)
_MODS = {"shift": 1, "alt": 2, "ctrl": 4}


def key_to_bytes(key: str, character: str | None, *, app_cursor: bool = False) -> bytes | None:
    """The bytes for one key press, or None when the key has no terminal meaning."""
    if key in _CURSOR:
        return (b"\x1bO" if app_cursor else b"\x1b[") + _CURSOR[key].encode()
    fixed = _FIXED.get(key)
    if fixed is not None:
        return fixed
    parts = key.split("+")
    base, mods = parts[-1], parts[:-1]
    if mods and base in _CURSOR and all(m in _MODS for m in mods):
        n = 1 + sum(_MODS[m] for m in mods)
        return f"\x1b[1;{n}{_CURSOR[base]}".encode()
    if mods == ["alt"] and character:
        return b"\x1b" + character.encode("utf-8")
    if mods == ["alt"] and len(base) == 1:
        return b"\x1b" + base.encode("utf-8")
    if mods == ["ctrl"] and len(base) == 1 and base.isalpha():
        return bytes([ord(base.lower()) - 96])
    if character:
        return character.encode("utf-8", "replace")
    return None
