"""How fast is `planeai task add`, the command agents call all day?

Prints medians over N runs, side by side with anchors measured in the same run:
the bare interpreter, and `import sqlite3, argparse` (the floor for any Python CLI with a
store). Target (issue 2): `planeai task add` median <= 0.15 s on this machine.

    python bench/bench_cli.py [--runs 30]
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


def timed(argv: list[str], env: dict, cwd: str, runs: int) -> float:
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(argv, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30)
    args = ap.parse_args()
    # the console script next to this interpreter (a pyenv shim on PATH would add ~100 ms of bash)
    script = Path(sys.executable).parent / "planeai"
    planeai = str(script) if script.exists() else shutil.which("planeai")
    cli = [planeai] if planeai else [sys.executable, "-m", "planeai.cli.main"]
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "PLANEAI_HOME": str(Path(tmp) / "home")}
        repo = Path(tmp) / "bench"
        subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
        subprocess.run(cli + ["project", "add", str(repo), "--key", "BEN"], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        # a store that is not empty: 2,000 tasks already there
        subprocess.run([sys.executable, "-c", (
            "from planeai.services.context import open_store\n"
            "from planeai.services import tasks\n"
            "s = open_store(); p = s.find_project('BEN')\n"
            "[tasks.add_task(s, p, f't{i}') for i in range(2000)]")], env=env, check=True)
        rows = [
            ("python -c pass (interpreter floor)", [sys.executable, "-c", "pass"]),
            ("python -c 'import sqlite3, argparse'", [sys.executable, "-c", "import sqlite3, argparse"]),
            ("planeai task add (in repo)", cli + ["task", "add", "bench task", "-d", "x"]),
            ("planeai task add --project (env context)", cli + ["task", "add", "t", "--project", "BEN"]),
            ("planeai task list --ready --json", cli + ["task", "list", "--ready", "--json"]),
            ("python -c 'import textual.app' (for contrast)", [sys.executable, "-c", "import textual.app"]),
        ]
        results = [(name, timed(argv, env, str(repo), args.runs)) for name, argv in rows]
    floor = results[1][1]
    print(f"median wall time over {args.runs} runs")
    print(f"{'command':<48} {'median':>9} {'vs sqlite3+argparse':>20}")
    for name, t in results:
        print(f"{name:<48} {t * 1000:>7.1f}ms {t / floor:>19.2f}x")
    add = results[2][1]
    print(f"target: task add <= 150 ms -> {'MET' if add <= 0.150 else 'MISSED'} ({add * 1000:.1f} ms)")


if __name__ == "__main__":
    main()
