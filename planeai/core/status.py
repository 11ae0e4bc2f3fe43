"""What is the agent doing? A pure classifier over the screen text and output timing.

Per-provider regexes (``[status]`` in providers/*.toml) are checked in order needs_input,
busy, idle, against the visible screen. When none match, timing decides: output in the last
``busy_window`` seconds means busy, otherwise idle. That fallback is what keeps the shell
provider and a CLI whose UI changed from being stuck in a wrong state.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Sequence


class AgentStatus(str, Enum):
    STARTING = "starting"
    BUSY = "busy"
    IDLE = "idle"
    NEEDS_INPUT = "needs_input"
    EXITED = "exited"


@dataclass(frozen=True)
class StatusPatterns:
    needs_input: tuple[re.Pattern, ...] = ()
    busy: tuple[re.Pattern, ...] = ()
    idle: tuple[re.Pattern, ...] = ()

    @classmethod
    def compile(cls, needs_input: Sequence[str] = (), busy: Sequence[str] = (),
                idle: Sequence[str] = ()) -> "StatusPatterns":
        def c(ps: Sequence[str]) -> tuple[re.Pattern, ...]:
            return tuple(re.compile(p, re.MULTILINE) for p in ps)

        return cls(c(needs_input), c(busy), c(idle))


@dataclass
class Observation:
    """What a backend knows about a session at one moment."""

    screen: str                      # visible screen, plain text
    alive: bool = True
    exit_code: int | None = None
    seconds_since_output: float | None = None   # None: unknown (e.g. one-shot capture)
    seconds_since_start: float | None = None
    extra: dict = field(default_factory=dict)


BUSY_WINDOW = 1.5   # output this recent means the agent is working
STARTUP_GRACE = 3.0  # a new session with a blank screen is still starting
TAIL_LINES = 25      # patterns see the bottom of the screen; `\Z` anchors to its last line


def _any(patterns: Sequence[re.Pattern], text: str) -> bool:
    return any(p.search(text) for p in patterns)


def shows_busy(screen: str, patterns: StatusPatterns) -> bool:
    """The agent's own busy sign (a spinner, "esc to interrupt") is at the bottom of the
    screen: busy by what it draws, not merely by recent output."""
    lines = screen.rstrip().splitlines()
    return _any(patterns.busy, "\n".join(lines[-TAIL_LINES:]))


def classify(obs: Observation, patterns: StatusPatterns,
             busy_window: float = BUSY_WINDOW) -> AgentStatus:
    if not obs.alive:
        return AgentStatus.EXITED
    # Only the bottom of the screen matters for prompts and spinners; old scrolled text
    # (an earlier permission question, say) must not keep matching.
    lines = obs.screen.rstrip().splitlines()
    text = "\n".join(lines[-TAIL_LINES:])
    if _any(patterns.needs_input, text):
        return AgentStatus.NEEDS_INPUT
    if _any(patterns.busy, text):
        return AgentStatus.BUSY
    recent = obs.seconds_since_output is not None and obs.seconds_since_output < busy_window
    if _any(patterns.idle, text) and not (recent and not patterns.busy):
        return AgentStatus.IDLE
    if not text.strip() and (obs.seconds_since_output is None
                             or (obs.seconds_since_start or 0) < STARTUP_GRACE):
        # nothing drawn yet: still starting, however long that takes (a slow first start
        # must not look idle, or a deferred prompt would be typed into it too early)
        return AgentStatus.STARTING
    if recent:
        return AgentStatus.BUSY
    return AgentStatus.IDLE
