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
        self.tasks = list(self.tasks)  # its own list: apply() may append to it
        self.reindex()
        self.last_inserts: dict[str, list[str]] = {}  # from the last apply()

    def reindex(self) -> None:
        self.task_by_key = {t.key: t for t in self.tasks}
        self.session_by_id = {s.id: s for s in self.sessions}
        by_task: dict[str, list[Session]] = {}
        for s in self.sessions:
            if s.task_key:
                by_task.setdefault(s.task_key, []).append(s)
        self.sessions_by_task = by_task
        # the sidebar's blocks: a status group's tasks, a project's free sessions
        self.by_group: dict[tuple[int, Status], dict[str, Task]] = {}
        for t in self.tasks:
            self.by_group.setdefault((t.project_id, t.status), {})[t.key] = t
        self.free_by_project: dict[int, dict[str, Session]] = {}
        for s in self.sessions:
            if not s.task_key:
                self.free_by_project.setdefault(s.project_id, {})[s.id] = s

    def project_count(self, project_id: int) -> int:
        return sum(len(self.by_group.get((project_id, st), ())) for st in STATUS_ORDER)

    def apply(self, change) -> set[str]:
        """Apply a planeai.services.board.BoardChange in place, at a cost that grows with
        the change; returns the ids of the sidebar blocks it touched (``g:P:STATUS`` groups,
        ``f:P`` free sessions), for ``build_rows(..., dirty=)``."""
        dirty: set[str] = set()
        # tasks new to the board that are plain roots of their group (no parent there, no
        # subtasks, at most one session): build_rows inserts their row instead of building
        # the group again
        inserts: dict[str, list[str]] = {}
        new_parents = {t.parent_key for t in change.tasks if t.parent_key}

        def drop_task(key: str) -> None:
            old = self.task_by_key.pop(key, None)
            if old is not None:
                self.by_group.get((old.project_id, old.status), {}).pop(key, None)
                dirty.add(group_id(old.project_id, old.status))

        for key in change.gone_tasks:
            drop_task(key)
        only_new = not change.gone_tasks
        for t in change.tasks:
            old = self.task_by_key.get(t.key)
            only_new = only_new and old is None
            if old is not None and (old.project_id, old.status) != (t.project_id, t.status):
                self.by_group.get((old.project_id, old.status), {}).pop(t.key, None)
                dirty.add(group_id(old.project_id, old.status))
            self.task_by_key[t.key] = t
            group = self.by_group.setdefault((t.project_id, t.status), {})
            group[t.key] = t
            gid = group_id(t.project_id, t.status)
            if old is None and (not t.parent_key or t.parent_key not in group) \
                    and t.key not in new_parents:
                inserts.setdefault(gid, []).append(t.key)
            else:
                dirty.add(gid)
            if old is not None and old.parent_key != t.parent_key:
                dirty.update(self._groups_of(old.parent_key, t.parent_key))
        for sid in change.gone_sessions:
            old_s = self.session_by_id.pop(sid, None)
            if old_s is not None:
                self._unlist_session(old_s)
                dirty.add(self._block_of(old_s))
        for sess in change.sessions:
            old_s = self.session_by_id.get(sess.id)
            if old_s is not None:
                self._unlist_session(old_s, keep_place=sess)
            else:
                self._list_session(sess)
            self.session_by_id[sess.id] = sess
            dirty.add(self._block_of(sess))
        if only_new:  # the same order as task_by_key's, without touching every task
            self.tasks.extend(change.tasks)
        else:
            self.tasks = list(self.task_by_key.values())
        self.sessions = list(self.session_by_id.values())
        dirty.discard("")
        # an insert into a group that also changed otherwise, or whose new task got agents
        # rows of their own: build that group again
        self.last_inserts = {
            gid: keys for gid, keys in inserts.items() if gid not in dirty
            and all(len(self.sessions_by_task.get(k, ())) <= 1 for k in keys)}
        return dirty | set(inserts)

    def _groups_of(self, *keys: str | None) -> set[str]:
        out = set()
        for k in keys:
            t = self.task_by_key.get(k or "")
            if t is not None:
                out.add(group_id(t.project_id, t.status))
        return out

    def _block_of(self, s: Session) -> str:
        if not s.task_key:
            return f"f:{s.project_id}"
        t = self.task_by_key.get(s.task_key)
        return group_id(t.project_id, t.status) if t is not None else ""

    def _list_session(self, s: Session) -> None:
        if s.task_key:
            self.sessions_by_task.setdefault(s.task_key, []).append(s)
        else:
            self.free_by_project.setdefault(s.project_id, {})[s.id] = s

    def _unlist_session(self, s: Session, keep_place: Session | None = None) -> None:
        """Take ``s`` out of its task's (or project's) list; with ``keep_place``, put that
        newer copy of it where it was."""
        if s.task_key:
            runs = self.sessions_by_task.get(s.task_key, [])
            i = next((i for i, r in enumerate(runs) if r.id == s.id), None)
            if i is not None:
                if keep_place is not None and keep_place.task_key == s.task_key:
                    runs[i] = keep_place
                    return
                del runs[i]
        else:
            free = self.free_by_project.get(s.project_id, {})
            if keep_place is not None and not keep_place.task_key and s.id in free:
                free[s.id] = keep_place
                return
            free.pop(s.id, None)
        if keep_place is not None:
            self._list_session(keep_place)

    def task_session(self, key: str) -> Session | None:
        """The session the app shows for a task: its newest live one, else its newest."""
        ss = self.sessions_by_task.get(key)
        if not ss:
            return None
        live = [s for s in ss if s.state in LIVE]
        return (live or ss)[-1]


