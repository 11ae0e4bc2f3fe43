"""Sessions on another machine ([hosts.NAME]): what a start does there instead of here.

A part of ``SessionManager`` (planeai.services.sessions). The board, the claim's lock and the
decisions stay on this machine; the host gets the work: the start point shipped to its clone
and a worktree made there (planeai.remote.workspace), the skills written into it, the prompt
file and the secrets file in the session's private dir there (data on stdin, never a word of a
command line on either machine), and the agent started in the host's tmux behind the same
claim and secrets steps as here (planeai.backends.remote). ``planeai`` inside the session is
a small client that reaches this board over a socket the host's SSH connection forwards
(planeai.remote.relay), with the session's own identity.
"""

from __future__ import annotations

import json
import posixpath
from pathlib import Path

from planeai.backends.remote import RemoteTmuxBackend, host_of
from planeai.core.models import Project, Session, Task
from planeai.errors import BackendError, ConflictError, PlaneaiError, ProviderError
from planeai.providers import Provider, Variant
from planeai.services.claims import _STEP as CLAIM_STEP, Claim

# What of planeai's own environment a remote agent gets: nothing of this machine's paths or
# home; the session's identity and the terminal's settings.
_KEEP = ("TERM", "COLORTERM", "LANG", "TZ")
_GIT_IDENTITY = ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME",
                 "GIT_COMMITTER_EMAIL")
# $1 worktree, then paths relative to it: each added to the repo's info/exclude once
_EXCLUDE = ('cd -- "$1" || exit 1; shift; f=$(git rev-parse --git-path info/exclude) '
            '|| exit 1; mkdir -p -- "$(dirname -- "$f")" || exit 1; '
            'for p; do grep -qxF -- "$p" "$f" 2>/dev/null || printf "%s\\n" "$p" >> "$f"; '
            'done')
# $1 the provider's state dir there, then paths under the login's HOME: seeded once, copied
# (never linked), only real files and dirs
_SEED = ('d=$1; shift; umask 077; mkdir -p -- "$d" && chmod 700 -- "$d" || exit 1; '
         '[ -e "$d/.planeai-seeded" ] && exit 0; '
         'for p; do case "$p" in /*|*..*) continue;; esac; '
         '[ -e "$HOME/$p" ] && [ ! -L "$HOME/$p" ] || continue; '
         'mkdir -p -- "$d/$(dirname -- "$p")" && cp -a -- "$HOME/$p" "$d/$p"; done; '
         'echo "seeded from the login\'s own state; edit freely" > "$d/.planeai-seeded"')
SUPERVISOR = Path(__file__).resolve().parent.parent / "remote" / "planeai-sandbox.py"
# $1 session dir: made private, with the claim in it
_CLAIM = 'umask 077; mkdir -p -- "$1" && : > "$1/claim" && rm -f -- "$1/started" "$1/aborted"'


class RemoteClaim(Claim):
    """The claim of a session on a host: the lock ``starting`` stays here (the starter is
    here), the files the claim step renames are in the session's dir there."""

    def __init__(self, directory: Path, backend: RemoteTmuxBackend, remote_dir: str) -> None:
        super().__init__(directory)
        self.be = backend
        self.remote_dir = remote_dir

    def put(self) -> None:
        """Write ``claim`` there (before anything can run)."""
        self.be.run(["sh", "-c", _CLAIM, "sh", self.remote_dir], check=True)

    def wrap(self, argv: list[str]) -> list[str]:
        return ["/bin/sh", "-c", CLAIM_STEP, self.remote_dir, *argv]

    def abort(self) -> bool:
        """BackendError when the host cannot be asked (nothing can be judged then)."""
        r = self.be.run(["mv", "--", f"{self.remote_dir}/claim", f"{self.remote_dir}/aborted"])
        return r.ok

    @property
    def started(self) -> bool:
        return self.be.run(["test", "-e", f"{self.remote_dir}/started"]).ok

    def leader(self) -> int | None:
        r = self.be.run(["cat", "--", f"{self.remote_dir}/leader"])
        text = r.out.split()[0] if r.ok and r.out.split() else ""
        return int(text) if text.isdigit() else None


