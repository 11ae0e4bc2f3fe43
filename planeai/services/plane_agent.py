"""planeai as a Plane agent: a run's prompt becomes a task and a session, and the session's
progress goes back to the run as activities.

A run (``plane_runs``, migration 12) moves through these states:

    starting --(task + session made; thought, action)--> working
    working  --(agent busy: action; then a thought with an output excerpt at most every
                [plane] activity_interval s)--> working
    working  --(agent needs input: elicitation with the question on its screen)--> awaiting
    awaiting --(a reply typed into the session, or answered there)--> working
    working  --(agent idle for [plane] idle_after s, reported done, or exited 0:
                response with an excerpt, the task, branch and PR)--> answered
    answered --(a reply in the thread: sent to the same session)--> working
    any      --(start failed, agent exited non-zero, session gone: error)--> failed

Plane moves the run itself: thought/action keep it in progress, an elicitation makes it
awaiting, a response completes it, an error fails it.

Untrusted text: the prompt and replies reach the agent only inside ``delimited`` blocks (and
as argv or a pasted prompt, never through a shell); the task's title is ``inert_line``. A
mention in the prompt (``@claude-opus:review``) picks agent and skill only with
``[plane] allow_mentions`` and only among the providers planeai has; otherwise every run uses
``[plane] agent``.

What calls it (webhooks, the feed poller, the worker thread) is planeai.services.plane_serve.
"""

from __future__ import annotations

import hashlib
import html
import re
import time
from typing import TYPE_CHECKING, Any, Callable

from planeai.core import events as ev
from planeai.core.models import Status
from planeai.core.status import AgentStatus
from planeai.errors import NotFoundError, PlaneaiError
from planeai.integrations import plane_webhook as wh
from planeai.services.plane_sync import delimited, inert_line, inert_text, result_lines

if TYPE_CHECKING:
    from planeai.integrations.plane import PlaneClient
    from planeai.services.sessions import SessionManager
    from planeai.store.plane_runs import PlaneRun

EXCERPT_LINES = 12
# Plane calls a run stale after 5 minutes without activity: a silent worker says so sooner
HEARTBEAT = 240.0


def _body_text(content: Any) -> str:
    """A prompt's text: ``content.body``, which may be HTML from a comment."""
    body = content.get("body") if isinstance(content, dict) else None
    if not isinstance(body, str):
        return ""
    if "<" in body:
        body = re.sub(r"(?i)<br\s*/?>|</p>|</li>|</div>", "\n", body)
        body = html.unescape(re.sub(r"<[^>]*>", "", body))
    return body.strip()


def _activity(payload: dict) -> dict:
    act = payload.get("agent_run_activity")
    return act if isinstance(act, dict) else {}


def nonempty(v: Any) -> str | None:
    return v if isinstance(v, str) and v else None


def excerpt(screen: str, lines: int = EXCERPT_LINES) -> str:
    """The last non-empty lines of an agent's screen, as inert text."""
    rows = [ln.rstrip() for ln in inert_text(screen).splitlines()]
    rows = [ln for ln in rows if ln.strip()][-lines:]
    return "\n".join(rows)[-2000:]


