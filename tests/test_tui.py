"""The app driven by Textual's pilot: every action, on a real store, real git repo and real
PTY sessions (local backend) or a private tmux server."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys

import pytest

from conftest import planeai_cmd
from planeai.core.models import SessionState, Status
from test_tui_helpers import (Services, anyio_backend, empty_services, make_app,  # noqa: F401
                              row_ids, row_text, services, session_of, shell_env, wait_for)

pytestmark = [pytest.mark.timeout(120), pytest.mark.anyio]

SIZE = (140, 36)


async def loaded(pilot, app):
    await wait_for(pilot, lambda: app.loads > 0, what="first data load")


async def start_shell(pilot, app, key: str, backend: str = "local"):
    """Select task ``key``, press s, pick the shell agent, wait for a focused terminal."""
    assert app.sidebar.select_id(f"t:{key}")
    await pilot.press("s")
    from planeai.tui.start_dialog import StartDialog

    await wait_for(pilot, lambda: isinstance(app.screen, StartDialog), what="start dialog")
    if backend != "local":
        await pilot.click(f"#backend-{backend}")
        await pilot.pause()
        app.screen.query_one("OptionList").focus()
    await pilot.press("enter")
    await wait_for(pilot, lambda: app.focused is app.term and app.term.session_name == key,
                   what=f"terminal of {key} focused")
    await wait_for(pilot, lambda: "$" in app.term.screen_text(), what="shell prompt")


def _running(leader: int, command: str) -> bool:
    """A process named ``command`` runs in the session whose leader is ``leader``."""
    from planeai.backends.procs import session_processes

    for pid in session_processes(leader):
        try:
            if open(f"/proc/{pid}/comm").read().strip() == command:
                return True
        except OSError:
            pass
    return False


async def type_line(pilot, text: str):
    await pilot.press(*[{" ": "space"}.get(c, c) for c in text], "enter")


# ---------------------------------------------------------------------- sidebar
async def test_empty_store_shows_welcome_and_new_task_needs_a_project(empty_services):
    app = make_app(empty_services)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        assert app.sidebar.rows == []
        assert "No projects yet" in app.details.plain
        await pilot.press("n")
        await pilot.pause()
        assert app.screen is app.screen_stack[0]
        assert any("no project" in n.message for n in app._notifications)


async def test_first_run_offers_to_register_the_repo(empty_services, tmp_path):
    from conftest import make_repo

    repo = make_repo(tmp_path / "fresh")
    app = make_app(empty_services, offer_register=str(repo))
    async with app.run_test(size=SIZE) as pilot:
        from planeai.tui.confirm import Confirm

        await wait_for(pilot, lambda: isinstance(app.screen, Confirm), what="register offer")
        await pilot.press("y")
        await wait_for(pilot, lambda: "p:1" in row_ids(app), what="project row")
        assert app.data.projects[0].path == str(repo.resolve())


async def test_sidebar_groups_by_status_nests_subtasks_and_marks_blocked(services):
    a = services.task("Set up CI", priority=3)
    b = services.task("Write docs", blocked_by=[a.key])
    c = services.task("API section", parent=b.key)
    services.task("Deep", parent=c.key)
    d = services.task("Old thing")
    e = services.task("Review me")
    from planeai.services import tasks

    tasks.move(services.store, d.key, "done")
    tasks.move(services.store, e.key, "in_review")
    app = make_app(services)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        ids = row_ids(app)
        assert ids[:2] == ["p:1", "g:1:todo"]
        assert (ids.index("t:DEM-1") < ids.index("t:DEM-2") < ids.index("t:DEM-3")
                < ids.index("t:DEM-4"))
        depth = {r.id: r.depth for r in app.sidebar.rows}
        assert (depth["t:DEM-2"], depth["t:DEM-3"], depth["t:DEM-4"]) == (2, 3, 4)
        assert "g:1:in_progress" in ids and "g:1:in_review" in ids and "t:DEM-6" in ids
        # done is collapsed: its group shows, its tasks do not
        assert "g:1:done" in ids and "t:DEM-5" not in ids
        assert "⊘DEM-1" in row_text(app, "t:DEM-2")
        assert "↑3" in row_text(app, "t:DEM-1")
        app.sidebar.select_id("g:1:done")
        await pilot.press("space")
        assert "t:DEM-5" in row_ids(app)
        await pilot.press("space")
        assert "t:DEM-5" not in row_ids(app)
        # selecting a task without a session shows its details and the start hint
        app.sidebar.select_id("t:DEM-2")
        await pilot.pause()
        text = app.details.plain
        assert "Write docs" in text or "DEM-2" in text
        assert not app.query_one("#main").has_class("-terminal")


async def test_filter_narrows_tasks_and_escape_clears(services):
    services.task("Set up CI")
    services.task("Write docs")
    services.task("Docs: API")
    app = make_app(services)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        await pilot.press("slash")
        assert app.focused.id == "filter"
        await pilot.press(*"docs")
        tasks = [r.task_key for r in app.sidebar.rows if r.kind == "task"]
        assert tasks == ["DEM-2", "DEM-3"]
        await pilot.press("escape")
        assert app.focused is app.sidebar
        assert len([r for r in app.sidebar.rows if r.kind == "task"]) == 3


async def test_task_added_from_another_shell_appears(services, tmp_path):
    app = make_app(services, poll_interval=0.5)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        r = subprocess.run(planeai_cmd() + ["task", "add", "From outside", "--project", "demo"],
                           capture_output=True, text=True, env=os.environ.copy(), timeout=60)
        assert r.returncode == 0, r.stderr
        await wait_for(pilot, lambda: "t:DEM-1" in row_ids(app), timeout=10,
                       what="task added by the CLI")
        assert "From outside" in row_text(app, "t:DEM-1")


# ---------------------------------------------------------------------- task actions
async def test_new_task_form_creates_the_task_with_every_field(services):
    blocker = services.task("Blocker")
    parent = services.task("Parent")
    app = make_app(services)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        await pilot.press("n")
        from planeai.tui.task_form import TaskForm

        await wait_for(pilot, lambda: isinstance(app.screen, TaskForm), what="form")
        form = app.screen
        form.query_one("#title").value = "Ship it"
        form.query_one("#description").text = "All of it."
        form.query_one("#priority").value = "4"
        form.query_one("#blocked_by").value = blocker.key
        form.query_one("#parent").value = parent.key
        form.query_one("#base_branch").value = "main"
        form.query_one("#provider").value = "shell"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "t:DEM-3" in row_ids(app), what="new task row")
        t = services.store.get_task("DEM-3")
        assert (t.title, t.description, t.priority, t.blocked_by, t.parent_key, t.base_branch,
                t.provider) == ("Ship it", "All of it.", 4, ["DEM-1"], "DEM-2", "main", "shell")
        await wait_for(pilot, lambda: app.sidebar.current and app.sidebar.current.id == "t:DEM-3",
                       what="new task selected")


async def test_a_refused_task_comes_back_in_the_form_with_the_reason(services):
    """A misspelt @mention (or a cycle) is refused by the service: the form opens again with
    everything typed and the reason; fixed, it saves."""
    from planeai.tui.task_form import TaskForm

    services.task("Blocker")
    app = make_app(services)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, TaskForm), what="form")
        form = app.screen
        form.query_one("#title").value = "Port it @shel"
        form.query_one("#description").text = "Long text I typed."
        form.query_one("#priority").value = "3"
        form.query_one("#blocked_by").value = "DEM-1"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, TaskForm) and app.screen is not form,
                       what="the form back")
        again = app.screen
        assert "did you mean @shell" in str(again.query_one("#error").render())
        assert again.query_one("#title").value == "Port it @shel"
        assert again.query_one("#description").text == "Long text I typed."
        assert again.query_one("#priority").value == "3"
        assert again.query_one("#blocked_by").value == "DEM-1"
        assert [t.key for t in services.store.list_tasks()] == ["DEM-1"]
        again.query_one("#title").value = "Port it @shell"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "t:DEM-2" in row_ids(app), what="saved")
        t = services.store.get_task("DEM-2")
        assert (t.title, t.description, t.priority, t.blocked_by) == (
            "Port it @shell", "Long text I typed.", 3, ["DEM-1"])


async def test_new_task_form_requires_a_title_and_escape_cancels(services):
    app = make_app(services)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        await pilot.press("n")
        await pilot.pause()
        await pilot.press("ctrl+s")
        assert "title is required" in str(app.screen.query_one("#error").render())
        await pilot.press("escape")
        assert len(app.screen_stack) == 1
        assert services.store.list_tasks() == []


async def test_subtask_edit_and_move(services):
    services.task("Parent")
    app = make_app(services)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        app.sidebar.select_id("t:DEM-1")
        await pilot.press("N")  # new subtask: parent prefilled
        await pilot.pause()
        assert app.screen.query_one("#parent").value == "DEM-1"
        await pilot.press(*"Child", "enter")
        await wait_for(pilot, lambda: "t:DEM-2" in row_ids(app), what="subtask")
        assert services.store.get_task("DEM-2").parent_key == "DEM-1"

        app.sidebar.select_id("t:DEM-1")
        await pilot.press("e")
        await pilot.pause()
        app.screen.query_one("#title").value = "Renamed parent"
        app.screen.query_one("#priority").value = "7"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: services.store.get_task("DEM-1").title == "Renamed parent",
                       what="edit saved")
        assert services.store.get_task("DEM-1").priority == 7

        await pilot.press("m")
        await pilot.pause()
        await pilot.press("3")
        await wait_for(pilot, lambda: services.store.get_task("DEM-1").status is Status.IN_REVIEW,
                       what="moved")
        await wait_for(pilot, lambda: any(r.id == "t:DEM-1" and r.status is Status.IN_REVIEW
                                          for r in app.sidebar.rows), what="row moved")


async def test_edit_changes_blockers(services):
    a = services.task("A")
    b = services.task("B")
    c = services.task("C", blocked_by=[a.key])
    app = make_app(services)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        app.sidebar.select_id(f"t:{c.key}")
        await pilot.press("e")
        await pilot.pause()
        app.screen.query_one("#blocked_by").value = b.key
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: services.store.get_task(c.key).blocked_by == [b.key],
                       what="blockers replaced")


# ---------------------------------------------------------------------- sessions
async def test_session_lifecycle_type_prompt_stop_restart_archive(services):
    services.task("Work")
    app = make_app(services)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        await start_shell(pilot, app, "DEM-1")
        assert services.store.get_task("DEM-1").status is Status.IN_PROGRESS
        await type_line(pilot, "echo hello-$((6*7))")
        await wait_for(pilot, lambda: "hello-42" in app.term.screen_text(), what="echo")
        # ctrl+] returns to the sidebar; the badge shows the agent status
        await pilot.press("ctrl+right_square_bracket")
        assert app.focused is app.sidebar
        await wait_for(pilot, lambda: session_of(app, "DEM-1") is not None
                       and session_of(app, "DEM-1").agent_status in ("idle", "busy"),
                       what="agent status")
        assert row_text(app, "t:DEM-1").strip()[0] in "○●"
        await wait_for(pilot, lambda: session_of(app, "DEM-1").agent_status == "idle",
                       what="idle badge")
        assert row_text(app, "t:DEM-1").strip().startswith("○")
        # keys typed in the sidebar do not reach the shell
        before = app.term.screen_text()
        await pilot.press("j", "k")
        assert app.term.screen_text() == before

        # send a prompt
        await pilot.press("p")
        from planeai.tui.prompt_dialog import PromptDialog

        await wait_for(pilot, lambda: isinstance(app.screen, PromptDialog), what="prompt dialog")
        app.screen.query_one("TextArea").text = "echo from-prompt"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "\nfrom-prompt" in app.term.screen_text(),
                       what="prompt ran")

        # stop
        await pilot.press("x")
        await wait_for(pilot, lambda: session_of(app, "DEM-1").state is SessionState.EXITED,
                       what="stopped")
        await wait_for(pilot, lambda: row_text(app, "t:DEM-1").strip().startswith("✕"),
                       what="exited badge")
        # restart: same name, new process, the view follows
        await pilot.press("R")
        await wait_for(pilot, lambda: session_of(app, "DEM-1").state is SessionState.RUNNING,
                       what="restarted")
        await wait_for(pilot, lambda: "$" in app.term.screen_text()
                       and "hello-42" not in app.term.screen_text(), what="new shell shown")
        # archive: the task has no session any more
        await pilot.press("a")
        await wait_for(pilot, lambda: session_of(app, "DEM-1") is None, what="archived")
        assert services.store.get_session("DEM-1").state is SessionState.ARCHIVED
        assert not app.query_one("#main").has_class("-terminal")


async def test_enter_opens_terminal_or_start_dialog_and_tab_focuses(services):
    services.task("One")
    services.task("Two")
    app = make_app(services)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        await start_shell(pilot, app, "DEM-1")
        await pilot.press("ctrl+right_square_bracket")
        app.sidebar.select_id("t:DEM-1")
        await pilot.press("enter")
        assert app.focused is app.term
        await pilot.press("ctrl+right_square_bracket")
        await pilot.press("tab")
        assert app.focused is app.term
        await pilot.press("ctrl+right_square_bracket")
        app.sidebar.select_id("t:DEM-2")
        await pilot.press("enter")
        from planeai.tui.start_dialog import StartDialog

        await wait_for(pilot, lambda: isinstance(app.screen, StartDialog), what="start dialog")
        await pilot.press("escape")


async def test_paste_and_control_keys_reach_the_session(services):
    services.task("Work")
    app = make_app(services)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        await start_shell(pilot, app, "DEM-1")
        from textual import events

        app.term.post_message(events.Paste("echo pasted-text"))
        await pilot.press("enter")
        await wait_for(pilot, lambda: "\npasted-text" in app.term.screen_text(), what="paste")
        await type_line(pilot, "sleep 30")
        # C-c only once the sleep runs: typed ahead, the shell would read it first
        leader = session_of(app, "DEM-1").pid
        await wait_for(pilot, lambda: _running(leader, "sleep"), what="sleep 30 running")
        await pilot.press("ctrl+c")
        await type_line(pilot, "echo after-interrupt")
        await wait_for(pilot, lambda: "\nafter-interrupt" in app.term.screen_text(),
                       what="ctrl+c interrupted sleep")


async def test_session_process_dying_is_survived(services):
    services.task("Work")
    app = make_app(services)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        await start_shell(pilot, app, "DEM-1")
        await type_line(pilot, "exit 3")
        await wait_for(pilot, lambda: session_of(app, "DEM-1").state is SessionState.EXITED,
                       what="exit recorded")
        assert session_of(app, "DEM-1").exit_code == 3
        # typing into a dead session is a notification, not a crash
        await pilot.press("x")
        await wait_for(pilot, lambda: any("exited" in n.message for n in app._notifications),
                       what="write failure notified")
        await pilot.press("ctrl+right_square_bracket")
        assert app.is_running


async def test_scratch_session_for_a_project_is_listed_as_free_session(services):
    app = make_app(services)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        app.sidebar.select_id("p:1")
        await pilot.press("s")
        await pilot.pause()
        await pilot.press("enter")
        await wait_for(pilot, lambda: "f:1" in row_ids(app), what="free sessions group")
        s = next(s for s in app.data.sessions if s.task_key is None)
        assert f"s:{s.id}" in row_ids(app)
        await wait_for(pilot, lambda: app.focused is app.term, what="terminal focus")


async def test_git_failure_is_a_notification_not_a_crash(services):
    services.task("Bad base", base_branch="no-such-branch")
    app = make_app(services)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        app.sidebar.select_id("t:DEM-1")
        await pilot.press("s")
        await pilot.pause()
        await pilot.press("enter")
        await wait_for(pilot, lambda: any(n.severity == "error" for n in app._notifications),
                       what="error notification")
        assert app.is_running
        assert session_of(app, "DEM-1") is None


async def test_missing_agent_cli_is_a_notification(services, monkeypatch):
    services.task("Work", provider="aider")
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    app = make_app(services)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        app.sidebar.select_id("t:DEM-1")
        # what the start dialog would send for a task that names an agent
        app._service("start session", lambda: services.manager.start(task_key="DEM-1"))
        await wait_for(pilot, lambda: any("not found" in n.message for n in app._notifications),
                       what="missing CLI notification")
        assert app.is_running


async def test_actions_without_a_selection_warn(services):
    app = make_app(services)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        app.sidebar.select_id("p:1")
        for key in ("x", "R", "a", "p", "t", "e", "m"):
            await pilot.press(key)
        await pilot.pause()
        assert len(app.screen_stack) == 1
        assert sum(n.severity == "warning" for n in app._notifications) >= 5


async def test_attach_local_says_why_and_tmux_suspends_into_attach(services, tmp_path, monkeypatch):
    if shutil.which("tmux") is None:
        pytest.skip("tmux not installed")
    sock = f"test-{secrets.token_hex(4)}"
    monkeypatch.setenv("TMUX_TMPDIR", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    services.config.data["tmux"]["socket"] = sock
    services.manager.env.update(TMUX_TMPDIR=str(tmp_path), HOME=str(tmp_path))
    services.task("Local")
    services.task("Tmuxed")
    app = make_app(services)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await loaded(pilot, app)
            await start_shell(pilot, app, "DEM-1")
            await pilot.press("ctrl+right_square_bracket", "t")
            await wait_for(pilot, lambda: any("inside the planeai app" in n.message
                                              for n in app._notifications), what="local note")
            # a tmux session: same terminal view, fed by snapshot + subscribe
            await start_shell(pilot, app, "DEM-2", backend="tmux")
            assert session_of(app, "DEM-2").backend == "tmux"
            await type_line(pilot, "echo via-tmux")
            try:
                await wait_for(pilot, lambda: "\nvia-tmux" in app.term.screen_text(),
                               what="tmux echo")
            except AssertionError as e:
                be = services.manager.backend("tmux")
                pane = be.snapshot("DEM-2").text
                raise AssertionError(f"{e}; view:\n{app.term.screen_text()}\npane:\n{pane}") \
                    from None
            calls = []
            monkeypatch.setattr(app, "attach_full_screen", calls.append)
            await pilot.press("ctrl+right_square_bracket", "t")
            assert calls and calls[0][-3:] == ["attach-session", "-t", "=DEM-2"]
            assert calls[0][:3] == ["tmux", "-L", sock]
    finally:
        subprocess.run(["tmux", "-L", sock, "kill-server"], capture_output=True)


async def test_tmux_server_gone_is_survived(services, tmp_path, monkeypatch):
    if shutil.which("tmux") is None:
        pytest.skip("tmux not installed")
    sock = f"test-{secrets.token_hex(4)}"
    monkeypatch.setenv("TMUX_TMPDIR", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    services.config.data["tmux"]["socket"] = sock
    services.manager.env.update(TMUX_TMPDIR=str(tmp_path), HOME=str(tmp_path))
    services.task("Tmuxed")
    app = make_app(services)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await loaded(pilot, app)
            await start_shell(pilot, app, "DEM-1", backend="tmux")
            subprocess.run(["tmux", "-L", sock, "kill-server"], capture_output=True)
            await wait_for(pilot, lambda: session_of(app, "DEM-1").state is SessionState.EXITED,
                           what="lost session recorded")
            await pilot.press("ctrl+right_square_bracket")
            app.sidebar.select_id("t:DEM-1")
            await pilot.pause()
            assert app.is_running
    finally:
        subprocess.run(["tmux", "-L", sock, "kill-server"], capture_output=True)


# ---------------------------------------------------------------------- help, palette, quit
async def test_help_screen_lists_every_action(services):
    from planeai.tui.actions import ACTIONS
    from planeai.tui.help import HelpScreen

    app = make_app(services)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        # modal: main keys do nothing underneath
        await pilot.press("n")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert len(app.screen_stack) == 1
    from planeai.tui.help import help_table

    from rich.console import Console

    c = Console(width=120, record=True, file=open(os.devnull, "w"))
    c.print(help_table())
    text = c.export_text()
    for a in ACTIONS:
        assert a.help[:30] in text


async def test_command_palette_offers_every_action_and_runs_them(services):
    from planeai.tui.actions import ACTIONS
    from planeai.tui.task_form import TaskForm

    app = make_app(services)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for a in ACTIONS:  # the diff and compare views' own keys: tests/test_tui_review.py
            if a.action != "command_palette" and a.where == "app":
                assert a.title in titles
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"New task")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, TaskForm), what="form from palette")


async def test_quit_asks_when_local_sessions_would_end(services):
    services.task("Work")
    app = make_app(services)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        await start_shell(pilot, app, "DEM-1")
        await pilot.press("ctrl+right_square_bracket", "q")
        from planeai.tui.confirm import Confirm

        await wait_for(pilot, lambda: isinstance(app.screen, Confirm), what="quit confirm")
        await pilot.press("n")
        assert app.is_running
        await pilot.press("q")
        await pilot.pause()
        await pilot.press("y")
        await wait_for(pilot, lambda: not app.is_running, what="exit")


async def test_quit_without_sessions_is_immediate(services):
    app = make_app(services)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        await pilot.press("q")
        await wait_for(pilot, lambda: not app.is_running, what="exit")


async def test_the_apps_local_session_is_its_own_and_x_ends_all_of_it(services, tmp_path):
    """`planeai session list` in another shell leaves the app's running local session live;
    `x` then leaves nothing of the agent running, a job in a process group of its own
    included (checked by pid)."""
    from planeai.backends import procs

    services.task("Mine")
    bg = tmp_path / "bg.py"
    pidfile = tmp_path / "child.pid"
    bg.write_text("import os, time\nos.setpgid(0, 0)\n"
                  f"open({str(pidfile)!r}, 'w').write(str(os.getpid()))\ntime.sleep(600)\n")
    app = make_app(services)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        await start_shell(pilot, app, "DEM-1")
        await type_line(pilot, f"{sys.executable} {bg} &")
        await wait_for(pilot, lambda: pidfile.exists() and pidfile.read_text(),
                       what="the background job")
        child = procs.identity(int(pidfile.read_text()))
        leader = procs.identity(services.store.get_session("DEM-1").pid)
        assert child and leader
        for _ in range(2):  # another shell looks (reconcile + observe), twice
            r = subprocess.run(planeai_cmd() + ["session", "list", "--json"],
                               capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, r.stderr
            import json

            listed = {x["name"]: x for x in json.loads(r.stdout)}
            assert listed["DEM-1"]["state"] == "running", listed
        assert services.store.get_session("DEM-1").state is SessionState.RUNNING
        await pilot.press("ctrl+right_square_bracket")
        await pilot.press("x")
        await wait_for(pilot, lambda: session_of(app, "DEM-1").state is SessionState.EXITED,
                       what="stopped")
        assert not procs.alive(leader) and not procs.alive(child)
        await wait_for(pilot, lambda: any(n.message.startswith("stopped DEM-1")
                                          for n in app._notifications), what="said stopped")
        await pilot.press("x")  # again: it says what is true, not "stopped"
        await wait_for(pilot, lambda: any("DEM-1 had already ended" in n.message
                                          for n in app._notifications), what="already ended")


async def test_reconcile_marks_sessions_of_dead_processes_lost(services):
    s = services.manager.store.add_session(
        id="deadbeef", name="DEM-1", project=services.project, task_key=None, provider="shell",
        variant=None, backend="local", worktree=None, branch=None, autonomous=False,
        argv=["sh"])
    services.store.update_session(s.id, state="running", pid=2 ** 22 + 12345)
    app = make_app(services)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        assert services.store.get_session("deadbeef").state is SessionState.EXITED
        app.sidebar.select_id("s:deadbeef")
        await pilot.pause()
        assert "planeai process that has ended" in app.details.plain


# ---------------------------------------------------------------------- plumbing
def test_keys_map_to_terminal_bytes():
    from planeai.tui.keys import key_to_bytes

    assert key_to_bytes("a", "a") == b"a"
    assert key_to_bytes("enter", "\r") == b"\r"
    assert key_to_bytes("ctrl+c", "\x03") == b"\x03"
    assert key_to_bytes("ctrl+a", None) == b"\x01"
    assert key_to_bytes("up", None) == b"\x1b[A"
    assert key_to_bytes("up", None, app_cursor=True) == b"\x1bOA"
    assert key_to_bytes("shift+tab", None) == b"\x1b[Z"
    assert key_to_bytes("ctrl+left", None) == b"\x1b[1;5D"
    assert key_to_bytes("alt+x", "x") == b"\x1bx"
    assert key_to_bytes("backspace", "\x7f") == b"\x7f"
    assert key_to_bytes("f5", None) == b"\x1b[15~"
    assert key_to_bytes("é", "é") == "é".encode()
    assert key_to_bytes("ctrl+shift+unknown", None) is None


def test_cli_commands_never_import_textual():
    code = ("import sys; from planeai.cli import main, cmd_task, cmd_project, cmd_session; "
            "assert 'textual' not in sys.modules, 'textual imported'; "
            "assert 'planeai.tui' not in sys.modules")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_app_command_refuses_without_a_terminal(tmp_path):
    r = subprocess.run(planeai_cmd(), capture_output=True, text=True, stdin=subprocess.DEVNULL,
                       cwd=tmp_path, timeout=60)
    assert r.returncode == 2
    assert "needs a terminal" in r.stderr


# ---------------------------------------------------------------------- rendering costs
async def test_output_bursts_are_coalesced_and_only_dirty_rows_converted(services):
    import time as _time

    from planeai.tui.terminal_view import FPS

    services.task("Work")
    app = make_app(services)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        await start_shell(pilot, app, "DEM-1")
        await pilot.pause(0.2)
        # one typed character converts a row or two, not the screen
        before = app.term.rows_converted
        await pilot.press("x")
        await wait_for(pilot, lambda: app.term.rows_converted > before, what="echo paint")
        await pilot.pause(0.1)
        assert app.term.rows_converted - before <= 2
        await pilot.press("backspace")
        # a burst of output: paints stay under FPS per second (one paint per frame at most).
        # Counted from the Enter that starts it: each typed key is painted at once, on
        # purpose (its echo must not wait for the pace), and typing is not the burst.
        cmd = "seq 1 200000; echo burst-done"
        await pilot.press(*[{" ": "space"}.get(c, c) for c in cmd])
        await wait_for(pilot, lambda: cmd in app.term.screen_text(), what="command typed")
        paints0, t0 = app.term.paints, _time.monotonic()
        await pilot.press("enter")
        await wait_for(pilot, lambda: "burst-done" in app.term.screen_text(), timeout=60,
                       what="burst end")
        await pilot.pause(0.1)
        elapsed = _time.monotonic() - t0
        assert app.term.paints - paints0 <= FPS * elapsed + 2


async def test_scrollback_shows_history_and_typing_returns_to_live(services):
    services.task("Work")
    app = make_app(services)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        await start_shell(pilot, app, "DEM-1")
        await type_line(pilot, "seq 1 300")
        await wait_for(pilot, lambda: "\n300\n" in app.term.screen_text(), what="seq output")
        await pilot.press("shift+pageup")
        assert app.term._scroll > 0
        shown = "".join(s.text for s in app.term.render_line(1))
        assert shown.strip().isdigit() and int(shown.strip()) < 300 - app.term.size.height + 5
        await pilot.press("a")
        assert app.term._scroll == 0


async def test_mouse_selects_rows_and_runs_key_hints(services):
    services.task("One")
    services.task("Two")
    app = make_app(services)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        idx = row_ids(app).index("t:DEM-2")
        await pilot.click("#sidebar", offset=(5, idx))
        assert app.sidebar.current.id == "t:DEM-2"
        keybar = app.query_one("#keys")
        x = next(x0 for x0, _x1, action, _n in keybar._spans if action == "help")
        await pilot.click("#keys", offset=(x + 1, 0))
        from planeai.tui.help import HelpScreen

        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), what="help by click")


async def test_preloaded_board_is_in_the_first_frame(services):
    from planeai.tui.model import preload

    services.task("Preloaded")
    app = make_app(services, initial=preload(services.store), poll_interval=30)
    async with app.run_test(size=SIZE) as pilot:
        assert "t:DEM-1" in row_ids(app)       # before any poll
        assert app.loads == 1
        # and later changes still arrive through the event log
        services.task("Later")
        app.wake()
        await wait_for(pilot, lambda: "t:DEM-2" in row_ids(app), what="poll after preload")


async def test_toggle_auto_dispatch_starts_ready_tasks(services):
    from conftest import install_echo_agent

    # an agent to dispatch to (the default shell is never given a task)
    install_echo_agent(services.locs.user_providers_dir)
    services.task("Blocker", priority=1, provider="echoer")
    services.task("Waits", blocked_by=["DEM-1"], priority=5, provider="echoer")
    app = make_app(services)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        await pilot.press("d")
        assert app.dispatching
        assert "auto-dispatch on" in str(app.query_one("#keys").render())
        # the ready task gets a session; the blocked one (higher priority) does not
        await wait_for(pilot, lambda: session_of(app, "DEM-1") is not None, timeout=30,
                       what="dispatched session")
        assert session_of(app, "DEM-2") is None
        await pilot.press("d")
        assert not app.dispatching
        await wait_for(pilot, lambda: services.store.lease_holder("dispatch") in (None, ""),
                       what="lease released")


async def test_prompt_box_mentions_start_one_session_per_agent(services):
    """`@echoer @echoer say ...` in the prompt box: two sessions for the selected task, each
    in its own worktree; a wrong mention starts nothing and says why."""
    from planeai.tui.prompt_dialog import PromptDialog

    from conftest import install_echo_agent

    install_echo_agent(services.locs.user_providers_dir)
    services.task("Compare agents")
    app = make_app(services)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        assert app.sidebar.select_id("t:DEM-1")
        await pilot.press("p")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptDialog), what="prompt dialog")
        app.screen.query_one("TextArea").text = "@echoer-nope echo x"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: any("unknown variant 'nope'" in n.message
                                          for n in app._notifications), what="error toast")
        assert services.store.sessions_for_task("DEM-1") == []
        await pilot.press("p")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptDialog), what="prompt dialog")
        app.screen.query_one("TextArea").text = "@echoer @echoer echo side-$((20+22))"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: len(services.store.sessions_for_task("DEM-1")) == 2,
                       what="two sessions")
        sessions = services.store.sessions_for_task("DEM-1")
        assert sorted(s.name for s in sessions) == ["DEM-1", "DEM-1-2"]
        assert len({s.worktree for s in sessions}) == 2
        be = services.manager.backend("local")
        assert all(s.state.value == "running" for s in sessions), \
            [(e.kind, e.session_id, e.data) for e in services.store.events(task_key="DEM-1")
             if e.kind.startswith("session")]
        for s in sessions:
            await wait_for(pilot,
                           lambda s=s: "prompt: echo side-$((20+22))" in be.snapshot(s.name).text,
                           what=f"the prompt's output in {s.name}")
        # both are under the task in the sidebar, each one selectable with its own screen
        await wait_for(pilot, lambda: all(f"s:{s.id}" in row_ids(app) for s in sessions),
                       what="a row per session under the task")
        ids = row_ids(app)
        assert ids.index("t:DEM-1") < min(ids.index(f"s:{s.id}") for s in sessions)
        for s in sessions:
            assert app.sidebar.select_id(f"s:{s.id}")
            await wait_for(pilot, lambda s=s: app.term.session_name == s.name,
                           what=f"{s.name} shown")
            assert s.name in row_text(app, f"s:{s.id}")
