"""Every session backend, in one table: its name, what it is, what it needs, how to open it.

Config choices, the CLI's ``--backend`` choices and the app's start dialog all read this table,
so a new backend is a module with a class that follows ``base.Backend`` (plus a
``from_settings`` classmethod) and one line in ``BACKENDS``. Import-light on purpose: the CLI
builds its parser from ``NAMES``; a backend's module is imported only when it is used.
"""

from __future__ import annotations

import importlib
import shutil
from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping

from planeai.errors import BackendError

if TYPE_CHECKING:
    from planeai.backends.base import Backend


@dataclass(frozen=True)
class BackendEntry:
    name: str
    description: str
    target: str                    # "module:Class" of the implementation
    requires: tuple[str, ...] = ()  # executables it runs (looked up on PATH)

    def load(self) -> type:
        """The implementation class (capabilities are class attributes: no instance needed).
        Raises BackendError when its module cannot be imported."""
        module, _, cls = self.target.partition(":")
        try:
            return getattr(importlib.import_module(module), cls)
        except (ImportError, AttributeError) as e:
            raise BackendError(f"the {self.name} backend cannot be loaded: {e}") from None

    def missing(self) -> list[str]:
        """Executables it needs that are not installed here."""
        return [exe for exe in self.requires if not shutil.which(exe)]

    @property
    def available(self) -> bool:
        return not self.missing()


BACKENDS: tuple[BackendEntry, ...] = (
    BackendEntry("local", "inside this planeai process; ends with it",
                 "planeai.backends.local:LocalBackend"),
    BackendEntry("tmux", "in tmux; outlives planeai, attach from any terminal",
                 "planeai.backends.tmux:TmuxBackend", requires=("tmux",)),
    BackendEntry("daemon", "in planeai's background daemon; outlives the app, no tmux needed",
                 "planeai.backends.daemon.backend:DaemonBackend"),
)
NAMES: tuple[str, ...] = tuple(b.name for b in BACKENDS)
DEFAULT = "local"  # defaults.backend when none is configured: needs nothing installed


# Sessions on another machine ([hosts.NAME]) have the kind "host:NAME": not a choice of its
# own in a backend list (a host is chosen with --host), but opened through this table too.
REMOTE = BackendEntry("host", "in tmux on another machine, over SSH ([hosts.NAME])",
                      "planeai.backends.remote:RemoteTmuxBackend", requires=("ssh",))


def host_of(kind: str) -> str | None:
    """The host name of a ``host:NAME`` backend kind, else None."""
    return kind[len("host:"):] if kind.startswith("host:") else None


def kind_for(host: str) -> str:
    """The backend kind of sessions on host ``host``."""
    return "host:" + host


def entry(name: str) -> BackendEntry:
    """The backend called ``name``; raises BackendError for an unknown name."""
    if name.startswith("host:"):
        return REMOTE
    for b in BACKENDS:
        if b.name == name:
            return b
    raise BackendError(f"unknown backend {name!r}; accepted: {', '.join(NAMES)}")


def available() -> list[BackendEntry]:
    """Backends that can run here (their executables are installed), in table order."""
    return [b for b in BACKENDS if b.available]


def open_backend(name: str, config, locs, env: Mapping[str, str]) -> Backend:
    """A new backend object for ``name``, set up from config, locations and environment.
    Raises BackendError when the name is unknown or what it needs is not installed, and
    ConfigError when its settings are wrong."""
    b = entry(name)
    missing = b.missing()
    if missing:
        others = " or ".join(o.name for o in available() if o.name != name)
        raise BackendError(f"{', '.join(missing)} is not installed (apt-get install "
                           f"{' '.join(missing)}), or use --backend {others or '...'}")
    if b is REMOTE:
        return b.load().for_host(name[len("host:"):], config, locs, dict(env))
    return b.load().from_settings(config, locs, dict(env))
