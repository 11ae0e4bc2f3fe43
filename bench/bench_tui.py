"""Benchmark: the planeai app timed through a real PTY, each number next to its anchor.

1. keystroke-to-echo in the main pane while 20 other sessions stream output, ``--echo-idle``
   more sitting idle (anchor: a bare Textual app echoing a key; beside it, the same app
   with its echo paced by the frame rate and the screen's update tick, as it was before);
2. idle CPU of the app with 30 idle sessions over 30 s (anchor: a bare Textual app, idle,
   measured at the same time);
3. time to first frame with 5,000 tasks and 30 sessions in the store
   (anchor: a bare Textual app's first frame).

The harness spawns each app in a PTY (ptyprocess), parses everything it draws with
planeai's own emulator and times what a person would see. The app is the real one
(`PlaneaiApp` on a real SQLite store, real local PTY sessions); this file only pre-starts the
sessions through `SessionManager` before `app.run()`, as `planeai session start` would.

Run: python bench/bench_tui.py [--keys 100] [--idle-seconds 30] [--tasks 5000]
[--echo-idle 79] [--only first,echo,idle]
Takes about 2 minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

COLS, ROWS = 160, 40
HZ = os.sysconf("SC_CLK_TCK")

STREAMER = r"""
import os, sys, time
sys.path.insert(0, %(bench)r)
from streams import markdown
data = markdown(1 << 20, seed=int(sys.argv[1]))
chunk, i = 2048, 0
while True:
    os.write(1, data[i:i + chunk]); i = (i + chunk) %% (len(data) - chunk)
    time.sleep(0.05)