class SessionRemote:
    """Mixed into SessionManager: needs ``backend()``, ``store``, ``config``, ``locs``,
    ``env`` and the planning helpers of SessionPlanning."""

    def remote_backend(self, kind: str) -> RemoteTmuxBackend | None:
        """The host backend of a ``host:NAME`` kind, else None."""
        if host_of(kind) is None:
            return None
        be = self.backend(kind)
        return be if isinstance(be, RemoteTmuxBackend) else None

    def workspace(self, be: RemoteTmuxBackend):
        from planeai.remote.workspace import RemoteWorkspace

        return RemoteWorkspace(be.conn, be.host)

    def remote_session_dir(self, be: RemoteTmuxBackend, s_id: str) -> str:
        return f"{be.root()}/sessions/{s_id}"

    def _claim(self, session_id: str) -> Claim:
        """The session's claim: here, or split between here and its host."""
        local = self._session_path(session_id)
        try:
            s = self.store.get_session(session_id)
        except PlaneaiError:
            return Claim(local)
        be = self.remote_backend(s.backend)
        if be is None:
            return Claim(local)
        return RemoteClaim(local, be, self.remote_session_dir(be, session_id))

    # ------------------------------------------------------------------ start
    def _prepare_remote(self, be: RemoteTmuxBackend, session: Session, project: Project,
                        task: Task | None, provider: Provider, variant: Variant | None,
                        worktree: bool, yolo: bool, prompt: str | None, autonomous: bool,
                        skill: str | None, progress, sandboxed: bool = False):
        """The remote twin of ``_prepare`` + secrets + claim: (cwd there, branch, the
        agent's argv, the launch argv, env, deferred prompt, claim)."""
        from planeai.git import worktrees as wt

        ws = self.workspace(be)
        name, s_id = session.name, session.id
        host = be.host.name
        if progress is not None:
            progress(f"preparing {name} on host {host}")
        repo = ws.ensure_repo(project.name, project.key_prefix)
        # planeai's clone there is bare: a session without a worktree runs in planeai's dir
        cwd, branch = be.root(), None
        if worktree and task is not None:
            start_point = (self._parent_branch(task) or task.base_branch
                           or project.default_branch or "HEAD")
            branch = wt.branch_for(name, task.title)
            if progress is not None:
                progress(f"making the worktree of {name} on host {host} (branch {branch})")
            sha = ws.ship(repo, Path(project.path), start_point)
            cwd, _created = ws.create_worktree(repo, name, branch, sha)

        values = self._template_values(task, project, cwd, s_id, branch)
        skills = self._session_skills(project, skill)
        if skills and worktree and task is not None:
            self._install_skills_remote(be, ws, cwd, skills, provider)
        argv, deferred = self._agent_argv(provider, variant, values, skills, prompt,
                                          autonomous, skill, s_id, yolo)
        rdir = self.remote_session_dir(be, s_id)
        local_prompt = self._session_path(s_id) / "prompt.md"
        if local_prompt.exists():
            # the prompt went to a file: the agent reads it there, from the session's dir
            remote_prompt = f"{rdir}/prompt.md"
            ws.write_private(remote_prompt, local_prompt.read_bytes())
            argv = [a.replace(str(local_prompt), remote_prompt) for a in argv]
            local_prompt.unlink()

        env = self._remote_env(be, s_id, project, task, cwd, provider, yolo,
                               sandboxed=sandboxed)
        claim = RemoteClaim(self._session_path(s_id), be, rdir)
        if sandboxed:
            launch, env = self._sandboxed_remote(be, ws, session, provider, cwd, argv, env, rdir)
            claim.put()
            return cwd, branch, argv, claim.wrap(launch), env, deferred
        found = be.run(["sh", "-c", 'PATH="$1"; command -v -- "$2"', "sh", env["PATH"], argv[0]])
        if not found.ok:
            hint = f"; install it there: {provider.install_hint}" if provider.install_hint else ""
            raise ProviderError(f"{provider.display_name} CLI {argv[0]!r} not found on host "
                                f"{host}{hint}")
        claim.put()
        launch = self._remote_secrets(be, ws, rdir, provider, claim.wrap(argv))
        return cwd, branch, argv, launch, env, deferred

    def _remote_env(self, be: RemoteTmuxBackend, s_id: str, project: Project,
                    task: Task | None, cwd: str, provider: Provider, yolo: bool, *,
                    sandboxed: bool = False) -> dict[str, str]:
        """The environment the agent gets there: the host's own PATH with planeai's client
        first, the session's identity, the relay that reaches this board, the provider's
        env; nothing of this machine's (no secrets: see _remote_secrets)."""
        from planeai.remote import relay

        root = be.root()
        env = {k: self.env[k] for k in _KEEP if self.env.get(k)}
        from planeai.services.sandbox import git_identity

        # commits there carry the user's identity (the host login may have none): from
        # planeai's environment, else the repo's git config here
        env.update({k: v for k, v in self.env.items() if k in _GIT_IDENTITY})
        env.update(git_identity(project.path, self.env))
        env.update(provider.env)
        env.setdefault("TERM", "xterm-256color")
        if yolo and be.remote_uid() == 0 and self.env.get("IS_SANDBOX") != "0":
            env["IS_SANDBOX"] = "1"  # as here (session_plan): Claude Code refuses root else
        identity = {"PLANEAI_SESSION_ID": s_id, "PLANEAI_PROJECT": project.name,
                    "PLANEAI_HOST": be.host.name}
        if task is not None:
            identity["PLANEAI_TASK_KEY"] = task.key
        # what a `planeai task ...` from there runs with here: this session's identity and
        # this machine's store and config
        local = {k: v for k, v in self.env.items()
                 if k in ("PATH", "HOME", "LANG", "PLANEAI_HOME", "USER", "LOGNAME")}
        if self.config.explicit is not None:
            local["PLANEAI_CONFIG"] = str(self.config.explicit)
        # work handed out from inside a container stays in one (as the local inbox does)
        boxed = {"PLANEAI_FROM_SANDBOX": "1"} if sandboxed else {}
        token = relay.register_session(self.locs, be.host.name, s_id,
                                       {**local, **identity, "PLANEAI_WORKTREE": cwd, **boxed},
                                       cwd=project.path)
        socket = relay.ensure_relay(be.host, self.locs, dict(self.env))
        client = relay.install_client(be.conn, root)
        env.update(identity)
        env.update({"PLANEAI_WORKTREE": cwd, "PLANEAI_RELAY_SOCKET": socket,
                    "PLANEAI_RELAY_TOKEN": token,
                    "PATH": posixpath.dirname(client) + ":" + be.remote_path()})
        return env

    def _remote_secrets(self, be: RemoteTmuxBackend, ws, rdir: str, provider: Provider,
                        argv: list[str], *, path: str = "", inside: str = "") -> list[str]:
        """``argv`` behind the secrets step, its file written there on stdin (0600) at
        ``path`` (default: the session's dir); ``inside``: where the step finds it (a
        container's view of the same file)."""
        from planeai.secrets import NAME_RE, STEP, SecretError
        from planeai.services.secrets import Secrets

        values = Secrets(self.config, self.locs).for_provider(provider, self.env)
        if not values:
            return argv
        lines = []
        for k, v in values.items():
            if not NAME_RE.match(k) or any(c in v for c in "\n\r\0"):
                raise SecretError(f"secret {k} cannot be passed to a session: names are "
                                  "letters, digits and _; a value is one line")
            lines.append(f"{k}={v}\n")
        path = path or f"{rdir}/secrets.env"
        ws.write_private(path, "".join(lines).encode("utf-8"))
        return ["/bin/sh", "-c", STEP, inside or path, *argv]

    def _sandboxed_remote(self, be: RemoteTmuxBackend, ws, session: Session,
                          provider: Provider, cwd: str, argv: list[str], env: dict[str, str],
                          rdir: str) -> tuple[list[str], dict[str, str]]:
        """The agent in a container on the host, as planeai.services.sandbox.prepare does
        here: the same ``docker run`` plan with the host's paths and uid, the provider's
        state dir there seeded from the host login's own files, the session's inbox served
        by ROOT/bin/planeai-sandbox over the relay. (launch argv, env)."""
        from planeai.sandbox.container import (SECRETS_DIR, ContainerPlan, Limits,
                                               container_name, store_label)
        from planeai.services import sandbox as sandboxing

        image = provider.image
        have = be.run(["docker", "image", "inspect", "--format", "{{.Id}}", image])
        if not have.ok:
            raise ConflictError(f"the sandbox image {image} is missing on host {be.host.name} "
                                f"(or docker is not usable there: {_said(have)}); build it "
                                "there, or start with --no-sandbox")
        root = be.root()
        state = f"{root}/sandbox/state/{provider.name}"
        be.run(["sh", "-c", _SEED, "sh", state, *provider.sandbox_state], check=True)
        inbox, secrets_dir = f"{rdir}/inbox", f"{rdir}/secrets"
        be.run(["sh", "-c", 'umask 077; mkdir -p -- "$1" "$2" && chmod 700 -- "$1" "$2"',
                "sh", inbox, secrets_dir], check=True)
        ws.write_files(rdir, {"planeai-client": sandboxing.CLIENT.read_bytes()}, mode=0o755)
        ws.write_files(f"{root}/bin", {"planeai-sandbox": SUPERVISOR.read_bytes()}, mode=0o755)
        inner = self._remote_secrets(be, ws, rdir, provider, argv,
                                     path=f"{secrets_dir}/{sandboxing.SECRETS_FILE}",
                                     inside=f"{SECRETS_DIR}/{sandboxing.SECRETS_FILE}")
        env = dict(env)
        env["IS_SANDBOX"] = "1"
        sb = self.config.sandbox
        names = [n for n in dict.fromkeys((*sandboxing.BASE_ENV, *provider.env,
                                           *provider.sandbox_env, *sb.env)) if n in env]
        git_dir = be.run(["git", "-C", cwd, "rev-parse", "--path-format=absolute",
                          "--git-common-dir"]).out.strip() or None
        protected: tuple[str, ...] = ()
        if git_dir:
            protected = tuple(p for p in ("config", "hooks")
                              if be.run(["test", "-e", f"{git_dir}/{p}"]).ok)
        plan = ContainerPlan(
            name=container_name(session.name, session.id), image=image,
            session_id=session.id, session_name=session.name, task_key=session.task_key or "",
            store_label=store_label(self.locs.db_path), cwd=cwd, git_dir=git_dir,
            state_dir=state, inbox_dir=inbox, secrets_dir=secrets_dir,
            client=f"{rdir}/planeai-client", argv=inner, env_names=names,
            limits=Limits(memory=sb.memory, cpus=sb.cpus, pids=sb.pids, network=sb.network,
                          tmp_size=sb.tmp_size),
            user=f"{be.remote_uid()}:{be.remote_gid()}", git_protected=protected)
        spec = {"container": plan.name, "image": image, "inbox": inbox, "cwd": cwd,
                "secrets_dir": secrets_dir, "secrets_file": sandboxing.SECRETS_FILE,
                "docker_args": plan.argv_for_docker()}
        spec_path = f"{rdir}/{sandboxing.SPEC}"
        ws.write_private(spec_path, json.dumps(spec).encode("utf-8"))
        # here too, so `sandboxed()` and stop know it (with the host it runs on)
        local = self.session_dir(session.id) / sandboxing.SPEC
        local.write_text(json.dumps({**spec, "host": be.host.name}), encoding="utf-8")
        return ["python3", f"{root}/bin/planeai-sandbox", spec_path], env

    def _remove_container(self, session) -> None:
        """A sandboxed session on a host: its container there goes (its supervisor removes
        it on SIGTERM; a SIGKILL left it)."""
        be = self.remote_backend(session.backend)
        if be is None:
            super()._remove_container(session)  # type: ignore[misc]
            return
        from planeai.services import sandbox as sandboxing

        spec_file = self._session_path(session.id) / sandboxing.SPEC
        try:
            name = json.loads(spec_file.read_text(encoding="utf-8"))["container"]
        except (OSError, ValueError, KeyError):
            return
        try:
            be.run(["docker", "rm", "-f", name])
        except BackendError:
            pass

    def _install_skills_remote(self, be: RemoteTmuxBackend, ws, cwd: str, skills: list,
                               provider: Provider) -> None:
        """planeai.skills.install, there: the user's tracked files win; ours are excluded
        from commits (the repo's info/exclude)."""
        from planeai.skills import SECTION_BEGIN, SECTION_END

        files: dict[str, bytes] = {}
        if provider.skills_dir:
            base = provider.skills_dir.strip("/")
            for s in skills:
                files[f"{base}/{s.name}/SKILL.md"] = s.text.encode("utf-8")
        elif provider.instructions_file:
            text = ""
            for s in skills:
                begin, end = SECTION_BEGIN.format(name=s.name), SECTION_END.format(name=s.name)
                text += ("\n" if text else "") + f"{begin}\n{s.body.rstrip()}\n{end}\n"
            files[provider.instructions_file.strip("/")] = text.encode("utf-8")
        if not files:
            return
        tracked = be.run(["git", "-C", cwd, "ls-files", "--", *files])
        for rel in tracked.out.splitlines() if tracked.ok else list(files):
            files.pop(rel.strip(), None)  # the user's own (or unknowable): theirs wins
        if not files:
            return
        ws.write_files(cwd, files)
        excludes = sorted({"/" + (rel.rsplit("/", 1)[0] + "/" if provider.skills_dir else rel)
                           for rel in files})
        be.run(["sh", "-c", _EXCLUDE, "sh", cwd, *excludes], check=True)

    def _restart_remote(self, be: RemoteTmuxBackend, s: Session, project: Project,
                        task: Task | None, provider: Provider, yolo: bool | None) -> Session:
        """``restart`` of a session on a host: the same argv in its worktree there, with a
        fresh relay token and secrets file."""
        from planeai.backends.base import SpawnSpec
        from planeai.core import events as ev
        from planeai.core.models import SessionState
        from planeai.core.status import AgentStatus
        from planeai.errors import ConflictError
        from planeai.services.dialogs import yolo_used

        cwd = s.worktree or be.root()
        if not be.run(["test", "-d", cwd]).ok:
            raise ConflictError(f"worktree {cwd} of {s.name} on host {be.host.name} is gone; "
                                "start a new session")
        yolo = bool(yolo) or yolo_used(s, provider)
        boxed = self.sandboxed(s)
        env = self._remote_env(be, s.id, project, task, cwd, provider, yolo, sandboxed=boxed)
        rdir = self.remote_session_dir(be, s.id)
        ws = self.workspace(be)
        if boxed:
            launch, env = self._sandboxed_remote(be, ws, s, provider, cwd, list(s.argv), env,
                                                 rdir)
        else:
            launch = self._remote_secrets(be, ws, rdir, provider, list(s.argv))
        try:
            info = be.spawn(SpawnSpec(s.name, launch, cwd, env))
        except BaseException:
            self._drop_remote(be, s.id)
            raise
        return self.store.update_session(
            s.id, state=SessionState.RUNNING.value, exit_code=None, exited_at=None,
            pid=info.pid, owner=None, agent_status=AgentStatus.STARTING.value,
            event=ev.SESSION_RESTARTED, event_data={"pid": info.pid})

    def _delete_remote_worktree(self, be: RemoteTmuxBackend, s: Session, force: bool
                                ) -> str | None:
        """``delete``'s worktree part for a session on a host: the same never-lose-work
        rules there (a forced removal's recovery ref is fetched back here). Returns the
        recovery ref."""
        from planeai.core.models import LIVE_STATES
        from planeai.errors import WorktreeError

        if not s.worktree:
            return None
        others = [o for o in self.store.list_sessions()
                  if o.worktree == s.worktree and o.id != s.id and o.backend == s.backend]
        if others or not be.run(["test", "-d", s.worktree]).ok:
            return None
        ws = self.workspace(be)
        project = self.store.get_project_by_id(s.project_id)
        if not force:
            losses = ws.removal_losses(s.worktree)
            if losses:
                raise WorktreeError(
                    f"{s.name}'s worktree {s.worktree} on host {be.host.name} holds work that "
                    f"would be lost: {', '.join(losses)}; commit or push it, or pass --force "
                    "(keeps it in a recovery ref here)")
        if s.state in LIVE_STATES:
            self.stop(s.id)
        repo = ws.ensure_repo(project.name, project.key_prefix)
        return ws.remove_worktree(repo, s.worktree, force=force, local_repo=Path(project.path),
                                  branch=s.branch)

    def fetch_remote_branch(self, s: Session) -> str | None:
        """Bring a remote session's branch into the local repo (for review and delivery);
        the sha, or None for a session that is not remote or has no branch."""
        be = self.remote_backend(s.backend)
        if be is None or not s.branch:
            return None
        ws = self.workspace(be)
        project = self.store.get_project_by_id(s.project_id)
        repo = ws.ensure_repo(project.name, project.key_prefix)
        return ws.fetch_branch(Path(project.path), repo, s.branch)

    def _drop_remote(self, be: RemoteTmuxBackend, s_id: str) -> None:
        """A start that did not spawn: its secrets file and relay token go."""
        from planeai.remote import relay

        try:
            be.run(["rm", "-f", "--", f"{self.remote_session_dir(be, s_id)}/secrets.env"])
        except BackendError:
            pass
        relay.unregister_session(self.locs, s_id)

    def session_ended_remote(self, s: Session) -> None:
        """A remote session ended: its relay token goes (its `planeai` is refused after)."""
        if host_of(s.backend) is None:
            return
        from planeai.remote import relay

        try:
            relay.unregister_session(self.locs, s.id)
        except OSError:
            pass


def _said(r) -> str:
    lines = [ln.strip() for ln in (r.err or r.out).splitlines() if ln.strip()]
    return lines[-1][:200] if lines else f"exit {r.rc}"
