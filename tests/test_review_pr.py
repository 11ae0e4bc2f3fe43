"""planeai pr: push to a (local, bare) remote; without gh a clear line; with a stand-in gh on
PATH the pull request is opened from the task and its URL kept on the task."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
from support.review import git, make_project

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="tmux sessions")


def _path_without_gh() -> str:
    return os.pathsep.join(d for d in os.environ["PATH"].split(os.pathsep)
                           if d and not (Path(d) / "gh").exists())


@pytest.fixture
def proj(tmux_cli_env, planeai_home, repo, tmp_path):
    p = make_project(repo, tmux_cli_env, planeai_home)
    p.env["PATH"] = _path_without_gh()
    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    git(repo, "remote", "add", "origin", str(bare))
    git(repo, "push", "-q", "origin", "main")
    key = p.task("ship it", "Why: users asked.")
    wt = p.start(key)
    (wt / "feature.txt").write_text("feature\n")
    yield p, key, wt, bare
    p.cli("session", "stop", key)


def test_push_to_a_bare_remote_without_gh_says_what_is_missing(proj):
    p, key, wt, bare = proj
    r = p.cli("pr", key)
    assert r.returncode == 1 and "uncommitted changes" in r.stderr
    out = p.ok("pr", key, "--commit")
    branch = git(wt, "rev-parse", "--abbrev-ref", "HEAD")
    assert f"pushed {branch} to origin" in out
    assert "gh (the GitHub CLI) is not installed, so no pull request was opened" in out
    assert git(bare, "rev-parse", branch) == git(wt, "rev-parse", "HEAD")
    assert git(bare, "show", f"{branch}:feature.txt") == "feature"
    assert json.loads(p.ok("task", "show", key, "--json"))["pr_url"] is None


def test_without_gh_a_known_host_gets_its_compare_url(proj):
    p, key, wt, bare = proj
    # a second remote named like a GitHub one, but pushing to the local bare repo
    git(p.repo, "remote", "add", "gh-like", "git@github.com:acme/widgets.git")
    git(p.repo, "config", "remote.gh-like.pushurl", str(bare))
    out = p.ok("pr", key, "--commit", "--remote", "gh-like")
    branch = git(wt, "rev-parse", "--abbrev-ref", "HEAD")
    assert f"https://github.com/acme/widgets/compare/main...{branch}?expand=1" in out


def test_stand_in_gh_opens_the_pr_with_the_task_title_and_body(proj, tmp_path):
    p, key, wt, bare = proj
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "gh-argv.json"
    gh = bindir / "gh"
    gh.write_text(f"#!{sys.executable}\nimport json, sys\n"
                  f"json.dump(sys.argv[1:], open({str(log)!r}, 'w'))\n"
                  "print('Creating pull request...')\n"
                  "print('https://github.com/acme/widgets/pull/7')\n")
    gh.chmod(0o755)
    p.env["PATH"] = f"{bindir}{os.pathsep}{p.env['PATH']}"
    p.ok("commit", key)
    out = p.ok("pr", key)
    assert "pull request: https://github.com/acme/widgets/pull/7" in out
    argv = json.loads(log.read_text())
    branch = git(wt, "rev-parse", "--abbrev-ref", "HEAD")
    assert argv[:2] == ["pr", "create"]
    opts = dict(zip(argv[2::2], argv[3::2]))
    assert opts["--title"] == f"{key}: ship it" and opts["--head"] == branch
    assert opts["--base"] == "main"
    assert "Why: users asked." in opts["--body"] and key in opts["--body"]
    shown = json.loads(p.ok("task", "show", key, "--json"))
    assert shown["pr_url"] == "https://github.com/acme/widgets/pull/7"
    assert shown["status"] == "in_review"
    assert "pull request: https://github.com/acme/widgets/pull/7" in p.ok("task", "show", key)
    assert shutil.which("gh", path=_path_without_gh()) is None
