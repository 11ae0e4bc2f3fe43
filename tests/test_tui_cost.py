"""The app's cost grows with change, not with size (issue 17): a tmux session is read when
tmux says it changed, the board applies a store event to the rows it touches, and the live
view's first screen and later output are ordered. Real tmux on a private socket, a real
store and repo, and the app driven by Textual's pilot."""

from __future__ import annotations

import collections
import os
import secrets
import shutil
import subprocess
import threading

import pytest

from conftest import planeai_cmd
from planeai.core.models import SessionState
from test_tui_helpers import (Services, anyio_backend, make_app, row_ids,  # noqa: F401
                              row_text, services, session_of, shell_env, wait_for)

pytestmark = [pytest.mark.timeout(180), pytest.mark.anyio]

SIZE = (140, 36)


@pytest.fixture
def tmux_services(services: Services, tmp_path, monkeypatch):
    """``services`` whose tmux backend is a private server (killed at the end)."""
    if shutil.which("tmux") is None:
        pytest.skip("tmux not installed")
    sock = f"test-{secrets.token_hex(4)}"
    monkeypatch.setenv("TMUX_TMPDIR", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    services.config.data["tmux"]["socket"] = sock
    services.manager.env.update(TMUX_TMPDIR=str(tmp_path), HOME=str(tmp_path))
    yield services
    subprocess.run(["tmux", "-L", sock, "kill-server"], capture_output=True)


def count_captures(monkeypatch, backend) -> collections.Counter:
    """Every screen read of ``backend`` (what the observer pays per session), by name."""
    counts: collections.Counter = collections.Counter()
    real = backend.snapshot

    def snapshot(name: str):
        counts[name] += 1
        return real(name)

    monkeypatch.setattr(backend, "snapshot", snapshot)
    return counts


async def test_idle_tmux_session_is_read_only_when_tmux_says_it_changed(tmux_services,
                                                                       monkeypatch):
    from planeai.tui import workers

    svc = tmux_services
    # no safety re-check in this test: what the app learns, it learns from tmux's notices
    monkeypatch.setattr(workers, "SAFETY_RECHECK", 1e9)
    svc.task("Quiet one")
    svc.task("Chatty one")
    for key in ("DEM-1", "DEM-2"):
        svc.manager.start(task_key=key, backend="tmux")
    be = svc.manager.backend("tmux")
    counts = count_captures(monkeypatch, be)
    app = make_app(svc)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: all(
            (s := session_of(app, k)) is not None and s.agent_status == "idle"
            for k in ("DEM-1", "DEM-2")), what="both sessions observed idle")
        quiet, chatty = counts["DEM-1"], counts["DEM-2"]
        rounds = app.observe_rounds
        await wait_for(pilot, lambda: app.observe_rounds >= rounds + 10,
                       what="ten more observer rounds")
        assert counts["DEM-1"] == quiet and counts["DEM-2"] == chatty, \
            f"idle sessions read again: {counts}"

        # output in one of them (typed from outside the app): that one is read, the other not
        be.write("DEM-2", b"echo hello-from-outside\r")
        await wait_for(pilot, lambda: counts["DEM-2"] > chatty, what="changed session read")
        await wait_for(pilot, lambda: session_of(app, "DEM-2").agent_status == "idle",
                       what="idle again after the echo")
        assert counts["DEM-1"] == quiet

        # its end comes in the stream too (the wrapper's end mark: with remain-on-exit no
        # tmux notification says a pane died), with no safety re-check in this test
        be.write("DEM-2", b"exit 7\r")
        await wait_for(pilot, lambda: session_of(app, "DEM-2").state is SessionState.EXITED,
                       what="the exit recorded")
        assert session_of(app, "DEM-2").exit_code == 7
        assert counts["DEM-1"] == quiet

        # the whole server dies (no end mark can come): the idle one is seen lost at once
        subprocess.run(["tmux", "-L", be.socket, "kill-server"], env=be.env,
                       capture_output=True)
        await wait_for(pilot, lambda: session_of(app, "DEM-1").state is SessionState.EXITED,
                       what="the idle session lost with its server")


