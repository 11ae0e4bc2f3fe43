"""Token counts and the per-session figures planeai keeps (plain data, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field

TOKEN_KINDS = ("input", "output", "cache_write", "cache_read")


@dataclass
class Tokens:
    """Tokens of one kind each, as the model provider bills them: ``input`` excludes cached
    input (Anthropic reports it apart; OpenAI's cached tokens are taken out of its input)."""

    input: int = 0
    output: int = 0
    cache_write: int = 0
    cache_read: int = 0

    def __add__(self, o: "Tokens") -> "Tokens":
        return Tokens(self.input + o.input, self.output + o.output,
                      self.cache_write + o.cache_write, self.cache_read + o.cache_read)

    def __sub__(self, o: "Tokens") -> "Tokens":
        return Tokens(self.input - o.input, self.output - o.output,
                      self.cache_write - o.cache_write, self.cache_read - o.cache_read)

    @property
    def total(self) -> int:
        return self.input + self.output + self.cache_write + self.cache_read

    def as_list(self) -> list[int]:
        return [self.input, self.output, self.cache_write, self.cache_read]

    @classmethod
    def from_list(cls, v) -> "Tokens":
        return cls(*(int(x) for x in v[:4]))

    def as_dict(self) -> dict[str, int]:
        return dict(zip(TOKEN_KINDS, self.as_list()))


def sum_models(models: dict[str, Tokens]) -> Tokens | None:
    """All models' tokens together; None when nothing was recorded (unknown, not zero)."""
    if not models:
        return None
    total = Tokens()
    for t in models.values():
        total = total + t
    return total


def main_model(models: dict[str, Tokens]) -> str | None:
    """The model that wrote the most output (side requests use small models)."""
    if not models:
        return None
    return max(models.items(), key=lambda kv: (kv[1].output, kv[1].total))[0]


@dataclass
class SessionMetrics:
    """What one session did and cost. Tokens and cost are None when unknown: the agent CLI
    recorded nothing planeai can read, or (cost) a model has no price."""

    session_id: str
    name: str
    project_id: int
    project: str
    task_key: str | None
    provider: str
    agent: str
    started_at: str
    ended_at: str | None = None
    exit_code: int | None = None
    wall_s: float = 0.0
    busy_s: float = 0.0
    idle_s: float = 0.0
    needs_input_s: float = 0.0
    models: dict[str, Tokens] = field(default_factory=dict)
    cost_usd: float | None = None
    unpriced: tuple[str, ...] = ()       # models seen without a price: cost is partial/unknown
    home: str | None = None              # the HOME the agent ran with (where its records are)
    sources: dict = field(default_factory=dict)   # reader state per file
    final: bool = False                  # ended and read to the end: never read again
    updated_at: str = ""

    @property
    def tokens(self) -> Tokens | None:
        return sum_models(self.models)

    @property
    def model(self) -> str | None:
        return main_model(self.models)

    def as_dict(self) -> dict:
        t = self.tokens
        return {
            "session": self.session_id, "name": self.name, "project": self.project,
            "task": self.task_key, "provider": self.provider, "agent": self.agent,
            "started_at": self.started_at, "ended_at": self.ended_at,
            "exit_code": self.exit_code, "wall_s": round(self.wall_s, 3),
            "busy_s": round(self.busy_s, 3), "idle_s": round(self.idle_s, 3),
            "needs_input_s": round(self.needs_input_s, 3),
            "tokens": t.as_dict() if t else None,
            "model": self.model,
            "models": {m: v.as_dict() for m, v in self.models.items()},
            "cost_usd": None if self.cost_usd is None else round(self.cost_usd, 6),
            "cost_estimated": True,
            "unpriced_models": list(self.unpriced),
        }
