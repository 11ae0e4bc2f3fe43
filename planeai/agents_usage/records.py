"""Where an agent CLI keeps its records of a session, and the state of reading them.

A source finds the files one session wrote, by the session's working directory and its time
window, under the HOME (or config dir) the agent ran with: no guessing by recency. Its state
is plain JSON (kept in the store between reads): per file the byte cursor and that file's
tokens per model, so a file that starts over can be taken back out.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from planeai.agents_usage.usage import Tokens

# Clocks of planeai and of the agent CLI are the same machine's; this covers the gap between
# planeai recording a start and the agent writing its first line, and write delays at the end.
SLACK = timedelta(seconds=5)


@dataclass(frozen=True)
class Window:
    """Who and when: the session's working directory (as given and resolved), the
    environment variables that say where the agent keeps its records, its start and end
    (None while it runs)."""

    cwd: str
    env: dict[str, str]
    start: datetime
    end: datetime | None

    def cwds(self) -> set[str]:
        return {self.cwd, os.path.realpath(self.cwd)}

    def holds(self, ts: datetime) -> bool:
        return self.start - SLACK <= ts and (self.end is None or ts <= self.end + SLACK)

    def home(self) -> str:
        return self.env.get("HOME") or os.path.expanduser("~")


def parse_ts(text) -> datetime | None:
    """An ISO 8601 timestamp (``Z`` or an offset) as an aware datetime, or None."""
    if not isinstance(text, str):
        return None
    try:
        ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return ts if ts.tzinfo else None


class Source(Protocol):
    name: str

    def candidates(self, w: Window) -> list[str]:
        """Files that may be this session's (cheap: directory listings and stats)."""

    def belongs(self, path: str, w: Window) -> bool | None:
        """Is ``path`` this session's? None: cannot tell yet (its first lines are not
        written)."""

    def read(self, path: str, state: dict) -> bool:
        """Add what was appended to ``path`` since ``state`` to it; True when it changed."""


def file_models(state: dict) -> dict[str, Tokens]:
    return {m: Tokens.from_list(v) for m, v in state.get("models", {}).items()}


def add_tokens(state: dict, model: str, t: Tokens) -> None:
    models = state.setdefault("models", {})
    cur = Tokens.from_list(models[model]) if model in models else Tokens()
    models[model] = (cur + t).as_list()


def collect(source: Source, w: Window, sources: dict) -> bool:
    """Find new files of the session and read what every file of it gained; ``sources``
    (path -> state, or path -> {"skip": true} for a file found not to be ours) is updated in
    place. True when any figure changed."""
    changed = False
    for path in source.candidates(w):
        if path in sources:
            continue
        mine = source.belongs(path, w)
        if mine is None:
            continue
        sources[path] = {} if mine else {"skip": True}
    for path, state in sources.items():
        if not state.get("skip"):
            changed |= source.read(path, state)
    return changed


def session_models(sources: dict) -> dict[str, Tokens]:
    """Tokens per model over every file of the session."""
    total: dict[str, Tokens] = {}
    for state in sources.values():
        for m, t in file_models(state).items():
            total[m] = total.get(m, Tokens()) + t
    return total


def sources_for(usage: str) -> Source | None:
    """The reader of a provider file's ``usage`` value, or None when it has none."""
    from planeai.agents_usage.claude import ClaudeTranscripts
    from planeai.agents_usage.codex import CodexRollouts

    return {"claude": ClaudeTranscripts(), "codex": CodexRollouts()}.get(usage)


USAGE_FORMATS = ("claude", "codex")
