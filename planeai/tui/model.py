"""What the sidebar shows, computed from store data. Pure: no Textual, no I/O.

A ``Snapshot`` of projects, tasks and sessions is loaded off the event loop; ``build_rows``
flattens it into the sidebar's rows (projects, status groups, tasks with their subtasks
nested, free sessions), honouring collapsed groups and the filter.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from planeai.core.models import STATUS_ORDER, Project, Session, SessionState, Status, Task

STATUS_LABEL = {Status.TODO: "To do", Status.IN_PROGRESS: "In progress",
                Status.IN_REVIEW: "In review", Status.DONE: "Done"}

# agent status -> (symbol, colour, label)
BADGES = {
    "starting": ("◌", "cyan", "starting"),
    "busy": ("●", "yellow", "busy"),
    "idle": ("○", "green", "idle"),
    "needs_input": ("◆", "bold magenta", "needs input"),
    "exited": ("✕", "red", "exited"),
}

LIVE = (SessionState.CREATED, SessionState.RUNNING)


@dataclass
class Data:
    projects: list[Project] = field(default_factory=list)
    tasks: list[Task] = field(default_factory=list)
    sessions: list[Session] = field(default_factory=list)   # not archived
    loaded: bool = False

    def __post_init__(self) -> None:
        self.reindex()

    def reindex(self) -> None:
        self.task_by_key = {t.key: t for t in self.tasks}
        self.session_by_id = {s.id: s for s in self.sessions}
        by_task: dict[str, list[Session]] = {}
        for s in self.sessions:
            if s.task_key:
                by_task.setdefault(s.task_key, []).append(s)
        self.sessions_by_task = by_task

    def task_session(self, key: str) -> Session | None:
        """The session the app shows for a task: its newest live one, else its newest."""
        ss = self.sessions_by_task.get(key)
        if not ss:
            return None
        live = [s for s in ss if s.state in LIVE]
        return (live or ss)[-1]


def data_of(board) -> Data:
    """The app's data from a board snapshot (planeai.services.board.BoardSnapshot)."""
    return Data(board.projects, board.tasks, board.sessions, loaded=True)


def load_data(store) -> Data:
    """Projects, tasks and the sessions the sidebar shows (all but archived)."""
    from planeai.services import board

    return data_of(board.snapshot(store))


def preload(store) -> tuple[int, Data]:
    """(last event id, data) for the app's first frame, loaded before the app runs."""
    from planeai.services import board

    last = board.last_change(store)
    return last, load_data(store)


def agent_status(s: Session) -> str:
    if s.state not in LIVE:
        return "exited"
    return s.agent_status or "starting"


@dataclass(frozen=True)
class Row:
    kind: str            # project | group | task | session | empty
    id: str              # stable across reloads: p:1, g:1:todo, t:PLA-1, s:ab12cd34, f:1
    depth: int = 0
    project_id: int | None = None
    task_key: str | None = None
    session_id: str | None = None
    status: Status | None = None
    collapsed: bool = False
    count: int = 0


def default_collapsed(project_ids: list[int]) -> set[str]:
    return {f"g:{pid}:{Status.DONE.value}" for pid in project_ids}


def _matches(t: Task, needle: str) -> bool:
    return needle in t.key.lower() or needle in t.title.lower()


