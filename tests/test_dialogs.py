"""First-run dialogs answered per the provider file's [[dialogs]] policy: once per appearance,
logged, only where the policy allows (yolo, planeai's own worktree), never when turned off;
a bad policy is one clear error naming the file and the key."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from conftest import retry_until
from planeai import config as config_mod
from planeai.core import events as ev
from planeai.core.status import AgentStatus
from planeai.errors import ProviderError
from planeai.paths import locations
from planeai.providers import load_provider_file
from planeai.services import tasks as task_svc
from planeai.services.context import open_store
from planeai.services.projects import add_project
from planeai.services.sessions import SessionManager

# An agent that opens with a trust question, takes one line as its answer (logging every line
# it reads, so a second press shows), redraws a little later, then waits at "> ".
ASKER = r'''
import sys, time
log = open(sys.argv[1], "a", buffering=1)
print("Trust this folder?")
print(" ❯ 1. Yes, trust it")
print("   2. No, exit")
line = sys.stdin.readline()
log.write("answer %r\n" % line)
time.sleep(1.0)            # a slow redraw: the question is still on screen meanwhile
print("\x1b[2J\x1b[H", end="")
sys.stdout.write("> "); sys.stdout.flush()
for line in sys.stdin:
    log.write("later %r\n" % line)
'''

POLICY = '''
[[dialogs]]
name = "trust"
match = '^Trust this folder\\?'
keys = ["Enter"]
when = {when}
'''


def _provider(tmp_path: Path, when: str = '"worktree"') -> tuple[str, Path]:
    script = tmp_path / "asker.py"
    script.write_text(ASKER)
    log = tmp_path / "asker.log"
    d = locations().user_providers_dir
    d.mkdir(parents=True, exist_ok=True)
    (d / "asker.toml").write_text(
        f'name = "asker"\ncommand = ["{sys.executable}", "{script}", "{log}", "{{args}}"]\n'
        'yolo_flag = ["--yolo"]\n'
        "[status]\nneeds_input = ['^ ❯ 1\\. ']\nidle = ['^> ?\\Z']\n"
        + POLICY.format(when=when))
    return "asker", log


@pytest.fixture
def m(repo):
    locs = locations()
    with open_store() as s:
        add_project(s, repo)
    cfg = config_mod.load(user_file=None, env={})
    mgr = SessionManager(open_store(locs), cfg, locs,
                         env={**os.environ, "HOME": str(locs.data_dir.parent)})
    yield mgr
    mgr.close()


def _task(m) -> str:
    return task_svc.add_task(m.store, m.store.list_projects()[0], "ask me").key


def _answers(m, session_id: str) -> list:
    return [e for e in m.store.events(limit=10_000)
            if e.kind == ev.SESSION_DIALOG_ANSWERED and e.session_id == session_id]


def _at_prompt(m, sid):
    def check():
        v = m.observe(sid)
        return v.status is AgentStatus.IDLE and v
    return check


def test_dialog_in_own_worktree_answered_once_and_logged(m, tmp_path):
    agent, log = _provider(tmp_path)
    s = m.start(task_key=_task(m), agent=agent, backend="local")
    # every observation while the question is on screen: one press, no needs input
    retry_until(_at_prompt(m, s.id), message="the answered agent at its prompt")
    assert log.read_text().splitlines() == ["answer '\\n'"]
    answered = _answers(m, s.id)
    assert [e.data["dialog"] for e in answered] == ["trust"]
    assert answered[0].data["keys"] == ["Enter"]
    statuses = [e.data["to"] for e in m.store.events(limit=10_000)
                if e.kind == ev.SESSION_STATUS and e.session_id == s.id]
    assert "needs_input" not in statuses


def test_dialog_in_users_checkout_stays_needs_input(m, tmp_path):
    agent, log = _provider(tmp_path)
    s = m.start(task_key=_task(m), agent=agent, backend="local", worktree=False)
    view = retry_until(lambda: (v := m.observe(s.id)).status is AgentStatus.NEEDS_INPUT and v,
                       message="needs input")
    assert "Trust this folder?" in view.snapshot.text  # the question is shown
    assert _answers(m, s.id) == [] and log.read_text() == ""


def test_yolo_condition_and_turning_it_off(m, tmp_path):
    agent, log = _provider(tmp_path, when='["yolo", "worktree"]')
    s = m.start(task_key=_task(m), agent=agent, backend="local", yolo=False)
    retry_until(lambda: m.observe(s.id).status is AgentStatus.NEEDS_INPUT, message="asked")
    assert _answers(m, s.id) == []
    m.stop(s.id)

    m.config.data["dispatch"]["answer_dialogs"] = False
    s = m.start(task_key=_task(m), agent=agent, backend="local", yolo=True)
    retry_until(lambda: m.observe(s.id).status is AgentStatus.NEEDS_INPUT, message="asked")
    assert _answers(m, s.id) == []

    m.config.data["dispatch"]["answer_dialogs"] = True
    retry_until(_at_prompt(m, s.id), message="answered once turned on")
    assert [e.data["dialog"] for e in _answers(m, s.id)] == ["trust"]


@pytest.mark.parametrize("body, says", [
    ('name = "x"\nmatch = "a"\nkeys = ["Enter"]\nwhen = "always"\n',
     "dialog 'x': unknown when 'always'; known: yolo, worktree"),
    ('name = "x"\nmatch = "(a"\nkeys = ["Enter"]\nwhen = "yolo"\n',
     "dialog 'x': match is not a valid regex"),
    ('name = "x"\nmatch = "a"\nkeys = ["Entr"]\nwhen = "yolo"\n',
     "dialog 'x': unknown key name 'Entr' in keys; accepted: Enter"),
    ('name = "x"\nmatch = "a"\nkeys = ["Enter"]\n', "dialogs[0]: missing key 'when'"),
    ('name = "x"\nmatch = "a"\nkeys = ["Enter"]\nwhen = "yolo"\npress = 1\n',
     "dialogs[0]: unknown key 'press'"),
])
def test_bad_dialog_policy_is_one_clear_error(tmp_path, body, says):
    f = tmp_path / "x.toml"
    f.write_text('name = "x"\ncommand = ["true"]\n[[dialogs]]\n' + body)
    with pytest.raises(ProviderError) as e:
        load_provider_file(f)
    assert str(e.value).startswith(f"{f}: ") and says in str(e.value)


@pytest.mark.parametrize("name, expected", [
    ("claude", {"needs_input_bypass": ["bypass-consent"], "needs_input_trust": ["trust-folder"]}),
    ("codex", {"needs_input_trust": ["trust-folder"]}),
])
def test_bundled_policies_match_the_captured_dialogs_only(name, expected):
    root = Path(__file__).resolve().parent.parent
    provider = load_provider_file(root / "providers" / f"{name}.toml")
    screens = root / "tests" / "data" / "screens" / name
    found = {f.stem: [d.name for d in provider.dialogs if d.match.search(f.read_text())]
             for f in screens.glob("*.txt")}
    for stem, dialogs in expected.items():
        assert found.pop(stem) == dialogs
    # a permission prompt, the API-key question, a login or sign-in: for a person
    assert all(v == [] for v in found.values()), found


@pytest.mark.skipif(os.geteuid() != 0, reason="IS_SANDBOX matters only as root")
def test_yolo_as_root_gets_is_sandbox_exactly_1_on_start_and_restart(repo, tmp_path):
    """Claude Code refuses --dangerously-skip-permissions as root unless IS_SANDBOX is "1": an
    inherited "yes" made every yolo start (and a restart, which lost it) exit at once."""
    script = tmp_path / "show.py"
    script.write_text("import os, sys\nprint('IS_SANDBOX=%s' % os.environ.get('IS_SANDBOX'))\n"
                      "sys.stdin.readline()\n")
    d = locations().user_providers_dir
    d.mkdir(parents=True, exist_ok=True)
    (d / "shower.toml").write_text(
        f'name = "shower"\ncommand = ["{sys.executable}", "{script}", "{{args}}"]\n'
        'yolo_flag = ["--yolo"]\n')
    locs = locations()
    with open_store() as s:
        add_project(s, repo)
    m = SessionManager(open_store(locs), config_mod.load(user_file=None, env={}), locs,
                       env={**os.environ, "IS_SANDBOX": "yes"})
    try:
        s = m.start(task_key=_task(m), agent="shower", backend="local", yolo=True)
        shown = retry_until(lambda: (v := m.observe(s.id)).snapshot and "IS_SANDBOX=" in
                            v.snapshot.text and v.snapshot.text, message="the env printed")
        assert "IS_SANDBOX=1" in shown
        m.stop(s.id)
        m.restart(s.id)
        shown = retry_until(lambda: (v := m.observe(s.id)).snapshot and "IS_SANDBOX=" in
                            v.snapshot.text and v.snapshot.text, message="the env printed")
        assert "IS_SANDBOX=1" in shown
    finally:
        m.close()
