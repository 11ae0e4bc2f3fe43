"""Dispatcher latency and idle cost.

1. Time from a task becoming ready (its blocker marked done from another process) to its
   session's process running, with the dispatcher looping at the default poll interval.
   Anchor, same run: the time of a bare `session start` of the same agent (the floor).
   Target (issue 6): under 1 s.
2. Dispatcher CPU while 50 tasks wait (all slots busy), over 20 s, as % of one core.
   Anchor, same run: CPU of the same loop with nothing queued.

    python bench/bench_dispatch.py
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

GIT = {"GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "b",
       "GIT_COMMITTER_EMAIL": "b@b"}


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="pdb-") as tmp:
        tmp = Path(tmp)
        os.environ["PLANEAI_HOME"] = str(tmp / "home")
        os.environ.update(GIT)
        repo = tmp / "repo"
        subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
        (repo / "f").write_text("x")
        subprocess.run(["git", "-C", str(repo), "add", "."], check=True)
        subprocess.run(["git", "-C", str(repo), "commit", "-qm", "i"], check=True)
        from planeai import config
        from planeai.paths import locations

        # an agent that starts instantly and sits there (a user provider: a repo's own
        # provider files run only once the repo is trusted)
        pdir = locations().user_providers_dir
        pdir.mkdir(parents=True)
        (pdir / "sleeper.toml").write_text('name = "sleeper"\nbinary = "sleep"\n'
                                           'command = ["sleep", "3600"]\n')
        from planeai.services import tasks
        from planeai.services.context import open_store
        from planeai.services.dispatch import Dispatcher
        from planeai.services.projects import add_project
        from planeai.services.sessions import SessionManager

        locs = locations()
        store = open_store(locs)
        project, _ = add_project(store, repo)
        cfg = config.load(user_file=None, env={})
        cfg.data["defaults"]["provider"] = "sleeper"
        # done_grace 0: the sleeper never goes idle, so a run it "reported" is stopped at once
        # (this measures dispatching, not an agent finishing its turn)
        cfg.data["dispatch"].update({"backend": "local", "max_sessions": 1, "done_grace": 0})
        m = SessionManager(store, cfg, locs)

        # anchor: a bare session start
        bare = []
        for i in range(5):
            key = tasks.add_task(store, project, f"bare {i}").key
            t0 = time.perf_counter()
            m.start(task_key=key, agent="sleeper", backend="local", worktree=False)
            bare.append(time.perf_counter() - t0)
            m.stop(key)
            tasks.move(store, key, "done")

        # ready -> started, measured from another process marking the blocker done
        d = Dispatcher(m)
        stop = threading.Event()
        th = threading.Thread(target=d.run, kwargs={"stop": stop}, daemon=True)
        th.start()
        latencies = []
        for i in range(8):
            blocker = tasks.add_task(store, project, f"blocker {i}").key
            tasks.move(store, blocker, "in_review")  # not dispatchable, not done
            waiter = tasks.add_task(store, project, f"waiter {i}", blocked_by=[blocker]).key
            time.sleep(0.3)
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "planeai.cli.main", "task", "done", blocker],
                           check=True, stdout=subprocess.DEVNULL)
            t_ready = time.perf_counter()
            local = open_store(locs)
            while not any(s.state.value == "running" for s in local.sessions_for_task(waiter)):
                time.sleep(0.002)
            latencies.append(time.perf_counter() - t_ready)
            local.close()
            # free the slot for the next round
            s = m.store.sessions_for_task(waiter)[0]
            tasks.move(store, waiter, "done")
            while any(x.state.value == "running" for x in m.store.sessions_for_task(waiter)):
                time.sleep(0.01)
        # CPU while 50 tasks wait behind a busy slot
        for i in range(50):
            tasks.add_task(store, project, f"queued {i}")
        time.sleep(2)
        c0, w0 = time.process_time(), time.perf_counter()
        time.sleep(20)
        busy_cpu = (time.process_time() - c0) / (time.perf_counter() - w0) * 100
        stop.set()
        th.join(10)
        # anchor: the same loop with nothing queued (all queued tasks done, slot free)
        for t in store.list_tasks(statuses=[tasks.Status.TODO]):
            tasks.move(store, t.key, "done")
        for s in store.list_sessions():
            if s.state.value == "running":
                m.stop(s.id)
        d2 = Dispatcher(m)
        stop2 = threading.Event()
        th2 = threading.Thread(target=d2.run, kwargs={"stop": stop2}, daemon=True)
        th2.start()
        time.sleep(2)
        c0, w0 = time.process_time(), time.perf_counter()
        time.sleep(20)
        empty_cpu = (time.process_time() - c0) / (time.perf_counter() - w0) * 100
        stop2.set()
        th2.join(10)
        m.close()
        b, l_ = statistics.median(bare), statistics.median(latencies)
        print(f"{'bare session start (anchor)':<48} {b * 1000:8.1f} ms")
        print(f"{'task ready -> its session running (median of 8)':<48} {l_ * 1000:8.1f} ms"
              f"  ({l_ / b:.1f}x the bare start; max {max(latencies) * 1000:.0f} ms)")
        print(f"target < 1 s: {'MET' if l_ < 1.0 else 'MISSED'}")
        print(f"{'dispatcher CPU, nothing queued (anchor)':<48} {empty_cpu:8.2f} % of a core")
        print(f"{'dispatcher CPU, 50 tasks waiting':<48} {busy_cpu:8.2f} % of a core")


if __name__ == "__main__":
    main()
