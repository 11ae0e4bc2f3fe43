"""What a session start runs: the agent's argv (prompt inline or in a file), its
environment (no secrets: its own provider's reach it through a private file, see
``_with_secrets``), the skills installed into it, and where its
worktree starts (its parent's branch, its done blockers' work merged in).

A part of ``SessionManager`` (planeai.services.sessions), kept apart because it decides
what reaches the agent's process, which is where hostile task text and secrets meet.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from planeai.core.models import Project, Status, Task
from planeai.errors import PlaneaiError
from planeai.providers import Provider, Variant

# Prompts longer than this go through a file: Linux caps one argv element at 128 KiB.
ARGV_PROMPT_LIMIT = 64 * 1024
# planeai's own credentials (tracker sync): never handed to an agent's session.
PLANEAI_SECRETS = ("JIRA_API_TOKEN", "PLANE_API_KEY", "PLANE_WEBHOOK_SECRET")
# The session's secrets on their way to its agent (see _with_secrets): gone once it started.
SECRETS_FILE = "secrets.env"


class SessionPlanning:
    """Mixed into SessionManager: needs ``env``, ``config``, ``locs``, ``store``,
    ``registry()``, ``session_dir()``."""

    def _session_env(self, s_id: str, project: Project, task: Task | None, cwd: str,
                     provider: Provider, yolo: bool) -> dict[str, str]:
        env = dict(self.env)
        # No secret travels in the session's environment (tmux shows it, the daemon's socket
        # carries it): every provider's keys and planeai's own tracker tokens are removed
        # here, and the session's own provider's reach its agent through a private file
        # (_with_secrets). A shell session gets none at all.
        for name in self._secret_names(project) | set(provider.secrets):
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
        if self.config.explicit is not None:
            # the agent's own `planeai` calls read the config its session was started with
            # (defaults, hooks), not only the user file
            env["PLANEAI_CONFIG"] = str(self.config.explicit)
        if task:
            env["PLANEAI_TASK_KEY"] = task.key
        else:
            env.pop("PLANEAI_TASK_KEY", None)
        if yolo and os.geteuid() == 0:
            # Claude Code refuses skip-permissions as root unless IS_SANDBOX is exactly "1"
            # (2.1.197: `process.env.IS_SANDBOX!=="1"`): an inherited "yes" or "true" made it
            # exit at once. Only an explicit "0" keeps the user's no.
            if env.get("IS_SANDBOX") != "0":
                env["IS_SANDBOX"] = "1"
        env.setdefault("TERM", "xterm-256color")
        for var in ("TMUX", "TMUX_PANE"):
            env.pop(var, None)
        return env

    def _with_secrets(self, s_id: str, provider: Provider, argv: list[str]) -> list[str]:
        """``argv`` behind the secrets step (planeai.secrets.STEP) when ``provider`` has
        secrets to hand over: its values (stored, else from planeai's environment; see
        planeai.services.secrets) go to a 0600 file in the session's dir that the step
        deletes and exports right before it execs the agent. Same for every backend."""
        from planeai.secrets import remove_env_file, step_argv, write_env_file
        from planeai.services.secrets import Secrets

        path = self.session_dir(s_id) / SECRETS_FILE
        remove_env_file(path)
        values = Secrets(self.config, self.locs).for_provider(provider, self.env)
        if not values:
            return argv
        write_env_file(path, values)
        return step_argv(path, argv)

    def stored_secrets(self, provider: Provider) -> tuple[str, ...]:
        """Names of ``provider``'s secrets stored with `planeai secret set` (for the
        usability check: a stored key counts like one in the environment)."""
        from planeai.services.secrets import Secrets

        return Secrets(self.config, self.locs).stored_names(provider)

    def _drop_secrets(self, s_id: str, remote=None) -> None:
        """A start that did not spawn: its secrets file must not stay behind (nor, on a
        host, the file there and its relay token)."""
        from planeai.secrets import remove_env_file
        from planeai.services import sandbox

        remove_env_file(self._session_path(s_id) / SECRETS_FILE)
        sandbox.discard(self._session_path(s_id))
        if remote is not None:
            self._drop_remote(remote, s_id)

    def _sandboxed(self, session, provider: Provider, cwd: str, argv: list[str],
                   env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
        """The session's terminal runs the sandbox supervisor, which runs ``argv`` in the
        provider's image (planeai.services.sandbox): (launch argv, session env)."""
        from planeai.services import sandbox
        from planeai.services.secrets import Secrets

        values = Secrets(self.config, self.locs).for_provider(provider, self.env)
        prepared = sandbox.prepare(
            config=self.config, locs=self.locs, session=session,
            session_dir=self.session_dir(session.id), provider=provider, cwd=cwd, argv=argv,
            env=env, secret_values=values, host_env=dict(self.env))
        return prepared.launch, prepared.env

    def sandboxed(self, session) -> bool:
        """Whether the session's agent runs in a container."""
        from planeai.services import sandbox

        return sandbox.is_sandboxed(self._session_path(session.id))

    def _remove_container(self, session) -> None:
        from planeai.services import sandbox

        sandbox.remove_container(session, self._session_path(session.id))

    def _secret_names(self, project: Project) -> set[str]:
        names = set(PLANEAI_SECRETS)
        for p in self.registry(project).providers.values():
            names.update(p.secrets)
        return names

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

    def _agent_argv(self, provider: Provider, variant: Variant | None, values: dict,
                    skills: list, prompt: str | None, autonomous: bool, skill: str | None,
                    s_id: str, yolo: bool) -> tuple[list[str], str | None]:
        """The agent's argv and deferred prompt: the skills' text in the template values,
        the autonomous prompt (or, for a session started for a skill, its instructions
        leading the prompt), then ``_argv``. The same here and on a host."""
        from planeai.skills import prompt_text

        values["skills"] = prompt_text(skills)
        if autonomous and prompt is None:
            prompt = provider.autonomous_prompt(values)
        elif prompt is not None and skill is not None:
            # an interactive session started for a skill: its instructions lead the prompt
            prompt = prompt_text([s for s in skills if s.trigger == skill]) + "\n\n" + prompt
        return self._argv(provider, variant, values, prompt, s_id, yolo)

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

    def _parent_branch(self, task: Task) -> str | None:
        """A subtask starts from its parent's work (worktrees.subtasks_from_parent): the
        branch of the parent's newest session, while that branch exists."""
        from planeai.git import worktrees as wt

        if not task.parent_key or not self.config.worktrees.subtasks_from_parent:
            return None
        project = self.store.get_project_by_id(task.project_id)
        for s in reversed(self.store.sessions_for_task(task.parent_key)):
            if s.branch and s.backend.startswith("host:"):
                try:
                    self.fetch_remote_branch(s)  # the parent's work is on its host
                except PlaneaiError:
                    pass  # unreachable, or diverged here: what is here is used
            if s.branch and wt.branch_exists(project.path, s.branch):
                return s.branch
        return None

    def _stack(self, project: Project, task: Task, w) -> None:
        """Merge the work of done blockers that has not reached the start point yet into a
        new worktree (planeai.git.worktrees.stack). On a conflict the new worktree goes again
        (it holds nothing) and StartPointConflict says which files."""
        from planeai.git import worktrees as wt

        under = []
        for key in task.blocked_by:
            blocker = self.store.get_task(key)
            if blocker.status is not Status.DONE:
                continue
            for s in reversed(self.store.sessions_for_task(key)):
                if s.branch and wt.branch_exists(project.path, s.branch):
                    under.append(wt.Underlying(key, s.branch))
                    break
        if not under:
            return
        try:
            wt.stack_onto(w.path, task.key, under)
        except wt.StartPointConflict:
            try:
                wt.remove_worktree(project.path, w.path)
            except PlaneaiError:
                pass
            raise
