"""Memory of the app with 30 streaming local sessions: does its RSS stay flat once every
session's scrollback is full?

The app is the real one in a PTY (bench_tui's harness: `PlaneaiApp` on a real store, 30 local
shell sessions each exec'ing a markdown streamer, 2 KiB every 50 ms). RSS (VmRSS of the app
process) is sampled every few seconds; the report gives the RSS when the scrollbacks fill
(5,000 lines each, the local backend's bound: the streamers fill it in ~25 s) and
at the end, and the growth between them per session. The anchor is the same app with the same
30 sessions idle, sampled side by side in the same run.

What bounds it: each local session keeps one emulator screen (planeai.terminal.screen) with a
scrollback of at most 5,000 lines; older lines are dropped as new ones arrive, so once full a
session's memory stops growing. The app keeps no other per-session history.

Measured (2 cores, 60 s): 60.6 MiB at start, 313 MiB when full (25 s), 325.9 MiB from 45 s on
(+0.0 MiB over the last 15 s); the idle anchor 61 MiB: ~8.6 MiB per streaming session, flat.

    python bench/bench_app_memory.py [--seconds 120] [--every 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_tui import Pty, kill_pids, make_home  # noqa: E402

SESSIONS = 30


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=120.0)
    ap.add_argument("--every", type=float, default=5.0)
    ap.add_argument("--fill-seconds", type=float, default=45.0,
                    help="by when every scrollback is full (5,000 lines)")
    args = ap.parse_args()
    me = [sys.executable, str(Path(__file__).resolve().parent / "bench_tui.py")]
    with tempfile.TemporaryDirectory(prefix="pbench-mem-") as tmp:
        root = Path(tmp)
        env_s = make_home(root, "streaming", SESSIONS + 1)
        env_i = make_home(root, "idle", SESSIONS + 1)
        pid_s, pid_i = root / "streaming.pids", root / "idle.pids"
        streaming = Pty(me + ["--serve", "app", "--stream", str(SESSIONS), "--pidfile",
                              str(pid_s)], env_s)
        idle = Pty(me + ["--serve", "app", "--idle", str(SESSIONS), "--pidfile", str(pid_i)],
                   env_i)
        try:
            for p in (streaming, idle):
                p.wait(lambda t: "BEN-1" in t, timeout=60)
            samples = []
            t0 = time.monotonic()
            while (now := time.monotonic() - t0) < args.seconds:
                samples.append((round(now, 1), rss_kib(streaming.proc.pid),
                                rss_kib(idle.proc.pid)))
                time.sleep(args.every)
        finally:
            for p, f in ((streaming, pid_s), (idle, pid_i)):
                kill_pids(f)
                p.close()
    full = [s for s in samples if s[0] >= args.fill_seconds]
    if len(full) < 2:
        print(json.dumps({"error": "run longer than --fill-seconds", "samples": samples}))
        return 1
    at_full = statistics.median(s[1] for s in full[:3])
    at_end = statistics.median(s[1] for s in full[-3:])
    idle_end = statistics.median(s[2] for s in full[-3:])
    print(json.dumps({
        "sessions": SESSIONS, "seconds": args.seconds,
        "rss_start_mib": round(samples[0][1] / 1024, 1),
        "rss_when_full_mib": round(at_full / 1024, 1),
        "rss_end_mib": round(at_end / 1024, 1),
        "growth_after_full_kib_per_session": round((at_end - at_full) / SESSIONS, 1),
        "anchor_idle_app_rss_end_mib": round(idle_end / 1024, 1),
        "streaming_over_idle_mib_per_session": round((at_end - idle_end) / 1024 / SESSIONS, 2),
        "samples": samples}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
