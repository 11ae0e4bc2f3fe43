"""Benchmark: the app's cost grows with change, not with size (issue 17), each number next
to a bare Textual app measured in the same run.

1. 100 live, idle tmux sessions: CPU of the app plus planeai's tmux server (and the app's
   tmux control clients) over ``--idle-seconds`` (anchor: a bare Textual app, idle);
2. 10,000 tasks in the store: time to the first frame with tasks on screen (anchor: a bare
   app's first frame);
3. one task added elsewhere (``planeai task add`` in another process) with 10,000 tasks
   shown: time until it is on screen, and the app's CPU for it, beyond its idle rate,
   counted from before the CLI starts (anchor: the bare app's CPU over the same window);
   with ``--before DIR`` an older version's app beside it, on the same store and window;
   and, in process, what applying that change costs next to reading the whole board
   again (the old way).

The app is the real one in a real PTY (the harness of bench_tui.py: ptyprocess, parsed
with planeai's own emulator); tmux sessions are started through SessionManager before the
app runs, as `planeai session start --backend tmux` would. CPU is read from
/proc/PID/task/*/schedstat (nanoseconds), so a few milliseconds are seen.

Run: python bench/bench_tui_scale.py [--sessions 100] [--idle-seconds 30] [--tasks 10000]
[--runs 3] [--only idle,first,add] [--before DIR]. Takes about 3 minutes at the defaults.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bench_tui  # noqa: E402  (the PTY harness and the store builder)
from bench_tui import Pty, make_home  # noqa: E402


def cpu_ns(pid: int) -> int:
    """CPU time of every thread of ``pid`` so far, in nanoseconds (0 once it is gone)."""
    total = 0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (the app's `tmux -C` control clients)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(d))
        except (OSError, ValueError, IndexError):
            pass
    return out


def serve_tmux_app() -> None:
    """The real app on the store of PLANEAI_HOME (its tmux sessions already run)."""
    from planeai import config
    from planeai.paths import locations
    from planeai.services.context import open_store
    from planeai.services.sessions import SessionManager
    from planeai.tui.app import PlaneaiApp
    from planeai.tui.model import preload

    locs = locations()
    store = open_store(locs)
    mgr = SessionManager(store, config.load(user_file=locs.config_file), locs)
    app = PlaneaiApp(mgr, initial=preload(store))
    try:
        app.run()
    finally:
        mgr.close()


def start_tmux_sessions(env: dict[str, str], n: int) -> None:
    """``n`` idle shells on the home's tmux server, one per task (as the CLI starts them)."""
    old = dict(os.environ)
    os.environ.update(env)
    try:
        from planeai import config
        from planeai.paths import locations
        from planeai.services.context import open_store
        from planeai.services.sessions import SessionManager

        locs = locations()
        store = open_store(locs)
        mgr = SessionManager(store, config.load(user_file=locs.config_file), locs)
        try:
            for t in store.list_tasks()[:n]:
                mgr.start(task_key=t.key, agent="shell", backend="tmux", worktree=False,
                          cols=100, rows=38, allow_more=True)
        finally:
            mgr.close()
            store.close()
    finally:
        os.environ.clear()
        os.environ.update(old)


def tmux_server_pid(env: dict[str, str], socket: str) -> int | None:
    r = subprocess.run(["tmux", "-L", socket, "display-message", "-p", "#{pid}"], env=env,
                       capture_output=True, text=True)
    return int(r.stdout.strip()) if r.stdout.strip().isdigit() else None


