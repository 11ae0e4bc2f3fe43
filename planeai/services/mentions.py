"""Resolve @mentions against the installed providers and skills."""

from __future__ import annotations

from dataclasses import dataclass

from planeai.core.agents import agent_name
from planeai.core.mentions import Mention, find_mentions
from planeai.errors import PlaneaiError, ValidationError
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


# How close a word after @ must be to an agent or skill name to be taken as a misspelt one:
# `@gemini-flsh` is a mistake to point out, `@dataclass` or `@types/node` in a description is
# not addressed to planeai at all.
CLOSE_MATCH = 0.75


def mention_problem(m: Mention, registry: Registry, skills: SkillSet) -> str | None:
    """What is wrong with a mention in task text, or None when it resolves or is plainly not
    meant for planeai (nothing like any agent or skill name)."""
    import difflib

    if m.provider in registry.providers or m.provider in registry.skipped:
        try:
            resolve(m, registry, skills)
        except PlaneaiError as e:
            return str(e)
        return None
    if m.variant is None and m.skill is None and m.provider in skills.skills:
        return None  # a bare skill (@review): its default agent runs it
    names = [*registry.providers, *(agent_name(p.name, v) for p in registry.providers.values()
                                    for v in p.variants), *skills.skills]
    close = difflib.get_close_matches(m.agent, names, n=1, cutoff=CLOSE_MATCH)
    if not close:
        return None
    return f"{m.raw}: unknown agent or skill {m.agent!r}; did you mean @{close[0]}?"


def check_task_text(project_path: str, title: str, description: str) -> None:
    """Refuse task text whose @mentions name an agent or skill that is not there (with a
    suggestion), so a typo never falls back to the default agent. Raises ValidationError."""
    mentions = [("title", m) for m in find_mentions(title)] + [
        ("description", m) for m in find_mentions(description)]
    if not mentions:
        return
    from planeai.providers import load_registry, provider_dirs
    from planeai.skills import load_skills, skill_dirs

    registry = load_registry(provider_dirs(project_path))
    skills = load_skills(skill_dirs(project_path))
    for where, m in mentions:
        problem = mention_problem(m, registry, skills)
        if problem:
            raise ValidationError(f"the {where} mentions {problem}")
