"""A list of rows drawn line by line (``render_line``), driven by keys and the mouse: the
cursor, paging, jumps, clicks (a double click activates), and a redraw when focus or size
changes. The sidebar (tasks) and the tracker section (Jira, Plane) are both one.

A subclass keeps ``rows`` (each with an ``id``, a ``kind`` and, when it folds, ``collapsed``),
``cursor`` and ``_cache`` (rendered lines), names its foldable row kinds (``FOLDABLE``) and the
kind folding from an inner row goes to (``GROUP_KIND``), and defines ``_move(index)``,
``_set_fold(row, fold)`` and ``action_activate()``.
"""

from __future__ import annotations

from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.scroll_view import ScrollView


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
