"""Watching sessions: the agent's status from its screen, exits recorded once, and
reconcile, which brings the store in line with what the backends really run (after a
restart, a crash, a dead tmux server).

A part of ``SessionManager`` (planeai.services.sessions). "Lost" always means nothing of
the session still runs: its processes are ended before it is recorded.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from planeai.backends import registry as backend_registry
from planeai.backends.registry import host_of
from planeai.backends.base import Snapshot
from planeai.core import events as ev
from planeai.core.models import LIVE_STATES, Session, SessionState
from planeai.core.status import AgentStatus, Observation, classify
from planeai.errors import BackendError, PlaneaiError
from planeai.store.db import now


METRICS_EVERY = 5.0  # seconds between metrics reads of one live session (transcripts grow)
CONTAINER_CHECK_EVERY = 30.0  # seconds between sandbox container checks with nothing ended


@dataclass
class SessionView:
    session: Session
    status: AgentStatus
    snapshot: Snapshot | None
    unreachable: bool = False  # on a host that does not answer: status is the last seen


class SessionWatching:
    """Mixed into SessionManager: needs ``get()``, ``backend()``, ``provider_of()``,
    ``_claim()``, ``collect_metrics()``, ``store`` and ``_backends``."""

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
        if host_of(s.backend) is not None and self._host_down(s.backend):
            return SessionView(s, _recorded_status(s), None, unreachable=True)
        be = self.backend(s.backend)
        try:
            snap = be.snapshot(s.name)
        except BackendError as e:
            if _is_host_down(e):
                return SessionView(s, _recorded_status(s), None, unreachable=True)
            return self._unreachable(s)
        provider = self.provider_of(s)
        status = classify(Observation(
            snap.text, alive=snap.alive, exit_code=snap.exit_code,
            seconds_since_output=snap.seconds_since_output,
            seconds_since_start=snap.extra.get("seconds_since_start")), provider.status)
        if status is AgentStatus.NEEDS_INPUT and provider.dialogs:
            from planeai.services.dialogs import answer

            if answer(self, s, provider, snap.text):
                # a first-run dialog planeai answers per the provider's policy: nobody is
                # asked anything, so no needs-input status (nor its hooks) for it
                status = AgentStatus.STARTING
        if not snap.alive:
            s = self._mark_exited(s, snap.exit_code, ev.SESSION_EXITED,
                                  {"exit_code": snap.exit_code})
        elif s.agent_status != status.value:
            s = self.store.set_agent_status(s.id, status.value) or self.store.get_session(s.id)
        # every observer keeps the figures current, a live session at most every 5 s
        self.collect_metrics(s, min_interval=0.0 if not snap.alive else METRICS_EVERY)
        return SessionView(s, status, snap)

    def _host_down(self, kind: str) -> bool:
        """The session's host is marked down (planeai.services.host_state): not asked."""
        from planeai.services import host_state

        return host_state.is_down(self.store, host_of(kind) or "")

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
                                         event=ev.SESSION_EXIT_CODE,
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
            ended = self.store.update_session(s.id, event=event, event_data=data, **fields)
        self.session_ended_remote(ended)
        self.collect_metrics(ended)  # its last figures, read to the end
        return ended

    def _lost(self, s: Session, reason: str, *, leader: int | None = None) -> Session:
        """The backend no longer knows the session: end whatever of it still runs first
        (an agent orphaned by a dead tmux server), so "lost" always means nothing of it
        runs and a re-run can never work beside it."""
        from planeai.backends import procs

        leader = leader or s.pid
        data: dict = {"reason": reason}
        if leader and host_of(s.backend) is not None:
            # its pid is on the host: end what is left there, never a local pid
            be = self.remote_backend(s.backend)
            if be is not None:
                be._end_processes(leader, 5.0)
        elif leader:
            killed = procs.kill_session_processes(leader)
            if killed:
                data["killed_processes"] = killed
        return self._mark_exited(s, None, ev.SESSION_LOST, data, pid=leader)

    def _unreachable(self, s: Session) -> SessionView:
        """A snapshot failed: gone, ended, or a hiccup? Asked once more before judging."""
        be = self.backend(s.backend)
        try:
            info = be.info(s.name)
        except BackendError:
            return SessionView(s, _recorded_status(s), None)  # cannot tell now: judge nothing
        if info is not None:
            if not info.alive:
                s = self._mark_exited(s, info.exit_code, ev.SESSION_EXITED,
                                      {"exit_code": info.exit_code})
                return SessionView(s, AgentStatus.EXITED, None)
            return SessionView(s, _recorded_status(s), None)
        if be.in_process and _run_elsewhere(s):
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
            try:
                never_ran = claim.abort() or not claim.started
            except BackendError:
                return s  # its claim is on a host that does not answer: settle it later
            if never_ran:
                self._forget_quietly(s)
                return self._mark_exited(s, None, ev.SESSION_ABORTED,
                                         {"reason": "start interrupted: the agent never ran"})
            try:
                leader = claim.leader()
                info = self.backend(s.backend).info(s.name)
            except BackendError:
                return s  # cannot ask now: settle it next time
            if info is not None and info.alive:
                return self.store.update_session(
                    s.id, state=SessionState.RUNNING.value, pid=info.pid,
                    agent_status=AgentStatus.STARTING.value, event=ev.SESSION_STARTED,
                    event_data={"pid": info.pid, "backend": s.backend, "adopted": True})
            if info is not None:
                return self._mark_exited(s, info.exit_code, ev.SESSION_EXITED,
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
            if kind not in backend_registry.NAMES and host_of(kind) is None:
                continue  # a backend this version does not have: nothing to ask
            # Opening may raise (tmux uninstalled): the pass fails visibly, judging nothing.
            # An in-process backend this process never opened is opened empty and so says
            # none of its sessions is here (costs one idle thread).
            try:
                be = self.backend(kind)
            except BackendError:
                if host_of(kind) is None:
                    raise
                continue  # a host no longer configured: its sessions cannot be judged here
            try:
                running = be.survey()
            except BackendError as e:
                # could not ask this time (e.g. a host that does not answer): judge nothing,
                # try again later; its sessions are unreachable, not gone
                if host_of(kind) is not None and _is_host_down(e):
                    from planeai.services import host_state

                    host_state.mark_down(self.store, host_of(kind), str(e))
                continue
            if host_of(kind) is not None:
                from planeai.services import host_state

                host_state.mark_up(self.store, host_of(kind))
            for s in sessions:
                info = running.get(s.name)
                if info is None:
                    if be.in_process and _run_elsewhere(s):
                        continue  # owned by another planeai process that is still running
                    changed.append(self._lost(s, be.lost_reason))
                elif not info.alive:
                    changed.append(self._mark_exited(
                        s, info.exit_code, ev.SESSION_EXITED, {"exit_code": info.exit_code}))
        self._reconcile_containers(force=bool(changed))
        return changed

    def _reconcile_containers(self, *, force: bool) -> None:
        """Sandbox containers whose session is not live any more (its supervisor was
        SIGKILLed, the machine crashed) are removed; a live one is simply its session's.
        A `docker ps` costs ~40 ms: asked when a session just ended, else at most every
        CONTAINER_CHECK_EVERY seconds (the dispatcher reconciles every tick)."""
        from planeai.sandbox.engine import SandboxError
        from planeai.services import sandbox

        last = getattr(self, "_containers_checked", None)
        if not force and last is not None and \
                time.monotonic() - last < CONTAINER_CHECK_EVERY:
            return
        self._containers_checked = time.monotonic()

        def lookup(session_id: str) -> Session | None:
            try:
                return self.store.get_session(session_id)
            except PlaneaiError:
                return None

        try:
            sandbox.reconcile(self.locs, lookup)
        except SandboxError:
            pass  # no engine now: nothing of ours can be running on it either


def _recorded_status(s: Session) -> AgentStatus:
    """The last status seen of a session that is live in the store (never "exited": that is
    for the backend to say, not for a guess)."""
    try:
        status = AgentStatus(s.agent_status) if s.agent_status else AgentStatus.STARTING
    except ValueError:
        return AgentStatus.STARTING
    return AgentStatus.STARTING if status is AgentStatus.EXITED else status


def _run_elsewhere(s: Session) -> bool:
    """An in-process session this process does not have: is its owner (the app that runs
    it) still running? Then it is that process's to judge, never this one's. Sessions from
    before owners were recorded fall back to whether the agent's pid lives."""
    from planeai.backends import procs

    if s.owner:
        return s.owner != procs.identity() and procs.alive(s.owner)
    return bool(s.pid) and _pid_alive(s.pid)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_host_down(e: Exception) -> bool:
    from planeai.backends.remote import HostDown

    return isinstance(e, HostDown)
