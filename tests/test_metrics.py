"""Session metrics, stats and budgets (issue 16): times from the status history, tokens and
cost from the agent CLIs' own records (the real Claude Code and Codex CLIs against scripted
endpoints with known usage), figures that outlive their sessions, `planeai stats`, budgets.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from conftest import trusted_repo_provider
from planeai import config as config_mod
from planeai.agents_usage import records
from planeai.agents_usage.claude import ClaudeTranscripts, project_dir_name
from planeai.agents_usage.usage import Tokens
from planeai.core.models import SessionState
from planeai.paths import locations
from planeai.services import metrics
from planeai.services.context import open_store
from planeai.services.metrics import MetricsCollector, over_budget, spent
from planeai.services.projects import add_project
from planeai.services.sessions import SessionManager
from planeai.services.tasks import add_task
from tests.support.anthropic_endpoint import ScriptedAnthropic, Text, ToolUse
from tests.support.claude_cli import claude_bin, claude_env
from tests.support.codex_cli import codex_bin, codex_env
from tests.support.openai_endpoint import ScriptedOpenAI
from tests.support.openai_endpoint import Text as OText
from tests.support.openai_endpoint import ToolUse as OToolUse
from tests.support.polling import retry_until

needs_claude = pytest.mark.skipif(claude_bin() is None, reason="Claude Code CLI not installed "
                                  "(npm install -g @anthropic-ai/claude-code)")
needs_codex = pytest.mark.skipif(codex_bin() is None, reason="Codex CLI not installed "
                                 "(npm install -g @openai/codex)")
needs_tmux = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")

# Anthropic's list price of Sonnet (providers/claude.toml [prices]), USD per million tokens
SONNET = {"input": 3.0, "output": 15.0, "cache_write": 3.75, "cache_read": 0.30}


def _store():
    return open_store(locations())


def _config(text: str = "", tmp_path: Path | None = None):
    explicit = None
    if text:
        explicit = tmp_path / "planeai.toml"
        explicit.write_text(text)
    return config_mod.load(user_file=None, explicit=explicit, env={})


def _collector(store, cfg, env=None) -> MetricsCollector:
    m = SessionManager(store, cfg, locations(), env=env)
    return MetricsCollector(store, cfg, m.registry, env)


def _session(store, repo: Path, *, provider="claude", worktree: Path | None = None,
             task: str | None = "T"):
    p = store.find_project(repo.name) or add_project(store, repo)[0]
    key = add_task(store, p, task).key if task else None
    sid = os.urandom(4).hex()
    return store.add_session(id=sid, name=key or sid, project=p, task_key=key,
                             provider=provider, variant=None, backend="local",
                             worktree=str(worktree or repo), branch=None, autonomous=False,
                             argv=[provider])


def _iso(dt: datetime) -> str:
    return dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _claude_line(cwd: str, ts: datetime, *, mid: str | None = None, model="claude-sonnet-4-6",
                 usage: tuple[int, int, int, int] | None = None, kind="assistant",
                 compact: bool = False) -> str:
    rec = {"type": kind, "cwd": cwd, "sessionId": "s-1", "timestamp": _iso(ts),
           "uuid": os.urandom(8).hex()}
    if kind == "assistant":
        i, o, cw, cr = usage or (0, 0, 0, 0)
        rec["message"] = {"id": mid, "type": "message", "role": "assistant", "model": model,
                          "content": [{"type": "text", "text": "x" * 50}],
                          "usage": {"input_tokens": i, "output_tokens": o,
                                    "cache_creation_input_tokens": cw,
                                    "cache_read_input_tokens": cr}}
    else:
        rec["message"] = {"role": "user", "content": "do it"}
    # compact, as Claude Code writes it (read without decoding the content); spaced: another
    # layout, decoded whole
    return json.dumps(rec, separators=(",", ":") if compact else None) + "\n"


# ---------------------------------------------------------------- the readers, by hand


def test_transcript_reading_partial_growing_malformed_and_replaced(tmp_path):
    """What a live transcript looks like to a reader: a line half written, lines appended,
    a broken line, one response written as several records, a file started over."""
    cwd = str(tmp_path / "wt.x_1")
    t0 = datetime.now(timezone.utc)
    d = tmp_path / "home" / ".claude" / "projects" / project_dir_name(cwd)
    assert project_dir_name("/tmp/my_proj.x/wt") == "-tmp-my-proj-x-wt"  # as 2.1.197 names it
    d.mkdir(parents=True)
    f = d / "abc.jsonl"
    first = _claude_line(cwd, t0, kind="user") + _claude_line(cwd, t0, mid="m1",
                                                              usage=(100, 20, 300, 4000))
    second = _claude_line(cwd, t0, mid="m1", usage=(100, 25, 300, 4000))  # same response
    f.write_text(first + second[:40])  # the second record is being written
    w = records.Window(cwd, {"HOME": str(tmp_path / "home")}, t0 - timedelta(seconds=1), None)
    src, sources = ClaudeTranscripts(), {}
    assert records.collect(src, w, sources)
    assert records.session_models(sources) == {"claude-sonnet-4-6": Tokens(100, 20, 300, 4000)}
    with f.open("a") as fh:  # the rest of it, a broken line, another response
        fh.write(second[40:] + '{"type": "assistant", "message": {"usage": {"inp\n'
                 + _claude_line(cwd, t0, mid="m2", model="claude-haiku-4-5", usage=(1, 2, 0, 0)))
    records.collect(src, w, sources)
    assert records.session_models(sources) == {
        "claude-sonnet-4-6": Tokens(100, 25, 300, 4000),  # m1 counted once, its last figures
        "claude-haiku-4-5": Tokens(1, 2, 0, 0)}
    assert sources[str(f)]["malformed"] == 1
    size = f.stat().st_size
    assert sources[str(f)]["cur"][0] == size
    assert not records.collect(src, w, sources)  # nothing new: nothing read
    # replaced by a shorter file: what it held before no longer counts
    tmp = d / "new.tmp"
    tmp.write_text(_claude_line(cwd, t0, mid="m3", usage=(7, 7, 0, 0)))
    os.replace(tmp, f)
    records.collect(src, w, sources)
    assert records.session_models(sources) == {"claude-sonnet-4-6": Tokens(7, 7, 0, 0)}


def test_compact_and_spaced_records_read_alike(tmp_path):
    """Claude Code's own compact layout is read without decoding each line whole; any other
    layout is decoded in full: both give the same figures, and text that looks like usage
    inside a message's content is not taken for it."""
    t0 = datetime.now(timezone.utc)
    got = []
    for compact in (True, False):
        cwd = str(tmp_path / f"wt{int(compact)}")
        d = tmp_path / "home" / ".claude" / "projects" / project_dir_name(cwd)
        d.mkdir(parents=True)
        lines = [_claude_line(cwd, t0, kind="user", compact=compact)]
        for i in range(50):
            lines.append(_claude_line(cwd, t0, mid=f"m{i // 2}", usage=(i, 2 * i, 3, 4),
                                      compact=compact))
        tricky = json.loads(lines[-1])
        tricky["message"]["id"] = "m-last"
        tricky["message"]["content"] = [{"type": "tool_use", "name": "Agent", "input": {
            "model": "x", "usage": {"input_tokens": 10**9}}}]
        lines.append(json.dumps(tricky, separators=(",", ":") if compact else None) + "\n")
        (d / "t.jsonl").write_text("".join(lines))
        sources: dict = {}
        w = records.Window(cwd, {"HOME": str(tmp_path / "home")}, t0, None)
        records.collect(ClaudeTranscripts(), w, sources)
        got.append(records.session_models(sources))
    odd = sum(range(1, 50, 2))  # of each pair (one response, two records) the last counts
    assert got[0] == got[1] == {"claude-sonnet-4-6": Tokens(odd + 49, 2 * odd + 98, 78, 104)}


