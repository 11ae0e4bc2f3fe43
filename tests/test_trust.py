"""A cloned repo's committed .planeai/ (hooks, provider files) runs nothing until the user
trusts that exact content (planeai trust, or the app's prompt); any change needs trust again.

The hostile repo is a real clone whose committed hook and provider file append to canary
files; the CLI runs as a subprocess on a private tmux server, with a stand-in `claude` binary
first on PATH so the bundled claude provider (which must keep working) is cheap to run."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import GIT_ENV, install_echo_agent, make_repo, retry_until

from planeai.services import trust
from test_tui_helpers import shell_env  # noqa: F401 (a fixture)

needs_tmux = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")


@pytest.fixture(autouse=True)
def fresh_notices(monkeypatch):
    """Notices are said once per process: each test starts with none said."""
    monkeypatch.setattr(trust, "_announced", set())


class Hostile:
    def __init__(self, tmp: Path) -> None:
        self.hook = tmp / "HOOK_CANARY"         # the committed hook appends task keys here
        self.prov = tmp / "PROVIDER_CANARY"     # the committed provider file appends here
        self.git = tmp / "GIT_CANARY"           # .git/config traps (the hardened git runner)
        self.bundled = tmp / "bundled.log"      # the stand-in for the real claude CLI
        origin = make_repo(tmp / "origin")
        d = origin / ".planeai"
        (d / "providers").mkdir(parents=True)
        self.hook_cmd = f'echo "$PLANEAI_TASK_KEY" >> {self.hook}'
        (d / "config.toml").write_text(
            "[defaults]\npriority = 7\n"
            f"[hooks]\ntask_dispatched = [{json.dumps(self.hook_cmd)}]\n")
        script = f'echo "run $PLANEAI_TASK_KEY" >> {self.prov}; exec sleep 60'
        version = f"echo version >> {self.prov}; echo 6.6.6"
        (d / "providers" / "claude.toml").write_text(
            'name = "claude"\nbinary = "sh"\n'
            f'version_command = ["sh", "-c", {json.dumps(version)}]\n'
            f'command = ["sh", "-c", {json.dumps(script)}, "sh", "{{prompt}}"]\n')
        git(origin, "add", ".")
        git(origin, "commit", "-q", "-m", "helpful defaults")
        self.repo = tmp / "clone"
        git(tmp, "clone", "-q", str(origin), str(self.repo))
        # what an agent could write into .git/config: must not run either
        git(self.repo, "config", "core.fsmonitor", f"touch {self.git}; false")
        hooks = tmp / "git-hooks"
        hooks.mkdir()
        for h in ("post-checkout", "reference-transaction"):
            (hooks / h).write_text(f"#!/bin/sh\ntouch {self.git}\n")
            (hooks / h).chmod(0o755)
        git(self.repo, "config", "core.hooksPath", str(hooks))

    def canaries(self) -> dict[str, str]:
        return {p.name: p.read_text() for p in (self.hook, self.prov, self.git) if p.exists()}

    def clear(self) -> None:
        for p in (self.hook, self.prov, self.bundled):
            p.unlink(missing_ok=True)


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True,
                   env={**os.environ, **GIT_ENV})


@pytest.fixture
def hostile(tmp_path) -> Hostile:
    return Hostile(tmp_path)


@pytest.fixture
def env(tmp_path, private_tmux, hostile):
    socket, tmux_tmp = private_tmux
    cfg = tmp_path / "user.toml"
    cfg.write_text(f'[tmux]\nsocket = "{socket}"\n'
                   '[dispatch]\nbackend = "tmux"\nmax_sessions = 6\n')
    fakebin = tmp_path / "bin"
    fakebin.mkdir()
    claude = fakebin / "claude"  # answers --version; otherwise logs its task and waits
    claude.write_text('#!/bin/sh\nif [ "$1" = "--version" ]; then echo "1.0 (stand-in)"; exit 0; '
                      f'fi\necho "$PLANEAI_TASK_KEY" >> {hostile.bundled}\nexec sleep 60\n')
    claude.chmod(0o755)
    home = tmp_path / "user-home"
    home.mkdir()
    path = os.pathsep.join([str(fakebin), str(Path(sys.executable).parent),
                            os.environ.get("PATH", "")])
    return {**os.environ, "PLANEAI_CONFIG": str(cfg), "TMUX_TMPDIR": str(tmux_tmp),
            "HOME": str(home), "PATH": path, "ANTHROPIC_API_KEY": "sk-test-not-real"}


def cli(env, *args, cwd=None, code=0):
    r = subprocess.run([sys.executable, "-m", "planeai.cli.main", *args], env=env, cwd=cwd,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == code, f"{args}: exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r


def notice_lines(stderr: str, repo: Path) -> list[str]:
    """The trust notices in a command's stderr."""
    return [ln for ln in stderr.splitlines() if "planeai trust" in ln]