def build_rows(data: Data, collapsed: set[str], expanded: set[str], needle: str = "") -> list[Row]:
    """``collapsed``/``expanded``: ids the user toggled; done groups start collapsed."""
    needle = needle.strip().lower()
    rows: list[Row] = []
    tasks_by_project: dict[int, list[Task]] = {}
    for t in data.tasks:
        tasks_by_project.setdefault(t.project_id, []).append(t)
    free_by_project: dict[int, list[Session]] = {}
    for s in data.sessions:
        if not s.task_key:
            free_by_project.setdefault(s.project_id, []).append(s)

    def is_collapsed(row_id: str, default: bool) -> bool:
        if needle:
            return False
        if row_id in collapsed:
            return True
        if row_id in expanded:
            return False
        return default

    for p in data.projects:
        ptasks = tasks_by_project.get(p.id, [])
        pid = f"p:{p.id}"
        pc = is_collapsed(pid, False)
        rows.append(Row("project", pid, 0, p.id, collapsed=pc, count=len(ptasks)))
        if pc:
            continue
        if needle:
            ptasks = [t for t in ptasks if _matches(t, needle)]
        by_status: dict[Status, list[Task]] = {}
        for t in ptasks:
            by_status.setdefault(t.status, []).append(t)
        for st in STATUS_ORDER:
            group = by_status.get(st, [])
            if needle and not group:
                continue
            gid = f"g:{p.id}:{st.value}"
            gc = is_collapsed(gid, st is Status.DONE)
            rows.append(Row("group", gid, 1, p.id, status=st, collapsed=gc, count=len(group)))
            if gc:
                continue
            keys = {t.key for t in group}
            children: dict[str, list[Task]] = {}
            roots: list[Task] = []
            for t in group:
                if t.parent_key and t.parent_key in keys:
                    children.setdefault(t.parent_key, []).append(t)
                else:
                    roots.append(t)
            roots.sort(key=lambda t: (-t.priority, t.id))
            stack = [(t, 2) for t in reversed(roots)]
            seen: set[str] = set()
            while stack:
                t, depth = stack.pop()
                if t.key in seen:
                    continue
                seen.add(t.key)
                rows.append(Row("task", f"t:{t.key}", depth, p.id, task_key=t.key, status=st))
                runs = data.sessions_by_task.get(t.key, [])
                if len(runs) > 1:  # several agents on it (`run`, retries): each reachable
                    for run in runs:
                        rows.append(Row("session", f"s:{run.id}", depth + 1, p.id,
                                        task_key=t.key, session_id=run.id, status=st))
                for kid in reversed(sorted(children.get(t.key, []), key=lambda k: k.id)):
                    stack.append((kid, depth + 1))
        free = free_by_project.get(p.id, [])
        if free and not needle:
            fid = f"f:{p.id}"
            fc = is_collapsed(fid, False)
            rows.append(Row("group", fid, 1, p.id, collapsed=fc, count=len(free)))
            if not fc:
                for s in free:
                    rows.append(Row("session", f"s:{s.id}", 2, p.id, session_id=s.id))
    return rows


# ---------------------------------------------------------------------- figures (issue 16)
@dataclass(frozen=True)
class ProjectFigures:
    """A project's cost and activity summary (the details panel): estimated USD and
    sessions today, busy time today, and its spend over every session ever
    (planeai.services.metrics.Spend, with the budget when one is set)."""

    today_usd: float
    today_sessions: int
    today_busy_s: float
    total: object          # metrics.Spend


@dataclass(frozen=True)
class Figures:
    """What the details panel shows for a row, loaded off the event loop: the selected
    session's metrics row (None before its first update) and, for a task, the sum over all
    its sessions and retries (a metrics.Group, None when none has figures yet); for a project
    row, its summary."""

    session: object = None        # SessionMetrics | None
    task: object = None           # metrics.Group | None
    project: ProjectFigures | None = None


def short_count(n: int) -> str:
    """12, 950, 12k, 1.2M: a token count in four characters or so."""
    if n < 1000:
        return str(n)
    if n < 10_000:
        return f"{n / 1000:.1f}k".replace(".0k", "k")
    if n < 1_000_000:
        return f"{n // 1000}k"
    return f"{n / 1_000_000:.1f}M".replace(".0M", "M")


def usd(x: float) -> str:
    """$0.31, $12.40; below a cent, $0.0042 (a short session must not read as free)."""
    return f"${x:,.4f}" if 0 < x < 0.01 else f"${x:,.2f}"


def live_counter(m) -> str | None:
    """The sidebar's compact counter of a session's metrics row: "12k tok $0.31", "12k tok"
    when the cost is unknown; None when no tokens are known (never "0 tok")."""
    t = getattr(m, "tokens", None) if m is not None else None
    if t is None:
        return None
    text = f"{short_count(t.total)} tok"
    if m.cost_usd is not None:
        text += f" {usd(m.cost_usd)}"
    return text


def duration(seconds: float | None) -> str:
    """3s, 4m 05s, 2h 03m."""
    s = int(round(seconds or 0))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {s % 3600 // 60:02d}m"
