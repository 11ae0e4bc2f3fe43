"""The sidebar's tracker section: Jira filters and Plane projects, their synced items, and
the app's tracker actions (take an item into a project, sync now).

The section is its own widget under the sidebar (shown only when [jira] or [plane] is
configured), with its own cursor: ``J`` moves the focus to it and back. Its worker thread,
on a store connection of its own (services.board.BoardFeed), reads the items again when a
``tracker.*`` event is appended and, while the app is not auto-dispatching (the dispatcher
pokes its own), pokes a TrackerPoller / PlaneSyncPoller so ``sync_interval`` works in the
app too.

Synced text is hostile: every field reaches the screen only through
``services.trackers.display_row`` / ``one_line`` (one line, no control characters, cut),
and as plain Segments, never markup.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from typing import Any

from rich.segment import Segment
from rich.style import Style
from textual import work
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.message import Message
from textual.strip import Strip
from textual.worker import get_current_worker

from planeai.tui.row_list import RowList
from planeai.errors import PlaneaiError

LABELS = {"jira": "Jira", "plane": "Plane"}
POKE_EVERY = 2.0       # seconds between pokes of the periodic pollers
FEED_SCOPE = "feed"    # the Plane agent poller's sync state: not a project

_HEAD = Style(bold=True, color="bright_blue")
_DIM = Style(dim=True)
_KEY = Style(bold=True)
_TASK = Style(color="bright_green")
_GONE = Style(color="red", dim=True)
_ERROR = Style(color="red", bold=True)
_BUSY = Style(color="yellow")
_SEL_FOCUS = Style(bgcolor="#264f78")
_SEL_BLUR = Style(bgcolor="#3a3a3a")


def configured(config) -> list[str]:
    """The trackers this config syncs, in the order the section shows them."""
    out = []
    if config.jira.url.strip():
        out.append("jira")
    if config.plane.workspace.strip() and config.plane.projects:
        out.append("plane")
    return out


def scope_label(config, source: str, scope: str) -> str:
    """A group's name: the Jira filter, or the planeai project a Plane project maps to."""
    from planeai.services.trackers import one_line

    if source == "plane":
        return one_line(config.plane.projects.get(scope) or scope, 40)
    return one_line(scope, 40)


def default_project(config, item) -> str | None:
    """The planeai project a take offers first: the filter's auto_take, or the project a
    Plane project maps to."""
    if item.source == "plane":
        return config.plane.projects.get(item.scope)
    return config.jira.auto_take.get(item.scope)


def take_item(store, config, item, project_path: str):
    """Make ``item`` a task of the project at ``project_path``; returns the Task. Raises
    PlaneaiError (ConflictError: taken already)."""
    if item.source == "plane":
        from planeai.services.plane_sync import PlaneSync

        return PlaneSync(store, config, None).take(item.external_id,  # type: ignore[arg-type]
                                                   project_path)
    from planeai.services import trackers

    return trackers.take(store, config, item.external_id, project_path, source=item.source)


@dataclass
class TRow:
    id: str
    kind: str                      # "scope" | "note" | "item" | "empty"
    source: str
    scope: str = ""
    item: Any = None               # a TrackerItem for "item" rows
    count: int = 0
    collapsed: bool = False
    text: str = ""                 # "note" / "empty": our own words (safe)
    style: Style | None = None
    right: str = ""                # the header's sync state


