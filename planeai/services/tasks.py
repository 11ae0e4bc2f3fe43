"""Task operations shared by the CLI, the TUI, sync and the dispatcher: every rule about
tasks (defaults, validation, reporting done, blockers) lives here, so both front ends get it.

Imported by ``planeai task add`` on every call: keep it light (no config parsing here; the
caller passes the ``TaskDefaults`` of its config).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from planeai.core import validate
from planeai.core.agents import is_agent_name
from planeai.core.models import Project, Status, Task
from planeai.errors import ValidationError
from planeai.store.repository import Store

if TYPE_CHECKING:
    from planeai.config import Config


@dataclass(frozen=True)
class TaskDefaults:
    """The ``defaults.*`` settings that apply to a new task. The other ``defaults`` keys
    (provider, backend) are chosen when a session starts, not stored on the task: a task
    without a provider follows the dispatch rules."""

    priority: int = 0

    # which defaults.* keys this class carries; the rest are named in SESSION_DEFAULTS
    KEYS = ("priority",)

    @classmethod
    def of(cls, config: "Config") -> "TaskDefaults":
        """The task defaults of a loaded config."""
        return cls(priority=config.defaults.priority)


# defaults.* keys that apply when a session starts (planeai.services.sessions), not to tasks
SESSION_DEFAULTS = ("provider", "backend")


def _check_mentions(project_path: str, title: str, description: str) -> None:
    """@mentions in task text must name a real agent or skill (services.mentions); the
    providers and skills are read only when the text has a mention (`task add` stays light)."""
    from planeai.core.mentions import find_mentions

    if find_mentions(title) or find_mentions(description):
        from planeai.services.mentions import check_task_text

        check_task_text(project_path, title, description)


def _keys(keys: Sequence[str]) -> list[str]:
    out: list[str] = []
    for k in keys:
        for part in k.split(","):
            if part.strip():
                nk = validate.normalize_key(part)
                if nk not in out:
                    out.append(nk)
    return out


def _provider(name: str | None) -> str | None:
    if name is None:
        return None
    name = name.strip()
    if not name:
        return None
    if not is_agent_name(name):
        raise ValidationError(
            f"provider {name!r} is not accepted; expected NAME or NAME-VARIANT like claude-opus")
    return name


def _branch(name: str | None) -> str | None:
    if name is None or not name.strip():
        return None
    name = name.strip()
    import re

    # git check-ref-format --branch, the rules that matter for a base branch we will pass to git
    bad = (name.startswith(("-", "/", ".")) or name.endswith(("/", ".", ".lock"))
           or ".." in name or "//" in name or "@{" in name or name == "@"
           or re.search(r"[\x00-\x20\x7f~^:?*\[\\]", name))
    if bad:
        raise ValidationError(f"base branch {name!r} is not a valid git branch name")
    return name


def add_task(
    store: Store,
    project: Project,
    title: str,
    *,
    description: str = "",
    priority: int | None = None,
    blocked_by: Sequence[str] = (),
    parent: str | None = None,
    base_branch: str | None = None,
    provider: str | None = None,
    defaults: TaskDefaults = TaskDefaults(),
    sandbox: bool | None = None,
    from_sandbox: bool = False,
    host: str | None = None,
) -> Task:
    """A new task; what the caller leaves out (``priority=None``) comes from ``defaults``.
    ``sandbox`` (None: as configured) decides whether its agents run in Docker; a task made
    from inside a sandbox (``from_sandbox``: the request came through a session's inbox) is
    always sandboxed, so an agent cannot hand work to an unsandboxed one."""
    if from_sandbox:
        if sandbox is False:
            raise ValidationError(_FROM_SANDBOX)
        sandbox = True
    if priority is None:
        priority = defaults.priority
    title, description = validate.title(title), validate.description(description)
    _check_mentions(project.path, title, description)
    return store.add_task(
        project,
        title=title,
        description=description,
        priority=validate.priority(priority),
        blocked_by=_keys(blocked_by),
        parent_key=validate.normalize_key(parent) if parent else None,
        base_branch=_branch(base_branch),
        provider=_provider(provider),
        sandbox=sandbox,
        host=_host(host),
    )


def edit_task(
    store: Store,
    key: str,
    *,
    title: str | None = None,
    description: str | None = None,
    priority: int | None = None,
    parent: str | None = None,
    clear_parent: bool = False,
    base_branch: str | None = None,
    provider: str | None = None,
    blocked_by: Sequence[str] | None = None,
    sandbox: bool | None | object = ...,
    from_sandbox: bool = False,
    host: str | None | object = ...,
) -> Task:
    """Change the given fields; ``blocked_by`` (when given) replaces the blockers. All of it
    is one transaction: a refused part (a cycle, an unknown key) changes nothing."""
    fields: dict = {}
    if title is not None:
        fields["title"] = validate.title(title)
    if description is not None:
        fields["description"] = validate.description(description)
    if priority is not None:
        fields["priority"] = validate.priority(priority)
    if clear_parent:
        fields["parent_key"] = None
    elif parent is not None:
        fields["parent_key"] = validate.normalize_key(parent)
    if base_branch is not None:
        fields["base_branch"] = _branch(base_branch)
    if provider is not None:
        fields["provider"] = _provider(provider)
    if sandbox is not ...:  # True / False, or None: as configured again
        if from_sandbox and sandbox is not True:
            raise ValidationError(_FROM_SANDBOX)
        fields["sandbox"] = sandbox
    if host is not ...:  # a name, "local", or None: any free slot again
        fields["host"] = _host(host)  # type: ignore[arg-type]
    key = validate.normalize_key(key)
    if title is not None or description is not None:
        task = store.get_task(key)
        _check_mentions(store.get_project_by_id(task.project_id).path,
                        fields.get("title", ""), fields.get("description", ""))
    with store.write():
        task = store.update_task(key, **fields)
        if blocked_by is not None:
            task = replace_blockers(store, key, blocked_by)
    return task


_FROM_SANDBOX = ("inside a sandbox a task cannot be taken out of it: --no-sandbox and "
                 "--sandbox-as-configured are refused here (its agents run sandboxed)")


def move(store: Store, key: str, status: str | Status, *, reason: str | None = None) -> Task:
    st = status if isinstance(status, Status) else Status.parse(status)
    return store.set_status(validate.normalize_key(key), st, reason=reason)


def block(store: Store, key: str, by: Sequence[str]) -> Task:
    return store.add_blockers(validate.normalize_key(key), _keys(by))


def unblock(store: Store, key: str, by: Sequence[str] | None) -> Task:
    return store.remove_blockers(validate.normalize_key(key), _keys(by) if by else None)


def replace_blockers(store: Store, key: str, by: Sequence[str]) -> Task:
    """Make ``by`` the task's blockers: the new ones are added (checked for cycles), the
    ones no longer named removed, in one transaction."""
    key = validate.normalize_key(key)
    new = _keys(by)
    with store.write():
        task = store.get_task(key)
        old = set(task.blocked_by)
        added = [k for k in new if k not in old]
        removed = sorted(old - set(new))
        if added:
            task = store.add_blockers(key, sorted(added))
        if removed:
            task = store.remove_blockers(key, removed)
    return task


@dataclass(frozen=True)
class DoneReport:
    task: Task
    # subtasks still open: the task stays in progress and finishes when they are done
    waiting_for: list[str]


def report_done(store: Store, key: str, *, session_id: str | None = None,
                own_task: bool = False) -> DoneReport:
    """``planeai task done``. An agent reporting its own task (``own_task``) while subtasks
    are open leaves it in progress (no done -> in_progress flicker) and records the request
    on its session, which the dispatcher finishes once the subtasks are done; anything else
    moves the task to done."""
    key = validate.normalize_key(key)
    if own_task:
        with store.write():
            open_ = open_subtasks(store, key)
            if open_:
                store.request_done(key, session_id=session_id, open_subtasks=open_)
                return DoneReport(store.get_task(key), open_)
    return DoneReport(move(store, key, Status.DONE), [])


def open_subtasks(store: Store, key: str) -> list[str]:
    """The keys of ``key``'s subtasks that are not done."""
    return [t.key for t in store.list_tasks(parent_key=validate.normalize_key(key),
                                            include_archived_projects=True)
            if t.status is not Status.DONE]


def subtasks(store: Store, key: str) -> list[str]:
    return store.children(validate.normalize_key(key))


def history(store: Store, key: str, *, limit: int = 50) -> list:
    """The task's events, oldest first, at most ``limit``."""
    return store.events(task_key=validate.normalize_key(key), limit=limit)


def get(store: Store, key: str) -> Task:
    return store.get_task(validate.normalize_key(key))


def list_tasks(
    store: Store,
    *,
    projects: Sequence[Project] | None = None,
    statuses: Sequence[str] | None = None,
    ready: bool = False,
) -> list[Task]:
    sts = [Status.parse(s) for s in statuses] if statuses else None
    tasks = store.list_tasks(
        project_ids=[p.id for p in projects] if projects is not None else None, statuses=sts)
    if ready:
        tasks = [t for t in tasks if t.ready]
    return tasks


def ready_queue(tasks: Sequence[Task]) -> list[Task]:
    """Ready tasks in dispatch order: highest priority first, then oldest."""
    return sorted((t for t in tasks if t.ready), key=lambda t: (-t.priority, t.created_at, t.id))


def delete(store: Store, key: str, *, recursive: bool = False) -> list[str]:
    return store.delete_task(validate.normalize_key(key), recursive=recursive)


def _host(host: str | None) -> str | None:
    """Where a task's agents run: None (any free slot), "local" (this machine) or a host's
    name ([hosts.NAME]; one not configured holds the task when it is dispatched)."""
    if host is None:
        return None
    from planeai.config import HOST_NAME

    if not HOST_NAME.fullmatch(host):
        raise ValidationError(f"--host {host!r}: a host's name (letters, digits, - and _, see "
                              "`planeai host list`) or local")
    return host
