"""Which backend runs a session: opened once per process from the registry
(planeai.backends.registry), the one a CLI command must use so its sessions outlive it, and the
owner of sessions that live inside this process.

A part of ``SessionManager`` (planeai.services.sessions).
"""

from __future__ import annotations

from planeai.backends import registry as backend_registry
from planeai.backends.base import Backend
from planeai.errors import BackendError


class SessionBackends:
    """Mixed into SessionManager: needs ``config``, ``locs``, ``env``, ``_backends`` and
    ``_backends_lock``."""

    def backend(self, kind: str) -> Backend:
        b = self._backends.get(kind)
        if b is not None:
            return b
        with self._backends_lock:  # parallel starts must share one backend, not make two
            b = self._backends.get(kind)
            if b is None:
                b = self._make_backend(kind)
                self._backends[kind] = b
            return b

    def _make_backend(self, kind: str) -> Backend:
        return backend_registry.open_backend(kind, self.config, self.locs, self.env)

    @staticmethod
    def backend_choices() -> list[tuple[str, str]]:
        """(name, description) of every backend that can run here, for a front end to offer."""
        return [(b.name, b.description) for b in backend_registry.available()]

    @staticmethod
    def runs_in_process(kind: str) -> bool:
        """True when ``kind``'s sessions end with the process that starts them (without
        opening it). Raises BackendError for an unknown backend."""
        return bool(backend_registry.entry(kind).load().in_process)

    def outliving_backend(self, requested: str | None) -> tuple[str, str | None]:
        """The backend for sessions started by a command that exits right after (the CLI):
        ``requested``, or the configured default, or, when that one keeps its sessions inside
        the process (local), the first installed one that does not (tmux, else the daemon).
        Returns (name, a line saying which was chosen instead, or None). Raises BackendError
        for an unknown name or an in-process backend asked for by name."""
        kind = requested or self.config.defaults.backend
        if not self.runs_in_process(kind):
            return kind, None
        outliving = [b.name for b in backend_registry.available()
                     if not backend_registry.entry(b.name).load().in_process]
        if requested or not outliving:
            hint = (f"pass --backend {outliving[0]} (or set defaults.backend = "
                    f"\"{outliving[0]}\"), or " if outliving else "")
            raise BackendError(
                f"the {kind} backend keeps sessions inside the planeai app, so this command's "
                f"sessions would end with it; {hint}start them from the app")
        chosen = outliving[0]
        return chosen, (f"using the {chosen} backend (defaults.backend = \"{kind}\" keeps "
                        "sessions inside the app; set defaults.backend to choose)")

    def in_process_sessions(self) -> list[str]:
        """Live sessions that end when this process does (those of the backends it opened)."""
        return [i.name for b in list(self._backends.values()) if b.in_process
                for i in b.list() if i.alive]

    def close(self) -> None:
        for b in self._backends.values():
            b.close()

    @staticmethod
    def _owner(be: Backend) -> str | None:
        """This process, for a session that lives inside it (see session_watch)."""
        from planeai.backends import procs

        return procs.identity() if be.in_process else None
