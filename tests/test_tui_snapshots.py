"""Pictures of the app (pytest-textual-snapshot): update with `pytest --snapshot-update`
after looking at the report. Real store and repo; the live-session picture uses the
in-memory backend so a shell's timing and prompt cannot make it flaky."""

from __future__ import annotations

import pytest

from conftest import make_repo
from planeai.services import tasks
from test_tui_helpers import (FakeBackend, Services, empty_services, make_app,  # noqa: F401
                              shell_env, wait_for)

pytestmark = pytest.mark.timeout(120)

SIZE = (120, 32)


def waiting_for_data(app, then=None):
    async def run_before(pilot):
        await wait_for(pilot, lambda: app.loads > 0, what="data")
        if then is not None:
            await then(pilot)
        await pilot.pause()

    return run_before


@pytest.fixture
def board(planeai_home, tmp_path, shell_env):
    svc = Services(planeai_home, make_repo(tmp_path / "demo"),
                   backends={"local": FakeBackend()})
    a = svc.task("Set up CI", priority=3)
    b = svc.task("Write the docs", blocked_by=[a.key])
    c = svc.task("API reference", parent=b.key)
    svc.task("Examples for every endpoint", parent=c.key)
    d = svc.task("Fix flaky test", priority=-1)
    e = svc.task("Release notes")
    f = svc.task("Old cleanup")
    tasks.move(svc.store, d.key, "in_progress")
    tasks.move(svc.store, e.key, "in_review")
    tasks.move(svc.store, f.key, "done")
    yield svc
    svc.close()


def test_snapshot_empty(empty_services, snap_compare):
    app = make_app(empty_services, observe=False)
    assert snap_compare(app, terminal_size=SIZE, run_before=waiting_for_data(app))


def test_snapshot_tasks_in_all_statuses_with_subtasks(board, snap_compare):
    app = make_app(board, observe=False)

    async def then(pilot):
        app.sidebar.select_id("g:1:done")
        await pilot.press("space")       # unfold done
        app.sidebar.select_id("t:DEM-2")

    assert snap_compare(app, terminal_size=SIZE, run_before=waiting_for_data(app, then))


def test_snapshot_live_session(board, snap_compare):
    fake: FakeBackend = board.manager.backend("local")  # type: ignore[assignment]
    s = board.store.add_session(id="feedf00d", name="DEM-4", project=board.project,
                                task_key="DEM-4", provider="shell", variant=None,
                                backend="local", worktree=None, branch="planeai/DEM-4-fix",
                                autonomous=False, argv=["sh"])
    board.store.update_session(s.id, state="running", agent_status="busy")
    fake.add("DEM-4", b"$ pytest -q tests/test_flaky.py\r\n"
                      b"\x1b[32m....\x1b[31mF\x1b[32m.....\x1b[0m\r\n"
                      b"\x1b[1;31mFAILED\x1b[0m tests/test_flaky.py::test_race - "
                      b"\x1b[33mAssertionError\x1b[0m\r\n"
                      b"\x1b[7m 1 failed, 9 passed in 0.42s \x1b[0m\r\n$ ")
    app = make_app(board, observe=False)

    async def then(pilot):
        app.sidebar.select_id("t:DEM-4")
        await pilot.press("tab")         # focus the terminal: the cursor shows
        await wait_for(pilot, lambda: app.focused is app.term, what="terminal focus")

    assert snap_compare(app, terminal_size=SIZE, run_before=waiting_for_data(app, then))


def test_snapshot_new_task_form(board, snap_compare):
    app = make_app(board, observe=False)

    async def then(pilot):
        app.sidebar.select_id("t:DEM-1")
        await pilot.press("n")
        await pilot.press(*"Add")

    assert snap_compare(app, terminal_size=SIZE, run_before=waiting_for_data(app, then))


