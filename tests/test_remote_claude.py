"""The real Claude Code CLI on another machine ([hosts.NAME]), end to end: a task dispatched
to the host runs `claude` there (the host's own login, HOME and tmux), driven by the scripted
model endpoint of this machine (tests/support/anthropic_endpoint.py) through a port the
host's SSH connection forwards; it commits in its worktree there, splits the work with
`planeai task add` (through the relay, onto this board), reports done, and its branch is
merged here. The API key is a stored secret: it reaches the agent there only through the
secrets step (a 0600 file on stdin), never a command line or tmux's environment there.

The "host" is a second Unix user on this machine logged in over a real sshd on 127.0.0.1
(tests/support/sshd.py); nothing is shared with it but what goes over SSH."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest

from planeai import config as config_mod
from planeai.backends.tmux import default_socket
from planeai.bundled import providers_dir
from planeai.paths import locations
from planeai.remote import relay
from planeai.services import hosts
from support.polling import retry_until
from tests.support.anthropic_endpoint import ScriptedAnthropic, Text, ToolUse
from tests.support.claude_cli import TASK_IN_PROMPT, claude_bin, claude_env

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "sk-ant-remote-" + uuid.uuid4().hex + "-planeai-test"

pytestmark = [
    pytest.mark.skipif(claude_bin() is None, reason="Claude Code CLI not installed"),
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Host:
    """The test's view of the host: the config that names it, its connection, and the
    setup a user does there once (Claude Code's own first-run config in the login's HOME)."""

    def __init__(self, sshd, tmp_path: Path) -> None:
        self.sshd, self.name = sshd, "box"
        self.root = f"~/.planeai-{uuid.uuid4().hex[:6]}"
        self.config_file = tmp_path / "planeai.toml"
        table = {"ssh": sshd.target, "port": sshd.port, "ssh_config": str(sshd.client_config),
                 "root": self.root, "connect_timeout": 5, "max_sessions": 1}
        body = "".join(f"{k} = {json.dumps(v)}\n" for k, v in table.items())
        # the key is a stored secret (a 0600 file here), not in planeai's environment
        self.config_file.write_text(
            '[defaults]\nprovider = "claude"\n[secrets]\nstore = "file"\n'
            "[dispatch]\nmax_sessions = 1\npoll_interval = 0.3\n"
            f"[hosts.{self.name}]\n{body}")

    def conn(self):
        cfg = config_mod.load(user_file=None, explicit=self.config_file, env={})
        return hosts.connection(cfg.hosts[self.name], locations())

    def run(self, *argv: str):
        return self.conn().run(list(argv))

    def home(self) -> str:
        return self.conn().home()

    def worktree(self, key: str) -> str:
        return f"{self.home()}/{self.root[2:]}/worktrees/{key}"

    def forward_port(self, remote_port: int, local_port: int) -> None:
        """127.0.0.1:remote_port there reaches 127.0.0.1:local_port here, over the host's
        master connection (as SshHost.forward_socket does for a unix socket)."""
        conn = self.conn()
        conn.connect()
        conn.forward_port(remote_port, local_port)

    def put(self, rel: str, data: str) -> None:
        """A file in the login's HOME there, written as that user (data on stdin)."""
        r = self.conn().run(["sh", "-c", 'mkdir -p -- "$HOME/$(dirname -- "$1")" && '
                             'cat > "$HOME/$1"', "sh", rel], input=data)
        assert r.ok, r.err

    def prepare_claude(self, tmp_path: Path, keys: list[str]) -> None:
        """What a person does once on the host: Claude Code set up (onboarding done, the
        worktrees' folders trusted, the API key approved, bypass mode accepted); the same
        files claude_env writes for a private HOME, made here and sent there."""
        staged = tmp_path / "claude-home-staged"
        claude_env(staged, [Path(self.worktree(k)) for k in keys], "http://unused",
                   api_key=API_KEY)
        self.put(".claude.json", (staged / ".claude.json").read_text())
        self.put(".claude/settings.json", (staged / ".claude" / "settings.json").read_text())

    def close(self) -> None:
        relay.stop_relay(locations(), self.name)
        try:
            self.conn().run(["tmux", "-L", default_socket(dict(os.environ)), "kill-server"])
        except Exception:
            pass
        self.conn().exit_master()