def cli(*args: str) -> None:
    r = subprocess.run(planeai_cmd() + list(args), capture_output=True, text=True,
                       env=os.environ.copy(), timeout=60)
    assert r.returncode == 0, r.stderr


async def test_changes_made_elsewhere_touch_their_rows_without_a_full_reload(services):
    """Another process adds, blocks, moves and deletes tasks: each shows in the app, applied
    as a change to the rows it touches (the app never reads the whole board again)."""
    services.task("Blocker")
    services.task("Already here")
    app = make_app(services)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.loads > 0, what="first load")
        loads = app.loads
        cli("task", "add", "From outside", "--project", "demo", "--blocked-by", "DEM-1")
        await wait_for(pilot, lambda: "t:DEM-3" in row_ids(app), what="task added by the CLI")
        assert "From outside" in row_text(app, "t:DEM-3")
        assert "⊘DEM-1" in row_text(app, "t:DEM-3")
        assert row_text(app, "p:1").endswith("3 tasks")

        # the blocker is done: the task it blocked is re-read too, and shows unblocked
        cli("task", "done", "DEM-1")
        await wait_for(pilot, lambda: "⊘" not in row_text(app, "t:DEM-3"),
                       what="DEM-3 unblocked")
        ids = row_ids(app)
        assert "t:DEM-1" not in ids  # the Done group starts folded
        assert "Done (1)" in row_text(app, "g:1:done")
        assert "To do (2)" in row_text(app, "g:1:todo")

        cli("task", "delete", "DEM-2")
        await wait_for(pilot, lambda: "t:DEM-2" not in row_ids(app), what="DEM-2 gone")
        assert row_text(app, "p:1").endswith("2 tasks")
        assert app.changes_applied >= 3
        assert app.loads == loads, "a change elsewhere read the whole board again"

        # a project added elsewhere is the one thing that reads everything again
        from conftest import make_repo

        cli("project", "add", str(make_repo(services.locs.config_dir.parent / "other")))
        await wait_for(pilot, lambda: app.loads > loads, what="full reload for a project")
        await wait_for(pilot, lambda: "p:2" in row_ids(app), what="second project shown")


async def test_a_task_added_elsewhere_redraws_only_the_lines_it_changed(services, monkeypatch):
    """A project row selected, another process adds a task: the details pane shows the new
    count by drawing again only the line that changed, and the project's figures (from
    sessions' metrics, which a task leaves alone) are not asked for again."""
    from planeai.tui import main_pane

    monkeypatch.setattr(main_pane, "FIGURES_AGE", 0.0)  # a re-read would not wait its turn
    services.task("Already here")
    app = make_app(services)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.loads > 0, what="first load")
        assert app.sidebar.select_id("p:1")
        await wait_for(pilot, lambda: "p:1" in app.figures and "To do 1" in app.details.plain,
                       what="the project's details with its figures")
        asked = []
        real_ask = app._ask_figures
        monkeypatch.setattr(app, "_ask_figures", lambda *a, **k: (asked.append(a),
                                                                  real_ask(*a, **k)))
        lines = app.details.lines_repainted
        cli("task", "add", "From outside", "--project", "demo")
        await wait_for(pilot, lambda: "To do 2" in app.details.plain, what="the new count")
        await pilot.pause()
        assert "From outside" in row_text(app, "t:DEM-2")
        assert 1 <= app.details.lines_repainted - lines <= 2, "the whole pane was drawn again"
        assert asked == [], "figures read again for a change of tasks"
        # moving to another row still reads that row's figures
        assert app.sidebar.select_id("t:DEM-2")
        await wait_for(pilot, lambda: asked, what="figures asked for the task")


def painted(widget, textual: bool = False, crop=None) -> list[list]:
    """The lines ``widget`` gives the compositor (its own path, or Textual's general one
    with its line cache emptied), as segments."""
    from textual.geometry import Region
    from textual.widget import Widget

    crop = crop or Region(0, 0, widget.size.width, widget.size.height)
    if textual:
        widget._styles_cache.clear()
        return [list(s) for s in Widget.render_lines(widget, crop)]
    return [list(s) for s in widget.render_lines(crop)]


