"""The real app in a real terminal: `planeai` runs inside a private tmux server (its own -L
socket, HOME and TMUX_TMPDIR in tmp, killed at teardown) and is driven as a person would,
with send-keys, and read with capture-pane."""

from __future__ import annotations

import os
import secrets
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import make_repo, planeai_cmd, retry_until

pytestmark = [pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed"),
              pytest.mark.timeout(180)]

COLS, ROWS = 150, 40
SIDEBAR = COLS * 33 // 100  # the sidebar's width (a third); the main pane starts right of it


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class Term:
    def __init__(self, tmp: Path, env: dict[str, str]) -> None:
        self.sock = f"test-{secrets.token_hex(4)}"
        self.env = env

    def tmux(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["tmux", "-L", self.sock, *args], env=self.env,
                              capture_output=True, text=True, timeout=30)

    def start(self, cwd: Path, command: list[str]) -> None:
        # exec: the pane's pid is the app's own, so kill() can wait for it to end
        r = self.tmux("new-session", "-d", "-s", "app", "-x", str(COLS), "-y", str(ROWS),
                      "-c", str(cwd), "exec " + shlex.join(command))
        assert r.returncode == 0, r.stderr
        self.app_pid = int(self.tmux("display-message", "-p", "-t", "=app:",
                                     "#{pane_pid}").stdout.strip())

    def screen(self) -> list[str]:
        r = self.tmux("capture-pane", "-p", "-t", "=app:")
        return r.stdout.splitlines() if r.returncode == 0 else []

    def text(self) -> str:
        return "\n".join(self.screen())

    def keys(self, *keys: str) -> None:
        assert self.tmux("send-keys", "-t", "=app:", *keys).returncode == 0

    def type(self, text: str) -> None:
        assert self.tmux("send-keys", "-t", "=app:", "-l", text).returncode == 0

    def wait(self, cond, timeout: float = 30.0, what: str = "screen") -> list[str]:
        deadline = time.monotonic() + timeout
        lines: list[str] = []
        while time.monotonic() < deadline:
            lines = self.screen()
            if cond(lines):
                return lines
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}; screen:\n" + "\n".join(lines))

    def wait_text(self, needle: str, **kw) -> list[str]:
        kw.setdefault("what", repr(needle))
        return self.wait(lambda lines: needle in "\n".join(lines), **kw)

    def kill(self) -> None:
        """End the app (and its terminal) and wait until it has: an app still shutting down
        would start the tmux server of its sessions again after a test killed it."""
        self.tmux("kill-server")
        pid = getattr(self, "app_pid", None)
        if pid is not None:
            retry_until(lambda: not _alive(pid), message="the app to end")
        tmpdir = Path(self.env["TMUX_TMPDIR"])
        for sock in tmpdir.glob(f"tmux-*/{self.sock}"):
            sock.unlink(missing_ok=True)


@pytest.fixture
def term(tmp_path: Path, planeai_home: Path):
    home = tmp_path / "home"
    (tmp_path / "tmux").mkdir()
    home.mkdir()
    env = os.environ.copy()
    env.update(HOME=str(home), TMUX_TMPDIR=str(tmp_path / "tmux"), SHELL="/bin/sh", PS1="$ ",
               TERM="xterm-256color")
    env.pop("TMUX", None)
    env.pop("TMUX_PANE", None)
    # agent CLIs may be installed here: the person in this test picks the plain shell
    cfg = planeai_home / "config"
    cfg.mkdir(parents=True, exist_ok=True)
    (cfg / "config.toml").write_text('[defaults]\nprovider = "shell"\n')
    t = Term(tmp_path, env)
    yield t
    t.kill()


def main_pane(lines: list[str]) -> list[str]:
    return [ln[SIDEBAR - 1:].lstrip("▕").strip() for ln in lines]


def sidebar_line(lines: list[str], key: str) -> str:
    return next((ln[:SIDEBAR] for ln in lines if f" {key} " in ln[:SIDEBAR] + " "), "")