def test_transcripts_of_other_dirs_and_times_are_not_the_sessions(tmp_path):
    cwd = str(tmp_path / "wt")
    t0 = datetime.now(timezone.utc)
    d = tmp_path / "home" / ".claude" / "projects" / project_dir_name(cwd)
    d.mkdir(parents=True)
    # same directory name, but another cwd ("wt" vs "wt." mangle alike) or an older run
    (d / "other-cwd.jsonl").write_text(_claude_line(cwd + ".", t0, mid="a", usage=(5, 5, 0, 0)))
    (d / "older.jsonl").write_text(_claude_line(cwd, t0 - timedelta(hours=2), mid="b",
                                                usage=(6, 6, 0, 0)))
    (d / "mine.jsonl").write_text(_claude_line(cwd, t0 + timedelta(seconds=2), mid="c",
                                               usage=(9, 1, 0, 0)))
    (d / "starting.jsonl").write_text('{"type": "queue-operation"')  # no whole line yet
    w = records.Window(cwd, {"HOME": str(tmp_path / "home")}, t0, t0 + timedelta(minutes=1))
    sources: dict = {}
    records.collect(ClaudeTranscripts(), w, sources)
    assert records.session_models(sources) == {"claude-sonnet-4-6": Tokens(9, 1, 0, 0)}
    assert str(d / "starting.jsonl") not in sources  # asked again next time


