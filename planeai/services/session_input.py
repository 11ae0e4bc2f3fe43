"""Prompts and keys to a live agent: paste-and-submit, prompts with a skill's instructions,
and the delivery of a start prompt that the agent's command line cannot carry.

A part of ``SessionManager`` (planeai.services.sessions).
"""

from __future__ import annotations

import time

from planeai.core import events as ev
from planeai.core.models import LIVE_STATES, Session
from planeai.core.status import AgentStatus
from planeai.errors import BackendError, ConflictError, PlaneaiError
from planeai.providers import Provider


class SessionInput:
    """Mixed into SessionManager: needs ``get()``, ``backend()``, ``observe()``, ``store``."""

    def wait_for_prompts(self, timeout: float = 90.0) -> None:
        """Block until pending prompt deliveries are done (the CLI, before it exits)."""
        deadline = time.monotonic() + timeout
        for t in self._deliveries:
            t.join(max(0.0, deadline - time.monotonic()))

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
            self.store.append_event(ev.SESSION_PROMPT_FAILED, project_id=session.project_id,
                                    task_key=session.task_key, session_id=session.id,
                                    data={"error": str(e)})

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
        self.store.append_event(ev.SESSION_PROMPT, project_id=s.project_id, task_key=s.task_key,
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
