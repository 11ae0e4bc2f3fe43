"""The main pane when no terminal is shown: a task's details, a project, or a welcome."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from planeai.core.models import Project, Session, Task
from planeai.tui.model import (BADGES, STATUS_LABEL, Figures, ProjectFigures, agent_status,
                               duration, usd)

WARNING = "bold yellow"
PREVIEW_LINES = 6  # the bottom of an agent's last screen shown in a preview


def _tail(screen: list[str] | None, n: int) -> list[str]:
    """The last ``n`` lines of a screen down to its last non-blank one."""
    lines = [ln.rstrip() for ln in (screen or [])]
    while lines and not lines[-1]:
        lines.pop()
    return lines[-n:]


def screen_preview(session: Session | None, screen: list[str] | None) -> list:
    """The bottom of the session's last screen as its observer read it (no capture of its
    own): a small, cheap look at what the agent shows."""
    tail = _tail(screen, PREVIEW_LINES)
    if session is None or not tail:
        return []
    return [Text(""), Text(f"{session.name} screen (last read)", style="bold"),
            Text("\n".join(tail), style="dim", no_wrap=True, overflow="ellipsis")]


def agents_preview(agents: list[tuple[Session, list[str] | None]]) -> Table:
    """A row per live agent: its badge, name, status and the last line of its screen."""
    table = Table.grid(padding=(0, 1))
    table.add_column(no_wrap=True)
    table.add_column(no_wrap=True, overflow="ellipsis", style="dim")
    for s, screen in agents:
        sym, colour, label = BADGES[agent_status(s)]
        last = _tail(screen, 1)
        table.add_row(Text.assemble((sym, colour), " ", (s.name, "bold"), f" {label}"),
                      Text(last[0] if last else ""))
    return table


def _tokens(t) -> str:
    return (f"in {t.input:,}  out {t.output:,}  cache write {t.cache_write:,}  "
            f"cache read {t.cache_read:,}")


def _n(count: int, what: str) -> str:
    return f"{count} {what}" + ("" if count == 1 else "s")


def _times(x) -> list[tuple[str, str | Text]]:
    """Wall, busy, idle and needs-input time, a row each (a narrow pane wraps less)."""
    return [("wall time", duration(x.wall_s)), ("busy", duration(x.busy_s)),
            ("idle", duration(x.idle_s)), ("needs input", duration(x.needs_input_s))]


def session_rows(m) -> list[tuple[str, str | Text]]:
    """A session's figures (a SessionMetrics row): times, exit code, cost, tokens, model.
    Tokens the CLI did not record read "tokens unknown", never 0."""
    rows = _times(m) + [("exit code", "-" if m.exit_code is None else str(m.exit_code))]
    t = m.tokens
    if t is None:
        rows.append(("tokens", Text(f"tokens unknown ({m.agent} records none planeai "
                                    "can read)", style="dim")))
        return rows
    if m.cost_usd is None:
        rows.append(("cost", Text("unknown (no price for "
                                  f"{', '.join(m.unpriced) or 'its model'})", style="dim")))
    else:
        cost = f"{usd(m.cost_usd)} (est.)"
        if m.unpriced:
            cost += f", without {', '.join(m.unpriced)} (no price)"
        rows.append(("cost", cost))
    rows.append(("tokens", _tokens(t)))
    rows.append(("model", m.model or "-"))
    return rows


def task_rows(g) -> list[tuple[str, str | Text]]:
    """A task's figures summed over all its sessions and retries (a metrics.Group)."""
    rows: list[tuple[str, str | Text]] = [
        ("sessions", _n(g.sessions, "session") + (f" ({g.failed} failed)" if g.failed else "")),
    ]
    if g.cost_usd is not None:
        rows.append(("cost", f"{usd(g.cost_usd)} (est.)"))
    if g.tokens is None:
        rows.append(("tokens", Text("tokens unknown", style="dim")))
    else:
        extra = f"   ({g.untracked} with tokens unknown)" if g.untracked else ""
        rows.append(("tokens", _tokens(g.tokens) + extra))
    return rows + _times(g)


def project_rows(f: ProjectFigures) -> list[tuple[str, str | Text]]:
    """A project's cost and activity summary; first its budget and what is left when one is
    set (a narrow pane cuts the bottom off)."""
    total = f.total
    rows: list[tuple[str, str | Text]] = []
    if total.budget > 0:
        if total.over:
            rows.append(("budget", Text(f"{usd(total.budget)}: over budget: no new work "
                                        "starts", style=WARNING)))
        else:
            rows.append(("budget", f"{usd(total.budget)}: {usd(total.budget - total.usd)} "
                                   "left"))
    rows += [
        ("spent today", f"{usd(f.today_usd)} (est.)"),
        ("spent total", f"{usd(total.usd)} (est.), {_n(total.sessions, 'session')}"
                        + (f", {total.unknown} cost unknown" if total.unknown else "")),
        ("today", f"{_n(f.today_sessions, 'session')}, busy {duration(f.today_busy_s)}"),
    ]
    return rows


def _kv(rows: list[tuple[str, str | Text]]) -> Table:
    t = Table.grid(padding=(0, 2))
    t.add_column(style="dim", no_wrap=True)
    t.add_column()
    for k, v in rows:
        t.add_row(k, v)
    return t


