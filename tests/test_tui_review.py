"""Review and delivery in the app: the sidebar's +/-, the diff view (D) with commit, checks
and merge, the compare view (C) of a task run by several agents and keeping one (W). Real
store, real git repo, real shell sessions in their own worktrees (local backend)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conftest import GIT_ENV
from test_tui_helpers import (anyio_backend, make_app, row_ids, row_text,  # noqa: F401
                              services, shell_env, wait_for)

pytestmark = [pytest.mark.timeout(120), pytest.mark.anyio]

SIZE = (140, 36)


def git(repo, *args: str) -> str:
    import os

    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True, env={**os.environ, **GIT_ENV}).stdout.strip()


def shell_session(services, key: str):
    """A real shell session of task ``key`` in its own worktree (started before the app)."""
    s = services.manager.start(task_key=key, agent="shell", backend="local", allow_more=True)
    assert s.worktree and Path(s.worktree).is_dir()
    return s


def drawn(app, row_id: str) -> str:
    """The sidebar row as drawn on screen (the +/- is right-aligned, outside its segments)."""
    sb = app.sidebar
    index = row_ids(app).index(row_id)
    return sb.render_line(index - sb.scroll_offset.y).text


def notes(app) -> str:
    return "\n".join(str(n.message) for n in app._notifications)


async def loaded(pilot, app):
    await wait_for(pilot, lambda: app.loads > 0, what="first data load")


async def open_diff(pilot, app, row_id: str):
    from planeai.tui.diff_view import DiffScreen

    assert app.sidebar.select_id(row_id)
    app.sidebar.focus()
    await pilot.press("D")
    await wait_for(pilot, lambda: isinstance(app.screen, DiffScreen) and app.screen.loads > 0,
                   what="the diff view, loaded")
    return app.screen


async def test_diff_view_lists_committed_and_untracked_files_then_commit_and_merge(services):
    """A worktree with a committed and an untracked file: the sidebar shows +/-, D lists
    both with their counts and the patch; c commits with the task's message (edited); M
    merges into main, which then holds both files; the worktree is gone."""
    from planeai.tui.diff_view import DiffScreen
    from planeai.tui.review_dialogs import CommitDialog, MergeDialog

    t = services.task("Add the parser", description="Parse things.")
    s = shell_session(services, t.key)
    wt = Path(s.worktree)
    (wt / "parser.py").write_text("def parse(x):\n    return x\n")
    git(wt, "add", "parser.py")
    git(wt, "commit", "-q", "-m", "parser")
    (wt / "notes.txt").write_text("one\ntwo\nthree\n")
    repo = Path(services.project.path)

    app = make_app(services)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        await wait_for(pilot, lambda: "+5 -0" in drawn(app, f"t:{t.key}"),
                       what="the task row's +/-")
        screen = await open_diff(pilot, app, f"t:{t.key}")
        r = screen.review
        assert {(f.path, f.status, f.added, f.deleted) for f in r.files} == {
            ("notes.txt", "A", 3, 0), ("parser.py", "A", 2, 0)}
        labels = [str(screen.query_one("#files").get_option_at_index(i).prompt)
                  for i in range(2)]
        assert labels == ["A notes.txt  +3 -0", "A parser.py  +2 -0"]
        patch = "\n".join(screen.query_one("#patch").lines)
        assert "+def parse(x):" in patch and "+three" in patch
        assert "none run yet" in str(screen.query_one("#check").render())

        # commit, with the message from the task edited in the dialog
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, CommitDialog), what="commit dialog")
        area = app.screen.query_one("TextArea")
        assert area.text.startswith(f"{t.key}: Add the parser") and "Parse things." in area.text
        area.text = f"{t.key}: notes and parser, reviewed"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: git(wt, "log", "-1", "--format=%s")
                       == f"{t.key}: notes and parser, reviewed", what="the commit")
        assert git(wt, "status", "--porcelain") == ""
        await wait_for(pilot, lambda: "committed" in notes(app), what="commit toast")

        # merge (default way from config: merge)
        await wait_for(pilot, lambda: isinstance(app.screen, DiffScreen), what="back in diff")
        await pilot.press("M")
        await wait_for(pilot, lambda: isinstance(app.screen, MergeDialog), what="merge dialog")
        await pilot.press("enter")
        await wait_for(pilot, lambda: "merged" in notes(app), what="merge toast")
        assert git(repo, "show", "main:parser.py") == "def parse(x):\n    return x"
        assert git(repo, "show", "main:notes.txt") == "one\ntwo\nthree"
        assert (repo / "parser.py").is_file()           # the checkout followed
        await wait_for(pilot, lambda: not isinstance(app.screen, DiffScreen),
                       what="the diff view closes")
        assert not wt.exists()
        assert services.store.get_task(t.key).status.value == "done"


async def test_merge_conflict_names_the_file_and_changes_nothing(services):
    t = services.task("Change the readme")
    s = shell_session(services, t.key)
    wt = Path(s.worktree)
    repo = Path(services.project.path)
    (wt / "README.md").write_text("branch\n")
    git(wt, "commit", "-q", "-am", "branch side")
    (repo / "README.md").write_text("main\n")
    git(repo, "commit", "-q", "-am", "main side")
    before = (git(repo, "rev-parse", "main"), git(repo, "rev-parse", s.branch))

    from planeai.tui.review_dialogs import MergeDialog

    app = make_app(services)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        await open_diff(pilot, app, f"t:{t.key}")
        await pilot.press("M")
        await wait_for(pilot, lambda: isinstance(app.screen, MergeDialog), what="merge dialog")
        await pilot.press("down", "enter")  # squash
        await wait_for(pilot, lambda: "conflicts in: README.md" in notes(app),
                       what="the conflict, with the file")
    assert (git(repo, "rev-parse", "main"), git(repo, "rev-parse", s.branch)) == before
    assert wt.is_dir()


async def test_checks_run_from_the_diff_view_and_show_next_to_it(services):
    from planeai import config

    services.locs.config_file.write_text(
        '[defaults]\nprovider = "shell"\n[review]\n'
        'checks = ["sh -c \'echo boom-$((40+2)); exit 3\'"]\n')
    services.manager.config = config.load(user_file=services.locs.config_file)
    t = services.task("Checked")
    s = shell_session(services, t.key)
    (Path(s.worktree) / "a.txt").write_text("a\n")

    app = make_app(services)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        screen = await open_diff(pilot, app, f"t:{t.key}")
        await pilot.press("k")
        await wait_for(pilot, lambda: "failed" in str(screen.query_one("#check").render()),
                       what="the failed check next to the diff")
        shown = str(screen.query_one("#check").render())
        assert "boom-42" in shown and "exit 3" in shown
        assert "boom-42" in notes(app)


async def test_compare_two_sessions_and_keep_one(services):
    """Two agents on one task, each writing its own file: both are rows under the task;
    C lists both with their files and +/-; W on the second keeps it (merged into main) and
    the first's work is kept in a recovery ref the notification names."""
    from planeai.tui.compare_view import CompareScreen
    from planeai.tui.confirm import Confirm
    from planeai.tui.diff_view import DiffScreen

    t = services.task("Two ways")
    a = shell_session(services, t.key)
    b = shell_session(services, t.key)
    (Path(a.worktree) / "way_a.txt").write_text("a\n")
    (Path(b.worktree) / "way_b.txt").write_text("b1\nb2\n")
    repo = Path(services.project.path)

    app = make_app(services)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        await wait_for(pilot, lambda: {f"s:{a.id}", f"s:{b.id}"} <= set(row_ids(app)),
                       what="a row per session")
        await wait_for(pilot, lambda: "+2 -0" in drawn(app, f"s:{b.id}")
                       and "+1 -0" in drawn(app, f"s:{a.id}"), what="each session's +/-")
        assert app.sidebar.select_id(f"t:{t.key}")
        await pilot.press("C")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen)
                       and app.screen.loads > 0, what="compare view")
        screen = app.screen
        got = {(e.name, e.agent, e.files, e.added, e.deleted) for e in screen.entries}
        assert got == {(a.name, "shell", 1, 1, 0), (b.name, "shell", 1, 2, 0)}
        # enter opens that session's diff
        row = [e.id for e in screen.entries].index(b.id)
        screen.query_one("DataTable").move_cursor(row=row)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DiffScreen)
                       and app.screen.loads > 0, what="b's diff")
        assert [f.path for f in app.screen.review.files] == ["way_b.txt"]
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen, what="back to compare")
        screen.query_one("DataTable").move_cursor(row=row)
        await pilot.press("W")
        await wait_for(pilot, lambda: isinstance(app.screen, Confirm), what="keep confirm")
        assert "recovery refs" in app.screen.question
        await pilot.press("y")
        await wait_for(pilot, lambda: f"discarded {a.name}: its work is kept in" in notes(app),
                       what="keep toast with the recovery ref")
        assert git(repo, "show", "main:way_b.txt") == "b1\nb2"
        ref = notes(app).split(f"discarded {a.name}: its work is kept in ")[1].split()[0]
        assert ref.startswith("refs/")
        assert git(repo, "show", f"{ref}:way_a.txt") == "a"
        assert not Path(a.worktree).exists()


