"""Lifecycle hooks: the user's shell commands, run at transitions read from the event log
(which event fires which hook: planeai.core.events.hook_name).

Every transition fires its hooks exactly once, whoever caused it (the CLI, the app, the
dispatcher, an agent's own `planeai task done`): the events after a shared cursor are *claimed*
by advancing the cursor in one transaction, and only the claimer runs their hooks, as its config
says (sessions carry their starter's --config as PLANEAI_CONFIG, so an agent's own commands read
the same hooks as the dispatcher that started it). The app and
the dispatcher claim in a thread of their own; a CLI command claims what is left when it ends
and hands the hooks to a detached process (``python -m planeai.services.hooks FIRST LAST``), so
an agent's `planeai task done` never waits for a slow hook.

Event values (task title, branch, ...) are passed only in the environment, never spliced into
the command, so a hostile task title cannot inject anything. A hook that fails or hangs is
killed at the timeout and reported in the event log; it never stops the dispatcher.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from planeai.config import Config
from planeai.core import events as ev
from planeai.core.events import hook_name
from planeai.core.models import Event
from planeai.store.repository import Store

OUTPUT_LIMIT = 4000
# A transition whose hooks nobody ran within this long (no process with hooks was running)
# is history by the time a runner with hooks finds it.
MAX_EVENT_AGE = 3600.0


def _timestamp(e: Event) -> float:
    from datetime import datetime

    try:
        return datetime.fromisoformat(e.ts).timestamp()
    except ValueError:
        return 0.0


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
                    while events := runner.claim():
                        runner.run_events(events)
                except Exception as e:  # report, never die: hooks are the user's code
                    try:
                        own.append_event(ev.HOOK_FAILED, data={"error": f"{type(e).__name__}: {e}"})
                    except Exception:
                        pass
                if not self._wake.is_set():
                    self._idle.set()
        finally:
            own.close()

    def pending(self) -> bool:
        """Are there events nobody has claimed yet? (A read: no write lock.)"""
        after = int(self.store.kv_get(self.CURSOR, "0") or 0)
        return self.store.last_event_id() > after

    def claim(self, limit: int = 500) -> list[Event]:
        """Take the next unclaimed events: their hooks are this runner's to run (with this
        process's config), nobody else's. One transaction, so two runners never take the same
        event. A runner with no hooks (or hooks withheld until trusted) takes them too: a
        transition fires the hooks in use when it happens, never ones configured later."""
        if not self.pending():
            return []
        with self.store.write():
            after = int(self.store.kv_get(self.CURSOR, "0") or 0)
            events = self.store.events(after=after, limit=limit)
            if events:
                self.store.kv_set(self.CURSOR, str(events[-1].id))
        return events

    def wants(self, events: list[Event]) -> bool:
        """Does any of ``events`` fire a configured hook?"""
        hooks = self.config.hooks
        return any(hooks.for_hook(name) for name in map(hook_name, events) if name)

    def run_pending(self) -> list[HookResult]:
        """Claim the next batch of events and run their hooks; returns what ran."""
        return self.run_events(self.claim())

    def run_events(self, events: list[Event]) -> list[HookResult]:
        """Run the hooks of events this runner claimed, in event order. Events older than
        MAX_EVENT_AGE are passed over: hooks configured today do not replay last month."""
        results = []
        hooks = self.config.hooks if events else None
        oldest = time.time() - MAX_EVENT_AGE
        for e in events:
            name = hook_name(e)
            if name and _timestamp(e) < oldest:
                continue
            for cmd in hooks.for_hook(name) if name else ():
                env, cwd = event_env(self.store, e, name)
                r = run_command(cmd, env, cwd, hooks.timeout)
                results.append(r)
                kind = ev.HOOK_RAN if r.exit_code == 0 else ev.HOOK_FAILED
                self.store.append_event(kind, task_key=e.task_key, session_id=e.session_id,
                                        data={"hook": name, "command": cmd, "event_id": e.id,
                                              "exit_code": r.exit_code,
                                              "timed_out": r.timed_out, "output": r.output})
        return results


def hand_off(store: Store, config: Config, *, explicit_config: str | None = None) -> bool:
    """A command that is about to end: claim what nobody has, and run its hooks in a detached
    process (the command does not wait for them). Returns whether one was started."""
    import sys

    runner = HookRunner(store, config)
    events = runner.claim(limit=100_000)
    if not events or not runner.wants(events):
        return False
    argv = [sys.executable, "-m", "planeai.services.hooks", str(events[0].id),
            str(events[-1].id)]
    if explicit_config:
        argv += ["--config", explicit_config]
    subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True)
    return True


def _main(argv: list[str]) -> int:
    """Run the hooks of events FIRST..LAST, claimed by the command that started this."""
    import argparse

    from planeai.services.context import AppContext

    p = argparse.ArgumentParser(prog="python -m planeai.services.hooks")
    p.add_argument("first", type=int)
    p.add_argument("last", type=int)
    p.add_argument("--config")
    args = p.parse_args(argv)
    with AppContext.load(explicit=args.config) as ctx:
        store = ctx.store
        events = [e for e in store.events(after=args.first - 1, limit=args.last - args.first + 1)
                  if e.id <= args.last]
        HookRunner(store, ctx.config).run_events(events)
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(_main(sys.argv[1:]))