class PlaneAgent:
    """Serves Plane agent runs with one SessionManager; not thread-safe: one worker calls
    it (planeai.services.plane_serve.PlaneWorker)."""

    def __init__(self, manager: "SessionManager", client: "PlaneClient", *,
                 clock: Callable[[], float] = time.time) -> None:
        self.m = manager
        self.store = manager.store
        self.client = client
        self.settings = manager.config.plane
        self.clock = clock
        self._quiet: dict[str, tuple[str, float]] = {}  # run -> (screen hash, idle since)

    # ------------------------------------------------------------------ events
    def handle(self, event: str, payload: dict) -> None:
        """One verified, new event: agent_run_create or agent_run_user_prompt."""
        if event == "agent_run_create":
            self.start_run(payload)
        elif event == "agent_run_user_prompt":
            self.user_prompt(payload)

    def start_run(self, payload: dict) -> None:
        rid = wh.run_id(payload)
        if not rid:
            return
        act = _activity(payload)
        if nonempty(act.get("id")):
            self.store.mark_plane_seen("activity", act["id"])
        run_obj = payload.get("agent_run") if isinstance(payload.get("agent_run"), dict) else {}
        issue = nonempty(payload.get("issue_id")) or nonempty(run_obj.get("issue_id")) or nonempty(
            run_obj.get("work_item_id"))
        pid = nonempty(payload.get("project_id")) or nonempty(run_obj.get("project_id"))
        if not self.store.add_plane_run(rid, self.client.workspace, issue_id=issue,
                                        project_id=pid):
            return  # known already (a webhook and the feed both saw it)
        try:
            self._start(rid, issue, pid, _body_text(act.get("content")) or
                        self._first_prompt(rid))
        except Exception as e:  # noqa: BLE001 - any failure is the run's error, said once
            self._drop_task(rid)
            self._fail(rid, f"planeai could not start an agent: {one_line(e)}")
            if not isinstance(e, PlaneaiError):
                raise

    def _drop_task(self, rid: str) -> None:
        """A task made for a run whose agent never started goes again: left in todo, a
        dispatcher would later run the run's untrusted prompt nobody is waiting for."""
        run = self.store.plane_run(rid)
        if run is None or not run.task_key or self.store.sessions_for_task(run.task_key):
            return
        try:
            self.store.delete_task(run.task_key)
        except PlaneaiError:
            return
        self.store.update_plane_run(rid, task_key=None)

    def _first_prompt(self, rid: str) -> str:
        for a in self.client.run_activities(rid, type="prompt"):
            text = _body_text(a.get("content"))
            if text:
                return text
        return ""

    def _start(self, rid: str, issue: str | None, pid: str | None, prompt: str) -> None:
        from planeai.services.tasks import TaskDefaults, add_task

        name = self.settings.projects.get(pid or "")
        if not name:
            raise PlaneaiError(f"this Plane project ({pid}) is not mapped to a planeai "
                               "project in [plane] projects")
        project = self.store.find_project(name)
        if project is None or project.archived:
            raise PlaneaiError(f"[plane] projects maps to {name!r}, which is not a "
                               "registered planeai project")
        if not prompt.strip():
            raise PlaneaiError("the run has no prompt")
        agent, skill = self.choose(prompt, project)
        title = self._title(pid, issue, prompt)
        task = add_task(self.store, project, inert_line(f"Plane: {title}"),
                        description=f"Asked in Plane (agent run {inert_line(rid, 80)}).\n\n"
                        + delimited(prompt, "the request made in Plane"),
                        provider=agent, defaults=TaskDefaults.of(self.m.config))
        self.store.update_plane_run(rid, task_key=task.key)
        self._post(rid, "thought", f"Received. Working on it as planeai task {task.key} in "
                   f"{project.name}" + (f" with {agent}" if agent else "") + ".")
        agent_prompt = (
            f"You are working on planeai task {task.key} for a request made in Plane. When "
            "you are done, end with a short summary of what you did; if you need an answer "
            "from the person who asked, ask one clear question.\n\n"
            + delimited(prompt, "the request made in Plane"))
        backend = self.settings.backend or self.m.config.defaults.backend
        session = self.m.start(task_key=task.key, agent=agent, backend=backend,
                               yolo=self.m.config.dispatch.yolo, prompt=agent_prompt,
                               skill=skill)
        self.store.update_plane_run(rid, session_id=session.id, state="working",
                                    agent_status=AgentStatus.STARTING.value)
        self.store.append_event(ev.PLANE_RUN_STARTED, project_id=project.id, task_key=task.key,
                                session_id=session.id, data={"run": rid})
        self._post(rid, "action", action="start_session", parameters={
            "task": task.key, "agent": session.provider, "branch": session.branch or ""})

    def _title(self, pid: str | None, issue: str | None, prompt: str) -> str:
        if pid and issue:
            try:
                name = self.client.work_item(pid, issue).name
                if name.strip():
                    return name
            except PlaneaiError:
                pass
        return prompt.strip().splitlines()[0] if prompt.strip() else "request"

    def choose(self, prompt: str, project) -> tuple[str | None, str | None]:
        """(agent, skill) for a run: ``[plane] agent``, unless mentions are allowed and one
        names a provider planeai has (or a skill)."""
        agent = self.settings.agent or None
        if not self.settings.allow_mentions:
            return agent, None
        from planeai.core.mentions import find_mentions
        from planeai.services.mentions import resolve

        registry, skills = self.m.registry(project), self.m.skill_set(project)
        skill = None
        for mention in find_mentions(prompt):
            if mention.provider in registry.providers:
                try:
                    r = resolve(mention, registry, skills)
                except PlaneaiError:
                    continue
                return r.agent, (r.skill.trigger if r.skill else None)
            if mention.variant is None and mention.skill is None and \
                    mention.provider in skills.skills and skill is None:
                skill = mention.provider
        return agent, skill

    def user_prompt(self, payload: dict) -> None:
        rid = wh.run_id(payload)
        act = _activity(payload)
        if nonempty(act.get("id")) and not self.store.mark_plane_seen("activity", act["id"]):
            return
        run = self.store.plane_run(rid) if rid else None
        if run is None or run.session_id is None:
            if run is None:
                self.start_run(payload)  # a run planeai never saw start: begin it now
            return
        text = _body_text(act.get("content"))
        try:
            if act.get("signal") == "stop":
                self.m.stop(run.session_id)
                self._respond(run, "Stopped, as asked.", final=True)
                return
            if not text:
                return
            from planeai.services.session_input import SendRefused

            view = self.m.observe(run.session_id)
            if view.status is AgentStatus.EXITED:
                self._fail(rid, "the agent's session has ended; mention planeai again to "
                           "start a new run")
                return
            try:
                self.m.send_prompt(run.session_id, delimited(text, "a reply in the Plane "
                                                             "thread"),
                                   wait=60.0, force=view.status is AgentStatus.NEEDS_INPUT,
                                   watch=5.0)
            except SendRefused as e:
                self._fail(rid, f"the reply could not be passed on: {e}")
                return
            self._quiet.pop(rid, None)
            self.store.update_plane_run(rid, state="working", agent_status=None)
            self._post(rid, "thought", "Passed your reply to the agent.")
        except NotFoundError:
            self._fail(rid, "the agent's session is gone")

    # ------------------------------------------------------------------ watching
    def tick(self) -> None:
        """One look at every active run's session; posts what changed."""
        for run in self.store.plane_runs(active=True):
            if run.session_id is None:
                continue
            try:
                self._watch(run)
            except NotFoundError:
                self._fail(run.run_id, "the agent's session is gone")
            except PlaneaiError as e:
                self.store.append_event(ev.PLANE_ERROR, task_key=run.task_key,
                                        data={"run": run.run_id, "error": str(e)})

    def _watch(self, run: "PlaneRun") -> None:
        view = self.m.observe(run.session_id)
        status, now = view.status, self.clock()
        task = self._task(run)
        if status is AgentStatus.EXITED:
            code = view.session.exit_code
            if code == 0 or (task and task.status in (Status.DONE, Status.IN_REVIEW)):
                self._respond(run, self._summary(run, None), final=True)
            else:
                self._fail(run.run_id, f"the agent exited with code {code}"
                           + (f"; last output:\n{run.last_excerpt}" if run.last_excerpt else ""))
            return
        screen = view.snapshot.text if view.snapshot is not None else ""
        if status is AgentStatus.NEEDS_INPUT:
            if run.state != "awaiting":
                from planeai.services.session_input import screen_question

                question = "\n".join(screen_question(screen)) or excerpt(screen)
                self._post(run.run_id, "elicitation",
                           "The agent is asking:\n" + inert_text(question, 2000))
                self.store.update_plane_run(run.run_id, state="awaiting",
                                            agent_status=status.value)
            return
        if status.value != run.agent_status:
            if status is AgentStatus.BUSY:
                self._post(run.run_id, "action", action="agent_working",
                           parameters={"task": run.task_key or "", "status": "busy"})
            run = self.store.update_plane_run(
                run.run_id, agent_status=status.value,
                **({"state": "working"} if run.state == "awaiting" else {}))
        if status is AgentStatus.BUSY:
            self._quiet.pop(run.run_id, None)
            if now - run.last_post >= self.settings.activity_interval:
                text = excerpt(screen, 6)
                if text and text != run.last_excerpt:
                    self._post(run.run_id, "thought", text)
                    self.store.update_plane_run(run.run_id, last_excerpt=text)
                elif now - run.last_post >= HEARTBEAT:
                    self._post(run.run_id, "thought", "Still working.")
            return
        if task and task.status in (Status.DONE, Status.IN_REVIEW) and status is AgentStatus.IDLE:
            self._respond(run, self._summary(run, screen))
            return
        if status is AgentStatus.IDLE and self._idle_for(run.run_id, screen, now) >= \
                self.settings.idle_after:
            self._respond(run, self._summary(run, screen))

    def _idle_for(self, rid: str, screen: str, now: float) -> float:
        """Seconds the run's agent has sat idle on an unchanged screen."""
        digest = hashlib.sha256(screen.encode("utf-8", "replace")).hexdigest()
        last = self._quiet.get(rid)
        if last is None or last[0] != digest:
            self._quiet[rid] = (digest, now)
            return 0.0
        return now - last[1]

    def _task(self, run: "PlaneRun"):
        if not run.task_key:
            return None
        try:
            return self.store.get_task(run.task_key)
        except NotFoundError:
            return None

    def _summary(self, run: "PlaneRun", screen: str | None) -> str:
        out = excerpt(screen) if screen else (run.last_excerpt or "")
        task = self._task(run)
        tail = "\n".join(result_lines(self.store, task)) if task else ""
        return "\n\n".join(x for x in (out, tail) if x)

    def _respond(self, run: "PlaneRun", body: str, *, final: bool = False) -> None:
        self._post(run.run_id, "response", body or "Done.")
        self._quiet.pop(run.run_id, None)
        self.store.update_plane_run(run.run_id, state="answered",
                                    agent_status=AgentStatus.EXITED.value if final else None)

    def _fail(self, rid: str, message: str) -> None:
        run = self.store.plane_run(rid)
        self.store.append_event(ev.PLANE_ERROR, task_key=run.task_key if run else None,
                                data={"run": rid, "error": message})
        self._post(rid, "error", message)
        self.store.update_plane_run(rid, state="failed", error=message[:2000])

    def _post(self, rid: str, type: str, body: str = "", **kw) -> None:
        """Post one activity; a failure is recorded, never raised (the run goes on)."""
        from planeai.integrations.tracker_http import TrackerError

        try:
            self.client.post_activity(rid, type, html.escape(body, quote=False), **kw)
        except TrackerError as e:
            self.store.append_event(ev.PLANE_ERROR, data={"run": rid, "error": str(e)})
            return
        self.store.update_plane_run(rid, last_post=self.clock())
        self.store.append_event(ev.PLANE_ACTIVITY, data={"run": rid, "type": type})


def one_line(e: BaseException) -> str:
    return re.sub(r"\s+", " ", str(e) or type(e).__name__)[:500]
