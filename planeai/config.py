"""Layered TOML config: built-in defaults < user file < project file < --config/PLANEAI_CONFIG.

The project file's ``[hooks]`` and ``[review] checks`` apply only once the repo is trusted
(planeai.services.trust).

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

from planeai.backends.registry import DEFAULT as DEFAULT_BACKEND, NAMES as BACKEND_NAMES
from planeai.errors import ConfigError


@dataclass(frozen=True)
class Key:
    type: type | tuple[type, ...]
    default: Any
    choices: tuple | None = None
    item_type: type | None = None  # for lists
    min: float | None = None
    max: float | None = None  # every number has a range: nan, inf and 1e999 are refused
    # extra check for structured values: returns what is wrong, or None
    validator: Callable[[Any], str | None] | None = None


DAY = 86_400
WEEK = 7 * DAY
COUNT_MAX = 1000  # sessions, retries, per-project limits: more is a typo, not a plan

# section -> key -> Key. Sections of free-form sub-tables ([hosts.NAME]) are in SUBTABLES below.
SCHEMA: dict[str, dict[str, Key]] = {
    "defaults": {
        # "" = first installed agent CLI in providers' preference order, else "shell"
        "provider": Key(str, ""),
        "backend": Key(str, DEFAULT_BACKEND, choices=BACKEND_NAMES),
        "priority": Key(int, 0, min=-1000, max=1000),
    },
    "worktrees": {
        "root": Key(str, ""),  # "" = <data dir>/worktrees
        "copy_ignored": Key(list, [], item_type=str),
        # a subtask's worktree starts from its parent's branch (else from the base branch)
        "subtasks_from_parent": Key(bool, True),
    },
    "tmux": {
        # "" = one server per PLANEAI_HOME (planeai.backends.tmux.default_socket)
        "socket": Key(str, ""),
    },
    "daemon": {
        "detach_key": Key(str, "C-q"),
        "scrollback": Key(int, 10000, min=0, max=1_000_000),
    },
    "dispatch": {
        "enabled": Key(bool, False),
        "max_sessions": Key(int, 2, min=1, max=COUNT_MAX),
        "per_project": Key(dict, {}, validator=lambda v: _int_table(v)),
        "per_provider": Key(dict, {}, validator=lambda v: _int_table(v)),
        "poll_interval": Key(float, 1.0, min=0.05, max=3600),
        "backend": Key(str, "", choices=("", *BACKEND_NAMES)),
        "yolo": Key(bool, True),
        "answer_dialogs": Key(bool, True),
        "on_success": Key(str, "done", choices=("done", "in_review")),
        "max_retries": Key(int, 2, min=0, max=COUNT_MAX),
        "idle_complete_after": Key(float, 0.0, min=0, max=WEEK),
        # an agent that reported done finishes its turn: stopped once idle, or after this
        "done_grace": Key(float, 120.0, min=0, max=DAY),
        "stale_after": Key(float, 300.0, min=1, max=WEEK),
        "rules": Key(list, [], validator=lambda v: _rules(v)),
    },
    "hooks": {
        "timeout": Key(float, 60.0, min=1, max=DAY),
        **{event: Key(list, [], item_type=str) for event in (
            "task_dispatched", "session_started", "busy", "idle", "needs_input", "completed",
            "failed", "stale", "over_budget", "task_moved")},
    },
    "review": {
        # commands that judge a task's worktree (`planeai check`): argv by shlex, no shell.
        # A repo's .planeai/config.toml may set them only once trusted, like [hooks].
        "checks": Key(list, [], item_type=str),
        "check_timeout": Key(float, 600.0, min=1, max=DAY),
        # run the checks when an agent's run completes, before the task moves on
        "check_on_complete": Key(bool, False),
        "merge": Key(str, "merge", choices=("merge", "squash", "rebase")),
        "delete_branch": Key(bool, True),   # after a merge, with the worktree
        "remote": Key(str, "origin"),
    },
    "notify": {
        "events": Key(list, ["needs_input", "completed", "failed", "stale", "over_budget"],
                      item_type=str,
                      validator=lambda v: _subset(v, ("needs_input", "completed", "failed",
                                                      "stale", "over_budget", "idle", "busy"))),
        "desktop": Key(bool, True),
        "bell": Key(bool, True),
    },
    "budgets": {
        # estimated USD (planeai.services.metrics) a project may spend before the dispatcher
        # starts no more of its tasks; 0 = no budget. Per project / per task by name / key.
        "default_usd": Key(float, 0.0, validator=lambda v: _usd(v)),
        "projects": Key(dict, {}, validator=lambda v: _usd_table(v)),
        "tasks": Key(dict, {}, validator=lambda v: _usd_table(v)),
        # also stop a running session once its project or task is over budget
        "hard_stop": Key(bool, False),
    },
    "prices": {
        # model name or glob -> { input, output, cache_write, cache_read } USD per million
        # tokens; overrides the [prices] of the provider files
        "models": Key(dict, {}, validator=lambda v: _price_table(v)),
    },    "secrets": {
        # where `planeai secret set` keeps values: "keyring" (the OS keyring) or "file" (a
        # 0600 JSON file in planeai's config dir, PLAINTEXT at rest: opt in where no keyring)
        "store": Key(str, "keyring", choices=("keyring", "file")),
    },
    "sandbox": {
        # Run agents in Docker (planeai.sandbox): on for every session, or per project,
        # provider or task (name/key -> true|false; the most specific one wins; a start's
        # --sandbox/--no-sandbox beats them all)
        "enabled": Key(bool, False),
        "projects": Key(dict, {}, validator=lambda v: _bool_table(v)),
        "providers": Key(dict, {}, validator=lambda v: _bool_table(v)),
        "tasks": Key(dict, {}, validator=lambda v: _bool_table(v)),
        # "none", "host", "bridge" or a network made with `docker network create`
        "network": Key(str, "bridge", validator=lambda v: _docker_name(v, "network")),
        "memory": Key(str, "4g", validator=lambda v: _docker_size(v)),  # swap included
        "cpus": Key(float, 2.0, min=0.1, max=1024),
        "pids": Key(int, 512, min=16, max=1_000_000),
        "tmp_size": Key(str, "1g", validator=lambda v: _docker_size(v)),  # the private /tmp
        # more variables passed from planeai's environment into every container (the
        # provider's own `sandbox_env` always are); never a secret's name
        "env": Key(list, [], item_type=str),
        # what `planeai sandbox build` builds the agent images on
        "base_image": Key(str, "planeai-base:bookworm",
                          validator=lambda v: _docker_name(v, "image")),
    },
    "plane": {
        # Plane (planeai.services.plane_sync / plane_agent): the API key is the secret
        # PLANE_API_KEY, the webhook secret PLANE_WEBHOOK_SECRET (keyring or environment)
        "url": Key(str, "https://api.plane.so"),
        "workspace": Key(str, ""),
        "auth": Key(str, "api_key", choices=("api_key", "bearer")),
        # Plane project id -> planeai project name: what is synced, where runs go
        "projects": Key(dict, {}, validator=lambda v: _str_table(v)),
        "sync_interval": Key(float, 300.0, min=0, max=WEEK),
        # the state groups synced: open work by default
        "groups": Key(list, ["backlog", "unstarted", "started"], item_type=str,
                      validator=lambda v: _subset(v, ("backlog", "unstarted", "started",
                                                      "completed", "cancelled"))),
        "auto_take": Key(bool, False),
        "comment_on_done": Key(bool, True),
        "allow_mentions": Key(bool, False),
        "agent": Key(str, ""),
        "backend": Key(str, "", choices=("", *BACKEND_NAMES)),
        "poll_interval": Key(float, 5.0, min=0.05, max=3600),
        "max_age": Key(float, 600.0, min=1, max=DAY),
        "idle_after": Key(float, 3.0, min=0.1, max=DAY),
        "activity_interval": Key(float, 15.0, min=0, max=3600),
    },
    "jira": {
        # Jira Cloud (planeai.services.trackers): the API token is the secret JIRA_API_TOKEN
        # (`planeai secret set jira JIRA_API_TOKEN`, or the environment)
        "url": Key(str, ""),
        "email": Key(str, ""),
        # filter name -> JQL: what is synced
        "filters": Key(dict, {}, validator=lambda v: _jql_table(v)),
        # filter name -> planeai project: its issues become tasks there on every sync
        "auto_take": Key(dict, {}, validator=lambda v: _str_table(v)),
        "sync_interval": Key(float, 300.0, min=0, max=WEEK),
        # when a taken issue's task is done: post back (comment, transition), each once
        "write_back": Key(bool, True),
        "comment": Key(bool, True),
        "done_transition": Key(str, "Done"),
    },
}


def _bool_table(value: dict) -> str | None:
    for k, v in value.items():
        if not isinstance(v, bool):
            return f"{k} = {v!r}: values are true or false"
    return None


def _docker_name(value: str, what: str) -> str | None:
    if not re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.:/@-]{0,254}", value):
        return f"{value!r} is not a Docker {what} name"
    return None


def _docker_size(value: str) -> str | None:
    if not re.fullmatch(r"[1-9][0-9]{0,12}[bkmg]?", value):
        return f"{value!r}: a size is a number with b, k, m or g (e.g. 4g)"
    return None


def _jql_table(value: dict) -> str | None:
    for k, v in value.items():
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", k):
            return f"{k!r}: a filter name is letters, digits, _ . - (at most 64)"
        if not isinstance(v, str) or not v.strip():
            return f"{k} = {v!r}: values are JQL queries"
    return None


def _str_table(value: dict) -> str | None:
    for k, v in value.items():
        if not isinstance(v, str) or not v.strip():
            return f"{k} = {v!r}: values are planeai project names"
    return None


RULE_KEYS = {"project": str, "min_priority": int, "title": str, "parent": str, "provider": str,
             "host": str}


def _int_table(value: dict) -> str | None:
    for k, v in value.items():
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= COUNT_MAX:
            return f"{k} = {v!r}: values are whole numbers in 0..{COUNT_MAX}"
    return None


def _usd(value) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value \
            or not 0 <= value <= 1e9:
        return f"{value!r} is not accepted; a number of USD in 0..1000000000 (0 = no budget)"
    return None


def _usd_table(value: dict) -> str | None:
    for k, v in value.items():
        problem = _usd(v)
        if problem:
            return f"{k} = {problem}"
    return None


def _price_table(value: dict) -> str | None:
    from planeai.agents_usage.prices import parse_table

    try:
        parse_table("models", value)
    except ValueError as e:
        return str(e)
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
            if k == "min_priority" and not -1000 <= v <= 1000:
                return f"rule {i}: min_priority = {v} is out of range; accepted: -1000..1000"
        if "provider" not in rule and "host" not in rule:
            return f"rule {i} needs a provider or a host (or both)"
        if "host" in rule and not HOST_NAME.fullmatch(rule["host"]):
            return (f"rule {i}: host {rule['host']!r} is not a host's name (letters, digits, "
                    "- and _) or local")
        if "title" in rule:
            try:
                _re.compile(rule["title"])
            except _re.error as e:
                return f"rule {i}: title is not a valid regex: {e}"
    return None


# [hosts.NAME]: machines that run agents over SSH (planeai.remote, planeai.services.hosts).
# Every key is host-only (HOST_ONLY): a cloned repo must not point planeai at a machine.
HOST_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")
# what reaches ssh as its destination argument: never an option (-oProxyCommand=... runs
# code), never a URI, one user and one host (an alias of the user's ~/.ssh/config is a host)
_SSH_TARGET = re.compile(r"(?:[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}@)?"
                         r"(?:[A-Za-z0-9_][A-Za-z0-9_.-]{0,252}|[0-9A-Fa-f.]*:[0-9A-Fa-f:.]+)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _ssh_target(value: str) -> str | None:
    if not _SSH_TARGET.fullmatch(value):
        return (f"{value!r} is not an ssh destination: user@host or host (an alias from your "
                "~/.ssh/config); letters, digits, . _ - and no leading -")
    return None


def _remote_path(value: str) -> str | None:
    """A path on a host: absolute or under the login's home (~/...). Any other text is fine
    (it is quoted wherever it is used), control characters are not."""
    if _CONTROL.search(value) or len(value) > 4096:
        return f"{value!r}: a path has no control characters"
    if not (value.startswith("/") or value == "~" or value.startswith("~/")):
        return f"{value!r}: a path on the host starts with / or ~/"
    return None


def _repo_paths(value: dict) -> str | None:
    for k, v in value.items():
        if not k.strip() or _CONTROL.search(k):
            return f"{k!r}: a project name has no control characters"
        if not isinstance(v, str):
            return f"{k} = {v!r}: values are paths on the host"
        problem = _remote_path(v)
        if problem:
            return f"{k} = {problem}"
    return None


def _local_path(value: str) -> str | None:
    return f"{value!r}: a path has no control characters" if _CONTROL.search(value) else None


HOST_KEYS: dict[str, Key] = {
    "ssh": Key(str, None, validator=_ssh_target),  # required
    "port": Key(int, 0, min=0, max=65535),         # 0 = ssh's own (its config, else 22)
    "max_sessions": Key(int, 4, min=1, max=COUNT_MAX),
    "root": Key(str, "~/.planeai", validator=_remote_path),
    "repos": Key(dict, {}, validator=_repo_paths),  # project name -> path on the host
    "enabled": Key(bool, True),
    "ssh_config": Key(str, "", validator=_local_path),  # "" = ssh's own (~/.ssh/config)
    "connect_timeout": Key(int, 10, min=1, max=600),  # seconds to reach it and log in
}
REQUIRED_HOST_KEYS = ("ssh",)

# section -> the keys of each of its free-form sub-tables
SUBTABLES: dict[str, dict[str, Key]] = {"hosts": HOST_KEYS}


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
        if current == "" and key is not None and re.match(  # dotted: section.key = ...
                rf'^"?{re.escape(section)}"?\s*\.\s*"?{re.escape(key)}"?\s*=', s):
            return i
    return header_line


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _out_of_range(spec: Key, value) -> str | None:
    """What is wrong with a number (nan, inf, out of range), or None; the range is named."""
    if spec.type not in (int, float) or (spec.min is None and spec.max is None):
        return None
    lo = "" if spec.min is None else _num(spec.min)
    hi = "" if spec.max is None else _num(spec.max)
    # every float key in SCHEMA is a duration
    accepted = f"accepted: {lo}..{hi}" + (" seconds" if spec.type is float else "")
    if value != value or value in (float("inf"), float("-inf")):
        return f"{value} is not a finite number; {accepted}"
    if (spec.min is not None and value < spec.min) or (spec.max is not None and value > spec.max):
        return f"{value!r} is out of range; {accepted}"
    return None


def _where(path: Path, text: str, section: str, key: str | None) -> str:
    line = _find_line(text, section, key)
    return f"{path}:{line}" if line else str(path)


def validate(raw: dict, path: Path, text: str) -> dict:
    """Check a parsed file against SCHEMA; return it unchanged when good."""
    for section, body in raw.items():
        if section not in SCHEMA and section not in SUBTABLES:
            raise ConfigError(
                f"{_where(path, text, section, None)}: unknown section [{section}]; "
                f"known: {', '.join(sorted([*SCHEMA, *SUBTABLES]))}")
        if not isinstance(body, dict):
            raise ConfigError(f"{_where(path, text, section, None)}: [{section}] must be a table")
        if section in SUBTABLES:
            _validate_subtables(section, body, path, text)
            continue
        keys = SCHEMA[section]
        for key, value in body.items():
            _check_key(_where(path, text, section, key), section, key, keys, value)
    return raw


def _validate_subtables(section: str, body: dict, path: Path, text: str) -> None:
    """[section.NAME] tables, each checked against SUBTABLES[section]."""
    keys = SUBTABLES[section]
    for name, table in body.items():
        where = _where(path, text, f"{section}.{name}", None)
        if not HOST_NAME.fullmatch(name):
            raise ConfigError(f"{where}: [{section}.{name!r}]: a name is letters, digits, - "
                              "and _ (at most 63, starting with a letter or digit)")
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: {section}.{name} must be a table [{section}.{name}]")
        for key, value in table.items():
            _check_key(_where(path, text, f"{section}.{name}", key), f"{section}.{name}", key,
                       keys, value)
        missing = [k for k in REQUIRED_HOST_KEYS if k not in table]
        if missing:
            raise ConfigError(f"{where}: [{section}.{name}] needs {missing[0]} "
                              f"(e.g. {missing[0]} = \"user@build-1\")")


def _check_key(where: str, section: str, key: str, keys: dict[str, Key], value) -> None:
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
    problem = _out_of_range(spec, value)
    if problem:
        raise ConfigError(f"{where}: {section}.{key} = {problem}")
    if spec.validator is not None:
        problem = spec.validator(value)
        if problem:
            raise ConfigError(f"{where}: {section}.{key}: {problem}")


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


@dataclass(frozen=True)
class DefaultsSettings:
    provider: str        # "" = first installed agent CLI in the providers' order, else "shell"
    backend: str
    priority: int


@dataclass(frozen=True)
class WorktreeSettings:
    root: str            # "" = <data dir>/worktrees
    copy_ignored: tuple[str, ...]
    subtasks_from_parent: bool


@dataclass(frozen=True)
class TmuxSettings:
    socket: str          # "" = one server per PLANEAI_HOME


@dataclass(frozen=True)
class DaemonSettings:
    detach_key: str
    scrollback: int


@dataclass(frozen=True)
class DispatchSettings:
    enabled: bool
    max_sessions: int
    per_project: dict[str, int]
    per_provider: dict[str, int]
    poll_interval: float
    backend: str         # "" = defaults.backend
    yolo: bool
    answer_dialogs: bool  # answer the [[dialogs]] of provider files (first-run screens)
    on_success: str      # "done" | "in_review"
    max_retries: int
    idle_complete_after: float
    done_grace: float
    stale_after: float
    rules: tuple[dict, ...]


@dataclass(frozen=True)
class HooksSettings:
    timeout: float
    commands: dict[str, tuple[str, ...]]   # hook name -> shell commands, in order

    def for_hook(self, name: str) -> tuple[str, ...]:
        return self.commands.get(name, ())


@dataclass(frozen=True)
class ReviewSettings:
    checks: tuple[str, ...]   # commands run in a task's worktree (shlex-split, no shell)
    check_timeout: float
    check_on_complete: bool
    merge: str                # "merge" | "squash" | "rebase"
    delete_branch: bool
    remote: str


@dataclass(frozen=True)
class BudgetSettings:
    default_usd: float                   # 0 = no budget
    projects: dict[str, float]           # project name -> USD
    tasks: dict[str, float]              # task key -> USD
    hard_stop: bool                      # stop running sessions over budget too

    def for_project(self, name: str) -> float:
        return float(self.projects.get(name, self.default_usd))


@dataclass(frozen=True)
class PricesSettings:
    models: dict[str, dict]              # model or glob -> { input, output, cache_* } USD/MTok


@dataclass(frozen=True)
class SecretsSettings:
    store: str                           # "keyring" | "file" (plaintext 0600, opted into)


@dataclass(frozen=True)
class SandboxSettings:
    enabled: bool
    projects: dict[str, bool]            # project name -> on/off
    providers: dict[str, bool]           # provider name -> on/off
    tasks: dict[str, bool]               # task key -> on/off
    network: str
    memory: str
    cpus: float
    pids: int
    tmp_size: str
    env: tuple[str, ...]
    base_image: str


@dataclass(frozen=True)
class PlaneSettings:
    url: str
    workspace: str
    auth: str                            # "api_key" (X-API-Key) | "bearer" (bot token)
    projects: dict[str, str]             # Plane project id -> planeai project name
    sync_interval: float                 # 0 = no periodic sync
    groups: tuple[str, ...]              # state groups synced (backlog, unstarted, ...)
    auto_take: bool                      # every synced item becomes a task of its project
    comment_on_done: bool                # a task done posts its result as a comment
    allow_mentions: bool                 # may a run's prompt pick agent and skill (@x:y)?
    agent: str                           # "" = defaults.provider
    backend: str                         # "" = defaults.backend
    poll_interval: float                 # `plane poll`: seconds between feed reads
    max_age: float                       # webhooks about older runs are refused (stale)
    idle_after: float                    # idle this long after a turn = the turn is over
    activity_interval: float             # at most one progress thought per this many s


@dataclass(frozen=True)
class JiraSettings:
    url: str                             # "" = not configured
    email: str
    filters: dict[str, str]              # name -> JQL
    auto_take: dict[str, str]            # filter name -> planeai project
    sync_interval: float                 # 0 = no periodic sync (app, dispatcher)
    write_back: bool                     # post back when a taken issue's task is done
    comment: bool                        # ... a comment with the result
    done_transition: str                 # ... and this transition, by name ("" = none)


@dataclass(frozen=True)
class HostSettings:
    name: str
    ssh: str                             # user@host or host (an alias of ~/.ssh/config)
    port: int                            # 0 = ssh's own
    max_sessions: int
    root: str                            # where planeai keeps repos and worktrees there
    repos: dict[str, str]                # project name -> path on the host
    enabled: bool
    ssh_config: str                      # "" = ssh's own; else passed as ssh -F
    connect_timeout: int                 # seconds (ssh ConnectTimeout)


@dataclass(frozen=True)
class NotifySettings:
    events: frozenset[str]
    desktop: bool
    bell: bool


def _typed(cls, body: dict[str, Any]):
    """A section's merged values as its dataclass: lists become tuples, whole numbers given for
    durations become floats (validate() has checked every value already)."""
    values = {}
    for name, value in body.items():
        if isinstance(value, list):
            value = tuple(copy.deepcopy(value))
        elif isinstance(value, dict):
            value = copy.deepcopy(value)
        values[name] = value
    fields = cls.__dataclass_fields__
    for name, f in fields.items():
        if f.type == "float" and isinstance(values.get(name), int):
            values[name] = float(values[name])
    return cls(**{k: v for k, v in values.items() if k in fields})


class Config:
    """Merged settings, read as typed sections: ``cfg.defaults.backend``, ``cfg.dispatch``.

    ``data`` holds the merged tables; ``set()`` changes one key with the same checks a file
    gets (command-line overrides). The project layer's ``[hooks]`` run commands, so they are
    merged only when the user trusts that repo's executable content (``planeai trust``); until
    then they are ``withheld`` and whoever reads the hooks is told once how to trust them."""

    def __init__(self, data: dict[str, dict[str, Any]], sources: list[Path], *,
                 project_dir: Path | None = None,
                 layers: list[tuple[dict, bool]] | None = None, withheld=None) -> None:
        self.data = data
        self.sources = sources
        self.project_dir = project_dir     # the repo whose .planeai/config.toml is a layer
        self._layers = layers or []        # (parsed file, is the project layer), in order
        self.withheld = withheld           # trust.Content of project hooks not in use
        self.explicit: Path | None = None  # the --config / PLANEAI_CONFIG layer, if any

    # Built on each read: cheap (µs), and a set() or readmit() shows at once everywhere.
    @property
    def defaults(self) -> DefaultsSettings:
        return _typed(DefaultsSettings, self.data["defaults"])

    @property
    def worktrees(self) -> WorktreeSettings:
        return _typed(WorktreeSettings, self.data["worktrees"])

    @property
    def tmux(self) -> TmuxSettings:
        return _typed(TmuxSettings, self.data["tmux"])

    @property
    def daemon(self) -> DaemonSettings:
        return _typed(DaemonSettings, self.data["daemon"])

    @property
    def dispatch(self) -> DispatchSettings:
        return _typed(DispatchSettings, self.data["dispatch"])

    @property
    def review(self) -> ReviewSettings:
        if self.withheld is not None and self.withheld.checks:
            from planeai.services import trust

            trust.announce(self.withheld, trust.state(self.withheld))
        return _typed(ReviewSettings, self.data["review"])

    @property
    def budgets(self) -> BudgetSettings:
        return _typed(BudgetSettings, self.data["budgets"])

    @property
    def prices(self) -> PricesSettings:
        return _typed(PricesSettings, self.data["prices"])

    @property
    def secrets(self) -> SecretsSettings:
        return _typed(SecretsSettings, self.data["secrets"])

    @property
    def sandbox(self) -> SandboxSettings:
        return _typed(SandboxSettings, self.data["sandbox"])

    @property
    def plane(self) -> PlaneSettings:
        return _typed(PlaneSettings, self.data["plane"])

    @property
    def jira(self) -> JiraSettings:
        return _typed(JiraSettings, self.data["jira"])

    @property
    def hosts(self) -> dict[str, HostSettings]:
        """[hosts.NAME] tables by name, with defaults filled in."""
        out = {}
        for name, body in sorted((self.data.get("hosts") or {}).items()):
            values = {k: copy.deepcopy(spec.default) for k, spec in HOST_KEYS.items()}
            values.update(copy.deepcopy(body))
            out[name] = HostSettings(name=name, **values)
        return out

    @property
    def notify(self) -> NotifySettings:
        body = self.data["notify"]
        return NotifySettings(events=frozenset(body["events"]), desktop=body["desktop"],
                              bell=body["bell"])

    @property
    def hooks(self) -> HooksSettings:
        if self.withheld is not None:
            from planeai.services import trust

            trust.announce(self.withheld, trust.state(self.withheld))
        body = self.data["hooks"]
        return HooksSettings(timeout=float(body["timeout"]), commands={
            k: tuple(v) for k, v in body.items() if k != "timeout"})

    def set(self, section: str, key: str, value: Any) -> None:
        """Override one key (a command-line flag); refused like a bad file line would be."""
        validate({section: {key: value}}, Path("command line"), "")
        self.data[section][key] = copy.deepcopy(value)

    def readmit(self) -> bool:
        """Use the withheld project hooks if that exact content is trusted now; every reader
        of ``hooks`` sees them from then on."""
        if self.withheld is None:
            return False
        from planeai.services import trust

        if trust.state(self.withheld) != trust.TRUSTED:
            return False
        hooks = copy.deepcopy(defaults()["hooks"])
        checks = defaults()["review"]["checks"]
        for raw, _ in self._layers:
            hooks.update(copy.deepcopy(raw.get("hooks", {})))
            checks = copy.deepcopy((raw.get("review") or {}).get("checks", checks))
        self.data["hooks"].update(hooks)
        self.data["review"]["checks"] = checks
        self.withheld = None
        return True


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
    layers: list[tuple[Path, bool, bool]] = []  # (file, required, is the project layer)
    if user_file is not None:
        layers.append((user_file, False, False))
    if project_dir is not None:
        layers.append((Path(project_dir) / ".planeai" / "config.toml", False, True))
    explicit = explicit or env.get("PLANEAI_CONFIG") or None
    if explicit:
        layers.append((Path(explicit).expanduser(), True, False))
    parsed: list[tuple[dict, bool]] = []
    withheld = None
    for path, required, is_project in layers:
        if not required and not path.is_file():
            continue
        raw = load_file(path)
        if is_project:
            _refuse_host_keys(path, raw)
        parsed.append((raw, is_project))
        if is_project and (raw.get("hooks") or (raw.get("review") or {}).get("checks")):
            raw, withheld = _admit_project_hooks(Path(project_dir), raw)
        merge(data, raw)
        sources.append(path)
    cfg = Config(data, sources, project_dir=project_dir, layers=parsed, withheld=withheld)
    cfg.explicit = Path(explicit).expanduser().absolute() if explicit else None
    return cfg


# Keys that decide where planeai writes on this machine or which server its sessions share:
# a cloned repo must not choose them (worktrees inside another checkout, another home's tmux).
HOST_ONLY = {"worktrees": {"root"}, "tmux": {"socket"}, "daemon": {"detach_key", "scrollback"},
             "secrets": {"store"},  # a repo must not move the user's secrets to plaintext
             # a cloned repo must not switch its own agents out of the sandbox, nor open it
             "sandbox": {"enabled", "projects", "providers", "tasks", "network", "memory",
                         "cpus", "pids", "tmp_size", "env", "base_image"},
             # where the Plane API key is sent, and whether tracker text may pick agents
             "plane": {"url", "workspace", "auth", "projects", "allow_mentions", "agent",
                       "backend"},
             # where the Jira token is sent, what is pulled and what is posted back
             "jira": {"url", "email", "filters", "auto_take", "write_back", "comment",
                      "done_transition"},
             # which machines agents run on, as whom, and where they write there
             "hosts": set(HOST_KEYS)}


def _refuse_host_keys(path: Path, raw: dict) -> None:
    for section in HOST_ONLY.keys() & SUBTABLES.keys() & raw.keys():
        for name in raw[section]:  # every key of a sub-table is host-only: the whole table
            text = path.read_text(encoding="utf-8", errors="replace")
            raise ConfigError(
                f"{_where(path, text, f'{section}.{name}', None)}: [{section}.{name}] cannot be "
                "set by a repo's .planeai/config.toml (it decides which machines planeai "
                "connects to); set it in your user config or --config instead")
    for section, keys in HOST_ONLY.items():
        for key in keys & set(raw.get(section) or {}):
            text = path.read_text(encoding="utf-8", errors="replace")
            raise ConfigError(
                f"{_where(path, text, section, key)}: {section}.{key} cannot be set by a repo's "
                ".planeai/config.toml (it decides where planeai writes or which server it "
                "uses on this machine); set it in your user config or --config instead")


def _admit_project_hooks(project_dir: Path, raw: dict):
    """The project layer without its [hooks] unless the repo's executable content is trusted:
    a cloned repo's committed config must not run commands nobody agreed to."""
    from planeai.services import trust

    ok, content = trust.admitted_hooks(project_dir, trust.executable_table(raw))
    if ok:
        return raw, None
    # [review] checks run commands too: withheld with the hooks, the rest of [review] applies
    kept = {k: v for k, v in raw.items() if k != "hooks"}
    if "checks" in (kept.get("review") or {}):
        kept["review"] = {k: v for k, v in kept["review"].items() if k != "checks"}
    return kept, content
