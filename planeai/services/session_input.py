"""Prompts and keys to a live agent: paste-and-submit, prompts with a skill's instructions,
and the delivery of a start prompt that the agent's command line cannot carry.

A part of ``SessionManager`` (planeai.services.sessions).

A person's prompt is typed only into an agent at its prompt (idle): typed into a permission
dialog, a paste and its Enter would answer the dialog instead. So ``send_prompt`` waits a
bounded time for idle, refuses with the question on screen when the agent needs input, and
afterwards says whether the agent really took the prompt (went to work).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

from planeai.backends.base import KEYS_ACCEPTED, unknown_keys
from planeai.core import events as ev
from planeai.core.models import LIVE_STATES, Session
from planeai.core.status import AgentStatus, shows_busy
from planeai.errors import BackendError, ConflictError, PlaneaiError, ValidationError
from planeai.providers import Provider

# Statuses that mean the agent took a prompt: it works on it, or already asks about it.
_TOOK_IT = (AgentStatus.BUSY, AgentStatus.NEEDS_INPUT)
BUSY_HOLD = 0.3  # seconds busy that count as taken to work (see send_prompt)
_POLL = 0.1  # seconds between looks at the screen while waiting


class SendRefused(ConflictError):
    """Nothing was sent: the agent is not at its prompt. ``status`` is what it was doing;
    ``question`` the dialog on its screen when it needs input (else empty)."""

    def __init__(self, message: str, *, session: str, status: AgentStatus,
                 question: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.session = session
        self.status = status
        self.question = list(question)


@dataclass
class SendResult:
    """What became of a prompt: typed, and did the agent take it?"""

    session: Session
    text: str                 # what was typed (skill instructions included)
    delivered: bool           # the agent went busy (or asked about it) after the submit key
    status: AgentStatus       # its status when planeai stopped watching
    watched: float            # seconds planeai watched for it to start
    question: list[str] = field(default_factory=list)  # when it went to needs input

    def as_dict(self) -> dict:
        return {"session": self.session.name, "delivered": self.delivered,
                "status": self.status.value, "chars": len(self.text),
                "question": self.question}


def check_keys(keys: Sequence[str]) -> list[str]:
    """The keys, or ValidationError naming the first one no backend accepts."""
    if not keys:
        raise ValidationError(f"no keys given; accepted: {KEYS_ACCEPTED}")
    bad = unknown_keys(list(keys))
    if bad:
        raise ValidationError(f"unknown key {bad[0]!r}; accepted: {KEYS_ACCEPTED}")
    return list(keys)


_RULE = re.compile(r"^\s*[─━═\-_]{20,}\s*$")


def screen_question(screen: str, max_lines: int = 12) -> list[str]:
    """The dialog at the bottom of an agent's screen: its last non-empty lines, from the
    last horizontal rule above them (agent CLIs frame dialogs with one), at most
    ``max_lines`` of them, common indentation removed."""
    # printable only: the lines go to a person's terminal, never as escape sequences
    lines = ["".join(c if c.isprintable() else " " for c in ln).rstrip()
             for ln in screen.splitlines()]
    while lines and not lines[-1].strip():
        lines.pop()
    tail = lines[-(max_lines * 3):]
    for i in range(len(tail) - 1, -1, -1):
        if _RULE.match(tail[i]):
            if any(x.strip() for x in tail[i + 1:]):
                tail = tail[i + 1:]
            break
    picked = [ln for ln in tail if ln.strip()][-max_lines:]
    indent = min((len(ln) - len(ln.lstrip()) for ln in picked), default=0)
    return [ln[indent:] for ln in picked]


class SessionInput:
    """Mixed into SessionManager: needs ``get()``, ``backend()``, ``observe()``, ``store``."""

    def wait_for_prompts(self, timeout: float = 90.0) -> None:
        """Block until pending prompt deliveries are done (the CLI, before it exits)."""
        deadline = time.monotonic() + timeout
        for t in self._deliveries:
            t.join(max(0.0, deadline - time.monotonic()))

    def await_status(self, ref: str, done: Callable, timeout: float):
        """Poll the agent's real status (``observe``) until ``done(view)`` holds or
        ``timeout`` seconds have passed; the last view either way (one look when 0)."""
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            view = self.observe(ref)
            if done(view) or time.monotonic() >= deadline:
                return view
            time.sleep(_POLL)

    def settle(self, sessions: list[Session], timeout: float = 60.0) -> dict[str, AgentStatus]:
        """Watch new sessions until each is past its start: working, at its prompt, exited, or
        at a question no dialog policy answers (observing answers the ones that have one:
        planeai.services.dialogs). For a command that starts agents and exits (`planeai run`):
        nobody else may be looking when an agent meets its first-run dialogs. Returns each
        session's status (STARTING when ``timeout`` ran out first)."""
        out = {}
        deadline = time.monotonic() + timeout
        for s in sessions:
            view = self.await_status(
                s.id, lambda v: v.status not in (AgentStatus.STARTING,),
                max(0.0, deadline - time.monotonic()))
            out[s.name] = view.status
        return out

    def _deliver_when_ready(self, session: Session, provider: Provider, text: str,
                            timeout: float = 60.0) -> None:
        """A start prompt the command line cannot carry: typed once the agent is at its
        prompt. Never into a dialog: an agent still asking when the time is up gets
        nothing, and the log says why (a busy or still blank one gets it then, as before)."""
        try:
            view = self.await_status(
                session.id, lambda v: v.status in (AgentStatus.IDLE, AgentStatus.EXITED),
                timeout)
            if view.status is AgentStatus.EXITED:
                return
            if view.status is AgentStatus.NEEDS_INPUT:
                raise SendRefused(f"{session.name} still needed input after {timeout:g} s",
                                  session=session.name, status=view.status)
            self.send(session.id, text)
        except PlaneaiError as e:  # the session went away meanwhile: record, do not crash
            self.store.append_event(ev.SESSION_PROMPT_FAILED, project_id=session.project_id,
                                    task_key=session.task_key, session_id=session.id,
                                    data={"error": str(e)})

    def send(self, ref: str, text: str) -> None:
        """Type ``text`` and the submit key, whatever the agent is doing (the raw step:
        a person's prompt goes through ``send_prompt``)."""
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

    def send_prompt(self, ref: str, text: str, *, wait: float = 30.0, force: bool = False,
                    watch: float = 10.0) -> SendResult:
        """Send a person's prompt: its ``@agent:skill`` mentions are checked against this
        project's agents and skills (ValidationError names a bad one), and the named skills'
        instructions lead the text.

        Typed only when the agent is idle, waiting up to ``wait`` seconds for that
        (``force``: whatever it is doing). Raises SendRefused, with nothing typed, when it
        needs input (the question on its screen attached), stays busy or starting, or has
        exited. Then watches up to ``watch`` seconds for the agent to take it."""
        from planeai.core.mentions import find_mentions
        from planeai.services.mentions import resolve
        from planeai.skills import prompt_text

        s = self.get(ref)
        if s.state not in LIVE_STATES:
            raise SendRefused(f"{s.name} is {s.state.value}; nothing was sent",
                              session=s.name, status=AgentStatus.EXITED)
        project = self.store.get_project_by_id(s.project_id)
        resolved = [resolve(m, self.registry(project), self.skill_set(project))
                    for m in find_mentions(text)]
        picked = [r.skill for r in resolved if r.skill is not None]
        body = prompt_text(picked) + "\n\n" + text if picked else text
        self._ready_for_prompt(s, wait, force)
        self.send(s.id, body)
        started = time.monotonic()
        busy_since: list[float | None] = [None]
        patterns = self.provider_of(s).status

        def took_it(v) -> bool:
            # busy only by recent output for a moment is not at work: the terminal echoing
            # the typed line, before the agent draws its prompt again, reads so for a few ms
            # (more on a loaded machine). Busy by the agent's own sign (its spinner) is at
            # once, however short its turn; else busy must last BUSY_HOLD. A question or an
            # exit is at once.
            if v.status in (AgentStatus.NEEDS_INPUT, AgentStatus.EXITED):
                return True
            if v.status is not AgentStatus.BUSY:
                busy_since[0] = None
                return False
            if v.snapshot is not None and shows_busy(v.snapshot.text, patterns):
                return True
            if busy_since[0] is None:
                busy_since[0] = time.monotonic()
            return time.monotonic() - busy_since[0] >= BUSY_HOLD

        view = self.await_status(s.id, took_it, watch)
        question = []
        if view.status is AgentStatus.NEEDS_INPUT and view.snapshot is not None:
            question = screen_question(view.snapshot.text)
        return SendResult(view.session, body, view.status in _TOOK_IT, view.status,
                          round(time.monotonic() - started, 1), question)

    def _ready_for_prompt(self, s: Session, wait: float, force: bool) -> None:
        """Return once the agent is at its prompt; SendRefused when it is not by ``wait``."""
        if force:
            view = self.observe(s.id)
            if view.status is AgentStatus.EXITED:
                raise SendRefused(f"{s.name} has exited; nothing was sent",
                                  session=s.name, status=view.status)
            return
        view = self.await_status(
            s.id, lambda v: v.status in (AgentStatus.IDLE, AgentStatus.NEEDS_INPUT,
                                         AgentStatus.EXITED), wait)
        status = view.status
        if status is AgentStatus.IDLE:
            return
        if status is AgentStatus.NEEDS_INPUT:
            question = screen_question(view.snapshot.text) if view.snapshot else []
            raise SendRefused(f"{s.name} is waiting for an answer to a question on its "
                              "screen; nothing was sent", session=s.name, status=status,
                              question=question)
        if status is AgentStatus.EXITED:
            raise SendRefused(f"{s.name} has exited; nothing was sent",
                              session=s.name, status=status)
        what = "busy" if status is AgentStatus.BUSY else status.value.replace("_", " ")
        raise SendRefused(f"{s.name} is still {what} after {wait:g} s; nothing was sent",
                          session=s.name, status=status)

    def send_keys(self, ref: str, keys: Sequence[str], *, watch: float = 3.0):
        """Press ``keys`` (names from planeai.backends.base.KEY_BYTES or single printable
        characters) in the agent's terminal, whatever it is doing: how a person answers its
        dialogs. Checked before anything is sent (ValidationError). Returns the agent's
        view once it settled in a new status, or after ``watch`` seconds."""
        keys = check_keys(keys)
        s = self.get(ref)
        if s.state not in LIVE_STATES:
            raise ConflictError(f"session {s.name} is {s.state.value}; nothing was sent")
        before = self.observe(s.id)
        if before.status is AgentStatus.EXITED:
            raise ConflictError(f"{s.name} has exited; nothing was sent")
        try:
            self.backend(s.backend).send_keys(s.name, *keys)
        except BackendError as e:
            raise ConflictError(f"cannot send keys to {s.name}: {e}") from None
        # settled: a new status on a screen that stopped changing (a key half taken, the
        # echo before the answer, reads as a passing state)
        last: list = [object()]

        def settled(v) -> bool:
            text = v.snapshot.text if v.snapshot is not None else None
            same, last[0] = text == last[0], text
            return v.status is not before.status and same

        return self.await_status(s.id, settled, watch)

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
