"""The daemon backend: sessions owned by planeai's background daemon (``planeai daemon``).

Sessions outlive the app and the CLI without tmux; ``planeai attach PLA-1`` opens one in any
terminal. The daemon is started on demand. This object holds one connection; output for
subscribed sessions is pushed over it and handed to the callbacks on its reader thread.
"""

from __future__ import annotations

import base64
import os
import sys
import threading
from typing import Callable

from planeai.backends.base import (key_bytes, OutputCallback, SessionInfo, Snapshot, SpawnSpec,
                                   check_name)
from planeai.backends.daemon import DaemonPaths, daemon_paths
from planeai.backends.daemon.client import DaemonClient, DaemonNotRunning, connect
from planeai.errors import BackendError, ConfigError

DEFAULT_DETACH_KEY = "C-q"


def _info(d: dict) -> SessionInfo:
    return SessionInfo(d["name"], bool(d["alive"]), d.get("exit_code"), d.get("pid"))


class DaemonBackend:
    kind = "daemon"
    in_process = False
    persistent = True
    has_screen = False
    lost_reason = "the planeai daemon that ran it has stopped"

    @classmethod
    def from_settings(cls, config, locs, env: dict[str, str]) -> DaemonBackend:
        return cls(locs, env=env, detach_key=config.daemon.detach_key,
                   scrollback=config.daemon.scrollback)

    def __init__(self, locs=None, *, paths: DaemonPaths | None = None,
                 env: dict[str, str] | None = None, autostart: bool = True,
                 detach_key: str = DEFAULT_DETACH_KEY, scrollback: int | None = None) -> None:
        from planeai.backends.daemon.attach import parse_key

        self.paths = paths or daemon_paths(locs)
        self.env = dict(os.environ if env is None else env)
        self.autostart = autostart
        try:
            parse_key(detach_key)
        except ValueError as e:
            raise ConfigError(f"daemon.detach_key: {e}") from None
        self.detach_key = detach_key
        # daemon options, used when this backend has to start one
        self.daemon_args = [] if scrollback is None else ["--scrollback", str(scrollback)]
        self._client: DaemonClient | None = None
        self._lock = threading.Lock()
        self._subs: dict[str, list[OutputCallback]] = {}
        self._slock = threading.Lock()

    # ------------------------------------------------------------------ connection
    def client(self, *, autostart: bool | None = None) -> DaemonClient:
        with self._lock:
            c = self._client
            if c is not None and not c.closed:
                return c
            if c is not None:
                c.close()
                self._client = None
            c = connect(self.paths, autostart=self.autostart if autostart is None else autostart,
                        env=self.env, extra_args=self.daemon_args,
                        on_output=self._on_output, on_event=self._on_event)
            self._client = c
            return c

    def _req(self, op: str, **kw):
        # only spawn starts a daemon: without one there is no session to read or write
        return self.client(autostart=False).request(op, **kw)

    def running(self) -> bool:
        """True when a daemon answers (never starts one)."""
        try:
            self.client(autostart=False)
        except DaemonNotRunning:
            return False
        return True

    def known(self) -> dict[str, SessionInfo] | None:
        """Sessions the daemon knows, or None when no daemon runs (never starts one)."""
        if not self.running():
            return None
        return {i.name: i for i in self.list()}

    def survey(self) -> dict[str, SessionInfo]:
        # no daemon: its sessions ended with it, for certain (and none is started to ask)
        return self.known() or {}

    def screen(self, name: str):
        raise BackendError("the daemon backend has no in-process screen (has_screen is False)")

    def status(self) -> dict:
        return self._req("status")  # type: ignore[return-value]

    def _on_output(self, name: str, data: bytes) -> None:
        with self._slock:
            cbs = list(self._subs.get(name, ()))
        for cb in cbs:
            try:
                cb(name, data)
            except Exception:
                pass

    def _on_event(self, msg: dict) -> None:
        ev = msg.get("event")
        if ev == "exit":
            self._on_output(str(msg.get("name")), b"")
        elif ev == "disconnected":
            # the daemon went away: its sessions are gone with it
            with self._slock:
                subs, self._subs = self._subs, {}
            for n, cbs in subs.items():
                for cb in cbs:
                    try:
                        cb(n, b"")
                    except Exception:
                        pass

    # ------------------------------------------------------------------ protocol
    def spawn(self, spec: SpawnSpec) -> SessionInfo:
        check_name(spec.name)
        return _info(self.client().request(
            "spawn", name=spec.name, argv=list(spec.argv), cwd=spec.cwd, env=dict(spec.env),
            cols=spec.cols, rows=spec.rows))

    def list(self) -> list[SessionInfo]:
        return [_info(d) for d in self._req("list")]  # type: ignore[union-attr]

    def info(self, name: str) -> SessionInfo | None:
        if not self.running():
            return None  # its sessions end with the daemon: none is running, for certain
        d = self._req("info", name=name)
        return _info(d) if d else None  # type: ignore[arg-type]

    def write(self, name: str, data: bytes) -> None:
        self.client(autostart=False).write(name, data)

    def send_keys(self, name: str, *keys: str) -> None:
        self.write(name, key_bytes(keys))

    def paste(self, name: str, text: str) -> None:
        # the daemon wraps it in bracketed paste when the agent asked for it
        self._req("paste", name=name, text=text)

    def resize(self, name: str, cols: int, rows: int) -> None:
        self._req("resize", name=name, cols=cols, rows=rows)

    def snapshot(self, name: str) -> Snapshot:
        d = self._req("snapshot", name=name)
        assert isinstance(d, dict)
        return Snapshot(
            lines=d["lines"], ansi=base64.b64decode(d["ansi"]), cursor=tuple(d["cursor"]),
            cols=d["cols"], rows=d["rows"], alive=d["alive"], exit_code=d["exit_code"],
            seconds_since_output=d["seconds_since_output"],
            extra={"seconds_since_start": d["seconds_since_start"], "title": d.get("title", "")})

    def scrollback(self, name: str) -> list[str]:
        return list(self._req("scrollback", name=name))  # type: ignore[arg-type]

    def kill(self, name: str, *, timeout: float = 5.0) -> int | None:
        # the daemon escalates HUP -> TERM -> KILL within about 2x timeout, then answers
        code = self.client(autostart=False).request("kill", name=name, wait=timeout,
                                                    timeout=2 * timeout + 30)
        return code  # type: ignore[return-value]

    def forget(self, name: str) -> None:
        try:
            self.client(autostart=False).request("forget", name=name, timeout=60)
        except DaemonNotRunning:
            pass

    def attach_command(self, name: str) -> list[str] | None:
        return [sys.executable, "-m", "planeai.backends.daemon.attach",
                "--socket", str(self.paths.socket), "--detach-key", self.detach_key, name]

    def subscribe(self, name: str, callback: OutputCallback) -> Callable[[], None]:
        c = self.client(autostart=False)
        with self._slock:
            first = not self._subs.get(name)
            self._subs.setdefault(name, []).append(callback)
        if first:
            try:
                c.request("subscribe", name=name)
            except BackendError:
                with self._slock:
                    self._subs[name].remove(callback)
                raise

        def unsubscribe() -> None:
            with self._slock:
                cbs = self._subs.get(name, [])
                if callback in cbs:
                    cbs.remove(callback)
                last = not cbs
            if last and self._client is not None and not self._client.closed:
                try:
                    self._client.request("unsubscribe", name=name)
                except BackendError:
                    pass

        return unsubscribe

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
