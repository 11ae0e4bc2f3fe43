"""Registering git repos as projects."""

from __future__ import annotations

from pathlib import Path

from planeai.core import validate
from planeai.core.models import Project
from planeai.errors import ConflictError, NotFoundError, ValidationError
from planeai.services.context import canonical, repo_root_of
from planeai.store.repository import Store


def head_branch(repo: Path) -> str | None:
    """The branch HEAD points at, read from the file (no git fork)."""
    try:
        head = (repo / ".git" / "HEAD").read_text(encoding="utf-8").strip()
    except OSError:
        return None
    prefix = "ref: refs/heads/"
    return head[len(prefix):] if head.startswith(prefix) else None


def _free_prefix(store: Store, base: str) -> str:
    taken = {p.key_prefix for p in store.list_projects(include_archived=True)}
    if base not in taken:
        return base
    for n in range(2, 100):
        cand = f"{base[:9]}{n}" if len(base) + len(str(n)) > 10 else f"{base}{n}"
        if cand not in taken:
            return cand
    raise ConflictError(f"no free key prefix derived from {base}; pass --key")


def add_project(store: Store, path: str | Path, *, name: str | None = None,
                key: str | None = None) -> tuple[Project, bool]:
    """Register the repo at ``path``. Returns (project, restored) where restored means a
    previously removed project with this path came back with its tasks."""
    p = Path(path).expanduser()
    if not p.exists():
        raise ValidationError(f"{path} does not exist")
    if not p.is_dir():
        raise ValidationError(f"{path} is not a directory")
    root = repo_root_of(p)
    if root is None:
        raise ValidationError(f"{path} is not a git repository (run `git init` there first)")
    real = canonical(root)
    existing = store.project_by_path(real)
    if existing is not None:
        if (existing.archived and name in (None, existing.name)
                and key in (None, existing.key_prefix)):
            return store.restore_project(existing), True
        raise ConflictError(f"{real} is already registered as project {existing.name!r}")
    name = validate.name(name or Path(real).name, "project name")
    prefix = validate.key_prefix(key) if key else _free_prefix(store, validate.derive_prefix(name))
    return store.add_project(name, prefix, real, head_branch(Path(real))), False


def find(store: Store, ref: str) -> Project:
    """A project by name, key or path; NotFoundError names what was asked."""
    p = store.find_project(ref) or store.find_project(canonical(ref))
    if p is None:
        raise NotFoundError(f"no project {ref!r}")
    return p


def remove_project(store: Store, project: Project, *, purge: bool = False) -> int:
    """Remove a project from the board (its tasks kept, so `project add` restores it), or with
    ``purge`` delete its tasks too; returns how many tasks were deleted."""
    return store.remove_project(project, purge=purge)
