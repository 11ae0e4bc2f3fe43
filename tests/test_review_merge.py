"""planeai commit and planeai merge (merge, squash, rebase) on real agent worktrees, a
conflict that changes nothing, planeai keep (one of several agents' work delivered, the others'
kept in recovery refs) and delivering a task that stands on unmerged work (merge --stack)."""

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


@pytest.mark.parametrize("how", ["merge", "squash", "rebase"])
def test_work_is_committed_merged_and_cleaned_up(proj, how):
    p = proj
    key = p.task("add notes", "Notes for the team.")
    wt = p.start(key)
    branch = git(wt, "rev-parse", "--abbrev-ref", "HEAD")
    # main moves on meanwhile (another file), so every way has something to combine
    (p.repo / "other.txt").write_text("other\n")
    git(p.repo, "add", "other.txt")
    git(p.repo, "commit", "-qm", "other")
    (wt / "notes.txt").write_text("agent's notes\n")  # the agent's work, untracked

    r = p.cli("merge", key)
    assert r.returncode == 1 and "uncommitted changes" in r.stderr and "--commit" in r.stderr

    out = p.ok("commit", key)
    assert out.startswith("committed ")
    assert git(wt, "log", "-1", "--format=%B") == f"{key}: add notes\n\nNotes for the team."
    assert git(wt, "log", "-1", "--format=%an") == "planeai test"  # the user's identity
    r = p.cli("commit", key)
    assert r.returncode == 1 and "nothing to commit" in r.stderr

    out = p.ok("merge", key, *([f"--{how}"] if how != "merge" else []))
    assert f"merged {branch} into main ({how})" in out and "in the checkout" in out
    assert (p.repo / "notes.txt").read_text() == "agent's notes\n"  # main's files followed
    assert git(p.repo, "status", "--porcelain") == ""
    assert "notes.txt" in git(p.repo, "show", "--stat", "--format=", "main")
    parents = git(p.repo, "log", "-1", "--format=%p", "main").split()
    assert len(parents) == (2 if how == "merge" else 1)
    if how == "squash":
        assert git(p.repo, "log", "-1", "--format=%s", "main") == f"{key}: add notes"
        assert "kept in refs/planeai/recovery/" in out
    # cleanup: worktree gone, branch gone, task done, session archived
    assert not wt.exists()
    assert git(p.repo, "branch", "--list", branch) == ""
    assert json.loads(p.ok("task", "show", key, "--json"))["status"] == "done"
    assert [s["state"] for s in p.sessions() if s["task"] == key] == ["archived"]


def test_merge_into_a_branch_nobody_has_checked_out_moves_only_the_ref(proj):
    p = proj
    git(p.repo, "checkout", "-qb", "elsewhere")
    key = p.task("x")
    wt = p.start(key)
    (wt / "x.txt").write_text("x\n")
    out = p.ok("merge", key, "--commit")
    assert "committed" in out and "by update-ref" in out
    assert git(p.repo, "show", "main:x.txt") == "x"
    assert not (p.repo / "x.txt").exists()  # the user's checkout on `elsewhere` untouched
    assert git(p.repo, "rev-parse", "--abbrev-ref", "HEAD") == "elsewhere"


def test_a_dirty_main_checkout_is_refused_and_left_alone(proj):
    p = proj
    key = p.task("x")
    wt = p.start(key)
    (wt / "x.txt").write_text("x\n")
    p.ok("commit", key)
    (p.repo / "README.md").write_text("my own edit\n")
    main_before = git(p.repo, "rev-parse", "main")
    r = p.cli("merge", key)
    assert r.returncode == 1 and "uncommitted changes" in r.stderr and "README.md" in r.stderr
    assert git(p.repo, "rev-parse", "main") == main_before
    assert (p.repo / "README.md").read_text() == "my own edit\n" and wt.exists()


@pytest.mark.parametrize("how", ["merge", "squash", "rebase"])
def test_a_conflict_names_the_file_and_changes_nothing(proj, how):
    p = proj
    first, second = p.task("first"), p.task("second")
    wt1, wt2 = p.start(first), p.start(second)
    for wt, text in ((wt1, "hello from first\n"), (wt2, "hello from second\n")):
        (wt / "README.md").write_text(text)
    p.ok("commit", first)
    p.ok("commit", second)
    p.ok("merge", first)
    branch = git(wt2, "rev-parse", "--abbrev-ref", "HEAD")
    before = (git(p.repo, "rev-parse", "main"), git(p.repo, "rev-parse", branch))
    r = p.cli("merge", second, *([f"--{how}"] if how != "merge" else []))
    assert r.returncode == 1, r.stdout
    assert "conflicts in: README.md" in r.stderr and "nothing was changed" in r.stderr
    after = (git(p.repo, "rev-parse", "main"), git(p.repo, "rev-parse", branch))
    assert after == before
    assert before[0][:12] in r.stderr and before[1][:12] in r.stderr
    # both checkouts as they were; no temporary worktree left behind
    assert git(p.repo, "status", "--porcelain") == "" and git(wt2, "status", "--porcelain") == ""
    assert (wt2 / "README.md").read_text() == "hello from second\n"
    assert len(git(p.repo, "worktree", "list").splitlines()) == 2
    assert json.loads(p.ok("task", "show", second, "--json"))["status"] != "done"


def test_a_conflict_after_commit_first_leaves_the_branch_and_the_work_as_they_were(proj):
    """`merge --commit` commits first; when the merge then conflicts, that commit is taken
    back: the branch at its old hash, the changes uncommitted in the worktree again."""
    p = proj
    first, second = p.task("first"), p.task("second")
    wt1, wt2 = p.start(first), p.start(second)
    (wt1 / "README.md").write_text("hello from first\n")
    p.ok("merge", first, "--commit")
    (wt2 / "README.md").write_text("hello from second\n")
    (wt2 / "new.txt").write_text("untracked work\n")
    branch = git(wt2, "rev-parse", "--abbrev-ref", "HEAD")
    before = (git(p.repo, "rev-parse", "main"), git(p.repo, "rev-parse", branch),
              git(wt2, "status", "--porcelain"))
    r = p.cli("merge", second, "--commit")
    assert r.returncode == 1 and "conflicts in: README.md" in r.stderr, r.stdout + r.stderr
    after = (git(p.repo, "rev-parse", "main"), git(p.repo, "rev-parse", branch),
             git(wt2, "status", "--porcelain"))
    assert after == before
    assert (wt2 / "new.txt").read_text() == "untracked work\n"


def test_task_text_reaches_git_as_text_only(proj, tmp_path):
    p = proj
    title = "fix $(touch pwned) `touch pwned2`; touch pwned3 #"
    key = p.task(title, "body with $HOME and \\n and 'quotes'")
    wt = p.start(key)
    (wt / "f.txt").write_text("f\n")
    p.ok("merge", key, "--commit", "--squash")
    msg = git(p.repo, "log", "-1", "--format=%B", "main")
    assert msg == f"{key}: {title}\n\nbody with $HOME and \\n and 'quotes'"
    for d in (p.repo, wt.parent, tmp_path):
        assert not list(d.glob("pwned*"))


# ---- keep one of several agents' work; deliver a stacked task
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
