"""The compare view (C): the sessions of one task side by side, one row each (agent, state,
files changed, +/-, last check, duration); enter opens a session's diff, W keeps it (merged,
the others discarded with their work in recovery refs).

The numbers are computed in a worker thread (planeai.services.review, no service lock); the
table is a DataTable, a handful of rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Static

from planeai.errors import PlaneaiError
from planeai.tui.actions import actions_for
from planeai.tui.keybar import KeyBar
from planeai.tui.model import BADGES, agent_status


@dataclass
class Entry:
    """One session's row."""

    id: str
    name: str
    agent: str
    status: str               # the badge's key (busy, idle, exited, ...)
    files: int | None         # None: no worktree
    added: int = 0
    deleted: int = 0
    check: bool | None = None  # the last check passed / failed / none
    seconds: float | None = None
    note: str = ""


def _seconds(start: str, end: str | None) -> float | None:
    try:
        t0 = datetime.fromisoformat(start)
        t1 = datetime.fromisoformat(end) if end else datetime.now(timezone.utc)
        return max(0.0, (t1 - t0).total_seconds())
    except (TypeError, ValueError):
        return None


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def load_entries(store, key: str, sessions: list) -> list[Entry]:
    """In a worker thread: each session's diff numbers and last check."""
    from planeai.services import review

    out = []
    for s in sessions:
        e = Entry(s.id, s.name, s.agent, agent_status(s), None,
                  seconds=_seconds(s.created_at, s.exited_at))
        try:
            d = review.diff(store, key, s.id)
            e.files, e.added, e.deleted = len(d.files), d.added, d.deleted
        except PlaneaiError as err:
            e.note = str(err)
        try:
            check = review.last_check(store, key, s.id)
        except PlaneaiError:
            check = None
        e.check = None if check is None else bool(check.get("passed"))
        out.append(e)
    return out


class CompareScreen(Screen[None]):
    WHERE = "compare"

    DEFAULT_CSS = """
    CompareScreen #compare-title { height: 1; background: $boost; padding: 0 1; }
    CompareScreen DataTable { height: 1fr; }
    CompareScreen #compare-note { height: auto; padding: 0 1; color: $text-muted; }
    """

    BINDINGS = [Binding(a.key, a.action, a.label, show=a.footer, key_display=a.display)
                for a in actions_for("compare")]

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key
        self.entries: list[Entry] = []
        self.loads = 0

    def compose(self) -> ComposeResult:
        yield Static(Text.assemble((self.key, "bold"), "  comparing its sessions…"),
                     id="compare-title")
        table = DataTable(id="sessions", cursor_type="row", zebra_stripes=True)
        # fixed widths: auto-sized columns start from the header's width after clear()
        for label, width in (("session", 12), ("agent", 16), ("state", 13), ("files", 5),
                             ("+/-", 13), ("checks", 9), ("duration", 8)):
            table.add_column(label, width=width)
        yield table
        yield Static(id="compare-note")
        yield KeyBar(id="compare-keys")

    def on_mount(self) -> None:
        self.action_reload()

    def action_reload(self) -> None:
        app = self.app
        sessions = list(app.data.sessions_by_task.get(self.key, []))
        store, key = app.manager.store, self.key
        app._service(f"compare {key}", lambda: load_entries(store, key, sessions),
                     self._loaded, lock=False)

    def _loaded(self, entries: list[Entry]) -> None:
        if not self.is_attached:
            return
        self.entries = entries
        task = self.app.data.task_by_key.get(self.key)
        self.query_one("#compare-title", Static).update(Text.assemble(
            (self.key, "bold"), f"  {task.title if task else ''}  ",
            (f"{len(entries)} session{'s' if len(entries) != 1 else ''}", "dim")))
        table = self.query_one(DataTable)
        row = table.cursor_row
        table.clear()
        for e in entries:
            sym, colour, label = BADGES.get(e.status, ("?", "", e.status))
            changes = (Text("no worktree", style="dim") if e.files is None else
                       Text.assemble((f"+{e.added}", "green"), " ", (f"-{e.deleted}", "red")))
            check = (Text("-", style="dim") if e.check is None else
                     Text("✓ passed", style="green") if e.check else
                     Text("✗ failed", style="red"))
            table.add_row(Text(e.name, style="bold"), e.agent,
                          Text.assemble((sym, colour), f" {label}"),
                          "-" if e.files is None else str(e.files), changes, check,
                          duration(e.seconds), key=e.id)
        if entries:
            table.move_cursor(row=min(row, len(entries) - 1))
        table.focus()
        notes = [f"{e.name}: {e.note}" for e in entries if e.note]
        self.query_one("#compare-note", Static).update(Text("\n".join(notes), style="dim"))
        self.loads += 1

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()  # enter on a row (the table takes the key before the screen)
        self.action_open_diff()

    def _current(self) -> Entry | None:
        table = self.query_one(DataTable)
        if not self.entries or not 0 <= table.cursor_row < len(self.entries):
            self.app.notify("no session here", severity="warning")
            return None
        return self.entries[table.cursor_row]

    def action_open_diff(self) -> None:
        from planeai.tui.diff_view import DiffScreen

        e = self._current()
        if e is not None:
            self.app.push_screen(DiffScreen(self.key, e.id), lambda _: self.action_reload())

    def action_keep(self) -> None:
        e = self._current()
        if e is None:
            return
        others = [o.name for o in self.entries if o.id != e.id]

        def kept(ok: bool) -> None:
            self.app.refresh_stats()
            if ok and self.is_current:
                self.dismiss(None)
            elif self.is_attached:
                self.action_reload()

        self.app.review_keep(self.key, e.name, e.id, others, kept)

    def action_back(self) -> None:
        self.dismiss(None)