"""


# ---------------------------------------------------------------------------- child modes
def serve_bare() -> None:
    """The anchor: a bare Textual app that echoes keys into one line."""
    from textual.app import App, ComposeResult
    from textual.widgets import Static

    class Echo(App):
        text = ""

        def compose(self) -> ComposeResult:
            yield Static("$ ", id="line")

        def on_key(self, event) -> None:
            if event.key == "ctrl+u":
                self.text = ""
            elif event.character and event.character.isprintable():
                self.text += event.character
            self.query_one(Static).update("$ " + self.text)

    Echo().run()


def serve_app(stream: int, idle: int, pidfile: str) -> None:
    """The real app, with ``stream`` streaming and ``idle`` idle shell sessions pre-started."""
    from planeai import config
    from planeai.paths import locations
    from planeai.services.context import open_store
    from planeai.services.sessions import SessionManager
    from planeai.tui.app import PlaneaiApp

    locs = locations()
    store = open_store(locs)
    mgr = SessionManager(store, config.load(user_file=locs.config_file), locs)
    tasks = [t for t in store.list_tasks()]
    pids = []
    streamer = Path(pidfile).with_name("streamer.py")
    streamer.write_text(STREAMER % {"bench": str(ROOT / "bench")})
    for i, t in enumerate(tasks[: 1 + stream + idle]):
        s = mgr.start(task_key=t.key, agent="shell", worktree=False, cols=COLS - 53, rows=ROWS - 2)
        pids.append(s.pid)
        if 1 <= i <= stream:
            mgr.backend("local").write(s.name, f"exec {sys.executable} {streamer} {i}\n".encode())
    Path(pidfile).write_text(json.dumps(pids))
    from planeai.tui.model import preload

    app = PlaneaiApp(mgr, initial=preload(store))
    try:
        app.run()
    finally:
        mgr.close()


# ---------------------------------------------------------------------------- harness
class Pty:
    """A child in a PTY whose output is parsed into a screen as it arrives."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        import ptyprocess

        from planeai.terminal.screen import TerminalScreen

        self.t0 = time.perf_counter()
        # cwd: not a git repo, so the app does not offer to register one
        self.proc = ptyprocess.PtyProcess.spawn(argv, env=env, dimensions=(ROWS, COLS),
                                                cwd=tempfile.gettempdir())
        self.screen = TerminalScreen(COLS, ROWS, scrollback=0)
        self.cond = threading.Condition()
        self.first_output: float | None = None
        self.alive = True
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.proc.fd, 65536)
            except OSError:
                data = b""
            with self.cond:
                if not data:
                    self.alive = False
                    self.cond.notify_all()
                    return
                if self.first_output is None:
                    self.first_output = time.perf_counter()
                self.screen.feed(data)
                replies = self.screen.take_replies()
                self.cond.notify_all()
            if replies:
                try:
                    os.write(self.proc.fd, replies)
                except OSError:
                    pass

    def text(self) -> str:
        with self.cond:
            return self.screen.text()

    def wait(self, pred, timeout: float = 30.0) -> float:
        """Block until pred(screen text) holds; returns the perf_counter time it did."""
        deadline = time.perf_counter() + timeout
        with self.cond:
            while True:
                if pred(self.screen.text()):
                    return time.perf_counter()
                left = deadline - time.perf_counter()
                if left <= 0 or not self.alive:
                    raise TimeoutError("screen never showed it:\n" + self.screen.text())
                self.cond.wait(min(left, 0.5))

    def send(self, data: bytes) -> float:
        t = time.perf_counter()
        os.write(self.proc.fd, data)
        return t

    def cpu_seconds(self) -> float:
        with open(f"/proc/{self.proc.pid}/stat") as f:
            parts = f.read().rsplit(")", 1)[1].split()
        return (int(parts[11]) + int(parts[12])) / HZ

    def close(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.kill(self.proc.pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline and self.proc.isalive():
                time.sleep(0.05)
        try:
            self.proc.close(force=True)
        except Exception:
            pass


def make_home(root: Path, name: str, n_tasks: int, n_sessions: int = 0,
              todo: bool = True) -> dict[str, str]:
    """A PLANEAI_HOME with a registered repo, tasks and (dead or foreign) session rows."""
    home = root / name
    env = dict(os.environ, PLANEAI_HOME=str(home), SHELL="/bin/sh", PS1="$ ", ENV="",
               TERM="xterm-256color", COLORTERM="truecolor")
    env.pop("TMUX", None)
    repo = root / f"{name}-repo"
    repo.mkdir(parents=True)
    genv = dict(env, GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@b", GIT_COMMITTER_NAME="b",
                GIT_COMMITTER_EMAIL="b@b")
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True, env=genv)
    (repo / "README.md").write_text("bench\n")
    subprocess.run(["git", "-C", str(repo), "add", "."], check=True, env=genv)
    subprocess.run(["git", "-C", str(repo), "commit", "-qm", "init"], check=True, env=genv)
    old = os.environ.get("PLANEAI_HOME")
    os.environ["PLANEAI_HOME"] = str(home)
    try:
        from planeai.paths import locations
        from planeai.services.context import open_store
        from planeai.services.projects import add_project

        locs = locations()
        locs.config_dir.mkdir(parents=True, exist_ok=True)
        locs.config_file.write_text('[defaults]\nprovider = "shell"\n')
        store = open_store(locs)
        project, _ = add_project(store, repo, name="bench", key="BEN")
        rng = random.Random(7)
        statuses = (["todo"] * 2 if todo else []) + ["in_progress", "in_review"] + ["done"] * 6
        with store.write() as c:
            for i in range(n_tasks):
                parent = f"BEN-{rng.randint(1, i)}" if i > 10 and rng.random() < 0.2 else None
                t = store.add_task(project, title=f"Task {i + 1}: " + " ".join(
                    rng.choice(["fix", "add", "refactor", "test", "docs", "parser", "ui",
                                "store", "sync"]) for _ in range(4)),
                    priority=9 if i == 0 else rng.randint(-1, 3), parent_key=parent)
                st = "in_progress" if i == 0 else statuses[i % len(statuses)]
                if st != "todo":
                    c.execute("UPDATE tasks SET status = ? WHERE id = ?", (st, t.id))
            for i in range(n_sessions):
                s = store.add_session(id=f"{i:08x}", name=f"BEN-{n_tasks - i}", project=project,
                                      task_key=f"BEN-{n_tasks - i}", provider="shell",
                                      variant=None, backend="local", worktree=None,
                                      branch=None, autonomous=False, argv=["sh"])
                # half exited, half owned by a live process (this harness): shown, not adopted
                if i % 2:
                    store.update_session(s.id, state="running", pid=os.getpid(),
                                         agent_status="idle")
                else:
                    store.update_session(s.id, state="exited", exit_code=0)
        store.close()
    finally:
        if old is None:
            os.environ.pop("PLANEAI_HOME", None)
        else:
            os.environ["PLANEAI_HOME"] = old
    return env


def kill_pids(pidfile: Path) -> None:
    try:
        pids = json.loads(pidfile.read_text())
    except (OSError, ValueError):
        return
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, TypeError):
            pass


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def echo_latencies(pty: Pty, line_of, keys: int) -> list[float]:
    """Type ``keys`` characters; time each until the screen shows it."""
    lat = []
    typed = ""
    rng = random.Random(3)
    for i in range(keys):
        if len(typed) >= 40:
            pty.send(b"\x15")  # ctrl+u: clear the line (untimed)
            typed = ""
            pty.wait(lambda txt: line_of(txt, "") is not None)
        ch = "abcdefghijklmnopqrstuvwxyz"[i % 26]
        typed += ch
        want = typed
        t0 = pty.send(ch.encode())
        t1 = pty.wait(lambda txt, w=want: line_of(txt, w) is not None, timeout=10)
        lat.append((t1 - t0) * 1000)
        time.sleep(rng.uniform(0.02, 0.06))  # a fast typist, not a flood
    return lat