def touched_rows(change) -> set[str]:
    """The sidebar row ids whose drawing a BoardChange may alter: its tasks, its sessions
    and their tasks (a badge), the projects and groups they are in (a count)."""
    ids = {f"t:{t.key}" for t in change.tasks} | {f"t:{k}" for k in change.gone_tasks}
    for s in change.sessions:
        ids.add(f"s:{s.id}")
        if s.task_key:
            ids.add(f"t:{s.task_key}")
    ids.update(f"s:{sid}" for sid in change.gone_sessions)
    return ids


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


def group_id(project_id: int, status: Status) -> str:
    return f"g:{project_id}:{status.value}"


def build_rows(data: Data, collapsed: set[str], expanded: set[str], needle: str = "", *,
               blocks: dict[str, list[Row]] | None = None,
               dirty: set[str] | None = None,
               inserts: dict[str, list[str]] | None = None) -> list[Row]:
    """``collapsed``/``expanded``: ids the user toggled; done groups start collapsed.

    ``blocks``: a cache of the rows of each block (a status group with its tasks, a
    project's free sessions) kept between calls; with ``dirty``, only those blocks (and
    blocks not cached yet) are built again: a change costs the blocks it touched, not the
    board; ``inserts`` (group id -> keys of new plain root tasks, Data.last_inserts): their
    rows are put into the cached group instead. A filter builds everything (and caches
    nothing)."""
    needle = needle.strip().lower()
    if needle or blocks is None:
        blocks, dirty = {}, None
    elif dirty is None:
        blocks.clear()

    def is_collapsed(row_id: str, default: bool) -> bool:
        if needle:
            return False
        if row_id in collapsed:
            return True
        if row_id in expanded:
            return False
        return default

    rows: list[Row] = []
    for p in data.projects:
        pid = f"p:{p.id}"
        pc = is_collapsed(pid, False)
        rows.append(Row("project", pid, 0, p.id, collapsed=pc, count=data.project_count(p.id)))
        if pc:
            continue
        for st in STATUS_ORDER:
            gid = group_id(p.id, st)
            block = blocks.get(gid)
            if block is None or (dirty is not None and gid in dirty):
                gc = is_collapsed(gid, st is Status.DONE)
                if (inserts and gid in inserts and block and dirty is not None
                        and block[0].collapsed == gc):
                    block = _insert_roots(data, block, inserts[gid], p.id, st)
                else:
                    block = _group_block(data, p.id, st, needle, gc, block)
                if not needle:
                    blocks[gid] = block
            rows.extend(block)
        fid = f"f:{p.id}"
        block = blocks.get(fid)
        if block is None or (dirty is not None and fid in dirty):
            block = _free_block(data, p.id, needle, is_collapsed(fid, False))
            if not needle:
                blocks[fid] = block
        rows.extend(block)
    return rows


def _group_block(data: Data, project_id: int, st: Status, needle: str,
                 gc: bool, old: list[Row] | None = None) -> list[Row]:
    """A status group's header and its tasks (subtasks nested, agents under a task).
    ``old``: the block as last built; its rows are reused where unchanged (a Row costs
    more to make than to look up, and a group may hold thousands)."""
    reuse = {r.id: r for r in old} if old else {}

    def task_row(t: Task, depth: int) -> Row:
        r = reuse.get(f"t:{t.key}")
        if r is not None and r.depth == depth and r.status is st:
            return r
        return Row("task", f"t:{t.key}", depth, project_id, task_key=t.key, status=st)

    group = list(data.by_group.get((project_id, st), {}).values())
    if needle:
        group = [t for t in group if _matches(t, needle)]
        if not group:
            return []
    gid = group_id(project_id, st)
    rows = [Row("group", gid, 1, project_id, status=st, collapsed=gc, count=len(group))]
    if gc:
        return rows
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
        rows.append(task_row(t, depth))
        runs = data.sessions_by_task.get(t.key, [])
        if len(runs) > 1:  # several agents on it (`run`, retries): each reachable
            for run in runs:
                rows.append(Row("session", f"s:{run.id}", depth + 1, project_id,
                                task_key=t.key, session_id=run.id, status=st))
        for kid in reversed(sorted(children.get(t.key, []), key=lambda k: k.id)):
            stack.append((kid, depth + 1))
    return rows


def _insert_roots(data: Data, block: list[Row], keys: list[str], project_id: int,
                  st: Status) -> list[Row]:
    """``block`` with a row for each new root task ``keys`` where the full build puts it:
    roots are ordered by priority (highest first), then age; the header counts them."""
    head = block[0]
    rows = [Row("group", head.id, 1, project_id, status=st, collapsed=head.collapsed,
                count=len(data.by_group.get((project_id, st), ())))]
    if head.collapsed:
        return rows
    body = block[1:]
    tasks = data.task_by_key
    for key in keys:
        t = tasks[key]
        order = (-t.priority, t.id)
        at = len(body)
        for i, r in enumerate(body):
            if r.depth == 2 and r.kind == "task":
                o = tasks.get(r.task_key or "")
                if o is not None and (-o.priority, o.id) > order:
                    at = i
                    break
        body.insert(at, Row("task", f"t:{key}", 2, project_id, task_key=key, status=st))
    return rows + body


def _free_block(data: Data, project_id: int, needle: str, fc: bool) -> list[Row]:
    """A project's sessions without a task, under their own group."""
    free = list(data.free_by_project.get(project_id, {}).values())
    if not free or needle:
        return []
    fid = f"f:{project_id}"
    rows = [Row("group", fid, 1, project_id, collapsed=fc, count=len(free))]
    if not fc:
        rows += [Row("session", f"s:{s.id}", 2, project_id, session_id=s.id) for s in free]
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
