"""The app shows what each agent did and cost (issue 16): a session's figures in the details
panel, live token / cost counters in the sidebar, a project's spend and its budget. The rows
are written by the real path (the app's observer -> SessionManager.observe -> the metrics
collector reading a Claude-format transcript where Claude Code keeps them)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from conftest import make_repo, trusted_repo_provider
from planeai import config as config_mod
from planeai.services.metrics import MetricsCollector
from test_metrics import _write_transcript
from test_tui_helpers import Services, anyio_backend, make_app, shell_env, wait_for  # noqa: F401

pytestmark = [pytest.mark.timeout(120), pytest.mark.anyio]

SIZE = (140, 36)

# busy for a while (the status history planeai observes), then at its prompt
BUSY_AGENT = """
import sys, time
end = time.time() + 40
while time.time() < end:
    sys.stdout.write("\\x1b[2J\\x1b[H* working (esc to interrupt)\\n"); sys.stdout.flush()
    time.sleep(0.2)
sys.stdout.write("\\x1b[2J\\x1b[H> "); sys.stdout.flush()
time.sleep(60)
"""


def _scripted_provider(repo: Path, tmp_path: Path) -> None:
    """A provider whose records are Claude Code's (``usage = "claude"``), priced like Sonnet."""
    agent = tmp_path / "busy_agent.py"
    agent.write_text(BUSY_AGENT)
    trusted_repo_provider(
        repo, "scripted",
        f'name = "scripted"\nbinary = "python3"\ncommand = ["{sys.executable}", "{agent}"]\n'
        'usage = "claude"\n'
        '[status]\nbusy = ["esc to interrupt"]\nidle = ["^> ?\\\\Z"]\n'
        '[prices]\n"claude-sonnet-*" = { input = 3.0, output = 15.0 }\n')


def _line(app, row_id: str) -> str:
    """The sidebar row as drawn (the right-aligned counters too)."""
    sb = app.sidebar
    index = next(i for i, r in enumerate(sb.rows) if r.id == row_id)
    sb.scroll_to(y=index, animate=False, immediate=True)
    return "".join(seg.text for seg in sb.render_line(index - sb.scroll_offset.y))


def _busy_seconds(text: str) -> int:
    m = re.search(r"busy\s+(?:(\d+)m )?(\d+)s", text)
    return int(m.group(1) or 0) * 60 + int(m.group(2)) if m else -1


@pytest.fixture
def repo(tmp_path):
    return make_repo(tmp_path / "demo")


async def test_busy_session_shows_live_counter_busy_time_tokens_and_cost(
        planeai_home, user_home, repo, tmp_path, shell_env):
    _scripted_provider(repo, tmp_path)
    svc = Services(planeai_home, repo)
    try:
        t = svc.task("Write the parser")
        s = svc.manager.start(task_key=t.key, agent="scripted", backend="local", worktree=False)
        # what Claude Code writes under the agent's HOME for its working directory
        _write_transcript(user_home, s.worktree or str(repo), (1000, 2000, 0, 0))
        app = make_app(svc)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.loads > 0, what="data")
            assert app.sidebar.select_id(f"t:{t.key}")
            # the sidebar: a compact live counter on the busy session
            await wait_for(pilot, lambda: "3k tok $0.03" in _line(app, f"t:{t.key}"),
                           what="the live counter in the sidebar")
            # the pane title over the terminal carries it too
            title = str(app.query_one("#pane-title").render())
            assert "3k tok $0.03" in title, title
            await pilot.press("i")  # the details instead of the terminal
            await wait_for(pilot, lambda: not app.terminal_shown, what="details shown")
            # busy time grows as the observer rewrites the row (at most every 5 s)
            await wait_for(pilot, lambda: _busy_seconds(app.details.plain) >= 3,
                           what="busy time in the details")
            text = app.details.plain
            assert f"Session {t.key} (scripted)" in text
            assert "in 1,000  out 2,000  cache write 0  cache read 0" in text
            assert "claude-sonnet-4-6" in text
            assert "$0.03 (est.)" in text          # (1000 * 3 + 2000 * 15) / 1e6
            assert "exit code" in text and "tokens unknown" not in text
            await pilot.press("i")  # back to the terminal
            await wait_for(pilot, lambda: app.terminal_shown, what="terminal again")
    finally:
        svc.close()


async def test_session_of_a_cli_that_records_nothing_says_tokens_unknown(
        planeai_home, user_home, repo, shell_env):
    svc = Services(planeai_home, repo)
    try:
        t = svc.task("Shell work")
        svc.manager.start(task_key=t.key, agent="shell", backend="local", worktree=False)
        app = make_app(svc)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.loads > 0, what="data")
            assert app.sidebar.select_id(f"t:{t.key}")
            await wait_for(pilot, lambda: app.terminal_shown, what="the terminal")
            await pilot.press("i")
            await wait_for(pilot, lambda: "tokens unknown" in app.details.plain,
                           what="tokens unknown in the details")
            text = app.details.plain
            assert "wall time" in text and "busy" in text
            assert "(est.)" not in text and "0 tok" not in text
            assert "tok" not in _line(app, f"t:{t.key}")  # no counter: unknown is not zero
    finally:
        svc.close()


async def test_project_over_budget_shows_the_mark_and_what_is_left_once_raised(
        planeai_home, user_home, repo, tmp_path, shell_env):
    from datetime import datetime, timezone

    svc = Services(planeai_home, repo)
    try:
        wt = tmp_path / "wt"
        wt.mkdir()
        t = svc.task("Expensive")
        s = svc.store.add_session(id="c0ffee00", name=t.key, project=svc.project,
                                  task_key=t.key, provider="claude", variant=None,
                                  backend="local", worktree=str(wt), branch=None,
                                  autonomous=False, argv=["claude"])
        _write_transcript(user_home, str(wt), (0, 100_000, 0, 0))  # $1.50 of Sonnet output
        s = svc.store.update_session(s.id, state="exited", exit_code=0,
                                     exited_at=datetime.now(timezone.utc).isoformat())
        name = svc.project.name

        def budget(usd: float):
            svc.locs.config_file.write_text(
                f'[defaults]\nprovider = "shell"\n[budgets]\nprojects = {{ {name} = {usd} }}\n')
            return config_mod.load(user_file=svc.locs.config_file)

        svc.manager.config = budget(1.0)
        MetricsCollector(svc.store, svc.manager.config, svc.manager.registry,
                         {"HOME": str(user_home)}).update(s)
        app = make_app(svc, reconcile=False)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.loads > 0, what="data")
            assert app.sidebar.select_id("p:1")
            await wait_for(pilot, lambda: "over budget" in _line(app, "p:1"),
                           what="the budget mark on the project row")
            await wait_for(pilot, lambda: "no new work starts" in app.details.plain,
                           what="the project summary")
            text = app.details.plain
            assert "spent today  $1.50 (est.)" in text
            assert "spent total  $1.50 (est.), 1 session" in text
            assert "over budget: no new work starts" in text
            svc.manager.config = budget(5.0)  # raised: the mark goes, what is left shows
            await wait_for(pilot, lambda: "$3.50 left" in app.details.plain,
                           what="the budget left")
            await wait_for(pilot, lambda: "over budget" not in _line(app, "p:1"),
                           what="the budget mark gone")
    finally:
        svc.close()
