"""Hosts ([hosts.NAME], `planeai host add|list|check|remove`) and commands over SSH, against a
real OpenSSH sshd on 127.0.0.1 whose second user stands in for another machine
(tests/support/sshd.py)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import tomllib
from pathlib import Path

import pytest

from planeai import config
from planeai.errors import ConfigError
from planeai.paths import locations
from planeai.remote.ssh import HostUnreachable, RemoteCommandError, Result, control_dir
from planeai.services import hosts
from support.cli_errors import one_line_error

ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "planeai.cli.main", *args], env=env,
                          capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def ok(*args: str) -> subprocess.CompletedProcess:
    r = cli(*args)
    assert r.returncode == 0, (r.stdout, r.stderr)
    return r


def user_config() -> Path:
    return locations().config_file


def hostile(canary: Path) -> str:
    """Text that runs `touch canary` if any shell or tmux format ever treats it as code."""
    return (f"~/it's \"here\" $(touch {canary}) `touch {canary}`; touch {canary} "
            f"#(touch {canary}) #{{pane_id}} a  b")


@pytest.fixture(autouse=True)
def _no_socket_dirs_left():
    """Each test's runtime dir is long, so its ssh sockets go to a short dir in /tmp:
    removed after (empty once the test closed its connections)."""
    yield
    d = control_dir(locations().runtime_dir)
    if d.parent == Path("/tmp"):
        d.rmdir()


def _close(name: str) -> None:
    """Close the host's shared connection (tests each have their own runtime dir)."""
    cfg = config.load(user_file=user_config(), env={})
    if name in cfg.hosts:
        hosts.connection(cfg.hosts[name], locations()).exit_master()


@pytest.fixture
def added(sshd):
    """`planeai host add box` for the test sshd; its connection closed at teardown."""
    ok("host", "add", "box", sshd.target, "--port", str(sshd.port),
       "--ssh-config", str(sshd.client_config))
    yield "box"
    _close("box")


# ---- config