# ---------------------------------------------------------------- times from the status log

TIMED_AGENT = """
import sys, time
def show(text):
    sys.stdout.write("\\x1b[2J\\x1b[H" + text); sys.stdout.flush()
show("ready\\n> ")
time.sleep(2)
end = time.time() + 3
while time.time() < end:
    show("* working (esc to interrupt)\\n"); time.sleep(0.2)
show("Do you want to proceed? (y/n) ")
time.sleep(2)
sys.exit(3)
"""


def test_busy_idle_needs_input_times_of_a_scripted_agent(repo, tmp_path):
    """An agent idles 2 s, works 3 s, asks 2 s, exits 3: observed as the app and the
    dispatcher observe, its times come out within 0.8 s each (observation every 0.1 s,
    a screen change is seen within ~0.3 s; start-up counts in wall time only)."""
    agent = tmp_path / "timed_agent.py"
    agent.write_text(TIMED_AGENT)
    trusted_repo_provider(
        repo, "timed",
        f'name = "timed"\nbinary = "python3"\ncommand = ["{sys.executable}", "{agent}"]\n'
        '[status]\nneeds_input = ["Do you want to proceed\\\\?"]\n'
        'busy = ["esc to interrupt"]\nidle = ["^> ?\\\\Z"]\n')
    store = _store()
    p, _ = add_project(store, repo)
    key = add_task(store, p, "timed").key
    cfg = _config()
    m = SessionManager(store, cfg, locations())
    try:
        s = m.start(task_key=key, agent="timed", backend="local")
        retry_until(lambda: m.observe(s.id).session.state is SessionState.EXITED, timeout=40,
                    interval=0.1, message="the timed agent to finish")
        row = MetricsCollector(store, cfg, m.registry).update(store.get_session(s.id))
    finally:
        m.close()
    assert row.exit_code == 3
    assert abs(row.idle_s - 2) < 0.8, row
    assert abs(row.busy_s - 3) < 0.8, row
    assert abs(row.needs_input_s - 2) < 0.8, row
    assert 7 <= row.wall_s < 15
    assert row.tokens is None and row.cost_usd is None  # this CLI records nothing


# ---------------------------------------------------------------- the real CLIs


@pytest.fixture
def cli_tmux(tmp_path, planeai_home):
    import secrets

    socket = f"pm-{secrets.token_hex(4)}"
    tmpdir = Path("/tmp") / f"pm-{secrets.token_hex(3)}"
    tmpdir.mkdir()
    cfg = tmp_path / "planeai.toml"
    cfg.write_text(f'[tmux]\nsocket = "{socket}"\n[defaults]\nbackend = "tmux"\n')
    yield {"PLANEAI_CONFIG": str(cfg), "TMUX_TMPDIR": str(tmpdir)}
    env = {**os.environ, "TMUX_TMPDIR": str(tmpdir)}
    subprocess.run(["tmux", "-L", socket, "kill-server"], env=env, capture_output=True)
    shutil.rmtree(tmpdir, ignore_errors=True)


