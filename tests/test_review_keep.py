"""planeai keep (one of several agents' work delivered, the others' kept in recovery refs) and
delivering a task that stands on unmerged work (merge --stack)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from support.review import git, make_project

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="tmux sessions")


@pytest.fixture
def proj(tmux_cli_env, planeai_home, repo):
    p = make_project(repo, tmux_cli_env, planeai_home)
    yield p
    for s in p.sessions():
        p.cli("session", "stop", s["name"])


def agent_commits(wt: Path, name: str, text: str) -> None:
    (wt / name).write_text(text)
    git(wt, "add", "-A")
    git(wt, "commit", "-qm", f"add {name}")


def test_keep_one_agents_work_and_the_others_stays_recoverable(proj):
    p = proj
    key = p.task("compare two agents")
    out = json.loads(p.ok("run", "write it @echoer @echoer", "--task", key, "--json"))
    names = sorted(s["name"] for s in out["sessions"])
    assert names == [key, f"{key}-2"]
    wts = {s["name"]: Path(s["worktree"]) for s in out["sessions"]}
    agent_commits(wts[key], "a.txt", "first agent\n")
    agent_commits(wts[f"{key}-2"], "b.txt", "second agent\n")
    r = p.cli("keep", f"{key}-2")
    assert r.returncode == 0, r.stderr
    assert git(p.repo, "show", "main:b.txt") == "second agent"
    assert "a.txt" not in git(p.repo, "ls-tree", "--name-only", "main")
    line = next(x for x in r.stdout.splitlines() if x.startswith(f"discarded {key}:"))
    ref = line.split("kept in ", 1)[1].strip()
    assert git(p.repo, "show", f"{ref}:a.txt") == "first agent"  # recoverable
    assert not wts[key].exists() and not wts[f"{key}-2"].exists()
    task = json.loads(p.ok("task", "show", key, "--json"))
    assert task["status"] == "done"


def test_a_stacked_task_delivers_what_it_stands_on_or_says_what_must_land_first(proj):
    p = proj
    below = p.task("the base work")
    above = p.task("built on it")
    p.ok("task", "block", above, "--by", below)
    agent_commits(p.start(below), "below.txt", "below\n")
    p.ok("task", "done", below)
    p.cli("session", "stop", below)
    wt = p.start(above)
    assert (wt / "below.txt").read_text() == "below\n"  # it started from that work
    agent_commits(wt, "above.txt", "above\n")
    main_before = git(p.repo, "rev-parse", "main")
    r = p.cli("merge", above)
    assert r.returncode == 1 and below in r.stderr and "--stack" in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1 and git(p.repo, "rev-parse", "main") == main_before
    r = p.cli("merge", above, "--stack")
    assert r.returncode == 0, r.stderr
    tree = git(p.repo, "ls-tree", "--name-only", "main").split()
    assert "below.txt" in tree and "above.txt" in tree
    for key in (below, above):
        assert json.loads(p.ok("task", "show", key, "--json"))["status"] == "done"
