"""Work builds on work: a task blocked by done-but-unmerged tasks starts with their change in
its worktree; a subtask starts from its parent's branch; a conflict holds the task with the
files named. Real git repos, real sessions (local backend)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from conftest import install_echo_agent
from planeai import config as config_mod
from planeai.core.models import Status
from planeai.errors import WorktreeError
from planeai.paths import locations
from planeai.services import tasks as task_svc
from planeai.services.context import open_store
from planeai.services.dispatch import Dispatcher
from planeai.services.projects import add_project
from planeai.services.sessions import SessionManager


def git(cwd, *args) -> str:
    return subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture
def m(repo, tmp_path, planeai_home):
    locs = locations()
    cfg = config_mod.load(user_file=None, env={})
    cfg.data["defaults"]["provider"] = "shell"
    mgr = SessionManager(open_store(locs), cfg, locs,
                         env={**os.environ, "HOME": str(tmp_path), "SHELL": "/bin/sh"})
    add_project(mgr.store, repo)
    yield mgr
    for s in mgr.store.list_sessions():
        mgr.stop(s.id)
    mgr.close()


def work(m, key: str, files: dict[str, str]) -> Path:
    """A session of ``key`` whose "agent" committed ``files`` on its branch; the task done."""
    s = m.start(task_key=key, agent="shell", backend="local")
    wt = Path(s.worktree)
    for name, text in files.items():
        (wt / name).write_text(text)
    git(wt, "add", "-A")
    git(wt, "commit", "-qm", f"{key}: work")
    m.stop(s.id)
    m.store.set_status(key, Status.DONE)
    return wt


def add(m, title, **kw) -> str:
    return task_svc.add_task(m.store, m.store.list_projects()[0], title, **kw).key


def test_a_task_starts_from_its_done_blockers_work(m, repo):
    one, two = add(m, "one"), add(m, "two")
    three = add(m, "three", blocked_by=[one, two])
    work(m, one, {"a.txt": "from one\n"})
    work(m, two, {"b.txt": "from two\n"})
    main_before = git(repo, "rev-parse", "main")
    s = m.start(task_key=three, agent="shell", backend="local")
    wt = Path(s.worktree)
    assert (wt / "a.txt").read_text() == "from one\n" and (wt / "b.txt").read_text() == "from two\n"
    log = git(wt, "log", "--format=%s", "main..HEAD")
    assert f"{three}: start from {one}" in log and f"{three}: start from {two}" in log
    assert git(repo, "rev-parse", "main") == main_before  # the base is untouched
    assert git(wt, "status", "--porcelain") == ""


def test_a_subtask_starts_from_its_parents_branch(m):
    parent = add(m, "parent")
    s = m.start(task_key=parent, agent="shell", backend="local")
    pwt = Path(s.worktree)
    (pwt / "p.txt").write_text("parent work\n")
    git(pwt, "add", "-A")
    git(pwt, "commit", "-qm", "parent work")
    child = add(m, "child", parent=parent)
    c = m.start(task_key=child, agent="shell", backend="local")
    assert (Path(c.worktree) / "p.txt").read_text() == "parent work\n"
    m.config.data["worktrees"]["subtasks_from_parent"] = False
    other = add(m, "other child", parent=parent)
    o = m.start(task_key=other, agent="shell", backend="local")
    assert not (Path(o.worktree) / "p.txt").exists()


def test_a_conflict_in_the_start_point_holds_the_task_with_the_files(m, repo, planeai_home):
    one, two = add(m, "one"), add(m, "two")
    three = add(m, "three", blocked_by=[one, two])
    work(m, one, {"README.md": "one's version\n"})
    work(m, two, {"README.md": "two's version\n"})
    with pytest.raises(WorktreeError, match=r"conflicts in README\.md"):
        m.start(task_key=three, agent="shell", backend="local")
    assert not (Path(m._worktrees_root()) / repo.name / three).exists()  # nothing left
    assert m.store.get_task(three).status is Status.TODO
    # dispatched: held at once with the reason, no agent started
    install_echo_agent(planeai_home / "config" / "providers")
    m.forget_registries()
    m.config.data["defaults"]["provider"] = "echoer"
    d = Dispatcher(m)
    d.tick()
    t = m.store.get_task(three)
    assert t.held and "README.md" in t.last_failure and "merge" in t.last_failure
    assert m.store.sessions_for_task(three) == []
