"""planeai gc: a dry run lists exactly what `gc --yes` removes, with sizes; nothing with
unsaved work goes."""

from __future__ import annotations

import json
import sys

import pytest
from support.review import git, make_project

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="tmux sessions")


def test_gc_dry_run_lists_exactly_what_gc_removes(tmux_cli_env, planeai_home, repo):
    p = make_project(repo, tmux_cli_env, planeai_home)
    try:
        _scenario(p)
    finally:
        for s in p.sessions():
            p.cli("session", "stop", s["name"])


def _scenario(p):
    retried, archived, unsaved, deleted, unmerged = (p.task(t) for t in (
        "retried", "archived", "unsaved", "session deleted", "unmerged"))
    # a retry: the first session's worktree is a leftover once a newer session exists
    old_wt = p.start(retried)
    (old_wt / "build.log").write_text("x" * 50_000)
    git(old_wt, "add", "build.log")
    git(old_wt, "commit", "-qm", "log")
    git(old_wt, "reset", "-q", "--hard", "main")  # the retry started over: nothing unsaved
    (old_wt / "big.bin").write_bytes(b"\0" * 60_000)
    git(old_wt, "add", "big.bin")
    git(old_wt, "commit", "-qm", "big")  # ... except this commit, only on this branch
    p.ok("session", "stop", retried)
    new_wt = p.start(retried)
    assert new_wt != old_wt
    # an older retry with nothing in it: a leftover that goes
    p.ok("session", "stop", [s for s in p.sessions() if s["task"] == retried][-1]["name"])
    newest_wt = p.start(retried)
    assert newest_wt not in (old_wt, new_wt)
    # an archived session, clean: stale
    stale_wt = p.start(archived)
    p.ok("session", "archive", archived)
    # an archived session with an untracked file: unsaved work, kept
    kept_wt = p.start(unsaved)
    (kept_wt / "draft.txt").write_text("not saved anywhere\n")
    p.ok("session", "archive", unsaved)
    # a worktree planeai made that no session knows any more
    stray = stale_wt.parent / "stray"
    git(p.repo, "worktree", "add", "-q", "-b", "planeai/PLA-99-stray", str(stray))
    # branches of done tasks without a worktree: merged goes, unmerged stays
    p.start(deleted)
    p.ok("session", "delete", deleted)
    p.ok("task", "move", deleted, "done")
    wt5 = p.start(unmerged)
    (wt5 / "u.txt").write_text("u\n")
    p.ok("commit", unmerged)
    p.ok("session", "stop", unmerged)
    b5 = git(wt5, "rev-parse", "--abbrev-ref", "HEAD")
    p.ok("session", "delete", unmerged, "--force")
    p.ok("task", "move", unmerged, "done")

    text = p.ok("gc", "--dry-run")
    planned = json.loads(p.ok("gc", "--dry-run", "--json"))
    going = {(i["kind"], i["what"]) for i in planned if not i["keep"]}
    kept = {(i["kind"], i["what"]): i["keep"] for i in planned if i["keep"]}
    branch_deleted = git(p.repo, "branch", "--list", "planeai/PLA-4-*").strip(" *+")
    assert going == {("worktree", str(stale_wt)), ("worktree", str(stray)),
                     ("worktree", str(new_wt)),
                     ("branch", "planeai/PLA-99-stray"), ("branch", branch_deleted)}
    assert kept.keys() == {("worktree", str(old_wt)), ("worktree", str(kept_wt)),
                           ("branch", b5)}
    # the first retry has a commit only its branch holds: unsaved, kept
    assert "unpushed" in kept[("worktree", str(old_wt))]
    assert "untracked" in kept[("worktree", str(kept_wt))]
    assert "not in main" in kept[("branch", b5)]
    sizes = {i["what"]: i["size"] for i in planned}
    assert sizes[str(stale_wt)] > 0 and sizes[str(old_wt)] > 60_000
    assert str(stray) in text and "stale: no session" in text and "KiB" in text
    assert "retry leftover" in text
    assert f"kept {kept_wt}: unsaved work" in text

    r = p.cli("gc")  # not a tty and no --yes: refused, nothing removed
    assert r.returncode == 1 and "--yes" in r.stderr and stray.exists()
    removed = json.loads(p.ok("gc", "--yes", "--json"))
    assert {(i["kind"], i["what"]) for i in removed} == going
    assert not stale_wt.exists() and not stray.exists()
    assert kept_wt.exists() and (kept_wt / "draft.txt").exists() and old_wt.exists()
    assert not new_wt.exists() and newest_wt.exists()
    assert git(p.repo, "branch", "--list", "planeai/PLA-99-stray") == ""
    assert git(p.repo, "branch", "--list", b5).strip(" *+") == b5
    assert "nothing to remove" in p.ok("gc", "--dry-run")
