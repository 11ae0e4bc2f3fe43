"""Plane: work items synced into tasks, and planeai as a Plane agent (webhooks and polling),
against tests/support/fake_plane.py, a local server that follows Plane's published API."""

from __future__ import annotations

import json
import os
import sys
import threading
import uuid
from pathlib import Path

import pytest

from conftest import retry_until
from support.fake_plane import FakePlane

from planeai import config as config_mod
from planeai.paths import locations
from planeai.services.context import open_store
from planeai.services.plane_agent import PlaneAgent
from planeai.services.plane_serve import run_service
from planeai.services.plane_sync import plane_client
from planeai.services.projects import add_project
from planeai.services.sessions import SessionManager

API_KEY = "plane_api_" + uuid.uuid4().hex
SECRET = "whsec_" + uuid.uuid4().hex

# An agent CLI for these tests: reads its prompt from argv; ASK-FIRST asks a question and
# waits for the answer, DO-WORK stays busy a moment then prints a result; then it echoes
# each line it is sent at a "> " prompt. It executes nothing it reads.
AGENT = r'''
import sys, time
prompt = sys.argv[1] if len(sys.argv) > 1 else ""
print("prompt received", flush=True)
if "ASK-FIRST" in prompt:
    print("Do you want to proceed? (yes/no)", flush=True)
    answer = sys.stdin.readline()
    print("\x1b[2J\x1b[H" + "answered", flush=True)
if "DO-WORK" in prompt:
    end = time.time() + 1.0
    while time.time() < end:
        print("* working... (esc to interrupt)", flush=True)
        time.sleep(0.2)
    print("\x1b[2J\x1b[H" + "finished: the requested change", flush=True)
while True:
    sys.stdout.write("> ")
    sys.stdout.flush()
    line = sys.stdin.readline()
    if not line:
        break
    print("got: " + line.rstrip(), flush=True)
'''


def install_agent(home: Path, tmp_path: Path, name: str = "planer") -> str:
    script = tmp_path / "plane_agent_cli.py"
    script.write_text(AGENT)
    pdir = home / "config" / "providers"
    pdir.mkdir(parents=True, exist_ok=True)
    (pdir / f"{name}.toml").write_text(
        f'name = "{name}"\nbinary = "{sys.executable}"\n'
        f'command = ["{sys.executable}", "{script}", "{{prompt}}"]\n'
        '[status]\nneeds_input = ["Do you want to proceed\\\\?"]\n'
        'busy = ["esc to interrupt"]\nidle = ["^> ?\\\\Z"]\n')
    return name


@pytest.fixture
def fake():
    f = FakePlane(hold_back=0.3).start()
    yield f
    f.stop()


@pytest.fixture
def plane(repo, fake, planeai_home, user_home, tmp_path, monkeypatch):
    """A registered project mapped to a Plane project, a config file, the secrets in the
    environment (no keyring on this machine: the fail backend makes that explicit)."""
    install_agent(planeai_home, tmp_path)
    install_agent(planeai_home, tmp_path, "planer2")
    with open_store() as s:
        project, _ = add_project(s, repo)
    pid = fake.add_project("WEB")
    cfg = tmp_path / "planeai.toml"
    cfg.write_text(
        '[defaults]\nprovider = "planer"\nbackend = "local"\n'
        f'[plane]\nurl = "{fake.url}"\nworkspace = "{fake.workspace}"\n'
        f'projects = {{ "{pid}" = "{project.name}" }}\nagent = "planer"\nbackend = "local"\n'
        'idle_after = 0.5\nactivity_interval = 0\npoll_interval = 0.2\nsync_interval = 0\n')
    monkeypatch.setenv("PLANEAI_CONFIG", str(cfg))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    monkeypatch.setenv("PLANE_API_KEY", API_KEY)
    monkeypatch.setenv("PLANE_WEBHOOK_SECRET", SECRET)
    fake.api_key = API_KEY
    return {"pid": pid, "cfg": cfg, "project": project}


def manager(plane) -> SessionManager:
    locs = locations()
    cfg = config_mod.load(user_file=None, explicit=plane["cfg"], env={})
    return SessionManager(open_store(locs), cfg, locs, env=dict(os.environ))


