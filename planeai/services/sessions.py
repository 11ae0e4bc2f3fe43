"""Sessions: task + worktree + provider + backend, and their lifecycle in the store.

created -> running -> exited(code) -> archived; restart reuses the worktree. Every
transition is one store write with its event, so the app, hooks and notifications all see
the same history.

``SessionManager`` is the one way the CLI, the app and the dispatcher start, watch and end
sessions. Its parts live beside it, one concern each: ``session_plan`` (argv, environment,
prompt and skills of a start), ``session_input`` (prompts and keys to a live agent),
``session_watch`` (observing status and exits, reconciling with what really runs). This
module keeps the plumbing (backends, provider registries) and start / stop / restart /
archive / delete.
"""

from __future__ import annotations

import os
import secrets
import shutil
import threading
from pathlib import Path
from typing import Callable

from planeai.backends import registry as backend_registry
from planeai.backends.base import Backend, SpawnSpec
from planeai.config import Config
from planeai.core import events as ev
from planeai.core.models import LIVE_STATES, Project, Session, SessionState, Status, Task
from planeai.core.status import AgentStatus
from planeai.errors import (BackendError, ConflictError, NotFoundError, PlaneaiError,
                            ProviderError, WorktreeError)
from planeai.paths import Locations
from planeai.providers import Provider, Registry, Variant, load_registry, provider_dirs
from planeai.services.claims import Claim
from planeai.store.db import now
from planeai.store.leases import LeaseLost
from planeai.services.session_input import SessionInput
from planeai.services.session_plan import SessionPlanning
from planeai.services.session_watch import SessionView, SessionWatching
from planeai.store.repository import Store

# re-exported: dispatch and the front ends know these names from here
__all__ = ["LIVE_STATES", "SessionManager", "SessionView"]



