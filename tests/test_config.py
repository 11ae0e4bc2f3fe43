"""Layered config and its errors; the shipped example documents every key and loads."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from planeai import config
from planeai.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "planeai.toml.example"


def test_example_loads_and_documents_every_key():
    loaded = config.load_file(EXAMPLE)
    documented = {(s, k) for s, body in loaded.items() for k in body}
    schema = {(s, k) for s, body in config.SCHEMA.items() for k in body}
    assert documented == schema
    # the example shows the real defaults
    assert loaded == config.defaults()


def test_every_key_has_a_comment_in_the_example():
    lines = EXAMPLE.read_text().splitlines()
    for i, line in enumerate(lines):
        if "=" in line and not line.lstrip().startswith("#"):
            assert lines[i - 1].lstrip().startswith("#"), f"undocumented: {line}"


def test_layers_override_in_order(tmp_path):
    user = tmp_path / "user.toml"
    user.write_text('[defaults]\nbackend = "tmux"\npriority = 3\n')
    proj = tmp_path / "repo"
    (proj / ".planeai").mkdir(parents=True)
    (proj / ".planeai" / "config.toml").write_text("[defaults]\npriority = 5\n")
    extra = tmp_path / "extra.toml"
    extra.write_text('[tmux]\nsocket = "mine"\n')
    cfg = config.load(user_file=user, project_dir=proj, explicit=extra, env={})
    assert cfg.defaults.backend == "tmux"
    assert cfg.defaults.priority == 5
    assert cfg.tmux.socket == "mine"
    assert cfg.worktrees.copy_ignored == ()
    assert cfg.sources == [user, proj / ".planeai" / "config.toml", extra]
    cfg = config.load(user_file=user, env={"PLANEAI_CONFIG": str(extra)})
    assert cfg.tmux.socket == "mine"


def test_missing_optional_layers_are_fine(tmp_path):
    cfg = config.load(user_file=tmp_path / "none.toml", project_dir=tmp_path, env={})
    assert cfg.data == config.defaults() and cfg.sources == []


@pytest.mark.parametrize("text, expected", [
    ('[defaults]\nbackend = "docker"\n',
     ":2: defaults.backend = 'docker' is not accepted; one of: local, tmux, daemon"),
    ('[defaults]\n\npriority = "high"\n',
     ":3: defaults.priority must be an integer, got str 'high'"),
    ('[defaults]\npriority = true\n', ":2: defaults.priority must be an integer"),
    ('[defautls]\nx = 1\n', ":1: unknown section [defautls]; known: "),
    ('[tmux]\nsockett = "a"\n', ":2: unknown key tmux.sockett; known in [tmux]: socket"),
    ('[worktrees]\ncopy_ignored = [1]\n', ":2: worktrees.copy_ignored must be a list of strings"),
    ('[defaults\n', "invalid TOML"),
])
def test_bad_file_names_file_line_key(tmp_path, text, expected):
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(ConfigError) as e:
        config.load(user_file=f, env={})
    assert str(f) in str(e.value)
    assert expected in str(e.value)


@pytest.mark.parametrize("text, expected", [
    ("[dispatch]\nper_project = { planeai = -1 }\n", "dispatch.per_project: planeai = -1"),
    ("[dispatch]\nrules = [{ project = 'x' }]\n", "rule 1 needs a provider"),
    ("[dispatch]\nrules = [{ provider = 'c', colour = 'x' }]\n", "rule 1: unknown key 'colour'"),
    ("[dispatch]\nrules = [{ provider = 'c', title = '(' }]\n", "title is not a valid regex"),
    ("[dispatch]\nmax_sessions = 0\n", "max_sessions = 0 is out of range; accepted: 1..1000"),
    ("[dispatch]\non_success = 'merged'\n", "one of: done, in_review"),
    ("[notify]\nevents = ['explode']\n", "'explode' is not one of"),
    ("[hooks]\nidle = 'echo hi'\n", "hooks.idle must be a list"),
])
def test_structured_values_are_checked(tmp_path, text, expected):
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(expected)):
        config.load(user_file=f, env={})


def test_explicit_missing_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        config.load(user_file=None, explicit=tmp_path / "nope.toml", env={})


def test_example_is_valid_toml():
    tomllib.loads(EXAMPLE.read_text())


def test_every_key_reaches_code_as_a_typed_field(tmp_path):
    """Code reads settings as typed sections; a key added to SCHEMA without a field there
    would be silently unreadable."""
    cfg = config.load(user_file=tmp_path / "none.toml", env={})
    for section, keys in config.SCHEMA.items():
        typed = getattr(cfg, section)
        for key in keys:
            if section == "hooks" and key != "timeout":
                assert typed.for_hook(key) == ()
            else:
                assert hasattr(typed, key), f"{section}.{key} has no typed field"


def test_typed_values_have_their_declared_types(tmp_path):
    user = tmp_path / "user.toml"
    user.write_text('[dispatch]\npoll_interval = 2\nmax_sessions = 4\n'
                    '[worktrees]\ncopy_ignored = [".env"]\n[hooks]\nidle = ["true"]\n')
    cfg = config.load(user_file=user, env={})
    assert cfg.dispatch.poll_interval == 2.0 and isinstance(cfg.dispatch.poll_interval, float)
    assert cfg.dispatch.max_sessions == 4
    assert cfg.worktrees.copy_ignored == (".env",)
    assert cfg.hooks.for_hook("idle") == ("true",) and cfg.hooks.timeout == 60.0
    assert cfg.notify.events == {"needs_input", "completed", "failed", "stale", "over_budget"}


def test_a_command_line_override_is_checked_like_a_file_line(tmp_path):
    cfg = config.load(user_file=tmp_path / "none.toml", env={})
    cfg.set("dispatch", "max_sessions", 7)
    assert cfg.dispatch.max_sessions == 7
    with pytest.raises(ConfigError, match=r"dispatch.max_sessions = 0 is out of range"):
        cfg.set("dispatch", "max_sessions", 0)
    assert cfg.dispatch.max_sessions == 7