def _planeai(env: dict, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, "-m", "planeai.cli.main", *args], env=env,
                       capture_output=True, text=True, timeout=120)
    if ok:
        assert r.returncode == 0, r.stderr
    return r


@needs_claude
@needs_tmux
def test_real_claude_session_tokens_cost_and_history(repo, tmp_path, planeai_home, cli_tmux):
    """The real Claude Code CLI in a planeai session, answered by a scripted model whose every
    response reports known usage: the session's tokens are the sum over its responses, the
    cost is the price table times them, found from the HOME the agent ran with (stats runs
    with another HOME), and the figures stay once the session is archived."""
    usage = {"input_tokens": 1200, "output_tokens": 345, "cache_creation_input_tokens": 4000,
             "cache_read_input_tokens": 20000}
    worktree = planeai_home / "data" / "worktrees" / repo.name / "PLA-1"
    script = [[Text("Writing it."), ToolUse("echo hi > made.txt")], [Text("All written.")]]
    with ScriptedAnthropic(script, usage=usage) as api:
        env = claude_env(tmp_path / "agent-home", [worktree], api.url)
        env.update({"PLANEAI_HOME": str(planeai_home), **cli_tmux,
                    "PATH": str(Path(sys.executable).parent) + os.pathsep + env["PATH"]})
        _planeai(env, "project", "add", str(repo))
        _planeai(env, "task", "add", "Write a file", "--project", "PLA")
        _planeai(env, "session", "start", "PLA-1", "--provider", "claude-sonnet", "--yolo")

        def status() -> str:
            return json.loads(_planeai(env, "session", "list", "--json").stdout)[0][
                "agent_status"]

        retry_until(lambda: status() == "idle", timeout=90, interval=0.3,
                    message="claude at its prompt")
        _planeai(env, "session", "send", "PLA-1", "Please write the file.")
        retry_until(lambda: (worktree / "made.txt").exists() and status() == "idle"
                    and len(api.main_turns()) == 2, timeout=90, interval=0.3,
                    message="both turns answered, claude idle again")
        other = {**env, "HOME": str(tmp_path / "someone-else")}
        n = sum(1 for r in api.requests if r["method"] == "POST" and r["path"] == "/v1/messages")

        def stats() -> dict:
            return json.loads(_planeai(other, "stats", "--by", "session", "--json").stdout)

        got = retry_until(lambda: (s := stats())["total"]["tokens"] and s["total"]["tokens"][
            "output"] == n * usage["output_tokens"] and s, timeout=30, interval=0.3,
            message="every response's tokens in the stats")
    expect = {"input": n * 1200, "output": n * 345, "cache_write": n * 4000,
              "cache_read": n * 20000}
    assert n >= 2
    assert got["total"]["tokens"] == expect
    cost = sum(expect[k] * SONNET[k] for k in expect) / 1e6
    assert got["total"]["cost_usd"] == pytest.approx(cost)
    assert got["groups"][0]["key"] == "PLA-1" and got["total"]["cost_estimated"] is True
    text = _planeai(other, "stats").stdout
    assert "PLA-1" in text and f"~${cost:,.4f}" in text and "in 3600" not in text
    # archived, the session is forgotten by its backend; its figures stay (deletion of a
    # session's row: test_stats_cli_json_and_kept_after_delete)
    _planeai(env, "session", "archive", "PLA-1")
    assert json.loads(_planeai(env, "session", "list", "--json").stdout) == []
    after = json.loads(_planeai(other, "stats", "--json").stdout)
    assert after["total"]["tokens"] == expect and after["groups"][0]["key"] == "PLA-1"
    assert after["total"]["cost_usd"] == pytest.approx(cost)