class SessionManager(SessionPlanning, SessionInput, SessionWatching):
    """The one way the CLI and the app start, watch and end sessions."""

    def __init__(self, store: Store, config: Config, locs: Locations,
                 backends: dict[str, Backend] | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.store = store
        self.config = config
        self.locs = locs
        self.env = dict(os.environ if env is None else env)
        self._backends: dict[str, Backend] = dict(backends or {})
        self._registries: dict[str, Registry] = {}
        self._deliveries: list[threading.Thread] = []
        self._backends_lock = threading.Lock()

    # ------------------------------------------------------------------ plumbing
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

    def registry(self, project: Project | None = None) -> Registry:
        key = project.path if project else ""
        reg = self._registries.get(key)
        if reg is None:
            reg = load_registry(provider_dirs(project.path if project else None))
            self._registries[key] = reg
        return reg

    def forget_registries(self) -> None:
        """Provider files or their trust changed (planeai trust): read them again on next use."""
        self._registries.clear()

    def resolve_agent(self, spec: str | None, project: Project | None,
                      task: Task | None = None) -> tuple[Provider, Variant | None]:
        reg = self.registry(project)
        spec = spec or (task.provider if task else None) or reg.default(
            self.config.defaults.provider)
        return reg.resolve(spec)

    def _worktrees_root(self) -> Path:
        root = self.config.worktrees.root
        return Path(root).expanduser() if root else self.locs.worktrees_dir

    def session_dir(self, session_id: str) -> Path:
        d = self._session_path(session_id)
        d.mkdir(parents=True, exist_ok=True)
        os.chmod(d, 0o700)
        return d

    def _session_path(self, session_id: str) -> Path:
        return self.locs.state_dir / "sessions" / session_id

    def _claim(self, session_id: str) -> Claim:
        return Claim(self._session_path(session_id))

    # ------------------------------------------------------------------ start
    def start(
        self,
        *,
        task_key: str | None = None,
        project: Project | None = None,
        agent: str | None = None,
        backend: str | None = None,
        worktree: bool = True,
        yolo: bool = False,
        prompt: str | None = None,
        autonomous: bool = False,
        skill: str | None = None,
        cols: int = 120,
        rows: int = 40,
        allow_more: bool = False,
        fence: Callable[[], None] | None = None,
        on_reserved: Callable[[Session], None] | None = None,
    ) -> Session:
        """Start a session: reserve it, make its worktree, spawn the agent, record it.

        The reservation (name, "no live session for this task" unless ``allow_more``, the
        task to in_progress) is one transaction, so concurrent starts of one task start one
        session. ``fence`` is called inside it and again just before the spawn (the
        dispatcher's lease check: raising stops the start); ``on_reserved`` inside it too.
        The agent runs behind a claim (planeai.services.claims), so a start interrupted at
        any point is either never run or known to have run."""
        task = self.store.get_task(task_key) if task_key else None
        if task is not None:
            project = self.store.get_project_by_id(task.project_id)
        if project is None:
            raise NotFoundError("a session needs a task or a project")
        provider, variant = self.resolve_agent(agent, project, task)
        if prompt is not None or autonomous or skill:
            provider.require_agent()  # task text and prompts never reach a plain shell
        kind = backend or self.config.defaults.backend
        be = self.backend(kind)
        if task is not None and not allow_more:
            self._refresh_live(task.key)  # one that ended unobserved must not block this one

        s_id = secrets.token_hex(4)
        claim = Claim(self.session_dir(s_id)).prepare()
        try:
            session, moved = self._reserve(s_id, project, task, provider, variant, kind,
                                           autonomous, skill, allow_more, fence, on_reserved)
        except BaseException:
            claim.discard()
            raise
        try:
            cwd, branch, argv, env, deferred = self._prepare(
                session, project, task, provider, variant, worktree, yolo, prompt,
                autonomous, skill)
            if fence is not None:
                fence()
        except LeaseLost:
            claim.abort()  # the new lease holder finds it never ran and re-queues the task
            claim.release()
            raise
        except BaseException:
            claim.abort()
            if self._unreserve(session, moved, fence):
                claim.discard()
            else:
                claim.release()
            raise
        self.store.update_session(s_id, worktree=cwd if worktree and task else None,
                                  branch=branch, argv=argv)
        try:
            info = be.spawn(SpawnSpec(session.name, claim.wrap(argv), cwd, env, cols, rows))
        except BackendError as e:
            claim.abort()  # a command that reaches tmux late must not run the agent
            with self.store.write():
                self.store.update_session(s_id, state=SessionState.EXITED.value,
                                          exited_at=now(), event=ev.SESSION_FAILED,
                                          event_data={"error": str(e)})
                self._undo_move(session, moved)
            claim.release()
            raise
        try:
            session = self.store.update_session(
                s_id, state=SessionState.RUNNING.value, pid=info.pid,
                agent_status=AgentStatus.STARTING.value, event=ev.SESSION_STARTED,
                event_data={"argv0": argv[0], "pid": info.pid, "backend": kind})
        finally:
            claim.release()
        if deferred:
            # the agent cannot take its prompt on the command line: paste it once it is ready,
            # without holding up the caller (the dispatcher, the app)
            t = threading.Thread(target=self._deliver_when_ready, name=f"prompt-{session.name}",
                                 args=(session, provider, deferred), daemon=True)
            t.start()
            self._deliveries.append(t)
        return session

    def _refresh_live(self, task_key: str) -> None:
        for s in self.store.sessions_for_task(task_key):
            if s.state in LIVE_STATES:
                try:
                    self.observe(s.id)
                except PlaneaiError:
                    pass

    def _reserve(self, s_id: str, project: Project, task: Task | None, provider: Provider,
                 variant: Variant | None, kind: str, autonomous: bool, skill: str | None,
                 allow_more: bool, fence, on_reserved) -> tuple[Session, bool]:
        """The session row, named after its task (PLA-1; more sessions of it PLA-1-2, ...),
        and the task in progress, in one transaction. Returns (session, task was moved)."""
        with self.store.write():
            if fence is not None:
                fence()
            session = self.store.add_session(
                id=s_id, name=task.key if task else f"{project.key_prefix}-scratch",
                project=project, task_key=task.key if task else None, provider=provider.name,
                variant=variant.name if variant else None, backend=kind, worktree=None,
                branch=None, autonomous=autonomous, argv=[], skill=skill,
                allow_more=allow_more)
            moved = False
            if task is not None and self.store.get_task(task.key).status is Status.TODO:
                self.store.set_status(task.key, Status.IN_PROGRESS,
                                      reason=f"session {session.name}")
                moved = True
            if on_reserved is not None:
                on_reserved(session)
        return session, moved

    def _unreserve(self, session: Session, moved: bool, fence) -> bool:
        """Nothing was spawned: take the reservation back. False when a stale dispatcher
        may not: the lease's new holder finds the claim aborted and settles it."""
        try:
            with self.store.write():
                if fence is not None:
                    fence()
                self.store.delete_session(session.id)
                self._undo_move(session, moved)
        except LeaseLost:
            return False
        return True

    def _undo_move(self, session: Session, moved: bool) -> None:
        if moved and session.task_key:
            if self.store.get_task(session.task_key).status is Status.IN_PROGRESS:
                self.store.set_status(session.task_key, Status.TODO,
                                      reason=f"session {session.name} could not start")

    def _prepare(self, session: Session, project: Project, task: Task | None,
                 provider: Provider, variant: Variant | None, worktree: bool, yolo: bool,
                 prompt: str | None, autonomous: bool, skill: str | None):
        """Worktree, skills, argv and environment: (cwd, branch, argv, env, deferred)."""
        from planeai.git import worktrees as wt

        name, s_id = session.name, session.id
        branch = None
        cwd = project.path
        if worktree and task is not None:
            w = wt.ensure_worktree(
                project.path, self._worktrees_root(), name, wt.branch_for(name, task.title),
                task.base_branch or project.default_branch or None,
                copy_ignored=self.config.worktrees.copy_ignored)
            cwd, branch = str(w.path), w.branch

        values = self._template_values(task, project, cwd, s_id, branch)
        skills = self._session_skills(project, skill)
        if skills and (worktree and task is not None):
            from planeai.skills import install

            install(skills, cwd, skills_dir=provider.skills_dir,
                    instructions_file=provider.instructions_file)
        from planeai.skills import prompt_text

        values["skills"] = prompt_text(skills)
        if autonomous and prompt is None:
            prompt = provider.autonomous_prompt(values)
        elif prompt is not None and skill is not None:
            # an interactive session started for a skill: its instructions lead the prompt
            prompt = prompt_text([s for s in skills if s.trigger == skill]) + "\n\n" + prompt
        argv, deferred = self._argv(provider, variant, values, prompt, s_id, yolo)
        env = self._session_env(s_id, project, task, cwd, provider, yolo)
        binary = shutil.which(argv[0], path=env.get("PATH"))
        if binary is None:
            hint = f"; install: {provider.install_hint}" if provider.install_hint else ""
            raise ProviderError(f"{provider.display_name} CLI {argv[0]!r} not found{hint}")
        return cwd, branch, argv, env, deferred

    # ------------------------------------------------------------------ interact
    def get(self, ref: str) -> Session:
        """By session id, name (PLA-1, PLA-1-2) or task key (its newest live session)."""
        try:
            return self.store.get_session(ref)
        except NotFoundError:
            pass
        from planeai.core import validate

        try:
            key = validate.normalize_key(ref)
        except Exception:
            raise NotFoundError(f"no session {ref!r}") from None
        try:
            return self.store.get_session(key)
        except NotFoundError:
            pass
        sessions = self.store.sessions_for_task(key)
        if not sessions:
            raise NotFoundError(f"no session {ref!r}")
        live = [s for s in sessions if s.state in LIVE_STATES]
        return (live or sessions)[-1]

    def provider_of(self, s: Session) -> Provider:
        project = self.store.get_project_by_id(s.project_id)
        return self.registry(project).get(s.provider)

    def logs(self, ref: str) -> list[str]:
        s = self.get(ref)
        return self.backend(s.backend).scrollback(s.name)

    def attach_command(self, ref: str) -> list[str]:
        s = self.get(ref)
        if s.state not in LIVE_STATES and s.state is not SessionState.EXITED:
            raise ConflictError(f"session {s.name} is {s.state.value}")
        cmd = self.backend(s.backend).attach_command(s.name)
        if cmd is None:
            raise ConflictError(f"session {s.name} runs on the {s.backend} backend inside the "
                                "planeai app; open it there (tmux and daemon sessions attach "
                                "from any terminal)")
        return cmd

    # ------------------------------------------------------------------ end
    def stop(self, ref: str) -> Session:
        s = self.get(ref)
        if s.state not in LIVE_STATES:
            return s
        if s.pid is None:
            self._claim(s.id).abort()  # still being started: its agent must never run now
        be = self.backend(s.backend)
        try:
            code = be.kill(s.name)
        except BackendError:
            code = None
        return self._mark_exited(s, code, ev.SESSION_STOPPED, {"exit_code": code})

    def restart(self, ref: str, *, yolo: bool | None = None) -> Session:
        s = self.get(ref)
        if s.state is SessionState.ARCHIVED:
            raise ConflictError(f"session {s.name} is archived")
        if s.state in LIVE_STATES:
            s = self.stop(s.id)
        project = self.store.get_project_by_id(s.project_id)
        task = self.store.get_task(s.task_key) if s.task_key else None
        provider = self.registry(project).get(s.provider)
        cwd = s.worktree or project.path
        if s.worktree and not Path(s.worktree).is_dir():
            raise ConflictError(f"worktree {s.worktree} of {s.name} is gone; start a new session")
        be = self.backend(s.backend)
        # the same command, minus the initial prompt: the agent's work is in the worktree
        argv = list(s.argv)
        env = self._session_env(s.id, project, task, cwd, provider, bool(yolo))
        info = be.spawn(SpawnSpec(s.name, argv, cwd, env))
        return self.store.update_session(
            s.id, state=SessionState.RUNNING.value, exit_code=None, exited_at=None, pid=info.pid,
            agent_status=AgentStatus.STARTING.value, event=ev.SESSION_RESTARTED,
            event_data={"pid": info.pid})

    def archive(self, ref: str) -> Session:
        s = self.get(ref)
        if s.state in LIVE_STATES:
            s = self.stop(s.id)
        try:
            self.backend(s.backend).forget(s.name)
        except BackendError:
            pass
        return self.store.update_session(s.id, state=SessionState.ARCHIVED.value,
                                         event=ev.SESSION_ARCHIVED)

    def delete(self, ref: str, *, force: bool = False) -> str | None:
        """Stop, remove the worktree (refusing unsaved work unless force) and forget it.

        Returns the recovery ref when a forced removal had to save work."""
        from planeai.git import worktrees as wt

        s = self.get(ref)
        recovery = None
        if s.worktree and Path(s.worktree).exists():
            project = self.store.get_project_by_id(s.project_id)
            others = [o for o in self.store.list_sessions()
                      if o.worktree == s.worktree and o.id != s.id]
            if not others:
                # check before stopping anything: a refusal must change nothing
                if not force:
                    losses = wt.removal_losses(s.worktree)
                    if losses:
                        raise WorktreeError(
                            f"{s.name}'s worktree {s.worktree} holds work that would be lost: "
                            f"{', '.join(losses)}; commit or push it, or pass --force "
                            "(keeps it in a recovery ref; ignored files are moved to "
                            f"{self.locs.state_dir / 'recovery'})")
                if s.state in LIVE_STATES:
                    self.stop(s.id)
                recovery = wt.remove_worktree(project.path, s.worktree, force=force,
                                              recovery_dir=self.locs.state_dir / "recovery")
        if s.state in LIVE_STATES:
            self.stop(s.id)
        try:
            self.backend(s.backend).forget(s.name)
        except BackendError:
            pass
        self.store.delete_session(s.id)
        return recovery