@pytest.fixture
def service(plane, fake):
    """`planeai plane serve` in this process: (webhook URL, manager); ``poll=True`` in
    ``request.param`` runs the feed poller instead of the server."""
    started = []

    def start(*, poll: bool = False):
        m = manager(plane)
        client = plane_client(m.config, m.locs)
        stop = threading.Event()
        port: list = []
        ready = threading.Event()

        def on_ready(p):
            port.append(p)
            ready.set()

        t = threading.Thread(target=run_service, args=(m, client), kwargs=dict(
            stop=stop, port=None if poll else 0, secret=None if poll else SECRET, poll=poll,
            ready=on_ready, tick=0.1), daemon=True)
        t.start()
        assert ready.wait(30)
        started.append((m, stop, t))
        return Served(f"http://127.0.0.1:{port[0]}/" if port[0] else None, m,
                      lambda: (stop.set(), t.join(30)))

    yield start
    for m, stop, t in started:
        stop.set()
        t.join(30)
        for s in m.store.list_sessions():
            m.stop(s.id)
        m.close()
        m.store.close()


class Served(tuple):
    """(webhook URL, manager) of a running service, with ``stop()``."""

    def __new__(cls, url, m, stop):
        obj = super().__new__(cls, (url, m))
        obj.stop = stop
        return obj


def item(fake, plane, name="Add a greeting", description="say hello"):
    return fake.add_item(plane["pid"], name, description)


def run_of(m, rid):
    return retry_until(lambda: (r := m.store.plane_run(rid)) and r.session_id and r,
                       message="the run's session")


def types(fake, rid):
    return [a["type"] for a in fake.posted(rid)]


def logs(m, key) -> str:
    return "\n".join(m.logs(key))


# ---------------------------------------------------------------------- webhooks
def test_unsigned_forged_and_replayed_webhooks_are_refused(service, fake, plane):
    url, m = service()
    wi = item(fake, plane)
    run, act = fake.create_run(plane["pid"], wi["id"], "DO-WORK please")
    payload = fake.payload("agent_run_create", run, act)
    body = json.dumps(payload).encode()
    ev = "agent_run_create"
    assert fake.send_webhook(url, ev, payload, secret=None)[0] == 401          # unsigned
    assert fake.send_webhook(url, ev, payload, secret="not-the-secret")[0] == 403
    assert fake.send_webhook(url, ev, payload, secret=None, signature="")[0] == 401
    tampered = body.replace(b"DO-WORK please", b"DO-WORK $(id)")
    assert fake.send_webhook(url, ev, payload, secret=None, body=tampered,
                             signature=fake.sign(SECRET, body))[0] == 403
    old_run, old_act = fake.create_run(plane["pid"], wi["id"], "DO-WORK", age=3600)
    assert fake.send_webhook(url, ev, fake.payload(ev, old_run, old_act),
                             secret=SECRET)[0] == 410                          # stale
    # a good one, then the same delivery again: taken once, the replay refused
    good_run, good_act = fake.create_run(plane["pid"], wi["id"], "DO-WORK")
    good = fake.payload(ev, good_run, good_act)
    assert fake.send_webhook(url, ev, good, secret=SECRET, delivery="d-1")[0] == 202
    assert fake.send_webhook(url, ev, good, secret=SECRET, delivery="d-1")[0] == 409
    retry_until(lambda: "response" in types(fake, good_run["id"]), message="the good run")
    # only the good delivery made anything
    assert [r.run_id for r in m.store.plane_runs()] == [good_run["id"]]
    assert len(m.store.list_tasks()) == 1
    assert fake.posted(run["id"]) == [] and fake.posted(old_run["id"]) == []


def test_a_mention_becomes_a_task_a_session_and_activities_in_order(service, fake, plane):
    url, m = service()
    wi = item(fake, plane, "Greet the user")
    run, act = fake.create_run(plane["pid"], wi["id"], "DO-WORK: add a greeting")
    status, _ = fake.send_webhook(url, "agent_run_create",
                                  fake.payload("agent_run_create", run, act), secret=SECRET)
    assert status == 202  # answered at once (bench/bench_plane_webhook.py); work goes on
    retry_until(lambda: fake.runs[run["id"]]["status"] == "completed",
                message="the run to complete")
    r = run_of(m, run["id"])
    task = m.store.get_task(r.task_key)
    assert task.title == "Plane: Greet the user"
    assert "<<<UNTRUSTED" in task.description and "DO-WORK: add a greeting" in task.description
    sessions = m.store.sessions_for_task(task.key)
    assert len(sessions) == 1 and sessions[0].provider == "planer"
    seen = types(fake, run["id"])
    assert seen[0] in ("thought", "action") and seen[-1] == "response"
    assert "action" in seen and "error" not in seen and seen.count("response") == 1
    response = fake.posted(run["id"])[-1]["content"]["body"]
    assert "finished: the requested change" in response
    assert task.key in response and sessions[0].branch in response