class TrackerSection(RowList, can_focus=True):
    FOLDABLE = ("scope",)
    GROUP_KIND = "scope"
    DEFAULT_CSS = """
    TrackerSection {
        display: none;   /* shown when [jira] or [plane] is configured */
        width: 100%;
        height: auto;
        max-height: 45%;
        border-top: hkey $primary-darken-2;
        scrollbar-size-vertical: 1;
        overflow-x: hidden;
    }
    """

    BINDINGS = [
        Binding("left,h", "fold(True)", show=False),
        Binding("right,l", "fold(False)", show=False),
        Binding("space", "toggle", show=False),
        Binding("enter", "activate", show=False),
        Binding("escape", "leave", show=False),
    ]

    class Loaded(Message):
        def __init__(self, groups: dict[str, list]) -> None:
            super().__init__()
            self.groups = groups

    class Progress(Message):
        """A sync's progress or end for one group (``text`` is ours: numbers, inert errors)."""

        def __init__(self, source: str, scope: str | None, text: str,
                     style: str = "busy") -> None:
            super().__init__()
            self.source, self.scope, self.text, self.style = source, scope, text, style

    class SyncDone(Message):
        def __init__(self, source: str, summary: str, error: str | None) -> None:
            super().__init__()
            self.source, self.summary, self.error = source, summary, error

    class Background(Message):
        """The sources a periodic pass (TrackerPoller, PlaneSyncPoller) runs for now."""

        def __init__(self, sources: set[str]) -> None:
            super().__init__()
            self.sources = sources

    class TakeRequested(Message):
        def __init__(self, item) -> None:
            super().__init__()
            self.item = item

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.groups: dict[str, list] = {}
        self.rows: list[TRow] = []
        self.cursor = 0
        self.loads = 0
        self.notes: dict[tuple[str, str | None], tuple[str, str]] = {}  # (src, scope) -> note
        self.progress_shown: list[str] = []    # every progress line shown (tests read it)
        self.syncing: set[str] = set()         # sources a sync-now runs for
        self.background: set[str] = set()      # sources a periodic pass runs for
        self._collapsed: set[str] = set()
        self._cache: dict[tuple, Strip] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.sources: list[str] = []
        self._clients: set = set()             # the clients a sync now uses

    # ------------------------------------------------------------------ lifecycle
    @property
    def config(self):
        return self.app.manager.config

    def on_mount(self) -> None:
        self.sources = configured(self.config)
        self.display = bool(self.sources)
        if self.sources:
            self._rebuild()
            self._feed()

    def on_unmount(self) -> None:
        self._stop.set()
        self._wake.set()
        for client in list(self._clients):  # a sync now ends soon: the app's exit waits for it
            client.close()

    def reload(self) -> None:
        """Read the items again now."""
        self._wake.set()

    @work(thread=True, exclusive=True, group="trackers", exit_on_error=False)
    def _feed(self) -> None:
        """Reads the items at start and after every tracker.* event; pokes the periodic
        pollers while the app is not dispatching (the dispatcher pokes its own)."""
        from planeai.services import trackers
        from planeai.services.board import BoardFeed

        worker = get_current_worker()
        app = self.app
        interval = getattr(app, "poll_interval", 0.5)
        feed = BoardFeed.beside(app.manager.store)
        store = feed.store
        pollers: dict[str, Any] = {}
        try:
            if "jira" in self.sources:
                pollers["jira"] = trackers.TrackerPoller(store, self.config, app.manager.locs)
            if "plane" in self.sources:
                from planeai.services.plane_sync import PlaneSyncPoller

                pollers["plane"] = PlaneSyncPoller(store, self.config, app.manager.locs)
            mark, load, poked = -1, True, 0.0
            running: set[str] = set()    # sources a periodic pass runs for
            while not worker.is_cancelled and not self._stop.is_set():
                try:
                    now = time.monotonic()
                    if now - poked >= POKE_EVERY and not getattr(app, "dispatching", False):
                        poked = now
                        for p in pollers.values():
                            p.poke()
                    busy = {s for s, p in pollers.items() if p.busy()}
                    if busy != running:
                        # a pass that ended may have recorded an error without an event
                        load = load or bool(running - busy)
                        running = busy
                        self.post_message(self.Background(busy))
                    last = store.last_event_id()
                    if last != mark:
                        if mark >= 0 and not load:
                            load = any(e.kind.startswith("tracker.")
                                       for e in store.events(after=mark, limit=1000)) or \
                                last - mark >= 1000
                        mark = last
                    if load or self._wake.is_set():
                        self._wake.clear()
                        load = False
                        self.post_message(self.Loaded({
                            s: [g for g in trackers.groups(store, s, include_gone=True)
                                if not (s == "plane" and g.scope == FEED_SCOPE)]
                            for s in self.sources}))
                except Exception:  # a locked or busy db: next round
                    pass
                self._wake.wait(interval)
        finally:
            for p in pollers.values():
                stop = getattr(p, "stop", None)
                if stop is not None:
                    stop(timeout=2)
            feed.close()

    # ------------------------------------------------------------------ sync now
    def sync_now(self) -> bool:
        """Sync every configured tracker now, in a worker thread; False when one runs."""
        if not self.sources or self.syncing or self.background:
            return False
        self.syncing = set(self.sources)
        self.notes.clear()    # the last sync's results and errors give way
        for s in self.sources:
            self._note(s, None, "syncing…", "busy")
        self._sync(list(self.sources))
        return True

    @work(thread=True, exclusive=True, group="tracker-sync", exit_on_error=False)
    def _sync(self, sources: list[str]) -> None:
        from planeai.services.board import BoardFeed

        app = self.app
        with BoardFeed.beside(app.manager.store) as feed:
            for source in sources:
                try:
                    summary, error = (self._sync_jira if source == "jira"
                                      else self._sync_plane)(feed.store, app)
                except PlaneaiError as e:
                    summary, error = "", str(e)
                except Exception as e:  # never a crash: say what broke
                    summary, error = "", f"{type(e).__name__}: {e}"
                self.post_message(self.SyncDone(source, summary, error))

    def _sync_jira(self, store, app) -> tuple[str, str | None]:
        from planeai.services import trackers

        def progress(name: str, page: int, items: int) -> None:
            self.post_message(self.Progress(
                "jira", name, f"syncing: page {page} · {items} item{'' if items == 1 else 's'}"))

        client = trackers.open_jira(self.config, app.manager.locs)
        self._clients.add(client)
        try:
            for name in self.config.jira.filters:
                self.post_message(self.Progress("jira", name, "syncing: page 1 …"))
            report = trackers.sync(store, self.config, client, progress=progress)
        finally:
            client.close()
            self._clients.discard(client)
        lines = []
        for f in report.filters:
            if f.error:
                self.post_message(self.Progress("jira", f.name, short_error(f.error),
                                                "error"))
                continue
            counts = _counts(f.items, f.new, f.updated, len(f.gone), len(f.taken))
            self.post_message(self.Progress("jira", f.name, "✓ " + counts, "done"))
            lines.append(f"{f.name}: {counts} ({f.pages} page{'' if f.pages == 1 else 's'})")
        return "; ".join(lines), "; ".join(report.errors) or None

    def _sync_plane(self, store, app) -> tuple[str, str | None]:
        from planeai.services.plane_sync import PlaneSync, plane_client

        def progress(pid: str, items: int) -> None:
            self.post_message(self.Progress(
                "plane", pid, f"syncing: {items} item{'' if items == 1 else 's'}"))

        client = plane_client(self.config, app.manager.locs)
        self._clients.add(client)
        try:
            results = PlaneSync(store, self.config, client, progress=progress).sync()
        finally:
            client.close()
            self._clients.discard(client)
        lines = []
        for r in results:
            if r.error:
                self.post_message(self.Progress("plane", r.plane_project,
                                                short_error(r.error), "error"))
                continue
            counts = _counts(r.fetched, r.new, r.updated, len(r.gone), len(r.taken))
            self.post_message(self.Progress("plane", r.plane_project, "✓ " + counts, "done"))
            lines.append(f"{r.project}: {counts}")
        errors = [f"{r.project}: {r.error}" for r in results if r.error]
        return "; ".join(lines), "; ".join(errors) or None

    def on_tracker_section_progress(self, message: Progress) -> None:
        self._note(message.source, message.scope, message.text, message.style)

    def on_tracker_section_background(self, message: Background) -> None:
        self.background = message.sources
        self._rebuild()

    def on_tracker_section_sync_done(self, message: SyncDone) -> None:
        from planeai.services.trackers import one_line

        self.syncing.discard(message.source)
        self.notes.pop((message.source, None), None)
        for key in [k for k, (_, style) in self.notes.items()
                    if k[0] == message.source and style == "busy"]:
            del self.notes[key]   # cut short: the header's state says why
        if message.error and not message.summary:   # nothing synced: say why in the section
            self.notes[(message.source, None)] = (short_error(message.error), "error")
        if message.error:
            self.app.notify(one_line(f"{message.summary} {message.error}".strip(), 300),
                            title=f"{LABELS[message.source]} sync", severity="error",
                            timeout=10, markup=False)
        else:
            self.app.notify(message.summary, title=f"{LABELS[message.source]} sync",
                            timeout=5, markup=False)
        self.reload()
        self._rebuild()

    def _note(self, source: str, scope: str | None, text: str, style: str) -> None:
        from planeai.services.trackers import one_line

        text = one_line(text, 500)   # an error's words may quote the server
        self.notes[(source, scope)] = (text, style)
        self.progress_shown = [*self.progress_shown[-199:], f"{source}:{scope or '*'}: {text}"]
        self._rebuild()

    # ------------------------------------------------------------------ rows
    def on_tracker_section_loaded(self, message: Loaded) -> None:
        self.groups = message.groups
        self.loads += 1
        self._rebuild()

    @property
    def current_item(self):
        row = self.current
        return row.item if row is not None and row.kind == "item" else None

    def _scopes(self, source: str) -> list:
        """(scope, items, state) of a source: the groups synced, and the Jira filters / Plane
        projects configured but not synced yet."""
        from planeai.services.trackers import TrackerGroup

        have = {g.scope: g for g in self.groups.get(source, [])}
        wanted = (self.config.jira.filters if source == "jira"
                  else self.config.plane.projects)
        for name in wanted:
            have.setdefault(name, TrackerGroup(name, [], None))
        return [have[k] for k in sorted(have)]

    def _rebuild(self) -> None:
        keep = self.current.id if self.current else None
        rows: list[TRow] = []
        for source in self.sources:
            label = LABELS[source]
            note = self.notes.get((source, None))
            groups = self._scopes(source)
            if not groups:
                rows.append(TRow(f"e:{source}", "empty", source,
                                 text=f"{label} · nothing synced yet (U: sync now)"))
            if note is not None and not groups:
                rows.append(TRow(f"n:{source}:*", "note", source, text=note[0],
                                 style=_note_style(note[1])))
            for g in groups:
                hid = f"h:{source}:{g.scope}"
                live = [i for i in g.items if not i.gone]
                collapsed = hid in self._collapsed
                st = g.state
                right = ""
                if st is not None and st.last_error:
                    right = "! sync failed"
                elif st is not None and st.last_sync:
                    right = short_time(st.last_sync)   # when it last synced
                rows.append(TRow(hid, "scope", source, g.scope, count=len(live),
                                 collapsed=collapsed, right=right,
                                 text=f"{label} · {scope_label(self.config, source, g.scope)}"))
                note = self.notes.get((source, g.scope)) or self.notes.get((source, None))
                if note is None and source in self.background:
                    note = ("syncing… (every "
                            f"{_every(self.config, source)})", "busy")
                if note is None and st is not None and st.last_error:  # say why, under it
                    note = (short_error(st.last_error), "error")
                if note is not None:
                    rows.append(TRow(f"n:{source}:{g.scope}", "note", source, g.scope,
                                     text=note[0], style=_note_style(note[1])))
                if collapsed:
                    continue
                # live items first, then the ones that left the filter (marked, kept)
                for item in sorted(g.items, key=lambda i: (i.gone, i.id)):
                    rows.append(TRow(f"i:{source}:{item.external_id}", "item", source,
                                     g.scope, item=item))
        self.rows = rows
        self._cache.clear()
        index = next((i for i, r in enumerate(rows) if r.id == keep), None)
        self.cursor = index if index is not None else min(self.cursor, max(0, len(rows) - 1))
        self.virtual_size = Size(self.size.width, len(rows))
        self.refresh(layout=True)

    # ------------------------------------------------------------------ movement
    def _move(self, index: int) -> None:
        if not self.rows:
            return
        self.cursor = max(0, min(len(self.rows) - 1, index))
        self._cache.clear()
        self.refresh()
        self.scroll_to_region(Region(0, self.cursor, 1, 1), animate=False, immediate=True)

    def _set_fold(self, row: TRow, fold: bool) -> None:
        (self._collapsed.add if fold else self._collapsed.discard)(row.id)
        self._rebuild()

    def action_activate(self) -> None:
        row = self.current
        if row is None:
            return
        if row.kind == "scope":
            self._set_fold(row, not row.collapsed)
        elif row.kind == "item":
            self.post_message(self.TakeRequested(row.item))

    def action_leave(self) -> None:
        self.app.query_one("#sidebar").focus()

    # ------------------------------------------------------------------ draw
    def row_text(self, row_id: str) -> str:
        """The text a row shows at the current width (tests read it)."""
        for i, r in enumerate(self.rows):
            if r.id == row_id:
                return self._strip(r, i == self.cursor, max(self.size.width, 1)).text
        raise KeyError(row_id)

    def render_line(self, y: int) -> Strip:
        index = y + self.scroll_offset.y
        width = self.size.width
        if not 0 <= index < len(self.rows):
            return Strip.blank(width, self.rich_style)
        row = self.rows[index]
        selected = index == self.cursor
        key = (row.id, index, selected, self.has_focus, width)
        strip = self._cache.get(key)
        if strip is None:
            strip = self._strip(row, selected, width)
            if selected:
                strip = strip.apply_style(_SEL_FOCUS if self.has_focus else _SEL_BLUR)
            strip = strip.apply_style(self.rich_style)
            self._cache[key] = strip
        return strip

    def _strip(self, row: TRow, selected: bool, width: int) -> Strip:
        left, right = self._segments(row, width)
        size = sum(s.cell_length for s in right)
        if not (right and width > size + 12):
            right, size = [], 0
        room = width - size
        strip = Strip(left)
        if strip.cell_length > room > 1:   # cut with a mark, never wrapped
            strip = Strip.join([strip.crop(0, room - 1), Strip([Segment("…", _DIM)])])
        strip = strip.crop_extend(0, room, None)
        return Strip.join([strip, Strip(right)]) if right else strip

    def _segments(self, row: TRow, width: int) -> tuple[list[Segment], list[Segment]]:
        from planeai.services.trackers import display_row

        if row.kind == "scope":
            fold = "▸ " if row.collapsed else "▾ "
            right = ([Segment(" " + row.right, _ERROR if row.right.startswith("!") else _DIM)]
                     if row.right else [])
            return [Segment(fold + row.text, _HEAD), Segment(f" ({row.count})", _DIM)], right
        if row.kind in ("note", "empty"):
            return [Segment("  " + row.text, row.style or _DIM)], []
        d = display_row(row.item, width=200)
        left = [Segment("  "), Segment(d["key"], _GONE if d["gone"] else _KEY)]
        if d["status"] and width >= 40:   # narrow: the title keeps the room
            left.append(Segment(" " + d["status"], _DIM))
        left.append(Segment(" " + d["title"], _GONE if d["gone"] else None))
        if d["gone"]:
            right = [Segment(" ✗ gone", _GONE)]
        elif d["task"]:
            right = [Segment(" → " + d["task"], _TASK)]
        else:
            right = []
        return left, right


