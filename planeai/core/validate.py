"""Input rules shared by the CLI, the TUI and sync: one place, one wording."""

from __future__ import annotations

import re

from planeai.errors import ValidationError

TITLE_MAX = 300
DESCRIPTION_MAX = 4 * 1024 * 1024  # a pasted spec or log can be long; prompts go by file
NAME_MAX = 100

_KEY_PREFIX = re.compile(r"^[A-Z][A-Z0-9]{0,9}$")
_TASK_KEY = re.compile(r"^([A-Za-z][A-Za-z0-9]{0,9})-([1-9][0-9]{0,8})$")
# C0 controls other than tab/newline/CR, DEL and C1 controls
_CONTROL_DESC = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_CONTROL_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def title(text: str) -> str:
    t = text.strip()
    if not t:
        raise ValidationError("title is empty; give a short one-line title")
    if len(t) > TITLE_MAX:
        raise ValidationError(f"title is {len(t)} characters; at most {TITLE_MAX} accepted")
    m = _CONTROL_LINE.search(t)
    if m:
        raise ValidationError(
            f"title contains control character {m.group()!r}; titles are one line of printable text"
        )
    return t


def description(text: str) -> str:
    if len(text) > DESCRIPTION_MAX:
        raise ValidationError(
            f"description is {len(text)} characters; at most {DESCRIPTION_MAX} accepted"
        )
    m = _CONTROL_DESC.search(text)
    if m:
        raise ValidationError(
            f"description contains control character {m.group()!r}; "
            "text, tabs and newlines are accepted"
        )
    return text


def name(text: str, what: str = "name") -> str:
    t = text.strip()
    if not t:
        raise ValidationError(f"{what} is empty")
    if len(t) > NAME_MAX or _CONTROL_LINE.search(t):
        raise ValidationError(f"{what} {t!r} is not accepted: one line, at most {NAME_MAX} characters")
    return t


def key_prefix(text: str) -> str:
    p = text.strip().upper()
    if not _KEY_PREFIX.match(p):
        raise ValidationError(
            f"key prefix {text!r} is not accepted: 1-10 letters or digits, starting with a letter"
        )
    return p


def task_key(text: str) -> tuple[str, int]:
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