def test_elicitation_then_replies_reach_the_same_session(service, fake, plane):
    url, m = service()
    wi = item(fake, plane)
    run, act = fake.create_run(plane["pid"], wi["id"], "ASK-FIRST then DO-WORK")
    rid = run["id"]
    assert fake.send_webhook(url, "agent_run_create",
                             fake.payload("agent_run_create", run, act), secret=SECRET)[0] == 202
    retry_until(lambda: fake.runs[rid]["status"] == "awaiting", message="an elicitation")
    question = fake.posted(rid)[-1]
    assert question["type"] == "elicitation"
    assert "Do you want to proceed?" in question["content"]["body"]
    reply = fake.user_prompt(rid, "yes, go ahead")
    assert fake.send_webhook(url, "agent_run_user_prompt",
                             fake.payload("agent_run_user_prompt", fake.runs[rid], reply),
                             secret=SECRET)[0] == 202
    retry_until(lambda: fake.runs[rid]["status"] == "completed", message="the response")
    key = m.store.plane_run(rid).task_key
    retry_until(lambda: "got: yes, go ahead" in logs(m, key), message="the reply on screen")
    # a follow-up in the thread after the answer: same session, a new response
    more = fake.user_prompt(rid, "one more thing")
    assert fake.send_webhook(url, "agent_run_user_prompt",
                             fake.payload("agent_run_user_prompt", fake.runs[rid], more),
                             secret=SECRET)[0] == 202
    retry_until(lambda: types(fake, rid).count("response") == 2, message="a second response")
    assert "got: one more thing" in logs(m, key)
    assert len(m.store.sessions_for_task(key)) == 1
    seen = types(fake, rid)
    assert seen.index("elicitation") < seen.index("response") and "error" not in seen


def test_polling_mode_does_the_same_from_the_activity_feed(service, fake, plane):
    cfg = plane["cfg"]  # the feed is read with the app's bot token (only its own runs)
    cfg.write_text(cfg.read_text() + 'auth = "bearer"\n')
    _, m = service(poll=True)
    wi = item(fake, plane, "Polled item")
    run, _ = fake.create_run(plane["pid"], wi["id"], "DO-WORK from the feed")
    rid = run["id"]
    retry_until(lambda: fake.runs[rid]["status"] == "completed", message="the polled run")
    key = m.store.plane_run(rid).task_key
    assert m.store.get_task(key).title == "Plane: Polled item"
    fake.user_prompt(rid, "and a follow-up")
    retry_until(lambda: types(fake, rid).count("response") == 2, message="the reply's answer")
    assert "got: and a follow-up" in logs(m, key)
    assert len(m.store.sessions_for_task(key)) == 1 and len(m.store.plane_runs()) == 1
    assert any("agent-run-activities/?type=prompt" in p for _, p in fake.requests)


def test_mentions_pick_an_agent_only_when_allowed_and_only_real_ones(plane):
    m = manager(plane)
    try:
        a = PlaneAgent(m, plane_client(m.config, m.locs))
        project = plane["project"]
        assert a.choose("please @planer2 do it", project) == ("planer", None)
        m.config.data["plane"]["allow_mentions"] = True
        a = PlaneAgent(m, plane_client(m.config, m.locs))
        assert a.choose("please @planer2 do it", project) == ("planer2", None)
        assert a.choose("@nosuchagent and @types/node", project) == ("planer", None)
        assert a.choose("@planer2:review this", project) == ("planer2", "review")
        assert a.choose("@review this", project) == ("planer", "review")
    finally:
        m.close()
        m.store.close()