async def test_keep_needs_a_session_row_and_every_action_is_in_the_palette(services):
    from textual.content import Content

    from planeai.tui.actions import ACTIONS
    from planeai.tui.compare_view import CompareScreen

    t = services.task("Two agents")
    shell_session(services, t.key)
    shell_session(services, t.key)
    app = make_app(services)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        # W on the task row of several sessions: which one? it says so, nothing happens
        assert app.sidebar.select_id(f"t:{t.key}")
        app.sidebar.focus()
        await pilot.press("W")
        await wait_for(pilot, lambda: "select the one to keep" in notes(app), what="warning")
        assert len(app.screen_stack) == 1
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for a in ACTIONS:
            if a.where == "app" and a.action != "command_palette":
                assert a.title in titles
        for title in ("Commit (diff view)", "Merge (diff view)", "Run checks (diff view)",
                      "Open a pull request (diff view)"):
            assert title in titles  # on the selection, from the main screen too
        screen = await open_diff(pilot, app, f"t:{t.key}")
        diff_titles = [c.title for c in app.get_system_commands(screen)]
        for a in ACTIONS:
            if a.where == "diff":
                assert a.title in diff_titles
        assert "New task" not in diff_titles  # the sidebar's actions: not from here
        await pilot.press("k")  # no checks configured: the error says where to set them
        await wait_for(pilot, lambda: any("[review] checks" in Content.from_markup(
            str(n.message)).plain for n in app._notifications), what="no-checks error")
        from planeai.tui.help import HelpScreen

        await pilot.press("question_mark")  # help lists the view's keys, and closes
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), what="help")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen, what="back in the diff view")
        await pilot.press("escape")
        await wait_for(pilot, lambda: len(app.screen_stack) == 1, what="back")
        await pilot.press("C")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen)
                       and app.screen.loads > 0, what="compare view")
        assert len(app.screen.entries) == 2
        await pilot.press("escape")
        await wait_for(pilot, lambda: len(app.screen_stack) == 1, what="back")
