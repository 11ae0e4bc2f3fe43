"""The board: what the app shows (projects, tasks, the sessions not archived), the event
log, and how a watcher learns that something changed. The front ends read these through
here, not from the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from planeai.core import events as ev
from planeai.core.models import Event, Project, Session, SessionState, Task
from planeai.errors import NotFoundError, ValidationError
from planeai.store.repository import Store

# the sessions the board lists: every one but the archived
SHOWN_STATES = (SessionState.CREATED, SessionState.RUNNING, SessionState.EXITED)
# how many new events one look reads; more means "changed" all the same
_PAGE = 1000


@dataclass(frozen=True)
class BoardSnapshot:
    projects: list[Project]
    tasks: list[Task]
    sessions: list[Session]


@dataclass
class BoardChange:
    """What some events changed, read now: tasks added or changed (``tasks``), task keys
    gone (deleted, or their project no longer shown), sessions added or changed, session ids
    gone (archived or deleted). A watcher applies it to the rows it touches. ``asking``: the
    sessions whose agent started needing input in these events (each time it did, even when
    it has answered and asked again since the last look)."""

    tasks: list[Task] = field(default_factory=list)
    gone_tasks: list[str] = field(default_factory=list)
    sessions: list[Session] = field(default_factory=list)
    gone_sessions: list[str] = field(default_factory=list)
    asking: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.tasks or self.gone_tasks or self.sessions or self.gone_sessions)


# events that name no task or session and change nothing the board shows; any other event
# that names neither (a project added, a sync, a kind this version does not know) means
# "read everything again"
_QUIET = frozenset({
    ev.DISPATCH_LEASE, ev.DISPATCH_WAITING, ev.DISPATCH_ERROR, ev.DISPATCH_OVER_BUDGET,
    ev.DISPATCH_DISPATCHED, ev.DISPATCH_COMPLETED, ev.DISPATCH_FAILED, ev.DISPATCH_STALE,
    ev.DISPATCH_ABORTED, ev.HOOK_RAN, ev.HOOK_FAILED, ev.REVIEW_CHECKED,
    ev.TRACKER_WRITEBACK, ev.PLANE_ACTIVITY, ev.PLANE_ERROR,
})


def snapshot(store: Store) -> BoardSnapshot:
    """Projects, tasks and the sessions the board shows, read now."""
    return BoardSnapshot(store.list_projects(), store.list_tasks(), sessions(store))


def sessions(store: Store, *, archived: bool = False) -> list[Session]:
    """The sessions the board shows, oldest first; with ``archived``, every one."""
    return store.list_sessions(states=None if archived else list(SHOWN_STATES))


def event_log(store: Store, *, after: int = 0, task_key: str | None = None,
              limit: int = 1000, newest: bool = True) -> list[Event]:
    """Up to ``limit`` events after id ``after`` (of one task when ``task_key``), printed
    oldest first: the newest ones, or with ``newest=False`` the first ones after ``after``."""
    from planeai.core import validate

    if limit < 1:
        raise ValidationError(f"--limit {limit}: give a count of 1 or more")
    if after < 0:
        raise ValidationError(f"--after {after}: give an event id of 0 or more")
    key = validate.normalize_key(task_key) if task_key else None
    return store.events(after=after, task_key=key, limit=limit, newest=newest)


def last_change(store: Store) -> int:
    """A mark of the board's state: the last event id (every change appends one)."""
    return store.last_event_id()


class BoardFeed:
    """A connection of its own for a watcher thread, so its reads never queue behind the
    app's writes. ``changed(mark)`` says whether anything happened since ``mark``;
    ``changes(mark)`` says what, as a ``BoardChange`` (cost grows with the change, not the
    board), or that everything must be read again."""

    def __init__(self, db_path: Path | str) -> None:
        self.store = Store.open(db_path)
        self._shown_projects: set[int] | None = None   # from the last snapshot
        self._dependents: dict[str, set[str]] = {}     # blocker key -> keys it blocks

    @classmethod
    def beside(cls, store: Store) -> "BoardFeed":
        """A feed on the same database as ``store``."""
        return cls(store.path)

    def mark(self) -> int:
        return last_change(self.store)

    def changed(self, mark: int) -> int | None:
        """The new mark when events were appended after ``mark``, else None."""
        events = self.store.events(after=mark, limit=_PAGE)
        if not events:
            return None
        return events[-1].id if len(events) < _PAGE else self.store.last_event_id()

    def snapshot(self) -> BoardSnapshot:
        snap = snapshot(self.store)
        self._shown_projects = {p.id for p in snap.projects}
        self._dependents = {}
        self._note(snap.tasks)
        return snap

    def _note(self, tasks: list[Task]) -> None:
        for t in tasks:
            for b in t.blocked_by:
                self._dependents.setdefault(b, set()).add(t.key)

    def changes(self, mark: int) -> tuple[int, BoardChange | None] | None:
        """After ``mark``: None when nothing happened, else (new mark, change); the change
        is None when the events need everything read again (``snapshot()``): a project
        added or removed, a kind that names no row, more events than one page, or a feed
        that has no snapshot yet. A task's status moving re-reads the tasks it blocks
        (their open blockers changed)."""
        events = self.store.events(after=mark, limit=_PAGE)
        if not events:
            return None
        if len(events) >= _PAGE or self._shown_projects is None:
            return self.store.last_event_id(), None
        task_keys: dict[str, None] = {}
        session_ids: dict[str, None] = {}
        asking: dict[str, None] = {}
        for e in events:
            if e.task_key:
                task_keys[e.task_key] = None
                for k in self._dependents.get(e.task_key, ()):
                    task_keys[k] = None
            if e.session_id:
                session_ids[e.session_id] = None
                if e.kind == ev.SESSION_STATUS and (e.data or {}).get("to") == "needs_input":
                    asking[e.session_id] = None
            if not (e.task_key or e.session_id) and e.kind not in _QUIET:
                return events[-1].id, None
        change = BoardChange(asking=list(asking))
        for key in task_keys:
            try:
                t = self.store.get_task(key)
            except NotFoundError:
                change.gone_tasks.append(key)
                continue
            if t.project_id in self._shown_projects:
                change.tasks.append(t)
            else:
                change.gone_tasks.append(key)
        self._note(change.tasks)
        shown = set(SHOWN_STATES)
        for sid in session_ids:
            try:
                s = self.store.get_session(sid)
            except NotFoundError:
                change.gone_sessions.append(sid)
                continue
            if s.state in shown and s.project_id in self._shown_projects:
                change.sessions.append(s)
            else:
                change.gone_sessions.append(sid)
        return events[-1].id, change

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> "BoardFeed":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