@needs_claude
def test_real_claude_subagent_transcripts_count(repo, tmp_path):
    """A sub-agent (the Agent tool) writes its own transcript next to the session's: its
    responses count too, once each (3 responses: the call, the sub-agent, the answer)."""

    class AgentCall(ToolUse):
        def input(self) -> dict:
            return {"description": "greet", "prompt": "say hi",
                    "subagent_type": "general-purpose"}

    store = _store()
    wt = tmp_path / "wt"
    wt.mkdir()
    s = _session(store, repo, worktree=wt)
    script = [[AgentCall("", name="Agent")], [Text("hi from the sub-agent")], [Text("done")]]
    with ScriptedAnthropic(script, usage={"input_tokens": 7, "output_tokens": 3}) as api:
        env = claude_env(tmp_path / "home", [wt], api.url)
        r = subprocess.run(["claude", "-p", "greet", "--dangerously-skip-permissions"], cwd=wt,
                           env=env, capture_output=True, text=True, timeout=120)
        n = sum(1 for q in api.requests if q["method"] == "POST" and q["path"] == "/v1/messages")
    assert r.returncode == 0, r.stderr
    assert n == 3
    row = _collector(store, _config(), env).update(store.get_session(s.id))
    assert row.tokens == Tokens(7 * n, 3 * n, 0, 0)
    assert any("/subagents/" in path for path in row.sources)


@needs_codex
def test_real_codex_rollout_tokens(repo, tmp_path):
    """The real Codex CLI run in a session's worktree: its rollout's token counts become the
    session's (cached input apart), priced by a [prices] models entry in the config."""
    store = _store()
    wt = tmp_path / "wt"
    wt.mkdir()
    s = _session(store, repo, provider="codex", worktree=wt)
    with ScriptedOpenAI([[OText("Running."), OToolUse("echo hi > f.txt")],
                         [OText("done")]]) as api:
        env = codex_env(tmp_path / "home", [wt], api.url)
        r = subprocess.run(["codex", "exec", "--skip-git-repo-check",
                            "--dangerously-bypass-approvals-and-sandbox", "do it"], cwd=wt,
                           env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=120)
        turns = len(api.main_turns())
    assert r.returncode == 0, r.stderr
    cfg = _config('[prices.models]\n"gpt-5-codex" = { input = 1.25, output = 10.0, '
                  'cache_read = 0.125 }\n', tmp_path)
    row = _collector(store, cfg, env).update(store.get_session(s.id))
    assert turns == 2
    assert row.models == {"gpt-5-codex": Tokens(10 * turns, 10 * turns, 0, 0)}
    assert row.cost_usd == pytest.approx((20 * 1.25 + 20 * 10.0) / 1e6)


# ---------------------------------------------------------------- stats, history, budgets


def _write_transcript(home: Path, cwd: str, usage: tuple[int, int, int, int],
                      model="claude-sonnet-4-6", when: datetime | None = None) -> None:
    d = home / ".claude" / "projects" / project_dir_name(cwd)
    d.mkdir(parents=True, exist_ok=True)
    t = when or datetime.now(timezone.utc)
    (d / f"{os.urandom(4).hex()}.jsonl").write_text(
        _claude_line(cwd, t, kind="user") + _claude_line(cwd, t, mid=os.urandom(3).hex(),
                                                         model=model, usage=usage))


