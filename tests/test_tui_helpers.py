"""Shared pieces of the app's tests (no tests here): services on a real store and repo, a
deadline poller for pilots, and the in-memory backend used where timing would make a
snapshot picture flaky."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from conftest import make_repo, retry_until_async
from planeai.backends.base import SessionInfo, Snapshot, SpawnSpec, bracketed
from planeai.errors import BackendError
from planeai.terminal.screen import TerminalScreen


class Services:
    def __init__(self, home: Path, repo: Path | None, backends: dict | None = None) -> None:
        from planeai import config
        from planeai.paths import locations
        from planeai.services.context import open_store
        from planeai.services.projects import add_project
        from planeai.services.sessions import SessionManager

        self.locs = locations()
        self.locs.config_dir.mkdir(parents=True, exist_ok=True)
        # agent CLIs may be installed on this machine: the tests drive a plain shell
        self.locs.config_file.write_text('[defaults]\nprovider = "shell"\n')
        self.config = config.load(user_file=self.locs.config_file)
        self.store = open_store(self.locs)
        self.project = add_project(self.store, repo)[0] if repo is not None else None
        self.manager = SessionManager(self.store, self.config, self.locs, backends=backends)

    def task(self, title: str, **kw):
        from planeai.services import tasks

        return tasks.add_task(self.store, self.project, title, **kw)

    def close(self) -> None:
        self.manager.close()
        self.store.close()


@pytest.fixture
def shell_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHELL", "/bin/sh")
    monkeypatch.setenv("PS1", "$ ")
    monkeypatch.setenv("ENV", "")


@pytest.fixture
def services(planeai_home: Path, tmp_path: Path, shell_env):
    svc = Services(planeai_home, make_repo(tmp_path / "demo"))
    yield svc
    svc.close()


@pytest.fixture
def empty_services(planeai_home: Path, shell_env):
    svc = Services(planeai_home, None)
    yield svc
    svc.close()


def make_app(svc: Services, **kw):
    from planeai.tui.app import PlaneaiApp

    kw.setdefault("poll_interval", 0.1)
    kw.setdefault("observe_interval", 0.2)
    return PlaneaiApp(svc.manager, **kw)


async def wait_for(pilot, cond, timeout: float | None = None, what: str = "condition"):
    """Poll ``cond`` between pilot pauses until truthy; fail at the deadline (the shared
    poller and DEADLINE of tests/support/polling.py)."""
    return await retry_until_async(cond, pilot.pause, timeout=timeout, message=what)


def row_ids(app) -> list[str]:
    return [r.id for r in app.sidebar.rows]


def row_text(app, row_id: str) -> str:
    sb = app.sidebar
    for i, r in enumerate(sb.rows):
        if r.id == row_id:
            return "".join(seg.text for seg in sb._segments(r))
    raise AssertionError(f"no row {row_id}: {row_ids(app)}")


def session_of(app, key: str):
    return app.data.task_session(key)


class FakeBackend:
    """In-memory sessions: a TerminalScreen fed with fixed bytes; typing echoes into it.

    Used only for pictures, where a real shell's timing and prompt would make them flaky."""

    kind = "local"
    in_process = True
    persistent = False
    has_screen = True
    lost_reason = "the planeai process that ran it has ended"

    def __init__(self, script: dict[str, bytes] | None = None) -> None:
        self.script = script or {}
        self.sessions: dict[str, tuple[TerminalScreen, threading.Lock]] = {}
        self.subs: dict[str, list] = {}
        self.alive: dict[str, bool] = {}

    def add(self, name: str, output: bytes, cols: int = 80, rows: int = 24) -> None:
        screen = TerminalScreen(cols, rows)
        screen.feed(output)
        self.sessions[name] = (screen, threading.Lock())
        self.alive[name] = True

    def spawn(self, spec: SpawnSpec) -> SessionInfo:
        self.add(spec.name, self.script.get(spec.name, b"$ "), spec.cols, spec.rows)
        return SessionInfo(spec.name, True, None, 4242)

    def list(self):
        return [SessionInfo(n, self.alive[n]) for n in self.sessions]

    def info(self, name):
        return SessionInfo(name, self.alive[name]) if name in self.sessions else None

    def survey(self):
        return {i.name: i for i in self.list()}

    def screen(self, name):
        if name not in self.sessions:
            raise BackendError(f"no session {name}")
        return self.sessions[name]

    def _feed(self, name: str, data: bytes) -> None:
        screen, lock = self.screen(name)
        with lock:
            screen.feed(data)
        for cb in list(self.subs.get(name, [])):
            cb(name, data)

    def write(self, name, data):
        self._feed(name, data.replace(b"\r", b"\r\n"))

    def send_keys(self, name, *keys):
        self.write(name, b"\r")

    def paste(self, name, text):
        self.write(name, bracketed(text, False))

    def resize(self, name, cols, rows):
        screen, lock = self.screen(name)
        with lock:
            screen.resize(cols, rows)

    def snapshot(self, name):
        screen, lock = self.screen(name)
        with lock:
            return Snapshot(screen.text_lines(), screen.ansi_snapshot(), screen.cursor,
                            screen.cols, screen.rows, self.alive[name], None, None,
                            {"seconds_since_start": 100.0})

    def scrollback(self, name):
        return []

    def kill(self, name, *, timeout=5.0):
        self.alive[name] = False
        return 0

    def forget(self, name):
        self.sessions.pop(name, None)

    def attach_command(self, name):
        return None

    def subscribe(self, name, callback):
        self.subs.setdefault(name, []).append(callback)
        return lambda: (self.subs.get(name, []).remove(callback)
                        if callback in self.subs.get(name, []) else None)

    def close(self):
        pass


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
