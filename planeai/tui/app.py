"""planeai's Textual app: mission control for the agents.

Layout: the sidebar (projects, tasks by status, sessions with live badges) on the left; the
main pane shows the selected session's terminal, or the task's details.

This module is the App itself: layout, bindings, mount / unmount, the reactive state and the
routing of messages. The rest lives beside it, as mixins of this class (Textual looks up
``action_*``, ``watch_*``, ``on_*`` and ``@work`` methods on the App):
- workers.py: the store poller, session observer, service runner and dispatcher threads, and
  the typed messages they post (``BoardLoaded``, ``BoardChanged``: a change applied to the
  rows it touches, ``ScreensSeen``, ``Notice``, ``ServiceDone``,
  ``DispatchReport``, ``DispatchEnded``, ``MetricsLoaded``: live counters and budget marks,
  ``FiguresLoaded``: a row's figures for the details panel);
- alerts.py: a notification and the bell when an agent starts needing input;
- selection.py: the selected task / session / project, and the agents a dialog offers;
- main_pane.py: what the main pane shows for the selected row;
- task_actions.py, session_actions.py: the actions, each a dialog and a service call;
- review_actions.py: the diff view (diff_view.py), the compare view (compare_view.py),
  keeping one session of several, commit / checks / merge / pull request;
- trust_prompt.py: asking whether a repo's `.planeai/` may be used.

State is reactive: ``data`` (the board; every full load redraws, a ``BoardChanged`` is
applied to it in place and redraws only the rows it touched), ``selected_row``,
``terminal_shown``, ``filter_text`` and ``dispatching``; their watchers update the screen.
"""

from __future__ import annotations

import threading
from typing import Iterable

from rich.text import Text
from textual import on
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.markup import escape
from textual.message import Message
from textual.reactive import var
from textual.screen import Screen
from textual.widgets import Input, Static

from planeai.tui.actions import ACTIONS, actions_for, footer_rank
from planeai.tui.alerts import AlertsMixin
from planeai.tui.details import Details
from planeai.tui.keybar import KeyBar
from planeai.tui.main_pane import MainPaneMixin
from planeai.tui.manage_actions import ManageActionsMixin
from planeai.tui.model import Data, Row, touched_rows
from planeai.tui.review_actions import ReviewActionsMixin
from planeai.tui.selection import SelectionMixin
from planeai.tui.session_actions import SessionActionsMixin
from planeai.tui.sidebar import Sidebar
from planeai.tui.task_actions import TaskActionsMixin
from planeai.tui.terminal_view import TerminalView
from planeai.tui.trackers import TrackerActionsMixin, TrackerSection
from planeai.tui.trust_prompt import TrustPromptMixin
from planeai.tui.workers import (BoardChanged, BoardLoaded, DiffStats, DispatchEnded,
                                 DispatchReport, FiguresLoaded, MetricsLoaded, Notice,
                                 ScreensSeen, ServiceDone, WorkersMixin)

_MAIN_ACTIONS = {a.action for a in ACTIONS} - {"quit", "help", "command_palette"}