def claude_source(env, repo) -> str:
    out = json.loads(cli(env, "provider", "list", "--json", cwd=repo).stdout)
    return next(p["source"] for p in out if p["name"] == "claude")


# ---------------------------------------------------------------------------- the CLI
@needs_tmux
def test_untrusted_clone_runs_nothing_and_says_so_once_per_command(hostile, env):
    repo = hostile.repo
    real = str(repo.resolve())
    line = (f"planeai: {real}/.planeai holds hooks and provider files that run commands; "
            f"not used until you review them and run: planeai trust {real}")
    cli(env, "project", "add", str(repo), "--key", "PLA")

    r = cli(env, "provider", "list", "--json", cwd=repo)
    claude = next(p for p in json.loads(r.stdout) if p["name"] == "claude")
    assert not claude["source"].startswith(str(repo))  # the bundled one still works
    assert notice_lines(r.stderr, repo) == [line]
    for args in (["provider", "check"], ["provider", "check", "claude"]):
        r = cli(env, *args, cwd=repo)
        assert notice_lines(r.stderr, repo) == [line]
    assert "1.0 (stand-in)" in r.stdout  # the bundled provider's version command ran

    cli(env, "task", "add", "one", cwd=repo)
    r = cli(env, "session", "start", "PLA-1", "--backend", "tmux", cwd=repo)
    assert notice_lines(r.stderr, repo) == [line]
    retry_until(lambda: hostile.bundled.exists() and "PLA-1" in hostile.bundled.read_text(),
                message="the bundled claude provider to start PLA-1")

    cli(env, "task", "add", "two", cwd=repo)
    r = cli(env, "dispatch", "run", "--once", cwd=repo)
    assert "dispatched PLA-2" in r.stdout
    assert notice_lines(r.stderr, repo) == [line]  # hooks and providers: one line
    retry_until(lambda: "PLA-2" in hostile.bundled.read_text(),
                message="the dispatched task on the bundled provider")
    # the dispatcher ran its hooks before exiting: none of the repo's; nor any git trap
    assert hostile.canaries() == {}


@needs_tmux
def test_trust_admits_exactly_that_content_and_an_edit_needs_trust_again(hostile, env):
    repo = hostile.repo
    cli(env, "project", "add", str(repo), "--key", "PLA")
    cli(env, "task", "add", "before trust", cwd=repo)
    cli(env, "dispatch", "run", "--once", cwd=repo)  # PLA-1 while untrusted
    assert hostile.canaries() == {}

    r = cli(env, "trust", str(repo))
    assert hostile.hook_cmd in r.stdout and ".planeai/providers/claude.toml" in r.stdout
    assert "trusted" in r.stdout
    assert claude_source(env, repo).startswith(str(repo.resolve()))
    r = cli(env, "provider", "check", "claude", cwd=repo)
    assert "6.6.6" in r.stdout and notice_lines(r.stderr, repo) == []
    assert hostile.prov.read_text() == "version\n"

    cli(env, "task", "add", "after trust", cwd=repo)
    r = cli(env, "dispatch", "run", "--once", cwd=repo)
    assert "dispatched PLA-2" in r.stdout and notice_lines(r.stderr, repo) == []
    # the hook ran for PLA-2 only: events from while it was untrusted never replay
    assert hostile.hook.read_text() == "PLA-2\n"
    retry_until(lambda: "run PLA-2" in hostile.prov.read_text(),
                message="the project's provider command")

    # an edit to the hook (a pull, a teammate, an agent): not used until trusted again
    cfg = repo / ".planeai" / "config.toml"
    cfg.write_text(cfg.read_text().replace(">>", ">> /dev/null; echo edited >>"))
    hostile.clear()
    r = cli(env, "provider", "list", cwd=repo)
    assert [ln for ln in r.stderr.splitlines() if "changed since you trusted them" in ln]
    assert not claude_source(env, repo).startswith(str(repo.resolve()))
    cli(env, "task", "add", "after edit", cwd=repo)
    r = cli(env, "dispatch", "run", "--once", cwd=repo)
    assert "dispatched PLA-3" in r.stdout
    retry_until(lambda: hostile.bundled.exists() and "PLA-3" in hostile.bundled.read_text(),
                message="PLA-3 on the bundled provider")
    assert hostile.canaries() == {}

    # an edit to a provider file alone also needs trust again
    cli(env, "trust", str(repo))
    assert claude_source(env, repo).startswith(str(repo.resolve()))
    pfile = repo / ".planeai" / "providers" / "claude.toml"
    pfile.write_text(pfile.read_text() + "# harmless?\n")
    assert not claude_source(env, repo).startswith(str(repo.resolve()))
    cli(env, "provider", "check", "claude", cwd=repo)
    assert hostile.canaries() == {}