_REQUEST = re.compile(r"^(?:Jira|Plane): (?:GET|POST|PUT|PATCH|DELETE) \S+: ")


def short_error(text: str) -> str:
    """A sync error for the narrow column: the request it names left out (the notification
    and `planeai jira list` keep the whole line)."""
    from planeai.services.trackers import one_line

    return "! " + _REQUEST.sub("", one_line(text, 500))


def _note_style(kind: str) -> Style:
    return {"error": _ERROR, "done": _TASK}.get(kind, _BUSY)


def _counts(items: int, new: int, updated: int, gone: int, taken: int) -> str:
    """A finished sync's numbers, short enough for the left column."""
    parts = [f"{new} new", f"{updated} updated", f"{gone} gone"]
    if taken:
        parts.append(f"{taken} taken")
    return f"{items} item{'' if items == 1 else 's'}: " + ", ".join(parts)


def _every(config, source: str) -> str:
    secs = int((config.jira if source == "jira" else config.plane).sync_interval)
    return f"{secs // 60} min" if secs >= 120 and secs % 60 == 0 else f"{secs} s"


def short_time(stamp: str) -> str:
    """An ISO time as local HH:MM (the date too when not today)."""
    from datetime import datetime

    try:
        t = datetime.fromisoformat(stamp).astimezone()
    except ValueError:
        return "?"
    return t.strftime("%H:%M") if t.date() == datetime.now().astimezone().date() \
        else t.strftime("%b %d")


