"""planeai's Textual app: mission control for the agents.

Layout: the sidebar (projects, tasks by status, sessions with live badges) on the left; the
main pane shows the selected session's terminal, or the task's details.

Threads, never the event loop, touch SQLite, git and the backends' slow paths:
- ``_poll_store`` (a thread worker with a board feed, planeai.services.board, on its own
  connection) reconciles sessions at start, loads the board, then reloads it whenever the
  event log moved, looking every ``poll_interval``;
- ``_observe_sessions`` classifies live sessions' agent status (busy / idle / needs input /
  exited) via ``SessionManager.observe``; the store records changes as events, which the
  poller picks up: one path for our own changes and everybody else's;
- every action that changes something runs in ``_service`` (a thread worker) under one lock
  around the SessionManager; failures become notifications.
"""

from __future__ import annotations

import subprocess
import threading
import time
from typing import Any, Callable, Iterable

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Input, Static
from textual.worker import get_current_worker

from planeai.core.models import Status
from planeai.errors import PlaneaiError
from planeai.tui.actions import ACTIONS
from planeai.tui.details import Details
from planeai.tui.keybar import KeyBar
from planeai.tui.model import BADGES, LIVE, Data, Row, agent_status, data_of
from planeai.tui.sidebar import Sidebar
from planeai.tui.terminal_view import TerminalView

_MAIN_ACTIONS = {a.action for a in ACTIONS} - {"quit", "help", "command_palette"}