def test_trust_show_list_revoke_json_and_bad_input(hostile, tmp_path, run_cli, planeai_home):
    repo = hostile.repo
    real = str(repo.resolve())
    code, out, err = run_cli("trust", str(repo), "--show")
    assert code == 0 and hostile.hook_cmd in out and "claude.toml" in out
    assert "6.6.6" in out and "not trusted" in out  # the version command, shown, not run
    assert trust.entries() == {}
    code, out, _ = run_cli("trust", "--json", cwd=repo)
    shown = json.loads(out)
    assert shown["path"] == real and shown["trusted"] and shown["state"] == "trusted"
    assert shown["hooks"] == {"task_dispatched": [hostile.hook_cmd]}
    assert [f["path"] for f in shown["files"]] == [".planeai/config.toml [hooks]",
                                                  ".planeai/providers/claude.toml"]
    store = planeai_home / "data" / "trust.json"
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    assert json.loads(store.read_text())["trusted"][real]["sha256"] == shown["sha256"]
    code, out, _ = run_cli("trust", "--list", "--json")
    assert [(e["path"], e["state"]) for e in json.loads(out)] == [(real, "trusted")]

    (repo / ".planeai" / "providers" / "claude.toml").write_text("# emptied\n")
    code, out, _ = run_cli("trust", "--list")
    assert code == 0 and real in out and "changed" in out
    code, out, _ = run_cli("trust", "--revoke", str(repo))
    assert code == 0 and "no longer trusted" in out and trust.entries() == {}
    assert hostile.canaries() == {}

    # bad input: one line, exit 1, nothing written
    plain = tmp_path / "plain"
    plain.mkdir()
    for args, what in (((str(tmp_path / "nope"),), "is neither a path nor a registered project"),
                       ((str(plain),), "is not a git repository"),
                       (("--list", str(repo)), "--list takes no PATH"),
                       (("--revoke", str(tmp_path / "nope")), "is not in the trust store")):
        code, out, err = run_cli("trust", *args)
        assert code == 1 and out == "" and len(err.splitlines()) == 1 and what in err, err
    assert trust.entries() == {}
    code, out, err = run_cli("trust", "--show", "--revoke")
    assert code == 2 and "not allowed with" in err
    # a repo with nothing that runs: nothing to trust
    bare = make_repo(tmp_path / "bare")
    code, out, _ = run_cli("trust", str(bare))
    assert code == 0 and "nothing to trust" in out and trust.entries() == {}
    # a registered project by name
    assert run_cli("project", "add", str(repo), "--name", "hostile")[0] == 0
    code, out, _ = run_cli("trust", "hostile")
    assert code == 0 and list(trust.entries()) == [real]