def test_stats_cli_json_and_kept_after_delete(repo, tmp_path, run_cli, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    store = _store()
    wt1, wt2 = tmp_path / "wt1", tmp_path / "wt2"
    for wt in (wt1, wt2):  # real worktrees: `session delete` removes them
        subprocess.run(["git", "-C", str(repo), "worktree", "add", "-q", "--detach", str(wt)],
                       check=True)
    a = _session(store, repo, worktree=wt1, task="first")
    b = _session(store, repo, worktree=wt2, task="second", provider="shell")
    _write_transcript(home, str(wt1), (1000, 2000, 0, 0))
    _write_transcript(home, str(wt2), (5, 5, 0, 0))  # a shell records nothing: not read
    for s in (a, b):
        store.update_session(s.id, state="exited", exit_code=0,
                             exited_at=datetime.now(timezone.utc).isoformat())
    code, out, err = run_cli("stats", "--json")
    assert code == 0, err
    data = json.loads(out)
    groups = {g["key"]: g for g in data["groups"]}
    assert groups[a.task_key]["tokens"] == {"input": 1000, "output": 2000, "cache_write": 0,
                                            "cache_read": 0}
    assert groups[a.task_key]["cost_usd"] == pytest.approx((1000 * 3 + 2000 * 15) / 1e6)
    assert groups[b.task_key]["tokens"] is None and groups[b.task_key]["cost_usd"] is None
    assert data["total"]["sessions_without_tokens"] == 1
    code, out, _ = run_cli("stats")
    lines = {ln.split()[0]: ln for ln in out.splitlines()}
    assert "tokens unknown" in lines[b.task_key] and "cost unknown" in lines[b.task_key]
    assert "~$0.0330" in lines[a.task_key] and "in 1000 out 2000" in lines[a.task_key]
    code, out, err = run_cli("session", "delete", a.name, "--force")
    assert code == 0, err
    code, out, _ = run_cli("stats", "--by", "project", "--json")
    data = json.loads(out)
    assert data["groups"][0]["key"] == repo.name and data["groups"][0]["sessions"] == 2
    assert data["total"]["tokens"]["output"] == 2000
    code, out, _ = run_cli("stats", "--by", "day", "--json")
    assert json.loads(out)["groups"][0]["key"] == datetime.now(timezone.utc).date().isoformat()
    code, out, _ = run_cli("stats", "--since", "1h", "--by", "agent", "--json")
    assert {g["key"] for g in json.loads(out)["groups"]} == {"claude", "shell"}
    code, out, _ = run_cli("stats", "--since", "2999-01-01")
    assert code == 0 and out.startswith("no sessions")


def test_stats_bad_input_is_one_line(run_cli):
    code, out, err = run_cli("stats", "--since", "yesterday-ish")
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "YYYY-MM-DD" in err and "Traceback" not in err
    code, out, err = run_cli("stats", "--project", "nope")
    assert code == 1 and "no project 'nope'" in err


def test_budgets_stop_new_work_and_resume_when_raised(repo, tmp_path, monkeypatch):
    home = tmp_path / "home"
    store = _store()
    wt = tmp_path / "wt"
    wt.mkdir()
    s = _session(store, repo, worktree=wt)
    _write_transcript(home, str(wt), (0, 100_000, 0, 0))  # $1.50 of Sonnet output
    p = store.get_project_by_id(s.project_id)
    cfg = _config(f'[budgets]\nprojects = {{ {p.name} = 1.0 }}\n', tmp_path)
    assert over_budget(store, cfg, p) is None  # nothing measured yet
    _collector(store, cfg, {"HOME": str(home)}).update(s)
    got = spent(store, p.id, budget=cfg.budgets.for_project(p.name))
    assert got.usd == pytest.approx(1.5) and got.over and got.sessions == 1
    reason = over_budget(store, cfg, p)
    assert reason and "$1.50" in reason and "$1.00" in reason and p.name in reason
    store.delete_session(s.id)  # a deleted session still counts
    assert over_budget(store, cfg, p) == reason
    raised = _config(f'[budgets]\nprojects = {{ {p.name} = 5.0 }}\n'
                     f'tasks = {{ "{s.task_key}" = 1.25 }}\n', tmp_path)
    assert over_budget(store, raised, p) is None
    assert s.task_key in over_budget(store, raised, p, s.task_key)
    unset = _config("[budgets]\ndefault_usd = 0\n", tmp_path)
    assert over_budget(store, unset, p, s.task_key) is None
    assert metrics.hard_limit(store, cfg, s, p) is None  # hard_stop is off by default


def test_throttled_updates_on_every_tick_read_only_now_and_then(repo, tmp_path):
    """Called on every observer tick with min_interval, a live session's records are read at
    most that often; an ended session is read at once (its last figures)."""
    home = tmp_path / "home"
    wt = tmp_path / "wt"
    wt.mkdir()
    store = _store()
    s = _session(store, repo, worktree=wt)
    _write_transcript(home, str(wt), (1, 1, 0, 0))
    c = _collector(store, _config(), {"HOME": str(home)})
    assert c.update(s, min_interval=3600).tokens == Tokens(1, 1, 0, 0)
    _write_transcript(home, str(wt), (2, 2, 0, 0))
    assert c.update(s, min_interval=3600).tokens == Tokens(1, 1, 0, 0)  # not read again yet
    assert c.update(s).tokens == Tokens(3, 3, 0, 0)
    _write_transcript(home, str(wt), (4, 4, 0, 0))
    ended = store.update_session(s.id, state="exited", exit_code=0,
                                 exited_at=datetime.now(timezone.utc).isoformat())
    assert c.update(ended, min_interval=3600).tokens == Tokens(7, 7, 0, 0)
    assert metrics.session_metrics(store, s.id).tokens == Tokens(7, 7, 0, 0)


def test_budget_and_price_config_errors(tmp_path):
    for text, needle in (
            ('[budgets]\ndefault_usd = -1\n', "0..1000000000"),
            ('[budgets]\nprojects = { web = "lots" }\n', "web ="),
            ('[prices.models]\n"x" = { input = 1 }\n', "needs output"),
            ('[prices.models]\n"x" = { input = 1, output = 2, cached = 3 }\n', "unknown key")):
        with pytest.raises(config_mod.ConfigError) as e:
            _config(text, tmp_path)
        assert needle in str(e.value) and "planeai.toml" in str(e.value)


def test_config_prices_override_the_provider_file(repo, tmp_path):
    store = _store()
    home = tmp_path / "home"
    wt = tmp_path / "wt"
    wt.mkdir()
    s = _session(store, repo, worktree=wt)
    _write_transcript(home, str(wt), (1_000_000, 0, 0, 0), model="claude-mystery-9")
    row = _collector(store, _config(), {"HOME": str(home)}).update(s)
    assert row.cost_usd is None and row.unpriced == ("claude-mystery-9",)
    cfg = _config('[prices.models]\n"claude-mystery-*" = { input = 2.0, output = 8.0 }\n',
                  tmp_path)
    store.save_metrics(row.__class__(**{**row.__dict__, "final": False}))
    assert _collector(store, cfg, {"HOME": str(home)}).update(s).cost_usd == pytest.approx(2.0)


def test_the_dispatcher_starts_no_work_on_a_project_over_budget(repo, tmp_path, planeai_home):
    """Over its budget: the ready task stays in todo, one `dispatch.over_budget` event (a
    notification, a hook) says why, and `dispatch status` shows it; raising the budget
    resumes dispatching."""
    from conftest import install_echo_agent

    from planeai.services.dispatch import Dispatcher, dispatch_status

    install_echo_agent(planeai_home / "config" / "providers")

    home = tmp_path / "home"
    store = _store()
    wt = tmp_path / "wt"
    wt.mkdir()
    s = _session(store, repo, worktree=wt)
    _write_transcript(home, str(wt), (0, 100_000, 0, 0))  # $1.50 of Sonnet output
    p = store.get_project_by_id(s.project_id)
    cfg = _config(f'[defaults]\nprovider = "echoer"\n[budgets]\nprojects = {{ {p.name} = 1.0 }}\n'
                  '[dispatch]\nbackend = "local"\n', tmp_path)
    m = SessionManager(store, cfg, locations(), env={**os.environ, "HOME": str(home)})
    try:
        m.collect_metrics(s)
        ready = add_task(store, p, "ready work").key
        d = Dispatcher(m)
        for _ in range(3):
            assert d.tick().dispatched == []
        assert store.get_task(ready).status.value == "todo" and not store.get_task(ready).held
        said = [e for e in store.events(limit=1000) if e.kind == "dispatch.over_budget"]
        assert len(said) == 1 and "$1.50" in said[0].data["reason"]
        assert p.name in dispatch_status(m).over_budget
        cfg.set("budgets", "projects", {p.name: 5.0})  # raised: work resumes
        assert ready in d.tick().dispatched
        assert dispatch_status(m).over_budget == {}
        for live in store.list_sessions(states=[SessionState.RUNNING]):
            m.stop(live.id)
    finally:
        m.close()
