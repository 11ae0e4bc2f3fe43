"""Session metrics, history and budgets: what each agent did and what it cost.

Per session: wall time; time busy, idle and needing input, from the ``session.status`` events
planeai records while it observes a session; the exit code; and, where the agent CLI records
them, tokens per model (planeai.agents_usage reads Claude Code's transcripts and Codex's
rollouts) with an estimated cost from the price tables (provider files' ``[prices]``, the
config's ``[prices] models`` over them). A CLI that records nothing gives tokens and cost
``None``: shown as "tokens unknown", never as zero.

The figures live in their own table (planeai.store.metrics), so they outlive the session.
Reading is incremental (byte offsets per file kept in that table) and blocking: call
:meth:`MetricsCollector.update` from a worker thread, never from the app's event loop.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Iterable

from planeai.agents_usage import records
from planeai.agents_usage.prices import estimate, parse_table
from planeai.agents_usage.usage import SessionMetrics, Tokens
from planeai.core import events as ev
from planeai.core.models import LIVE_STATES, Project, Session
from planeai.errors import PlaneaiError

# statuses whose time is counted (others, "starting", count only in the wall time)
COUNTED = ("busy", "idle", "needs_input")
# once a session ended, its records are read for this long more (a CLI flushing on exit),
# then the row is final and never read again
SETTLE_S = 10.0
_ENDS = (ev.SESSION_EXITED, ev.SESSION_STOPPED, ev.SESSION_LOST, ev.SESSION_ABORTED,
         ev.SESSION_FAILED)
_AGENT_ENV = ("HOME", "CLAUDE_CONFIG_DIR", "CODEX_HOME")


def _ts(text: str | None) -> datetime | None:
    return records.parse_ts(text) if text else None


def timeline(events: Iterable[tuple[str, str, dict]], *, start: datetime,
             end: datetime) -> dict[str, float]:
    """Seconds spent in each counted status, from ``(ts, kind, data)`` events in order: a
    status lasts from its ``session.status`` event to the next change, an end event
    (exited, stopped, lost ...) or ``end``."""
    spent = dict.fromkeys(COUNTED, 0.0)
    status, since = None, start
    for ts_text, kind, data in events:
        ts = _ts(ts_text)
        if ts is None:
            continue
        ts = min(max(ts, start), end)
        if status in spent:
            spent[status] += (ts - since).total_seconds()
        since = ts
        if kind == ev.SESSION_STATUS:
            status = data.get("to")
        elif kind in (ev.SESSION_STARTED, ev.SESSION_RESTARTED):
            status = "starting"
        elif kind in _ENDS:
            status = None
    if status in spent:
        spent[status] += (end - since).total_seconds()
    return spent


def _proc_env(pid: int | None) -> dict[str, str]:
    """Where the agent keeps its records, from its own environment (/proc, Linux, same
    user); empty when it cannot be read."""
    if not pid:
        return {}
    try:
        raw = open(f"/proc/{pid}/environ", "rb").read()
    except OSError:
        return {}
    out = {}
    for item in raw.split(b"\0"):
        k, sep, v = item.partition(b"=")
        name = k.decode(errors="replace")
        if sep and name in _AGENT_ENV:
            out[name] = v.decode(errors="surrogateescape")
        elif sep and name == "PLANEAI_AGENT_HOME":
            # a sandboxed agent's HOME is its provider's state dir on this host
            # (planeai.sandbox.state): its records are there, not under the user's HOME
            out["_agent_home"] = v.decode(errors="surrogateescape")
    if "_agent_home" in out:
        out = {"HOME": out.pop("_agent_home")}
    return out


class MetricsCollector:
    """Brings the metrics rows of sessions up to date. Thread-safe as the store is; one
    collector per process is enough. ``registry`` gives the provider registry of a project
    (``SessionManager.registry``); ``env`` is the environment sessions were started with
    (their HOME, when the agent's own cannot be read)."""

    def __init__(self, store, config, registry: Callable[[Project | None], object],
                 env: dict[str, str] | None = None) -> None:
        self.store = store
        self.config = config
        self.registry = registry
        self.env = dict(os.environ if env is None else env)
        self._last: dict[str, tuple[float, SessionMetrics]] = {}  # session id -> (when, row)

    @classmethod
    def for_context(cls, ctx) -> "MetricsCollector":
        """The collector of an AppContext (planeai.services.context)."""
        m = ctx.manager
        return cls(ctx.store, ctx.config, m.registry, m.env)

    # ------------------------------------------------------------------ updating
    def update(self, session: Session, *, now: datetime | None = None,
               min_interval: float = 0.0) -> SessionMetrics:
        """Read what is new for ``session`` (status events, the CLI's records) and save its
        row; returns it. Cheap when nothing changed (a stat per file of the session). A
        final row (ended and read to the end) is returned as it is. With ``min_interval``, a
        live session updated by this collector less than that many seconds ago gets its
        last row back without any reading (for callers on every observer tick)."""
        import time

        last = self._last.get(session.id)
        if (last is not None and session.state in LIVE_STATES
                and time.monotonic() - last[0] < min_interval):
            return last[1]
        m = self._read(session, now)
        self._last[session.id] = (time.monotonic(), m)
        return m

    def _read(self, session: Session, now: datetime | None) -> SessionMetrics:
        m = self.store.get_metrics(session.id)
        if m is not None and m.final and session.state not in LIVE_STATES:
            return m  # (a restarted session is live again: read on)
        now = now or datetime.now(timezone.utc)
        if m is None:
            m = SessionMetrics(session.id, session.name, session.project_id,
                               session.project_name, session.task_key, session.provider,
                               session.agent, session.created_at)
        m.name, m.task_key, m.exit_code = session.name, session.task_key, session.exit_code
        start = _ts(session.created_at) or now
        live = session.state in LIVE_STATES
        ended = None if live else (_ts(session.exited_at) or _ts(session.updated_at) or now)
        m.ended_at = None if live else (session.exited_at or session.updated_at)
        end = ended or now
        m.wall_s = max(0.0, (end - start).total_seconds())
        spent = timeline(self.store.session_timeline(session.id), start=start, end=end)
        m.busy_s, m.idle_s, m.needs_input_s = (spent["busy"], spent["idle"],
                                              spent["needs_input"])
        provider = self._provider(session)
        source = records.sources_for(provider.usage) if provider is not None else None
        if source is not None:
            if m.home is None or live:
                agent_env = (_proc_env(session.pid) if live else {}) or {
                    k: self.env[k] for k in _AGENT_ENV if k in self.env}
                if agent_env.get("HOME"):
                    m.home = _encode_env(agent_env)
            cwd = session.worktree or self._project_path(session)
            if cwd:
                w = records.Window(cwd, _decode_env(m.home), start, ended)
                try:
                    records.collect(source, w, m.sources)
                except OSError:
                    pass  # a record unreadable now is read next time
                m.models = records.session_models(m.sources)
        m.cost_usd, m.unpriced = estimate(m.models, self.price_table(provider))
        m.final = ended is not None and (now - ended).total_seconds() >= SETTLE_S
        self.store.save_metrics(m)
        return m

    def update_all(self, sessions: Iterable[Session] | None = None) -> list[SessionMetrics]:
        """Update every session given (default: every session in the store)."""
        out = []
        for s in (self.store.list_sessions() if sessions is None else sessions):
            try:
                out.append(self.update(s))
            except PlaneaiError:
                continue  # a session deleted meanwhile keeps the row it has
        return out

    def _provider(self, session: Session):
        try:
            project = self.store.get_project_by_id(session.project_id)
            return self.registry(project).get(session.provider)
        except PlaneaiError:
            return None

    def _project_path(self, session: Session) -> str | None:
        try:
            return self.store.get_project_by_id(session.project_id).path
        except PlaneaiError:
            return None

    def price_table(self, provider) -> dict:
        """The provider file's prices with the config's [prices] models over them."""
        table = dict(provider.prices) if provider is not None else {}
        table.update(parse_table("[prices] models", self.config.prices.models))
        return table


def _encode_env(env: dict[str, str]) -> str:
    import json

    return json.dumps({k: env[k] for k in _AGENT_ENV if k in env}, sort_keys=True)


def _decode_env(text: str | None) -> dict[str, str]:
    import json

    if not text:
        return {}
    try:
        v = json.loads(text)
    except ValueError:
        return {"HOME": text}
    return v if isinstance(v, dict) else {}


def session_metrics(store, session_id: str) -> SessionMetrics | None:
    """The stored figures of one session (live counters, a details panel), or None before
    its first update. Reads the store only."""
    return store.get_metrics(session_id)


# ---------------------------------------------------------------------- budgets
@dataclass(frozen=True)
class Spend:
    """What a project (or a task) spent, estimated: ``usd`` over every session ever, of
    which ``unknown`` had no cost planeai could estimate (not counted: no tokens recorded, or
    a model without a price); ``budget`` 0 means none."""

    usd: float
    sessions: int
    unknown: int
    budget: float = 0.0

    @property
    def over(self) -> bool:
        return self.budget > 0 and self.usd >= self.budget

    def as_dict(self) -> dict:
        return {"usd": round(self.usd, 6), "sessions": self.sessions,
                "unknown_cost_sessions": self.unknown, "budget_usd": self.budget,
                "over": self.over, "estimated": True}


def spent(store, project_id: int, *, budget: float = 0.0) -> Spend:
    """The estimated spend of a project from the metrics table (deleted sessions too)."""
    usd, n, unknown = store.spent_usd(project_id=project_id)
    return Spend(usd, n, unknown, budget)


def task_spent(store, task_key: str, *, budget: float = 0.0) -> Spend:
    usd, n, unknown = store.spent_usd(task_key=task_key)
    return Spend(usd, n, unknown, budget)


def _usd(x: float) -> str:
    return f"${x:,.2f}"


def over_budget(store, config, project: Project, task_key: str | None = None) -> str | None:
    """Why no new work may start on ``project`` (or on its task ``task_key``): the reason,
    or None while within budget (or no budget is set). For the dispatcher's candidate
    check; reads the metrics table only (bring it up to date with the collector)."""
    b = config.budgets
    budget = b.for_project(project.name)
    if budget > 0:
        s = spent(store, project.id, budget=budget)
        if s.over:
            return (f"project {project.name} spent {_usd(s.usd)} (estimated) of its "
                    f"{_usd(budget)} budget; raise budgets.projects.{project.name} to resume")
    if task_key and task_key in b.tasks and float(b.tasks[task_key]) > 0:
        s = task_spent(store, task_key, budget=float(b.tasks[task_key]))
        if s.over:
            return (f"task {task_key} spent {_usd(s.usd)} (estimated) of its "
                    f"{_usd(s.budget)} budget; raise budgets.tasks.{task_key} to resume")
    return None


def hard_limit(store, config, session: Session, project: Project) -> str | None:
    """With ``budgets.hard_stop``: the reason to stop running ``session`` now (its project or
    task is over budget), else None."""
    if not config.budgets.hard_stop or session.state not in LIVE_STATES:
        return None
    return over_budget(store, config, project, session.task_key)


# ---------------------------------------------------------------------- history
@dataclass
class Group:
    """Metrics summed over sessions that share a key (a task, an agent, a day, a project)."""

    key: str
    sessions: int = 0
    wall_s: float = 0.0
    busy_s: float = 0.0
    idle_s: float = 0.0
    needs_input_s: float = 0.0
    tokens: Tokens | None = None        # None: no session of it recorded tokens
    untracked: int = 0                  # sessions whose tokens are unknown
    cost_usd: float | None = None
    unknown_cost: int = 0               # sessions (with tokens) whose cost is unknown
    failed: int = 0                     # sessions that exited non-zero

    def add(self, m: SessionMetrics) -> None:
        self.sessions += 1
        self.wall_s += m.wall_s
        self.busy_s += m.busy_s
        self.idle_s += m.idle_s
        self.needs_input_s += m.needs_input_s
        t = m.tokens
        if t is None:
            self.untracked += 1
        else:
            self.tokens = t if self.tokens is None else self.tokens + t
        if m.cost_usd is not None:
            self.cost_usd = (self.cost_usd or 0.0) + m.cost_usd
        elif t is not None:
            self.unknown_cost += 1
        if m.exit_code not in (None, 0):
            self.failed += 1

    def as_dict(self) -> dict:
        return {
            "key": self.key, "sessions": self.sessions, "wall_s": round(self.wall_s, 3),
            "busy_s": round(self.busy_s, 3), "idle_s": round(self.idle_s, 3),
            "needs_input_s": round(self.needs_input_s, 3),
            "tokens": self.tokens.as_dict() if self.tokens else None,
            "sessions_without_tokens": self.untracked,
            "cost_usd": None if self.cost_usd is None else round(self.cost_usd, 6),
            "sessions_without_cost": self.unknown_cost, "cost_estimated": True,
            "failed": self.failed,
        }


BY = ("task", "agent", "day", "project", "session")


def _key(m: SessionMetrics, by: str) -> str:
    if by == "task":
        return m.task_key or f"({m.project}: no task)"
    if by == "agent":
        return m.agent
    if by == "day":
        return m.started_at[:10]
    if by == "project":
        return m.project
    return m.name


def group(rows: Iterable[SessionMetrics], by: str) -> list[Group]:
    """Rows summed per ``by`` key (one of BY), in key order."""
    groups: dict[str, Group] = {}
    for m in rows:
        k = _key(m, by)
        groups.setdefault(k, Group(k)).add(m)
    return [groups[k] for k in sorted(groups)]


def history(store, *, project_ids: list[int] | None = None, since: str | None = None
            ) -> list[SessionMetrics]:
    """Every metrics row (deleted sessions' too) of the projects given, started on or
    after ``since`` (ISO date or time)."""
    return store.list_metrics(project_ids=project_ids, since=since)


# ---------------------------------------------------------------------- the stats report
def parse_since(text: str, *, now: datetime | None = None) -> str:
    """``--since``: a date (2026-11-30), a date and time (ISO 8601) or an age (``12h``,
    ``7d``), as the ISO text started_at is compared with. Raises ValidationError."""
    import re
    from datetime import timedelta

    from planeai.errors import ValidationError

    t = text.strip()
    m = re.fullmatch(r"(\d{1,6})([hdw])", t)
    if m:
        n, unit = int(m.group(1)), m.group(2)
        delta = {"h": timedelta(hours=n), "d": timedelta(days=n), "w": timedelta(weeks=n)}[unit]
        return ((now or datetime.now(timezone.utc)) - delta).isoformat(timespec="milliseconds")
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", t):
            return datetime.fromisoformat(t).date().isoformat()
        ts = datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError:
        ts = None
    if ts is None:
        raise ValidationError(f"--since {text!r} is not a date; accepted: YYYY-MM-DD, an ISO "
                              "date and time, or an age like 12h, 7d, 2w")
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=timezone.utc)
    return ts.astimezone(timezone.utc).isoformat(timespec="milliseconds")