def test_hosts_are_typed_config_with_defaults(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('[hosts.build-1]\nssh = "dev@build-1"\nrepos = { api = "/srv/api" }\n'
                 '[hosts.gpu_2]\nssh = "gpu"\nport = 2222\nmax_sessions = 8\nenabled = false\n')
    cfg = config.load(user_file=f, env={})
    b1, g2 = cfg.hosts["build-1"], cfg.hosts["gpu_2"]
    assert (b1.ssh, b1.port, b1.root, b1.repos, b1.enabled) == (
        "dev@build-1", 0, "~/.planeai", {"api": "/srv/api"}, True)
    assert (g2.port, g2.max_sessions, g2.enabled, g2.connect_timeout) == (2222, 8, False, 10)
    assert list(cfg.hosts) == ["build-1", "gpu_2"]


@pytest.mark.parametrize("table, needles", [
    ('[hosts.b]\nport = 22\n', [":1:", "[hosts.b] needs ssh"]),
    ('[hosts.b]\nssh = "-oProxyCommand=touch {canary}"\n', [":2:", "hosts.b.ssh", "not an ssh"]),
    ('[hosts.b]\nssh = "u@h -oProxyCommand=x"\n', ["hosts.b.ssh"]),
    ('[hosts.b]\nssh = "ssh://u@h"\n', ["hosts.b.ssh"]),
    ('[hosts.b]\nssh = "h"\nport = 70000\n', [":3:", "hosts.b.port", "0..65535"]),
    ('[hosts.b]\nssh = "h"\nroot = "relative/dir"\n', ["hosts.b.root", "starts with / or ~/"]),
    ('[hosts.b]\nssh = "h"\nroot = "~/a\\nb"\n', ["hosts.b.root", "control"]),
    ('[hosts.b]\nssh = "h"\nrepos = { api = "srv" }\n', ["hosts.b.repos", "api"]),
    ('[hosts.b]\nssh = "h"\nsshd = "x"\n', ["unknown key hosts.b.sshd"]),
    ('[hosts."a b"]\nssh = "h"\n', ["'a b'", "letters, digits"]),
    ('[hosts."$(touch {canary})"]\nssh = "h"\n', ["a name is letters"]),
    ('[hosts]\nb = "u@h"\n', ["hosts.b must be a table"]),
])
def test_a_bad_host_table_is_one_clear_line(table, needles, canary):
    user_config().parent.mkdir(parents=True, exist_ok=True)
    user_config().write_text(table.replace("{canary}", str(canary)))
    r = cli("host", "list")
    one_line_error(r, str(user_config()), *needles)


def test_a_repo_config_cannot_set_hosts(tmp_path):
    """A cloned repo must not point planeai at a machine (or make it run ssh with options)."""
    repo = tmp_path / "repo"
    (repo / ".planeai").mkdir(parents=True)
    (repo / ".planeai" / "config.toml").write_text('[hosts.evil]\nssh = "me@attacker"\n')
    with pytest.raises(ConfigError, match=r"config.toml:1: \[hosts.evil\] cannot be set by a "
                                          r"repo"):
        config.load(user_file=None, project_dir=repo, env={})
    assert "hosts" in config.HOST_ONLY and config.HOST_ONLY["hosts"] == set(config.HOST_KEYS)


def test_the_example_documents_every_host_key():
    """The example's [hosts.NAME] is commented out (a default config has no hosts); once
    uncommented it is a valid host with every key, each with a comment above it."""
    lines = (ROOT / "planeai.toml.example").read_text().splitlines()
    start = lines.index("# [hosts.build-1]")
    block = []
    for line in lines[start:]:
        if not line.startswith("# "):
            break
        block.append(line)
    body = [ln[2:] for ln in block if re.match(r"# (\[|[a-z_]+ = )", ln)]
    parsed = tomllib.loads("\n".join(body))
    config.validate(parsed, Path("example"), "")
    assert set(parsed["hosts"]["build-1"]) == set(config.HOST_KEYS)
    for i, line in enumerate(block[1:], 1):
        if re.match(r"# [a-z_]+ = ", line):
            assert not re.match(r"# ([a-z_]+ = |\[)", block[i - 1]), f"undocumented: {line}"


# ---- add / remove edit the user config


def test_add_and_remove_edit_exactly_that_table():
    f = user_config()
    f.parent.mkdir(parents=True, exist_ok=True)
    before = ('# my settings\n[defaults]\npriority = 3  # keep\n\n'
              '[hosts.old]\nssh = "old-box"\n\n[tmux]\nsocket = "mine"\n')
    f.write_text(before)
    ok("host", "add", "b1", "dev@build-1", "--port", "2200", "--max-sessions", "6",
       "--root", "/srv/planeai", "--repo", "api=/srv/api", "--repo", 'we b=~/s "p"=x')
    ok("host", "add", "b2", "gpu")
    cfg = config.load(user_file=f, env={})
    assert cfg.hosts["b1"].repos == {"api": "/srv/api", "we b": '~/s "p"=x'}
    assert (cfg.hosts["b1"].port, cfg.hosts["b1"].max_sessions) == (2200, 6)
    assert cfg.hosts["b2"].ssh == "gpu" and cfg.defaults.priority == 3
    listed = json.loads(ok("host", "list", "--json").stdout)
    assert [h["name"] for h in listed] == ["b1", "b2", "old"]
    ok("host", "remove", "b1")
    ok("host", "remove", "b2")
    assert f.read_text() == before  # comments, order and the other tables kept byte for byte
    ok("host", "remove", "old")
    assert "old" not in f.read_text() and "[tmux]" in f.read_text()
    assert config.load(user_file=f, env={}).tmux.socket == "mine"
    assert "no hosts" in ok("host", "list").stdout


@pytest.mark.parametrize("args, needles", [
    (["a b", "h"], ["a name is letters"]),
    (["$(touch {canary})", "h"], ["a name is letters"]),
    (["#(touch {canary})", "h"], ["a name is letters"]),
    (["b", "-oProxyCommand=touch {canary}"], ["hosts.b.ssh", "not an ssh destination"]),
    (["b", "u@h; touch {canary}"], ["hosts.b.ssh"]),
    (["b", "u@h", "--root", "x/$(touch {canary})"], ["hosts.b.root"]),
    (["b", "u@h", "--repo", "api"], ["--repo", "PROJECT=PATH"]),
    (["b", "u@h", "--port", "-1"], ["hosts.b.port"]),
])
def test_add_refuses_bad_input_and_leaves_the_file_alone(args, needles, canary):
    f = user_config()
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text("[defaults]\npriority = 1\n")
    r = cli("host", "add", *[a.format(canary=canary) for a in args])
    one_line_error(r, *needles)
    assert f.read_text() == "[defaults]\npriority = 1\n"


def test_a_symlinked_user_config_stays_a_symlink(tmp_path):
    real = tmp_path / "dotfiles" / "planeai.toml"
    real.parent.mkdir()
    real.write_text("[defaults]\npriority = 2\n")
    user_config().parent.mkdir(parents=True, exist_ok=True)
    user_config().symlink_to(real)
    ok("host", "add", "b", "h")
    assert user_config().is_symlink() and "[hosts.b]" in real.read_text()
    ok("host", "remove", "b")
    assert user_config().is_symlink() and real.read_text() == "[defaults]\npriority = 2\n"


def test_add_twice_and_remove_unknown_are_refused():
    ok("host", "add", "b", "h")
    one_line_error(cli("host", "add", "b", "other"), "'b' is already configured")
    one_line_error(cli("host", "remove", "nope"), "no host 'nope'", "known: b")
    one_line_error(cli("host", "check", "nope"), "no host 'nope'")


def test_remove_refuses_a_table_it_cannot_cut_out_cleanly():
    """A host written another way (inline under [hosts]) is left to the user's editor:
    nothing is changed rather than something else."""
    f = user_config()
    f.parent.mkdir(parents=True, exist_ok=True)
    text = '[hosts]\nb = { ssh = "h" }\n'
    f.write_text(text)
    one_line_error(cli("host", "remove", "b"), "not written as a [hosts.b] table")
    assert f.read_text() == text


def test_add_refuses_a_file_it_cannot_append_to():
    """`hosts` as an inline table cannot take a [hosts.NAME] after it: the re-parse catches
    it and the file is untouched."""
    f = user_config()
    f.parent.mkdir(parents=True, exist_ok=True)
    text = 'hosts = { a = { ssh = "h" } }\n'
    f.write_text(text)
    one_line_error(cli("host", "add", "b", "h2"), "nothing was changed")
    assert f.read_text() == text


def test_concurrent_adds_lose_nothing():
    cfg = config.load(user_file=user_config(), env={})
    names = [f"h{i}" for i in range(8)]
    errors = []

    def add(name):
        try:
            hosts.add(cfg, user_config(), name, hosts.table_for(name, name))
        except Exception as e:  # noqa: BLE001 - collected for the assert
            errors.append(e)

    threads = [threading.Thread(target=add, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(config.load(user_file=user_config(), env={}).hosts) == names


def test_a_toml_string_holds_any_text_exactly():
    for s in ['plain', 'q"uo\'te', "back\\slash", "tab\tnew\nline\x7f", "ünï ✓", "\\u0041"]:
        assert tomllib.loads(f"x = {hosts.toml_string(s)}")["x"] == s


def test_control_sockets_live_in_a_short_private_dir(tmp_path):
    short = control_dir(tmp_path / "r")
    assert short == tmp_path / "r" / "ssh" or len(str(tmp_path)) > 60
    deep = tmp_path / ("d" * 120)
    d = control_dir(deep)
    assert len(str(d)) + 17 + 16 < 108 and oct(d.stat().st_mode & 0o777) == "0o700"
    assert control_dir(deep) == d  # the same runtime dir, the same sockets
    d.rmdir()


# ---- against a real sshd


def test_add_list_check_remove_against_a_real_host(sshd, added, tmp_path):
    # a repo on the host, made by its user
    conn = hosts.connection(config.load(user_file=user_config(), env={}).hosts["box"],
                            locations())
    conn.run(["git", "init", "-q", "src/api"], check=True)
    _close("box")
    ok("host", "remove", "box")
    ok("host", "add", "box", sshd.target, "--port", str(sshd.port),
       "--ssh-config", str(sshd.client_config), "--repo", "api=~/src/api",
       "--repo", "web=/nowhere/web")
    listed = json.loads(ok("host", "list", "--json").stdout)
    assert listed == [{"name": "box", "ssh": sshd.target, "port": sshd.port, "max_sessions": 4,
                       "root": "~/.planeai", "repos": {"api": "~/src/api", "web": "/nowhere/web"},
                       "enabled": True, "ssh_config": str(sshd.client_config),
                       "connect_timeout": 10, "down": False, "down_reason": None}]

    r = ok("host", "check", "box")
    lines = {ln.split()[0] + (" " + ln.split()[1] if ln.startswith("repo") else ""): ln
             for ln in r.stdout.splitlines()}
    tmux_v = subprocess.run(["tmux", "-V"], capture_output=True, text=True).stdout.strip()
    git_v = subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.strip()
    assert re.match(rf"ssh\s+ok\s+Linux .*\s{sshd.user}@127\.0\.0\.1 ", lines["ssh"])
    assert re.match(rf"tmux\s+ok\s+{re.escape(tmux_v)}\s+/\S*/tmux$", lines["tmux"])
    assert re.match(rf"git\s+ok\s+{re.escape(git_v)}\s+/\S*/git$", lines["git"])
    home = str(sshd.home)
    assert re.match(rf"root\s+ok\s+-\s+{re.escape(home)}/\.planeai \(not there yet\)$",
                    lines["root"])
    assert re.match(rf"repo api\s+ok\s+-\s+{re.escape(home)}/src/api$", lines["repo api"])
    assert lines["repo web"].endswith("/nowhere/web: not a git repo there")

    data = json.loads(ok("host", "check", "box", "--json").stdout)
    assert data["ok"] is True and data["host"] == "box"
    items = {i["name"]: i for i in data["items"]}
    assert items["ssh"]["detail"].startswith(f"{sshd.user}@")  # ran as the second user
    assert items["tmux"]["version"] == tmux_v and items["git"]["version"] == git_v
    # every agent CLI planeai knows is listed: installed with its version, or absent
    for name in ("claude", "codex", "gemini", "aider"):
        assert name in items and items[name]["required"] is False
        if items[name]["ok"]:
            assert items[name]["version"] and items[name]["detail"].startswith("/")
        else:
            assert "not on PATH there" in items[name]["detail"]

    ok("host", "remove", "box")
    assert not conn.check_master()  # its shared connection is closed too
    assert json.loads(ok("host", "list", "--json").stdout) == []


def test_many_commands_share_one_connection(sshd, added):
    cfg = config.load(user_file=user_config(), env={})
    conn = hosts.connection(cfg.hosts["box"], locations())
    logins = sshd.logins()
    ok("host", "check", "box")
    ok("host", "check", "box")
    for i in range(5):
        assert conn.run(["echo", str(i)]).out == f"{i}\n"
    assert conn.check_master() and conn.control_path.exists()
    assert sshd.logins() - logins == 1       # one login for all of it
    assert len(sshd.connections()) == 1      # one connection (sshd child) held open
    conn.exit_master()
    assert not conn.check_master()
    assert conn.run(["true"]).ok and sshd.logins() - logins == 2  # a new one when needed


def test_hostile_text_reaches_the_host_as_plain_words(sshd, added, canary):
    """Paths and words with quotes, spaces, $(...), backticks, ; and #(...) are literal
    arguments there: echoed back exactly, used as a path, and nothing runs (no canary on
    either side: the host here shares /tmp)."""
    text = hostile(canary)
    cfg = config.load(user_file=user_config(), env={})
    conn = hosts.connection(cfg.hosts["box"], locations())
    assert conn.run(["printf", "%s", text]).out == text
    words = ["", " ", "-n", "a\nb", "tab\there", "*", "~", "$HOME", "'", "\\", "ünï ✓",
             "!!", "a;b|c&d>e<f", text]
    out = conn.run(["printf", "%s\\0", *words]).out  # each word as one argument, unchanged
    assert out.split("\0")[:-1] == words
    _close("box")
    ok("host", "remove", "box")
    ok("host", "add", "box", sshd.target, "--port", str(sshd.port),
       "--ssh-config", str(sshd.client_config), "--root", text, "--repo", f"p q={text}")
    data = json.loads(ok("host", "check", "box", "--json").stdout)
    items = {i["name"]: i for i in data["items"]}
    literal = str(sshd.home) + text[1:]
    assert items["root"]["detail"] == f"{literal} (not there yet)"
    assert items["repo p q"]["detail"].startswith(f"{literal}: not a git repo")
    assert not Path(literal).exists()


def test_a_command_failure_is_not_an_unreachable_host(sshd, added):
    cfg = config.load(user_file=user_config(), env={})
    conn = hosts.connection(cfg.hosts["box"], locations())
    assert conn.run(["sh", "-c", "echo out; echo err >&2; exit 3"]) == Result(3, "out\n", "err\n")
    assert conn.run(["sh", "-c", "exit 255"]).rc == 255  # the command's own 255
    with pytest.raises(RemoteCommandError, match=r"host box: sh failed \(exit 4\): bad"):
        conn.run(["sh", "-c", "echo bad >&2; exit 4"], check=True)
    assert conn.run(["cat"], input="fed in\n").out == "fed in\n"


def test_a_host_that_is_down_is_one_clear_line(sshd, added):
    ok("host", "check", "box")
    sshd.stop()
    try:
        r = cli("host", "check", "box", timeout=60)
        one_line_error(r, f"host box ({sshd.target}:{sshd.port}) is unreachable",
                       "Connection refused")
        cfg = config.load(user_file=user_config(), env={})
        with pytest.raises(HostUnreachable) as e:
            hosts.connection(cfg.hosts["box"], locations()).run(["true"])
        assert e.value.host == "box"
    finally:
        sshd.start()
    ok("host", "check", "box")  # back up: a new connection


def test_a_host_that_does_not_answer_times_out(tmp_path):
    """A port that accepts but never speaks SSH (a hung machine, a black hole): ssh gives up
    after the host's connect_timeout instead of waiting forever."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        ok("host", "add", "mute", "nobody@127.0.0.1", "--port", str(port),
           "--connect-timeout", "1", "--ssh-config", "/dev/null")
        r = cli("host", "check", "mute", timeout=30)  # ssh alone would wait for ever
    one_line_error(r, "host mute (nobody@127.0.0.1:", "is unreachable", "timed out")
