"""Task operations shared by the CLI, the TUI, sync and the dispatcher."""

from __future__ import annotations

from typing import Sequence

from planeai.core import validate
from planeai.core.models import Project, Status, Task
from planeai.errors import ValidationError
from planeai.store.repository import Store


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
    import re

    if not re.fullmatch(r"[a-z0-9][a-z0-9_]*(-[a-z0-9][a-z0-9_]*)?", name):
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
    priority: int = 0,
    blocked_by: Sequence[str] = (),
    parent: str | None = None,
    base_branch: str | None = None,
    provider: str | None = None,
) -> Task:
    return store.add_task(
        project,
        title=validate.title(title),
        description=validate.description(description),
        priority=validate.priority(priority),
        blocked_by=_keys(blocked_by),
        parent_key=validate.normalize_key(parent) if parent else None,
        base_branch=_branch(base_branch),
        provider=_provider(provider),
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
) -> Task:
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
    return store.update_task(validate.normalize_key(key), **fields)


def move(store: Store, key: str, status: str | Status, *, reason: str | None = None) -> Task:
    st = status if isinstance(status, Status) else Status.parse(status)
    return store.set_status(validate.normalize_key(key), st, reason=reason)


def block(store: Store, key: str, by: Sequence[str]) -> Task:
    return store.add_blockers(validate.normalize_key(key), _keys(by))


def unblock(store: Store, key: str, by: Sequence[str] | None) -> Task:
    return store.remove_blockers(validate.normalize_key(key), _keys(by) if by else None)


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
