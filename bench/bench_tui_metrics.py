"""Benchmark: the app's frame time with live token / cost counters on 30 busy sessions, next
to the same app and sessions without metrics (issue 16).

The real app (`planeai`, no arguments) runs in a PTY whose output planeai's own emulator
parses (the harness of bench_tui.py). 30 tasks each have a busy session owned by this
harness (shown, not adopted). "With metrics": a writer thread here rewrites all 30 sessions'
metrics rows every second with growing token counts, as 30 observers would (a live row is
rewritten at most every 5 s each in real use: this is 5x that), so the app's metrics reader
posts changes on each of its rounds and the sidebar redraws its counters. "Without": no
rows; the same reader finds none.

Frame time: a key (down / up in the sidebar) to the frame that shows the newly selected
task in the pane title, median and p95 over ``--moves`` keys, and the app's CPU over the
run.

Run: python bench/bench_tui_metrics.py [--moves 60]   (about a minute)
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_tui import Pty, make_home, pct  # noqa: E402

SESSIONS = 30
SIDEBAR = 52  # the sidebar's width: the pane title starts after it


def prepare(root: Path, name: str) -> dict[str, str]:
    """A home with 30 in-progress tasks, each with a busy session this harness owns."""
    import os

    env = make_home(root, name, SESSIONS, SESSIONS, todo=False)
    from planeai.store.repository import Store

    store = Store.open(db_path(env))
    try:
        with store.write() as c:
            c.execute("UPDATE tasks SET status = 'in_progress'")
        for s in store.list_sessions():
            store.update_session(s.id, state="running", pid=os.getpid(), agent_status="busy",
                                 exit_code=None)
    finally:
        store.close()
    return env


def db_path(env: dict[str, str]) -> Path:
    """The store of the home ``env`` names (planeai.paths reads PLANEAI_HOME)."""
    import os

    saved = os.environ.get("PLANEAI_HOME")
    os.environ["PLANEAI_HOME"] = env["PLANEAI_HOME"]
    try:
        from planeai.paths import locations

        return locations().db_path
    finally:
        if saved is None:
            os.environ.pop("PLANEAI_HOME", None)
        else:
            os.environ["PLANEAI_HOME"] = saved


def writer(db: Path, stop: threading.Event) -> None:
    """Rewrite every session's metrics row each second, tokens growing (30 observers)."""
    from planeai.agents_usage.prices import estimate, parse_table
    from planeai.agents_usage.usage import SessionMetrics, Tokens
    from planeai.store.repository import Store

    prices = parse_table("bench", {"claude-sonnet-*": {"input": 3.0, "output": 15.0,
                                                        "cache_write": 3.75,
                                                        "cache_read": 0.3}})
    store = Store.open(db)
    try:
        sessions = store.list_sessions()
        n = 0
        while not stop.is_set():
            n += 1
            for i, s in enumerate(sessions):
                models = {"claude-sonnet-4-6": Tokens(1200 * n + i, 345 * n, 4000 * n,
                                                      20000 * n)}
                m = SessionMetrics(s.id, s.name, s.project_id, s.project_name, s.task_key,
                                   "claude", "claude", s.created_at, wall_s=float(n),
                                   busy_s=float(n), models=models)
                m.cost_usd, m.unpriced = estimate(models, prices)
                store.save_metrics(m)
            stop.wait(1.0)
    finally:
        store.close()


def title_key(text: str) -> str | None:
    first = text.splitlines()[0] if text else ""
    m = re.search(r"BEN-\d+", first[SIDEBAR:])
    return m.group(0) if m else None


def run(env: dict[str, str], moves: int, with_metrics: bool) -> dict:
    stop = threading.Event()
    t = None
    if with_metrics:
        t = threading.Thread(target=writer, args=(db_path(env), stop), daemon=True)
        t.start()
    p = Pty([sys.executable, "-m", "planeai.cli.main"], env)
    try:
        p.wait(lambda txt: "BEN-" in txt and "In progress" in txt, timeout=60)
        for _ in range(5):  # past the project and group rows, onto the first task
            p.send(b"\x1b[B")
            try:
                p.wait(lambda txt: title_key(txt) is not None, timeout=2)
                break
            except TimeoutError:
                continue
        if with_metrics:  # the counters are on screen before timing starts
            p.wait(lambda txt: " tok $" in txt, timeout=30)
        time.sleep(1.0)
        rng = random.Random(5)
        lat = []
        cpu0, w0 = p.cpu_seconds(), time.perf_counter()
        for i in range(moves):
            before = title_key(p.text())
            key = b"\x1b[B" if (i // 15) % 2 == 0 else b"\x1b[A"
            t0 = p.send(key)
            t1 = p.wait(lambda txt, b=before: title_key(txt) not in (None, b), timeout=10)
            lat.append((t1 - t0) * 1000)
            time.sleep(rng.uniform(0.05, 0.12))
        cpu = (p.cpu_seconds() - cpu0) / (time.perf_counter() - w0) * 100
        counters = sum(1 for ln in p.text().splitlines() if " tok $" in ln[:SIDEBAR + 1])
    finally:
        p.close()
        stop.set()
        if t is not None:
            t.join(5)
    return {"p50": statistics.median(lat), "p95": pct(lat, 95), "cpu": cpu,
            "counters": counters}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--moves", type=int, default=60)
    args = ap.parse_args()
    import tempfile

    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-tui-metrics-") as tmp:
        root = Path(tmp)
        without = run(prepare(root, "plain"), args.moves, False)
        with_m = run(prepare(root, "metrics"), args.moves, True)
    print(f"app frame time, key to frame, {SESSIONS} busy sessions, {args.moves} keys "
          f"(total {time.perf_counter() - t_all:.0f} s)")
    print(f"  with live counters ({with_m['counters']} on screen, rows rewritten every 1 s): "
          f"p50 {with_m['p50']:.1f} ms, p95 {with_m['p95']:.1f} ms, app CPU {with_m['cpu']:.0f}%"
          f"   | without metrics: p50 {without['p50']:.1f} ms, p95 {without['p95']:.1f} ms, "
          f"app CPU {without['cpu']:.0f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