def prompt_line(prefix_col: int):
    """A finder for the shell's input line: "$ " + what was typed, right of ``prefix_col``."""
    def find(text: str, typed: str):
        want = ("$ " + typed).strip()
        for ln in text.splitlines():
            if ln[prefix_col:].lstrip("▕").strip() == want:
                return ln
        return None

    return find


def app_echo(me: list[str], root: Path, args, paced: bool) -> tuple[list[float], float]:
    """Keystroke-to-echo latencies in the focused session of the app, 20 sessions streaming
    beside it, and the app's CPU over them (% of a core)."""
    env = make_home(root, f"echo-{int(paced)}", 40 + args.echo_idle, todo=False)
    pidfile = root / f"echo-pids-{int(paced)}.json"
    p = Pty(me + ["--serve", "app", "--stream", "20", "--idle", str(args.echo_idle),
                  "--pidfile", str(pidfile)] + (["--paced"] if paced else []), env)
    try:
        p.wait(lambda t: "BEN-1 " in t and "Open" in t, timeout=60)
        # the person: go to BEN-1 (first in progress) and focus its terminal
        p.wait(lambda t: "In progress" in t)
        for key in (b"\x1b[B", b"\x1b[B", b"\x1b[B"):
            p.send(key)
            time.sleep(0.1)
        p.send(b"\t")
        p.wait(lambda t: "^] Sidebar" in t)
        find = prompt_line(52)
        p.send(b"\n")
        p.wait(lambda t: find(t, "") is not None)
        cpu0, w0 = p.cpu_seconds(), time.perf_counter()
        lat = echo_latencies(p, find, args.keys)
        return lat, (p.cpu_seconds() - cpu0) / (time.perf_counter() - w0) * 100
    finally:
        p.close()
        kill_pids(pidfile)


