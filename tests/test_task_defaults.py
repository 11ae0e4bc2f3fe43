"""Every ``defaults.*`` key that applies to tasks reaches tasks made from the CLI and from
the app alike: the task service applies them, not a front end."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from planeai import config
from planeai.services.tasks import SESSION_DEFAULTS, TaskDefaults
from test_tui_helpers import (anyio_backend, make_app, row_ids, services,  # noqa: F401
                              shell_env, wait_for)

# a value for each task default that differs from its built-in default
TASK_VALUES = {"priority": 7}


def test_every_defaults_key_is_a_task_or_a_session_default():
    """A new defaults.* key must be given a home: on tasks (TaskDefaults, and a value in
    TASK_VALUES below so the tests cover it) or at session start."""
    assert set(TaskDefaults.KEYS) == set(TASK_VALUES)
    assert set(config.SCHEMA["defaults"]) == set(TaskDefaults.KEYS) | set(SESSION_DEFAULTS)
    for key, value in TASK_VALUES.items():
        assert config.SCHEMA["defaults"][key].default != value


def _write_defaults(path, extra: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = "\n".join(f"{k} = {json.dumps(v)}" for k, v in TASK_VALUES.items())
    path.write_text(f'[defaults]\nprovider = "shell"\n{body}\n{extra}')


def test_cli_task_add_applies_task_defaults(run_cli, repo):
    from planeai.paths import locations

    _write_defaults(locations().config_file)
    assert run_cli("project", "add", str(repo))[0] == 0
    code, out, err = run_cli("task", "add", "uses defaults", "--json", cwd=repo)
    assert code == 0, err
    t = json.loads(out)
    for key, value in TASK_VALUES.items():
        assert t[key] == value
    # what is given on the command line wins over the default
    t = json.loads(run_cli("task", "add", "explicit", "-p", "0", "--json", cwd=repo)[1])
    assert t["priority"] == 0


def test_cli_repo_config_and_explicit_config_apply_too(run_cli, repo, tmp_path):
    assert run_cli("project", "add", str(repo))[0] == 0
    (repo / ".planeai").mkdir()
    (repo / ".planeai" / "config.toml").write_text("[defaults]\npriority = 3\n")
    assert json.loads(run_cli("task", "add", "a", "--json", cwd=repo)[1])["priority"] == 3
    extra = tmp_path / "extra.toml"
    extra.write_text("[defaults]\npriority = -2\n")
    out = run_cli("--config", str(extra), "task", "add", "b", "--json", cwd=repo)[1]
    assert json.loads(out)["priority"] == -2



@pytest.mark.anyio
@pytest.mark.timeout(120)
async def test_app_new_task_applies_task_defaults(services):
    _write_defaults(services.locs.config_file)
    services.manager.config = config.load(user_file=services.locs.config_file)
    app = make_app(services)
    async with app.run_test(size=(140, 36)) as pilot:
        await wait_for(pilot, lambda: app.loads > 0, what="first data load")
        await pilot.press("n")
        from planeai.tui.task_form import TaskForm

        await wait_for(pilot, lambda: isinstance(app.screen, TaskForm), what="form")
        app.screen.query_one("#title").value = "From the app"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "t:DEM-1" in row_ids(app), what="new task row")
    t = services.store.get_task("DEM-1")
    for key, value in TASK_VALUES.items():
        assert getattr(t, key) == value


def test_task_add_stays_light(repo, tmp_path):
    """`planeai task add` loads config now, and still none of the heavy packages."""
    from conftest import planeai_cmd

    subprocess.run(planeai_cmd() + ["project", "add", str(repo)], check=True,
                   capture_output=True)
    probe = ("import runpy, sys\n"
             "sys.argv = ['planeai', 'task', 'add', 'light']\n"
             "try:\n    runpy.run_module('planeai.cli.main', run_name='__main__')\n"
             "except SystemExit:\n    pass\n"
             "heavy = [m for m in ('textual', 'git', 'keyring', 'libtmux') if m in sys.modules]\n"
             "print('HEAVY', heavy)\n")
    r = subprocess.run([sys.executable, "-c", probe], cwd=repo, capture_output=True, text=True,
                       timeout=60)
    assert "HEAVY []" in r.stdout, r.stdout + r.stderr
