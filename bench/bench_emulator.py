"""Terminal emulator throughput on agent-like streams.

    python bench/bench_emulator.py [--size BYTES] [--runs N] [--chunk BYTES]

Feeds the same bytes (bench/streams.py, plus replayed real Claude Code screens
when tests/data/screens/claude exists) into:

- planeai ``TerminalScreen`` (libghostty-vt via pyghostty),
- stock ``pyte.Screen`` and ``pyte.HistoryScreen`` (through ``pyte.ByteStream``),
- tmux (anchor): ``cat FILE`` in a detached pane of a private server
  ``-L bench-<pid>``, wall time from spawning the pane until ``cat`` has written
  everything and signalled ``wait-for`` (the pane has read all but at most one
  PTY buffer by then).  The file repeats the stream to a few MB so the spawn
  cost stays small.  The server is killed at the end.

Emulators get the bytes in ``--chunk`` pieces, like PTY reads.  Fast engines
repeat the stream within one run so that each run lasts at least ~50 ms.
Prints the median MB/s over ``--runs`` runs and ratios vs pyte and tmux, plus
what one full-screen read (``take_dirty`` + ``row_runs`` of every row) costs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import streams  # noqa: E402

COLS, ROWS = streams.COLS, streams.ROWS


def feed_planeai(data: bytes, chunk: int, reps: int) -> float:
    from planeai.terminal.screen import TerminalScreen

    s = TerminalScreen(COLS, ROWS)
    pieces = [data[i:i + chunk] for i in range(0, len(data), chunk)]
    t0 = time.perf_counter()
    for _ in range(reps):
        for p in pieces:
            s.feed(p)
    s.text_lines()
    return time.perf_counter() - t0


def _feed_pyte(screen, data: bytes, chunk: int, reps: int) -> float:
    import pyte

    stream = pyte.ByteStream(screen)
    pieces = [data[i:i + chunk] for i in range(0, len(data), chunk)]
    t0 = time.perf_counter()
    for _ in range(reps):
        for p in pieces:
            stream.feed(p)
    _ = screen.display
    return time.perf_counter() - t0


def feed_pyte(data: bytes, chunk: int, reps: int) -> float:
    import pyte

    return _feed_pyte(pyte.Screen(COLS, ROWS), data, chunk, reps)


def feed_pyte_history(data: bytes, chunk: int, reps: int) -> float:
    import pyte

    return _feed_pyte(pyte.HistoryScreen(COLS, ROWS, history=5000), data, chunk, reps)


class Tmux:
    def __init__(self) -> None:
        self.sock = f"bench-{os.getpid()}"
        self.tmp = Path(tempfile.mkdtemp(prefix="bench-emu-"))
        self.env = dict(os.environ, TMUX_TMPDIR=str(self.tmp), HOME=str(self.tmp))
        self.env.pop("TMUX", None)
        self.n = 0
        self("-f", "/dev/null", "new-session", "-d", "-s", "bench", "-x", str(COLS), "-y", str(ROWS))
        self("set-option", "-g", "default-size", f"{COLS}x{ROWS}")
        self("set-option", "-g", "history-limit", "5000")

    def __call__(self, *args: str) -> None:
        subprocess.run(["tmux", "-L", self.sock, *args], env=self.env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def run(self, path: Path) -> float:
        self.n += 1
        chan = f"done-{self.n}"
        cmd = f"cat {path}; tmux -L {self.sock} wait-for -S {chan}"
        t0 = time.perf_counter()
        self("new-window", "-d", "-t", "bench", cmd)
        self("wait-for", chan)
        return time.perf_counter() - t0

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.sock, "kill-server"], env=self.env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(self.tmp, ignore_errors=True)


def render_cost_us(data: bytes, runs: int) -> float:
    """Median µs to read what changed after 20 KB more output: take_dirty + row_runs of dirty rows."""
    from planeai.terminal.screen import TerminalScreen

    end = data.rfind(b"\x1b[?1049l")
    body = data[:end] if end >= 0 else data      # stay on the alternate screen for alt_tui
    s = TerminalScreen(COLS, ROWS)
    s.feed(body)
    times = []
    for _ in range(runs * 4):
        s.feed(body[-20000:])
        t0 = time.perf_counter()
        for y in s.take_dirty():
            s.row_runs(y)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=128 * 1024, help="bytes per stream (default 128 KiB)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--chunk", type=int, default=4096)
    ap.add_argument("--no-tmux", action="store_true")
    args = ap.parse_args()

    data_by_name = streams.all_streams(args.size)
    replay = streams.claude_replay(args.size)
    if replay:
        data_by_name["claude_replay"] = replay

    engines = {
        "TerminalScreen": feed_planeai,
        "pyte.Screen": feed_pyte,
        "pyte.History": feed_pyte_history,
    }
    tmux = None if args.no_tmux or not shutil.which("tmux") else Tmux()
    tmpdir = Path(tempfile.mkdtemp(prefix="bench-streams-"))
    t_start = time.perf_counter()
    results: dict[str, dict[str, float]] = {}
    render: dict[str, float] = {}
    try:
        for name, data in data_by_name.items():
            mb = len(data) / 1e6
            row: dict[str, float] = {}
            for ename, fn in engines.items():
                # calibrate repetitions: >= ~50 ms per run for fast engines
                once = fn(data, args.chunk, 1)
                reps = max(1, min(200, int(0.05 / max(once, 1e-6)) + 1)) if once < 0.05 else 1
                times = [fn(data, args.chunk, reps) / reps for _ in range(args.runs)]
                row[ename] = mb / statistics.median(times)
            if tmux is not None:
                reps = max(1, (4 << 20) // len(data))
                path = tmpdir / f"{name}.bin"
                path.write_bytes(data * reps)
                tmux.run(path)  # warm-up
                times = [tmux.run(path) / reps for _ in range(args.runs)]
                row["tmux"] = mb / statistics.median(times)
            results[name] = row
            render[name] = render_cost_us(data, args.runs)
    finally:
        if tmux is not None:
            tmux.close()
        shutil.rmtree(tmpdir, ignore_errors=True)

    cols = ["TerminalScreen", "pyte.Screen", "pyte.History"] + (["tmux"] if tmux else [])
    print(f"terminal {COLS}x{ROWS}, {args.size // 1024} KiB per stream, {args.chunk} B chunks, "
          f"median of {args.runs} runs, MB/s")
    header = f"{'stream':14}" + "".join(f"{c:>15}" for c in cols) + f"{'x pyte':>9}" + (f"{'x tmux':>9}" if tmux else "") + f"{'read µs':>9}"
    print(header)
    print("-" * len(header))
    for name, row in results.items():
        line = f"{name:14}" + "".join(f"{row[c]:15.2f}" for c in cols)
        line += f"{row['TerminalScreen'] / row['pyte.Screen']:9.0f}"
        if tmux:
            line += f"{row['TerminalScreen'] / row['tmux']:9.1f}"
        line += f"{render[name]:9.0f}"
        print(line)
    print("-" * len(header))
    med = {c: statistics.median(r[c] for r in results.values()) for c in cols}
    line = f"{'median':14}" + "".join(f"{med[c]:15.2f}" for c in cols)
    line += f"{med['TerminalScreen'] / med['pyte.Screen']:9.0f}"
    if tmux:
        line += f"{med['TerminalScreen'] / med['tmux']:9.1f}"
    print(line)
    print("read µs: take_dirty + row_runs of every dirty row after 20 KB more output (one TUI refresh)")
    print(f"total bench time {time.perf_counter() - t_start:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