def test_snapshot_help(board, snap_compare):
    app = make_app(board, observe=False)

    async def then(pilot):
        app.sidebar.select_id("t:DEM-1")
        await pilot.press("question_mark")

    assert snap_compare(app, terminal_size=(120, 40), run_before=waiting_for_data(app, then))


def test_snapshot_diff_view(planeai_home, tmp_path, shell_env, monkeypatch, snap_compare):
    """The diff view of a session's worktree: a modified, a committed and an untracked file
    (fixed commit dates, so the base's hash in the title is the same on every run)."""
    import subprocess
    from pathlib import Path

    for var in ("GIT_AUTHOR_DATE", "GIT_COMMITTER_DATE"):
        monkeypatch.setenv(var, "2026-01-01T00:00:00+00:00")
    svc = Services(planeai_home, make_repo(tmp_path / "demo"),
                   backends={"local": FakeBackend()})
    try:
        t = svc.task("Teach the parser numbers")
        s = svc.manager.start(task_key=t.key, agent="shell", backend="local")
        wt = Path(s.worktree)
        (wt / "parser.py").write_text("def parse(text):\n    return int(text)\n")
        subprocess.run(["git", "-C", str(wt), "add", "parser.py"], check=True)
        subprocess.run(["git", "-C", str(wt), "commit", "-qm", "parser"], check=True)
        (wt / "README.md").write_text("hello\nnumbers are parsed\n")
        (wt / "NOTES.txt").write_text("todo: floats\n")
        app = make_app(svc, observe=False)

        async def then(pilot):
            from planeai.tui.diff_view import DiffScreen

            app.sidebar.select_id(f"t:{t.key}")
            await pilot.press("D")
            await wait_for(pilot, lambda: isinstance(app.screen, DiffScreen)
                           and app.screen.loads > 0, what="the diff view")

        assert snap_compare(app, terminal_size=SIZE, run_before=waiting_for_data(app, then))
    finally:
        svc.close()


# the smallest terminal the app is made for and a big one (issue 17): the main screen with
# a live agent, the start dialog and the help, each at both sizes
@pytest.mark.parametrize("size", [(80, 24), (200, 50)], ids=["80x24", "200x50"])
@pytest.mark.parametrize("what", ["main", "start_dialog", "help"])
def test_snapshot_sizes(board, snap_compare, size, what):
    fake: FakeBackend = board.manager.backend("local")  # type: ignore[assignment]
    s = board.store.add_session(id="feedf00d", name="DEM-4", project=board.project,
                                task_key="DEM-4", provider="shell", variant=None,
                                backend="local", worktree=None, branch="planeai/DEM-4-fix",
                                autonomous=False, argv=["sh"])
    board.store.update_session(s.id, state="running", agent_status="needs_input")
    fake.add("DEM-4", b"Allow edit to tests/test_flaky.py?\r\n> 1. Yes\r\n  2. No\r\n")
    app = make_app(board, observe=False)
    # what this machine has installed must not change the picture
    app.agent_choices = lambda project: ([
        ("shell", "Shell", True), ("claude", "Claude Code", True),
        ("claude-opus", "Claude Opus: strongest, slowest", True),
        ("codex", "Codex CLI", False)], "claude")
    board.manager.backend_choices = lambda: [
        ("local", "inside this planeai process; ends with it"),
        ("tmux", "in tmux; outlives planeai, attach from any terminal"),
        ("daemon", "in planeai's background daemon")]

    async def then(pilot):
        app.sidebar.select_id("t:DEM-4")
        await pilot.pause()
        if what == "start_dialog":
            from planeai.tui.start_dialog import StartDialog

            app.sidebar.select_id("t:DEM-2")
            await pilot.press("s")
            await wait_for(pilot, lambda: isinstance(app.screen, StartDialog), what="dialog")
        elif what == "help":
            await pilot.press("question_mark")

    assert snap_compare(app, terminal_size=size, run_before=waiting_for_data(app, then))