def cli_env(host: Host) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PLANEAI_CONFIG": str(host.config_file)}
    for k in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN",
              "ANTHROPIC_BASE_URL", "TMUX", "TMUX_PANE"):
        env.pop(k, None)
    return env


def ok(host: Host, *args: str, input: str | None = None, timeout: float = 120) -> str:
    r = subprocess.run([sys.executable, "-m", "planeai", *args], env=cli_env(host),
                       capture_output=True, text=True, timeout=timeout, input=input,
                       stdin=None if input is not None else subprocess.DEVNULL)
    assert r.returncode == 0, (r.stdout, r.stderr)
    return r.stdout


def claude_provider(base_url: str) -> str:
    """The user's own claude.toml: the bundled one with the endpoint in its env (what an
    agent gets there is its provider's env, not this machine's)."""
    text = (providers_dir() / "claude.toml").read_text()
    line = 'env = { DISABLE_AUTOUPDATER = "1" }'
    assert line in text
    extra = {"DISABLE_AUTOUPDATER": "1", "ANTHROPIC_BASE_URL": base_url,
             "DISABLE_TELEMETRY": "1", "DISABLE_ERROR_REPORTING": "1",
             "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
             "CLAUDE_CODE_DISABLE_TERMINAL_TITLE": "1"}
    return text.replace(line, "env = { " + ", ".join(f"{k} = {json.dumps(v)}"
                                                     for k, v in extra.items()) + " }")


def key_only_in_the_agent(host: Host, key: str, remote_port: int) -> None:
    """Mid-run, as the host's user: the key is in the agent's environment, and nowhere a
    person or another process there could read it (command lines, tmux's environment, the
    secrets file, which is gone once the agent runs)."""
    ps = host.run("ps", "-u", host.sshd.user, "-ww", "-o", "pid=,args=").out
    agents = [line.split(None, 1) for line in ps.splitlines()
              if "--dangerously-skip-permissions" in line and "claude" in line
              and "/bin/sh" not in line]
    assert agents, ps
    environ = host.run("cat", f"/proc/{agents[0][0]}/environ").out.split("\0")
    assert f"ANTHROPIC_API_KEY={API_KEY}" in environ
    assert f"ANTHROPIC_BASE_URL=http://127.0.0.1:{remote_port}" in environ
    assert API_KEY not in ps
    sock = default_socket(dict(os.environ))
    shown = [host.run("tmux", "-L", sock, "show-environment", *where)
             for where in (["-g"], ["-t", f"={key}"])]
    assert all(r.ok for r in shown), [r.err for r in shown]
    assert not any(API_KEY in r.out for r in shown)
    # (the key to look for on stdin: not a word of this command line either)
    left = host.conn().run(["sh", "-c", 'ls -- "$1"/sessions/*/secrets.env 2>/dev/null; '
                            'grep -rlF -f - -- "$1" 2>/dev/null', "sh",
                            host.home() + "/" + host.root[2:]], input=API_KEY + "\n")
    assert left.out == "", left.out


@pytest.fixture
def host(sshd, tmp_path, user_home):
    h = Host(sshd, tmp_path)
    yield h
    h.close()


