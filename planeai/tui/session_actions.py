"""The app's session actions: start, stop, restart, archive, send a prompt or keys, attach,
focus the terminal, and auto-dispatch on/off.

A mixin of the App for the reason task_actions.py gives: Textual finds ``action_*`` methods
on the App. Each action turns the selection (and a dialog's typed result) into one service
call run by ``_service`` (planeai.tui.workers); what follows on screen is a ``then`` callback
run on the event loop.
"""

from __future__ import annotations

import subprocess
import sys
import time

from planeai.errors import PlaneaiError
from planeai.tui.model import LIVE
from planeai.tui.start_dialog import StartChoice

# Seconds the app waits for a busy agent to become idle before refusing a prompt (the
# service lock is held meanwhile, so short).
PROMPT_WAIT = 3.0
# Seconds the detach key stays on screen before a full-screen attach takes the terminal
ATTACH_HINT_S = 1.0


def detach_hint(cmd: list[str]) -> str:
    """How to leave a full-screen attach ``cmd``: tmux's prefix then d, the daemon's key."""
    if "attach-session" in cmd:
        return "detach with C-b d (your tmux prefix, then d)"
    if "--detach-key" in cmd:
        i = cmd.index("--detach-key")
        key = cmd[i + 1] if i + 1 < len(cmd) else "C-q"
        return f"detach with {key.replace('C-', 'Ctrl-').upper().replace('CTRL-', 'Ctrl-')}"
    return "end the session's program to come back"


