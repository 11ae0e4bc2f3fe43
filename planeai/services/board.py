"""The board: what the app shows (projects, tasks, the sessions not archived), the event
log, and how a watcher learns that something changed. The front ends read these through
here, not from the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from planeai.core.models import Event, Project, Session, SessionState, Task
from planeai.errors import ValidationError
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
    app's writes. ``changed(mark)`` says whether anything happened since ``mark``."""

    def __init__(self, db_path: Path | str) -> None:
        self.store = Store.open(db_path)

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
        return snapshot(self.store)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> "BoardFeed":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
