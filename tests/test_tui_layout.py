"""The app's layout and its housekeeping actions (issue 17): a sidebar sized to the window
that can be hidden, backends as radio buttons, hints in the project's own key, deleting
tasks and sessions, adding a project, jumping to the next session waiting for input."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from conftest import make_repo
from planeai.tui.confirm import Confirm
from test_tui_helpers import (FakeBackend, Services, anyio_backend, empty_services,  # noqa: F401
                              make_app, row_ids, row_text, services, shell_env, wait_for)

pytestmark = [pytest.mark.timeout(120), pytest.mark.anyio]


async def loaded(pilot, app):
    await wait_for(pilot, lambda: app.loads > 0, what="first data load")


def said(app, text: str) -> bool:
    return any(text in str(n.message) for n in app._notifications)


@pytest.fixture
def fake_board(planeai_home, tmp_path, shell_env):
    """Services whose local sessions are in memory: sessions marked needing input stay so."""
    svc = Services(planeai_home, make_repo(tmp_path / "web"), backends={"local": FakeBackend()})
    yield svc
    svc.close()


def fake_session(svc, key: str, sid: str, status: str):
    s = svc.store.add_session(id=sid, name=key, project=svc.project, task_key=key,
                              provider="shell", variant=None, backend="local", worktree=None,
                              branch=None, autonomous=False, argv=["sh"])
    svc.store.update_session(s.id, state="running", agent_status=status)
    svc.manager.backend("local").add(key, b"$ ")


def pty_columns(app) -> int | None:
    """The columns the last `stty size` in the session printed (what its PTY says)."""
    sizes = re.findall(r"^(\d+) (\d+)\s*$", app.term.screen_text(), re.M)
    return int(sizes[-1][1]) if sizes else None


# ---------------------------------------------------------------------- layout
@pytest.mark.parametrize("size, width", [((80, 24), 28), ((200, 50), 52), ((120, 32), 39)])
async def test_sidebar_takes_a_third_of_the_window_within_bounds(services, size, width):
    services.task("Set up CI")
    app = make_app(services, observe=False)
    async with app.run_test(size=size) as pilot:
        await loaded(pilot, app)
        await pilot.pause()
        left = app.query_one("#left")
        assert left.outer_size.width == width
        main = app.query_one("#main")
        assert main.size.width == size[0] - width  # the agent's terminal gets the rest


async def test_sidebar_follows_a_resize_and_the_terminal_pane_grows(services):
    app = make_app(services, observe=False)
    async with app.run_test(size=(200, 50)) as pilot:
        await loaded(pilot, app)
        await pilot.resize_terminal(80, 24)
        await wait_for(pilot, lambda: app.query_one("#left").outer_size.width == 28,
                       what="sidebar narrowed")
        assert app.query_one("#main").size.width == 52


async def test_b_hides_and_shows_the_sidebar(services):
    services.task("Set up CI")
    app = make_app(services, observe=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot, app)
        await pilot.press("b")
        await wait_for(pilot, lambda: app.query_one("#main").size.width == 80,
                       what="main pane full width")
        assert not app.query_one("#left").display
        await pilot.press("b")
        await wait_for(pilot, lambda: app.query_one("#main").size.width == 52,
                       what="sidebar back")
        assert app.focused is app.sidebar


async def test_hiding_the_sidebar_resizes_the_sessions_terminal(services):
    from test_tui import start_shell, type_line

    t = services.task("Set up CI")
    app = make_app(services)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot, app)
        await start_shell(pilot, app, t.key)
        await type_line(pilot, "stty size")
        assert app.term.size.width == 52
        await wait_for(pilot, lambda: pty_columns(app) == 52, what="52 columns in the PTY")
        await pilot.press("ctrl+right_square_bracket")
        await pilot.press("b")
        await wait_for(pilot, lambda: app.term.size.width == 80, what="terminal full width")
        app.term.focus()
        await type_line(pilot, "clear; stty size")
        await wait_for(pilot, lambda: pty_columns(app) == 80, what="80 columns in the PTY")


# ---------------------------------------------------------------------- dialogs
async def test_start_dialog_offers_every_backend_as_one_radio_choice(services):
    from textual.widgets import RadioButton, RadioSet

    from planeai.tui.start_dialog import StartDialog

    t = services.task("Set up CI")
    app = make_app(services, observe=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot, app)
        app.sidebar.select_id(f"t:{t.key}")
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, StartDialog), what="start dialog")
        radios = list(app.screen.query_one("#backend", RadioSet).query(RadioButton))
        offered = [name for name, _ in services.manager.backend_choices()]
        assert [r.id for r in radios] == [f"backend-{b}" for b in offered]
        assert [r.value for r in radios].count(True) == 1
        # told apart without colour: only the chosen one shows its dot
        assert ["●" in r.render().plain for r in radios] == [r.value for r in radios]
        other = next(r for r in radios if not r.value) if len(radios) > 1 else None
        if other is not None:
            other.value = True  # choosing one unchooses the other
            await pilot.pause()
            assert [r.value for r in radios].count(True) == 1
            assert ["●" in r.render().plain for r in radios] == [r.value for r in radios]
            assert app.screen.backend == other.id.removeprefix("backend-")


async def test_task_form_hints_use_the_projects_own_key(services):
    from textual.widgets import Input

    from planeai.tui.task_form import TaskForm

    services.task("Set up CI")
    key = services.project.key_prefix
    assert key != "PLA"
    app = make_app(services, observe=False)
    async with app.run_test(size=(120, 32)) as pilot:
        await loaded(pilot, app)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, TaskForm), what="task form")
        assert app.screen.query_one("#blocked_by", Input).placeholder == f"{key}-1, {key}-2"
        assert app.screen.query_one("#parent", Input).placeholder.startswith(f"{key}-1 ")


async def test_one_task_is_not_one_tasks(services):
    services.task("Set up CI")
    app = make_app(services, observe=False)
    async with app.run_test(size=(120, 32)) as pilot:
        await loaded(pilot, app)
        assert "1 task" in row_text(app, "p:1") and "1 tasks" not in row_text(app, "p:1")


# ---------------------------------------------------------------------- actions
async def test_delete_task_asks_and_deletes_subtasks_on_a_second_yes(services):
    parent = services.task("Write docs")
    kid = services.task("API section", parent=parent.key)
    keep = services.task("Keep me")
    app = make_app(services, observe=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot, app)
        assert app.sidebar.select_id(f"t:{parent.key}")
        await pilot.press("X")
        await wait_for(pilot, lambda: isinstance(app.screen, Confirm), what="confirm")
        await pilot.press("y")
        await wait_for(pilot, lambda: isinstance(app.screen, Confirm)
                       and kid.key in app.screen.question, what="subtasks confirm")
        await pilot.press("y")
        await wait_for(pilot, lambda: f"t:{parent.key}" not in row_ids(app)
                       and f"t:{kid.key}" not in row_ids(app), what="rows gone")
        assert [t.key for t in services.store.list_tasks()] == [keep.key]


async def test_delete_task_no_keeps_it(services):
    t = services.task("Keep me")
    app = make_app(services, observe=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot, app)
        assert app.sidebar.select_id(f"t:{t.key}")
        await pilot.press("X")
        await wait_for(pilot, lambda: isinstance(app.screen, Confirm), what="confirm")
        await pilot.press("n")
        await pilot.pause()
        assert [x.key for x in services.store.list_tasks()] == [t.key]


async def test_delete_session_refuses_unsaved_work_then_forces_with_a_recovery_ref(services):
    from test_tui import start_shell

    t = services.task("Set up CI")
    app = make_app(services)
    async with app.run_test(size=(120, 32)) as pilot:
        await loaded(pilot, app)
        await start_shell(pilot, app, t.key)
        s = app.data.task_session(t.key)
        assert s.worktree and Path(s.worktree).is_dir()
        (Path(s.worktree) / "notes.txt").write_text("unsaved work\n")
        app.sidebar.focus()
        await pilot.press("ctrl+x")
        await wait_for(pilot, lambda: isinstance(app.screen, Confirm), what="confirm")
        await pilot.press("y")
        await wait_for(pilot, lambda: isinstance(app.screen, Confirm)
                       and "would be lost" in app.screen.question, what="refusal shown")
        assert services.store.get_session(s.id)  # the refusal changed nothing
        assert Path(s.worktree, "notes.txt").exists()
        await pilot.press("y")
        await wait_for(pilot, lambda: said(app, "its work is kept in"), what="recovery ref")
        assert s.id not in {x.id for x in services.store.list_sessions()}
        assert not Path(s.worktree).exists()


async def test_add_project_from_the_app_and_a_bad_path_keeps_the_dialog(empty_services,
                                                                          tmp_path):
    from textual.widgets import Input

    from planeai.tui.path_dialog import PathDialog

    repo = make_repo(tmp_path / "shop")
    app = make_app(empty_services, observe=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot, app)
        await pilot.press("plus")
        await wait_for(pilot, lambda: isinstance(app.screen, PathDialog), what="path dialog")
        bad = str(tmp_path / "nowhere")
        app.screen.query_one("#path", Input).value = bad
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, PathDialog) and app.screen.error,
                       what="refusal in the dialog")
        assert app.screen.query_one("#path", Input).value == bad  # nothing typed is lost
        app.screen.query_one("#path", Input).value = str(repo)
        await pilot.press("enter")
        await wait_for(pilot, lambda: "p:1" in row_ids(app), what="project row")
        assert app.data.projects[0].path == str(repo.resolve())
        await pilot.press("minus")
        await wait_for(pilot, lambda: isinstance(app.screen, Confirm), what="remove confirm")
        await pilot.press("y")
        await wait_for(pilot, lambda: "p:1" not in row_ids(app), what="project removed")


@pytest.mark.parametrize("key, status", [("w", "needs_input"), ("I", "idle")])
async def test_a_key_jumps_to_the_next_session_in_its_status(fake_board, key, status):
    """w: the next agent needing input; I: the next idle one (help lists both)."""
    a = fake_board.task("First")
    b = fake_board.task("Second")
    c = fake_board.task("Third")
    fake_session(fake_board, a.key, "aaaa0001", status)
    fake_session(fake_board, b.key, "aaaa0002", "busy")
    fake_session(fake_board, c.key, "aaaa0003", status)
    app = make_app(fake_board, observe=False, reconcile=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot, app)
        app.sidebar.select_id("p:1")
        seen = []
        for _ in range(3):
            await pilot.press(key)
            await pilot.pause()
            seen.append(app.sidebar.current.id)
        assert sorted(seen[:2]) == [f"t:{a.key}", f"t:{c.key}"]
        assert seen[2] == seen[0]  # it wraps around


async def test_the_start_dialog_takes_a_first_prompt_and_autonomous(services):
    """The start dialog's options reach the session: a first prompt (the agent prints it),
    autonomous recorded on the session; a scratch session is not offered autonomous."""
    from conftest import install_echo_agent

    from planeai.tui.start_dialog import StartDialog

    install_echo_agent(services.locs.user_providers_dir)
    services.task("Prompted")
    app = make_app(services)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.loads > 0, what="first load")
        assert app.sidebar.select_id("t:DEM-1")
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, StartDialog), what="start dialog")
        dialog = app.screen
        ol = dialog.query_one("OptionList")
        ol.highlighted = [o.id for o in ol._options].index("echoer")
        dialog.query_one("#autonomous").value = True
        assert dialog.query_one("#yolo").value is False  # yolo is asked for, never assumed
        dialog.query_one("#prompt").value = "count to $((2+3))"
        await pilot.click("#start")
        await wait_for(pilot, lambda: services.store.sessions_for_task("DEM-1"),
                       what="the session")
        s = services.store.sessions_for_task("DEM-1")[0]
        assert s.autonomous and s.agent == "echoer"
        be = services.manager.backend("local")
        await wait_for(pilot, lambda: "prompt: count to $((2+3))" in be.snapshot(s.name).text,
                       what="the prompt, literally, at the agent")
        services.manager.stop(s.id)
        # a scratch session (a project row) has no task to work alone on
        await pilot.press("ctrl+right_square_bracket")  # back from the terminal to the list
        assert app.sidebar.select_id(f"p:{services.project.id}")
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, StartDialog), what="dialog again")
        assert not list(app.screen.query("#autonomous"))
        await pilot.press("escape")


# ---------------------------------------------------------------------- agents at a glance
async def test_key_bar_fits_80_columns_with_the_main_keys_first(services):
    services.task("Set up CI")
    app = make_app(services, observe=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot, app)
        await pilot.pause()
        bar = app.query_one("#keys").render()
        assert bar.cell_len <= 80, bar.plain
        words = bar.plain.split()
        for label in ("Start", "Prompt", "New", "Stop", "Waiting", "Help", "Quit"):
            assert label in words, bar.plain
        assert words.index("Start") < words.index("New") < words.index("Quit")
        # narrower still: the least important hints go whole, help and quit stay
        await pilot.resize_terminal(60, 24)
        await pilot.pause()
        bar = app.query_one("#keys").render()
        assert bar.cell_len <= 60 and "…" not in bar.plain, bar.plain
        assert {"Start", "Help", "Quit"} <= set(bar.plain.split()), bar.plain
        # auto-dispatch on at 80 columns: its marker is short and the bar still fits whole
        await pilot.resize_terminal(80, 24)
        await pilot.press("d")
        await wait_for(pilot, lambda: app.dispatching, what="dispatching")
        await pilot.pause()
        bar = app.query_one("#keys").render()
        assert bar.cell_len <= 80 and "…" not in bar.plain, bar.plain
        words = bar.plain.split()
        assert words[:2] == ["⚙", "auto"], bar.plain  # the long label would cost two hints
        for label in ("Start", "Prompt", "New", "Stop", "Waiting", "Help", "Quit"):
            assert label in words, bar.plain
        await pilot.press("d")
        await wait_for(pilot, lambda: not app.dispatching, what="dispatch off")


async def test_an_agent_starting_to_need_input_rings_the_bell_once(fake_board):
    a = fake_board.task("First")
    b = fake_board.task("Second")
    fake_session(fake_board, a.key, "aaaa0001", "busy")
    fake_session(fake_board, b.key, "aaaa0002", "needs_input")  # already waiting: no bell
    app = make_app(fake_board, observe=False, reconcile=False)
    bells = []
    async with app.run_test(size=(80, 24)) as pilot:
        app.bell = lambda: bells.append(1)
        await loaded(pilot, app)
        store = fake_board.store
        store.set_agent_status("aaaa0001", "needs_input")  # as another observer would
        await wait_for(pilot, lambda: app.alerts == 1, what="alert")
        assert bells == [1]
        assert said(app, f"{a.key} needs input")
        changes = app.changes_applied
        store.update_session("aaaa0001", pid=4243, event="session.started")  # still waiting
        await wait_for(pilot, lambda: app.changes_applied > changes, what="next change")
        assert app.alerts == 1 and bells == [1]
        store.set_agent_status("aaaa0001", "busy")
        store.set_agent_status("aaaa0001", "needs_input")  # a new question
        await wait_for(pilot, lambda: app.alerts == 2, what="second alert")
        assert bells == [1, 1]


async def test_no_bell_when_notify_bell_is_off(fake_board):
    a = fake_board.task("First")
    fake_session(fake_board, a.key, "aaaa0001", "busy")
    fake_board.config.data["notify"]["bell"] = False
    app = make_app(fake_board, observe=False, reconcile=False)
    bells = []
    async with app.run_test(size=(80, 24)) as pilot:
        app.bell = lambda: bells.append(1)
        await loaded(pilot, app)
        fake_board.store.set_agent_status("aaaa0001", "needs_input")
        await wait_for(pilot, lambda: app.alerts == 1, what="alert (a toast only)")
        assert bells == []


async def test_the_start_dialog_asks_for_the_sandbox_and_passes_it_on(services, monkeypatch):
    """Sandbox default / on / off in the start dialog reaches the start: "on" without the
    sandbox's image is refused with how to build it, "off" starts on the host."""
    from planeai.sandbox import engine
    from planeai.tui.start_dialog import StartDialog

    monkeypatch.setattr(engine, "image_exists", lambda image: False)
    services.task("Boxed")
    app = make_app(services)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot, app)
        for choice in ("on", "off"):
            assert app.sidebar.select_id("t:DEM-1")
            await pilot.press("ctrl+right_square_bracket")
            await pilot.press("s")
            await wait_for(pilot, lambda: isinstance(app.screen, StartDialog), what="dialog")
            assert app.screen.query_one("#sandbox-default").value  # as configured, first
            await pilot.click(f"#sandbox-{choice}")
            await pilot.click("#start")
            if choice == "on":
                await wait_for(pilot, lambda: said(app, "sandbox build"),
                               what="refused: the image is missing")
                assert not services.store.sessions_for_task("DEM-1")
            else:
                await wait_for(pilot, lambda: services.store.sessions_for_task("DEM-1"),
                               what="started on the host")


