"""The app's Jira / Plane section (planeai.tui.trackers), driven by Textual's pilot against
local servers that follow the published APIs (tests/support/fake_jira.py, fake_plane.py):
synced items, hostile text, taking an item into a project, sync now with progress, the
periodic sync."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import pytest

from conftest import make_repo
from support.fake_jira import FakeJira
from support.fake_plane import FakePlane
from planeai.tui.trackers import short_time
from test_tui_helpers import (Services, anyio_backend, make_app,  # noqa: F401
                              services, shell_env, wait_for)

pytestmark = [pytest.mark.timeout(120), pytest.mark.anyio]

SIZE = (140, 36)
TOKEN = "jira-token-" + uuid.uuid4().hex[:8]


class TrackerServices(Services):
    """Services (tests/test_tui_helpers.py) with tracker settings in the user config."""

    def __init__(self, home: Path, repo: Path, extra: str) -> None:
        from planeai import config
        from planeai.paths import locations
        from planeai.services.context import open_store
        from planeai.services.projects import add_project
        from planeai.services.sessions import SessionManager

        self.locs = locations()
        self.locs.config_dir.mkdir(parents=True, exist_ok=True)
        self.locs.config_file.write_text('[defaults]\nprovider = "shell"\n'
                                         '[secrets]\nstore = "file"\n' + extra)
        self.config = config.load(user_file=self.locs.config_file)
        self.store = open_store(self.locs)
        self.project = add_project(self.store, repo)[0]
        self.manager = SessionManager(self.store, self.config, self.locs)


@pytest.fixture
def jira():
    fake = FakeJira(token=TOKEN).start()
    try:
        yield fake
    finally:
        fake.stop()


def jira_config(jira: FakeJira, sync_interval: int = 0) -> str:
    return (f'[jira]\nurl = "{jira.url}"\nemail = "{jira.email}"\n'
            f'sync_interval = {sync_interval}\n'
            '[jira.filters]\nmine = "assignee = currentUser()"\n')


@pytest.fixture
def jira_services(planeai_home, tmp_path, shell_env, jira, monkeypatch):
    monkeypatch.setenv("JIRA_API_TOKEN", TOKEN)
    svc = TrackerServices(planeai_home, make_repo(tmp_path / "demo"), jira_config(jira))
    yield svc
    svc.close()


def sync(svc) -> None:
    """A `planeai jira sync`, before the app starts."""
    from planeai.services import trackers

    client = trackers.open_jira(svc.config, svc.locs)
    try:
        report = trackers.sync(svc.store, svc.config, client)
    finally:
        client.close()
    assert not report.errors, report.errors


def section_text(app) -> list[str]:
    """Every row of the section as it renders now (the Strips the screen shows)."""
    sec = app.trackers
    return [sec.row_text(r.id) for r in sec.rows]


def item_row(app, key: str) -> str:
    rows = [t for t in section_text(app) if t.strip().startswith(key + " ")]
    assert len(rows) == 1, (key, section_text(app))
    return rows[0]


async def shown(pilot, app, cond, what: str):
    await wait_for(pilot, lambda: app.loads > 0 and app.trackers.loads > 0 and cond(),
                   what=what)


# ---------------------------------------------------------------------- the section
async def test_the_section_is_hidden_without_a_tracker(services):
    app = make_app(services)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.loads > 0, what="first load")
        assert not app.trackers.display and app.trackers.rows == []
        await pilot.press("U")
        await pilot.pause()
        assert any("no tracker configured" in n.message for n in app._notifications)


async def test_synced_items_show_with_gone_marked_and_taken_task_keys(jira_services, jira):
    from planeai.services import trackers

    for i in range(1, 4):
        jira.add_issue(f"PROJ-{i}", f"Issue number {i}", status="In Progress")
    sync(jira_services)
    task = trackers.take(jira_services.store, jira_services.config, "PROJ-2", "demo")
    jira.remove("PROJ-3")
    sync(jira_services)
    app = make_app(jira_services)
    async with app.run_test(size=SIZE) as pilot:
        await shown(pilot, app, lambda: len(app.trackers.rows) == 4, what="jira rows")
        head, *_ = section_text(app)
        assert head.startswith("▾ Jira · mine (2)")
        last = jira_services.store.tracker_sync_state("jira", "mine").last_sync
        assert head.rstrip().endswith(short_time(last))      # when it last synced
        assert "PROJ-1 In Progress Issue number 1" in item_row(app, "PROJ-1")
        assert item_row(app, "PROJ-2").rstrip().endswith(f"→ {task.key}")
        assert item_row(app, "PROJ-3").rstrip().endswith("✗ gone")
        # the section sits under the projects, in the left column
        assert app.trackers.parent is app.sidebar.parent and app.trackers.region.y > 0
        # a sync elsewhere (its tracker.synced event) shows at once
        jira.add_issue("PROJ-4", "Came in later")
        sync(jira_services)
        await wait_for(pilot, lambda: any("Came in later" in t for t in section_text(app)),
                       what="the new item")
        assert section_text(app)[0].startswith("▾ Jira · mine (3)")
        # J moves the focus to it and back
        await pilot.press("J")
        assert app.focused is app.trackers
        await pilot.press("escape")
        assert app.focused is app.sidebar


async def test_a_hostile_summary_renders_inert_on_one_line(jira_services, jira):
    canary = f"/tmp/pwned-{uuid.uuid4().hex}"
    hostile = (f"[b]x[/b] $(touch {canary}) \x1b[31mRED\x1b[0m \x1b]2;owned\x07 "
               + "A" * 10_000 + "\nsecond line\r\nthird")
    jira.add_issue("PROJ-1", hostile, status="\x1b[2JTo Do\n")
    jira.add_issue("PROJ-2", "Plain neighbour")
    sync(jira_services)
    assert jira_services.store.tracker_item("jira", "PROJ-1").title == hostile  # stored as is
    app = make_app(jira_services)
    async with app.run_test(size=SIZE) as pilot:
        await shown(pilot, app, lambda: len(app.trackers.rows) == 3, what="jira rows")
        sec = app.trackers
        width = sec.size.width
        assert width > 20
        for y in range(len(sec.rows)):    # what the screen draws, line by line
            strip = sec.render_line(y)
            assert strip.cell_length == width
            assert not any(c in strip.text for c in "\x1b\x07\r\n")
        row = item_row(app, "PROJ-1")
        assert "[2JTo Do [b]x[/b] $(touch /tmp/pw" in row     # as text, not markup
        assert "second line" not in row and row.endswith("…")   # cut, not wrapped
        assert len(row) == width
        # one row per item: the newlines made no rows of their own
        assert [r.id for r in sec.rows].count(sec.rows[1].id) == 1
        assert "Plain neighbour" in item_row(app, "PROJ-2")
        # the take dialog shows it the same way
        sec.select_id(sec.rows[1].id)
        await pilot.press("T")
        from planeai.tui.tracker_dialogs import TakeDialog

        await wait_for(pilot, lambda: isinstance(app.screen, TakeDialog), what="take dialog")
        label = app.screen.query_one("#item")
        title = str(label.render())
        assert "\x1b" not in title and "\n" not in title and "second line" not in title
        assert f"[b]x[/b] $(touch {canary}) [31mRED [0m ]2;owned AAAA" in title
        assert label.size.height == 1
        await pilot.press("escape")


# ---------------------------------------------------------------------- take
async def test_taking_an_item_from_the_app_creates_the_task(jira_services, jira):
    from planeai.services import trackers
    from planeai.tui.tracker_dialogs import TakeDialog

    jira.add_issue("PROJ-1", "Fix the login page", priority="High")
    jira.add_issue("PROJ-2", "Write the docs")
    sync(jira_services)
    app = make_app(jira_services)
    async with app.run_test(size=SIZE) as pilot:
        await shown(pilot, app, lambda: len(app.trackers.rows) == 3, what="jira rows")
        await pilot.press("J")
        await pilot.press("down")          # the header, then PROJ-1
        assert app.trackers.current_item.external_key == "PROJ-1"
        await pilot.press("T")
        await wait_for(pilot, lambda: isinstance(app.screen, TakeDialog), what="take dialog")
        assert "PROJ-1" in str(app.screen.query_one("#what").render())
        await pilot.press("enter")         # the highlighted project: demo
        await wait_for(pilot, lambda: any(t.title == "Fix the login page"
                                          for t in app.data.tasks), what="the new task")
        task = next(t for t in app.data.tasks if t.title == "Fix the login page")
        assert task.priority == 1          # Jira's High
        assert jira_services.store.tracker_item("jira", "PROJ-1").task_key == task.key
        await wait_for(pilot, lambda: item_row(app, "PROJ-1").rstrip().endswith(
            f"→ {task.key}"), what="the task key in the section")
        await wait_for(pilot, lambda: app.sidebar.current is not None
                       and app.sidebar.current.id == f"t:{task.key}", what="task selected")

        # taken meanwhile elsewhere: the refusal stays in the dialog with the reason
        app.trackers.focus()
        assert app.trackers.select_id(f"i:jira:{jira.issues['PROJ-2']['id']}")
        await pilot.press("enter")         # enter in the section takes too
        await wait_for(pilot, lambda: isinstance(app.screen, TakeDialog), what="take dialog")
        other = trackers.take(jira_services.store, jira_services.config, "PROJ-2", "demo")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, TakeDialog)
                       and app.screen.error, what="the refusal in the dialog")
        assert f"taken already: task {other.key}" in str(app.screen.query_one("#error").render())
        await pilot.press("escape")
        assert len([t for t in app.data.tasks if t.title == "Write the docs"]) <= 1
    assert len([t for t in jira_services.store.list_tasks()
                if t.title == "Write the docs"]) == 1


# ---------------------------------------------------------------------- sync
async def test_sync_now_shows_progress_and_ends_with_the_counts(jira_services, jira):
    for i in range(1, 251):
        jira.add_issue(f"PROJ-{i}", f"Issue number {i}")
    # hold the second page until the first one's progress was seen on screen
    gate = threading.Event()
    handler = jira.server.RequestHandlerClass
    search = handler._search

    def held(self, req):
        if req.get("nextPageToken"):
            gate.wait(60)
        return search(self, req)

    handler._search = held
    app = make_app(jira_services)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await shown(pilot, app, lambda: True, what="the section")
            assert "nothing synced yet" not in " ".join(section_text(app))  # mine, configured
            await pilot.press("U")
            await wait_for(pilot, lambda: any("syncing: page 1 · 100 items" in t
                                              for t in section_text(app)),
                           what="page 1's progress on screen")
            gate.set()
            done = "✓ 250 items: 250 new, 0 updated, 0 gone"
            await wait_for(pilot, lambda: any(done in t for t in section_text(app)),
                           what="the counts")
            await wait_for(pilot, lambda: section_text(app)[0].startswith(
                "▾ Jira · mine (250)"), what="the items")
            seen = [p for p in app.trackers.progress_shown if "page" in p]
            assert [p for p in seen if "page 2 · 200 items" in p or "page 3 · 250 items" in p]
            assert any("mine: 250 items: 250 new, 0 updated, 0 gone (3 pages)" in n.message
                       for n in app._notifications)
            assert len(app.trackers.rows) == 2 + 250
    finally:
        gate.set()


async def test_a_failing_sync_says_why_in_the_section(jira_services, jira):
    jira.add_issue("PROJ-1", "One")
    jira.token = "rotated"
    app = make_app(jira_services)
    async with app.run_test(size=SIZE) as pilot:
        await shown(pilot, app, lambda: True, what="the section")
        await pilot.press("U")
        await wait_for(pilot, lambda: any(t.strip().startswith("! ") and "401" in t
                                          for t in section_text(app)), what="the error")
        await wait_for(pilot, lambda: "! " in section_text(app)[0], what="error in header")
        assert any(n.severity == "error" for n in app._notifications)


async def test_the_app_syncs_by_itself_per_sync_interval(planeai_home, tmp_path, shell_env,
                                                         jira, monkeypatch):
    """Not dispatching: the section pokes the periodic poller ([jira] sync_interval)."""
    monkeypatch.setenv("JIRA_API_TOKEN", TOKEN)
    jira.add_issue("PROJ-1", "Found without a key press")
    svc = TrackerServices(planeai_home, make_repo(tmp_path / "demo"),
                          jira_config(jira, sync_interval=300))
    try:
        app = make_app(svc)
        async with app.run_test(size=SIZE) as pilot:
            assert not app.dispatching
            await shown(pilot, app, lambda: any("Found without a key press" in t
                                                for t in section_text(app)),
                        what="the periodic sync's item")
            assert jira.search_calls == 1
    finally:
        svc.close()


async def test_a_failing_periodic_sync_shows_its_reason(planeai_home, tmp_path, shell_env,
                                                        jira, monkeypatch):
    """No token: the periodic pass fails without an event; the section still says why."""
    monkeypatch.delenv("JIRA_API_TOKEN", raising=False)
    svc = TrackerServices(planeai_home, make_repo(tmp_path / "demo"),
                          jira_config(jira, sync_interval=300))
    try:
        app = make_app(svc)
        async with app.run_test(size=SIZE) as pilot:
            await shown(pilot, app, lambda: section_text(app)[0].rstrip().endswith(
                "! sync failed") and section_text(app)[1].startswith(
                "  ! no Jira API token"), what="the failure and its reason")
            assert jira.search_calls == 0
    finally:
        svc.close()


# ---------------------------------------------------------------------- Plane
async def test_plane_items_show_under_their_project_and_take_into_it(
        planeai_home, tmp_path, shell_env, monkeypatch):
    from planeai.services.plane_sync import PlaneSync, plane_client
    from planeai.tui.tracker_dialogs import TakeDialog

    fake = FakePlane().start()
    try:
        pid = fake.add_project("WEB")
        fake.add_item(pid, "Make the header sticky")
        monkeypatch.setenv("PLANE_API_KEY", fake.api_key)
        repo = make_repo(tmp_path / "web")
        svc = TrackerServices(planeai_home, repo,
                              f'[plane]\nurl = "{fake.url}"\nworkspace = "{fake.workspace}"\n'
                              f'projects = {{ "{pid}" = "web" }}\nsync_interval = 0\n')
        try:
            from planeai.services.projects import add_project

            other, _ = add_project(svc.store, make_repo(tmp_path / "other"))
            PlaneSync(svc.store, svc.config, plane_client(svc.config, svc.locs)).sync()
            app = make_app(svc)
            async with app.run_test(size=SIZE) as pilot:
                await shown(pilot, app, lambda: len(app.trackers.rows) == 2, what="plane rows")
                assert section_text(app)[0].startswith("▾ Plane · web (1)")
                assert "WEB-1" in section_text(app)[1]
                # the other project is selected: the dialog offers the mapped one first
                assert app.sidebar.select_id(f"p:{other.id}")
                app.trackers.focus()
                app.trackers.select_id(app.trackers.rows[1].id)
                await pilot.press("T")
                await wait_for(pilot, lambda: isinstance(app.screen, TakeDialog),
                               what="take dialog")
                ol = app.screen.query_one("#projects")
                assert ol.get_option_at_index(ol.highlighted).id == str(svc.project.id)
                await pilot.press("enter")
                await wait_for(pilot, lambda: any("Make the header sticky" in t.title
                                                  for t in app.data.tasks), what="the task")
                task = next(t for t in app.data.tasks)
                key = task.key
                assert task.project_id == svc.project.id
                await wait_for(pilot, lambda: section_text(app)[1].rstrip().endswith(
                    f"→ {key}"), what="the task key")
        finally:
            svc.close()
    finally:
        fake.stop()


# ---------------------------------------------------------------------- picture
def test_snapshot_tracker_section_80x24(jira_services, jira, snap_compare):
    """The left column at 80x24 with the section: a taken item, a gone one, a hostile one."""
    from planeai.services import trackers

    jira_services.task("Set up CI")    # DEM-1, selected: its details hold no URL
    jira.add_issue("PROJ-1", "Fix the login page")
    jira.add_issue("PROJ-2", "\x1b[31m$(touch /tmp/pwned)\x1b[0m" + "x" * 10_000)
    jira.add_issue("PROJ-3", "Old request")
    sync(jira_services)
    trackers.take(jira_services.store, jira_services.config, "PROJ-1", "demo")
    jira.remove("PROJ-3")
    sync(jira_services)
    # a fixed sync time: the header shows it
    jira_services.store.set_tracker_sync_state("jira", "mine",
                                               last_sync="2026-01-01T10:00:00+00:00")
    app = make_app(jira_services, observe=False)

    async def run_before(pilot):
        await wait_for(pilot, lambda: app.loads > 0 and len(app.trackers.rows) == 4
                       and "Jan 01" in app.trackers.row_text("h:jira:mine"),
                       what="the section")
        app.sidebar.select_id("t:DEM-1")
        await pilot.press("J", "down", "down")
        await pilot.pause()

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)