async def test_sidebar_lines_are_painted_as_textual_would_paint_them(services):
    """The sidebar hands the compositor its cached lines directly: the picture is the one
    Textual's own painting gives (focused or not, whole or cut, with the scrollbar)."""
    from textual.geometry import Region

    for i in range(60):
        services.task(f"Task number {i}", priority=i % 3)
    app = make_app(services)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "t:DEM-60" in row_ids(app), what="tasks shown")
        sb = app.sidebar
        assert sb.virtual_size.height > sb.size.height, "no scrollbar: the test needs one"
        for focused in (True, False):
            (sb.focus if focused else app.set_focus)(*(() if focused else (None,)))
            await pilot.pause()
            assert sb.has_focus == focused
            h, w = sb.size.height, sb.size.width
            for crop in (None, Region(3, 2, 10, 5), Region(0, h - 10, w, 10)):
                assert painted(sb, crop=crop) == painted(sb, textual=True, crop=crop)
        sb.action_jump(-1)  # scrolled to the end: blank lines under the last row
        await pilot.pause()
        assert painted(sb) == painted(sb, textual=True)


async def test_a_task_inserted_above_repaints_the_rows_below_from_cache(services):
    """Another process adds a task near the top of a long list: every row below it moves
    down a line, and each is painted with the very line it had (its filtered, cut and
    terminal forms cached with it); only the new row and the counts are drawn anew."""
    for i in range(60):
        services.task(f"Task number {i}")
    app = make_app(services)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "t:DEM-60" in row_ids(app), what="tasks shown")
        sb = app.sidebar
        sb.focus()
        assert sb.select_id("t:DEM-15")  # the cursor below the new row: it moves with its row
        await pilot.pause()

        def lines_by_row() -> dict:
            top = sb.scroll_offset.y
            lines = sb.render_lines(Region(0, 0, sb.size.width, sb.size.height))
            return {sb.rows[top + y].id: (y, strip) for y, strip in enumerate(lines)
                    if top + y < len(sb.rows)}

        from textual.geometry import Region

        before = lines_by_row()
        built = []
        real = sb._segments
        sb._segments = lambda row: (built.append(row.id), real(row))[1]
        cli("task", "add", "Urgent from outside", "-p", "9", "--project", "demo")
        await wait_for(pilot, lambda: "t:DEM-61" in row_ids(app), what="task added")
        await pilot.pause()
        after = lines_by_row()
        assert "Urgent from outside" in "".join(s.text for _, s in [after["t:DEM-61"]])
        moved = [rid for rid in before if rid in after and after[rid][0] == before[rid][0] + 1]
        assert len(moved) > 20, f"the rows below the new one did not move down: {moved}"
        fresh = [rid for rid in moved if after[rid][1] is not before[rid][1]]
        assert fresh == [], f"rows that only moved were painted anew: {fresh}"
        assert set(built) <= {"t:DEM-61", "p:1", "g:1:todo"}, built


async def test_plain_detail_rows_are_drawn_as_textual_draws_them(services):
    """The details pane draws plain key / value rows straight to lines (a project's task
    counts change with every task added): the same segments Textual's renderer gives."""
    from textual.visual import Visual, visualize

    from planeai.tui.details import KV

    services.task("Already here")
    app = make_app(services)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.loads > 0, what="first load")
        assert app.sidebar.select_id("p:1")
        await wait_for(pilot, lambda: "To do 1" in app.details.plain, what="project shown")
        d = app.details
        kv = KV([("key", "DEM"), ("path", "/tmp/some repo"), ("tasks", "To do 1, Done 20"),
                 ("sessions", "0 running")])
        for width in (d.size.width, 40):
            mine = d._plain_kv(kv, width)
            assert mine is not None
            theirs = Visual.to_strips(d, visualize(d, kv, markup=False), width, None,
                                      d.visual_style)
            assert [list(s) for s in mine] == [list(s) for s in theirs]
        # not plain (markup-like, too wide): Textual draws it
        assert d._plain_kv(KV([("a", "[b]x")]), 40) is None
        assert d._plain_kv(kv, 12) is None