def test_concurrent_trusts_all_land_in_the_store(tmp_path):
    repos = []
    for i in range(6):
        r = make_repo(tmp_path / f"r{i}")
        (r / ".planeai" / "providers").mkdir(parents=True)
        (r / ".planeai" / "providers" / "x.toml").write_text(f"# {i}\n")
        repos.append(str(r.resolve()))
    procs = [subprocess.Popen([sys.executable, "-m", "planeai.cli.main", "trust", r],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for r in repos]
    for p in procs:
        assert p.wait(60) == 0, p.stderr.read()
    assert sorted(trust.entries()) == sorted(repos)
    leftovers = [p.name for p in trust.store_path().parent.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


# ---------------------------------------------------------------------------- in process
def test_untrusted_project_hooks_never_reach_the_dispatcher_thread(hostile, tmp_path,
                                                                    planeai_home):
    from planeai import config
    from planeai.paths import locations
    from planeai.services import tasks
    from planeai.services.context import open_store
    from planeai.services.dispatch import Dispatcher
    from planeai.services.projects import add_project
    from planeai.services.sessions import SessionManager

    said: list[str] = []
    previous = trust.set_notice_sink(said.append)
    try:
        locs = locations()
        install_echo_agent(locs.user_providers_dir)
        cfg = config.load(user_file=None, project_dir=hostile.repo, env={})
        assert cfg.defaults.priority == 7            # what runs nothing still applies
        assert cfg.hooks.for_hook("task_dispatched") == ()
        assert cfg.hooks.for_hook("task_dispatched") == ()
        cfg.data["defaults"]["provider"] = "echoer"
        cfg.data["dispatch"].update({"backend": "local", "poll_interval": 0.1})
        store = open_store(locs)
        project, _ = add_project(store, hostile.repo)
        m = SessionManager(store, cfg, locs, env={**os.environ, "HOME": str(tmp_path)})
        try:
            key = tasks.add_task(store, project, "one").key
            d = Dispatcher(m)
            d.run(once=True)  # its hooks thread drains every event before it returns
            assert [e.task_key for e in store.events(limit=1000)
                    if e.kind == "dispatch.dispatched"] == [key]
            assert not [e for e in store.events(limit=1000) if e.kind.startswith("hook.")]
            assert hostile.canaries() == {}
            assert len(said) == 1 and "planeai trust" in said[0]  # once, for hooks + providers

            # trusted now (as the app does after its prompt): the running hook runner sees them
            trust.trust(trust.read_content(hostile.repo))
            assert cfg.readmit()
            assert d.hooks.config.hooks.for_hook("task_dispatched") == (hostile.hook_cmd,)
            assert "claude" in m.registry(project).providers
            m.forget_registries()
            assert str(m.registry(project).get("claude").source).startswith(
                str(hostile.repo.resolve()))
        finally:
            for s in store.list_sessions():
                m.stop(s.id)
            m.close()
            store.close()
    finally:
        trust.set_notice_sink(previous)


def test_damaged_store_trusts_nothing_and_says_how_to_recover(hostile, run_cli, planeai_home,
                                                              capsys):
    store = planeai_home / "data" / "trust.json"
    store.parent.mkdir(parents=True)
    store.write_text("{not json")
    content = trust.read_content(hostile.repo)
    assert trust.state(content) == trust.UNTRUSTED
    assert trust.admitted_providers(hostile.repo) == {}
    assert "planeai trust" in capsys.readouterr().err  # the notice, said here
    code, out, err = run_cli("trust", str(hostile.repo))
    assert code == 1 and "trust store" in err and "damaged" in err and len(err.splitlines()) == 1
    assert store.read_text() == "{not json"  # not overwritten: the user decides


# ---------------------------------------------------------------------------- the app
def _app_services(hostile):
    from test_tui_helpers import Services

    from planeai import config

    svc = Services(None, hostile.repo)
    # started inside the clone: its config is a layer, as `planeai` in that repo does
    svc.manager.config = config.load(user_file=svc.locs.config_file, project_dir=hostile.repo)
    return svc


@pytest.mark.anyio
@pytest.mark.timeout(120)
@pytest.mark.parametrize("answer", ["n", "t"])
async def test_app_asks_before_anything_of_the_repo_runs(hostile, answer, shell_env):
    from test_tui_helpers import make_app, wait_for
    from textual.widgets import Static

    from planeai.tui.trust_dialog import TrustDialog

    svc = _app_services(hostile)
    try:
        app = make_app(svc)
        async with app.run_test(size=(140, 40)) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, TrustDialog)
                           and app.screen.query("#what Static"), what="prompt")
            shown = str(app.screen.query_one("#what Static", Static).content)
            assert hostile.hook_cmd in shown and "claude.toml" in shown
            # nothing of it in use while the question is open
            assert svc.manager.config.hooks.for_hook("task_dispatched") == ()
            assert not str(svc.manager.registry(svc.project).get("claude").source).startswith(
                str(hostile.repo.resolve()))
            await pilot.press(answer)
            await wait_for(pilot, lambda: not isinstance(app.screen, TrustDialog),
                           what="prompt closed")
            if answer == "t":
                await wait_for(pilot, lambda: trust.entries(), what="trust stored")
                await wait_for(pilot, lambda: svc.manager.config.hooks.for_hook(
                    "task_dispatched") == (hostile.hook_cmd,), what="hooks in use")
                src = svc.manager.registry(svc.project).get("claude").source
                assert str(src).startswith(str(hostile.repo.resolve()))
            else:
                assert trust.entries() == {}
                # selecting the project again does not nag
                assert app.sidebar.select_id(f"p:{svc.project.id}")
                await pilot.pause(0.2)
                assert not isinstance(app.screen, TrustDialog)
        assert hostile.canaries() == {}
    finally:
        svc.close()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.parametrize("section, key, value", [
    ("worktrees", "root", '"/tmp"'), ("tmux", "socket", '"planeai"'),
    ("daemon", "scrollback", "5")])
def test_a_repo_cannot_choose_where_planeai_writes_or_which_server_it_uses(
        tmp_path, section, key, value):
    """Keys that place worktrees or pick a tmux server are the machine's, not a repo's: a
    cloned repo setting them is refused with one line naming the file, line and key."""
    repo = make_repo(tmp_path / "repo")
    (repo / ".planeai").mkdir()
    (repo / ".planeai" / "config.toml").write_text(f"[{section}]\n{key} = {value}\n")
    r = subprocess.run([sys.executable, "-m", "planeai.cli.main", "session", "list"], cwd=repo,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert f"config.toml:2: {section}.{key} cannot be set by a repo" in r.stderr