def in_process_apply_cost(env: dict[str, str], runs: int) -> tuple[float, float]:
    """Median ms to apply one added task (read the change, apply it, rebuild the rows it
    touched) and to read the whole board again and rebuild every row (the old way)."""
    old = dict(os.environ)
    os.environ.update(env)
    try:
        from planeai.paths import locations
        from planeai.services import tasks
        from planeai.services.board import BoardFeed
        from planeai.services.context import open_store
        from planeai.tui.model import build_rows, data_of

        locs = locations()
        store = open_store(locs)
        project = store.list_projects()[0]
        feed = BoardFeed.beside(store)
        data = data_of(feed.snapshot())
        blocks: dict = {}
        build_rows(data, set(), set(), blocks=blocks)
        delta, full = [], []
        for i in range(runs):
            mark = feed.mark()
            tasks.add_task(store, project, f"bench add {i}")
            t0 = time.perf_counter()
            _, change = feed.changes(mark)  # type: ignore[misc]
            dirty = data.apply(change)
            build_rows(data, set(), set(), blocks=blocks, dirty=dirty,
                       inserts=data.last_inserts)
            delta.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            build_rows(data_of(feed.snapshot()), set(), set())
            full.append((time.perf_counter() - t0) * 1000)
        feed.close()
        store.close()
        return statistics.median(delta), statistics.median(full)
    finally:
        os.environ.clear()
        os.environ.update(old)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=100)
    ap.add_argument("--idle-seconds", type=float, default=30.0)
    ap.add_argument("--tasks", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", default="idle,first,add",
                    help="which parts, comma separated: idle, first, add")
    ap.add_argument("--before", metavar="DIR",
                    help="part 'add': also run the app from an older copy of the planeai "
                         "package in DIR, side by side on the same store")
    ap.add_argument("--serve", choices=["bare", "tmux-app"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve == "bare":
        bench_tui.serve_bare()
        return 0
    if args.serve == "tmux-app":
        serve_tmux_app()
        return 0

    me = [sys.executable, str(Path(__file__).resolve())]
    app_cmd = [sys.executable, "-m", "planeai.cli.main"]
    results: dict[str, tuple[str, str]] = {}
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        root = Path(tmp)

        parts = set(args.only.split(","))
        # ---- 1. N idle tmux sessions: app + tmux server CPU vs a bare app
        socket = f"bench-scale-{os.getpid()}"
        if "idle" in parts:
            results.update(idle_tmux(root, me, socket, args))
        env_big = make_home(root, "big", args.tasks, 0) if parts & {"first", "add"} else {}
        if "first" in parts:
            results.update(first_frame(me, app_cmd, env_big, args))
        if "add" in parts:
            results.update(one_added(me, app_cmd, env_big, args))

    print(f"planeai app through a real PTY at {bench_tui.COLS}x{bench_tui.ROWS} "
          f"(total {time.perf_counter() - t_all:.0f} s; medians of {args.runs})")
    w = max(len(k) for k in results)
    for k, (v, anchor) in results.items():
        print(f"  {k:<{w}}  {v}   | anchor: {anchor}")
    return 0


def idle_tmux(root: Path, me: list[str], socket: str, args) -> dict[str, tuple[str, str]]:
    """Part 1: N idle tmux sessions, the app and its tmux server vs a bare app."""
    env = make_home(root, "idle", args.sessions + 5, todo=False)
    env["TMUX_TMPDIR"] = str(root)
    cfg = Path(env["PLANEAI_HOME"]) / "config" / "config.toml"
    cfg.write_text(cfg.read_text() + f'\n[tmux]\nsocket = "{socket}"\n')
    try:
        t0 = time.perf_counter()
        start_tmux_sessions(env, args.sessions)
        started = time.perf_counter() - t0
        server = tmux_server_pid(env, socket)
        app = Pty(me + ["--serve", "tmux-app"], env)
        bare = Pty(me + ["--serve", "bare"], env)
        try:
            app.wait(lambda t: "BEN-" in t and "Open" in t, timeout=120)
            bare.wait(lambda t: "$" in t)
            time.sleep(8)  # every session subscribed and observed once, statuses settled
            pids = [app.proc.pid, *children(app.proc.pid)]
            a0 = sum(cpu_ns(p) for p in pids)
            s0 = cpu_ns(server) if server else 0
            b0, w0 = cpu_ns(bare.proc.pid), time.perf_counter()
            time.sleep(args.idle_seconds)
            wall = time.perf_counter() - w0
            a_pct = (sum(cpu_ns(p) for p in pids) - a0) / 1e9 / wall * 100
            s_pct = ((cpu_ns(server) - s0) if server else 0) / 1e9 / wall * 100
            b_pct = (cpu_ns(bare.proc.pid) - b0) / 1e9 / wall * 100
            clients = len(pids) - 1
        finally:
            app.close()
            bare.close()
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], env=env, capture_output=True)
    return {f"{args.sessions} idle tmux sessions, {args.idle_seconds:.0f} s": (
        f"app {a_pct:.2f}% + tmux server {s_pct:.2f}% = {a_pct + s_pct:.2f}% of a core "
        f"({clients} tmux control clients of the app included; sessions started in "
        f"{started:.0f} s)", f"bare app {b_pct:.2f}%")}


