"""`planeai secret`: values in the OS keyring (or the opted-in 0600 file), and their way to an
agent: in its environment, and nowhere else a person or another process could read them
(argv, tmux's environment, scrollback, the event log, the database, the session's files).

Real CLI processes, a real tmux server on a private socket, the real daemon, real SQLite.
The OS keyring is a test backend selected through PYTHON_KEYRING_BACKEND (this machine has no
desktop keyring); the machine's own answer (no backend) is checked too.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, retry_until
from support.cli_errors import one_line_error

needs_tmux = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")

FILE_STORE = '[secrets]\nstore = "file"\n'


def cli(env, *args, input=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "planeai.cli.main", *args], env=env, cwd=cwd,
                          input=input, capture_output=True, text=True, timeout=120)


def ok(env, *args, **kw):
    r = cli(env, *args, **kw)
    assert r.returncode == 0, (r.stdout, r.stderr)
    return r


@pytest.fixture
def cfg_env(tmp_path, planeai_home, user_home):
    """make(config) -> an environment whose PLANEAI_CONFIG holds ``config``."""

    def make(config: str = "", **extra):
        cfg = tmp_path / "planeai.toml"
        cfg.write_text(config)
        return {**os.environ, "PLANEAI_CONFIG": str(cfg), **extra}

    return make


@pytest.fixture
def keyring_env(cfg_env, tmp_path):
    """The default store (keyring) with a keyring backend that works without a desktop."""
    return cfg_env("", PYTHON_KEYRING_BACKEND="file_keyring.FileKeyring",
                   PYTHONPATH=os.pathsep.join([str(ROOT / "tests" / "support"), str(ROOT)]),
                   TEST_KEYRING_FILE=str(tmp_path / "keyring.json"))


def _round_trip(env):
    value = "sk-ant-" + secrets.token_hex(8)
    assert "no secrets set" in ok(env, "secret", "list").stdout
    r = ok(env, "secret", "set", "claude", "ANTHROPIC_API_KEY", "--stdin", input=value + "\n")
    assert value not in r.stdout + r.stderr
    r = ok(env, "secret", "get", "claude", "ANTHROPIC_API_KEY")
    assert "is set" in r.stdout and value not in r.stdout
    assert ok(env, "secret", "get", "claude", "ANTHROPIC_API_KEY", "--show").stdout == value + "\n"
    ok(env, "secret", "set", "planeai", "JIRA_API_TOKEN", "--stdin", input="jira-tok")
    assert json.loads(ok(env, "secret", "list", "--json").stdout) == [
        {"provider": "claude", "name": "ANTHROPIC_API_KEY"},
        {"provider": "planeai", "name": "JIRA_API_TOKEN"}]
    listed = ok(env, "secret", "list").stdout
    assert "claude" in listed and "ANTHROPIC_API_KEY" in listed and value not in listed
    ok(env, "secret", "delete", "claude", "ANTHROPIC_API_KEY")
    assert "is not set" in ok(env, "secret", "get", "claude", "ANTHROPIC_API_KEY").stdout
    one_line_error(cli(env, "secret", "get", "claude", "ANTHROPIC_API_KEY", "--show"), "not set")
    one_line_error(cli(env, "secret", "delete", "claude", "ANTHROPIC_API_KEY"), "not set")
    assert json.loads(ok(env, "secret", "list", "--json").stdout) == [
        {"provider": "planeai", "name": "JIRA_API_TOKEN"}]
    return value


def test_file_store_round_trip_is_a_private_file(cfg_env, planeai_home):
    env = cfg_env(FILE_STORE)
    value = _round_trip(env)
    f = planeai_home / "config" / "secrets.json"
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    assert value not in f.read_text()  # deleted
    assert "jira-tok" in f.read_text()
    # a file others can read is refused, not used
    os.chmod(f, 0o644)
    one_line_error(cli(env, "secret", "list"), "readable by others", "chmod 600")


def test_keyring_store_round_trip(keyring_env, tmp_path, planeai_home):
    value = _round_trip(keyring_env)
    kept = (tmp_path / "keyring.json").read_text()
    assert "jira-tok" in kept and value not in kept
    assert not (planeai_home / "config" / "secrets.json").exists()


def test_no_keyring_backend_says_how_and_writes_nothing(cfg_env, planeai_home):
    # what keyring answers on this headless machine, made explicit so a CI box with a
    # desktop keyring gives the same answer
    env = cfg_env("", PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    r = cli(env, "secret", "set", "claude", "ANTHROPIC_API_KEY", "--stdin", input="sk-1")
    one_line_error(r, "no OS keyring", 'store = "file"')
    one_line_error(cli(env, "secret", "list"), "no OS keyring")
    assert not (planeai_home / "config" / "secrets.json").exists()


def test_bad_names_and_values_are_refused(cfg_env, planeai_home):
    env = cfg_env(FILE_STORE)
    one_line_error(cli(env, "secret", "set", "claude", "OPENAI_API_KEY", "--stdin", input="x"),
                   "accepted: ANTHROPIC_API_KEY, CLAUDE_CODE_OAUTH_TOKEN")
    one_line_error(cli(env, "secret", "set", "nosuch", "X", "--stdin", input="x"),
                   "no provider 'nosuch'", "claude", "planeai")
    # planeai's own tokens belong to planeai, never to an agent's provider
    one_line_error(cli(env, "secret", "set", "claude", "JIRA_API_TOKEN", "--stdin",
                       input="x"), "accepted:")
    one_line_error(cli(env, "secret", "set", "planeai", "ANTHROPIC_API_KEY", "--stdin",
                       input="x"), "accepted: JIRA_API_TOKEN, PLANE_API_KEY")
    one_line_error(cli(env, "secret", "set", "claude", "ANTHROPIC_API_KEY", "--stdin",
                       input="two\nlines"), "one line")
    one_line_error(cli(env, "secret", "set", "claude", "ANTHROPIC_API_KEY", "--stdin",
                       input=""), "empty")
    # no terminal and no --stdin: no prompt, nothing stored
    one_line_error(cli(env, "secret", "set", "claude", "ANTHROPIC_API_KEY", input=""),
                   "--stdin")
    # a value on the command line is not even accepted
    r = cli(env, "secret", "set", "claude", "ANTHROPIC_API_KEY", "sk-on-argv")
    assert r.returncode == 2 and "sk-on-argv" not in r.stdout
    assert not (planeai_home / "config" / "secrets.json").exists()


def test_a_repo_config_cannot_choose_the_plaintext_store(cfg_env, repo):
    (repo / ".planeai").mkdir()
    (repo / ".planeai" / "config.toml").write_text(FILE_STORE)
    env = cfg_env("")
    ok(env, "project", "add", str(repo))
    one_line_error(cli(env, "secret", "list", cwd=repo), "secrets.store cannot be set by a repo")


# ---------------------------------------------------------------------- into a session
STORED = "sk-stored-" + secrets.token_hex(6)      # set with `planeai secret set`
FROM_ENV = "tok-env-" + secrets.token_hex(6)      # the provider's other secret, from the env
SHADOWED = "sk-shadowed-" + secrets.token_hex(6)  # the environment's value of a stored one
OTHER = "sk-other-" + secrets.token_hex(6)        # another provider's key
CANARIES = (STORED, FROM_ENV, SHADOWED, OTHER)


def _tree_holding(root: Path, needle: bytes, *skip: Path) -> list[str]:
    hits = []
    for p in root.rglob("*"):
        if p.is_file() and not p.is_symlink() and not any(p.is_relative_to(s) for s in skip):
            try:
                if needle in p.read_bytes():
                    hits.append(str(p))
            except OSError:
                pass
    return hits


def _install_envdump(planeai_home: Path) -> None:
    """An agent that writes the secrets it got to a file, then waits."""
    (planeai_home / "config" / "providers").mkdir(parents=True)
    (planeai_home / "config" / "providers" / "envdump.toml").write_text(
        'name = "envdump"\nbinary = "sh"\nsecrets = ["ANTHROPIC_API_KEY", "ENVDUMP_TOKEN"]\n'
        'command = ["sh", "-c", "printf \'%s|%s|%s\' \\"$ANTHROPIC_API_KEY\\" '
        '\\"$ENVDUMP_TOKEN\\" \\"$OPENAI_API_KEY\\" > \\"$PLANEAI_WORKTREE/got.tmp\\" && '
        'mv \\"$PLANEAI_WORKTREE/got.tmp\\" \\"$PLANEAI_WORKTREE/got\\"; exec sleep 600"]\n')


@needs_tmux
@pytest.mark.parametrize("backend", ["tmux", "daemon"])
def test_a_stored_secret_reaches_the_agent_and_nothing_else(backend, tmux_cli_env, private_tmux,
                                                            planeai_home, repo):
    env = tmux_cli_env(f'[defaults]\nbackend = "{backend}"\n' + FILE_STORE,
                       ANTHROPIC_API_KEY=SHADOWED, ENVDUMP_TOKEN=FROM_ENV, OPENAI_API_KEY=OTHER)
    _install_envdump(planeai_home)
    ok(env, "project", "add", str(repo))
    ok(env, "secret", "set", "envdump", "ANTHROPIC_API_KEY", "--stdin", input=STORED)
    ok(env, "task", "add", "Use the key", "--project", "PLA")
    try:
        ok(env, "session", "start", "PLA-1", "--provider", "envdump")
        s = json.loads(ok(env, "session", "list", "--json").stdout)[0]
        got = Path(s["worktree"]) / "got"
        retry_until(got.exists, message="the agent's report")
        # stored wins over the environment; the env-only one comes through; no other provider's
        assert got.read_text() == f"{STORED}|{FROM_ENV}|"

        ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
        for c in CANARIES:
            assert c not in ps
        if backend == "tmux":
            for scope in (["-g"], ["-t", "=PLA-1"]):
                shown = subprocess.run(["tmux", "-L", private_tmux.socket, "show-environment",
                                        *scope], env=env, capture_output=True, text=True)
                assert shown.returncode == 0, shown.stderr
                for c in CANARIES:
                    assert c not in shown.stdout, scope
        logs = ok(env, "session", "logs", "PLA-1").stdout
        events = ok(env, "events", "--json").stdout
        assert "session.started" in events
        for c in CANARIES:
            assert c not in logs and c not in events
        # the database, logs, the session's own dir: nothing under planeai's home but the
        # store the user chose (and the agent's own report) holds the value, and the
        # hand-over file is gone
        store = planeai_home / "config" / "secrets.json"
        for c in CANARIES:
            assert _tree_holding(planeai_home, c.encode(), store, got) == [], c
        state = planeai_home / "state" / "sessions" / s["id"]
        assert state.is_dir() and not (state / "secrets.env").exists()
        db = planeai_home / "data" / "planeai.db"
        assert db.exists() and STORED.encode() not in db.read_bytes()

        # a restart hands them over again, the same way
        ok(env, "session", "stop", "PLA-1")
        got.unlink()
        ok(env, "session", "restart", "PLA-1")
        retry_until(got.exists, message="the restarted agent's report")
        assert got.read_text() == f"{STORED}|{FROM_ENV}|"
        assert not (state / "secrets.env").exists()
    finally:
        cli(env, "session", "stop", "PLA-1")
        if backend == "daemon":
            cli(env, "daemon", "stop")


def test_a_stored_key_makes_a_provider_usable(cfg_env, planeai_home):
    """The dispatcher, `planeai run` and `provider check` ask one function: a key stored with
    `planeai secret set` counts like one in the environment."""
    env = cfg_env(FILE_STORE)
    env.pop("ENVDUMP_TOKEN", None)
    (planeai_home / "config" / "providers").mkdir(parents=True)
    (planeai_home / "config" / "providers" / "keyed.toml").write_text(
        'name = "keyed"\nbinary = "sh"\nsecrets = ["ENVDUMP_TOKEN"]\n'
        'login_files = ["~/.keyed-login"]\ncommand = ["sh"]\n')
    r = cli(env, "provider", "check", "keyed", "--json")
    assert r.returncode == 1 and json.loads(r.stdout)[0]["ok"] is False
    ok(env, "secret", "set", "keyed", "ENVDUMP_TOKEN", "--stdin", input="tok-1")
    got = json.loads(ok(env, "provider", "check", "keyed", "--json").stdout)[0]
    assert got["ok"] is True and got["secrets_ok"] is True


def test_planeais_own_tokens_are_read_stored_first(cfg_env, monkeypatch):
    env = cfg_env(FILE_STORE)
    ok(env, "secret", "set", "planeai", "PLANE_API_KEY", "--stdin", input="plane-stored")
    monkeypatch.setenv("PLANEAI_CONFIG", env["PLANEAI_CONFIG"])
    from planeai.services.context import AppContext
    from planeai.services.secrets import Secrets

    ctx = AppContext.load()
    s = Secrets(ctx.config, ctx.locations)
    got_env = {"PLANE_API_KEY": "plane-env", "JIRA_API_TOKEN": "jira-env"}
    assert s.own("PLANE_API_KEY", got_env) == "plane-stored"
    assert s.own("JIRA_API_TOKEN", got_env) == "jira-env"
    assert s.own("PLANE_WEBHOOK_SECRET", got_env) is None


def test_the_local_backend_hands_them_over_the_same_way(cfg_env, planeai_home, repo,
                                                       monkeypatch):
    """The app's in-process backend: the same file and step, no secret in the PTY's env."""
    env = cfg_env(FILE_STORE, ENVDUMP_TOKEN=FROM_ENV)
    _install_envdump(planeai_home)
    ok(env, "project", "add", str(repo))
    ok(env, "task", "add", "Use the key", "--project", "PLA")
    ok(env, "secret", "set", "envdump", "ANTHROPIC_API_KEY", "--stdin", input=STORED)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    from planeai.services.context import AppContext

    with AppContext.load() as ctx:
        s = ctx.manager.start(task_key="PLA-1", agent="envdump", backend="local")
        try:
            got = Path(s.worktree) / "got"
            retry_until(got.exists, message="the agent's report")
            assert got.read_text() == f"{STORED}|{FROM_ENV}|"
            state = planeai_home / "state" / "sessions" / s.id
            assert not (state / "secrets.env").exists()
            assert STORED not in " ".join(ctx.store.get_session(s.id).argv)
        finally:
            ctx.manager.stop(s.id)


@needs_tmux
def test_set_prompts_without_echo_on_a_terminal(cfg_env, private_tmux, planeai_home):
    env = private_tmux.env(cfg_env(FILE_STORE))
    value = "sk-typed-" + secrets.token_hex(6)
    tmux = ["tmux", "-L", private_tmux.socket]
    subprocess.run([*tmux, "new-session", "-d", "-s", "typed", "-x", "120", "-y", "20",
                    sys.executable, "-m", "planeai.cli.main", "secret", "set", "claude",
                    "ANTHROPIC_API_KEY", ";", "set", "remain-on-exit", "on"],
                   env=env, check=True)

    def screen() -> str:
        return subprocess.run([*tmux, "capture-pane", "-p", "-t", "=typed:"], env=env,
                              capture_output=True, text=True).stdout

    retry_until(lambda: "(input hidden)" in screen(), message="the hidden prompt")
    subprocess.run([*tmux, "send-keys", "-t", "=typed:", "-l", value], env=env, check=True)
    subprocess.run([*tmux, "send-keys", "-t", "=typed:", "Enter"], env=env, check=True)
    retry_until(lambda: "set claude ANTHROPIC_API_KEY" in screen(), message="the answer")
    assert value not in screen()
    assert ok(env, "secret", "get", "claude", "ANTHROPIC_API_KEY", "--show").stdout == value + "\n"
