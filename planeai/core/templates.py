"""Render argv templates: every placeholder fills part of ONE argv element.

Nothing here ever builds a shell string. A task title like ``$(touch X)`` lands in an argv
element byte for byte and no shell sees it.

Rules (documented in providers/*.toml):
- ``{name}`` / ``{task.key}`` are replaced inside an element; ``{{`` and ``}}`` are literal braces.
- An element that is exactly ``{args}`` splices a list (variant args, then the yolo flag).
- An element that is exactly ``{prompt}``, or that contains ``{prompt_file}``, is dropped when
  there is no prompt.
"""

from __future__ import annotations

import re
from typing import Mapping, Sequence

from planeai.core.errors import ProviderError

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([a-z_]+(?:\.[a-z_]+)?)\}")

ARGV_PLACEHOLDERS = frozenset({
    "args", "model", "worktree", "task.key", "task.title", "session_id", "prompt",
    "prompt_file", "shell", "project",
})
PROMPT_PLACEHOLDERS = frozenset({
    "task.key", "task.title", "task.description", "parent.key", "parent.title", "skills",
    "worktree", "project", "branch",
})


def placeholders(text: str) -> set[str]:
    return {m.group(1) for m in _PLACEHOLDER.finditer(text) if m.group(1)}


def check_template(text: str, allowed: frozenset[str], where: str) -> None:
    unknown = placeholders(text) - allowed
    if unknown:
        raise ProviderError(
            f"{where}: unknown placeholder {{{sorted(unknown)[0]}}}; "
            f"accepted: {', '.join('{' + p + '}' for p in sorted(allowed))}")
    # braces that are neither placeholders nor doubled are a typo worth catching early
    stripped = _PLACEHOLDER.sub("", text)
    if "{" in stripped or "}" in stripped:
        raise ProviderError(
            f"{where}: stray brace in {text!r} (write {{{{ or }}}} for a literal one)")


def fill(text: str, values: Mapping[str, str | None]) -> str:
    def sub(m: re.Match) -> str:
        tok = m.group(0)
        if tok == "{{":
            return "{"
        if tok == "}}":
            return "}"
        v = values.get(m.group(1))
        return "" if v is None else str(v)

    return _PLACEHOLDER.sub(sub, text)


def render_argv(template: Sequence[str], values: Mapping[str, str | None],
                splice: Sequence[str] = ()) -> list[str]:
    argv: list[str] = []
    for element in template:
        if element == "{args}":
            argv.extend(splice)
            continue
        if element == "{prompt}" and not values.get("prompt"):
            continue
        if "{prompt_file}" in element and not values.get("prompt_file"):
            continue
        argv.append(fill(element, values))
    return argv