class SessionActionsMixin:
    def action_start_session(self) -> None:
        from planeai.tui.start_dialog import StartDialog

        task = self._current_task(quiet=True)
        project = self._current_project()
        if task is None and project is None:
            self.notify("select a task (or a project for a scratch session)", severity="warning")
            return
        if task is not None:
            project = next((p for p in self.data.projects if p.id == task.project_id), project)
        agents, default = self.agent_choices(project)
        if task is not None and task.provider:
            default = task.provider
        backends = self.manager.backend_choices()
        backend = self.manager.config.defaults.backend
        if backend not in [name for name, _ in backends]:
            backends.append((backend, "the configured default; not available here"))
        target = task.key if task else f"{project.name} (scratch, no task)"
        w, h = self.term.size.width, self.term.size.height
        if w < 10 or h < 5:
            main = self.query_one("#main").size
            w, h = max(20, main.width), max(5, main.height - 1)

        def done(choice: StartChoice | None) -> None:
            if choice is None:
                return

            def start():
                return self.manager.start(
                    task_key=task.key if task else None, project=None if task else project,
                    agent=choice.agent, backend=choice.backend, cols=w, rows=h,
                    yolo=choice.yolo, autonomous=choice.autonomous,
                    prompt=choice.prompt or None, sandbox=choice.sandbox)

            self._service("start session", start,
                          lambda s: self.post_message(self.Show(
                              f"t:{s.task_key}" if s.task_key else f"s:{s.id}",
                              focus_terminal=True, session_id=s.id)))

        self.push_screen(StartDialog(target=target, agents=agents, default=default,
                                     backends=backends, backend=backend,
                                     for_task=task is not None), done)

    def action_stop_session(self) -> None:
        s = self._current_session()
        if s is not None:
            self._service(f"stop {s.name}", lambda: self.manager.stop_and_say(s.id),
                          lambda said: self.notify(said))

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
                    self.terminal_shown = False
                self.notify(f"archived {s.name}")

            self._service(f"archive {s.name}", lambda: self.manager.archive(s.id), archived)

    def action_send_prompt(self) -> None:
        """Type a prompt for the selected session; with @mentions (`@claude-opus @gemini-pro
        compare these`), start one session per mentioned agent for the selected task."""
        from planeai.tui.prompt_dialog import PromptDialog

        s = self.row_session(self.sidebar.current)
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
                self._service(f"send to {s.name}", lambda: self._send_prompt(s, text),
                              self._prompt_sent)

        self.push_screen(PromptDialog(target), done)

    def _send_prompt(self, s, text: str):
        """The prompt, typed only into an idle agent (in a service thread): a short wait for
        a busy one, no watching after (the badge shows what follows). Returns the SendResult,
        or None when refused (said in a notification, with the question on its screen)."""
        from textual.markup import escape

        from planeai.services.session_input import SendRefused

        try:
            return self.manager.send_prompt(s.id, text, wait=PROMPT_WAIT, watch=0)
        except SendRefused as e:
            # the agent's screen is not markup: "[/tmp]" in it must show, not break the toast
            lines = [escape(str(e)), *(f"  {escape(q)}" for q in e.question)]
            if e.status.value == "needs_input":
                lines.append("answer it with K (keys), then send again")
            self._notice("\n".join(lines), "warning")
            return None

    def _prompt_sent(self, r) -> None:
        if r is not None:
            self.notify(f"sent to {r.session.name}")

    def action_send_keys(self) -> None:
        """Press keys in the selected session's terminal: how to answer an agent's dialog
        from the sidebar."""
        from planeai.tui.keys_dialog import KeysDialog

        s = self._current_session()
        if s is None:
            return
        if s.state not in LIVE:
            self.notify(f"{s.name} is not running", severity="warning")
            return

        def done(keys: list[str] | None) -> None:
            if keys:
                self._service(f"keys to {s.name}",
                              lambda: self.manager.send_keys(s.id, keys, watch=0),
                              # what follows shows in the badge and the terminal
                              lambda _: self.notify(f"sent {' '.join(keys)} to {s.name}",
                                                    markup=False))

        self.push_screen(KeysDialog(s.name, self._question_of(s)), done)

    def _question_of(self, s) -> list[str]:
        """The dialog on the session's screen when it needs input (shown in the keys box)."""
        if s.agent_status != "needs_input":
            return []
        from planeai.services.session_input import screen_question

        # on the event loop: never wait long for a service thread holding the lock
        if not self.svc.acquire(timeout=0.3):
            return []
        try:
            view = self.manager.observe(s.id)
        except PlaneaiError:
            return []
        finally:
            self.svc.release()
        return screen_question(view.snapshot.text) if view.snapshot is not None else []

    def _run_many(self, text: str, key: str) -> None:
        """One session per @mentioned agent (in a service thread). Returns None; raises
        PlaneaiError naming every agent that did not start."""
        from planeai.services.run_many import run_many

        r = run_many(self.manager, text, task_key=key)
        names = ", ".join(x.name for x in r.sessions) or "none"
        self._notice(f"started {names} for {key}")
        if r.errors:
            raise PlaneaiError("; ".join(r.errors))

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
        """Suspend the app and run ``cmd`` (an attach command) in the real terminal until
        it ends. Returns None; a failure is a notification."""
        import os

        # inside tmux already (TMUX set), tmux refuses to attach: the planeai server is a
        # different one, so nesting is what the person asked for
        env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE")}
        hint = detach_hint(cmd)
        try:
            with self.suspend():
                # said before it starts: then the session takes the whole terminal
                sys.stdout.write(f"\x1b[2J\x1b[Hplaneai: full screen; {hint} to come back"
                                 " to the app\r\n")
                sys.stdout.flush()
                time.sleep(ATTACH_HINT_S)
                subprocess.run(cmd, env=env)
        except Exception as e:  # SuspendNotSupported (headless), tmux gone, ...
            self.notify(f"cannot attach: {e or type(e).__name__}", severity="error")
        self.refresh()
        if self.term.session_name:
            self.term.refit()  # the attach sized the session to the whole terminal

    def action_focus_terminal(self) -> None:
        if self.term.session_name and self.terminal_shown:
            self.term.focus()
        else:
            self.notify("no terminal here: select a task with a session", severity="warning")

    def action_toggle_dispatch(self) -> None:
        self.dispatching = not self.dispatching  # watch_dispatching starts / stops the thread
        if self.dispatching:
            self.notify("auto-dispatch on: ready tasks go to free slots by priority")
        else:
            self.notify("auto-dispatch off")
