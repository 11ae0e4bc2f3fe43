"""The sidebar: projects, tasks by status (subtasks nested), free sessions, live badges.

A ``ScrollView`` on the Line API: rows are plain data (``model.Row``), a ``Strip`` is built
only for the rows on screen and cached until the data, the width or the cursor changes.
Thousands of tasks cost one list of small tuples, not thousands of widgets.
"""

from __future__ import annotations

from math import ceil

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.message import Message
from textual.scrollbar import ScrollBar
from textual.strip import Strip

from planeai.tui.row_list import RowList
from planeai.core.models import Status
from planeai.tui.model import (BADGES, LIVE, STATUS_LABEL, Data, Row, agent_status, build_rows,
                               live_counter)

STATUS_STYLE = {
    Status.TODO: Style(color="bright_cyan", bold=True),
    Status.IN_PROGRESS: Style(color="bright_yellow", bold=True),
    Status.IN_REVIEW: Style(color="bright_magenta", bold=True),
    Status.DONE: Style(color="bright_green", bold=True),
}
_PROJECT = Style(bold=True, color="bright_white")
_DIM = Style(dim=True)
_KEY = Style(bold=True)
_PRIO_UP = Style(color="bright_red")
_PRIO_DOWN = Style(color="blue")
_BLOCKED = Style(color="red", bold=True)
_SEL_FOCUS = Style(bgcolor="#264f78")
_SEL_BLUR = Style(bgcolor="#3a3a3a")
_ADDED = Style(color="green")
_DELETED = Style(color="red")
_BADGE_STYLE = {k: Style.parse(v[1]) for k, v in BADGES.items()}
_COUNTER = Style(color="yellow")
_OVER_BUDGET = Style(color="yellow", bold=True)


