"""Sessions: task + worktree + provider + backend, and their lifecycle in the store.

created -> running -> exited(code) -> archived; restart reuses the worktree. Every
transition is one store write with its event, so the app, hooks and notifications all see
the same history.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from planeai.backends import registry as backend_registry
from planeai.backends.base import Backend, Snapshot, SpawnSpec
from planeai.config import Config
from planeai.core.models import Project, Session, SessionState, Status, Task
from planeai.core.status import AgentStatus, Observation, classify
from planeai.errors import (BackendError, ConflictError, NotFoundError, PlaneaiError,
                            ProviderError, WorktreeError)
from planeai.paths import Locations
from planeai.providers import Provider, Registry, Variant, load_registry, provider_dirs
from planeai.services.claims import Claim
from planeai.store.repository import LeaseLost, Store, now

# Prompts longer than this go through a file: Linux caps one argv element at 128 KiB.
ARGV_PROMPT_LIMIT = 64 * 1024
LIVE_STATES = (SessionState.CREATED, SessionState.RUNNING)
# planeai's own credentials (tracker sync): never handed to an agent's session.
PLANEAI_SECRETS = ("JIRA_API_TOKEN", "PLANE_API_KEY", "PLANE_WEBHOOK_SECRET")


@dataclass
class SessionView:
    session: Session
    status: AgentStatus
    snapshot: Snapshot | None


class SessionManager:
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
            self.config["defaults.provider"])
        return reg.resolve(spec)

    def _worktrees_root(self) -> Path:
        root = self.config["worktrees.root"]
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

    def _session_env(self, s_id: str, project: Project, task: Task | None, cwd: str,
                     provider: Provider, yolo: bool) -> dict[str, str]:
        env = dict(self.env)
        # A session gets only its own provider's secrets: every other provider's keys and
        # planeai's own tracker tokens are removed (a shell session gets none at all).
        for name in self._secret_names(project) - set(provider.secrets):
            env.pop(name, None)
        env.update(provider.env)
        # `planeai` must be callable inside the session, from the same install as this one
        bindir = str(Path(sys.executable).parent)
        path = env.get("PATH", "")
        if bindir not in path.split(os.pathsep):
            env["PATH"] = bindir + (os.pathsep + path if path else "")
        env.update({
            "PLANEAI_SESSION_ID": s_id,
            "PLANEAI_PROJECT": project.name,
            "PLANEAI_WORKTREE": cwd,
            "PLANEAI_HOME": env.get("PLANEAI_HOME") or "",
        })
        if not env["PLANEAI_HOME"]:
            del env["PLANEAI_HOME"]  # platformdirs defaults: the same user finds the same store
        if task:
            env["PLANEAI_TASK_KEY"] = task.key
        else:
            env.pop("PLANEAI_TASK_KEY", None)
        if yolo and os.geteuid() == 0:
            # Claude Code refuses skip-permissions as root without it
            env.setdefault("IS_SANDBOX", "1")
        env.setdefault("TERM", "xterm-256color")
        for var in ("TMUX", "TMUX_PANE"):
            env.pop(var, None)
        return env

    def _secret_names(self, project: Project) -> set[str]:
        names = set(PLANEAI_SECRETS)
        for p in self.registry(project).providers.values():
            names.update(p.secrets)
        return names

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
        kind = backend or self.config["defaults.backend"]
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
                                          exited_at=now(), event="session.failed",
                                          event_data={"error": str(e)})
                self._undo_move(session, moved)
            claim.release()
            raise
        try:
            session = self.store.update_session(
                s_id, state=SessionState.RUNNING.value, pid=info.pid,
                agent_status=AgentStatus.STARTING.value, event="session.started",
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
                copy_ignored=self.config["worktrees.copy_ignored"])
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

    def wait_for_prompts(self, timeout: float = 90.0) -> None:
        """Block until pending prompt deliveries are done (the CLI, before it exits)."""
        deadline = time.monotonic() + timeout
        for t in self._deliveries:
            t.join(max(0.0, deadline - time.monotonic()))

    def skill_set(self, project: Project | None):
        from planeai.skills import load_skills, skill_dirs

        return load_skills(skill_dirs(project.path if project else None))

    def _session_skills(self, project: Project, skill: str | None) -> list:
        """The bundled planeai skill (how to use the board) plus the one asked for."""
        sset = self.skill_set(project)
        chosen = []
        if "planeai" in sset.skills:
            chosen.append(sset.skills["planeai"])
        if skill and skill != "planeai":
            chosen.append(sset.get(skill))
        return chosen

    def _template_values(self, task: Task | None, project: Project, cwd: str, s_id: str,
                         branch: str | None) -> dict[str, str | None]:
        parent = self.store.get_task(task.parent_key) if task and task.parent_key else None
        return {
            "task.key": task.key if task else "",
            "task.title": task.title if task else "",
            "task.description": task.description if task else "",
            "parent.key": parent.key if parent else "",
            "parent.title": parent.title if parent else "",
            "worktree": cwd,
            "project": project.name,
            "branch": branch or "",
            "session_id": s_id,
            "skills": "",
        }

    def _argv(self, provider: Provider, variant: Variant | None, values: dict,
              prompt: str | None, s_id: str, yolo: bool) -> tuple[list[str], str | None]:
        """The argv, and a prompt to paste after start when the command cannot carry it."""
        wants_prompt = "{prompt}" in provider.command
        wants_file = any("{prompt_file}" in el for el in provider.command)
        vals = dict(values)
        deferred = None
        if prompt:
            big = len(prompt.encode("utf-8")) > ARGV_PROMPT_LIMIT
            if wants_file or (wants_prompt and big):
                f = self.session_dir(s_id) / "prompt.md"
                f.write_text(prompt, encoding="utf-8")
                os.chmod(f, 0o600)
                vals["prompt_file"] = str(f)
                if not wants_file:
                    vals["prompt"] = (f"Your instructions are in the file {f}. "
                                      "Read it completely and follow it.")
            elif wants_prompt:
                vals["prompt"] = prompt
            else:
                deferred = prompt
        return provider.argv(vals, variant=variant, yolo=yolo), deferred

    def _deliver_when_ready(self, session: Session, provider: Provider, text: str,
                            timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                view = self.observe(session.id)
                if view.status is AgentStatus.EXITED:
                    return
                if view.status is AgentStatus.IDLE:
                    break
                time.sleep(0.1)
            self.send(session.id, text)
        except PlaneaiError as e:  # the session went away meanwhile: record, do not crash
            self.store.append_event("session.prompt_failed", project_id=session.project_id,
                                    task_key=session.task_key, session_id=session.id,
                                    data={"error": str(e)})

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

    def send(self, ref: str, text: str) -> None:
        s = self.get(ref)
        if s.state not in LIVE_STATES:
            raise ConflictError(f"session {s.name} is {s.state.value}; restart it first")
        provider = self.provider_of(s)
        be = self.backend(s.backend)
        self._wait_for_first_output(s)
        if isinstance(provider.prompt_command, tuple):
            import subprocess

            from planeai.core.templates import render_argv

            argv = render_argv(provider.prompt_command, {"prompt": text, "session_id": s.id,
                                                         "worktree": s.worktree or ""})
            subprocess.run(argv, cwd=s.worktree or None, check=True, timeout=60,
                           stdin=subprocess.DEVNULL)
        else:
            be.paste(s.name, text)
            # give the agent a beat to take the paste before the submit key
            time.sleep(0.05)
            be.send_keys(s.name, provider.submit_key)
        self.store.append_event("session.prompt", project_id=s.project_id, task_key=s.task_key,
                                session_id=s.id, data={"chars": len(text)})

    def send_prompt(self, ref: str, text: str) -> str:
        """Send a person's prompt: its ``@agent:skill`` mentions are checked against this
        project's agents and skills (ValidationError names a bad one), and the named skills'
        instructions lead the text. Returns what was sent; raises as ``send`` does."""
        from planeai.core.mentions import find_mentions
        from planeai.services.mentions import resolve
        from planeai.skills import prompt_text

        s = self.get(ref)
        project = self.store.get_project_by_id(s.project_id)
        resolved = [resolve(m, self.registry(project), self.skill_set(project))
                    for m in find_mentions(text)]
        picked = [r.skill for r in resolved if r.skill is not None]
        body = prompt_text(picked) + "\n\n" + text if picked else text
        self.send(s.id, body)
        return body

    def _wait_for_first_output(self, s: Session, timeout: float = 15.0) -> None:
        """Text typed before the agent has drawn anything can be eaten by its start-up
        (terminal mode switches, readline init), so wait until its screen is not blank."""
        be = self.backend(s.backend)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                snap = be.snapshot(s.name)
            except BackendError:
                return
            if not snap.alive or snap.text.strip():
                if snap.seconds_since_output is None or snap.seconds_since_output > 0.1:
                    return
            time.sleep(0.05)

    def observe(self, ref: str) -> SessionView:
        """Current screen and agent status; records status changes and exits."""
        s = self.get(ref)
        if s.state is SessionState.CREATED and s.pid is None:
            s = self._settle_unstarted(s)
            if s.state is SessionState.CREATED:
                return SessionView(s, AgentStatus.STARTING, None)
        if s.state not in LIVE_STATES:
            if s.state is SessionState.EXITED and s.exit_code is None:
                s = self._late_exit_code(s)
            return SessionView(s, AgentStatus.EXITED, None)
        be = self.backend(s.backend)
        try:
            snap = be.snapshot(s.name)
        except BackendError:
            return self._unreachable(s)
        provider = self.provider_of(s)
        status = classify(Observation(
            snap.text, alive=snap.alive, exit_code=snap.exit_code,
            seconds_since_output=snap.seconds_since_output,
            seconds_since_start=snap.extra.get("seconds_since_start")), provider.status)
        if not snap.alive:
            s = self._mark_exited(s, snap.exit_code, "session.exited",
                                  {"exit_code": snap.exit_code})
        elif s.agent_status != status.value:
            s = self.store.set_agent_status(s.id, status.value) or self.store.get_session(s.id)
        return SessionView(s, status, snap)

    def _late_exit_code(self, s: Session) -> Session:
        """tmux can report a pane dead a moment before it knows the exit status: fill the
        code in when the backend learns it (the pane stays until forgotten)."""
        try:
            info = self.backend(s.backend).info(s.name)
        except BackendError:
            return s
        if info is None or info.alive or info.exit_code is None:
            return s
        return self.store.update_session(s.id, exit_code=info.exit_code,
                                         event="session.exit_code",
                                         event_data={"exit_code": info.exit_code})

    def _mark_exited(self, s: Session, code: int | None, event: str, data: dict, *,
                     pid: int | None = None) -> Session:
        """Record the end once: a second observer finds it recorded and adds nothing."""
        fields: dict = dict(state=SessionState.EXITED.value, exit_code=code, exited_at=now(),
                            agent_status=AgentStatus.EXITED.value)
        if pid is not None:
            fields["pid"] = pid
        with self.store.write():
            cur = self.store.get_session(s.id)
            if cur.state not in LIVE_STATES:
                return cur
            return self.store.update_session(s.id, event=event, event_data=data, **fields)

    def _lost(self, s: Session, reason: str, *, leader: int | None = None) -> Session:
        """The backend no longer knows the session: end whatever of it still runs first
        (an agent orphaned by a dead tmux server), so "lost" always means nothing of it
        runs and a re-run can never work beside it."""
        from planeai.backends import procs

        leader = leader or s.pid
        data: dict = {"reason": reason}
        if leader:
            killed = procs.kill_session_processes(leader)
            if killed:
                data["killed_processes"] = killed
        return self._mark_exited(s, None, "session.lost", data, pid=leader)

    def _unreachable(self, s: Session) -> SessionView:
        """A snapshot failed: gone, ended, or a hiccup? Asked once more before judging."""
        be = self.backend(s.backend)
        try:
            info = be.info(s.name)
        except BackendError:
            return SessionView(s, _recorded_status(s), None)  # cannot tell now: judge nothing
        if info is not None:
            if not info.alive:
                s = self._mark_exited(s, info.exit_code, "session.exited",
                                      {"exit_code": info.exit_code})
                return SessionView(s, AgentStatus.EXITED, None)
            return SessionView(s, _recorded_status(s), None)
        if be.in_process and s.pid and _pid_alive(s.pid):
            return SessionView(s, _recorded_status(s), None)  # another planeai process runs it
        s = self._lost(s, f"{s.backend} has no session {s.name}")
        return SessionView(s, AgentStatus.EXITED, None)

    def _settle_unstarted(self, s: Session) -> Session:
        """A session reserved but never recorded as running: still being started (left
        alone), never run (its claim is aborted here, so it never will), or run by a starter
        that died before recording it (adopted, or judged by what the backend knows)."""
        claim = self._claim(s.id)
        with claim.settling() as starter_gone:
            if not starter_gone:
                return s
            s = self.store.get_session(s.id)  # the starter may have recorded it, then let go
            if s.state is not SessionState.CREATED or s.pid is not None:
                return s
            if claim.abort() or not claim.started:
                self._forget_quietly(s)
                return self._mark_exited(s, None, "session.aborted",
                                         {"reason": "start interrupted: the agent never ran"})
            leader = claim.leader()
            try:
                info = self.backend(s.backend).info(s.name)
            except BackendError:
                return s  # cannot ask now: settle it next time
            if info is not None and info.alive:
                return self.store.update_session(
                    s.id, state=SessionState.RUNNING.value, pid=info.pid,
                    agent_status=AgentStatus.STARTING.value, event="session.started",
                    event_data={"pid": info.pid, "backend": s.backend, "adopted": True})
            if info is not None:
                return self._mark_exited(s, info.exit_code, "session.exited",
                                         {"exit_code": info.exit_code}, pid=leader)
            return self._lost(s, f"{s.backend} has no session {s.name}", leader=leader)

    def _forget_quietly(self, s: Session) -> None:
        """Drop the dead pane an aborted start may have left (only on a backend this
        process already talks to: never start a server just for this)."""
        be = self._backends.get(s.backend)
        if be is None:
            return
        try:
            be.forget(s.name)
        except BackendError:
            pass

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
        return self._mark_exited(s, code, "session.stopped", {"exit_code": code})

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
            agent_status=AgentStatus.STARTING.value, event="session.restarted",
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
                                         event="session.archived")

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

    # ------------------------------------------------------------------ reconcile
    def reconcile(self, project_ids: list[int] | None = None) -> list[Session]:
        """Bring the store in line with what really runs (after a restart or a crash), for
        the given projects (all when None).

        Gone sessions are marked exited with an event (lost ones only once nothing of them
        runs); live ones are simply re-adopted: they are already in the store and the
        backend knows them by name. Sessions never recorded as running are settled by their
        claim (see _settle_unstarted)."""
        changed = []
        live = []
        for s in self.store.list_sessions(states=list(LIVE_STATES), project_ids=project_ids):
            if s.state is SessionState.CREATED and s.pid is None:
                settled = self._settle_unstarted(s)
                if settled.state is SessionState.CREATED:
                    continue  # its starter is still at it
                if settled.state is not SessionState.RUNNING:
                    changed.append(settled)
                    continue
                s = settled
            live.append(s)
        by_backend: dict[str, list[Session]] = {}
        for s in live:
            by_backend.setdefault(s.backend, []).append(s)
        for kind, sessions in by_backend.items():
            if kind not in backend_registry.NAMES:
                continue  # a backend this version does not have: nothing to ask
            # Opening may raise (tmux uninstalled): the pass fails visibly, judging nothing.
            # An in-process backend this process never opened is opened empty and so says
            # none of its sessions is here (costs one idle thread).
            be = self.backend(kind)
            try:
                running = be.survey()
            except BackendError:
                continue  # could not ask this time: judge nothing, try again later
            for s in sessions:
                info = running.get(s.name)
                if info is None:
                    if be.in_process and s.pid and _pid_alive(s.pid):
                        continue  # owned by another planeai process that is still running
                    changed.append(self._lost(s, be.lost_reason))
                elif not info.alive:
                    changed.append(self._mark_exited(
                        s, info.exit_code, "session.exited", {"exit_code": info.exit_code}))
        return changed


def _recorded_status(s: Session) -> AgentStatus:
    """The last status seen of a session that is live in the store (never "exited": that is
    for the backend to say, not for a guess)."""
    try:
        status = AgentStatus(s.agent_status) if s.agent_status else AgentStatus.STARTING
    except ValueError:
        return AgentStatus.STARTING
    return AgentStatus.STARTING if status is AgentStatus.EXITED else status


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
