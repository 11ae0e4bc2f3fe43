"""One prompt to N agents: one session per @mention, in parallel, each in its own worktree.

Shared by `planeai run` and the app's prompt box.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from planeai.core.mentions import find_mentions, strip_mentions
from planeai.core.models import Project, Session, Task
from planeai.errors import PlaneaiError, ProviderError, ValidationError
from planeai.services import tasks as task_svc
from planeai.services.mentions import resolve
from planeai.services.sessions import SessionManager


@dataclass
class RunResult:
    task: Task
    sessions: list[Session] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def has_mentions(text: str) -> bool:
    return bool(find_mentions(text))


@dataclass
class RunPlan:
    """A checked `run`: every mention resolved, nothing written or started yet."""
    prompt: str
    project: Project
    resolved: list                 # services.mentions.Resolved, one per session
    task: Task | None              # the existing task to run on, or None for a new one


def plan_run(m: SessionManager, text: str, *, extra_agents: list[str] = (),
             task_key: str | None = None, project: Project | None = None) -> RunPlan:
    """Check a run's input: mentions, prompt, task or project, each agent usable. Raises
    ValidationError / NotFoundError naming what is wrong; writes nothing."""
    extra = [a if a.startswith("@") else "@" + a for a in extra_agents]
    mentions = find_mentions(text) + find_mentions(" ".join(extra))
    prompt = strip_mentions(text)
    if not mentions:
        raise ValidationError("name at least one agent, e.g. @claude @gemini-flash")
    if not prompt:
        raise ValidationError("the prompt is empty once the @mentions are taken out")
    task = None
    if task_key:
        task = task_svc.get(m.store, task_key)
        project = m.store.get_project_by_id(task.project_id)
    elif project is None:
        raise ValidationError("a run needs a task or a project")
    resolved = [resolve(x, m.registry(project), m.skill_set(project)) for x in mentions]
    from planeai.services.provider_check import unusable

    for r in resolved:
        provider = m.resolve_agent(r.agent, project)[0]
        provider.require_agent()  # before anything starts
        why = unusable(provider, m.env, stored=lambda p=provider: m.stored_secrets(p))
        if why:
            raise ProviderError(f"{r.mention.raw}: {why}")
    return RunPlan(prompt, project, resolved, task)


def start_run(m: SessionManager, plan: RunPlan, *, backend: str | None = None,
              yolo: bool = False, sandbox: bool | None = None) -> RunResult:
    """Make the task (unless the plan has one), then start every session in parallel."""
    task = plan.task
    if task is None:
        title = plan.prompt.splitlines()[0].strip()
        title = title if len(title) <= 80 else title[:77] + "..."
        task = task_svc.add_task(m.store, plan.project, title, description=plan.prompt)
    result = RunResult(task)
    resolved = plan.resolved
    slots: list[Session | None] = [None] * len(resolved)
    errors: list[str | None] = [None] * len(resolved)

    def start(i: int) -> None:
        r = resolved[i]
        try:
            # side by side on purpose: more than one live session for the task
            slots[i] = m.start(task_key=task.key, agent=r.agent, backend=backend,
                               prompt=plan.prompt, yolo=yolo, sandbox=sandbox,
                               skill=r.skill.trigger if r.skill else None, allow_more=True)
        except PlaneaiError as e:
            errors[i] = f"{r.mention.raw}: {e}"

    threads = [threading.Thread(target=start, args=(i,)) for i in range(len(resolved))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result.sessions = [s for s in slots if s is not None]
    result.errors = [e for e in errors if e]
    return result


def run_many(m: SessionManager, text: str, *, extra_agents: list[str] = (),
             task_key: str | None = None, project: Project | None = None,
             backend: str | None = None, yolo: bool = False) -> RunResult:
    """Validate every mention first (nothing starts when one is wrong), then start them."""
    plan = plan_run(m, text, extra_agents=extra_agents, task_key=task_key, project=project)
    return start_run(m, plan, backend=backend, yolo=yolo)
