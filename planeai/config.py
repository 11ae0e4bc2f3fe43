"""Layered TOML config: built-in defaults < user file < project file < --config/PLANEAI_CONFIG.

Every key lives in ``SCHEMA`` with its type and default; ``planeai.toml.example`` documents
each one (a test keeps the two in step). A bad file fails with file, line, key and what was
expected.
"""

from __future__ import annotations

import copy
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from planeai.errors import ConfigError


@dataclass(frozen=True)
class Key:
    type: type | tuple[type, ...]
    default: Any
    choices: tuple | None = None
    item_type: type | None = None  # for lists
    min: float | None = None
    # extra check for structured values: returns what is wrong, or None
    validator: Callable[[Any], str | None] | None = None


# section -> key -> Key. A section named "*" inside means free-form sub-tables (checked per key).
SCHEMA: dict[str, dict[str, Key]] = {
    "defaults": {
        # "" = first installed agent CLI in providers' preference order, else "shell"
        "provider": Key(str, ""),
        "backend": Key(str, "local", choices=("local", "tmux", "daemon")),
        "priority": Key(int, 0),
    },
    "worktrees": {
        "root": Key(str, ""),  # "" = <data dir>/worktrees
        "copy_ignored": Key(list, [], item_type=str),
    },
    "tmux": {
        "socket": Key(str, "planeai"),
    },
    "daemon": {
        "detach_key": Key(str, "C-q"),
        "scrollback": Key(int, 10000, min=0),
    },
    "dispatch": {
        "enabled": Key(bool, False),
        "max_sessions": Key(int, 2, min=1),
        "per_project": Key(dict, {}, validator=lambda v: _int_table(v)),
        "per_provider": Key(dict, {}, validator=lambda v: _int_table(v)),
        "poll_interval": Key(float, 1.0, min=0.05),
        "backend": Key(str, "", choices=("", "local", "tmux", "daemon")),
        "yolo": Key(bool, True),
        "on_success": Key(str, "done", choices=("done", "in_review")),
        "max_retries": Key(int, 2, min=0),
        "idle_complete_after": Key(float, 0.0, min=0),
        "stale_after": Key(float, 300.0, min=1),
        "rules": Key(list, [], validator=lambda v: _rules(v)),
    },
    "hooks": {
        "timeout": Key(float, 60.0, min=1),
        **{event: Key(list, [], item_type=str) for event in (
            "task_dispatched", "session_started", "busy", "idle", "needs_input", "completed",
            "failed", "stale", "task_moved")},
    },
    "notify": {
        "events": Key(list, ["needs_input", "completed", "failed", "stale"], item_type=str,
                      validator=lambda v: _subset(v, ("needs_input", "completed", "failed",
                                                      "stale", "idle", "busy"))),
        "desktop": Key(bool, True),
        "bell": Key(bool, True),
    },
}

RULE_KEYS = {"project": str, "min_priority": int, "title": str, "parent": str, "provider": str}


def _int_table(value: dict) -> str | None:
    for k, v in value.items():
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            return f"{k} = {v!r}: values are whole numbers >= 0"
    return None


def _subset(value: list, allowed: tuple[str, ...]) -> str | None:
    bad = [v for v in value if v not in allowed]
    return f"{bad[0]!r} is not one of: {', '.join(allowed)}" if bad else None


def _rules(value: list) -> str | None:
    import re as _re

    for i, rule in enumerate(value, 1):
        if not isinstance(rule, dict):
            return f"rule {i} must be a table like {{ project = \"x\", provider = \"claude\" }}"
        for k, v in rule.items():
            if k not in RULE_KEYS:
                return f"rule {i}: unknown key {k!r}; known: {', '.join(RULE_KEYS)}"
            if not isinstance(v, RULE_KEYS[k]) or isinstance(v, bool):
                return f"rule {i}: {k} must be {_type_name(RULE_KEYS[k])}"
        if "provider" not in rule:
            return f"rule {i} needs a provider"
        if "title" in rule:
            try:
                _re.compile(rule["title"])
            except _re.error as e:
                return f"rule {i}: title is not a valid regex: {e}"
    return None


def defaults() -> dict[str, dict[str, Any]]:
    return {sec: {k: copy.deepcopy(v.default) for k, v in keys.items()}
            for sec, keys in SCHEMA.items()}


