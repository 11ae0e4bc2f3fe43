"""The main pane when no terminal is shown: a task's details, a project, or a welcome."""

from __future__ import annotations

from rich.console import Group
from rich.segment import Segment
from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual.geometry import Region, Size
from textual.strip import Strip
from textual.visual import Visual, visualize
from textual.widget import Widget

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


def _text_key(v: object) -> object:
    """What a str or Text draws as, comparable (Text's own == leaves out its style)."""
    if isinstance(v, Text):
        return ("T", v.plain, tuple(v.spans), str(v.style), v.justify, v.overflow,
                v.no_wrap, v.end)
    return v if isinstance(v, str) else None


_DIM = Style(dim=True)


def _PLAIN(text: str) -> bool:
    """One line of printable ASCII without markup or emoji codes: drawn as it is."""
    return text.isascii() and text.isprintable() and "[" not in text and ":" not in text


class KV:
    """Key / value rows drawn as a two-column grid, with a ``key`` saying what they draw, so
    the details pane draws again only the blocks that changed."""

    def __init__(self, rows: list[tuple[str, str | Text]]) -> None:
        self.rows = rows
        values = tuple(_text_key(v) for _k, v in rows)
        self.key = None if None in values else ("kv", tuple(k for k, _v in rows), values)

    def _table(self) -> Table:
        t = Table.grid(padding=(0, 2))
        t.add_column(style="dim", no_wrap=True)
        t.add_column()
        for k, v in self.rows:
            t.add_row(k, v)
        return t

    def __rich_console__(self, console, options):
        lines = self._plain_lines(options.max_width)
        if lines is None:
            yield self._table()
            return
        new_line = Segment.line()
        for key, gap, value in lines:
            yield from (Segment(key, _DIM), Segment(gap, _DIM), Segment(value), new_line)

    def _plain_lines(self, width: int) -> list[tuple[str, str, str]] | None:
        """The grid's lines, drawn directly when every key and value is plain one-line text
        that fits (a board change redraws a project's rows; the table costs ~10 times this),
        the same segments the grid draws; None otherwise."""
        rows = self.rows
        for k, v in rows:
            if not (isinstance(v, str) and k and _PLAIN(k) and _PLAIN(v)):
                return None
        kw = max((len(k) for k, _v in rows), default=0)
        vw = max((len(v) for _k, v in rows), default=0) or 1  # a column is 1 wide at least
        if not rows or kw + 2 + vw > width:
            return None
        return [(k.ljust(kw), "  ", v.ljust(vw)) for k, v in rows]

    def __rich_measure__(self, console, options):
        return self._table().__rich_measure__(console, options)


def _kv(rows: list[tuple[str, str | Text]]) -> KV:
    return KV(rows)


def _part_key(part: object) -> object:
    """A comparable key of one block of the pane, None when it has none (drawn each time)."""
    if isinstance(part, KV):
        return part.key
    if isinstance(part, Text):
        return _text_key(part)
    return None


class Details(Widget):
    """Draws only the lines that changed: a board change while a project row is selected
    alters one line (its task counts); repainting the whole pane was most of what adding a
    task cost the app. Lines are rendered as a Static would render the same content."""

    DEFAULT_CSS = """
    Details { width: 1fr; height: 1fr; padding: 1 2; }
    """

    _shown: object = ""
    _strips: list[Strip] = []
    _at: Size | None = None  # the size ``_strips`` were rendered at; None: render again
    _blocks: dict = {}       # a block's key -> its lines, at the size and style of ``_at``
    lines_repainted = 0      # lines asked to be drawn again since mounted (tests, benches)

    def render(self):
        return self._shown

    def _lines(self) -> list[Strip]:
        """The pane's lines: a Group's blocks each drawn on its own, as the Group would draw
        them, and an unchanged block (by its key) not drawn again."""
        width, height = self.size
        shown = self._shown
        parts = shown.renderables if isinstance(shown, Group) else [shown]
        blocks: dict = {}
        strips: list[Strip] = []
        for part in parts:
            key = _part_key(part)
            lines = self._blocks.get(key) if key is not None else None
            if lines is None:
                lines = self._plain_kv(part, width)
            if lines is None:
                lines = Visual.to_strips(self, visualize(self, part, markup=False), width,
                                         None, self.visual_style)
            if key is not None:
                blocks[key] = lines
            strips.extend(lines)
            if len(strips) >= height:
                break
        self._blocks = blocks
        return strips[:height]

    def _plain_kv(self, part: object, width: int) -> list[Strip] | None:
        """A KV block of plain text, drawn straight to the lines Textual's renderer would
        give it (the pane's base style under each segment), at a fifth of its cost: a
        project's task counts change with every task added. None when it is not plain."""
        if not isinstance(part, KV) or self.text_selection is not None \
                or self.styles.content_align != ("left", "top"):
            return None
        rows = part._plain_lines(width)
        if rows is None:
            return None
        base = self.visual_style.rich_style
        dim = base + _DIM

        def seg(text: str, style: Style) -> Segment:
            return Segment(text, style) if style else Segment(text)
        return [Strip([seg(k, dim), seg(gap, dim), seg(v, base)]) for k, gap, v in rows]

    def update(self, content="") -> None:
        self._shown = content
        old = self._strips if self._at == self.size and self.size.area else None
        if old is None or not self.is_mounted:
            self.refresh()  # drawn whole at the next paint
            return
        # the pane's size is fixed by the layout, not by what it shows: no relayout
        new = self._strips = self._lines()
        width = self.size.width
        changed = [Region(0, y, width, 1) for y in range(max(len(old), len(new)))
                   if y >= len(old) or y >= len(new) or old[y] != new[y]]
        if changed:
            self.lines_repainted += len(changed)
            super().refresh(*changed)

    def refresh(self, *regions: Region, **kw) -> Widget:
        if not regions:  # resized, restyled, a theme change: every line again
            self._at = None
            self._blocks = {}
            self.lines_repainted += self.size.height
        return super().refresh(*regions, **kw)

    def render_line(self, y: int) -> Strip:
        if self._at != self.size:
            self._blocks = {}  # drawn at another width
            self._strips, self._at = self._lines(), self.size
        if y < len(self._strips):
            return self._strips[y]
        return Strip.blank(self.size.width, self.visual_style.rich_style)

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