# ---------------------------------------------------------------------- sync
def test_sync_pages_resyncs_without_duplicates_and_writes_back(run_cli, fake, plane):
    items = [item(fake, plane, f"Item {i}", f"body {i}") for i in range(250)]
    code, out, err = run_cli("plane", "sync", "--json", "--progress")
    assert code == 0, err
    [res] = json.loads(out)
    assert (res["fetched"], res["new"]) == (250, 250)
    assert [ln.split(": ")[-1] for ln in err.splitlines()] == [
        "100 work items so far", "200 work items so far", "250 work items so far"]
    pages = [p for _, p in fake.requests if "/work-items/?" in p]
    assert len(pages) == 3 and all("per_page=100" in p for p in pages)
    # edit one, remove one, complete one (only open work is synced), sync again
    items[0]["name"] = "Item 0, renamed"
    fake.remove_item(plane["pid"], items[1]["id"])
    items[4]["state"] = fake.state_id(plane["pid"], "completed")
    code, out, err = run_cli("plane", "sync", "--json")
    [res] = json.loads(out)
    assert (res["fetched"], res["new"], res["updated"]) == (248, 0, 1)
    assert res["gone"] == ["WEB-2", "WEB-5"]
    code, out, _ = run_cli("plane", "list", "--all", "--json")
    rows = json.loads(out)
    assert len(rows) == 250 and len({r["external_id"] for r in rows}) == 250
    assert next(r for r in rows if r["external_key"] == "WEB-1")["title"] == "Item 0, renamed"
    assert next(r for r in rows if r["external_key"] == "WEB-2")["gone"] is True
    # take one; its task done: the state moves and the result is posted, once
    code, out, err = run_cli("plane", "take", "WEB-3")
    assert code == 0, err
    key = out.strip()
    code, _, err = run_cli("task", "done", key)
    assert code == 0, err
    for _ in range(2):
        code, out, err = run_cli("plane", "sync")
        assert code == 0, err
    assert [c["issue"] for c in fake.comments] == [items[2]["id"]]
    assert key in fake.comments[0]["comment_html"]
    groups = [fake.state_group(plane["pid"], p["body"]["state"]) for p in fake.patches]
    assert groups == ["started", "completed"]


def test_sync_with_a_wrong_key_says_so_and_keeps_what_it_had(run_cli, fake, plane, monkeypatch):
    item(fake, plane)
    assert run_cli("plane", "sync")[0] == 0
    monkeypatch.setenv("PLANE_API_KEY", "plane_api_wrong")
    code, out, err = run_cli("plane", "sync")
    assert code == 1 and "not authorised (HTTP 401)" in out
    code, out, _ = run_cli("plane", "list", "--json")
    assert len(json.loads(out)) == 1  # nothing lost, nothing marked gone
    code, out, _ = run_cli("plane", "list")  # the error is kept with the sync state
    assert "1 items; last error: Plane: GET" in out and "(HTTP 401)" in out
    assert "plane_api_wrong" not in out and API_KEY not in out


# ---------------------------------------------------------------------- hostile text
def test_a_hostile_title_stays_inert(run_cli, private_tmux, service, fake, plane,
                                    monkeypatch):
    canary = Path(f"/tmp/pwned-{uuid.uuid4().hex}")
    hostile = (f"$(touch {canary}) `touch {canary}` \x1b[31mred\x1b]0;owned\x07 "
               "@planer2:review " + "A" * 10_000)
    item(fake, plane, hostile, f"$(touch {canary})\n\x1b[2J")
    code, out, err = run_cli("plane", "sync")
    assert code == 0, err
    code, out, err = run_cli("plane", "list")
    assert code == 0 and "\x1b" not in out and "\x07" not in out
    assert max(len(line) for line in out.splitlines()) < 200
    code, out, err = run_cli("plane", "take", "WEB-1", "--json")
    assert code == 0, err
    task = json.loads(out)
    assert len(task["title"]) <= 300 and "\x1b" not in task["title"]
    assert "@planer2" not in task["title"] and "@planer2" not in task["description"]
    # and as a run's prompt, in a real tmux session: the configured agent runs it, nothing
    # executes it
    cfg = plane["cfg"]
    cfg.write_text(cfg.read_text().replace('backend = "local"\nidle_after',
                                           'backend = "tmux"\nidle_after')
                   + f'[tmux]\nsocket = "{private_tmux.socket}"\n')
    monkeypatch.setenv("TMUX_TMPDIR", str(private_tmux.tmpdir))
    monkeypatch.delenv("TMUX", raising=False)
    url, m = service()
    wi = fake.add_item(plane["pid"], hostile)
    run, act = fake.create_run(plane["pid"], wi["id"], hostile)
    assert fake.send_webhook(url, "agent_run_create",
                             fake.payload("agent_run_create", run, act), secret=SECRET)[0] == 202
    retry_until(lambda: fake.runs[run["id"]]["status"] == "completed", message="the run")
    r = m.store.plane_run(run["id"])
    [session] = m.store.sessions_for_task(r.task_key)
    assert session.provider == "planer"  # the mention picked nothing (not allowed)
    assert session.backend == "tmux"
    assert not canary.exists()
    assert all("\x1b" not in a["content"].get("body", "") for a in fake.posted(run["id"]))


