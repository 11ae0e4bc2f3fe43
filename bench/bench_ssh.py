"""What does a command on a host cost over planeai's shared SSH connection?

Against the tests' own sshd on 127.0.0.1 (tests/support/sshd.py: needs root and
openssh-server), medians over N runs of `true` there, side by side with the anchor: a fresh
ssh login per command (ControlMaster=no), which is what a hundred sessions would cost without
multiplexing. Also the first command (login + master) once.

    python bench/bench_ssh.py [--runs 30]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from planeai.remote.ssh import SshHost  # noqa: E402
from support.sshd import Sshd, sshd_problem  # noqa: E402


def median_of(fn, runs: int) -> float:
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30)
    args = ap.parse_args()
    problem = sshd_problem()
    if problem:
        sys.exit(f"bench_ssh: {problem}")
    sshd = Sshd().setup()
    try:
        with tempfile.TemporaryDirectory(prefix="pai-b-") as tmp:
            host = SshHost("bench", sshd.target, port=sshd.port,
                           ssh_config=str(sshd.client_config), control_dir=Path(tmp))
            t0 = time.perf_counter()
            host.run(["true"], check=True)
            first = time.perf_counter() - t0
            shared = median_of(lambda: host.run(["true"], check=True), args.runs)
            plain = ["ssh", "-F", str(sshd.client_config), "-p", str(sshd.port),
                     "-o", "BatchMode=yes", "-o", "ControlMaster=no", "-o", "ControlPath=none",
                     "-T", "--", sshd.target, "true"]
            fresh = median_of(lambda: subprocess.run(plain, check=True, capture_output=True),
                              args.runs)
            host.exit_master()
    finally:
        sshd.cleanup()
    print(f"{'first command (login, master started)':46} {first * 1000:8.1f} ms")
    print(f"{'command over the shared connection (median)':46} {shared * 1000:8.1f} ms")
    print(f"{'anchor: fresh login per command (median)':46} {fresh * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
