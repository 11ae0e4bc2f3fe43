"""Auto-dispatch: poll, dispatch, reconcile, notify.

One pass (``tick``):
1. take or renew the dispatch lease (one dispatcher acts per store, TUI or headless);
2. reconcile sessions with what really runs;
3. finish runs: the agent said so (`planeai task done/review`), its process exited (0 is
   success), or it sat idle after working for ``idle_complete_after``; flag stale ones;
4. dispatch the highest-priority ready tasks (ties: oldest) into free slots, honouring the
   global, per-project and per-provider maxima;
5. run hooks and notifications for every new event in the log.

A task is never dispatched twice:
- one dispatcher acts per store: it holds a lease, renewed by a heartbeat thread while it
  runs, and every write that starts work or judges a run first checks, in its own
  transaction, that the lease is still its own at the generation it took it with (a fencing
  token grown on every takeover). A holder that lost it (stalled past the TTL) is refused
  with LeaseLost, stops acting and goes back to waiting;
- a task with a live session is not a candidate, and the session row is reserved (in the
  same transaction as that check) before its worktree is made or its agent spawned;
- the agent runs behind a claim (planeai.services.claims): a start interrupted at any point
  either never runs the agent (the task goes back to the queue with no failure counted) or
  is known to have run it (re-adopted, or judged by its exit status).
A tick that fails (a locked database, a backend hiccup) is recorded as ``dispatch.error``; the
loop backs off and goes on.

Longer than most modules on purpose: the lease, judging runs and dispatching share one term's
state (its generation, the sessions seen working, idle timers), kept on one object. Which
agent runs a task is planeai.services.agent_choice.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator

from planeai.config import DispatchSettings
from planeai.core import events as ev
from planeai.core.models import Project, Session, SessionState, Status, Task
from planeai.core.status import AgentStatus
from planeai.backends.registry import host_of
from planeai.backends.remote import HostDown
from planeai.errors import PlaneaiError
from planeai.remote.ssh import HostUnreachable
from planeai.services import host_state
from planeai.git.worktrees.stack import StartPointConflict
from planeai.services.agent_choice import AgentChooser
from planeai.services.hooks import HookRunner
from planeai.services.metrics import hard_limit, over_budget
from planeai.services.notify import Notifier
from planeai.services.sessions import LIVE_STATES, SessionManager
from planeai.services.tasks import open_subtasks, ready_queue
from planeai.store.leases import LeaseLost
from planeai.store.repository import Store
from planeai.store.sessions import LiveSessionExists

LEASE = "dispatch"
LOCAL = "local"  # the place that is this machine (task.host "local"); others are host names
NOTIFY_CURSOR = "notify.cursor"


@dataclass
class TickResult:
    leader: bool
    dispatched: list[str] = field(default_factory=list)   # task keys started
    completed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    running: int = 0
    ready: int = 0
    lost: str | None = None          # why this dispatcher stopped leading (LeaseLost)


def _age(s: Session) -> float:
    from datetime import datetime, timezone

    started = datetime.fromisoformat(s.created_at)
    return (datetime.now(timezone.utc) - started).total_seconds()


def new_holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def _holder_dead(holder: str) -> bool:
    """A holder on this host whose process is gone can be replaced at once."""
    try:
        host, pid, _ = holder.split(":", 2)
        if host != socket.gethostname():
            return False
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (ValueError, PermissionError):
        return False
    return False


@dataclass
class DispatchStatus:
    """What ``planeai dispatch status`` (and the app) show about auto-dispatch."""
    leader: str | None            # the holder of the dispatch lease, if its process runs
    max_sessions: int
    running: list[Session]        # live dispatched sessions
    queue: list[Task]             # ready tasks in dispatch order
    held: list[Task]              # held after too many failures: not ready until moved
    dead_leader: str | None = None  # a holder whose process is gone (killed) while its
                                    # lease runs out; the next dispatcher replaces it at once
    over_budget: dict[str, str] = field(default_factory=dict)  # project -> why no new work


def dispatch_status(manager: SessionManager) -> DispatchStatus:
    d = Dispatcher(manager)
    store = manager.store
    leader = d.leader()
    dead = leader if leader and _holder_dead(leader) else None
    spent = {p.name: why for p in store.list_projects()
             if (why := over_budget(store, manager.config, p))}
    return DispatchStatus(
        leader=None if dead else leader, dead_leader=dead,
        max_sessions=d.settings.max_sessions,
        running=d._dispatched_live(everywhere=True), queue=d.candidates(),
        held=[t for t in store.list_tasks() if t.held], over_budget=spent)


class Dispatcher:
    def __init__(self, manager: SessionManager, *, project: Project | None = None,
                 holder: str | None = None, notifier: Notifier | None = None,
                 sandbox: bool | None = None) -> None:
        self.m = manager
        self.sandbox = sandbox  # None: as configured ([sandbox]); else every run so
        self.store = manager.store
        self.project = project
        self.holder = holder or new_holder_id()
        self.hooks = HookRunner(self.store, manager.config)
        self.notifier = notifier
        self._worked: set[str] = set()       # sessions seen busy at least once
        self._idle_since: dict[str, float] = {}
        self._stale: set[str] = set()
        self._reported_at: dict[str, float] = {}  # when a run's "done" report was first seen
        self._budget_said: set[str] = set()        # over-budget reasons already announced
        self.chooser = AgentChooser(manager, self.settings.rules)
        self.generation: int | None = None   # the lease generation this one leads with
        self._beat: threading.Thread | None = None
        self._beat_stop = threading.Event()
        self._trackers = None  # services.trackers.TrackerPoller, once [jira] is configured
        self._plane = None  # services.plane_sync.PlaneSyncPoller, once [plane] is set
        self._probed: dict[str, float] = {}  # host -> when it was last probed while down

    @property
    def settings(self) -> DispatchSettings:
        """The [dispatch] settings as they are now (a --max-sessions override included)."""
        return self.m.config.dispatch

    # ------------------------------------------------------------------ lease
    @property
    def ttl(self) -> float:
        return max(5.0, 5 * self.settings.poll_interval)

    def acquire(self) -> bool:
        gen = self.store.take_lease(LEASE, self.holder, self.ttl)
        if gen is None:
            other = self.store.lease_holder(LEASE)
            if other and _holder_dead(other):
                self.store.release_lease(LEASE, other)
                gen = self.store.take_lease(LEASE, self.holder, self.ttl)
        if gen is None:
            self._step_down()
            return False
        if gen != self.generation:
            self._step_down()  # a new term: nothing seen in an earlier one still holds
            self.generation = gen
        self._start_heartbeat()
        return True

    def leader(self) -> str | None:
        """Who holds the dispatch lease now (this one or another), or None."""
        return self.store.lease_holder(LEASE)

    def release(self) -> None:
        # what this term learned stays: re-taken by this holder, its generation is unchanged
        self._stop_heartbeat()
        self.store.release_lease(LEASE, self.holder)

    def _step_down(self) -> None:
        self._stop_heartbeat()
        self.generation = None
        self._worked.clear()
        self._idle_since.clear()
        self._stale.clear()

    def _start_heartbeat(self) -> None:
        """Renew the lease every ttl/3 while leading, however long a tick takes (a worktree
        on a big repo takes seconds): only a stalled or dead process loses it."""
        if self._beat is not None and self._beat.is_alive():
            return
        self._beat_stop = threading.Event()
        self._beat = threading.Thread(target=self._heartbeat, name="planeai-lease",
                                      args=(self._beat_stop, self.generation), daemon=True)
        self._beat.start()

    def _stop_heartbeat(self) -> None:
        if self._beat is not None:
            self._beat_stop.set()
            if self._beat is not threading.current_thread():
                self._beat.join(10)
            self._beat = None

    def _heartbeat(self, stop: threading.Event, generation: int) -> None:
        own = None  # a connection of its own: never queued behind the dispatcher's work
        try:
            while not stop.wait(self.ttl / 3):
                try:
                    own = own or Store.open(self.store.path)
                    if not own.renew_lease(LEASE, self.holder, generation, self.ttl):
                        return  # taken over: the next fenced write finds out and steps down
                except Exception:  # noqa: BLE001 - a locked moment: try again next beat
                    continue
        finally:
            if own is not None:
                own.close()

    def fence(self) -> None:
        """Raise LeaseLost unless this dispatcher still holds the lease at its generation.
        Inside a write transaction it guards the writes that follow in it."""
        if self.generation is None:
            raise LeaseLost("this dispatcher does not hold the dispatch lease")
        self.store.check_lease(LEASE, self.holder, self.generation)

    @contextmanager
    def _fenced(self) -> Iterator[None]:
        with self.store.write():
            self.fence()
            yield

    def _stop_session(self, s: Session) -> Session:
        """Stop a run this dispatcher judged: only while it still leads, so a stale one
        never kills what the new holder runs."""
        self.fence()
        return self.m.stop(s.id, by_user=False)

    @property
    def _project_ids(self) -> list[int] | None:
        return [self.project.id] if self.project else None

    # ------------------------------------------------------------------ one pass
    def tick(self) -> TickResult:
        if not self.acquire():
            return TickResult(leader=False)
        if self.store.kv_get(NOTIFY_CURSOR) is None:
            self.store.kv_set(NOTIFY_CURSOR, str(self.store.last_event_id()))
        result = TickResult(leader=True)
        try:
            self.m.reconcile(self._project_ids)
            self._finish_runs(result)
            self._finish_parents(result)
            self._dispatch(result)
        except LeaseLost:
            self._step_down()
            raise
        finally:
            self.hooks.kick()
        self._notify()
        self._poke_trackers()
        return result

    def _poke_trackers(self) -> None:
        """The periodic Jira and Plane sync and write-back: started here, run in the
        background."""
        plane = self.m.config.plane
        if plane.workspace and plane.projects:
            if self._plane is None:
                from planeai.services.plane_sync import PlaneSyncPoller

                self._plane = PlaneSyncPoller(self.store, self.m.config, self.m.locs)
            self._plane.poke()
        if not self.m.config.jira.url:
            return
        if self._trackers is None:
            from planeai.services.trackers import TrackerPoller

            self._trackers = TrackerPoller(self.store, self.m.config, self.m.locs)
        self._trackers.poke()

    def _dispatched_live(self, *, everywhere: bool = False) -> list[Session]:
        """The runs that take a slot, of this dispatcher's project (of all: ``everywhere``):
        live autonomous sessions still to be judged (not taken over by the user) that have
        their task: in progress, or reported done and finishing their turn. One whose task
        was moved back to todo (or deleted) holds none."""
        ids = None if everywhere else self._project_ids
        live = [s for s in self.store.list_sessions(states=list(LIVE_STATES), project_ids=ids)
                if s.autonomous and s.outcome is None]
        has_task = {t.key for t in self.store.list_tasks(
            project_ids=ids, statuses=[Status.IN_PROGRESS, Status.IN_REVIEW, Status.DONE])
        } if live else set()
        return [s for s in live if s.task_key in has_task]

    # ------------------------------------------------------------------ completion
    def _unjudged(self) -> list[Session]:
        """Dispatched runs without an outcome yet: live ones, and ones that ended while no
        dispatcher was looking (or that another observer marked exited first)."""
        return [s for s in self.store.list_sessions(states=[*LIVE_STATES, SessionState.EXITED],
                                                    project_ids=self._project_ids)
                if s.autonomous and s.outcome is None]

    def _finish_runs(self, result: TickResult) -> None:
        now = time.monotonic()
        for s in self._unjudged():
            view = self.m.observe(s.id)
            s = view.session
            if s.state is SessionState.CREATED:
                continue  # its starter is still at it
            task = self._task(s.task_key)
            if task is None:  # deleted under the agent: nothing to report to
                self._stop_session(s)
                continue
            if s.state in LIVE_STATES:
                over = hard_limit(self.store, self.m.config, s,
                                  self.store.get_project_by_id(s.project_id))
                if over:  # budgets.hard_stop: the money is spent, the run ends now
                    self._stop_session(s)
                    self._fail(self.store.get_session(s.id), task, over, result, hold=True)
                    continue
            if task.status in (Status.DONE, Status.IN_REVIEW) or s.done_requested:
                # the agent reported completion itself (planeai task done / review): it may
                # finish its turn (a summary, a last commit) before it is stopped
                if self._finishing_turn(s, view.status, now):
                    continue
                self._complete(s, task, result, reported=True)
                continue
            if view.status is AgentStatus.EXITED and s.pid is None:
                # its start was interrupted before the agent ran (its claim is aborted, so it
                # never will): no failure of the task; queue it again
                with self._fenced():
                    self.store.update_session(s.id, outcome="aborted", event=ev.DISPATCH_ABORTED,
                                              event_data={"reason": "start interrupted"})
                    if self.store.get_task(task.key).status is Status.IN_PROGRESS:
                        self.store.set_status(task.key, Status.TODO, reason="start interrupted")
                continue
            if view.status is AgentStatus.EXITED:
                if s.exit_code == 0:
                    self._complete(s, task, result, reported=False)
                else:
                    why = ("session lost" if s.exit_code is None
                           else f"agent exited with code {s.exit_code}")
                    self._fail(s, task, why, result)
                continue
            limit = self._skill_timeout(s)
            if limit and _age(s) > limit:
                self._stop_session(s)
                self._fail(self.store.get_session(s.id), task,
                           f"timed out after {limit / 60:g} minutes (skill {s.skill})", result)
                continue
            if view.status is AgentStatus.BUSY:
                self._worked.add(s.id)
                self._idle_since.pop(s.id, None)
                since = view.snapshot.seconds_since_output if view.snapshot else None
                if since is not None and since >= self.settings.stale_after:
                    if s.id not in self._stale:
                        self._stale.add(s.id)
                        with self._fenced():
                            self.store.append_event(
                                ev.DISPATCH_STALE, project_id=s.project_id, task_key=s.task_key,
                                session_id=s.id, data={"silent_seconds": round(since)})
                else:
                    self._stale.discard(s.id)
            elif view.status is AgentStatus.IDLE:
                self._idle_since.setdefault(s.id, now)
                limit = self.settings.idle_complete_after
                if limit > 0 and s.id in self._worked and now - self._idle_since[s.id] >= limit:
                    self._complete(s, task, result, reported=False, idle=True)

    def _finishing_turn(self, s: Session, status: AgentStatus, now: float) -> bool:
        """An agent that reported done is left to work until it is idle or exits, or for
        ``dispatch.done_grace`` seconds from when its report was first seen."""
        if s.state not in LIVE_STATES or status in (AgentStatus.IDLE, AgentStatus.EXITED):
            return False
        first = self._reported_at.setdefault(s.id, now)
        return now - first < self.settings.done_grace

    def _open_subtasks(self, key: str) -> list[str]:
        return open_subtasks(self.store, key)

    def _complete(self, s: Session, task: Task, result: TickResult, *, reported: bool,
                  idle: bool = False) -> None:
        if s.state in LIVE_STATES:
            s = self._stop_session(s)
        target = Status(self.settings.on_success)
        how = "reported" if reported else ("idle" if idle else "exit 0")
        waiting = self._open_subtasks(task.key)
        checks = None
        if not waiting:
            # [review] check_on_complete: the project's checks judge the work before it
            # counts; a failure keeps the task for a person (in review), never done
            from planeai.services.review import checks_on_complete

            checks = checks_on_complete(self.store, self.m.config, task.key, s.name)
            if checks is not None and not checks.passed:
                target = Status.IN_REVIEW
        with self._fenced():
            if self._taken_over(s):
                return
            self.store.update_session(s.id, outcome="success")
            if waiting:
                # the agent split its work: the task finishes when its subtasks have
                if task.status is not Status.IN_PROGRESS:
                    self.store.set_status(task.key, Status.IN_PROGRESS,
                                          reason="waiting for subtasks " + ", ".join(waiting))
                self.store.append_event(ev.DISPATCH_WAITING, project_id=s.project_id,
                                        task_key=task.key, session_id=s.id,
                                        data={"subtasks": waiting, "how": how})
            else:
                status = self.store.get_task(task.key).status
                failed_checks = checks is not None and not checks.passed
                if status not in (Status.DONE, Status.IN_REVIEW) or (
                        failed_checks and status is Status.DONE):
                    reason = ("its checks failed" if failed_checks
                              else f"session {s.name} finished")
                    self.store.set_status(task.key, target, reason=reason)
                data = {"how": how, "exit_code": s.exit_code}
                if checks is not None:
                    data["checks"] = "passed" if checks.passed else "failed"
                self.store.append_event(ev.DISPATCH_COMPLETED, project_id=s.project_id,
                                        task_key=task.key, session_id=s.id, data=data)
        if not waiting:
            result.completed.append(task.key)
        self._forget(s.id)

    def _finish_parents(self, result: TickResult) -> None:
        """Tasks whose own run succeeded and that waited for subtasks: done once those are."""
        for key in self.store.task_keys_with_event(ev.DISPATCH_WAITING):
            task = self._task(key)
            if task is None or task.status is not Status.IN_PROGRESS:
                continue
            if self.project is not None and task.project_id != self.project.id:
                continue
            if any(s.state in LIVE_STATES for s in self.store.sessions_for_task(key)):
                continue
            if self._open_subtasks(key):
                continue
            with self._fenced():
                self.store.set_status(key, Status(self.settings.on_success),
                                      reason="its subtasks are done")
                self.store.append_event(ev.DISPATCH_COMPLETED, project_id=task.project_id,
                                        task_key=key, data={"how": "subtasks"})
            result.completed.append(key)

    def _skill_timeout(self, s: Session) -> float | None:
        if not s.skill:
            return None
        try:
            project = self.store.get_project_by_id(s.project_id)
            return self.m.skill_set(project).skills[s.skill].timeout_seconds
        except (KeyError, PlaneaiError):
            return None

    def _fail(self, s: Session, task: Task, reason: str, result: TickResult, *,
              hold: bool = False) -> None:
        hold = hold or task.failures + 1 > self.settings.max_retries
        with self._fenced():
            if self._taken_over(s):
                return
            self.store.update_session(s.id, outcome="failure")
            self.store.record_failure(task.key, reason, hold=hold)
            self.store.append_event(ev.DISPATCH_FAILED, project_id=s.project_id, task_key=task.key,
                                    session_id=s.id, data={"reason": reason, "held": hold,
                                                           "exit_code": s.exit_code})
        result.failed.append(task.key)
        self._forget(s.id)

    def _taken_over(self, s: Session) -> bool:
        """Stopped by the user since this pass looked (inside the judging transaction): the
        run is theirs now, neither a success nor a failure to act on."""
        if self.store.get_session(s.id).outcome is None:
            return False
        self._forget(s.id)
        return True

    def _forget(self, session_id: str) -> None:
        self._reported_at.pop(session_id, None)
        self._worked.discard(session_id)
        self._idle_since.pop(session_id, None)
        self._stale.discard(session_id)

    def _task(self, key: str | None) -> Task | None:
        if not key:
            return None
        try:
            return self.store.get_task(key)
        except PlaneaiError:
            return None

    # ------------------------------------------------------------------ dispatch
    def candidates(self) -> list[Task]:
        projects = [self.project] if self.project else self.store.list_projects()
        tasks = self.store.list_tasks(project_ids=[p.id for p in projects],
                                      statuses=[Status.TODO])
        live = {s.task_key for s in self.store.list_sessions(states=list(LIVE_STATES))}
        return [t for t in ready_queue(tasks) if t.key not in live]

    def _dispatch(self, result: TickResult) -> None:
        # the global maximum counts every dispatched session; what this one reports (and
        # waits for with --exit-when-idle) is its own project's
        running = self._dispatched_live(everywhere=True)
        result.running = len(self._dispatched_live()) if self.project else len(running)
        queue = self.candidates()
        result.ready = len(queue)
        places = self._places(running)
        free = sum(places.values())
        if free <= 0 or not queue:
            return
        per_project: dict[str, int] = {}
        per_provider: dict[str, int] = {}
        for s in running:
            per_project[s.project_name] = per_project.get(s.project_name, 0) + 1
            per_provider[s.provider] = per_provider.get(s.provider, 0) + 1
        project_max = self.settings.per_project
        provider_max = self.settings.per_provider
        backend = self.settings.backend or self.m.config.defaults.backend
        for task in queue:
            if free <= 0:
                break
            project = self.store.get_project_by_id(task.project_id)
            if per_project.get(project.name, 0) >= project_max.get(project.name, float("inf")):
                continue
            spent = over_budget(self.store, self.m.config, project, task.key)
            if spent:  # [budgets]: no new work on it until the budget is raised
                self._say_over_budget(project, task, spent)
                continue
            try:
                agent, skill = self.chooser.choose(task, project)
                provider, _ = self.m.resolve_agent(agent, project, task)
            except PlaneaiError as e:
                # the task names an agent or skill that is not there: no retry can help
                # until a person fixes the text, so it is held with the reason at once
                self._start_failed(task, str(e), hold=True)
                continue
            if per_provider.get(provider.name, 0) >= provider_max.get(provider.name, float("inf")):
                continue
            place = self._place_for(task, self.chooser.choose_host(task, project), places)
            if place is None:
                continue  # its machine is full or down: it waits in the queue
            from planeai.services.provider_check import unusable

            why = None if place != LOCAL else unusable(
                provider, self.m.env, stored=lambda p=provider: self.m.stored_secrets(p))
            if why:
                # not installed, not logged in: no retry helps until a person acts, so the
                # task is held with the reason at once
                self._start_failed(task, why, hold=True)
                continue
            try:
                self.m.start(task_key=task.key, agent=agent,
                             backend=backend if place == LOCAL else None,
                             host=None if place == LOCAL else place,
                             yolo=self.settings.yolo, autonomous=True, skill=skill,
                             sandbox=self.sandbox,
                             fence=self.fence, on_reserved=self._dispatched(task, agent, skill))
            except LeaseLost:
                raise
            except (HostUnreachable, HostDown) as e:
                # not the task's fault: the host is marked down, the task waits for a slot
                host_state.mark_down(self.store, place, str(e))
                places[place] = 0
                continue
            except LiveSessionExists:
                continue  # started elsewhere since the queue was read (a person, the CLI)
            except StartPointConflict as e:
                # the work it stands on does not merge: a person must combine it first
                self._start_failed(task, str(e), hold=True)
                continue
            except PlaneaiError as e:
                self._start_failed(task, str(e))
                continue
            free -= 1
            places[place] -= 1
            per_project[project.name] = per_project.get(project.name, 0) + 1
            per_provider[provider.name] = per_provider.get(provider.name, 0) + 1
            result.dispatched.append(task.key)

    # ------------------------------------------------------------------ places
    def _places(self, running: list[Session]) -> dict[str, int]:
        """Free slots per machine: LOCAL ([dispatch] max_sessions) and each enabled host
        that answers ([hosts.NAME] max_sessions). A host marked down is probed (at most
        every host_state.PROBE_EVERY) and counts again once it answers."""
        used: dict[str, int] = {}
        for s in running:
            where = host_of(s.backend) or LOCAL
            used[where] = used.get(where, 0) + 1
        places = {LOCAL: max(0, self.settings.max_sessions - used.get(LOCAL, 0))}
        down = host_state.down_hosts(self.store)
        for name, host in self.m.config.hosts.items():
            if not host.enabled:
                continue
            if name in down and not self._probe(name):
                continue
            places[name] = max(0, host.max_sessions - used.get(name, 0))
        return places

    def _probe(self, name: str) -> bool:
        """Does host ``name`` (marked down) answer now? At most every PROBE_EVERY s."""
        last = self._probed.get(name, 0.0)
        if time.monotonic() - last < host_state.PROBE_EVERY:
            return False
        self._probed[name] = time.monotonic()
        from planeai.services import hosts

        try:
            hosts.connection(self.m.config.hosts[name], self.m.locs).connect()
        except PlaneaiError:
            return False
        host_state.mark_up(self.store, name)
        return True

    def _place_for(self, task: Task, pinned: str | None, places: dict[str, int]
                   ) -> str | None:
        """Where ``task`` runs: the machine it is pinned to (task.host, or a rule's host)
        when that one has a free slot, else, unpinned, the machine with the most free slots
        (this one first on a tie: no network between it and the board). None: it waits."""
        if pinned:
            if pinned != LOCAL and pinned not in self.m.config.hosts:
                self._start_failed(task, f"it is pinned to host {pinned!r}, which is not "
                                   "configured (planeai host list)", hold=True)
                return None
            return pinned if places.get(pinned, 0) > 0 else None
        best = max(places, key=lambda p: (places[p], p == LOCAL))
        return best if places[best] > 0 else None

    def _say_over_budget(self, project: Project, task: Task, reason: str) -> None:
        """Once per reason while this dispatcher leads: an event (a notification, a hook)."""
        if reason in self._budget_said:
            return
        self._budget_said.add(reason)
        with self._fenced():
            self.store.append_event(ev.DISPATCH_OVER_BUDGET, project_id=project.id,
                                    task_key=task.key if reason.startswith("task ") else None,
                                    data={"reason": reason, "name": project.name})

    def _dispatched(self, task: Task, agent: str, skill: str | None) -> Callable[[Session], None]:
        """The dispatch event, written in the transaction that reserves the session: one
        per session, never one for a start that a fence or a concurrent start refused."""
        def record(session: Session) -> None:
            self.store.append_event(ev.DISPATCH_DISPATCHED, project_id=task.project_id,
                                    task_key=task.key, session_id=session.id,
                                    data={"agent": agent, "skill": skill,
                                          "priority": task.priority})
        return record

    def _start_failed(self, task: Task, reason: str, *, hold: bool = False) -> None:
        hold = hold or task.failures + 1 > self.settings.max_retries
        with self._fenced():
            self.store.record_failure(task.key, f"could not start: {reason}", hold=hold)
            self.store.append_event(ev.DISPATCH_FAILED, project_id=task.project_id,
                                    task_key=task.key, data={"reason": reason, "held": hold})

    # ------------------------------------------------------------------ notify
    def _notify(self) -> None:
        if self.notifier is None:
            return
        after = int(self.store.kv_get(NOTIFY_CURSOR, "0") or 0)
        events = self.store.events(after=after, limit=500)
        for e in events:
            # a dispatcher scoped to one project (--project) speaks only of that project
            if self.project is None or e.project_id in (None, self.project.id):
                self.notifier.handle(e)
        if events:
            self.store.kv_set(NOTIFY_CURSOR, str(events[-1].id))

    # ------------------------------------------------------------------ loop
    def idle(self) -> bool:
        return not self._dispatched_live() and not self.candidates()

    def run(self, *, once: bool = False, exit_when_idle: bool = False,
            stop: threading.Event | None = None, on_tick=None, on_error=None) -> None:
        """Tick until ``stop`` (or once, or until idle). A failing tick is recorded as a
        ``dispatch.error`` event and retried after a growing pause; a lost lease sends this
        dispatcher back to waiting for it. ``on_error(exc, pause)`` hears of failures."""
        stop = stop or threading.Event()
        poll = self.settings.poll_interval
        failures = 0
        self.hooks.start()
        try:
            while not stop.is_set():
                try:
                    result = self.tick()
                    failures = 0
                except LeaseLost as e:
                    result = TickResult(leader=False, lost=str(e))
                except Exception as e:  # noqa: BLE001 - one bad tick must not end dispatching
                    failures += 1
                    pause = min(30.0, poll * 2 ** min(failures, 10))
                    self._record_error(e)
                    if on_error:
                        on_error(e, pause)
                    if once:
                        raise
                    stop.wait(pause)
                    continue
                if on_tick:
                    on_tick(result)
                if once or (exit_when_idle and result.leader and self.idle()):
                    return
                self._sleep(poll, stop)
        finally:
            self.hooks.stop()  # the hooks of everything that happened still run
            if self._trackers is not None:
                self._trackers.stop()  # a Jira call under way ends (bounded), not cut
            try:
                self.release()
            except Exception:  # noqa: BLE001 - the lease expires on its own
                self._stop_heartbeat()

    def _sleep(self, poll: float, stop: threading.Event) -> None:
        """Until the next poll, waking early when the event log moves (a task added or
        finished elsewhere is picked up within ~0.1 s)."""
        try:
            mark = self.store.last_event_id()
            deadline = time.monotonic() + poll
            while not stop.is_set() and time.monotonic() < deadline:
                if stop.wait(min(0.1, poll)):
                    break
                if self.store.last_event_id() != mark:
                    break
        except Exception:  # noqa: BLE001 - the next tick meets (and records) the problem
            return

    def _record_error(self, e: Exception) -> None:
        try:
            self.store.append_event(ev.DISPATCH_ERROR, data={"error": f"{type(e).__name__}: {e}",
                                                            "holder": self.holder})
        except Exception:  # noqa: BLE001 - the store may be what fails
            pass
