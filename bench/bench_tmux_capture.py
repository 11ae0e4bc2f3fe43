"""Benchmark: one capture sweep of 50 live tmux panes (capture-pane -p -e).

(a) a fork of `tmux capture-pane` per pane, one after another (the anchor),
(b) TmuxControl.capture_panes over one persistent control-mode client (pipelined).

Run: python bench/bench_tmux_capture.py [--sessions 50] [--sweeps 20]
Uses a private tmux server (random -L socket, HOME and TMUX_TMPDIR in a temp dir) and kills it.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from planeai.backends.tmux_control import TmuxControl  # noqa: E402

PRINTER = r"""i=0
while :; do
  for k in 1 2 3 4 5; do
    i=$((i+1))
    printf '\033[3%dm%s line %d \033[1mbold\033[0m \033[48;5;%dmbg\033[0m text text text\n' $((i%7+1)) "$1" $i $((i%200))
  done
  sleep 1
done
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=50)
    ap.add_argument("--sweeps", type=int, default=20)
    opts = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="planeai-bench-") as tmp:
        tmpdir = Path(tmp)
        (tmpdir / "home").mkdir()
        (tmpdir / "tmux").mkdir()
        env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE")}
        env.update(HOME=str(tmpdir / "home"), TMUX_TMPDIR=str(tmpdir / "tmux"), SHELL="/bin/sh")
        sock = "planeai-bench-" + secrets.token_hex(4)
        printer = tmpdir / "printer.sh"
        printer.write_text(PRINTER)
        tmux = ["tmux", "-L", sock, "-f", "/dev/null"]
        names = [f"PLA-{i}" for i in range(1, opts.sessions + 1)]
        ctl = TmuxControl(sock, env=env, config_file="/dev/null")
        try:
            ctl.start()
            for n in names:
                ctl.command("new-session", "-d", "-s", n, "-x", "160", "-y", "48", f"sh {printer} {n}")
            targets = [f"={n}:" for n in names]
            # wait until every pane has printed its first lines
            deadline = time.monotonic() + 30
            while True:
                got = ctl.capture_panes(targets, escapes=False)
                if all(v and " line " in v for v in got.values()):
                    break
                if time.monotonic() > deadline:
                    raise SystemExit("panes did not start printing")
                time.sleep(0.05)

            def sweep_fork() -> int:
                total = 0
                for t in targets:
                    r = subprocess.run(
                        [*tmux, "capture-pane", "-p", "-e", "-t", t],
                        env=env, capture_output=True, check=True,
                    )
                    total += len(r.stdout)
                return total

            def sweep_control() -> int:
                res = ctl.capture_panes(targets, escapes=True)
                if any(v is None for v in res.values()):
                    raise SystemExit("a capture failed")
                return sum(len(v) for v in res.values())  # type: ignore[arg-type]

            sweep_fork(), sweep_control()  # warm up
            fork_t: list[float] = []
            ctl_t: list[float] = []
            fork_bytes = ctl_bytes = 0
            for _ in range(opts.sweeps):  # interleave so both see the same load
                t0 = time.perf_counter()
                fork_bytes = sweep_fork()
                t1 = time.perf_counter()
                ctl_bytes = sweep_control()
                t2 = time.perf_counter()
                fork_t.append((t1 - t0) * 1000)
                ctl_t.append((t2 - t1) * 1000)

            fm, cm = statistics.median(fork_t), statistics.median(ctl_t)
            print(f"{subprocess.run(['tmux', '-V'], capture_output=True, text=True).stdout.strip()}, "
                  f"{opts.sessions} live panes (160x48, 5 coloured lines/s each), "
                  f"{opts.sweeps} sweeps, capture-pane -p -e, load avg {os.getloadavg()[0]:.1f} "
                  f"on {os.cpu_count()} cpus")
            print(f"{'method':<34} {'median ms':>10} {'min ms':>8} {'max ms':>8} {'per pane ms':>12} {'bytes':>8}")
            print(f"{'(a) fork per pane, sequential':<34} {fm:>10.2f} {min(fork_t):>8.2f} "
                  f"{max(fork_t):>8.2f} {fm / opts.sessions:>12.3f} {fork_bytes:>8}")
            print(f"{'(b) control mode capture_panes':<34} {cm:>10.2f} {min(ctl_t):>8.2f} "
                  f"{max(ctl_t):>8.2f} {cm / opts.sessions:>12.3f} {ctl_bytes:>8}")
            print(f"ratio (a)/(b): {fm / cm:.1f}x")
        finally:
            ctl.close()
            subprocess.run([*tmux, "kill-server"], env=env, capture_output=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
