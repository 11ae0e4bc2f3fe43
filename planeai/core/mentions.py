"""`@provider[-variant][:skill]` mentions in prompts and task text. Pure parsing, no I/O.

Resolution against the installed providers and skills lives in planeai/services/mentions.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from planeai.core.agents import agent_name

# @claude  @claude-opus  @claude:review  @claude-opus:review
# The skill part is taken greedily up to whitespace so that hostile names (`../../etc`)
# reach validation and are rejected, rather than being silently cut short.
MENTION_RE = re.compile(
    r"(?<![\w@./])@(?P<provider>[A-Za-z0-9][A-Za-z0-9_]*)"
    r"(?:-(?P<variant>[A-Za-z0-9][A-Za-z0-9_]*))?"
    r"(?::(?P<skill>[^\s,;)]*))?")


@dataclass(frozen=True)
class Mention:
    raw: str
    provider: str
    variant: str | None
    skill: str | None
    start: int
    end: int

    @property
    def agent(self) -> str:
        return agent_name(self.provider, self.variant)


def find_mentions(text: str) -> list[Mention]:
    out = []
    for m in MENTION_RE.finditer(text):
        out.append(Mention(m.group(0), m.group("provider").lower(),
                           (m.group("variant") or "").lower() or None,
                           m.group("skill") if m.group("skill") is not None else None,
                           m.start(), m.end()))
    return out


def strip_mentions(text: str) -> str:
    """The prompt without its mentions (what the agents should read)."""
    stripped = MENTION_RE.sub("", text)
    return re.sub(r"[ \t]{2,}", " ", stripped).strip()
