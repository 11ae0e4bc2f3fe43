"""planeai diff and planeai check on a real agent session's worktree."""

from __future__ import annotations

import json
import sys

import pytest
from support.review import git, make_project

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="tmux sessions")


@pytest.fixture
def proj(tmux_cli_env, planeai_home, repo):
    checks = (f'[review]\nchecks = ["{sys.executable} -c \\"import pathlib,sys; '
              f'sys.exit(0 if pathlib.Path(\'notes.txt\').exists() else 3)\\"", '
              '"git diff --quiet HEAD"]\n')
    p = make_project(repo, tmux_cli_env, planeai_home, checks)
    key = p.task("write notes")
    wt = p.start(key)
    yield p, key, wt
    p.cli("session", "stop", key)


def test_diff_shows_committed_uncommitted_and_untracked_work(proj):
    p, key, wt = proj
    assert p.ok("diff", key).startswith("no changes against main")
    # the agent's work: a commit, an edit on top, and a new file nobody added
    (wt / "lib.py").write_text("x = 1\n")
    git(wt, "add", "lib.py")
    git(wt, "commit", "-qm", "lib")
    (wt / "README.md").write_text("hello\nworld\n")
    (wt / "notes.txt").write_text("one\ntwo\nthree\n")
    index_before = git(wt, "ls-files", "--stage")

    stat = p.ok("diff", key, "--stat")
    assert " A lib.py" in stat and " M README.md" in stat and " A notes.txt" in stat
    assert "+3 -0" in stat and "3 files changed against main" in stat and "+5 -0" in stat
    assert "\x1b[" not in stat  # no colour into a pipe

    full = p.ok("diff", key)
    assert "+++ b/notes.txt" in full and "+three" in full and "+world" in full

    (wt / "data.bin").write_bytes(b"\x00\x01\x02\n")
    (wt / "no-newline.txt").write_text("a\nb")
    data = json.loads(p.ok("diff", key, "--json"))
    files = {f["path"]: (f["status"], f["added"], f["deleted"], f["binary"])
             for f in data["files"]}
    assert files == {"lib.py": ("A", 1, 0, False), "README.md": ("M", 1, 0, False),
                     "notes.txt": ("A", 3, 0, False), "data.bin": ("A", 0, 0, True),
                     "no-newline.txt": ("A", 2, 0, False)}
    assert "Binary files /dev/null and b/data.bin differ" in data["patch"]
    assert "+b\n\\ No newline at end of file" in data["patch"]
    assert data["base"] == git(p.repo, "rev-parse", "main") and "+three" in data["patch"]
    # the worktree's own index is untouched: notes.txt is still untracked
    assert git(wt, "ls-files", "--stage") == index_before
    assert "?? notes.txt" in git(wt, "status", "--porcelain")


def test_check_records_pass_and_fail(proj):
    p, key, wt = proj
    r = p.cli("check", key)
    assert r.returncode == 1 and "FAIL (exit 3)" in r.stdout and "checks failed" in r.stdout
    (wt / "notes.txt").write_text("done\n")
    r = p.cli("check", key, "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    run = json.loads(r.stdout)
    assert run["passed"] and [x["exit_code"] for x in run["results"]] == [0, 0]
    events = json.loads(p.ok("events", "--task", key, "--json"))
    checked = [e["data"]["passed"] for e in events if e["kind"] == "review.checked"]
    assert checked == [False, True]
    # what the app reads back: the last result and the session's +/- for the sidebar
    from planeai.services import review
    from planeai.services.context import AppContext

    with AppContext.load() as ctx:
        last = review.last_check(ctx.store, key)
        assert last["passed"] and last["session"] == key
        s = ctx.store.sessions_for_task(key)[-1]
        assert review.session_summary(ctx.store, s) == "+1 -0"


@pytest.mark.parametrize("url, expected", [
    ("git@github.com:acme/w.git", "https://github.com/acme/w/compare/main...planeai/X-1?expand=1"),
    ("https://github.com/acme/w", "https://github.com/acme/w/compare/main...planeai/X-1?expand=1"),
    ("ssh://git@gitlab.com/g/sub/w.git", "https://gitlab.com/g/sub/w/-/merge_requests/new?"
     "merge_request%5Bsource_branch%5D=planeai/X-1&merge_request%5Btarget_branch%5D=main"),
    ("https://bitbucket.org/t/w.git",
     "https://bitbucket.org/t/w/pull-requests/new?source=planeai/X-1&dest=main"),
    ("/srv/git/w.git", None),
    ("https://git.example.com/w.git", None),
])
def test_compare_url_of_known_hosts(url, expected):
    from planeai.git.review.push import compare_url

    assert compare_url(url, "main", "planeai/X-1") == expected


def test_check_without_config_says_what_to_set(tmux_cli_env, planeai_home, repo):
    p = make_project(repo, tmux_cli_env, planeai_home)
    key = p.task("x")
    p.start(key)
    try:
        r = p.cli("check", key)
        assert r.returncode == 1 and "no checks configured" in r.stderr
        assert "Traceback" not in r.stderr
    finally:
        p.cli("session", "stop", key)


def test_a_repos_checks_wait_for_trust(tmp_path, repo):
    from planeai import config
    from planeai.services import trust

    (repo / ".planeai").mkdir()
    (repo / ".planeai" / "config.toml").write_text(
        '[review]\nchecks = ["touch pwned"]\nmerge = "squash"\n')
    said = []
    old = trust.set_notice_sink(said.append)
    try:
        cfg = config.load(user_file=None, project_dir=repo)
        assert cfg.review.checks == () and cfg.review.merge == "squash"
        assert said and "checks" in said[0]
        trust.trust(trust.read_content(repo))
        cfg = config.load(user_file=None, project_dir=repo)
        assert cfg.review.checks == ("touch pwned",)
    finally:
        trust.set_notice_sink(old)


def test_unknown_task_and_no_session_are_one_line(run_cli, repo):
    assert run_cli("project", "add", str(repo))[0] == 0
    code, _, err = run_cli("diff", "PLA-9", cwd=repo)
    assert code == 1 and err.count("\n") == 1 and "PLA-9" in err
    assert run_cli("task", "add", "t", cwd=repo)[0] == 0
    code, _, err = run_cli("diff", "PLA-1", cwd=repo)
    assert code == 1 and "no session" in err and "planeai session start PLA-1" in err