def pace_echo() -> None:
    """The app as it was: a keystroke's echo waits for the frame rate and the screen's next
    update tick like any other output (for the before/after)."""
    from planeai.tui.terminal_view import TerminalView

    write = TerminalView._write

    def paced_write(self, data: bytes) -> None:
        write(self, data)
        self._typed = False

    TerminalView._write = paced_write
    TerminalView._draw_now = lambda self: None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keys", type=int, default=100)
    ap.add_argument("--idle-seconds", type=float, default=30.0)
    ap.add_argument("--tasks", type=int, default=5000)
    ap.add_argument("--echo-idle", type=int, default=0,
                    help="idle sessions beside the 20 streaming ones in the keystroke test "
                         "(79: 100 sessions in all)")
    ap.add_argument("--runs", type=int, default=3, help="first-frame runs each")
    ap.add_argument("--only", default="first,echo,idle",
                    help="which parts, comma separated: first, echo, idle")
    ap.add_argument("--serve", choices=["bare", "app"], help=argparse.SUPPRESS)
    ap.add_argument("--stream", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--idle", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--pidfile", help=argparse.SUPPRESS)
    ap.add_argument("--paced", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve == "bare":
        serve_bare()
        return 0
    if args.serve == "app":
        if args.paced:
            pace_echo()
        serve_app(args.stream, args.idle, args.pidfile)
        return 0

    me = [sys.executable, str(Path(__file__).resolve())]
    results: dict[str, tuple[str, str]] = {}
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-tui-") as tmp:
        root = Path(tmp)

        parts = set(args.only.split(","))
        # ---- 3. first frame (5,000 tasks, 30 sessions) vs a bare app
        env_big = make_home(root, "big", args.tasks if "first" in parts else 40, 30)
        bare_ff, app_any, app_ff = [], [], []
        for _ in range(args.runs if "first" in parts else 0):
            p = Pty(me + ["--serve", "bare"], env_big)
            try:
                bare_ff.append((p.wait(lambda t: "$" in t) - p.t0) * 1000)
            finally:
                p.close()
            p = Pty([sys.executable, "-m", "planeai.cli.main"], env_big)
            try:
                t_tasks = p.wait(lambda t: "BEN-" in t)
                app_any.append(((p.first_output or t_tasks) - p.t0) * 1000)
                app_ff.append((t_tasks - p.t0) * 1000)
            finally:
                p.close()
        results["first frame (5,000 tasks, 30 sessions)"] = ("skipped", "") if not app_ff else (
            f"{statistics.median(app_ff):.0f} ms to tasks on screen "
            f"(first bytes {statistics.median(app_any):.0f} ms)",
            f"bare app {statistics.median(bare_ff):.0f} ms")

        if "echo" in parts:
            # ---- 1. keystroke-to-echo with 20 streaming sessions vs a bare app
            p = Pty(me + ["--serve", "bare"], env_big)
            try:
                p.wait(lambda t: "$" in t)
                bare_lat = echo_latencies(p, prompt_line(0), args.keys)
            finally:
                p.close()
            app_lat, cpu_stream = app_echo(me, root, args, paced=False)
            # the same app with its echo painted at the frame rate and the screen's update
            # tick, as before issue 17's follow-up: the before/after in one run (a home and
            # sessions of its own)
            old_lat, old_cpu = app_echo(me, root, args, paced=True)
            results[f"keystroke-to-echo, 20 sessions streaming, {args.echo_idle} idle"] = (
                f"p50 {statistics.median(app_lat):.1f} ms, p95 {pct(app_lat, 95):.1f} ms, "
                f"max {max(app_lat):.1f} ms (app CPU {cpu_stream:.0f}% of a core); "
                f"echo paced by frame (before): p50 {statistics.median(old_lat):.1f} ms, "
                f"p95 {pct(old_lat, 95):.1f} ms (CPU {old_cpu:.0f}%)",
                f"bare app p50 {statistics.median(bare_lat):.1f} ms, p95 {pct(bare_lat, 95):.1f} ms")

        if "idle" in parts:
            # ---- 2. idle CPU with 30 idle sessions vs a bare app, same 30 s
            env_idle = make_home(root, "idle", 40, todo=False)
            pidfile = root / "idle-pids.json"
            app = Pty(me + ["--serve", "app", "--idle", "29", "--pidfile", str(pidfile)], env_idle)
            bare = Pty(me + ["--serve", "bare"], env_idle)
            try:
                app.wait(lambda t: "BEN-1 " in t and "Open" in t, timeout=60)
                bare.wait(lambda t: "$" in t)
                time.sleep(3)  # let the shells print their prompts and statuses settle
                a0, b0, w0 = app.cpu_seconds(), bare.cpu_seconds(), time.perf_counter()
                time.sleep(args.idle_seconds)
                wall = time.perf_counter() - w0
                a_pct = (app.cpu_seconds() - a0) / wall * 100
                b_pct = (bare.cpu_seconds() - b0) / wall * 100
            finally:
                app.close()
                bare.close()
                kill_pids(pidfile)
            results[f"idle CPU, 30 idle sessions, {args.idle_seconds:.0f} s"] = (
                f"{a_pct:.2f}% of a core", f"bare app {b_pct:.2f}%")

    print(f"planeai app through a real PTY at {COLS}x{ROWS} "
          f"(total {time.perf_counter() - t_all:.0f} s)")
    w = max(len(k) for k in results)
    for k, (v, anchor) in results.items():
        print(f"  {k:<{w}}  {v}   | anchor: {anchor}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