@dataclass
class Report:
    by: str
    since: str | None
    groups: list[Group]
    total: Group
    budgets: list[tuple[str, Spend]]   # (project, spend) for projects with a budget

    def as_dict(self) -> dict:
        return {"by": self.by, "since": self.since,
                "groups": [g.as_dict() for g in self.groups], "total": self.total.as_dict(),
                "budgets": [{"project": p, **s.as_dict()} for p, s in self.budgets],
                "cost_estimated": True}


def report(ctx, *, project: str | None = None, since: str | None = None, by: str = "task",
           refresh: bool = True) -> Report:
    """`planeai stats`: bring the metrics of unfinished rows up to date (blocking: reads
    the agents' records), then sum them per ``by``. ``project`` is a registered project
    (name, key or path) or the name of one that is gone but left metrics behind."""
    from planeai.errors import NotFoundError, ValidationError

    if by not in BY:
        raise ValidationError(f"--by {by!r} is not accepted; one of: {', '.join(BY)}")
    store = ctx.store
    since_iso = parse_since(since) if since else None
    project_ids = None
    gone_name = None
    if project:
        p = store.find_project(project, include_archived=True)
        if p is not None:
            project_ids = [p.id]
        elif any(m.project == project for m in store.list_metrics()):
            gone_name = project
        else:
            names = ", ".join(x.name for x in store.list_projects()) or "none registered"
            raise NotFoundError(f"no project {project!r}; known: {names}")
    if refresh:
        sessions = [s for s in store.list_sessions()
                    if project_ids is None or s.project_id in project_ids]
        MetricsCollector.for_context(ctx).update_all(sessions)
    rows = history(store, project_ids=project_ids, since=since_iso)
    if gone_name:
        rows = [m for m in rows if m.project == gone_name]
    total = Group("total")
    for m in rows:
        total.add(m)
    budgets = []
    for p in store.list_projects(include_archived=True):
        if project_ids is not None and p.id not in project_ids:
            continue
        b = ctx.config.budgets.for_project(p.name)
        if b > 0:
            budgets.append((p.name, spent(store, p.id, budget=b)))
    return Report(by, since_iso, group(rows, by), total, budgets)