def first_frame(me: list[str], app_cmd: list[str], env_big: dict[str, str],
                args) -> dict[str, tuple[str, str]]:
    """Part 2: the first frame with N tasks vs a bare app."""
    bare_ff, app_ff = [], []
    for _ in range(args.runs):
        p = Pty(me + ["--serve", "bare"], env_big)
        try:
            bare_ff.append((p.wait(lambda t: "$" in t) - p.t0) * 1000)
        finally:
            p.close()
        p = Pty(app_cmd, env_big)
        try:
            app_ff.append((p.wait(lambda t: "BEN-" in t, timeout=60) - p.t0) * 1000)
        finally:
            p.close()
    return {f"first frame, {args.tasks:,} tasks": (
        f"{statistics.median(app_ff):.0f} ms to tasks on screen",
        f"bare app {statistics.median(bare_ff):.0f} ms")}


def one_added(me: list[str], app_cmd: list[str], env_big: dict[str, str],
              args) -> dict[str, tuple[str, str]]:
    """Part 3: one task added by another process, N tasks shown. With ``--before DIR`` (a
    copy of an older ``planeai`` package, e.g. ``git archive HEAD planeai | tar -x -C
    DIR``) that version's app runs too, on the same store: both see the same task added,
    measured over the same window."""
    apps = {"app": Pty(app_cmd, env_big)}
    if args.before:
        env_before = dict(env_big, PYTHONPATH=str(Path(args.before).resolve()))
        apps["before"] = Pty(app_cmd, env_before)
    bare = Pty(me + ["--serve", "bare"], env_big)
    appear: dict[str, list[float]] = {k: [] for k in apps}
    cost: dict[str, list[float]] = {k: [] for k in apps}
    bare_cost: list[float] = []
    try:
        for p in apps.values():
            p.wait(lambda t: "BEN-" in t and "Open" in t, timeout=60)
        bare.wait(lambda t: "$" in t)
        time.sleep(3)
        for i in range(args.runs):
            title = f"Fresh {i} from elsewhere"
            # the idle rate just before
            c0 = {k: cpu_ns(p.proc.pid) for k, p in apps.items()}
            w0 = time.perf_counter()
            time.sleep(1.5)
            wall = time.perf_counter() - w0
            idle_rate = {k: (cpu_ns(p.proc.pid) - c0[k]) / wall for k, p in apps.items()}
            # counted from before the CLI starts: the app may see its commit before the
            # CLI process has exited
            c1 = {k: cpu_ns(p.proc.pid) for k, p in apps.items()}
            b1, t_start = cpu_ns(bare.proc.pid), time.perf_counter()
            r = subprocess.run(app_cmd + ["task", "add", title, "-p", "9", "--project",
                                          "bench"], env=env_big, capture_output=True,
                               text=True, timeout=60)
            assert r.returncode == 0, r.stderr
            t_added = time.perf_counter()
            # each app watched by its own thread: a second one's time is not the first's
            with ThreadPoolExecutor(len(apps)) as pool:
                shown = {k: pool.submit(p.wait, lambda t, w=title: w in t, 30)
                         for k, p in apps.items()}
                for k, f in shown.items():
                    appear[k].append((f.result() - t_added) * 1000)
            time.sleep(0.5)  # the last paints
            window = time.perf_counter() - t_start
            for k, p in apps.items():
                cost[k].append(max(0.0, (cpu_ns(p.proc.pid) - c1[k])
                                   - idle_rate[k] * window) / 1e6)
            bare_cost.append((cpu_ns(bare.proc.pid) - b1) / 1e6)
    finally:
        for p in apps.values():
            p.close()
        bare.close()
    if args.before:
        print(f"  one task added, app CPU beyond idle, runs: now {runs(cost['app'])}; "
              f"before {runs(cost['before'])}")
    try:
        d_ms, f_ms = in_process_apply_cost(env_big, max(5, args.runs))
        inproc = f" (in process: apply {d_ms:.1f} ms vs full reload {f_ms:.1f} ms)"
    except (AttributeError, TypeError):  # a version before BoardFeed.changes: none
        inproc = ""
    before = (f"; before ({args.before}): on screen in "
              f"{statistics.median(appear['before']):.0f} ms, app CPU "
              f"{statistics.median(cost['before']):.1f} ms (runs: {runs(cost['before'])})"
              if args.before else "")
    return {f"one task added elsewhere, {args.tasks:,} tasks shown": (
        f"on screen in {statistics.median(appear['app']):.0f} ms, app CPU "
        f"{statistics.median(cost['app']):.1f} ms beyond idle (runs: {runs(cost['app'])})"
        f"{before}{inproc}",
        f"bare app {statistics.median(bare_cost):.1f} ms over the same window "
        f"(runs: {runs(bare_cost)})")}


def runs(values: list[float]) -> str:
    return ", ".join(f"{v:.1f}" for v in values)


if __name__ == "__main__":
    raise SystemExit(main())
