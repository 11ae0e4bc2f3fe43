"""Lifecycle hooks: the user's shell commands, run at transitions read from the event log
(which event fires which hook: planeai.core.events.hook_name).

Event values (task title, branch, ...) are passed only in the environment, never spliced into
the command, so a hostile task title cannot inject anything. A hook that fails or hangs is
killed at the timeout and reported in the event log; it never stops the dispatcher.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

from planeai.config import Config
from planeai.core import events as ev
from planeai.core.events import hook_name
from planeai.core.models import Event
from planeai.store.repository import Store

OUTPUT_LIMIT = 4000


@dataclass
class HookResult:
    command: str
    exit_code: int | None
    timed_out: bool
    output: str


def event_env(store: Store, e: Event, name: str) -> tuple[dict[str, str], str | None]:
    """Env vars describing the event, and the cwd (the session's worktree when known)."""
    env = {"PLANEAI_EVENT": name, "PLANEAI_EVENT_ID": str(e.id)}
    cwd = None
    if e.task_key:
        env["PLANEAI_TASK_KEY"] = e.task_key
        try:
            t = store.get_task(e.task_key)
            env.update({"PLANEAI_TASK_TITLE": t.title, "PLANEAI_TASK_STATUS": t.status.value,
                        "PLANEAI_PROJECT": t.project_name})
        except Exception:  # deleted since: the key is still worth passing
            pass
    if e.kind == ev.TASK_MOVED:
        env["PLANEAI_TASK_STATUS"] = str(e.data.get("to", ""))
        env["PLANEAI_FROM_STATUS"] = str(e.data.get("from", ""))
    if e.session_id:
        env["PLANEAI_SESSION_ID"] = e.session_id
        try:
            s = store.get_session(e.session_id)
            env["PLANEAI_SESSION_NAME"] = s.name
            env["PLANEAI_PROJECT"] = s.project_name
            if s.branch:
                env["PLANEAI_BRANCH"] = s.branch
            if s.worktree:
                env["PLANEAI_WORKTREE"] = s.worktree
                cwd = s.worktree
            if s.exit_code is not None:
                env["PLANEAI_EXIT_CODE"] = str(s.exit_code)
        except Exception:
            pass
    if "exit_code" in e.data and e.data["exit_code"] is not None:
        env["PLANEAI_EXIT_CODE"] = str(e.data["exit_code"])
    if "reason" in e.data:
        env["PLANEAI_REASON"] = str(e.data["reason"])
    return env, cwd


def run_command(command: str, env: dict[str, str], cwd: str | None,
                timeout: float) -> HookResult:
    """The command is the user's own config, so it runs through sh; event data is env only."""
    full_env = {**os.environ, **env}
    if cwd and not Path(cwd).is_dir():
        cwd = None
    proc = subprocess.Popen(["/bin/sh", "-c", command], cwd=cwd, env=full_env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the hook and anything it started
        except ProcessLookupError:
            pass
        out, _ = proc.communicate()
        timed_out = True
    text = out.decode("utf-8", "replace")
    if len(text) > OUTPUT_LIMIT:
        text = text[:OUTPUT_LIMIT] + f"\n... ({len(text) - OUTPUT_LIMIT} more characters)"
    return HookResult(command, None if timed_out else proc.returncode, timed_out, text)


class HookRunner:
    """Runs hooks for events after a persisted cursor, so each event fires once.

    ``start()`` moves the work to a thread of its own (with its own store connection), so a
    slow or hanging hook never holds up the dispatcher; hooks still run one at a time, in
    event order."""

    CURSOR = "hooks.cursor"

    def __init__(self, store: Store, config: Config) -> None:
        self.store = store
        self.config = config    # read on each batch: hooks trusted later apply at once
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._idle.set()

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="planeai-hooks", daemon=True)
        self._thread.start()

    def kick(self) -> None:
        """New events may be there: run their hooks (in the thread, or here if none)."""
        if self._thread is None:
            self.run_pending()
        else:
            self._idle.clear()
            self._wake.set()

    def drain(self, timeout: float = 120.0) -> bool:
        """Wait until every hook of the events so far has run."""
        if self._thread is None:
            self.run_pending()
            return True
        self.kick()
        return self._idle.wait(timeout)

    def stop(self, timeout: float = 120.0) -> None:
        if self._thread is None:
            return
        self.drain(timeout)
        self._stop.set()
        self._wake.set()
        self._thread.join(5)
        self._thread = None

    def _loop(self) -> None:
        own = Store.open(self.store.path)
        runner = HookRunner(own, self.config)
        try:
            while not self._stop.is_set():
                self._wake.wait(1.0)
                self._wake.clear()
                try:
                    while runner.pending():
                        runner.run_pending()
                except Exception as e:  # report, never die: hooks are the user's code
                    try:
                        own.append_event(ev.HOOK_FAILED, data={"error": f"{type(e).__name__}: {e}"})
                    except Exception:
                        pass
                if not self._wake.is_set():
                    self._idle.set()
        finally:
            own.close()

    def start_cursor_at_end(self) -> None:
        if self.store.kv_get(self.CURSOR) is None:
            self.store.kv_set(self.CURSOR, str(self.store.last_event_id()))

    def pending(self) -> list[Event]:
        after = int(self.store.kv_get(self.CURSOR, "0") or 0)
        return self.store.events(after=after, limit=500)

    def run_pending(self) -> list[HookResult]:
        """Run the hooks of pending events (a batch); returns what ran."""
        results = []
        events = self.pending()
        hooks = self.config.hooks if events else None
        for e in events:
            name = hook_name(e)
            for cmd in hooks.for_hook(name) if name else ():
                env, cwd = event_env(self.store, e, name)
                r = run_command(cmd, env, cwd, hooks.timeout)
                results.append(r)
                kind = ev.HOOK_RAN if r.exit_code == 0 else ev.HOOK_FAILED
                self.store.append_event(kind, task_key=e.task_key, session_id=e.session_id,
                                        data={"hook": name, "command": cmd, "event_id": e.id,
                                              "exit_code": r.exit_code,
                                              "timed_out": r.timed_out, "output": r.output})
            self.store.kv_set(self.CURSOR, str(e.id))
        return results
