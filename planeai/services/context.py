"""Which store, which project: resolved from env, flags and the current directory.

Reads ``.git`` files directly instead of forking git: ``planeai task add`` runs this on every
call from every agent and must stay near 0.1 s.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from planeai.core.models import Project
from planeai.errors import NotFoundError
from planeai.paths import Locations, locations, secure_dirs
from planeai.store.repository import Store

if TYPE_CHECKING:
    from planeai.config import Config
    from planeai.services.sessions import SessionManager


class AppContext:
    """What one process works with, built once: where things live, the settings, the store
    and the session manager. The app, the CLI and the dispatcher all start from one; the store
    and the manager open on first use, so ``planeai task add`` pays only for what it touches."""

    def __init__(self, locs: Locations, config: "Config | None" = None, *,
                 explicit: str | None = None, cwd: Path | str = ".") -> None:
        self.locations = locs
        self._config = config
        self._explicit, self._cwd = explicit, cwd
        self._store: Store | None = None
        self._events_at_open = 0
        self._manager: "SessionManager | None" = None

    @classmethod
    def load(cls, *, explicit: str | None = None, cwd: Path | str = ".") -> "AppContext":
        """The user's locations; the config layers for the repo at ``cwd`` (and --config)
        are read on first use, so a command that needs no settings never parses them."""
        return cls(locations(), explicit=explicit, cwd=cwd)

    @property
    def config(self) -> "Config":
        if self._config is None:
            self._config = load_config(self.locations, explicit=self._explicit, cwd=self._cwd)
        return self._config

    def wrote_events(self) -> bool:
        """Has anything been recorded since this context opened its store (by this process
        or another)? False when the store was never opened."""
        return self._store is not None and self._store.last_event_id() != self._events_at_open

    @property
    def explicit_config(self) -> str | None:
        """The --config file this context reads, if one was given."""
        return self._explicit

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = open_store(self.locations)
            self._events_at_open = self._store.last_event_id()
        return self._store

    @property
    def manager(self) -> "SessionManager":
        if self._manager is None:
            from planeai.services.sessions import SessionManager

            self._manager = SessionManager(self.store, self.config, self.locations)
        return self._manager

    def close(self) -> None:
        if self._manager is not None:
            self._manager.close()
        if self._store is not None:
            self._store.close()
        self._manager = self._store = None

    def __enter__(self) -> "AppContext":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_store(locs: Locations | None = None) -> Store:
    locs = locs or locations()
    secure_dirs(locs)  # 0700: what agents and tasks leave there is nobody else's business
    return Store.open(locs.db_path)


def load_config(locs: Locations | None = None, *, explicit: str | None = None,
                cwd: Path | str = ".") -> "Config":
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
    from planeai.store.db import database_error

    return str(database_error(locations().db_path, exc))