def test_person_registers_creates_starts_types_detaches_and_sees_updates(term, tmp_path):
    repo = make_repo(tmp_path / "demo")
    term.start(repo, planeai_cmd())
    # first run in an unregistered repo: the app offers to register it
    term.wait_text("Register it?", timeout=30)
    term.keys("y")
    term.wait_text("To do", what="project registered")

    # create a task with the form
    term.keys("n")
    term.wait_text("New task")
    term.type("Say hello")
    term.keys("C-s")
    term.wait(lambda ls: "DEM-1" in sidebar_line(ls, "DEM-1") and "Say hello" in "\n".join(ls),
              what="task in the sidebar")

    # start a shell session for it: the terminal gets focus
    term.keys("s")
    term.wait_text("Start a session for DEM-1")
    term.keys("Enter")
    term.wait(lambda ls: any(p.startswith("$") for p in main_pane(ls)), what="shell prompt")

    term.type("echo hello")
    term.keys("Enter")
    term.wait(lambda ls: "hello" in main_pane(ls), what="hello in the main pane")

    # ctrl+] goes back to the sidebar: `?` now opens help instead of reaching the shell
    term.keys("C-]")
    term.wait(lambda ls: sidebar_line(ls, "DEM-1").strip()[:1] in ("○", "●"),
              what="agent badge on DEM-1")
    term.keys("?")
    term.wait_text("planeai — keys")
    term.keys("Escape")
    term.wait(lambda ls: "planeai — keys" not in "\n".join(ls), what="help closed")
    assert "?" not in main_pane(term.screen())

    # a task added from another shell appears without a restart
    r = subprocess.run(planeai_cmd() + ["task", "add", "From another shell", "--project",
                                        "demo"], env=term.env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    term.wait(lambda ls: "DEM-2" in sidebar_line(ls, "DEM-2"), timeout=10,
              what="task added elsewhere")

    # quit: the app asks first because a local session would end
    term.keys("q")
    term.wait_text("will end. Quit?")
    term.keys("y")
    term.wait(lambda ls: ls == [] or "planeai" not in "\n".join(ls), timeout=20,
              what="app exited")


def test_app_survives_its_session_dying(term, tmp_path):
    repo = make_repo(tmp_path / "demo")
    env = term.env
    r = subprocess.run(planeai_cmd() + ["project", "add", str(repo)], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    r = subprocess.run(planeai_cmd() + ["task", "add", "Short-lived", "--project", "demo"],
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    term.start(repo, [sys.executable, "-m", "planeai.cli.main"])
    term.wait(lambda ls: "DEM-1" in sidebar_line(ls, "DEM-1"), timeout=30, what="task")
    term.keys("Down", "Down")
    term.keys("s")
    term.wait_text("Start a session for DEM-1")
    term.keys("Enter")
    term.wait(lambda ls: any(p.startswith("$") for p in main_pane(ls)), what="shell prompt")
    term.type("exit 7")
    term.keys("Enter")
    term.wait(lambda ls: "(exit 7)" in "\n".join(ls), what="exit shown")
    term.keys("C-]")
    term.wait(lambda ls: sidebar_line(ls, "DEM-1").strip().startswith("✕"), what="exited badge")
    term.keys("q")
    term.wait(lambda ls: ls == [] or "DEM-1" not in "\n".join(ls), timeout=20, what="app exited")


def test_tmux_session_shown_live_and_attached_full_screen(term, tmp_path, planeai_home):
    sock = f"test-pl-{secrets.token_hex(4)}"
    (planeai_home / "config" / "config.toml").write_text(
        '[defaults]\nprovider = "shell"\nbackend = "tmux"\n\n[tmux]\nsocket = "%s"\n' % sock)
    repo = make_repo(tmp_path / "demo")
    env = term.env
    try:
        for args in (["project", "add", str(repo)],
                     ["task", "add", "On tmux", "--project", "demo"]):
            r = subprocess.run(planeai_cmd() + args, env=env, capture_output=True, text=True,
                               timeout=60)
            assert r.returncode == 0, r.stderr
        term.start(repo, planeai_cmd())
        term.wait(lambda ls: "DEM-1" in sidebar_line(ls, "DEM-1"), timeout=30, what="task")
        term.keys("Down", "Down")
        term.keys("s")
        term.wait_text("Start a session for DEM-1")
        term.keys("Enter")
        term.wait(lambda ls: "· tmux ·" in "\n".join(ls), what="tmux session title")
        term.wait(lambda ls: any(p.startswith("$") for p in main_pane(ls)), what="shell prompt")
        term.type("echo on-tmux")
        term.keys("Enter")
        term.wait(lambda ls: "on-tmux" in main_pane(ls), what="output via subscribe")
        # full screen: the app suspends, tmux attach owns the terminal; C-b d comes back
        term.keys("C-]")
        term.keys("t")
        # how to come back is said before the session takes the terminal
        term.wait_text("detach with C-b d", what="the detach key shown first")
        term.wait(lambda ls: any(ln.startswith("$ echo on-tmux") for ln in ls)
                  and not any("To do" in ln for ln in ls), what="attached full screen")

        def window_size() -> str:
            return subprocess.run(["tmux", "-L", sock, "display-message", "-p", "-t", "=DEM-1:",
                                   "#{window_width}x#{window_height}"], env=env,
                                  capture_output=True, text=True).stdout.strip()

        # the whole terminal, not the app's smaller view with filler around it
        retry_until(lambda: window_size() == f"{COLS}x{ROWS}", message="full-size window")
        term.keys("C-b", "d")
        term.wait(lambda ls: "DEM-1" in sidebar_line(ls, "DEM-1"), what="app resumed")
        # back in the app, the session follows the app's view again
        retry_until(lambda: window_size() != f"{COLS}x{ROWS}", message="view-size window")
    finally:
        # the app first: killed after its tmux server, it would start that server again
        # (its control client reconnects) and leave it running after the test
        term.kill()
        subprocess.run(["tmux", "-L", sock, "kill-server"], env=env, capture_output=True)
