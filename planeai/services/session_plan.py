"""What a session start runs: the agent's argv (prompt inline or in a file), its
environment (only its own provider's secrets) and the skills installed into it.

A part of ``SessionManager`` (planeai.services.sessions), kept apart because it decides
what reaches the agent's process, which is where hostile task text and secrets meet.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from planeai.core.models import Project, Task
from planeai.providers import Provider, Variant

# Prompts longer than this go through a file: Linux caps one argv element at 128 KiB.
ARGV_PROMPT_LIMIT = 64 * 1024
# planeai's own credentials (tracker sync): never handed to an agent's session.
PLANEAI_SECRETS = ("JIRA_API_TOKEN", "PLANE_API_KEY", "PLANE_WEBHOOK_SECRET")


class SessionPlanning:
    """Mixed into SessionManager: needs ``env``, ``store``, ``registry()``, ``session_dir()``."""

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
