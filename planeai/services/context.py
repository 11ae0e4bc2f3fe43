"""Which store, which project: resolved from env, flags and the current directory.

Reads ``.git`` files directly instead of forking git: ``planeai task add`` runs this on every
call from every agent and must stay near 0.1 s.
"""

from __future__ import annotations

import os
from pathlib import Path

from planeai.core.models import Project
from planeai.errors import NotFoundError
from planeai.paths import Locations, locations, secure_dirs
from planeai.store.repository import Store


def open_store(locs: Locations | None = None) -> Store:
    locs = locs or locations()
    secure_dirs(locs)  # 0700: what agents and tasks leave there is nobody else's business
    return Store.open(locs.db_path)


def load_config(locs: Locations | None = None, *, explicit: str | None = None,
                cwd: Path | str = "."):
    """The layered config the CLI uses: user file, the current repo's .planeai/config.toml,
    then --config / PLANEAI_CONFIG. Cheap enough for ``planeai task add`` (~10 ms)."""
    from planeai import config

    locs = locs or locations()
    return config.load(user_file=locs.config_file, project_dir=repo_root_of(cwd),
                       explicit=explicit)


def repo_root_of(path: Path | str) -> Path | None:
    """The main repository's top level for ``path``, also from inside a linked worktree."""
    p = Path(path).absolute()
    for d in (p, *p.parents):
        dotgit = d / ".git"
        if dotgit.is_dir():
            return d
        if dotgit.is_file():
            try:
                text = dotgit.read_text(encoding="utf-8").strip()
            except OSError:
                return None
            if not text.startswith("gitdir:"):
                return None
            gitdir = Path(text[len("gitdir:"):].strip())
            if not gitdir.is_absolute():
                gitdir = (d / gitdir).resolve()
            common = gitdir
            commondir = gitdir / "commondir"
            if commondir.is_file():
                rel = commondir.read_text(encoding="utf-8").strip()
                common = (gitdir / rel).resolve()
            # common is <repo>/.git for a normal repo with linked worktrees
            return common.parent if common.name == ".git" else d
    return None


def canonical(path: Path | str) -> str:
    return str(Path(path).expanduser().resolve())


def project_from_cwd(store: Store, cwd: Path | str | None = None) -> Project | None:
    root = repo_root_of(cwd or os.getcwd())
    if root is None:
        return None
    project = store.project_by_path(canonical(root))
    return project if project and not project.archived else None


def resolve_project(
    store: Store,
    ref: str | None,
    *,
    cwd: Path | str | None = None,
    env: dict[str, str] | os._Environ[str] | None = None,
    required: bool = True,
) -> Project | None:
    """--project wins, then PLANEAI_PROJECT (set inside sessions), then the current repo."""
    env = os.environ if env is None else env
    if ref:
        project = store.find_project(ref) or store.find_project(canonical(ref))
        if project is None:
            names = ", ".join(p.name for p in store.list_projects()) or "none registered"
            raise NotFoundError(f"no project {ref!r}; known: {names}")
        return project
    env_ref = env.get("PLANEAI_PROJECT")
    if env_ref:
        project = store.find_project(env_ref)
        if project is None:
            raise NotFoundError(f"PLANEAI_PROJECT={env_ref!r} names no registered project")
        return project
    project = project_from_cwd(store, cwd)
    if project is None and required:
        raise NotFoundError(
            "no project here: run inside a registered repo, pass --project, "
            "or register one with `planeai project add PATH`")
    return project


def database_failure_line(exc: BaseException) -> str:
    """One line for a database error that reached a front end (damaged, full, locked...)."""
    from planeai.store.repository import database_error

    return str(database_error(locations().db_path, exc))
