"""Which agent (and skill) runs a task: the task's own provider field, else an @mention in
its text, else the first matching [dispatch] rule, else the default agent."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from planeai.core.models import Project, Task
from planeai.errors import ValidationError

if TYPE_CHECKING:
    from planeai.services.sessions import SessionManager


class AgentChooser:
    def __init__(self, manager: "SessionManager", rules: list[dict]) -> None:
        self.manager = manager
        # dispatch.rules with their title patterns compiled once
        self.rules = [dict(r, _re=re.compile(r["title"]) if "title" in r else None)
                      for r in rules]

    def choose(self, task: Task, project: Project) -> tuple[str, str | None]:
        """(agent, skill) for a task: its provider field, else an @mention in its title or
        description (`@gemini-flash`, `@claude:review`, or a bare skill `@review` whose
        default_provider applies), else the dispatch rules, else the default."""
        from planeai.core.mentions import find_mentions
        from planeai.services.mentions import mention_problem

        skill = None
        registry = self.manager.registry(project)
        skills = self.manager.skill_set(project)
        mentioned = None
        for mention in find_mentions(f"{task.title}\n{task.description}"):
            problem = mention_problem(mention, registry, skills)
            if problem:
                # text that came in without the check of `task add` (a tracker sync, an
                # older task): never fall back to another agent in silence
                raise ValidationError(f"{task.key} mentions {problem}")
            if mention.provider in registry.providers:
                if mention.skill:
                    skill = mention.skill
                mentioned = mention.agent
                break
            if mention.variant is None and mention.skill is None and \
                    mention.provider in skills.skills:
                skill = mention.provider
                break
        if task.provider:
            return task.provider, skill
        if mentioned:
            return mentioned, skill
        if skill and skills.skills[skill].default_provider:
            return skills.skills[skill].default_provider, skill
        return self.choose_agent(task, project), skill

    def choose_agent(self, task: Task, project: Project) -> str:
        if task.provider:
            return task.provider
        for rule in self.rules:
            if "provider" in rule and _matches(rule, task, project):
                return rule["provider"]
        return self.manager.registry(project).default(self.manager.config.defaults.provider)

    def choose_host(self, task: Task, project: Project) -> str | None:
        """The machine a task is pinned to: its own host field, else the first matching
        rule that names a host ("local" or a host's name); None: wherever a slot is free."""
        if task.host:
            return task.host
        for rule in self.rules:
            if "host" in rule and _matches(rule, task, project):
                return rule["host"]
        return None


def _matches(rule: dict, task: Task, project: Project) -> bool:
    if "project" in rule and rule["project"] not in (project.name, project.key_prefix):
        return False
    if "min_priority" in rule and task.priority < rule["min_priority"]:
        return False
    if rule["_re"] is not None and not rule["_re"].search(task.title):
        return False
    if "parent" in rule and task.parent_key != rule["parent"].upper():
        return False
    return True