def _type_name(t) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
             list: "a list", dict: "a table"}
    if isinstance(t, tuple):
        return " or ".join(names.get(x, x.__name__) for x in t)
    return names.get(t, t.__name__)


def _find_line(text: str, section: str, key: str | None) -> int | None:
    """Line number (1-based) of ``key`` in ``[section]`` (or of the section header)."""
    current = ""
    header_line = None
    for i, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        m = re.match(r"^\[\s*([^\]]+?)\s*\]", s)
        if m:
            current = m.group(1).strip().strip('"')
            if current == section:
                header_line = i
            continue
        if current == section and key is not None:
            if re.match(rf'^"?{re.escape(key)}"?\s*=', s):
                return i
    return header_line


def _where(path: Path, text: str, section: str, key: str | None) -> str:
    line = _find_line(text, section, key)
    return f"{path}:{line}" if line else str(path)


def validate(raw: dict, path: Path, text: str) -> dict:
    """Check a parsed file against SCHEMA; return it unchanged when good."""
    for section, body in raw.items():
        if section not in SCHEMA:
            raise ConfigError(
                f"{_where(path, text, section, None)}: unknown section [{section}]; "
                f"known: {', '.join(sorted(SCHEMA))}")
        if not isinstance(body, dict):
            raise ConfigError(f"{_where(path, text, section, None)}: [{section}] must be a table")
        keys = SCHEMA[section]
        for key, value in body.items():
            where = _where(path, text, section, key)
            spec = keys.get(key)
            if spec is None:
                raise ConfigError(
                    f"{where}: unknown key {section}.{key}; known in [{section}]: "
                    f"{', '.join(sorted(keys))}")
            ok = isinstance(value, spec.type) and not (
                spec.type in (int, float) and isinstance(value, bool))
            if spec.type is float and isinstance(value, int) and not isinstance(value, bool):
                ok = True
            if not ok:
                raise ConfigError(
                    f"{where}: {section}.{key} must be {_type_name(spec.type)}, "
                    f"got {type(value).__name__} {value!r}")
            if spec.choices and value not in spec.choices:
                raise ConfigError(
                    f"{where}: {section}.{key} = {value!r} is not accepted; "
                    f"one of: {', '.join(map(str, spec.choices))}")
            if spec.item_type and any(not isinstance(v, spec.item_type) for v in value):
                plural = {str: "strings", int: "integers"}.get(spec.item_type, "values")
                raise ConfigError(f"{where}: {section}.{key} must be a list of {plural}")
            if spec.min is not None and value < spec.min:
                raise ConfigError(f"{where}: {section}.{key} must be at least {spec.min}")
            if spec.validator is not None:
                problem = spec.validator(value)
                if problem:
                    raise ConfigError(f"{where}: {section}.{key}: {problem}")
    return raw


def load_file(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"config file {path} cannot be read: {e}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}") from None
    return validate(raw, path, text)


class Config:
    """Merged settings; ``cfg["defaults.backend"]`` or ``cfg.section("tmux")``."""

    def __init__(self, data: dict[str, dict[str, Any]], sources: list[Path]) -> None:
        self.data = data
        self.sources = sources

    def __getitem__(self, dotted: str) -> Any:
        section, key = dotted.split(".", 1)
        return self.data[section][key]

    def section(self, name: str) -> dict[str, Any]:
        return self.data[name]


def merge(base: dict, layer: dict) -> dict:
    for section, body in layer.items():
        base.setdefault(section, {}).update(copy.deepcopy(body))
    return base


def load(
    *,
    user_file: Path | None,
    project_dir: Path | None = None,
    explicit: Path | str | None = None,
    env: dict[str, str] | os._Environ[str] | None = None,
) -> Config:
    env = os.environ if env is None else env
    data = defaults()
    sources: list[Path] = []
    layers: list[tuple[Path, bool]] = []
    if user_file is not None:
        layers.append((user_file, False))
    if project_dir is not None:
        layers.append((Path(project_dir) / ".planeai" / "config.toml", False))
    explicit = explicit or env.get("PLANEAI_CONFIG") or None
    if explicit:
        layers.append((Path(explicit).expanduser(), True))
    for path, required in layers:
        if not required and not path.is_file():
            continue
        merge(data, load_file(path))
        sources.append(path)
    return Config(data, sources)