class Sidebar(RowList, can_focus=True):
    FOLDABLE = ("project", "group")
    GROUP_KIND = "group"  # where folding from a task row goes
    DEFAULT_CSS = """
    Sidebar {
        width: 100%;
        height: 1fr;
        scrollbar-size-vertical: 1;
        overflow-x: hidden;
    }
    """

    BINDINGS = [
        Binding("left,h", "fold(True)", show=False),
        Binding("right,l", "fold(False)", show=False),
        Binding("space", "toggle", "Fold", show=False),
        Binding("enter", "activate", "Open"),
    ]

    class Highlighted(Message):
        def __init__(self, row: Row | None) -> None:
            super().__init__()
            self.row = row

    class Activated(Message):
        def __init__(self, row: Row) -> None:
            super().__init__()
            self.row = row

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.data = Data()
        self.rows: list[Row] = []
        self.cursor = 0
        self.filter_text = ""
        self._collapsed: set[str] = set()
        self._expanded: set[str] = set()
        self._cache: dict[tuple, Strip] = {}
        self._blocks: dict[str, list[Row]] = {}   # build_rows' cache of built blocks
        self.stats: dict[str, str | None] = {}   # session id -> "+N -M" (the app's worker)
        self.counters: dict[str, str] = {}        # session id -> "12k tok $0.31" (live ones)
        self.over_budget: set[int] = set()        # project ids over their budget
        self._last_highlight: str | None = "?"

    # ------------------------------------------------------------------ data
    def set_data(self, data: Data) -> None:
        self.data = data
        self._rebuild()

    def apply(self, dirty: set[str], touched: set[str]) -> None:
        """``self.data`` changed in place (Data.apply): build again only the blocks in
        ``dirty`` and draw again only the rows in ``touched`` (row ids), so a task added to
        a board of thousands costs its own group, not the board."""
        self._rebuild(dirty=dirty, touched=touched, inserts=self.data.last_inserts)

    def set_stats(self, stats: dict[str, str | None]) -> None:
        """Show these sessions' +/- (merged into the ones shown)."""
        self.stats.update(stats)
        self._cache.clear()
        self.refresh()

    def set_metrics(self, rows: dict, budgets: dict) -> None:
        """Metrics rows (session id -> SessionMetrics) and projects' spend (project id ->
        metrics.Spend) that changed: redraw only when a counter or a budget mark did."""
        changed = False
        for sid, m in rows.items():
            counter = live_counter(m)
            if self.counters.get(sid) != counter:
                changed = True
                if counter is None:
                    self.counters.pop(sid, None)
                else:
                    self.counters[sid] = counter
        for pid, spend in budgets.items():
            if spend.over != (pid in self.over_budget):
                changed = True
                (self.over_budget.add if spend.over else self.over_budget.discard)(pid)
        if changed:
            self._cache.clear()
            self.refresh()

    def _session_id_of(self, row: Row) -> str | None:
        if row.kind == "session":
            return row.session_id
        if row.kind == "task":
            s = self.data.task_session(row.task_key or "")
            return s.id if s is not None else None
        return None

    def _stat_of(self, row: Row) -> str | None:
        sid = self._session_id_of(row)
        if sid is None:
            return None
        stat = self.stats.get(sid)
        return stat if stat and stat.startswith("+") else None  # "no changes": nothing

    def _counter_of(self, row: Row) -> str | None:
        """A running session's live tokens and cost, when its CLI records them."""
        sid = self._session_id_of(row)
        counter = self.counters.get(sid or "")
        if counter is None:
            return None
        s = self.data.session_by_id.get(sid or "")
        return counter if s is not None and s.state in LIVE else None

    def set_filter(self, text: str) -> None:
        self.filter_text = text
        self._rebuild()

    def _rebuild(self, keep: str | None = None, dirty: set[str] | None = None,
                 touched: set[str] | None = None,
                 inserts: dict[str, list[str]] | None = None) -> None:
        keep = keep or (self.current.id if self.current else None)
        old_rows, old_cursor = self.rows, self.cursor
        self.rows = build_rows(self.data, self._collapsed, self._expanded, self.filter_text,
                               blocks=self._blocks, dirty=dirty, inserts=inserts)
        if touched is None:
            self._cache.clear()
        else:  # a strip's key has no badge or title: drop the rows whose ones changed
            for key in [k for k in self._cache if k[0] in touched]:
                del self._cache[key]
        if not (0 <= self.cursor < len(self.rows) and self.rows[self.cursor].id == keep):
            index = next((i for i, r in enumerate(self.rows) if r.id == keep), None)
            if index is not None:
                self.cursor = index
            else:
                self.cursor = min(self.cursor, max(0, len(self.rows) - 1))
        self._set_height(len(self.rows))
        if touched is None:
            self.refresh()
        else:
            self._refresh_changed(old_rows, old_cursor, touched)
        self._announce()

    def _refresh_changed(self, old: list[Row], old_cursor: int, touched: set[str]) -> None:
        """Repaint only the lines on screen whose row changed (a task added below the view
        repaints nothing but its group's count)."""
        sy, (width, height) = self.scroll_offset.y, self.size
        new, cursors = self.rows, (old_cursor, self.cursor)

        def changed(y: int) -> bool:
            i = sy + y
            was = old[i] if i < len(old) else None
            row = new[i] if i < len(new) else None
            return (was is not row and was != row) or (row is not None and row.id in touched) \
                or i in cursors

        # one region from the first changed line to the last: look from both ends
        first = next((y for y in range(height) if changed(y)), None)
        if first is not None:
            last = next(y for y in range(height - 1, first - 1, -1) if changed(y))
            self.refresh(Region(0, first, width, last - first + 1))

    def _set_height(self, rows: int) -> None:
        """The scrollable height: a change re-lays out the whole screen (Textual's
        ``virtual_size`` is a layout reactive, ~20 ms with a big board), so when the
        scrollbar neither comes nor goes only the scrollbar is updated."""
        new = Size(self.size.width, rows)
        old = self.virtual_size
        if new == old:
            return
        height = self.container_size.height
        if (self.is_mounted and old.width == new.width and height > 0
                and (old.height > height) == (rows > height)):
            self.set_reactive(Sidebar.virtual_size, new)
            bar = self.vertical_scrollbar if rows > height else None
            if (bar is not None and bar.window_virtual_size == old.height
                    and self.scroll_offset.y <= rows - height
                    and self._thumb(old.height) == self._thumb(rows)):
                # a row more or less in thousands moves the thumb by less than its
                # smallest step: the same picture, no repaint of the bar
                bar.set_reactive(ScrollBar.window_virtual_size, rows)
            else:
                self._scroll_update(new)  # scrollbar size and position, scroll in range
        else:
            self.virtual_size = new

    def _thumb(self, rows: int) -> tuple[int, int]:
        """Where the scrollbar's thumb is drawn for ``rows`` rows, in eighths of a cell (as
        Textual's ScrollBarRender.render_bar places it)."""
        size = window = self.container_size.height
        if rows <= window or size <= 0:
            return (0, 0)
        thumb = max(1, window / (rows / size))
        position = (size - thumb) * (self.scroll_offset.y / (rows - window))
        start = int(position * 8)
        return (start, start + ceil(thumb * 8))

    def select_id(self, row_id: str) -> bool:
        """Move the cursor to a row (unfolding its group if needed)."""
        ids = {r.id: i for i, r in enumerate(self.rows)}
        if row_id not in ids and row_id.startswith("t:"):
            t = self.data.task_by_key.get(row_id[2:])
            if t is not None:
                for gid in (f"p:{t.project_id}", f"g:{t.project_id}:{t.status.value}"):
                    self._collapsed.discard(gid)
                    self._expanded.add(gid)
                self._rebuild(keep=row_id)
                ids = {r.id: i for i, r in enumerate(self.rows)}
        if row_id not in ids:
            return False
        self._move(ids[row_id])
        return True

    def _announce(self) -> None:
        row = self.current
        rid = row.id if row else None
        if rid != self._last_highlight:
            self._last_highlight = rid
            self.post_message(self.Highlighted(row))

    def reannounce(self) -> None:
        self._last_highlight = "?"
        self._announce()

    # ------------------------------------------------------------------ movement
    def _move(self, index: int) -> None:
        if not self.rows:
            return
        index = max(0, min(len(self.rows) - 1, index))
        old = self.cursor
        self.cursor = index
        width = self.size.width
        sy = self.scroll_offset.y
        for i in (old, index):
            self.refresh(Region(0, i - sy, width, 1))
        self.scroll_to_region(Region(0, index, 1, 1), animate=False, immediate=True)
        self._announce()

    def _set_fold(self, row: Row, fold: bool) -> None:
        if fold:
            self._expanded.discard(row.id)
            self._collapsed.add(row.id)
        else:
            self._collapsed.discard(row.id)
            self._expanded.add(row.id)
        self._rebuild(keep=row.id)

    def action_activate(self) -> None:
        row = self.current
        if row is None:
            return
        if row.kind in ("project", "group"):
            self._set_fold(row, not row.collapsed)
            return
        self.post_message(self.Activated(row))

    # ------------------------------------------------------------------ draw
    def render_line(self, y: int) -> Strip:
        return self._line(y + self.scroll_offset.y, self.size.width, self.has_focus)

    def _line(self, index: int, width: int, focus: bool) -> Strip:
        if not 0 <= index < len(self.rows):
            return self.blank_line()
        row = self.rows[index]
        selected = index == self.cursor
        # headers have no session: no lookups (a repaint draws a screenful of rows)
        stat = counter = None
        if row.kind in ("task", "session") and (self.stats or self.counters):
            stat = self._stat_of(row)
            counter = self._counter_of(row)
        key = (row.id, row.collapsed, row.count, selected, focus, width, stat, counter)
        strip = self._cache.get(key)
        if strip is None:
            right: list[Segment] = []
            if counter:
                right += [Segment(" "), Segment(counter, _COUNTER)]
            if stat:
                added, _, deleted = stat.partition(" ")
                right += [Segment(" "), Segment(added, _ADDED), Segment(" "),
                          Segment(deleted, _DELETED)]
            size = sum(len(seg.text) for seg in right)
            if right and width <= size + 12 and counter and stat:
                right = right[:2]  # narrow: the counter, without the +/-
                size = len(counter) + 1
            if right and width > size + 12:
                # right-aligned, the title gives way: "● PLA-1 Fix the pa… 12k tok $0.31 +12 -3"
                strip = Strip.join([
                    Strip(self._segments(row)).crop_extend(0, width - size, None),
                    Strip(right)])
            else:
                strip = Strip(self._segments(row)).crop_extend(0, width, None)
            if selected:
                strip = strip.apply_style(_SEL_FOCUS if focus else _SEL_BLUR)
            strip = strip.apply_style(self.rich_style)
            if len(self._cache) > 4000:
                self._cache.clear()
            self._cache[key] = strip
        return strip

    def _badge(self, status: str) -> list[Segment]:
        sym = BADGES.get(status, ("?", "", status))[0]
        return [Segment(sym, _BADGE_STYLE.get(status)), Segment(" ")]

    def _segments(self, row: Row) -> list[Segment]:
        pad = Segment("  " * row.depth)
        fold = "▸ " if row.collapsed else "▾ "
        d = self.data
        if row.kind == "project":
            p = next((p for p in d.projects if p.id == row.project_id), None)
            name = p.name if p else "?"
            prefix = p.key_prefix if p else ""
            segs = [pad, Segment(fold + name, _PROJECT), Segment(f" {prefix}", _DIM),
                    Segment(f"  {row.count} task{'' if row.count == 1 else 's'}", _DIM)]
            if row.project_id in self.over_budget:  # the dispatcher starts nothing here
                segs.append(Segment("  $ over budget", _OVER_BUDGET))
            return segs
        if row.kind == "group":
            if row.status is None:
                return [pad, Segment(fold + "Sessions", Style(bold=True, color="bright_blue")),
                        Segment(f" ({row.count})", _DIM)]
            return [pad, Segment(fold + STATUS_LABEL[row.status], STATUS_STYLE[row.status]),
                    Segment(f" ({row.count})", _DIM)]
        if row.kind == "session":
            s = d.session_by_id.get(row.session_id or "")
            if s is None:
                return [pad, Segment("?")]
            return [pad, *self._badge(agent_status(s)), Segment(s.name, _KEY),
                    Segment(f" {s.agent}", _DIM)]
        t = d.task_by_key.get(row.task_key or "")
        if t is None:
            return [pad, Segment(row.task_key or "?")]
        segs = [Segment("  " * min(row.depth, 2) + "  " * max(0, row.depth - 3))]
        if row.depth > 2:
            segs.append(Segment("↳ ", _DIM))
        s = d.task_session(t.key)
        segs += self._badge(agent_status(s)) if s else [Segment("  ")]
        segs.append(Segment(t.key, _KEY))
        if t.priority:
            segs.append(Segment(f" {'↑' if t.priority > 0 else '↓'}{abs(t.priority)}",
                                _PRIO_UP if t.priority > 0 else _PRIO_DOWN))
        if t.open_blockers:
            segs.append(Segment(" ⊘" + ",".join(t.open_blockers), _BLOCKED))
        segs.append(Segment(" " + t.title))
        if row.depth == 2 and t.parent_key:
            segs.append(Segment(f"  ↳ of {t.parent_key}", _DIM))
        return segs
