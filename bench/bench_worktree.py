"""Worktree creation cost: bare `git worktree add` vs planeai's ensure_worktree().

Usage: python bench/bench_worktree.py [--files 20000] [--runs 5]

Builds a repo of N small files (one commit) in a temp dir, then reports medians over R runs of
  anchor:  git worktree add --no-track -b x<i> <path> main
  anchor + -c checkout.workers=2
  ensure_worktree(repo, root, name, branch)          (planeai, hardened, locked; default
                                                      checkout.workers=2), and with workers=1
and the ratio ensure/anchor.  Worktrees are removed between runs, outside the timed region.
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from planeai.git.worktrees import create as worktree_create  # noqa: E402
from planeai.git.worktrees import ensure_worktree  # noqa: E402

ENV = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "b",
       "GIT_COMMITTER_EMAIL": "b@b", "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}
os.environ.update(ENV)


def sh(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, env=ENV, check=True, capture_output=True)


def make_repo(path: Path, n: int) -> None:
    path.mkdir()
    sh(path, "init", "-q", "-b", "main")
    for i in range(n):
        d = path / f"d{i // 500:03d}" / f"s{(i // 50) % 10}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i:05d}.txt").write_text(f"file {i}\n" + "x" * (i % 200) + "\n")
    (path / ".gitignore").write_text(".env\n")
    (path / ".env").write_text("SECRET=1\n")
    sh(path, "add", "-A")
    sh(path, "commit", "-q", "-m", "init")


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=20000)
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="planeai-bench-"))
    try:
        repo = tmp / "repo"
        t0 = time.perf_counter()
        make_repo(repo, a.files)
        print(f"repo: {a.files} files, built in {time.perf_counter() - t0:.1f}s "
              f"(git {subprocess.run(['git', '--version'], capture_output=True, text=True).stdout.split()[-1]}, "
              f"{os.cpu_count()} cpus)")
        root = tmp / "wts"
        root.mkdir()
        results: dict[str, list[float]] = {k: [] for k in
                                           ("bare add", "bare add workers=2", "ensure_worktree",
                                            "ensure_worktree workers=1", "ensure + copy .env",
                                            "ensure (reuse)")}

        def clean(p: Path, b: str) -> None:
            sh(repo, "worktree", "remove", "--force", str(p))
            sh(repo, "branch", "-D", b)

        # warm the page cache once
        sh(repo, "worktree", "add", "-q", "--no-track", "-b", "warm", str(root / "warm"), "main")
        clean(root / "warm", "warm")
        for r in range(a.runs):
            # interleave variants so drift hits all equally
            p = root / f"bare{r}"
            results["bare add"].append(timed(lambda: sh(
                repo, "worktree", "add", "-q", "--no-track", "-b", f"x{r}", str(p), "main")))
            clean(p, f"x{r}")
            p = root / f"barew{r}"
            results["bare add workers=2"].append(timed(lambda: sh(
                repo, "-c", "checkout.workers=2", "worktree", "add", "-q", "--no-track", "-b",
                f"w{r}", str(p), "main")))
            clean(p, f"w{r}")
            name = f"PLA-{r}"
            results["ensure_worktree"].append(timed(lambda: ensure_worktree(
                repo, root, name, f"planeai/{name}")))
            results["ensure (reuse)"].append(timed(lambda: ensure_worktree(
                repo, root, name, f"planeai/{name}")))
            clean(root / repo.name / name, f"planeai/{name}")
            default_workers = worktree_create.CHECKOUT_WORKERS
            worktree_create.CHECKOUT_WORKERS = 1
            name = f"PLW-{r}"
            results["ensure_worktree workers=1"].append(timed(lambda: ensure_worktree(
                repo, root, name, f"planeai/{name}")))
            worktree_create.CHECKOUT_WORKERS = default_workers
            clean(root / repo.name / name, f"planeai/{name}")
            name = f"PLC-{r}"
            results["ensure + copy .env"].append(timed(lambda: ensure_worktree(
                repo, root, name, f"planeai/{name}", copy_ignored=[".env"])))
            clean(root / repo.name / name, f"planeai/{name}")
        med = {k: statistics.median(v) for k, v in results.items()}
        for k, v in results.items():
            print(f"{k:28s} median {med[k] * 1000:8.1f} ms   runs: "
                  + " ".join(f"{x * 1000:.0f}" for x in v))
        anchor = med["bare add"]
        print(f"ensure_worktree uses checkout.workers={worktree_create.CHECKOUT_WORKERS}")
        print(f"ratio ensure_worktree / bare add:            {med['ensure_worktree'] / anchor:.3f}x")
        print(f"ratio ensure_worktree workers=1 / bare add:  "
              f"{med['ensure_worktree workers=1'] / anchor:.3f}x  (same checkout mode as anchor)")
        print(f"ratio bare add workers=2 / bare add:         {med['bare add workers=2'] / anchor:.3f}x")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