def test_claude_on_a_host_commits_there_splits_onto_this_board_and_lands_here(
        host, tmp_path, repo, planeai_home):
    looked = threading.Event()   # the test has looked at the agent there mid-run
    asked = threading.Event()    # the parent's agent sent its first turn

    def script(body: dict):
        text = json.dumps(body["messages"])
        key, title = TASK_IN_PROMPT.search(text).groups()
        if '"tool_result"' in text:
            return [Text(f"{key} handled.")]
        if title.startswith("Take notes"):
            asked.set()
            looked.wait(120)  # the model "thinks" until the test has looked there
            cmd = (f"echo notes > notes.txt && git add notes.txt && "
                   f"git commit -qm '{key}: notes.txt' && "
                   f"planeai task add 'Write the summary' --host box && planeai task done {key}")
            return [Text("Writing the notes, then a subtask."), ToolUse(cmd)]
        cmd = (f"echo summary > summary.txt && git add summary.txt && "
               f"git commit -qm '{key}: summary.txt' && planeai task done {key}")
        return [ToolUse(cmd)]

    with ScriptedAnthropic(script) as api:
        api_port = int(api.url.rsplit(":", 1)[1])
        remote_port = _free_port()
        host.forward_port(remote_port, api_port)
        # the endpoint as the host sees it: its own 127.0.0.1, forwarded here
        probe = ["python3", "-c", "import sys, urllib.request; urllib.request.urlopen("
                 "urllib.request.Request(sys.argv[1], method='HEAD'), timeout=5)",
                 f"http://127.0.0.1:{remote_port}/"]
        retry_until(lambda: host.run(*probe).ok, message="the endpoint from the host")
        locations().user_providers_dir.mkdir(parents=True, exist_ok=True)
        (locations().user_providers_dir / "claude.toml").write_text(
            claude_provider(f"http://127.0.0.1:{remote_port}"))
        ok(host, "secret", "set", "claude", "ANTHROPIC_API_KEY", "--stdin", input=API_KEY)
        host.prepare_claude(tmp_path, ["PLA-1", "PLA-2"])
        ok(host, "project", "add", str(repo))
        key = ok(host, "task", "add", "Take notes", "--host", "box", "--project",
                 "PLA").strip()
        assert key == "PLA-1"

        dispatch = subprocess.Popen(
            [sys.executable, "-m", "planeai", "dispatch", "run", "--exit-when-idle"],
            env=cli_env(host), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        try:
            try:
                retry_until(asked.is_set, timeout=180, message="Claude there asking the model")
                key_only_in_the_agent(host, key, remote_port)
            finally:
                looked.set()
            out, err = dispatch.communicate(timeout=600)
        finally:
            if dispatch.poll() is None:  # a failure above: the dispatcher goes with the test
                dispatch.terminate()
                try:
                    dispatch.wait(30)
                except subprocess.TimeoutExpired:
                    dispatch.kill()
                    dispatch.wait()
        assert dispatch.returncode == 0, (out, err)
        main_keys = {r["headers"].get("x-api-key") for r in api.requests
                     if r["method"] == "POST" and r.get("main")}

    # the model was asked with the stored key, through the forwarded port only
    assert main_keys == {API_KEY}
    tasks = {t["key"]: t for t in json.loads(ok(host, "task", "list", "--json"))}
    assert set(tasks) == {"PLA-1", "PLA-2"}, tasks
    sub = tasks["PLA-2"]
    # the subtask Claude made there is on this board, under its task, and was worked there
    assert (sub["title"], sub["parent"], sub["status"]) == ("Write the summary", key, "done")
    assert tasks[key]["status"] == "done"
    sessions = json.loads(ok(host, "session", "list", "--json"))
    by_task = {s["name"]: s for s in sessions}
    assert by_task[key]["backend"] == "host:box" and by_task["PLA-2"]["backend"] == "host:box"
    # the commit is on the task's branch in its worktree there, not here
    wt = by_task[key]["worktree"]
    assert wt == host.worktree(key)
    subject = host.run("git", "-C", wt, "log", "-1", "--format=%s").out.strip()
    assert subject == f"{key}: notes.txt"
    sub_wt = by_task["PLA-2"]["worktree"]
    assert host.run("git", "-C", sub_wt, "log", "-1", "--format=%s").out.strip() \
        == "PLA-2: summary.txt"
    branch = host.run("git", "-C", wt, "rev-parse", "--abbrev-ref", "HEAD").out.strip()
    assert re.fullmatch(rf"planeai/{key}-take-notes", branch), branch
    assert not (repo / "notes.txt").exists()
    # and the branch made there merges here
    ok(host, "merge", key)
    assert (repo / "notes.txt").read_text() == "notes\n"
    log = subprocess.run(["git", "-C", str(repo), "log", "--format=%s", "main"],
                         capture_output=True, text=True, check=True).stdout
    assert f"{key}: notes.txt" in log