async def test_typing_into_a_tmux_session_always_shows_the_echo(tmux_services, monkeypatch):
    """The live view's screen and the output after it are one ordered stream: what is typed
    always shows, and the view ends equal to the pane. Was lost when the screen and the
    stream came over two tmux clients in no set order: a screen read a moment before an
    echo and handed over after it painted over it."""
    from conftest import retry_until

    svc = tmux_services
    svc.task("Typed into")
    svc.manager.start(task_key="DEM-1", backend="tmux")
    be = svc.manager.backend("tmux")
    typed: list[str] = []
    real = be.snapshot

    def snapshot(name: str):
        """A screen read for a repaint: the person types right after it was taken (the
        race, made certain), and it is handed over once the echo has reached the view."""
        snap = real(name)
        if threading.current_thread().name.startswith("tmux-re") and typed:
            word = typed.pop()
            be.write(name, f"echo {word}\r".encode())
            try:  # the echo and the prompt after it drawn: nothing more will come
                retry_until(lambda: f"\n{word}" in app.term.screen_text() and _same_screen(
                    app.term.screen_text(), real(name).text), timeout=5)
            except AssertionError:
                pass
        return snap

    monkeypatch.setattr(be, "snapshot", snapshot)
    app = make_app(svc)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.loads > 0, what="first load")
        for i in range(6):
            # away (the view lets the session go) and back: a fresh first screen each time
            assert app.sidebar.select_id("p:1")
            await wait_for(pilot, lambda: app.term.session_name is None, what="view closed")
            assert app.sidebar.select_id("t:DEM-1")
            await wait_for(pilot, lambda: app.term.session_name == "DEM-1", what="view open")
            app.term.focus()
            await pilot.press(*f"echo k{i}x", "enter")
            await wait_for(pilot, lambda: f"\nk{i}x" in app.term.screen_text(),
                           what=f"echo {i} in the view")
            await wait_for(pilot, lambda: _same_screen(app.term.screen_text(),
                                                       real("DEM-1").text),
                           what=f"view {i} equal to the pane")

            # tmux drops the view's client (a person's `tmux detach-client`, a slow reader):
            # the view gets its screen again, and what is typed meanwhile still shows
            typed.append(f"r{i}x")
            screens = getattr(app.term, "screens", 0)
            out = subprocess.run(["tmux", "-L", be.socket, "list-clients", "-F",
                                  "#{client_name} #{session_name}"],
                                 capture_output=True, text=True, env=be.env).stdout
            for line in out.splitlines():
                client, _, session = line.partition(" ")
                if session == "DEM-1":
                    subprocess.run(["tmux", "-L", be.socket, "detach-client", "-t", client],
                                   capture_output=True, env=be.env)
            await wait_for(pilot, lambda: "DEM-1" in be.ctl().watched, what="watched again")
            await wait_for(pilot, lambda: not typed or getattr(app.term, "screens", 0) > screens,
                           what="the view's screen again")
            if typed:  # its screen came in the stream (none was read apart): type now
                await pilot.press(*f"echo {typed.pop()}", "enter")
            await wait_for(pilot, lambda: f"\nr{i}x" in real("DEM-1").text,
                           what=f"echo r{i} in the pane")
            await wait_for(pilot, lambda: not any(t.name.startswith("tmux-re")
                                                  for t in threading.enumerate()),
                           what="the backend's repaint done")
            await wait_for(pilot, lambda: _same_screen(app.term.screen_text(),
                                                       real("DEM-1").text),
                           what=f"view equal to the pane after the repaint {i}")


def _same_screen(view: str, pane: str) -> bool:
    strip = lambda s: [ln.rstrip() for ln in s.rstrip().splitlines()]  # noqa: E731
    return strip(view)[-4:] == strip(pane)[-4:]


