"""The dispatcher on real sessions: order, slots, blockers, completion, failure, hooks, lease."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from conftest import retry_until, trusted_repo_provider

from planeai import config as config_mod
from planeai.core.models import Status
from planeai.paths import locations
from planeai.services import tasks as task_svc
from planeai.services import trust
from planeai.services.context import open_store
from planeai.services.dispatch import Dispatcher
from planeai.services.projects import add_project
from planeai.services.sessions import LIVE_STATES, SessionManager

AGENT = Path(__file__).parent / "support" / "scripted_agent.py"


@pytest.fixture
def project(repo):
    trusted_repo_provider(repo, "scripted",
                          'name = "scripted"\nbinary = "python3"\n'
                          f'command = ["{sys.executable}", "{AGENT}", "{{task.key}}"]\n'
                          '[status]\nbusy = ["esc to interrupt"]\nidle = ["^> ?\\\\Z"]\n')
    with open_store() as s:
        p, _ = add_project(s, repo)
    return p


@pytest.fixture
def agent_log(tmp_path):
    return tmp_path / "agent.log"


def make_manager(agent_log: Path, tmp_path: Path, config_text: str = "",
                 **dispatch) -> SessionManager:
    """``config_text``: a --config file (its sessions get it as PLANEAI_CONFIG, so what the
    agents run with `planeai` reads it too)."""
    locs = locations()
    explicit = None
    if config_text:
        explicit = tmp_path / "planeai.toml"
        explicit.write_text(config_text)
    cfg = config_mod.load(user_file=None, explicit=explicit, env={})
    cfg.data["defaults"]["provider"] = "scripted"
    cfg.data["dispatch"].update({"poll_interval": 0.1, "backend": "local", **dispatch})
    home = tmp_path / "user-home"
    home.mkdir(exist_ok=True)
    env = {**os.environ, "HOME": str(home), "SCRIPTED_AGENT_LOG": str(agent_log)}
    return SessionManager(open_store(locs), cfg, locs, env=env)


def add(title: str, description: str, **kw) -> str:
    with open_store() as s:
        return task_svc.add_task(s, s.list_projects()[0], title, description=description,
                                 **kw).key


def run_until(d: Dispatcher, cond, timeout=60.0):
    stop = threading.Event()
    t = threading.Thread(target=d.run, kwargs={"stop": stop}, daemon=True)
    t.start()
    try:
        retry_until(cond, timeout=timeout, interval=0.05, message="the dispatcher")
    finally:
        stop.set()
        t.join(20)


def max_concurrency(log: Path) -> int:
    running, top = 0, 0
    for line in sorted(log.read_text().splitlines(), key=lambda ln: float(ln.split()[0])):
        running += 1 if line.split()[1] == "start" else -1
        top = max(top, running)
    return top


def test_priorities_blockers_and_slots(project, agent_log, tmp_path):
    hook_out = tmp_path / "hooks.jsonl"
    keys = {}
    keys["low"] = add("low", "sleep 0.5\nwrite low.txt\ndone", priority=1)
    keys["top"] = add("top", "sleep 0.5\nwrite top.txt\ndone", priority=9)
    keys["mid"] = add("mid", "sleep 0.5\nwrite mid.txt\ndone", priority=5)
    keys["blocker"] = add("blocker", "sleep 0.5\nwrite blocker.txt\ndone", priority=2)
    keys["blocked"] = add("blocked", "write blocked.txt\ndone", priority=8,
                          blocked_by=[keys["blocker"]])
    dump = (f"{sys.executable} -c \"import json,os;print(json.dumps({{k:v for k,v in "
            f"os.environ.items() if k.startswith('PLANEAI_')}}))\" >> {hook_out}")
    hooks = "".join(f"{hook} = [{json.dumps(dump)}]\n" for hook in (
        "task_dispatched", "session_started", "completed", "task_moved"))
    m = make_manager(agent_log, tmp_path, config_text="[hooks]\n" + hooks, max_sessions=2)
    d = Dispatcher(m)

    def all_done():  # done, and each run judged (an agent finishes its turn after reporting)
        return (all(m.store.get_task(k).status is Status.DONE for k in keys.values())
                and not d._dispatched_live())

    try:
        run_until(d, all_done)
        d.tick()  # the last pass runs the hooks of the final completions
    finally:
        m.close()
    with open_store() as s:
        events = s.events(limit=10_000)
    order = [e.task_key for e in events if e.kind == "dispatch.dispatched"]
    assert sorted(order) == sorted(keys.values())  # each exactly once
    # highest priority first; the blocked task (P8) waits for its blocker (P2)
    assert order[:2] == [keys["top"], keys["mid"]]
    assert order.index(keys["blocked"]) > order.index(keys["blocker"])
    blocker_done_event = next(e.id for e in events if e.kind == "task.moved"
                              and e.task_key == keys["blocker"] and e.data["to"] == "done")
    blocked_dispatch_event = next(e.id for e in events if e.kind == "dispatch.dispatched"
                                  and e.task_key == keys["blocked"])
    assert blocker_done_event < blocked_dispatch_event
    assert max_concurrency(agent_log) <= 2
    # every branch holds its agent's commit
    for name, key in keys.items():
        log = subprocess.run(["git", "-C", project.path, "log", "--format=%s",
                              f"main..planeai/{key}-{name}"], capture_output=True, text=True,
                             check=True).stdout.split("\n")
        assert f"{key}: {name}.txt" in log
    # hooks: once per transition, with the right env; whichever process claimed a transition
    # runs its hooks (an agent's `planeai` call hands them to a detached runner), so the last
    # ones may still be running: wait until every hook run is recorded
    with open_store() as s:
        def hook_runs() -> int:
            return sum(e.kind in ("hook.ran", "hook.failed") for e in s.events(limit=10_000))
        # 5 dispatched + 5 started + 5 completed + 15 moves (todo->in_progress->done, x5)
        retry_until(lambda: hook_runs() >= 25, message="every hook run")
    fired = [json.loads(line) for line in hook_out.read_text().splitlines()]
    dispatched = [f for f in fired if f["PLANEAI_EVENT"] == "task_dispatched"]
    assert sorted(f["PLANEAI_TASK_KEY"] for f in dispatched) == sorted(keys.values())
    assert all(f["PLANEAI_BRANCH"].startswith(f"planeai/{f['PLANEAI_TASK_KEY']}-")
               for f in dispatched)  # named at reservation, before the worktree exists
    started = [f for f in fired if f["PLANEAI_EVENT"] == "session_started"]
    assert len(started) == 5 and all(f["PLANEAI_WORKTREE"].endswith(f["PLANEAI_TASK_KEY"])
                                     for f in started)
    assert all(f["PLANEAI_BRANCH"].startswith(f"planeai/{f['PLANEAI_TASK_KEY']}-")
               for f in started)
    completed = [f for f in fired if f["PLANEAI_EVENT"] == "completed"]
    assert sorted(f["PLANEAI_TASK_KEY"] for f in completed) == sorted(keys.values())
    moved_done = [f for f in fired if f["PLANEAI_EVENT"] == "task_moved"
                  and f["PLANEAI_TASK_STATUS"] == "done"]
    assert sorted(f["PLANEAI_TASK_KEY"] for f in moved_done) == sorted(keys.values())
    ids = [f["PLANEAI_EVENT_ID"] + f["PLANEAI_EVENT"] for f in fired]
    assert len(ids) == len(set(ids))  # no event fired its hook twice


def test_failure_retries_then_hold(project, agent_log, tmp_path):
    key = add("flaky", "exit 3")
    m = make_manager(agent_log, tmp_path, max_retries=1)
    d = Dispatcher(m)
    try:
        run_until(d, lambda: m.store.get_task(key).held)
    finally:
        m.close()
    t = m.store.get_task(key)
    assert t.status is Status.TODO and t.failures == 2 and t.held and not t.ready
    assert t.last_failure == "agent exited with code 3"
    with open_store() as s:
        failed = [e for e in s.events(task_key=key) if e.kind == "dispatch.failed"]
        assert [e.data["held"] for e in failed] == [False, True]
        # a person moving it back to todo releases the hold
        task_svc.move(s, key, "in_progress")
        task_svc.move(s, key, "todo")
        assert s.get_task(key).ready


def test_exit_zero_is_success_to_in_review(project, agent_log, tmp_path):
    key = add("quick", "write q.txt\nexit 0")
    m = make_manager(agent_log, tmp_path, on_success="in_review")
    d = Dispatcher(m)
    try:
        run_until(d, lambda: m.store.get_task(key).status is Status.IN_REVIEW)
    finally:
        m.close()
    s = m.store.sessions_for_task(key)[0]
    assert s.outcome == "success" and s.exit_code == 0


def test_idle_after_working_completes(project, agent_log, tmp_path):
    key = add("chatty", "sleep 0.6\nwrite c.txt")  # works, then waits at its prompt
    m = make_manager(agent_log, tmp_path, idle_complete_after=0.5)
    d = Dispatcher(m)
    try:
        run_until(d, lambda: m.store.get_task(key).status is Status.DONE)
    finally:
        m.close()
    ev = [e for e in m.store.events(task_key=key) if e.kind == "dispatch.completed"]
    assert ev and ev[0].data["how"] == "idle"


def test_stale_busy_session_is_flagged_once(project, agent_log, tmp_path, capsys):
    from planeai.config import NotifySettings
    from planeai.services.notify import Notifier

    key = add("stuck", "silent-busy")
    m = make_manager(agent_log, tmp_path, stale_after=1.0)
    d = Dispatcher(m, notifier=Notifier(NotifySettings(events=frozenset({"stale"}), desktop=False,
                                                   bell=False)))
    try:
        run_until(d, lambda: any(e.kind == "dispatch.stale"
                                 for e in m.store.events(task_key=key)))
        for _ in range(5):
            d.tick()
    finally:
        m.close()
    kinds = [(e.kind, e.data) for e in m.store.events(task_key=key)]
    assert [k for k, _ in kinds].count("dispatch.stale") == 1, kinds
    out = capsys.readouterr().out
    assert f"planeai: {key} looks stuck" in out, (out, kinds)


def test_one_dispatcher_per_store(project, agent_log, tmp_path):
    add("x", "idle")
    m1 = make_manager(agent_log, tmp_path)
    m2 = make_manager(agent_log, tmp_path)
    d1, d2 = Dispatcher(m1), Dispatcher(m2)
    try:
        assert d1.tick().leader
        r2 = d2.tick()
        assert not r2.leader and r2.dispatched == []
        d1.release()
        assert d2.tick().leader
        assert not d1.tick().leader
    finally:
        m1.close()
        m2.close()


def test_per_project_and_provider_limits_and_rules(project, agent_log, tmp_path):
    for i in range(4):
        add(f"t{i}", "idle", priority=i)
    docs = add("Update the docs", "idle", priority=10)
    from conftest import install_echo_agent

    install_echo_agent(locations().user_providers_dir)
    m = make_manager(agent_log, tmp_path, max_sessions=4, per_provider={"scripted": 2},
                     rules=[{"title": "(?i)docs", "provider": "echoer"}])
    d = Dispatcher(m)
    try:
        r = d.tick()
        agents = {s.task_key: s.provider for s in m.store.list_sessions()}
        assert agents[docs] == "echoer"
        assert sorted(agents.values()) == ["echoer", "scripted", "scripted"]
        assert len(r.dispatched) == 3  # the scripted provider is capped at 2
        m.config.data["dispatch"]["per_project"] = {"planeai": 3}
        assert d.tick().dispatched == []
    finally:
        m.close()


def test_hooks_get_values_in_env_only_and_a_hanging_hook_is_killed(project, agent_log,
                                                                    tmp_path):
    canary = tmp_path / "CANARY"
    out = tmp_path / "title.txt"
    key = add(f"$(touch {canary}) `touch {canary}`", "exit 0")
    m = make_manager(agent_log, tmp_path)
    m.config.data["hooks"]["task_dispatched"] = [f'printf %s "$PLANEAI_TASK_TITLE" > {out}',
                                                 "sleep 30"]
    m.config.data["hooks"]["timeout"] = 1.0
    d = Dispatcher(m)
    try:
        run_until(d, lambda: m.store.get_task(key).status is Status.DONE, timeout=60)
    finally:
        m.close()
    assert out.read_text() == f"$(touch {canary}) `touch {canary}`"
    assert not canary.exists()
    failed = [e for e in m.store.events(limit=10_000) if e.kind == "hook.failed"]
    assert failed and failed[0].data["timed_out"] and failed[0].data["command"] == "sleep 30"


def test_unknown_provider_fails_the_task_without_stopping_the_loop(project, agent_log,
                                                                   tmp_path):
    bad = add("bad", "idle", provider="nosuch")
    good = add("good", "write g.txt\ndone")
    m = make_manager(agent_log, tmp_path, max_retries=0)
    d = Dispatcher(m)
    try:
        run_until(d, lambda: m.store.get_task(good).status is Status.DONE)
    finally:
        m.close()
    t = m.store.get_task(bad)
    assert t.held and "unknown agent 'nosuch'" in t.last_failure


def test_a_misspelt_mention_in_synced_text_holds_the_task(project, agent_log, tmp_path):
    """Text that reached the store without `task add`'s check (a tracker sync) and names
    `@scriptd`: held with the reason at once, never run by the default agent."""
    with open_store() as s:
        bad = s.add_task(s.list_projects()[0], title="Port it @scriptd", description="",
                         priority=0, blocked_by=[], parent_key=None, base_branch=None,
                         provider=None).key
    m = make_manager(agent_log, tmp_path)  # max_retries 2: the hold must not wait for them
    d = Dispatcher(m)
    try:
        d.tick()
    finally:
        m.close()
    t = m.store.get_task(bad)
    assert t.held and "did you mean @scripted" in t.last_failure, t.last_failure
    assert m.store.sessions_for_task(bad) == [] and not agent_log.exists()


@pytest.mark.skipif(not __import__("shutil").which("tmux"), reason="tmux not installed")
def test_dispatcher_killed_mid_run_resumes_without_double_dispatch(project, agent_log, tmp_path,
                                                                   planeai_home):
    import secrets
    import shutil
    import signal

    socket = f"pd-{secrets.token_hex(4)}"
    tmux_tmp = Path("/tmp") / f"pd-{secrets.token_hex(3)}"
    tmux_tmp.mkdir()
    cfg = tmp_path / "planeai.toml"
    cfg.write_text(f'[defaults]\nprovider = "scripted"\n[tmux]\nsocket = "{socket}"\n'
                   '[dispatch]\nbackend = "tmux"\nmax_sessions = 2\npoll_interval = 0.2\n')
    home = tmp_path / "user-home"
    home.mkdir()
    env = {**os.environ, "PLANEAI_CONFIG": str(cfg), "TMUX_TMPDIR": str(tmux_tmp),
           "HOME": str(home), "SCRIPTED_AGENT_LOG": str(agent_log)}
    # 5 s of work: wide enough that the kill lands while both first agents still run,
    # even on a loaded machine
    keys = [add(f"job {i}", f"sleep 5\nwrite job{i}.txt\ndone", priority=10 - i)
            for i in range(4)]
    cmd = [sys.executable, "-m", "planeai.cli.main", "dispatch", "run"]

    def dispatched() -> list[str]:
        with open_store() as s:
            return [e.task_key for e in s.events(limit=10_000) if e.kind == "dispatch.dispatched"]

    try:
        first = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        def started() -> int:
            with open_store() as s:
                return sum(e.kind == "session.started" for e in s.events(limit=10_000))

        retry_until(lambda: started() == 2, timeout=60, message="two agents running")
        first.send_signal(signal.SIGKILL)
        first.wait()
        with open_store() as s:
            # killed mid-run: nothing had finished yet
            assert not any(e.kind == "dispatch.completed" for e in s.events(limit=10_000))
        # its agents keep running on tmux while no dispatcher exists
        ls = subprocess.run(["tmux", "-L", socket, "list-sessions", "-F", "#{session_name}"],
                            env=env, capture_output=True, text=True).stdout.split()
        assert sorted(n for n in ls if n != "__planeai_ctl") == sorted(keys[:2])
        second = subprocess.run(cmd + ["--exit-when-idle"], env=env, capture_output=True,
                                text=True, timeout=180)
        assert second.returncode == 0, second.stderr
        with open_store() as s:
            assert all(s.get_task(k).status is Status.DONE for k in keys)
            events = s.events(limit=10_000)
        per_task = {k: [e.kind for e in events if e.task_key == k] for k in keys}
        for k in keys:
            assert per_task[k].count("dispatch.dispatched") == 1, (
                k, [(e.kind, e.data) for e in events if e.task_key == k])
            # re-adopted, not restarted: one start per task
            assert per_task[k].count("session.started") == 1, (k, per_task[k])
            assert per_task[k].count("dispatch.completed") == 1
        assert max_concurrency(agent_log) <= 2
        # the first two finished under the second dispatcher, which never started them
        assert "completed PLA-1" in second.stdout and "dispatched PLA-1" not in second.stdout
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], env=env, capture_output=True)
        shutil.rmtree(tmux_tmp, ignore_errors=True)


def test_interrupted_start_requeues_without_a_failure(project, agent_log, tmp_path):
    key = add("interrupted", "write i.txt\ndone")
    m = make_manager(agent_log, tmp_path)
    # what a crash between writing the session row and spawning leaves behind
    m.store.add_session(id="dead0001", name=key, project=m.store.list_projects()[0],
                        task_key=key, provider="scripted", variant=None, backend="local",
                        worktree=None, branch=None, autonomous=True, argv=["x"])
    d = Dispatcher(m)
    try:
        run_until(d, lambda: m.store.get_task(key).status is Status.DONE)
    finally:
        m.close()
    t = m.store.get_task(key)
    assert t.failures == 0 and not t.held
    assert m.store.get_session("dead0001").outcome == "aborted"


def test_agent_subtasks_run_and_parent_finishes_after_them(project, agent_log, tmp_path):
    parent = add("Big job", "subtask Alpha part\nsubtask Beta part\ndone", priority=5)
    m = make_manager(agent_log, tmp_path, max_sessions=2)
    d = Dispatcher(m)
    try:
        run_until(d, lambda: m.store.get_task(parent).status is Status.DONE)
    finally:
        m.close()
    kids = m.store.children(parent)
    assert len(kids) == 2
    for k in kids:
        t = m.store.get_task(k)
        assert t.parent_key == parent and t.project_name == "planeai"
        assert t.status is Status.DONE
    events = m.store.events(limit=10_000)
    parent_done = next(e.id for e in events if e.kind == "task.moved"
                       and e.task_key == parent and e.data["to"] == "done")
    kids_done = [e.id for e in events if e.kind == "task.moved" and e.task_key in kids
                 and e.data["to"] == "done"]
    assert len(kids_done) == 2 and parent_done > max(kids_done)
    # the parent's run was judged while some of its subtasks were open (which ones depends on
    # how far they got meanwhile: they run beside it)
    waiting = [e for e in events if e.kind == "dispatch.waiting" and e.task_key == parent]
    requested = [e for e in events if e.kind == "task.done_requested" and e.task_key == parent]
    if waiting:
        assert set(waiting[0].data["subtasks"]) <= set(kids) and waiting[0].data["subtasks"]
    else:  # both finished before the parent's `task done`: it was simply done
        assert not requested
    # the request is state on the session (read in O(1)), written with its event
    assert all(m.store.get_session(e.session_id).done_requested for e in requested)
    # the parent never flickered to done before its subtasks were
    assert [e.data["to"] for e in events if e.kind == "task.moved"
            and e.task_key == parent] == ["in_progress", "done"]
    # the parent ran once; each subtask ran once
    assert [e.task_key for e in events if e.kind == "dispatch.dispatched"].count(parent) == 1


def test_mention_in_task_picks_agent_and_skill_and_skill_timeout_bounds_it(project, agent_log,
                                                                           tmp_path):
    pdir = Path(project.path) / ".planeai"
    (pdir / "providers" / "scripted2.toml").write_text(
        (pdir / "providers" / "scripted.toml").read_text().replace('"scripted"', '"scripted2"')
        + '[skills]\ndir = ".agent/skills"\n')
    sk = pdir / "skills" / "quick"
    sk.mkdir(parents=True)
    (sk / "SKILL.md").write_text("---\nname: quick\ndescription: be quick\n"
                                 "timeout_minutes: 0.02\n---\nHurry.\n")
    trust.trust(trust.read_content(project.path))  # the new provider file: trusted again
    key = add("Slow thing", "please @scripted2:quick\nsleep 30")
    m = make_manager(agent_log, tmp_path, max_retries=0)
    d = Dispatcher(m)
    try:
        run_until(d, lambda: m.store.get_task(key).held)
    finally:
        m.close()
    s = m.store.sessions_for_task(key)[0]
    assert s.provider == "scripted2" and s.skill == "quick"
    wt = Path(s.worktree)
    assert (wt / ".agent/skills/quick/SKILL.md").read_text().endswith("Hurry.\n")
    assert (wt / ".agent/skills/planeai/SKILL.md").is_file()
    assert subprocess.run(["git", "-C", str(wt), "status", "--porcelain"], capture_output=True,
                          text=True, check=True).stdout == ""
    assert "timed out after 0.02 minutes (skill quick)" in m.store.get_task(key).last_failure


def test_twenty_sessions_add_subtasks_at_the_same_moment(project, agent_log, tmp_path):
    from conftest import retry_until as wait

    keys = [add(f"agent {i}", "idle") for i in range(20)]
    m = make_manager(agent_log, tmp_path)
    go = tmp_path / "GO"
    try:
        for k in keys:
            m.start(task_key=k, agent="shell", backend="local", worktree=False)
        for k in keys:
            m.send(k, f"while [ ! -e {go} ]; do sleep 0.01; done; "
                      f"planeai task add \"sub of $PLANEAI_TASK_KEY\" && echo ADDED-$((40+2))")
        go.touch()  # all 20 go at once
        # the typed command shows "ADDED-$((40+2))"; only the shell's output says ADDED-42
        wait(lambda: all("ADDED-42" in "".join(m.observe(k).snapshot.lines) for k in keys),
             timeout=120, message="20 subtasks added")
    finally:
        m.close()
    subs = [t for t in m.store.list_tasks() if t.title.startswith("sub of ")]
    assert len(subs) == 20 and len({t.key for t in subs}) == 20
    assert {t.title for t in subs} == {f"sub of {k}" for k in keys}
    assert all(t.parent_key == t.title.removeprefix("sub of ") for t in subs)
    assert m.store.integrity_check() == "ok"


def test_a_hanging_hook_does_not_hold_up_dispatching(project, agent_log, tmp_path):
    gate = tmp_path / "GATE"
    first = add("first", "write f.txt\ndone", priority=5)
    # hangs until the test opens the gate, far past any wait below
    hang = json.dumps(f'while [ ! -e "{gate}" ]; do sleep 0.05; done')
    m = make_manager(agent_log, tmp_path, max_sessions=1,
                     config_text=f"[hooks]\ntimeout = 300.0\ntask_dispatched = [{hang}]\n")
    d = Dispatcher(m)
    stop = threading.Event()
    t = threading.Thread(target=d.run, kwargs={"stop": stop}, daemon=True)
    t.start()
    try:
        retry_until(lambda: m.store.get_task(first).status is Status.DONE,
                    message="the first task done while its hook hangs")
        second = add("second", "write s.txt\ndone")
        retry_until(lambda: m.store.get_task(second).status is Status.DONE,
                    message="the second task dispatched and done while the first hook hangs")
        # both ran while the first hook was still stuck: nothing waited for it
        assert not [e for e in m.store.events(limit=10_000) if e.kind.startswith("hook.")]
    finally:
        gate.touch()
        stop.set()
        t.join(60)
        m.close()
    # the hooks still ran, each once, after the fact, by whichever process claimed them
    with open_store() as s:
        def ran():
            return [e for e in s.events(limit=10_000) if e.kind in ("hook.ran", "hook.failed")]
        retry_until(lambda: len(ran()) >= 2, message="both hooks run once the gate opens")
        assert sorted(e.task_key for e in ran()) == sorted([first, second])
        assert all(e.kind == "hook.ran" for e in ran())


def test_per_project_limit_alone_caps_dispatching(project, agent_log, tmp_path):
    keys = [add(f"t{i}", "idle", priority=i) for i in range(3)]
    m = make_manager(agent_log, tmp_path, max_sessions=3, per_project={"planeai": 1})
    d = Dispatcher(m)
    try:
        # three slots, one provider without a limit: only the project's limit holds them back
        assert d.tick().dispatched == [keys[2]]
        assert d.tick().dispatched == []
        m.config.data["dispatch"]["per_project"] = {"planeai": 2}
        assert d.tick().dispatched == [keys[1]]
        assert len(m.store.list_sessions(states=list(LIVE_STATES))) == 2
    finally:
        m.close()


def test_a_failing_pass_is_recorded_and_dispatching_goes_on(project, agent_log, tmp_path):
    """A pass that fails with something unexpected (here: the tmux binary of a session's
    backend is gone) is recorded as dispatch.error; the loop backs off and goes on, and
    dispatches once the problem is cleared."""
    from planeai.backends.tmux import TmuxBackend

    m = make_manager(agent_log, tmp_path)
    m._backends["tmux"] = TmuxBackend("pd-none", tmux_bin=str(tmp_path / "no-tmux-here"))
    bad = m.store.add_session(id="badc0ffe", name="PLA-stray", project=m.store.list_projects()[0],
                              task_key=None, provider="scripted", variant=None, backend="tmux",
                              worktree=None, branch=None, autonomous=False, argv=["x"])
    m.store.update_session(bad.id, state="running", pid=2 ** 22 + 4321)
    key = add("after the trouble", "write t.txt\ndone")
    d = Dispatcher(m)
    stop = threading.Event()
    t = threading.Thread(target=d.run, kwargs={"stop": stop}, daemon=True)
    t.start()

    def errors():
        return [e for e in m.store.events(limit=10_000) if e.kind == "dispatch.error"]

    try:
        retry_until(lambda: len(errors()) >= 2, message="two failed passes")
        assert t.is_alive() and m.store.get_task(key).status is Status.TODO
        m.store.delete_session(bad.id)  # the trouble is cleared
        retry_until(lambda: m.store.get_task(key).status is Status.DONE,
                    message="dispatching resumed")
    finally:
        stop.set()
        t.join(60)
        m.close()
    assert "FileNotFoundError" in errors()[0].data["error"]


def test_checks_on_completion_keep_a_failing_run_out_of_done(project, agent_log, tmp_path):
    """[review] check_on_complete: a run whose checks fail goes to review (not done), one
    whose checks pass is done; the completion says which."""
    good = add("good", "write ok.txt\ndone", priority=2)
    bad = add("bad", "write other.txt\ndone", priority=1)
    m = make_manager(agent_log, tmp_path, max_sessions=2, config_text=(
        '[review]\nchecks = ["test -e ok.txt"]\ncheck_on_complete = true\n'))
    d = Dispatcher(m)
    try:
        run_until(d, lambda: all(m.store.get_task(k).status in (Status.DONE, Status.IN_REVIEW)
                                 and not d._dispatched_live() for k in (good, bad)))
    finally:
        m.close()
    assert m.store.get_task(good).status is Status.DONE
    assert m.store.get_task(bad).status is Status.IN_REVIEW
    checks = {e.task_key: e.data.get("checks") for e in m.store.events(limit=10_000)
              if e.kind == "dispatch.completed"}
    assert checks == {good: "passed", bad: "failed"}