class PlaneaiApp(WorkersMixin, AlertsMixin, TrustPromptMixin, SelectionMixin, MainPaneMixin,
                 TaskActionsMixin, SessionActionsMixin, ManageActionsMixin, ReviewActionsMixin,
                 TrackerActionsMixin,
                 App,
                 inherit_bindings=False):
    TITLE = "planeai"
    ENABLE_COMMAND_PALETTE = True

    CSS = """
    /* a third of the window, 28 to 52 columns: at 80x24 the agent's terminal keeps 52
       (TerminalView.on_resize resizes the session's PTY / tmux pane to follow) */
    #left { width: 33%; min-width: 28; max-width: 52; border-right: vkey $primary-darken-2; }
    #left.-hidden { display: none; }
    #filter { display: none; }
    #filter.-show { display: block; }
    #main { width: 1fr; }
    #pane-title { height: 1; background: $boost; padding: 0 1; }
    #term { display: none; }
    #main.-terminal #term { display: block; }
    #main.-terminal #details { display: none; }
    """

    BINDINGS = [
        *[Binding(a.key, a.action, a.label, show=a.footer, key_display=a.display)
          for a in sorted(actions_for("app"), key=footer_rank)],
        Binding("ctrl+q", "quit", show=False),
        Binding("escape", "escape", show=False),
    ]

    # the board as last loaded; each load (even an equal one) redraws the sidebar and pane
    data: var[Data] = var(Data, always_update=True, init=False)
    # the sidebar row the main pane shows; set again on each load so a changed task redraws
    selected_row: var[Row | None] = var(None, always_update=True, init=False)
    # the main pane shows the terminal (True) or the details (False)
    terminal_shown: var[bool] = var(False, always_update=True, init=False)
    filter_text: var[str] = var("", init=False)
    dispatching: var[bool] = var(False, init=False)

    class Show(Message):
        """Select a row (and focus the terminal) once the data has it."""

        def __init__(self, row_id: str, focus_terminal: bool = False,
                     session_id: str | None = None) -> None:
            super().__init__()
            self.row_id = row_id
            self.focus_terminal = focus_terminal
            self.session_id = session_id

    def __init__(self, manager, *, offer_register: str | None = None,
                 poll_interval: float = 0.5, observe_interval: float = 1.0,
                 reconcile: bool = True, observe: bool = True,
                 initial: tuple[int, Data] | None = None) -> None:
        """``initial``: (last event id, data) loaded before the app starts (``preload``), so
        the first frame already shows the tasks; otherwise the poll worker loads them."""
        super().__init__()
        self.initial = initial
        self.manager = manager
        self.offer_register = offer_register
        self.poll_interval = poll_interval
        self.observe_interval = observe_interval
        self.do_reconcile = reconcile
        self.do_observe = observe
        self.svc = threading.RLock()             # around every SessionManager call
        self.loads = 0                           # full board loads shown so far
        self.changes_applied = 0                 # BoardChanged applied to their rows
        self.alerts = 0                          # "needs input" alerts given (alerts.py)
        self.desktop_sent: list[str] = []        # desktop notifications sent (alerts.py)
        self._pending_show: PlaneaiApp.Show | None = None
        self._dispatch_stop: threading.Event | None = None
        self._follower_said = False              # "another dispatcher holds the lease", once
        self._trust_sink = None
        self._hooks = None  # this app's hook runner (planeai.services.hooks), from mount
        self.session_metrics: dict = {}          # session id -> SessionMetrics (live counters)
        self.budgets: dict = {}                  # project id -> metrics.Spend (with a budget)
        self._init_workers()
        self._init_trust()
        self._init_main_pane()

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        with Horizontal():
            with Vertical(id="left"):
                yield Input(id="filter", placeholder="filter: key or title", compact=True)
                yield Sidebar(id="sidebar")
                yield TrackerSection(id="trackers")  # Jira / Plane, when configured
            with Vertical(id="main"):
                yield Static(id="pane-title")
                yield Details(id="details")
                yield TerminalView(id="term")
        yield KeyBar(id='keys')

    @property
    def sidebar(self) -> Sidebar:
        return self.query_one("#sidebar", Sidebar)

    @property
    def term(self) -> TerminalView:
        return self.query_one("#term", TerminalView)

    @property
    def details(self) -> Details:
        return self.query_one("#details", Details)

    def on_mount(self) -> None:
        from planeai.services import trust

        # "not used until you trust it" lines become notifications, not stray stderr output
        self._trust_sink = trust.set_notice_sink(
            lambda line: self.notify(line.removeprefix("planeai: "), severity="warning",
                                     timeout=10, markup=False))
        self.details.update(Text("loading…", style="dim"))
        self.sidebar.focus()
        if self.initial is not None:
            self.data = self.initial[1]
        self._poll_store()
        if self.do_observe:
            self._observe_sessions()
        self._diff_stats()
        self._metrics_feed()
        # transitions made here (and those left unclaimed by others) fire their hooks here
        from planeai.services.hooks import HookRunner

        self._hooks = HookRunner(self.manager.store, self.manager.config)
        self._hooks.start()
        if self.offer_register:
            from planeai.tui.confirm import Confirm

            path = self.offer_register

            def answer(yes: bool | None) -> None:
                if yes:
                    self._service("register project", lambda: self._register_project(path))
                self.check_trust(path)

            self.push_screen(Confirm(f"{path} is a git repo that is not a planeai project "
                                     "yet.\nRegister it?", yes="Register"), answer)
        elif getattr(self.manager.config, "project_dir", None) is not None:
            self.check_trust(str(self.manager.config.project_dir))

    def _register_project(self, path: str):
        """Returns the registered Project (in a service thread); raises PlaneaiError."""
        from planeai.services.projects import add_project

        project, _ = add_project(self.manager.store, path)
        self._notice(f"registered {project.name} (tasks {project.key_prefix}-1, ...)")
        return project

    def on_unmount(self) -> None:
        if self._trust_sink is not None:
            from planeai.services import trust

            trust.set_notice_sink(self._trust_sink)
        if self._dispatch_stop is not None:
            self._dispatch_stop.set()
        self._stop_workers()
        if self._hooks is not None:
            self._hooks.stop(timeout=5)  # quitting waits a moment for hooks, not forever

    # ------------------------------------------------------------------ reactive state
    def watch_data(self, data: Data) -> None:
        self.loads += 1
        self.sidebar.set_data(data)
        if self._pending_show is not None and self._select(self._pending_show):
            self._pending_show = None
            return
        self.selected_row = self.sidebar.current

    def watch_filter_text(self, text: str) -> None:
        self.sidebar.set_filter(text)

    def watch_dispatching(self, on: bool) -> None:
        if on:
            self._dispatch_stop = threading.Event()
            self._follower_said = False
            self._run_dispatcher(self._dispatch_stop)
        elif self._dispatch_stop is not None:
            self._dispatch_stop.set()
            self._dispatch_stop = None

    # ------------------------------------------------------------------ worker messages
    def _main_gone(self) -> bool:
        """The app is ending: its main screen's widgets may be gone already."""
        if self._stop.is_set() or not self.screen_stack:
            return True
        # query_one by id is cached (a whole-DOM query was a tenth of a board change's cost)
        sidebar = self.screen_stack[0].query_one_optional("#sidebar")
        return sidebar is None or not sidebar.is_attached

    def on_board_loaded(self, message: BoardLoaded) -> None:
        if not self._main_gone():  # a load that raced the app's exit
            before = self._note_statuses(message.data.sessions) if self.data.loaded else None
            self.data = message.data
            if before is not None:
                self._alert_changes(before, message.data.sessions)

    def on_board_changed(self, message: BoardChanged) -> None:
        """Apply the change to the rows it touches: no reload, no rebuild of the rest."""
        if self._main_gone():
            return
        change = message.change
        before = self._note_statuses(change.sessions)
        dirty = self.data.apply(change)
        self.changes_applied += 1
        touched = touched_rows(change)
        self.sidebar.apply(dirty, touched)
        self._alert_changes(before, change.sessions, change.asking)
        if self._pending_show is not None and self._select(self._pending_show):
            self._pending_show = None
            return
        row = self.sidebar.current
        if row is None or row != self.selected_row or row.id in touched or (
                row.kind in ("project", "group") and row.project_id in {
                    x.project_id for x in [*change.tasks, *change.sessions]}) or (
                change.gone_tasks or change.gone_sessions):
            shown = self.selected_row
            if (row is not None and shown is not None and row.id == shown.id
                    and not change.sessions and not change.gone_sessions):
                # the same row, only tasks changed: redraw it, without reading its figures
                # again (they come from sessions' metrics, which a task change leaves alone)
                self.set_reactive(PlaneaiApp.selected_row, row)
                self._draw_details(row)
            else:
                self.selected_row = row  # the main pane shows what changed

    def on_screens_seen(self, message: ScreensSeen) -> None:
        self.preview_seen(message.session_ids)

    def on_notice(self, message: Notice) -> None:
        self.notify(message.text, severity=message.severity,
                    timeout=10 if message.severity == "error" else 5)

    def on_diff_stats(self, message: DiffStats) -> None:
        self.diff_stats.update(message.stats)
        if not self._main_gone():
            self.sidebar.set_stats(message.stats)

    def on_metrics_loaded(self, message: MetricsLoaded) -> None:
        self.session_metrics.update(message.rows)
        self.budgets.update(message.budgets)
        if self._main_gone():
            return
        self.sidebar.set_metrics(message.rows, message.budgets)
        row = self.sidebar.current
        if row is None:
            return
        shown = self.row_session(row)
        if ((shown is not None and shown.id in message.rows)
                or (row.project_id in message.budgets and row.kind in ("project", "group"))):
            self._ask_figures(row, force=True)
            if shown is not None and self.terminal_shown:  # the title's live counter
                self._set_title(self._session_title(
                    shown, self.data.task_by_key.get(row.task_key or "")
                    if row.kind == "task" else None))

    def on_figures_loaded(self, message: FiguresLoaded) -> None:
        if not self._main_gone():
            self.show_figures(message.row_id, message.figures)

    def on_service_done(self, message: ServiceDone) -> None:
        if message.then is not None:
            try:
                message.then(message.result)
            except Exception:  # a follow-up on screen must not end the app
                pass

    def on_dispatch_report(self, message: DispatchReport) -> None:
        if message.error is not None:
            self.notify(message.error, severity=message.severity,
                        timeout=10 if message.severity == "error" else 5)
        r = message.result
        if r is not None and not r.leader and not self._follower_said:
            self._follower_said = True
            self.notify("auto-dispatch: another dispatcher holds the lease; this app waits "
                        "and takes over if it ends", severity="warning", timeout=5)

    def on_dispatch_ended(self, message: DispatchEnded) -> None:
        self.notify(message.error, severity="error", timeout=10)
        self.dispatching = False

    # ------------------------------------------------------------------ widget messages
    def on_planeai_app_show(self, message: Show) -> None:
        if not self._select(message):
            self._pending_show = message  # the next load brings the row
            self.wake()

    def _select(self, show: Show) -> bool:
        """Select ``show``'s row (focusing the terminal if asked). Returns False when the
        board does not hold the row (or its session) yet."""
        known = show.session_id is None or show.session_id in self.data.session_by_id
        if not (known and self.sidebar.select_id(show.row_id)):
            return False
        self.selected_row = self.sidebar.current
        if show.focus_terminal and self.term.session_name:
            self.term.focus()
        return True

    def on_sidebar_highlighted(self, message: Sidebar.Highlighted) -> None:
        if self._main_gone():  # a highlight still queued as the app ends
            return
        self.selected_row = message.row
        pid = message.row.project_id if message.row is not None else None
        project = next((p for p in self.data.projects if p.id == pid), None)
        if project is not None:
            self.check_trust(project.path)

    def on_sidebar_activated(self, message: Sidebar.Activated) -> None:
        session = self.row_session(message.row)
        if session is not None and self.term.session_name:
            self.term.focus()
        elif message.row.kind == "task":
            self.action_start_session()

    def on_terminal_view_released(self, message: TerminalView.Released) -> None:
        self.sidebar.focus()

    def on_terminal_view_exited(self, message: TerminalView.Exited) -> None:
        self._observe_wake.set()

    def on_terminal_view_write_failed(self, message: TerminalView.WriteFailed) -> None:
        self.notify(message.error, severity="warning")

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        self.sidebar.focus()

    # ------------------------------------------------------------------ actions: misc
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("help", "command_palette") and getattr(self.screen, "WHERE", None):
            return True  # the diff and compare views: their keys by name, and help
        if action in _MAIN_ACTIONS or action in ("quit", "help", "escape", "command_palette"):
            if len(self.screen_stack) > 1:
                return False
            if isinstance(self.focused, TerminalView) and action != "escape":
                return False
        return True

    def action_toggle_sidebar(self) -> None:
        left = self.query_one("#left")
        left.toggle_class("-hidden")
        if not left.has_class("-hidden"):
            self.sidebar.focus()
        elif self.term.session_name and self.terminal_shown:
            self.term.focus()
        else:
            self.set_focus(None)

    def action_filter(self) -> None:
        self.query_one("#left").remove_class("-hidden")
        f = self.query_one("#filter", Input)
        f.add_class("-show")
        f.focus()

    def action_escape(self) -> None:
        f = self.query_one("#filter", Input)
        if f.has_focus or f.has_class("-show"):
            f.value = ""
            f.remove_class("-show")
            self.filter_text = ""
            self.sidebar.focus()

    def action_help(self) -> None:
        from planeai.tui.help import HelpScreen

        self.push_screen(HelpScreen())

    async def action_quit(self) -> None:
        from planeai.tui.confirm import Confirm

        live_local = self.manager.in_process_sessions()
        if not live_local:
            self.exit()
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self.exit()

        self.push_screen(Confirm(f"{len(live_local)} session(s) run inside this app "
                                 f"({', '.join(live_local[:5])}) and will end. Quit?",
                                 yes="Quit"), answer)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        # on the diff or compare view its own keys only (the main screen's act on a sidebar
        # out of sight); on the main screen the app's, and the diff view's delivery steps
        # for the selected task
        where = getattr(screen, "WHERE", None)
        offered = set()
        for a in actions_for(where) if where else ACTIONS:
            if a.action == "command_palette" or a.title in offered:
                continue
            owner = screen if a.where == where else self
            fn = getattr(owner, f"action_{a.action}", None)
            if fn is None:
                continue
            offered.add(a.title)
            # the palette reads help as markup: "[review] checks" must show as written
            yield SystemCommand(a.title, escape(f"{a.help}  (key: {a.display})"), fn)
        yield from super().get_system_commands(screen)
