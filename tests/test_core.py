"""planeai.core: pure (standard library and core only), and the one home of the vocabulary:
event kinds with their hook and notification names, agent references, task graph rules."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import planeai
import planeai.core
from planeai.core import events as ev
from planeai.core.agents import AgentRef, agent_name, is_agent_name
from planeai.core.graph import blocked_by_path, check_blocker, check_parent
from planeai.core.models import Event
from planeai.errors import PlaneaiError, ValidationError


def test_core_imports_only_the_standard_library_and_core():
    mods = [m.name for m in pkgutil.iter_modules(planeai.core.__path__, "planeai.core.")]
    assert "planeai.core.events" in mods and "planeai.core.graph" in mods
    probe = (
        "import sys, json\n"
        "before = set(sys.modules)\n"
        f"for m in {mods!r}:\n    __import__(m)\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))\n")
    r = subprocess.run([sys.executable, "-I", "-c", probe], capture_output=True, text=True,
                       timeout=60, cwd=str(Path(planeai.__file__).parents[1]))
    assert r.returncode == 0, r.stderr
    loaded = json.loads(r.stdout)
    stdlib = sys.stdlib_module_names
    foreign = [m for m in loaded
               if m.split(".")[0] not in stdlib and m != "planeai"
               and not (m == "planeai.core" or m.startswith("planeai.core."))]
    assert foreign == [], f"planeai.core pulled in {foreign}"


def test_errors_are_the_same_classes_everywhere():
    import planeai.errors

    assert planeai.errors.ValidationError is ValidationError
    assert issubclass(ValidationError, PlaneaiError)


def _event(kind: str, **data) -> Event:
    return Event(1, "t", kind, None, "PLA-1", None, data)


@pytest.mark.parametrize("kind, data, hook, note", [
    (ev.TASK_MOVED, {"from": "todo", "to": "done"}, "task_moved", None),
    (ev.DISPATCH_DISPATCHED, {}, "task_dispatched", None),
    (ev.SESSION_STARTED, {}, "session_started", None),
    (ev.SESSION_STATUS, {"to": "busy"}, "busy", "busy"),
    (ev.SESSION_STATUS, {"to": "idle"}, "idle", "idle"),
    (ev.SESSION_STATUS, {"to": "needs_input"}, "needs_input", "needs_input"),
    (ev.SESSION_STATUS, {"to": "exited"}, None, None),
    (ev.DISPATCH_COMPLETED, {}, "completed", "completed"),
    (ev.DISPATCH_FAILED, {"reason": "x"}, "failed", "failed"),
    (ev.DISPATCH_STALE, {}, "stale", "stale"),
    (ev.TASK_CREATED, {}, None, None),
    (ev.TASK_DONE_REQUESTED, {}, None, None),
    (ev.HOOK_RAN, {}, None, None),
])
def test_one_mapping_from_events_to_hooks_and_notifications(kind, data, hook, note):
    from planeai.services import hooks, notify

    e = _event(kind, **data)
    assert ev.hook_name(e) == hook
    assert ev.notification_for(e) == note
    # the services use this mapping, not one of their own
    assert hooks.hook_name is ev.hook_name
    assert notify.notification_for is ev.notification_for


def test_config_names_the_hooks_and_notifications_core_knows():
    from planeai import config

    assert set(config.SCHEMA["hooks"]) - {"timeout"} == set(ev.HOOK_NAMES)
    probe = config.SCHEMA["notify"]["events"].validator
    assert probe(list(ev.NOTIFICATION_NAMES)) is None
    assert probe(["nonsense"]) is not None


def test_every_event_kind_the_code_writes_is_defined_in_core():
    import re

    kinds = {v for k, v in vars(ev).items() if k.isupper() and isinstance(v, str) and "." in v}
    root = Path(planeai.__file__).parent
    written = set()
    for f in root.rglob("*.py"):
        text = f.read_text(encoding="utf-8")
        written |= set(re.findall(
            r'(?:append_event\(|event=|_mark_exited\([^,]+,[^,]+,\s*)\s*"([a-z]+\.[a-z_]+)"', text))
    assert written <= kinds, f"event kinds not in planeai.core.events: {written - kinds}"


@pytest.mark.parametrize("text, ref, printed", [
    ("claude", AgentRef("claude"), "claude"),
    ("claude-opus", AgentRef("claude", "opus"), "claude-opus"),
    ("@claude:review", AgentRef("claude", None, "review"), "claude:review"),
    ("claude-opus:review", AgentRef("claude", "opus", "review"), "claude-opus:review"),
    (" codex- ", AgentRef("codex"), "codex"),
])
def test_agent_reference_parses_and_prints(text, ref, printed):
    assert AgentRef.parse(text) == ref
    assert str(ref) == printed
    assert AgentRef.parse(str(ref)) == ref
    assert ref.agent == agent_name(ref.provider, ref.variant)


def test_agent_names_and_their_users():
    from planeai.core.mentions import find_mentions
    from planeai.core.models import Session, SessionState

    assert is_agent_name("claude-opus") and is_agent_name("gemini")
    assert not is_agent_name("Claude") and not is_agent_name("a-b-c") and not is_agent_name("")
    assert find_mentions("ask @claude-opus:review")[0].agent == "claude-opus"
    s = Session("i", "n", 1, "p", None, "codex", "mini", "tmux", None, None,
                SessionState.RUNNING, None, None, None, False, [], "", "", None)
    assert s.agent == "codex-mini" and s.done_requested is False


def test_blocker_cycles_and_self_blocks():
    graph = {"A": ["B"], "B": ["C"], "C": []}
    assert blocked_by_path("A", "C", lambda k: graph.get(k, [])) == ["A", "B", "C"]
    assert blocked_by_path("C", "A", lambda k: graph.get(k, [])) is None
    with pytest.raises(ValidationError, match="cannot block itself"):
        check_blocker("A", "A", lambda k: graph.get(k, []))
    with pytest.raises(ValidationError, match=r"C -> A -> B -> C"):
        check_blocker("C", "A", lambda k: graph.get(k, []))
    check_blocker("A", "C", lambda k: graph.get(k, []))  # a second path is no cycle


def test_ancestry():
    parents = {"B": "A", "C": "B", "A": None}
    with pytest.raises(ValidationError, match="its own ancestor"):
        check_parent("A", "C", parents.get)
    check_parent("C", "A", parents.get)
    loop = {"X": "Y", "Y": "X"}  # a damaged graph ends instead of spinning
    check_parent("Z", "X", loop.get)


def test_split_agent_keeps_the_rest_as_the_variant():
    from planeai.core.agents import split_agent

    assert split_agent("claude") == ("claude", None)
    assert split_agent("claude-opus") == ("claude", "opus")
    assert split_agent("claude-") == ("claude", None)
    # resolving refuses these by name; the split does not hide the oddity
    assert split_agent("a-b-c") == ("a", "b-c")
