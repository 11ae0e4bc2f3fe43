"""Output throughput to an attached client: daemon vs local backend vs tmux, same run.

Usage: python bench/bench_daemon.py [--mb 8] [--runs 5] [--stream markdown]

A child process waits for Enter, then `cat`s N MB of agent-like terminal output (bench/streams.py)
ending in a unique marker. The clock starts when Enter is written and stops when the client
has seen the marker, i.e. has received everything. Paths measured:

  local            LocalBackend in this process: PTY -> emulator -> subscriber callback
  daemon           PTY -> daemon (emulator) -> Unix socket -> DaemonBackend subscriber
  daemon attach    ... -> `planeai attach` raw client -> its terminal (a PTY read here)
  tmux -C          PTY -> tmux server -> control-mode %output -> TmuxBackend subscriber
  tmux attach      PTY -> tmux server -> `tmux attach` -> its terminal (a PTY read here)

Each uses a private home / tmux socket in a temp dir, removed at the end. Medians over R runs,
MB/s = payload MB / seconds, ratios against the local backend.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import ptyprocess  # noqa: E402

import streams  # noqa: E402
from planeai.backends.base import SpawnSpec  # noqa: E402
from planeai.backends.daemon.backend import DaemonBackend  # noqa: E402
from planeai.backends.local import LocalBackend  # noqa: E402
from planeai.backends.daemon import DaemonPaths  # noqa: E402
from planeai.backends.daemon.client import stop_daemon  # noqa: E402

COLS, ROWS = 120, 40


class Waiter:
    """Collects output; ``done`` fires when the marker has been seen."""

    def __init__(self, marker: bytes) -> None:
        self.marker = marker
        self.tail = b""
        self.count = 0
        self.done = threading.Event()
        self.t_end = 0.0

    def feed(self, _name, data: bytes) -> None:
        if not data or self.done.is_set():
            return
        self.count += len(data)
        self.tail = (self.tail + data)[-(len(self.marker) + 64):]
        if self.marker in self.tail:
            self.t_end = time.perf_counter()
            self.done.set()


def _spec(name: str, payload: Path, env: dict) -> SpawnSpec:
    return SpawnSpec(name, ["sh", "-c", f"read x; cat {payload}; read y"], "/tmp", env, COLS, ROWS)


def run_backend(backend, name: str, payload: Path, marker: bytes, env: dict) -> float:
    w = Waiter(marker)
    backend.spawn(_spec(name, payload, env))
    unsub = backend.subscribe(name, w.feed)
    time.sleep(0.2)  # let the shell reach `read` (not part of the timing)
    t0 = time.perf_counter()
    backend.write(name, b"\r")
    if not w.done.wait(300):
        raise RuntimeError(f"{backend.kind}: marker never arrived ({w.count} bytes)")
    elapsed = w.t_end - t0
    unsub()
    backend.kill(name, timeout=3)
    backend.forget(name)
    return elapsed


def run_pty_client(argv: list[str], env: dict, start, marker: bytes) -> float:
    """A terminal (PTY) running ``argv``; time from ``start()`` until the marker shows."""
    term = ptyprocess.PtyProcess.spawn(argv, dimensions=(ROWS, COLS), env=env)
    try:
        tail = b""
        # wait for the client to draw something, then start the stream
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            tail = (tail + term.read(65536))[-4096:]
            if b"$" in tail or b"\x1b[" in tail:
                break
        time.sleep(0.2)
        t0 = time.perf_counter()
        start()
        tail = b""
        while True:
            tail = (tail + term.read(262144))[-(len(marker) + 4096):]
            if marker in tail:
                return time.perf_counter() - t0
    finally:
        term.kill(signal.SIGKILL)
        term.close(force=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, default=8)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--stream", default="markdown", choices=sorted(streams.STREAMS))
    ap.add_argument("--skip", action="append", default=[],
                    help="skip a path: local, daemon, daemon-attach, tmux, tmux-attach")
    opts = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="pbd-", dir="/tmp"))
    marker = f"END-OF-STREAM-{secrets.token_hex(6)}".encode()
    payload = tmp / "payload"
    body = streams.STREAMS[opts.stream](int(opts.mb * 1024 * 1024))
    payload.write_bytes(body + b"\r\n" + marker + b"\r\n")
    mb = payload.stat().st_size / 1e6
    env = {"PATH": os.environ["PATH"], "TERM": "xterm-256color", "HOME": str(tmp),
           "LANG": "C.UTF-8", "PS1": "$ "}
    results: dict[str, list[float]] = {}
    paths = DaemonPaths(tmp / "run", tmp / "state")
    tsock = f"pbd-{secrets.token_hex(4)}"
    tenv = {**os.environ, "TMUX_TMPDIR": str(tmp), "HOME": str(tmp)}
    tenv.pop("TMUX", None)
    have_tmux = shutil.which("tmux") is not None
    local = LocalBackend()
    daemon = DaemonBackend(paths=paths, env={**os.environ, "PLANEAI_HOME": str(tmp)})
    tmuxb = None
    if have_tmux:
        from planeai.backends.tmux import TmuxBackend

        tmuxb = TmuxBackend(tsock, env=tenv, runtime_dir=tmp / "run")
    try:
        for r in range(opts.runs):
            if "local" not in opts.skip:
                results.setdefault("local", []).append(
                    run_backend(local, f"L{r}", payload, marker, env))
            if "daemon" not in opts.skip:
                results.setdefault("daemon", []).append(
                    run_backend(daemon, f"D{r}", payload, marker, env))
            if "daemon-attach" not in opts.skip:
                name = f"A{r}"
                daemon.spawn(_spec(name, payload, env))
                cmd = daemon.attach_command(name)
                results.setdefault("daemon attach", []).append(run_pty_client(
                    cmd, {**os.environ, "TERM": "xterm-256color"},
                    lambda name=name: daemon.write(name, b"\r"), marker))
                daemon.kill(name, timeout=3)
                daemon.forget(name)
            if tmuxb is not None and "tmux" not in opts.skip:
                results.setdefault("tmux -C", []).append(
                    run_backend(tmuxb, f"T{r}", payload, marker, env))
            if tmuxb is not None and "tmux-attach" not in opts.skip:
                name = f"TA{r}"
                tmuxb.spawn(_spec(name, payload, env))
                results.setdefault("tmux attach", []).append(run_pty_client(
                    tmuxb.attach_command(name), {**tenv, "TERM": "xterm-256color"},
                    lambda name=name: tmuxb.write(name, b"\r"), marker))
                tmuxb.kill(name, timeout=3)
                tmuxb.forget(name)
    finally:
        local.close()
        daemon.close()
        stop_daemon(paths)
        if tmuxb is not None:
            tmuxb.kill_server()
        shutil.rmtree(tmp, ignore_errors=True)

    base = statistics.median(results["local"]) if "local" in results else None
    print(f"{opts.stream} stream, {mb:.1f} MB per run, {opts.runs} runs, "
          f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    print(f"{'path':<16}{'median s':>10}{'MB/s':>9}{'min..max MB/s':>18}{'vs local':>10}")
    for k, v in results.items():
        med = statistics.median(v)
        rates = sorted(mb / x for x in v)
        ratio = f"{base / med:.2f}x" if base else "-"
        print(f"{k:<16}{med:>10.3f}{mb / med:>9.1f}{rates[0]:>10.1f}..{rates[-1]:<6.1f}{ratio:>10}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
