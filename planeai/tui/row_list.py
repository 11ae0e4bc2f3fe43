"""A list of rows drawn line by line (``render_line``), driven by keys and the mouse: the
cursor, paging, jumps, clicks (a double click activates), and a redraw when focus or size
changes. The sidebar (tasks) and the tracker section (Jira, Plane) are both one.

A subclass keeps ``rows`` (each with an ``id``, a ``kind`` and, when it folds, ``collapsed``),
``cursor`` and ``_cache`` (rendered lines), names its foldable row kinds (``FOLDABLE``) and the
kind folding from an inner row goes to (``GROUP_KIND``), and defines ``_move(index)``,
``_set_fold(row, fold)`` and ``action_activate()``; it draws a row by ``render_line`` or,
cheaper when painting many, by ``_line(index, width, focus)``.

Painting hands the compositor the subclass's cached strips themselves (``render_lines``),
so a row that only moved (a task inserted above it) costs a cache hit all the way to the
terminal's bytes.
"""

from __future__ import annotations

from textual import events
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.scroll_view import ScrollView
from textual.strip import Strip


class RowList(ScrollView):
    # moving the cursor; a subclass adds what its rows do (fold, open, take), merged by Textual
    BINDINGS = [
        Binding("up,k", "cursor(-1)", show=False),
        Binding("down,j", "cursor(1)", show=False),
        Binding("pageup", "page(-1)", show=False),
        Binding("pagedown", "page(1)", show=False),
        Binding("home", "jump(0)", show=False),
        Binding("end", "jump(-1)", show=False),
    ]

    FOLDABLE: tuple[str, ...] = ()
    GROUP_KIND = ""

    rows: list
    cursor: int
    _cache: dict

    @property
    def current(self):
        return self.rows[self.cursor] if 0 <= self.cursor < len(self.rows) else None

    def _move(self, index: int) -> None:
        raise NotImplementedError

    def _set_fold(self, row, fold: bool) -> None:
        raise NotImplementedError

    def action_fold(self, fold: bool) -> None:
        row = self.current
        if row is None:
            return
        if row.kind in self.FOLDABLE:
            if row.collapsed != fold:
                self._set_fold(row, fold)
        elif fold:  # on an inner row: to its group
            for i in range(self.cursor - 1, -1, -1):
                if self.rows[i].kind == self.GROUP_KIND:
                    self._move(i)
                    return

    def action_toggle(self) -> None:
        row = self.current
        if row is not None and row.kind in self.FOLDABLE:
            self._set_fold(row, not row.collapsed)

    def action_activate(self) -> None:
        raise NotImplementedError

    def select_id(self, row_id: str) -> bool:
        for i, r in enumerate(self.rows):
            if r.id == row_id:
                self._move(i)
                return True
        return False

    def action_cursor(self, delta: int) -> None:
        self._move(self.cursor + delta)

    def action_page(self, direction: int) -> None:
        self._move(self.cursor + direction * max(1, self.size.height - 1))

    def action_jump(self, where: int) -> None:
        self._move(0 if where == 0 else len(self.rows) - 1)

    def on_click(self, event: events.Click) -> None:
        index = event.y + self.scroll_offset.y
        if 0 <= index < len(self.rows):
            self._move(index)
            if event.chain >= 2:
                self.action_activate()

    def on_focus(self) -> None:
        self._cache.clear()
        self.refresh()

    def on_blur(self) -> None:
        self._cache.clear()
        self.refresh()

    def on_resize(self, event: events.Resize) -> None:
        self._cache.clear()
        self.virtual_size = Size(self.size.width, len(self.rows))

    # ------------------------------------------------------------------ painting
    def render_lines(self, crop: Region) -> list[Strip]:
        """The lines in ``crop``: ``render_line``'s own (cached) strips, filtered.

        Textual's general path wraps every line it paints in a new ``Strip`` (for borders,
        padding, tint), which throws away the caches each strip keeps of its filtered,
        divided and rendered forms: a row inserted at the top then costs every line below
        it a full repaint. A list without any of those styles takes its lines as they are,
        so a line that only moved down is painted from those caches."""
        if not self._plain():
            if self._fast_painted:  # Textual's line cache may hold lines from before
                self._fast_painted = False
                self._styles_cache.clear()
            return super().render_lines(crop)
        self._fast_painted = True
        filters = self.get_line_filters()
        background = self.background_colors[1]
        top, width, focus = self.scroll_offset.y, self.size.width, self.has_focus
        x1, x2 = crop.column_span
        whole = x1 == 0 and x2 >= width
        lines = []
        for y in crop.line_range:
            strip = self._line(top + y, width, focus)
            for line_filter in filters:
                strip = strip.apply_filter(line_filter, background)
            lines.append(strip if whole else strip.crop(x1, x2))
        return lines

    _fast_painted = False

    def _line(self, index: int, width: int, focus: bool) -> Strip:
        """Row ``index``'s line at ``width`` (``focus``: whether the list has the focus);
        a subclass that draws by ``render_line`` alone gets this default."""
        return self.render_line(index - self.scroll_offset.y)

    def _plain(self) -> bool:
        """No border, outline, padding, tint, hatch or opacity: what Textual's styles cache
        would add to a line is nothing."""
        styles = self.styles
        return (self.content_region.size == self.region.size
                and not any(edge for edge, _ in styles.border)
                and not any(edge for edge, _ in styles.outline)
                and not styles.tint.a and self.opacity == 1.0
                and styles.text_opacity == 1.0
                and (not styles.has_rule("hatch") or styles.hatch == "none"))

    def blank_line(self) -> Strip:
        """The line below the last row (one strip per width and style, reused)."""
        key = (self.size.width, self.rich_style)
        if self._blank[0] != key:
            self._blank = (key, Strip.blank(*key))
        return self._blank[1]

    _blank: tuple = (None, None)
