"""An agent reference: ``provider[-variant][:skill]``, parsed and printed here only.

``claude`` is a provider with its default variant, ``claude-opus`` names a variant,
``claude-opus:review`` adds a skill. Whether the names exist is the provider registry's
business (planeai.providers); this module only knows the shape. Pure, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# lower-case names, as stored on tasks and accepted from users for a task's provider
NAME = r"[a-z0-9][a-z0-9_]*"
AGENT_RE = re.compile(rf"(?P<provider>{NAME})(?:-(?P<variant>{NAME}))?")


@dataclass(frozen=True)
class AgentRef:
    provider: str
    variant: str | None = None
    skill: str | None = None

    @classmethod
    def parse(cls, text: str) -> "AgentRef":
        """Split ``provider[-variant][:skill]`` (a leading ``@`` is dropped) without checking
        the names; empty variant or skill parts read as absent."""
        text = text.strip().lstrip("@")
        agent, _, skill = text.partition(":")
        provider, variant = split_agent(agent)
        return cls(provider, variant, skill or None)

    @property
    def agent(self) -> str:
        """What users type for the agent alone: ``claude`` or ``claude-opus``."""
        return agent_name(self.provider, self.variant)

    def __str__(self) -> str:
        return self.agent + (f":{self.skill}" if self.skill else "")


def split_agent(spec: str) -> tuple[str, str | None]:
    """``provider-variant`` -> (provider, variant); ``provider`` -> (provider, None). The
    whole rest after the first ``-`` is the variant (a skill part is not expected here)."""
    provider, _, variant = spec.partition("-")
    return provider, variant or None


def agent_name(provider: str, variant: str | None) -> str:
    """``provider-variant``, or the provider alone when there is no variant."""
    return f"{provider}-{variant}" if variant else provider


def is_agent_name(text: str) -> bool:
    """True for a well-formed ``provider`` or ``provider-variant`` (lower case)."""
    return AGENT_RE.fullmatch(text) is not None
