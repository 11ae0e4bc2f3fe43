"""Input rules shared by the CLI, the TUI and sync: one place, one wording."""

from __future__ import annotations

import re

from planeai.core.errors import ValidationError

TITLE_MAX = 300
DESCRIPTION_MAX = 4 * 1024 * 1024  # a pasted spec or log can be long; prompts go by file
NAME_MAX = 100

_KEY_PREFIX = re.compile(r"^[A-Z][A-Z0-9]{0,9}$")
_TASK_KEY = re.compile(r"^([A-Za-z][A-Za-z0-9]{0,9})-([1-9][0-9]{0,8})$")
# Invisible format characters (Unicode category Cf): bidi overrides and isolates that make
# text read differently from what it is (U+202E shows "txt.exe" as "exe.txt"), zero-width
# spaces, and tag characters that can hide whole sentences from a person but not from an
# agent. ZWNJ/ZWJ (U+200C/D) stay: Persian, Indic scripts and emoji sequences need them.
# A test keeps this list equal to unicodedata's Cf set.
_FORMAT = ("\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b\u200e\u200f"
           "\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd"
           "\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001"
           "\U000e0020-\U000e007f")
# descriptions: C0 controls other than tab/newline/CR, DEL, C1 controls, format characters
_CONTROL_DESC = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{_FORMAT}]")
# one-line text (titles, names): also no tab/newline/CR and no line/paragraph separators
_CONTROL_LINE = re.compile(f"[\x00-\x1f\x7f-\x9f\u2028\u2029{_FORMAT}]")


def _char(ch: str) -> str:
    """U+202E RIGHT-TO-LEFT OVERRIDE: how a refused character is named to the user."""
    import unicodedata

    named = {"\t": "TAB", "\n": "NEWLINE", "\r": "CARRIAGE RETURN"}
    return f"U+{ord(ch):04X} {unicodedata.name(ch, '') or named.get(ch, 'control character')}"


def title(text: str) -> str:
    t = text.strip()
    if not t:
        raise ValidationError("title is empty; give a short one-line title")
    if len(t) > TITLE_MAX:
        raise ValidationError(f"title is {len(t)} characters; at most {TITLE_MAX} accepted")
    m = _CONTROL_LINE.search(t)
    if m:
        raise ValidationError(
            f"title contains {_char(m.group())} at position {m.start() + 1}, an invisible or "
            "control character; titles are one line of visible text")
    return t


def description(text: str) -> str:
    if len(text) > DESCRIPTION_MAX:
        raise ValidationError(
            f"description is {len(text)} characters; at most {DESCRIPTION_MAX} accepted"
        )
    m = _CONTROL_DESC.search(text)
    if m:
        line = text.count("\n", 0, m.start()) + 1
        raise ValidationError(
            f"description contains {_char(m.group())} on line {line}, an invisible or control "
            "character; text, tabs and newlines are accepted")
    return text


def name(text: str, what: str = "name") -> str:
    t = text.strip()
    if not t:
        raise ValidationError(f"{what} is empty")
    m = _CONTROL_LINE.search(t)
    if m:
        raise ValidationError(f"{what} contains {_char(m.group())}, an invisible or control "
                              f"character; one line of visible text is accepted")
    if len(t) > NAME_MAX:
        raise ValidationError(
            f"{what} {t!r} is not accepted: one line, at most {NAME_MAX} characters")
    return t


def key_prefix(text: str) -> str:
    p = text.strip().upper()
    if not _KEY_PREFIX.match(p):
        raise ValidationError(
            f"key prefix {text!r} is not accepted: 1-10 letters or digits, starting with a letter"
        )
    return p


def task_key(text: str) -> tuple[str, int]:
    if not text.strip():
        raise ValidationError("task key is empty; give one like PLA-1")
    m = _TASK_KEY.match(text.strip())
    if not m:
        raise ValidationError(f"{text!r} is not a task key; expected PREFIX-NUMBER like PLA-1")
    return m.group(1).upper(), int(m.group(2))


def normalize_key(text: str) -> str:
    prefix, number = task_key(text)
    return f"{prefix}-{number}"


def priority(value: int | str) -> int:
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise ValidationError(f"priority {value!r} is not an integer") from None
    if not -1000 <= n <= 1000:
        raise ValidationError(f"priority {n} is out of range; -1000..1000 accepted")
    return n


def derive_prefix(project_name: str) -> str:
    """First letters of the name, upper case: "plane ai" -> "PA", "planeai" -> "PLA"."""
    words = [w for w in re.split(r"[^A-Za-z0-9]+", project_name) if w]
    words = [w for w in words if w[0].isalpha()] or ["P"]
    if len(words) >= 2:
        p = "".join(w[0] for w in words[:4])
    else:
        p = words[0][:3]
    return p.upper()