class PlaneaiApp(App, inherit_bindings=False):
    TITLE = "planeai"
    ENABLE_COMMAND_PALETTE = True

    CSS = """
    #left { width: 52; border-right: vkey $primary-darken-2; }
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
          for a in ACTIONS],
        Binding("ctrl+q", "quit", show=False),
        Binding("escape", "escape", show=False),
    ]

    class DataLoaded(Message):
        def __init__(self, data: Data) -> None:
            super().__init__()
            self.data = data

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
        self._wake = threading.Event()           # poll now
        self._stop = threading.Event()
        self._observe_wake = threading.Event()
        self._activity: dict[str, float] = {}    # session name -> last output (local)
        self._subs: dict[str, Callable[[], None]] = {}
        self._observed: dict[str, tuple[float, str]] = {}
        self._pending_show: PlaneaiApp.Show | None = None
        self._dispatch_stop: threading.Event | None = None
        self.dispatching = False
        self.data = Data()
        self.loads = 0
        self._trust_asked: set[str] = set()      # repo paths whose .planeai/ was checked
        self._trust_sink = None

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        with Horizontal():
            with Vertical(id="left"):
                yield Input(id="filter", placeholder="filter: key or title", compact=True)
                yield Sidebar(id="sidebar")
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
            self.on_planeai_app_data_loaded(self.DataLoaded(self.initial[1]))
        self._poll_store()
        if self.do_observe:
            self._observe_sessions()
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
        from planeai.services.projects import add_project

        project, _ = add_project(self.manager.store, path)
        self.call_from_thread(self.notify, f"registered {project.name} "
                                           f"(tasks {project.key_prefix}-1, ...)")
        return project

    def on_unmount(self) -> None:
        if self._trust_sink is not None:
            from planeai.services import trust

            trust.set_notice_sink(self._trust_sink)
        if self._dispatch_stop is not None:
            self._dispatch_stop.set()
        self._stop.set()
        self._wake.set()
        self._observe_wake.set()
        for unsub in list(self._subs.values()):
            try:
                unsub()
            except Exception:
                pass
        self._subs.clear()

    # ------------------------------------------------------------------ workers
    def wake(self) -> None:
        self._wake.set()

    @work(thread=True, exclusive=True, group="poll", exit_on_error=False)
    def _poll_store(self) -> None:
        from planeai.services.board import BoardFeed

        worker = get_current_worker()
        feed = BoardFeed.beside(self.manager.store)
        try:
            if self.do_reconcile:
                try:
                    with self.svc:
                        self.manager.reconcile()
                except PlaneaiError as e:
                    self._notify_threadsafe(f"reconcile: {e}", "warning")
            if self.initial is not None:
                last = self.initial[0]
                self.initial = None
            else:
                last = feed.mark()
                self.post_message(self.DataLoaded(data_of(feed.snapshot())))
            while not worker.is_cancelled and not self._stop.is_set():
                self._wake.wait(self.poll_interval)
                self._wake.clear()
                if worker.is_cancelled or self._stop.is_set():
                    break
                try:
                    mark = feed.changed(last)
                    if mark is None:
                        continue
                    last = mark
                    self.post_message(self.DataLoaded(data_of(feed.snapshot())))
                except Exception as e:  # a locked or broken db must not end the app
                    self._notify_threadsafe(f"store: {e}", "error")
                    self._stop.wait(2)
        finally:
            feed.close()

    @work(thread=True, exclusive=True, group="observe", exit_on_error=False)
    def _observe_sessions(self) -> None:
        """Classify live sessions; cheap when nothing happens (idle sessions are rechecked
        only every ``IDLE_RECHECK`` seconds)."""
        IDLE_RECHECK = 10.0
        worker = get_current_worker()
        while not worker.is_cancelled and not self._stop.is_set():
            self._observe_wake.wait(self.observe_interval)
            self._observe_wake.clear()
            if self._stop.is_set():
                break
            now = time.monotonic()
            live = [s for s in self.data.sessions if s.state in LIVE]
            live_names = {s.name for s in live}
            for name in [n for n in self._subs if n not in live_names]:
                try:
                    self._subs.pop(name)()
                except Exception:
                    pass
            for s in live:
                if self._stop.is_set():
                    break
                try:
                    be = self.manager.backend(s.backend)
                except PlaneaiError:
                    continue
                if be.in_process:
                    if be.info(s.name) is None:
                        continue  # another planeai process runs it
                    if s.name not in self._subs:
                        try:
                            self._subs[s.name] = be.subscribe(s.name, self._on_activity)
                        except PlaneaiError:
                            pass
                last_t, last_status = self._observed.get(s.id, (0.0, ""))
                active = self._activity.get(s.name, 0.0) > last_t
                if not (active or last_status in ("", "busy", "starting")
                        or not be.in_process or now - last_t > IDLE_RECHECK):
                    continue
                try:
                    with self.svc:
                        view = self.manager.observe(s.id)
                    self._observed[s.id] = (time.monotonic(), view.status.value)
                except Exception:  # a backend hiccup: try again next round
                    self._observed[s.id] = (time.monotonic(), "")

    def _on_activity(self, name: str, data: bytes) -> None:
        self._activity[name] = time.monotonic()
        if not data:
            self._observe_wake.set()

    def _notify_threadsafe(self, message: str, severity: str = "information") -> None:
        try:
            self.call_from_thread(self.notify, message, severity=severity,
                                  timeout=10 if severity == "error" else 5)
        except Exception:
            pass

    @work(thread=True, group="service", exit_on_error=False)
    def _service(self, what: str, fn: Callable[[], Any],
                 then: Callable[[Any], None] | None = None) -> None:
        try:
            with self.svc:
                result = fn()
        except PlaneaiError as e:
            self._notify_threadsafe(f"{what}: {e}", "error")
            return
        except Exception as e:  # never a crash: say what broke
            self._notify_threadsafe(f"{what} failed: {type(e).__name__}: {e}", "error")
            return
        finally:
            self._wake.set()
            self._observe_wake.set()
        if then is not None:
            try:
                self.call_from_thread(then, result)
            except Exception:
                pass

    # ------------------------------------------------------------------ data -> screen
    def on_planeai_app_data_loaded(self, message: DataLoaded) -> None:
        self.data = message.data
        self.loads += 1
        self.sidebar.set_data(self.data)
        if self._pending_show is not None:
            pending = self._pending_show
            known = pending.session_id is None or pending.session_id in self.data.session_by_id
            if known and self.sidebar.select_id(pending.row_id):
                self._pending_show = None
                self._show_row(self.sidebar.current)
                if pending.focus_terminal and self.term.session_name:
                    self.term.focus()
                return
        self._show_row(self.sidebar.current)

    def on_planeai_app_show(self, message: Show) -> None:
        known = message.session_id is None or message.session_id in self.data.session_by_id
        if known and self.sidebar.select_id(message.row_id):
            self._show_row(self.sidebar.current)
            if message.focus_terminal and self.term.session_name:
                self.term.focus()
            return
        self._pending_show = message  # the next load brings the row
        self.wake()

    def on_sidebar_highlighted(self, message: Sidebar.Highlighted) -> None:
        self._show_row(message.row)
        pid = message.row.project_id if message.row is not None else None
        project = next((p for p in self.data.projects if p.id == pid), None)
        if project is not None:
            self.check_trust(project.path)

    # ------------------------------------------------------------------ trust
    def check_trust(self, path: str) -> None:
        """Once per repo and run: if its .planeai/ holds hooks or provider files nobody
        trusted, show what they would run and ask. Until trusted they are not used at all."""
        from planeai.services.trust import resolve_root

        path = resolve_root(path)
        if path in self._trust_asked:
            return
        self._trust_asked.add(path)
        self._read_trust(path)

    @work(thread=True, group="trust", exit_on_error=False)
    def _read_trust(self, path: str) -> None:
        from planeai.services import trust

        content = trust.read_content(path)
        st = trust.state(content)
        if st in (trust.UNTRUSTED, trust.CHANGED):
            self.call_from_thread(self._ask_trust, content, st == trust.CHANGED)

    def _ask_trust(self, content, changed: bool) -> None:
        from planeai.tui.trust_dialog import TrustDialog

        def answer(yes: bool | None) -> None:
            if yes:
                self._service("trust", lambda: self._trust(content))
            else:
                self.notify(f"{content.root}/.planeai is not used (planeai trust "
                            f"{content.root} trusts it later)", markup=False)

        self.push_screen(TrustDialog(content, changed), answer)

    def _trust(self, content) -> None:
        from planeai.services import trust

        trust.trust(content)  # exactly what the dialog showed
        self.manager.config.readmit()
        self.manager.forget_registries()
        self.notify(f"trusted {content.root}/.planeai: its {content.what} are used now",
                    markup=False)  # notify is thread-safe

    def on_sidebar_activated(self, message: Sidebar.Activated) -> None:
        session = self._row_session(message.row)
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

    def _row_session(self, row: Row | None):
        if row is None:
            return None
        if row.kind == "session":
            return self.data.session_by_id.get(row.session_id or "")
        if row.kind == "task":
            return self.data.task_session(row.task_key or "")
        return None

    def _set_title(self, text: Text | str) -> None:
        self.query_one("#pane-title", Static).update(text)

    def _show_terminal(self, on: bool) -> None:
        main = self.query_one("#main")
        if on:
            main.add_class("-terminal")
        else:
            main.remove_class("-terminal")
            if self.term.session_name:
                self.term.detach()

    def _show_row(self, row: Row | None) -> None:
        d = self.data
        if not d.loaded:
            return
        if row is None:
            self._show_terminal(False)
            self._set_title(Text("planeai", style="bold"))
            self.details.show_welcome(bool(d.projects))
            return
        if row.kind in ("project", "group"):
            self._show_terminal(False)
            p = next((p for p in d.projects if p.id == row.project_id), None)
            if p is None:
                return
            counts: dict = {}
            for t in d.tasks:
                if t.project_id == p.id:
                    counts[t.status] = counts.get(t.status, 0) + 1
            counts = {s: counts[s] for s in Status if s in counts}
            n_sessions = sum(1 for s in d.sessions if s.project_id == p.id and s.state in LIVE)
            self._set_title(Text(p.name, style="bold"))
            self.details.show_project(p, counts, n_sessions)
            return
        session = self._row_session(row)
        task = d.task_by_key.get(row.task_key or "") if row.kind == "task" else None
        if session is None:
            self._show_terminal(False)
            if task is not None:
                self._set_title(Text.assemble((task.key, "bold"), f"  {task.title}"))
                children = [t.key for t in d.tasks if t.parent_key == task.key]
                self.details.show_task(task, None, children)
            return
        self._show_session(session, task)

    def _show_session(self, s, task) -> None:
        st = agent_status(s)
        sym, colour, label = BADGES[st]
        title = Text.assemble((sym, colour), " ", (s.name, "bold"), f"  {s.agent} · {s.backend}",
                              f" · {label}")
        if s.state not in LIVE and s.exit_code is not None:
            title.append(f" (exit {s.exit_code})")
        if s.branch:
            title.append(f" · {s.branch}", style="dim")
        if task is not None:
            title.append(f"  {task.title}", style="dim")
        self._set_title(title)
        try:
            be = self.manager.backend(s.backend)
        except PlaneaiError as e:
            self._show_lost(s, task, str(e))
            return
        if be.in_process and be.info(s.name) is None:
            why = ("it ran inside another planeai process, which still runs it"
                   if s.state in LIVE else
                   "it ran inside a planeai process that has ended; its output is gone")
            self._show_lost(s, task, f"{s.name} is not in this app: {why}.")
            return
        try:
            self.term.attach(be, s.name)
        except PlaneaiError as e:
            self._show_lost(s, task, f"cannot show {s.name}: {e}")
            return
        self._show_terminal(True)

    def _show_lost(self, s, task, why: str) -> None:
        self._show_terminal(False)
        self.details.show_lost(s, why)

    # ------------------------------------------------------------------ helpers
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in _MAIN_ACTIONS or action in ("quit", "help", "escape", "command_palette"):
            if len(self.screen_stack) > 1:
                return False
            if isinstance(self.focused, TerminalView) and action != "escape":
                return False
        return True

    def _current_task(self, quiet: bool = False):
        row = self.sidebar.current
        if row is not None and row.kind == "task":
            t = self.data.task_by_key.get(row.task_key or "")
            if t is not None:
                return t
        if not quiet:
            self.notify("select a task first", severity="warning")
        return None

    def _current_session(self):
        s = self._row_session(self.sidebar.current)
        if s is None:
            self.notify("select a task with a session, or a session", severity="warning")
        return s

    def _current_project(self):
        row = self.sidebar.current
        pid = row.project_id if row else None
        if pid is None and len(self.data.projects) == 1:
            pid = self.data.projects[0].id
        return next((p for p in self.data.projects if p.id == pid), None)

    def _agents(self, project) -> tuple[list[tuple[str, str, bool]], str]:
        from planeai.core.agents import agent_name

        reg = self.manager.registry(project)
        agents = []
        installed_of = {p.name: p.resolve_binary() is not None for p in reg.providers.values()}
        # installed agents first (the shell among them), then the ones still to install
        for p in sorted(reg.providers.values(),
                        key=lambda p: (not installed_of[p.name], p.name != "shell", p.name)):
            installed = installed_of[p.name]
            agents.append((p.name, p.display_name, installed))
            for v in p.variants.values():
                agents.append((agent_name(p.name, v.name), v.description or v.model, installed))
        try:
            default = reg.default(self.manager.config["defaults.provider"])
        except PlaneaiError:
            default = "shell"
        return agents, default

    # ------------------------------------------------------------------ actions: tasks
    def action_new_task(self, parent: str | None = None) -> None:
        from planeai.tui.task_form import TaskForm

        if not self.data.projects:
            self.notify("no project yet: run `planeai project add PATH` or start planeai in a "
                        "git repo", severity="warning")
            return
        project = self._current_project()
        agents, _ = self._agents(project)

        def done(values: dict | None) -> None:
            if values:
                self._service("new task", lambda: self._add_task(values),
                              lambda t: self.post_message(self.Show(f"t:{t.key}")))

        self.push_screen(TaskForm(projects=self.data.projects,
                                  project_id=project.id if project else None,
                                  agents=[a for a, _, _ in agents], parent=parent), done)

    def action_new_subtask(self) -> None:
        t = self._current_task()
        if t is not None:
            self.action_new_task(parent=t.key)

    def _add_task(self, v: dict):
        from planeai.services import tasks

        store = self.manager.store
        project = store.get_project_by_id(v["project_id"])
        return tasks.add_task(store, project, v["title"], description=v["description"],
                              priority=v["priority"], blocked_by=v["blocked_by"],
                              parent=v["parent"], base_branch=v["base_branch"],
                              provider=v["provider"] or None,
                              defaults=tasks.TaskDefaults.of(self.manager.config))

    def action_edit_task(self) -> None:
        from planeai.tui.task_form import TaskForm

        t = self._current_task()
        if t is None:
            return
        project = next((p for p in self.data.projects if p.id == t.project_id), None)
        agents, _ = self._agents(project)

        def done(values: dict | None) -> None:
            if values:
                self._service(f"edit {t.key}", lambda: self._edit_task(t, values))

        self.push_screen(TaskForm(projects=self.data.projects, project_id=t.project_id,
                                  agents=[a for a, _, _ in agents], task=t), done)

    def _edit_task(self, t, v: dict):
        from planeai.services import tasks

        return tasks.edit_task(
            self.manager.store, t.key, title=v["title"], description=v["description"],
            priority=v["priority"] if v["priority"] is not None else t.priority,
            parent=v["parent"], clear_parent=not v["parent"] and bool(t.parent_key),
            base_branch=v["base_branch"] or "", provider=v["provider"] or "",
            blocked_by=v["blocked_by"])

    def action_move_task(self) -> None:
        from planeai.tui.move_dialog import MoveDialog

        t = self._current_task()
        if t is None:
            return

        def done(status: Status | None) -> None:
            if status is not None and status is not t.status:
                from planeai.services import tasks

                self._service(f"move {t.key}",
                              lambda: tasks.move(self.manager.store, t.key, status,
                                                 reason="app"))

        self.push_screen(MoveDialog(t.key, t.status), done)

    # ------------------------------------------------------------------ actions: sessions
    def action_start_session(self) -> None:
        from planeai.tui.start_dialog import StartDialog

        task = self._current_task(quiet=True)
        project = self._current_project()
        if task is None and project is None:
            self.notify("select a task (or a project for a scratch session)", severity="warning")
            return
        if task is not None:
            project = next((p for p in self.data.projects if p.id == task.project_id), project)
        agents, default = self._agents(project)
        if task is not None and task.provider:
            default = task.provider
        backends = self.manager.backend_choices()
        backend = self.manager.config["defaults.backend"]
        if backend not in [name for name, _ in backends]:
            backends.append((backend, "the configured default; not available here"))
        target = task.key if task else f"{project.name} (scratch, no task)"
        w, h = self.term.size.width, self.term.size.height
        if w < 10 or h < 5:
            main = self.query_one("#main").size
            w, h = max(20, main.width), max(5, main.height - 1)

        def done(choice: dict | None) -> None:
            if not choice:
                return

            def start():
                return self.manager.start(
                    task_key=task.key if task else None, project=None if task else project,
                    agent=choice["agent"], backend=choice["backend"], cols=w, rows=h)

            self._service("start session", start,
                          lambda s: self.post_message(self.Show(
                              f"t:{s.task_key}" if s.task_key else f"s:{s.id}",
                              focus_terminal=True, session_id=s.id)))

        self.push_screen(StartDialog(target=target, agents=agents, default=default,
                                     backends=backends, backend=backend), done)

    def action_stop_session(self) -> None:
        s = self._current_session()
        if s is not None:
            self._service(f"stop {s.name}", lambda: self.manager.stop(s.id),
                          lambda _: self.notify(f"stopped {s.name}"))

    def action_restart_session(self) -> None:
        s = self._current_session()
        if s is not None:
            self._service(f"restart {s.name}", lambda: self.manager.restart(s.id),
                          lambda _: self.notify(f"restarted {s.name}"))

    def action_archive_session(self) -> None:
        s = self._current_session()
        if s is not None:
            def archived(_):
                if self.term.session_name == s.name:
                    self._show_terminal(False)
                self.notify(f"archived {s.name}")

            self._service(f"archive {s.name}", lambda: self.manager.archive(s.id), archived)

    def action_send_prompt(self) -> None:
        """Type a prompt for the selected session; with @mentions (`@claude-opus @gemini-pro
        compare these`), start one session per mentioned agent for the selected task."""
        from planeai.tui.prompt_dialog import PromptDialog

        s = self._row_session(self.sidebar.current)
        task = self._current_task(quiet=True)
        if s is None and task is None:
            self.notify("select a task or a session first", severity="warning")
            return
        target = s.name if s is not None else task.key

        def done(text: str | None) -> None:
            if not text:
                return
            from planeai.services.run_many import has_mentions

            if has_mentions(text):
                key = task.key if task is not None else s.task_key
                if key is None:
                    self.notify("@mentions start sessions for a task: select one",
                                severity="warning")
                    return
                self._service(f"run {key}", lambda: self._run_many(text, key))
            elif s is None or s.state not in LIVE:
                self.notify(f"{target} has no running session: start one (s), or name agents "
                            "with @mentions to start several", severity="warning")
            else:
                self._service(f"send to {s.name}",
                              lambda: self.manager.send_prompt(s.id, text))

        self.push_screen(PromptDialog(target), done)

    def _run_many(self, text: str, key: str) -> None:
        from planeai.errors import PlaneaiError as _PlaneaiError
        from planeai.services.run_many import run_many

        r = run_many(self.manager, text, task_key=key)
        names = ", ".join(x.name for x in r.sessions) or "none"
        self._notify_threadsafe(f"started {names} for {key}", "information")
        if r.errors:
            raise _PlaneaiError("; ".join(r.errors))

    def action_attach(self) -> None:
        s = self._current_session()
        if s is None:
            return
        try:
            with self.svc:
                cmd = self.manager.attach_command(s.id)
        except PlaneaiError as e:
            self.notify(str(e), severity="warning")
            return
        self.attach_full_screen(cmd)

    def attach_full_screen(self, cmd: list[str]) -> None:
        import os

        # inside tmux already (TMUX set), tmux refuses to attach: the planeai server is a
        # different one, so nesting is what the person asked for
        env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE")}
        try:
            with self.suspend():
                subprocess.run(cmd, env=env)
        except Exception as e:  # SuspendNotSupported (headless), tmux gone, ...
            self.notify(f"cannot attach: {e or type(e).__name__}", severity="error")
        self.refresh()

    def action_focus_terminal(self) -> None:
        if self.term.session_name and self.query_one("#main").has_class("-terminal"):
            self.term.focus()
        else:
            self.notify("no terminal here: select a task with a session", severity="warning")

    # ------------------------------------------------------------------ auto-dispatch
    def action_toggle_dispatch(self) -> None:
        if self._dispatch_stop is not None:
            self._dispatch_stop.set()
            self._dispatch_stop = None
            self.dispatching = False
            self.query_one(KeyBar).refresh()
            self.notify("auto-dispatch off")
            return
        self._dispatch_stop = threading.Event()
        self.dispatching = True
        self.query_one(KeyBar).refresh()
        self._run_dispatcher(self._dispatch_stop)
        self.notify("auto-dispatch on: ready tasks go to free slots by priority")

    @work(thread=True, group="dispatch", exit_on_error=False)
    def _run_dispatcher(self, stop: threading.Event) -> None:
        """The services' Dispatcher, one tick at a time under the app's service lock."""
        try:
            from planeai.services.dispatch import Dispatcher
            from planeai.services.notify import Notifier

            with self.svc:
                d = Dispatcher(self.manager,
                               notifier=Notifier(self.manager.config.section("notify")))
            poll = float(self.manager.config["dispatch.poll_interval"])
        except Exception as e:
            self._notify_threadsafe(f"auto-dispatch: {e}", "error")
            self.call_from_thread(setattr, self, "dispatching", False)
            return
        said_follower = False
        try:
            while not stop.is_set() and not self._stop.is_set():
                try:
                    with self.svc:
                        result = d.tick()
                except PlaneaiError as e:
                    self._notify_threadsafe(f"auto-dispatch: {e}", "warning")
                    result = None
                except Exception as e:
                    self._notify_threadsafe(f"auto-dispatch failed: {type(e).__name__}: {e}",
                                            "error")
                    result = None
                if result is not None and not result.leader and not said_follower:
                    said_follower = True
                    self._notify_threadsafe("auto-dispatch: another dispatcher holds the "
                                            "lease; this app waits and takes over if it ends",
                                            "warning")
                self._wake.set()
                stop.wait(poll)
        finally:
            try:
                with self.svc:
                    d.release()
            except Exception:
                pass

    # ------------------------------------------------------------------ actions: misc
    def action_filter(self) -> None:
        f = self.query_one("#filter", Input)
        f.add_class("-show")
        f.focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.sidebar.set_filter(event.value)

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        self.sidebar.focus()

    def action_escape(self) -> None:
        f = self.query_one("#filter", Input)
        if f.has_focus or f.has_class("-show"):
            f.value = ""
            f.remove_class("-show")
            self.sidebar.set_filter("")
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
        for a in ACTIONS:
            if a.action == "command_palette":
                continue
            yield SystemCommand(a.title, f"{a.help}  (key: {a.display})",
                                getattr(self, f"action_{a.action}"))
        yield from super().get_system_commands(screen)
