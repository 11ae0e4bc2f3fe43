"""Resolve @mentions against the installed providers and skills."""

from __future__ import annotations

from dataclasses import dataclass

from planeai.core.agents import agent_name
from planeai.core.mentions import Mention, find_mentions
from planeai.errors import ValidationError
from planeai.providers import Provider, Registry, Variant
from planeai.skills import Skill, SkillSet, check_trigger


@dataclass
class Resolved:
    mention: Mention
    provider: Provider
    variant: Variant | None
    skill: Skill | None

    @property
    def agent(self) -> str:
        return agent_name(self.provider.name, self.variant.name if self.variant else None)


def resolve(m: Mention, registry: Registry, skills: SkillSet) -> Resolved:
    skill = None
    if m.skill is not None:
        if not m.skill:
            raise ValidationError(f"{m.raw}: a skill name is missing after ':'")
        try:
            check_trigger(m.skill)
        except ValidationError as e:
            raise ValidationError(f"{m.raw}: {e}") from None
        skill = skills.get(m.skill)
    try:
        provider, variant = registry.resolve(m.agent)
    except Exception as e:  # ProviderError: carries the did-you-mean hint
        raise ValidationError(f"{m.raw}: {e}") from None
    return Resolved(m, provider, variant, skill)


def resolve_all(text: str, registry: Registry, skills: SkillSet) -> list[Resolved]:
    return [resolve(m, registry, skills) for m in find_mentions(text)]