def test_rows_built_from_changes_equal_rows_built_from_scratch():
    """Applying changes to the rows they touch (a group built again, a new task's row put
    in place) gives exactly the rows a full build gives: random boards, random changes
    (tasks added as roots and as subtasks, moved, re-prioritised, deleted; sessions
    added, updated and archived), with groups folded and unfolded."""
    import random

    from planeai.core.models import Project, Session, SessionState, Status, Task
    from planeai.services.board import BoardChange
    from planeai.tui.model import Data, build_rows

    rng = random.Random(17)
    statuses = list(Status)

    def task(n: int, pid: int, parent: str | None = None) -> Task:
        return Task(n, pid, f"p{pid}", f"P{pid}-{n}", f"task {n}", "", rng.choice(statuses),
                    rng.randint(-1, 3), parent, None, None, "", "")

    def session(i: int, t: Task | None, pid: int) -> Session:
        return Session(f"{i:08x}", f"S{i}", pid, f"p{pid}", t.key if t else None, "shell",
                       None, "local", None, None, SessionState.RUNNING,
                       rng.choice(["busy", "idle", "needs_input"]), None, None, False, [],
                       f"{i:06d}", "", None)

    for trial in range(40):
        projects = [Project(pid, f"p{pid}", f"P{pid}", "/", None, False, "") for pid in (1, 2)]
        tasks: list[Task] = []
        n = 0
        for _ in range(rng.randint(0, 40)):
            n += 1
            pid = rng.choice((1, 2))
            same = [t for t in tasks if t.project_id == pid]
            parent = rng.choice(same).key if same and rng.random() < 0.3 else None
            tasks.append(task(n, pid, parent))
        sessions = [session(i, rng.choice(tasks) if tasks and rng.random() < 0.8 else None,
                            rng.choice((1, 2))) for i in range(rng.randint(0, 8))]
        sessions = [s if s.task_key is None else Session(**{
            **s.__dict__, "project_id": next(t.project_id for t in tasks if t.key == s.task_key)})
            for s in sessions]
        data = Data(projects, tasks, sessions, loaded=True)
        collapsed = {f"g:1:{rng.choice(statuses).value}"} if rng.random() < 0.5 else set()
        expanded = {"g:2:done"} if rng.random() < 0.5 else set()
        blocks: dict = {}
        build_rows(data, collapsed, expanded, blocks=blocks)
        sid = 100
        for step in range(6):
            change = BoardChange()
            for _ in range(rng.randint(1, 4)):
                kind = rng.random()
                known = list(data.task_by_key.values())
                if kind < 0.4 or not known:
                    n += 1
                    pid = rng.choice((1, 2))
                    same = [t for t in known + change.tasks if t.project_id == pid]
                    parent = rng.choice(same).key if same and rng.random() < 0.3 else None
                    change.tasks.append(task(n, pid, parent))
                elif kind < 0.7:
                    t = rng.choice(known)
                    change.tasks.append(Task(**{**t.__dict__, "status": rng.choice(statuses),
                                                "priority": rng.randint(-1, 3)}))
                elif kind < 0.8:
                    change.gone_tasks.append(rng.choice(known).key)
                elif kind < 0.9:
                    sid += 1
                    t = rng.choice(known)
                    change.sessions.append(session(sid, t, t.project_id))
                elif data.session_by_id:
                    change.gone_sessions.append(rng.choice(list(data.session_by_id)))
            # a change names each task once, as the board feed reads it
            last = {t.key: t for t in change.tasks}
            change.tasks = [t for t in last.values() if t.key not in change.gone_tasks]
            dirty = data.apply(change)
            fast = build_rows(data, collapsed, expanded, blocks=blocks, dirty=dirty,
                              inserts=data.last_inserts)
            full = build_rows(Data(projects, list(data.tasks), list(data.sessions),
                                   loaded=True), collapsed, expanded)
            assert fast == full, f"trial {trial} step {step}"
            assert data.tasks == list(data.task_by_key.values())