async def test_project_row_previews_its_agents_screens_live(fake_board):
    """The list view shows each live agent's last screen line under its project (what the
    observer read: no capture of its own), and follows what the agent prints."""
    a = fake_board.task("First")
    b = fake_board.task("Second")
    fake_session(fake_board, a.key, "aaaa0001", "busy")
    fake_session(fake_board, b.key, "aaaa0002", "busy")
    be = fake_board.manager.backend("local")
    be._feed(a.key, b"\r\nthinking about the tests")
    app = make_app(fake_board, reconcile=False)
    async with app.run_test(size=(120, 32)) as pilot:
        await loaded(pilot, app)
        app.sidebar.select_id("p:1")
        await wait_for(pilot, lambda: "thinking about the tests" in app.details.plain,
                       what="the agent's last line under its project")
        assert f"{b.key}" in app.details.plain
        be._feed(a.key, b"\r\nwriting test_preview.py")
        await wait_for(pilot, lambda: "writing test_preview.py" in app.details.plain,
                       what="the preview following the agent")
        # a session's details (i) show the bottom of its screen too
        app.sidebar.select_id(f"t:{a.key}")
        await pilot.press("i")
        await wait_for(pilot, lambda: "writing test_preview.py" in app.details.plain,
                       what="the screen in the session's details")


async def test_a_desktop_notification_names_the_agent_that_needs_input(fake_board, tmp_path,
                                                                        monkeypatch):
    """With a desktop session there, the app sends notify-send the text (a stand-in
    notify-send on PATH records its argv: one argument, nothing parsed)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    got = tmp_path / "notify.args"
    tool = bindir / "notify-send"
    tool.write_text(f'#!/bin/sh\nfor a; do printf "%s\\n" "$a"; done > {got}\n')
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    monkeypatch.setenv("DISPLAY", ":0")
    a = fake_board.task("Needs $(touch x) me")
    fake_session(fake_board, a.key, "aaaa0001", "busy")
    app = make_app(fake_board, observe=False, reconcile=False)
    async with app.run_test(size=(80, 24)) as pilot:
        app.bell = lambda: None
        await loaded(pilot, app)
        fake_board.store.set_agent_status("aaaa0001", "needs_input")
        await wait_for(pilot, lambda: got.exists() and got.read_text().endswith("input\n"),
                       what="notify-send called")
    assert got.read_text().splitlines() == ["--app-name=planeai", "planeai", "--",
                                            f"{a.key} needs input"]