class Details(Static):
    DEFAULT_CSS = """
    Details { width: 1fr; height: 1fr; padding: 1 2; }
    """

    _shown: object = ""

    def update(self, content="", **kw) -> None:  # type: ignore[override]
        self._shown = content
        # the pane's size is fixed by the layout, not by what it shows: no relayout of the
        # whole screen for a redraw (one per board change while a project row is selected)
        kw.setdefault("layout", False)
        super().update(content, **kw)

    @property
    def plain(self) -> str:
        """What is shown, as plain text (tests, and screen readers of the future)."""
        import io

        from rich.console import Console

        buf = io.StringIO()
        Console(width=120, file=buf, color_system=None).print(self._shown)
        return buf.getvalue()

    def show_welcome(self, has_projects: bool) -> None:
        if has_projects:
            body = Text("Select a task on the left.\n\n"
                        "n new task   s start a session   ? help   ctrl+p every action")
        else:
            body = Text.assemble(
                ("No projects yet.\n\n", "bold"),
                "Register a git repo from a shell:  ", ("planeai project add PATH", "cyan"),
                "\nor start planeai inside a repo and accept the offer.\n\n",
                "? help   q quit")
        self.update(body)

    def show_project(self, p: Project, counts: dict[str, int], sessions: int,
                     figures: Figures | None = None,
                     agents: list[tuple[Session, list[str] | None]] | None = None) -> None:
        rows: list[tuple[str, str | Text]] = [
            ("key", p.key_prefix), ("path", p.path), ("branch", p.default_branch or "-"),
            ("tasks", ", ".join(f"{STATUS_LABEL[s]} {n}" for s, n in counts.items()) or "none"),
            ("sessions", f"{sessions} running"),
        ]
        parts = [Text(p.name, style="bold"), Text(""), _kv(rows)]
        if figures is not None and figures.project is not None:
            parts += [Text(""), Text("Cost and activity", style="bold"),
                      _kv(project_rows(figures.project))]
        if agents:
            parts += [Text(""), Text("Agents", style="bold"), agents_preview(agents)]
        self.update(Group(*parts, Text(""), Text("n new task   w next waiting   I next idle",
                                                   style="dim")))

    def show_task(self, t: Task, session: Session | None, children: list[str],
                  figures: Figures | None = None, screen: list[str] | None = None) -> None:
        rows: list[tuple[str, str | Text]] = [
            ("status", STATUS_LABEL[t.status]),
            ("priority", str(t.priority)),
        ]
        if t.blocked_by:
            b = Text(", ".join(t.blocked_by))
            if t.open_blockers:
                b.append(f"   waiting for {', '.join(t.open_blockers)}", style="red")
            rows.append(("blocked by", b))
        if t.parent_key:
            rows.append(("parent", t.parent_key))
        if children:
            rows.append(("subtasks", ", ".join(children)))
        if t.base_branch:
            rows.append(("base branch", t.base_branch))
        rows.append(("agent", t.provider or "(default)"))
        if session is not None:
            st = agent_status(session)
            sym, colour, label = BADGES[st]
            line = Text.assemble((sym, colour), f" {session.name}  {label}")
            if session.exit_code is not None:
                line.append(f" (exit {session.exit_code})")
            rows.append(("session", line))
        hint = ("s start a session   e edit   m move   N subtask" if session is None else
                "i terminal   R restart   a archive   s start another")
        parts = [Text(f"{t.key}  {t.title}", style="bold"), Text(""), _kv(rows)]
        parts += self._figures(session, figures)
        if (figures is not None and figures.task is not None
                and (figures.task.sessions > 1 or session is None)):
            parts += [Text(""), Text(f"All {figures.task.sessions} sessions of {t.key} "
                                     "(retries too)", style="bold"), _kv(task_rows(figures.task))]
        if t.description.strip():
            parts += [Text(""), Text(t.description)]
        parts += screen_preview(session, screen)
        parts += [Text(""), Text(hint, style="dim")]
        self.update(Group(*parts))

    def _figures(self, session: Session | None, figures: Figures | None) -> list:
        """The session's figures section, when there is a session."""
        if session is None:
            return []
        m = figures.session if figures is not None else None
        title = Text(f"Session {session.name} ({session.agent})", style="bold")
        if m is None:
            return [Text(""), title, Text("no figures yet", style="dim")]
        return [Text(""), title, _kv(session_rows(m))]

    def show_session(self, s: Session, figures: Figures | None = None,
                     screen: list[str] | None = None) -> None:
        """A session without a task (a free session): its figures."""
        st = agent_status(s)
        sym, colour, label = BADGES[st]
        head = Text.assemble((sym, colour), " ", (s.name, "bold"), f"  {s.agent}  {label}")
        self.update(Group(head, *self._figures(s, figures), *screen_preview(s, screen),
                          Text(""), Text("i terminal   R restart   a archive", style="dim")))

    def show_lost(self, s: Session, why: str, figures: Figures | None = None) -> None:
        self.update(Group(Text(f"{s.name}", style="bold"), Text(""), Text(why),
                          *self._figures(s, figures),
                          Text(""), Text("R restart   a archive", style="dim")))
