"""What the Docker sandbox adds to a session start: `planeai session start` (the CLI process,
as a user runs it) until the agent's first action is visible, sandboxed vs on the host, side
by side in one run (interleaved, same repo, same provider, same tmux backend).

The agent is `sh -c` writing a file in its worktree, so "first action" is measured the same
way on both sides; the sandboxed one runs in planeai's base image. Target (issue 14): the
sandboxed start costs at most 1.5 s more than the host one (median).

    python bench/bench_sandbox.py [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GIT = {"GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "b",
       "GIT_COMMITTER_EMAIL": "b@b"}
BASE = "planeai-base:bookworm"


def cli(env, *args) -> str:
    cp = subprocess.run([sys.executable, "-m", "planeai", *args], env=env, capture_output=True,
                        text=True, timeout=300)
    if cp.returncode != 0:
        sys.exit(f"planeai {' '.join(args)} failed: {cp.stderr.strip()}")
    return cp.stdout


def one_start(env, key: str, sandbox: bool, worktrees: Path) -> float:
    marker = worktrees / key / "started.txt"
    t0 = time.perf_counter()
    cli(env, "session", "start", key, "--provider", "boxsh",
        "--sandbox" if sandbox else "--no-sandbox", "--prompt",
        "echo up > started.txt; exec sleep 600")
    while not marker.exists():
        time.sleep(0.005)
    took = time.perf_counter() - t0
    cli(env, "session", "stop", key)
    return took


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(__file__).parent.parent
                                                                  / "planeai")], check=False)
    if subprocess.run(["docker", "image", "inspect", BASE], capture_output=True).returncode:
        sys.exit(f"{BASE} is missing: planeai sandbox build base [--debootstrap]")
    with tempfile.TemporaryDirectory(prefix="pbench-sbx-") as tmp:
        tmp = Path(tmp)
        home = tmp / "home"
        sock = f"bench-sbx-{os.getpid()}"
        (home / "config" / "providers").mkdir(parents=True)
        (home / "config" / "providers" / "boxsh.toml").write_text(
            f'name = "boxsh"\ncommand = ["sh", "-c", "{{prompt}}"]\ndocker_image = "{BASE}"\n')
        cfg = tmp / "planeai.toml"
        cfg.write_text(f'[defaults]\nbackend = "tmux"\n[tmux]\nsocket = "{sock}"\n'
                       '[sandbox]\nnetwork = "none"\n')
        env = {**os.environ, **GIT, "PLANEAI_HOME": str(home), "PLANEAI_CONFIG": str(cfg)}
        repo = tmp / "repo"
        subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
        (repo / "README.md").write_text("bench\n")
        subprocess.run(["git", "-C", str(repo), "add", "."], check=True, env=env)
        subprocess.run(["git", "-C", str(repo), "commit", "-qm", "init"], check=True, env=env)
        cli(env, "project", "add", str(repo))
        worktrees = home / "data" / "worktrees" / "repo"
        host, boxed = [], []
        try:
            for i in range(args.runs):
                for sandbox, out in ((False, host), (True, boxed)):
                    key = cli(env, "task", "add", f"run {i} {sandbox}", "--project",
                              "REP").strip()
                    out.append(one_start(env, key, sandbox, worktrees))
        finally:
            subprocess.run(["tmux", "-L", sock, "kill-server"], capture_output=True)
        h, b = statistics.median(host), statistics.median(boxed)
        print(json.dumps({"runs": args.runs, "host_start_s": round(h, 3),
                          "sandboxed_start_s": round(b, 3), "extra_s": round(b - h, 3),
                          "ratio": round(b / h, 2), "target_extra_s": 1.5,
                          "met": (b - h) <= 1.5}))


if __name__ == "__main__":
    main()
