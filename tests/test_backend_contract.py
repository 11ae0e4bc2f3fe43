"""The Backend contract, once, for every backend in the registry that can run here.

Each backend is opened the way the app and the CLI open it (``registry.open_backend`` with the
config, the locations and an environment) and driven through the protocol: spawn, info, list
and survey, write and paste, snapshot, scrollback, resize, subscribe, kill with its exit status,
an agent's own exit, forget, and capability flags that match what the backend does.
"""

from __future__ import annotations

import os
import shutil

import pytest

from conftest import retry_until

from planeai import config as config_mod
from planeai.backends import registry
from planeai.backends.base import Backend, SpawnSpec
from planeai.backends.daemon import daemon_paths
from planeai.backends.daemon.client import daemon_pid, stop_daemon
from planeai.errors import BackendError
from planeai.paths import locations
from planeai.terminal.screen import TerminalScreen

AVAILABLE = [b.name for b in registry.available()]
# shell variables only: no user dotfiles, no prompts to wait for
CAT = ["sh", "-c", "echo contract-ready; exec cat"]


@pytest.fixture(params=AVAILABLE)
def opened(request, private_tmux, planeai_home):
    """(open a new backend object, the first one): a private tmux server, a private daemon."""
    socket, tmux_tmpdir = private_tmux
    locs = locations()
    cfg = config_mod.load(user_file=None, env={})
    cfg.data["tmux"]["socket"] = socket
    env = {**os.environ, "TMUX_TMPDIR": str(tmux_tmpdir), "HOME": str(planeai_home)}
    env.pop("TMUX", None)
    made: list[Backend] = []

    def open_one() -> Backend:
        b = registry.open_backend(request.param, cfg, locs, env)
        made.append(b)
        return b

    yield open_one, open_one()
    for b in made:
        b.close()
    paths = daemon_paths(locs)
    if daemon_pid(paths):
        stop_daemon(paths, timeout=10)


def spawn(b: Backend, name: str, argv: list[str], cols: int = 80, rows: int = 24):
    env = {"PATH": os.environ["PATH"], "TERM": "xterm-256color", "LANG": "C.UTF-8",
           "HOME": "/tmp"}
    return b.spawn(SpawnSpec(name, argv, "/tmp", env, cols, rows))


def screen_has(b: Backend, name: str, text: str, count: int = 1) -> bool:
    return b.snapshot(name).text.count(text) >= count


def test_the_registry_lists_every_backend_once_with_a_class_that_names_it():
    assert len(set(registry.NAMES)) == len(registry.NAMES) == len(registry.BACKENDS)
    for entry in registry.BACKENDS:
        cls = entry.load()
        assert cls.kind == entry.name and entry.description
        for flag in ("in_process", "persistent", "has_screen"):
            assert isinstance(getattr(cls, flag), bool), (entry.name, flag)
        assert cls.in_process != cls.persistent and cls.lost_reason
    assert config_mod.SCHEMA["defaults"]["backend"].choices == registry.NAMES
    with pytest.raises(BackendError, match="unknown backend 'docker'"):
        registry.open_backend("docker", None, None, {})
    assert ("tmux" in AVAILABLE) == (shutil.which("tmux") is not None)


def test_a_session_through_the_whole_protocol(opened):
    open_one, b = opened
    assert isinstance(b, Backend)
    info = spawn(b, "CON-1", CAT)
    assert info.name == "CON-1" and info.alive and info.pid and info.pid > 0
    retry_until(lambda: screen_has(b, "CON-1", "contract-ready"), message="started")
    assert b.info("CON-1").alive and b.info("NO-SUCH") is None
    assert "CON-1" in [i.name for i in b.list()]
    assert b.survey()["CON-1"].alive

    heard: list[bytes] = []
    unsubscribe = b.subscribe("CON-1", lambda name, data: heard.append(data))
    b.write("CON-1", b"typed-line\r")
    retry_until(lambda: screen_has(b, "CON-1", "typed-line", 2), message="echo and cat")
    retry_until(lambda: b"typed-line" in b"".join(heard), message="subscriber heard it")
    unsubscribe()
    b.paste("CON-1", "pasted-text")
    b.send_keys("CON-1", "Enter")
    retry_until(lambda: screen_has(b, "CON-1", "pasted-text", 2), message="paste")

    b.resize("CON-1", 60, 20)
    retry_until(lambda: (b.snapshot("CON-1").cols, b.snapshot("CON-1").rows) == (60, 20),
                message="resized")
    snap = b.snapshot("CON-1")
    assert snap.alive and snap.exit_code is None and snap.lines[0] == "contract-ready"

    if b.has_screen:
        screen, lock = b.screen("CON-1")
        with lock:
            assert isinstance(screen, TerminalScreen) and "pasted-text" in screen.text()
    else:
        with pytest.raises(BackendError):
            b.screen("CON-1")

    code = b.kill("CON-1", timeout=3)
    assert code == 128 + 1  # cat ends on the hangup
    assert not b.info("CON-1").alive and b.info("CON-1").exit_code == code
    assert not b.survey()["CON-1"].alive
    b.forget("CON-1")
    assert b.info("CON-1") is None and "CON-1" not in b.survey()
    b.forget("CON-1")  # forgetting twice is fine
    with pytest.raises(BackendError):
        b.kill("NO-SUCH")


def test_own_exit_status_and_scrollback(opened):
    _, b = opened
    spawn(b, "CON-2", ["sh", "-c", "seq 1 60; sleep 0.3; exit 3"], rows=10)
    retry_until(lambda: not b.info("CON-2").alive, message="exited")
    assert b.info("CON-2").exit_code == 3
    assert b.survey()["CON-2"].exit_code == 3
    lines = b.scrollback("CON-2")
    assert lines.index("1") < lines.index("30") < lines.index("60")
    assert b.snapshot("CON-2").lines[-1] != "1"  # only the bottom of it is on the screen
    b.forget("CON-2")


def test_capabilities_match_what_happens(opened):
    open_one, b = opened
    spawn(b, "CON-3", CAT)
    try:
        other = open_one()  # a second client, as another planeai process would open it
        seen = other.survey().get("CON-3")
        if b.persistent:
            assert seen is not None and seen.alive
            assert b.attach_command("CON-3")  # another terminal can open it
        else:
            assert seen is None  # it lives only in the object (and process) that started it
            assert b.attach_command("CON-3") is None
        assert b.in_process is (seen is None)
    finally:
        b.kill("CON-3", timeout=3)
        b.forget("CON-3")


def test_an_agent_starts_with_default_signals_whatever_planeai_inherited(opened):
    """Started from `nohup` or with `&`, planeai ignores HUP or INT; an agent must not
    inherit that, or ^C would not reach it and a hangup would not end it."""
    import signal

    open_one, _ = opened
    saved = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGHUP, signal.SIGINT)}
    try:
        b = open_one()  # a server or daemon started now inherits the ignored signals too
        spawn(b, "SIG-1", ["sh", "-c", "grep SigIgn /proc/self/status; exec cat"])
        line = retry_until(lambda: next((ln for ln in b.snapshot("SIG-1").lines
                                         if ln.startswith("SigIgn:")), None),
                           message="the agent's ignored-signal mask")
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)
    mask = int(line.split()[1], 16)
    for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM):
        assert not mask & (1 << (sig - 1)), f"the agent ignores {sig.name}: {line}"
    b.kill("SIG-1", timeout=3)
