"""Sessions: task + worktree + provider + backend, and their lifecycle in the store.

created -> running -> exited(code) -> archived; restart reuses the worktree. Every
transition is one store write with its event, so the app, hooks and notifications all see
the same history.

``SessionManager`` is the one way the CLI, the app and the dispatcher start, watch and end
sessions. Its parts live beside it, one concern each: ``session_backends`` (which backend
runs a session), ``session_plan`` (argv, environment, prompt, skills, worktree start point),
``session_input`` (prompts and keys to a live agent), ``session_watch`` (observing status and
exits, reconciling with what really runs). This module keeps the provider registries and
start / stop / restart / archive / delete.
"""

from __future__ import annotations

import os
import secrets
import shutil
import threading
from pathlib import Path
from typing import Callable

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
from planeai.services.session_backends import SessionBackends
from planeai.services.session_input import SessionInput
from planeai.services.session_plan import SessionPlanning
from planeai.services.session_remote import RemoteClaim, SessionRemote
from planeai.services.session_watch import SessionView, SessionWatching
from planeai.store.repository import Store

# re-exported: dispatch and the front ends know these names from here
__all__ = ["LIVE_STATES", "SessionManager", "SessionView"]



class SessionManager(SessionRemote, SessionBackends, SessionPlanning, SessionInput,
                     SessionWatching):
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
        self._metrics = None  # the MetricsCollector, made on first use

    # ------------------------------------------------------------------ plumbing
    @property
    def metrics(self):
        """This process's MetricsCollector (planeai.services.metrics), made on first use."""
        if self._metrics is None:
            from planeai.services.metrics import MetricsCollector

            self._metrics = MetricsCollector(self.store, self.config, self.registry, self.env)
        return self._metrics

    def collect_metrics(self, s: Session, *, min_interval: float = 0.0) -> None:
        """Bring a session's figures (time per status, tokens, cost) up to date; a live one
        at most every ``min_interval`` seconds. Never fails the caller: figures are a report,
        not a control path (a transcript being written, a vanished HOME)."""
        try:
            self.metrics.update(s, min_interval=min_interval)
        except Exception as e:  # noqa: BLE001 - see above
            import logging

            logging.getLogger("planeai.metrics").debug("metrics of %s: %s", s.name, e)

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

    # ------------------------------------------------------------------ start
    def start(
        self,
        *,
        task_key: str | None = None,
        project: Project | None = None,
        agent: str | None = None,
        backend: str | None = None,
        host: str | None = None,
        worktree: bool = True,
        yolo: bool = False,
        prompt: str | None = None,
        autonomous: bool = False,
        skill: str | None = None,
        sandbox: bool | None = None,
        progress: Callable[[str], None] | None = None,
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
        any point is either never run or known to have run. ``sandbox`` (None: as
        configured, planeai.services.sandbox.wanted) runs the agent in a container.
        ``progress`` hears each slow step as it begins (a worktree on a big repo takes
        seconds), for a front end to show."""
        task = self.store.get_task(task_key) if task_key else None
        if task is not None:
            project = self.store.get_project_by_id(task.project_id)
        if project is None:
            raise NotFoundError("a session needs a task or a project")
        provider, variant = self.resolve_agent(agent, project, task)
        if prompt is not None or autonomous or skill:
            provider.require_agent()  # task text and prompts never reach a plain shell
        if host:
            from planeai.backends.remote import kind_for

            kind = kind_for(host)  # the agent runs in tmux on that machine
        else:
            kind = backend or self.config.defaults.backend
        be = self.backend(kind)
        remote = self.remote_backend(kind)
        from planeai.services import sandbox as sandboxing

        # the sandbox is for agents: a shell opened by hand runs on the host unless asked
        sandboxed = sandboxing.wanted(self.config, explicit=sandbox, task=task,
                                      provider=provider, project=project)
        if sandboxed and not provider.agent and sandbox is None:
            sandboxed = False
        if sandboxed and remote is None:
            sandboxing.require_image(provider)  # before anything is reserved or made
        if task is not None and not allow_more:
            self._refresh_live(task.key)  # one that ended unobserved must not block this one

        s_id = secrets.token_hex(4)
        claim = Claim(self.session_dir(s_id)).prepare()
        if remote is not None:
            # the lock stays here (the starter is here); the claim files are on the host
            rclaim = RemoteClaim(claim.dir, remote, self.remote_session_dir(remote, s_id))
            rclaim._fd, claim._fd = claim._fd, None
            claim = rclaim
        try:
            session, moved = self._reserve(s_id, project, task, provider, variant, kind, worktree,
                                           autonomous, skill, allow_more, fence, on_reserved)
        except BaseException:
            claim.discard()
            raise
        try:
            if remote is not None:
                # the same claim and secrets steps, with their files on the host
                cwd, branch, argv, launch, env, deferred = self._prepare_remote(
                    remote, session, project, task, provider, variant, worktree, yolo,
                    prompt, autonomous, skill, progress, sandboxed)
            else:
                cwd, branch, argv, env, deferred = self._prepare(
                    session, project, task, provider, variant, worktree, yolo, prompt,
                    autonomous, skill, sandboxed, progress)
                if sandboxed:
                    launch, env = self._sandboxed(session, provider, cwd, argv, env)
                    launch = claim.wrap(launch)
                else:
                    # secrets step outermost: it consumes the secrets file even when the
                    # claim aborts
                    launch = self._with_secrets(s_id, provider, claim.wrap(argv))
            if fence is not None:
                fence()
        except LeaseLost:
            self._drop_secrets(s_id, remote)
            _abort(claim)  # the new lease holder finds it never ran and re-queues the task
            claim.release()
            raise
        except BaseException:
            self._drop_secrets(s_id, remote)
            _abort(claim)
            if self._unreserve(session, moved, fence):
                claim.discard()
            else:
                claim.release()
            raise
        self.store.update_session(s_id, worktree=cwd if worktree and task else None,
                                  branch=branch, argv=argv)
        try:
            info = be.spawn(SpawnSpec(session.name, launch, cwd, env, cols, rows))
        except BackendError as e:
            self._drop_secrets(s_id, remote)
            _abort(claim)  # a command that reaches tmux late must not run the agent
            with self.store.write():
                self.store.update_session(s_id, state=SessionState.EXITED.value,
                                          exited_at=now(), event=ev.SESSION_FAILED,
                                          event_data={"error": str(e)})
                self._undo_move(session, moved)
            claim.release()
            raise
        try:
            session = self.store.update_session(
                s_id, state=SessionState.RUNNING.value, pid=info.pid, owner=self._owner(be),
                agent_status=AgentStatus.STARTING.value, event=ev.SESSION_STARTED,
                event_data={"argv0": argv[0], "pid": info.pid, "backend": kind,
                            **({"sandbox": True} if sandboxed else {})})
        finally:
            claim.release()
        self.collect_metrics(session)  # now, while the agent's own HOME can still be read
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
                 variant: Variant | None, kind: str, worktree: bool, autonomous: bool,
                 skill: str | None, allow_more: bool, fence,
                 on_reserved) -> tuple[Session, bool]:
        """The session row, named after its task (PLA-1; more sessions of it PLA-1-2, ...),
        with the branch its worktree will have, and the task in progress, in one transaction.
        Returns (session, task was moved)."""
        from planeai.git.worktrees import branch_for

        with self.store.write():
            if fence is not None:
                fence()
            session = self.store.add_session(
                id=s_id, name=task.key if task else f"{project.key_prefix}-scratch",
                project=project, task_key=task.key if task else None, provider=provider.name,
                variant=variant.name if variant else None, backend=kind, worktree=None,
                branch=None, autonomous=autonomous, argv=[], skill=skill,
                allow_more=allow_more)
            if worktree and task is not None:
                # known now, so what fires at reservation (task_dispatched) can name it
                session = self.store.update_session(
                    session.id, branch=branch_for(session.name, task.title))
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
                 prompt: str | None, autonomous: bool, skill: str | None,
                 sandboxed: bool = False, progress: Callable[[str], None] | None = None):
        """Worktree, skills, argv and environment: (cwd, branch, argv, env, deferred)."""
        from planeai.git import worktrees as wt

        name, s_id = session.name, session.id
        branch = None
        cwd = project.path
        if worktree and task is not None:
            start_point = (self._parent_branch(task) or task.base_branch
                           or project.default_branch or None)
            if progress is not None:
                progress(f"making the worktree of {name} (branch "
                         f"{wt.branch_for(name, task.title)})")
            w = wt.ensure_worktree(
                project.path, self._worktrees_root(), name, wt.branch_for(name, task.title),
                start_point, copy_ignored=self.config.worktrees.copy_ignored)
            cwd, branch = str(w.path), w.branch
            if w.created:
                self._stack(project, task, w)

        values = self._template_values(task, project, cwd, s_id, branch)
        skills = self._session_skills(project, skill)
        if skills and (worktree and task is not None):
            from planeai.skills import install

            install(skills, cwd, skills_dir=provider.skills_dir,
                    instructions_file=provider.instructions_file)
        argv, deferred = self._agent_argv(provider, variant, values, skills, prompt,
                                          autonomous, skill, s_id, yolo)
        env = self._session_env(s_id, project, task, cwd, provider, yolo)
        if sandboxed:
            return cwd, branch, argv, env, deferred  # the agent is in the image, not here
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
    def stop_and_say(self, ref: str) -> str:
        """Stop a session for a person and say what happened, truthfully: "stopped PLA-1
        (exit 143)" only when it was running and has ended now."""
        s = self.get(ref)
        if s.state not in LIVE_STATES:
            code = "" if s.exit_code is None else f", exit {s.exit_code}"
            return f"{s.name} had already ended ({s.state.value}{code})"
        s = self.stop(s.id)
        code = "" if s.exit_code is None else f" (exit {s.exit_code})"
        return f"stopped {s.name}{code}"

    def stop(self, ref: str, *, by_user: bool = True) -> Session:
        """End the session's agent (its whole process group) and record it. A stop by the
        user is the user taking over: a dispatched run stopped so is not a failure and is
        not run again (its outcome is "stopped"; the task stays where it is). The
        dispatcher stops its runs with ``by_user=False`` and judges them itself."""
        s = self.get(ref)
        if s.state not in LIVE_STATES:
            return s
        if s.pid is None:
            self._claim(s.id).abort()  # still being started: its agent must never run now
        if by_user and s.autonomous and s.outcome is None:
            # said before the kill: a dispatcher that sees the agent die meanwhile must find
            # it taken over, not failed
            s = self.store.update_session(s.id, outcome="stopped")
        be = self.backend(s.backend)
        try:
            code = be.kill(s.name)
        except BackendError:
            code = None
        self._remove_container(s)  # its supervisor does on SIGTERM; a SIGKILL left it
        return self._mark_exited(s, code, ev.SESSION_STOPPED,
                                 {"exit_code": code, "by": "user" if by_user else "planeai"})

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
        remote = self.remote_backend(s.backend)
        if remote is not None:
            return self._restart_remote(remote, s, project, task, provider, yolo)
        if s.worktree and not Path(s.worktree).is_dir():
            raise ConflictError(f"worktree {s.worktree} of {s.name} is gone; start a new session")
        be = self.backend(s.backend)
        # the same command, minus the initial prompt: the agent's work is in the worktree
        argv = list(s.argv)
        # the same argv: still yolo when it carries the yolo flag (its env needs IS_SANDBOX)
        from planeai.services.dialogs import yolo_used

        yolo = bool(yolo) or yolo_used(s, provider)
        env = self._session_env(s.id, project, task, cwd, provider, bool(yolo))
        from planeai.services import sandbox as sandboxing

        if sandboxing.is_sandboxed(self._session_path(s.id)):
            launch, env = self._sandboxed(s, provider, cwd, argv, env)
        else:
            launch = self._with_secrets(s.id, provider, argv)
        try:
            info = be.spawn(SpawnSpec(s.name, launch, cwd, env))
        except BaseException:
            self._drop_secrets(s.id)
            raise
        return self.store.update_session(
            s.id, state=SessionState.RUNNING.value, exit_code=None, exited_at=None, pid=info.pid,
            owner=self._owner(be), agent_status=AgentStatus.STARTING.value,
            event=ev.SESSION_RESTARTED,
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
        remote = self.remote_backend(s.backend)
        if remote is not None:
            recovery = self._delete_remote_worktree(remote, s, force)
        elif s.worktree and Path(s.worktree).exists():
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
        self._remove_container(s)
        try:
            self.backend(s.backend).forget(s.name)
        except BackendError:
            pass
        self.collect_metrics(self.store.get_session(s.id))  # its figures outlive it
        self.store.delete_session(s.id)
        return recovery


def _abort(claim: Claim) -> bool:
    """Abort a failed start's claim; a host that cannot be asked now is left to settle it
    (its claim step cannot have run: nothing was spawned there by this start)."""
    try:
        return claim.abort()
    except BackendError:
        return False
