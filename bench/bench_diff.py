"""A task's diff on a big change: planeai's worktree_diff() vs `git diff --stat` on the same tree.

Usage: python bench/bench_diff.py [--files 10000] [--changed 5000] [--runs 5]

Builds a repo of N small files (one commit on main) and a linked worktree on a branch, then
changes C files in it: 10% committed on the branch, 80% edited and left uncommitted, 10% new
untracked files. Reports medians over R runs of
  anchor:   git diff --stat <merge-base>             (plain git, in the worktree)
  planeai:  worktree_diff(worktree, "main")           (hardened git, a temporary index with the
                                                       untracked files as intent-to-add, the
                                                       file list with +/- counts)
  planeai + patch: the same plus the full unified diff text
and the ratio planeai/anchor (target: at most 1.5x). The anchor does not see untracked files;
planeai does, so its list is the longer one.
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

from planeai.git.review.diff import worktree_diff  # noqa: E402

ENV = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "b",
       "GIT_COMMITTER_EMAIL": "b@b", "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}
os.environ.update(ENV)


def sh(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=ENV, check=True, capture_output=True,
                          text=True).stdout


def build(tmp: Path, n: int, changed: int) -> tuple[Path, Path]:
    repo = tmp / "repo"
    repo.mkdir()
    sh(repo, "init", "-q", "-b", "main")
    for i in range(n):
        d = repo / f"d{i % 100:02d}"
        d.mkdir(exist_ok=True)
        (d / f"f{i}.txt").write_text("".join(f"line {j} of file {i}\n" for j in range(20)))
    sh(repo, "add", "-A")
    sh(repo, "commit", "-qm", "init")
    wt = tmp / "wt"
    sh(repo, "worktree", "add", "-q", "-b", "task", str(wt), "main")
    files = sorted(wt.glob("d*/f*.txt"))[:changed]
    committed, untracked = changed // 10, changed // 10
    for f in files[:committed]:
        f.write_text(f.read_text() + "committed on the branch\n")
    sh(wt, "commit", "-qam", "part one")
    for f in files[committed:changed - untracked]:
        f.write_text(f.read_text().replace("line 3 ", "line three ") + "edited\n")
    for i in range(untracked):
        (wt / f"new{i % 10}").mkdir(exist_ok=True)
        (wt / f"new{i % 10}" / f"n{i}.txt").write_text("new file\nsecond line\n")
    sh(wt, "update-index", "-q", "--refresh")  # refresh the index's stat cache once, as any git use would
    return repo, wt


def median_time(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=10000)
    ap.add_argument("--changed", type=int, default=5000)
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="planeai-bench-diff-"))
    try:
        repo, wt = build(tmp, a.files, min(a.changed, a.files))
        base = sh(wt, "merge-base", "HEAD", "main").strip()
        anchor = median_time(lambda: subprocess.run(
            ["git", "diff", "--stat", base], cwd=wt, env=ENV, check=True,
            capture_output=True), a.runs)
        d = worktree_diff(wt, "main")
        ours = median_time(lambda: worktree_diff(wt, "main"), a.runs)
        with_patch = median_time(lambda: worktree_diff(wt, "main").patch(), a.runs)
        print(f"{a.files} files, {len(d.files)} changed (+{d.added} -{d.deleted}), "
              f"median of {a.runs} runs")
        print(f"  anchor  git diff --stat <base>      {anchor * 1000:8.1f} ms")
        print(f"  planeai worktree_diff()             {ours * 1000:8.1f} ms")
        print(f"  planeai worktree_diff() + patch     {with_patch * 1000:8.1f} ms")
        print(f"  ratio planeai/anchor: {ours / anchor:.2f}x (target <= 1.5x)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