# ---------------------------------------------------------------------- the App's actions
class TrackerActionsMixin:
    """The App's tracker actions (keys J, T, U; see planeai.tui.actions)."""

    @property
    def trackers(self) -> TrackerSection:
        return self.query_one("#trackers", TrackerSection)

    def _trackers_shown(self) -> bool:
        if self.trackers.sources:
            return True
        self.notify("no tracker configured: set [jira] url and filters, or [plane] "
                    "workspace and projects, in planeai's config", severity="warning")
        return False

    def action_focus_trackers(self) -> None:
        if not self._trackers_shown():
            return
        self.query_one("#left").remove_class("-hidden")
        if self.trackers.has_focus:
            self.sidebar.focus()
        else:
            self.trackers.focus()

    def action_sync_trackers(self) -> None:
        if self._trackers_shown() and not self.trackers.sync_now():
            self.notify("a sync is running already", severity="warning")

    def action_take_tracker_item(self) -> None:
        if not self._trackers_shown():
            return
        item = self.trackers.current_item
        if item is None:
            self.notify("highlight a Jira or Plane item first (J: the tracker section)",
                        severity="warning")
            return
        self.take_tracker_item(item)

    def on_tracker_section_take_requested(self, message: TrackerSection.TakeRequested) -> None:
        self.take_tracker_item(message.item)

    def take_tracker_item(self, item, project_id: int | None = None, error: str = "") -> None:
        """The take dialog for ``item``; a refusal comes back in it with the reason."""
        from planeai.services.trackers import display_row, one_line
        from planeai.tui.tracker_dialogs import TakeDialog

        if not self.data.projects:
            self.notify("no project yet: run `planeai project add PATH`", severity="warning")
            return
        if project_id is None:
            want = default_project(self.manager.config, item)
            project = next((p for p in self.data.projects if want and want in (
                p.name, p.key_prefix, p.path)), None) or self._current_project()
            project_id = project.id if project is not None else None
        row = display_row(item, width=200)
        error = one_line(error, 500)   # the refusal may quote the item

        def done(pid: int | None) -> None:
            if pid is None:
                return
            project = next((p for p in self.data.projects if p.id == pid), None)
            if project is None:
                return
            self._service(f"take {row['key']}",
                          lambda: take_item(self.manager.store, self.manager.config, item,
                                            project.path),
                          lambda task: self._taken(row["key"], task),
                          refused=lambda why: self.take_tracker_item(item, pid, why),
                          lock=False)

        self.push_screen(TakeDialog(LABELS.get(item.source, item.source), row,
                                    self.data.projects, project_id, error), done)

    def _taken(self, key: str, task) -> None:
        self.notify(f"{key} → task {task.key}", markup=False)
        self.trackers.reload()
        self.post_message(self.Show(f"t:{task.key}"))