# ---------------------------------------------------------------------- the command
def test_plane_serve_command_verifies_answers_and_stops(fake, plane):
    import signal
    import subprocess

    from conftest import planeai_cmd

    proc = subprocess.Popen(planeai_cmd() + ["plane", "serve", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert "listening for Plane webhooks on http://127.0.0.1:" in line, proc.stderr.read()
        url = line.split(" on ", 1)[1].strip()
        wi = item(fake, plane)
        run, act = fake.create_run(plane["pid"], wi["id"], "DO-WORK via the command")
        payload = fake.payload("agent_run_create", run, act)
        assert fake.send_webhook(url, "agent_run_create", payload, secret="wrong")[0] == 403
        assert fake.send_webhook(url, "agent_run_create", payload, secret=SECRET)[0] == 202
        retry_until(lambda: fake.runs[run["id"]]["status"] == "completed",
                    message="the run served by `planeai plane serve`")
        assert types(fake, run["id"])[-1] == "response"
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
    assert code == 0


def test_the_dispatcher_syncs_plane_periodically_and_writes_back(fake, plane):
    from planeai.core.models import Status
    from planeai.services.dispatch import Dispatcher
    from planeai.services.plane_sync import PlaneSync

    for i in range(3):
        item(fake, plane, f"Item {i}")
    m = manager(plane)
    try:
        m.config.data["plane"]["sync_interval"] = 3600.0
        d = Dispatcher(m)
        d._poke_trackers()
        retry_until(lambda: len(m.store.tracker_items("plane")) == 3, message="the sync")
        retry_until(lambda: not d._plane.busy(), message="the sync to end")
        listed = len([p for _, p in fake.requests if "/work-items/?" in p])
        d._poke_trackers()  # not due again for an hour: nothing is read
        assert not d._plane.busy()
        assert len([p for _, p in fake.requests if "/work-items/?" in p]) == listed
        task = PlaneSync(m.store, m.config, None).take("WEB-1")
        m.store.set_status(task.key, Status.DONE)
        d._poke_trackers()  # a done task's write-back is due now
        retry_until(lambda: len(fake.comments) == 1, message="the result comment")
    finally:
        m.close()
        m.store.close()


def test_sync_waits_out_429_and_reports_malformed_json(run_cli, fake, plane):
    for i in range(120):
        item(fake, plane, f"Item {i}")
    # the project lookup is throttled once: waited out (Retry-After), then the sync goes on
    fake.fail_next.append((429, {"Retry-After": "0"}, b'{"detail": "slow down"}'))
    code, out, err = run_cli("plane", "sync", "--json")
    assert code == 0, err
    assert json.loads(out)[0]["fetched"] == 120
    # a reply that is not JSON: one clear line, what was synced before is kept
    fake.fail_next.append((200, {}, b"<html>proxy error</html>"))
    code, out, err = run_cli("plane", "sync")
    assert code == 1 and "is not valid JSON" in out
    code, out, _ = run_cli("plane", "list", "--json")
    assert len(json.loads(out)) == 120 and not any(r["gone"] for r in json.loads(out))


def test_a_run_that_cannot_start_fails_with_an_error_and_leaves_no_task(service, fake, plane):
    cfg = plane["cfg"]
    cfg.write_text(cfg.read_text().replace('agent = "planer"', 'agent = "nosuchagent"'))
    url, m = service()
    other = fake.add_project("OPS")  # not mapped to any planeai project
    wi = fake.add_item(other, "Elsewhere")
    run, act = fake.create_run(other, wi["id"], "DO-WORK")
    assert fake.send_webhook(url, "agent_run_create", fake.payload("agent_run_create", run, act),
                             secret=SECRET)[0] == 202
    retry_until(lambda: fake.runs[run["id"]]["status"] == "failed", message="the error")
    [error] = fake.posted(run["id"])
    assert error["type"] == "error" and "not mapped" in error["content"]["body"]
    # a mapped project whose agent cannot start: the error, and its task removed again
    wi = item(fake, plane)
    run, act = fake.create_run(plane["pid"], wi["id"], "DO-WORK")
    assert fake.send_webhook(url, "agent_run_create", fake.payload("agent_run_create", run, act),
                             secret=SECRET)[0] == 202
    retry_until(lambda: fake.runs[run["id"]]["status"] == "failed", message="the error")
    assert "nosuchagent" in fake.posted(run["id"])[-1]["content"]["body"]
    assert m.store.list_tasks() == [] and m.store.list_sessions() == []


def test_polling_with_a_personal_key_is_refused(plane):
    from planeai.errors import PlaneaiError

    m = manager(plane)
    try:
        with pytest.raises(PlaneaiError, match="bot token"):
            run_service(m, plane_client(m.config, m.locs), stop=threading.Event(), poll=True)
    finally:
        m.close()
        m.store.close()


def test_a_repo_cannot_point_plane_elsewhere(repo):
    """A cloned repo's config must not send the API key to its own server, nor let tracker
    text pick agents."""
    from planeai.errors import ConfigError

    (repo / ".planeai").mkdir(exist_ok=True)
    for line in ('url = "https://evil.example"', "allow_mentions = true"):
        (repo / ".planeai" / "config.toml").write_text(f"[plane]\n{line}\n")
        with pytest.raises(ConfigError, match="cannot be set by a repo"):
            config_mod.load(user_file=None, project_dir=repo, env={})


def test_a_restarted_server_carries_on_with_its_runs_and_stops_on_request(
        private_tmux, service, fake, plane, monkeypatch):
    from planeai.errors import PlaneaiError

    cfg = plane["cfg"]  # tmux sessions outlive the server that started them
    cfg.write_text(cfg.read_text().replace('backend = "local"\nidle_after',
                                           'backend = "tmux"\nidle_after')
                   + f'[tmux]\nsocket = "{private_tmux.socket}"\n')
    monkeypatch.setenv("TMUX_TMPDIR", str(private_tmux.tmpdir))
    monkeypatch.delenv("TMUX", raising=False)
    first = service()
    url, m = first
    # one server per database: a second one is refused while the first runs
    with pytest.raises(PlaneaiError, match="another `planeai plane serve`"):
        run_service(m, plane_client(m.config, m.locs), stop=threading.Event(), port=0,
                    secret=SECRET)
    wi = item(fake, plane)
    run, act = fake.create_run(plane["pid"], wi["id"], "ASK-FIRST please")
    rid = run["id"]
    assert fake.send_webhook(url, "agent_run_create", fake.payload("agent_run_create", run, act),
                             secret=SECRET)[0] == 202
    retry_until(lambda: fake.runs[rid]["status"] == "awaiting", message="the question")
    first.stop()
    # the server restarted: it finds the run in the database, the reply reaches its session
    url2, m2 = service()
    reply = fake.user_prompt(rid, "yes from the second server")
    assert fake.send_webhook(url2, "agent_run_user_prompt",
                             fake.payload("agent_run_user_prompt", fake.runs[rid], reply),
                             secret=SECRET)[0] == 202
    retry_until(lambda: fake.runs[rid]["status"] == "completed", message="the response")
    key = m2.store.plane_run(rid).task_key
    retry_until(lambda: "got: yes from the second server" in logs(m2, key),
                message="the reply in the session the first server started")
    # a stop request ends the session and the run
    stop = fake.user_prompt(rid, "stop", signal="stop")
    assert fake.send_webhook(url2, "agent_run_user_prompt",
                             fake.payload("agent_run_user_prompt", fake.runs[rid], stop),
                             secret=SECRET)[0] == 202
    retry_until(lambda: types(fake, rid).count("response") == 2, message="the stop answer")
    assert "Stopped" in fake.posted(rid)[-1]["content"]["body"]
    retry_until(lambda: m2.store.sessions_for_task(key)[0].state.value == "exited",
                message="the session to end")
