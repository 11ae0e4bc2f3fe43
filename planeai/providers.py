"""Agent CLI definitions: providers/*.toml, overridable by the user and the project.

Lookup order (later wins, whole file by name): bundled ``providers/``, the user's
``<config dir>/providers/``, the project's ``.planeai/providers/`` (only once the user trusts
that repo's executable content: ``planeai trust``). Users name an agent as
``claude`` (its default variant) or ``claude-opus`` (a variant); model version ids never
appear on the command line.
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from planeai.core.agents import agent_name, split_agent
from planeai.core.status import StatusPatterns
from planeai.core.templates import (ARGV_PLACEHOLDERS, PROMPT_PLACEHOLDERS, check_template,
                                    fill, render_argv)
from planeai.errors import ProviderError

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_]*$")
# Preference when no provider is configured: the first one installed wins; shell always works.
PREFERENCE = ["claude", "codex", "gemini", "opencode", "copilot", "kiro", "aider"]

_KEYS: dict[str, type | tuple[type, ...]] = {
    "name": str, "display_name": str, "group": str, "binary": str, "install_hint": str,
    "version_command": list, "command": list, "prompt_command": (str, list),
    "submit_key": str, "yolo_flag": list, "env": dict, "secrets": list,
    "default_variant": str, "autonomous_prompt_template": str, "variants": dict,
    "skills": dict, "status": dict, "agent": bool, "dialogs": list,
    "login_check": list, "login_files": list, "login_hint": str,
    "usage": str, "prices": dict,
    "docker_image": str, "sandbox_state": list, "sandbox_env": list,
}
# `binary` defaults to the command's first word (a minimal file is `name` and `command`)
_REQUIRED = {"name", "command"}
# When planeai may answer a dialog (every condition listed must hold):
#   yolo      the session was started with the provider's yolo flag (autonomous mode asked for)
#   worktree  the session runs in a worktree planeai made for it, never the user's checkout
DIALOG_CONDITIONS = ("yolo", "worktree")


@dataclass(frozen=True)
class Dialog:
    """A first-run dialog planeai answers on screen (``[[dialogs]]`` in a provider file)."""

    name: str
    match: re.Pattern
    keys: tuple[str, ...]
    when: tuple[str, ...]


@dataclass(frozen=True)
class Variant:
    name: str
    args: tuple[str, ...] = ()
    model: str = ""
    description: str = ""


@dataclass(frozen=True)
class Provider:
    name: str
    display_name: str
    group: str
    binary: str
    command: tuple[str, ...]
    source: Path
    install_hint: str = ""
    version_command: tuple[str, ...] = ()
    prompt_command: str | tuple[str, ...] = "paste"
    submit_key: str = "Enter"
    yolo_flag: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()
    default_variant: str = ""
    autonomous_prompt_template: str = ""
    variants: dict[str, Variant] = field(default_factory=dict)
    skills_dir: str = ""
    instructions_file: str = ""
    status: StatusPatterns = field(default_factory=StatusPatterns)
    dialogs: tuple[Dialog, ...] = ()
    # how to tell it is logged in when none of `secrets` is set: a command whose exit status 0
    # says so, or files of which one existing says so; with neither, only `secrets` count
    login_check: tuple[str, ...] = ()
    login_files: tuple[str, ...] = ()
    login_hint: str = ""
    # False for a plain shell: whatever text it is given runs as commands, so it never gets a
    # prompt, a task's text or an autonomous run (only what a person types by hand).
    agent: bool = True
    # where the CLI records its token usage (planeai.agents_usage: "claude", "codex"; "" =
    # nowhere planeai reads) and USD per million tokens per model or glob ([prices])
    usage: str = ""
    prices: dict = field(default_factory=dict)
    # The Docker sandbox (planeai.sandbox): the image its agent runs in ("" =
    # planeai-<name>:latest, what `planeai sandbox build NAME` makes), the files under HOME
    # copied once into its sandbox state dir (login, settings, trust), and the variables
    # passed from planeai's environment into its container (never a secret: those go by file).
    docker_image: str = ""
    sandbox_state: tuple[str, ...] = ()
    sandbox_env: tuple[str, ...] = ()

    @property
    def image(self) -> str:
        return self.docker_image or f"planeai-{self.name}:latest"

    def variant(self, name: str | None) -> Variant | None:
        name = name or self.default_variant
        if not name:
            return None
        v = self.variants.get(name)
        if v is None:
            raise ProviderError(_unknown(f"variant {name!r} of {self.name}", name,
                                         self.variants, f"{self.name}-"))
        return v

    def resolve_binary(self) -> str | None:
        if self.name == "shell":
            return default_shell()
        return shutil.which(self.binary)

    def require_agent(self) -> None:
        """The one gate before text is handed to a provider's process as instructions."""
        if not self.agent:
            raise ProviderError(
                f"{self.name} is not an agent: text given to it would run as shell commands, so it "
                "never gets a prompt or a task to work on; choose an agent CLI "
                "(planeai provider list)")

    def argv(self, values: dict[str, str | None], *, variant: Variant | None,
             yolo: bool) -> list[str]:
        splice = list(variant.args if variant else ()) + (list(self.yolo_flag) if yolo else [])
        vals = dict(values)
        vals.setdefault("model", variant.model if variant else "")
        vals.setdefault("shell", default_shell())
        return render_argv(self.command, vals, splice)

    def autonomous_prompt(self, values: dict[str, str | None]) -> str:
        self.require_agent()
        template = self.autonomous_prompt_template or DEFAULT_AUTONOMOUS_PROMPT
        return fill(template, values)


DEFAULT_AUTONOMOUS_PROMPT = """You are working on task {task.key}: {task.title}

{task.description}

Work only inside {worktree}, on its branch, and commit your changes there.
{skills}
When you have finished and committed, run `planeai task done {task.key}`.
If you want a human to review first, run `planeai task review {task.key}` instead."""


def default_shell() -> str:
    sh = os.environ.get("SHELL")
    if sh and os.path.isfile(sh) and os.access(sh, os.X_OK):
        return sh
    return shutil.which("bash") or "/bin/sh"


def _unknown(what: str, name: str, known: Iterable[str], prefix: str = "") -> str:
    """The close matches only: a list of sixty agent names helps nobody."""
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=4, cutoff=0.5)
    if not close:
        if len(known) <= 8:
            return f"unknown {what} (known: {', '.join(prefix + k for k in known) or 'none'})"
        return f"unknown {what}; `planeai provider list` shows them all"
    hint = f"unknown {what}; did you mean {prefix}{close[0]}?"
    if len(close) > 1:
        hint += " (also close: " + ", ".join(prefix + c for c in close[1:]) + ")"
    return hint


def _err(path: Path, msg: str) -> ProviderError:
    return ProviderError(f"{path}: {msg}")


def _dialogs(path: Path, value) -> tuple[Dialog, ...]:
    """``[[dialogs]]``: name, match (a regex over the screen), keys (named keys), when."""
    from planeai.backends.base import KEYS_ACCEPTED, unknown_keys

    out = []
    for i, d in enumerate(value):
        where = f"dialogs[{i}]"
        if not isinstance(d, dict):
            raise _err(path, f"{where} must be a table ([[dialogs]])")
        extra = set(d) - {"name", "match", "keys", "when"}
        if extra:
            raise _err(path, f"{where}: unknown key {sorted(extra)[0]!r}; known: keys, match, "
                             "name, when")
        for key in ("name", "match", "keys", "when"):
            if key not in d:
                raise _err(path, f"{where}: missing key {key!r}")
        name = d["name"]
        if not isinstance(name, str) or not re.match(r"^[a-z0-9][a-z0-9_-]*$", name):
            raise _err(path, f"{where}: name must be [a-z0-9_-]")
        where = f"dialog {name!r}"
        if not isinstance(d["match"], str):
            raise _err(path, f"{where}: match must be a string (a regex)")
        try:
            match = re.compile(d["match"], re.MULTILINE)
        except re.error as e:
            raise _err(path, f"{where}: match is not a valid regex: {e}") from None
        keys = _strs(path, f"{where}: keys", d["keys"])
        if not keys:
            raise _err(path, f"{where}: keys is empty")
        for k in unknown_keys(keys):
            raise _err(path, f"{where}: unknown key name {k!r} in keys; accepted: "
                             + KEYS_ACCEPTED)
        when = d["when"]
        when = (when,) if isinstance(when, str) else _strs(path, f"{where}: when", when)
        if not when:
            raise _err(path, f"{where}: when is empty; known: " + ", ".join(DIALOG_CONDITIONS))
        for w in when:
            if w not in DIALOG_CONDITIONS:
                raise _err(path, f"{where}: unknown when {w!r}; known: "
                                 + ", ".join(DIALOG_CONDITIONS))
        out.append(Dialog(name, match, keys, tuple(when)))
    return tuple(out)


def _strs(path: Path, key: str, value) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _err(path, f"{key} must be a list of strings")
    return tuple(value)


def parse_provider(path: Path, data: dict) -> Provider:
    for key, value in data.items():
        if key not in _KEYS:
            raise _err(path, f"unknown key {key!r}; known: {', '.join(sorted(_KEYS))}")
        if not isinstance(value, _KEYS[key]):
            raise _err(path, f"{key} has the wrong type ({type(value).__name__})")
    missing = _REQUIRED - data.keys()
    if missing:
        raise _err(path, f"missing key {sorted(missing)[0]!r}")
    name = data["name"]
    if name != path.stem or not NAME_RE.match(name):
        raise _err(path, f"name {name!r} must match the file name and be [a-z0-9_] "
                         "(a dash separates provider and variant, as in claude-opus)")
    command = _strs(path, "command", data["command"])
    if not command:
        raise _err(path, "command is empty")
    binary = data.get("binary") or command[0]
    if "{" in binary:
        raise _err(path, f"missing key 'binary': the command starts with {binary!r}, "
                         "not a program name")
    for el in command:
        check_template(el, ARGV_PLACEHOLDERS, f"{path}: command")
    prompt_command = data.get("prompt_command", "paste")
    if isinstance(prompt_command, list):
        prompt_command = _strs(path, "prompt_command", prompt_command)
        for el in prompt_command:
            check_template(el, ARGV_PLACEHOLDERS, f"{path}: prompt_command")
    elif prompt_command != "paste":
        raise _err(path, 'prompt_command must be "paste" or an argv list')
    template = data.get("autonomous_prompt_template", "")
    if template:
        check_template(template, PROMPT_PLACEHOLDERS, f"{path}: autonomous_prompt_template")
    variants = {}
    for vname, vdata in data.get("variants", {}).items():
        if not NAME_RE.match(vname) or not isinstance(vdata, dict):
            raise _err(path, f"variant {vname!r}: names are [a-z0-9_], bodies are tables")
        extra = set(vdata) - {"args", "model", "description"}
        if extra:
            raise _err(path, f"variant {vname!r}: unknown key {sorted(extra)[0]!r}")
        args = _strs(path, f"variants.{vname}.args", vdata.get("args", []))
        variants[vname] = Variant(vname, args, str(vdata.get("model", "")),
                                  str(vdata.get("description", "")))
    default_variant = data.get("default_variant", "")
    if default_variant and default_variant not in variants:
        raise _err(path, f"default_variant {default_variant!r} is not a variant")
    if not default_variant and variants:
        raise _err(path, "default_variant is required when variants are defined")
    skills = data.get("skills", {})
    extra = set(skills) - {"dir", "instructions_file"}
    if extra:
        raise _err(path, f"[skills]: unknown key {sorted(extra)[0]!r}")
    status = data.get("status", {})
    extra = set(status) - {"needs_input", "busy", "idle"}
    if extra:
        raise _err(path, f"[status]: unknown key {sorted(extra)[0]!r}")
    try:
        patterns = StatusPatterns.compile(
            _strs(path, "status.needs_input", status.get("needs_input", [])),
            _strs(path, "status.busy", status.get("busy", [])),
            _strs(path, "status.idle", status.get("idle", [])))
    except re.error as e:
        raise _err(path, f"[status]: bad regex: {e}") from None
    env = data.get("env", {})
    if not all(isinstance(v, str) for v in env.values()):
        raise _err(path, "env values must be strings")
    dialogs = _dialogs(path, data.get("dialogs", []))
    from planeai.agents_usage.prices import parse_table
    from planeai.agents_usage.records import USAGE_FORMATS

    usage = data.get("usage", "")
    if usage and usage not in USAGE_FORMATS:
        raise _err(path, f"usage {usage!r} is not known; accepted: {', '.join(USAGE_FORMATS)}"
                         ' or "" (the CLI records nothing planeai reads)')
    try:
        prices = parse_table("[prices]", data.get("prices", {}))
    except ValueError as e:
        raise _err(path, str(e)) from None
    return Provider(
        name=name,
        display_name=data.get("display_name", name),
        group=data.get("group", ""),
        binary=binary,
        command=command,
        source=path,
        install_hint=data.get("install_hint", ""),
        version_command=_strs(path, "version_command", data.get("version_command", [])),
        prompt_command=prompt_command,
        submit_key=data.get("submit_key", "Enter"),
        yolo_flag=_strs(path, "yolo_flag", data.get("yolo_flag", [])),
        env=dict(env),
        secrets=_strs(path, "secrets", data.get("secrets", [])),
        default_variant=default_variant,
        autonomous_prompt_template=template,
        variants=variants,
        skills_dir=str(skills.get("dir", "")),
        instructions_file=str(skills.get("instructions_file", "")),
        status=patterns,
        dialogs=dialogs,
        login_check=_strs(path, "login_check", data.get("login_check", [])),
        login_files=_strs(path, "login_files", data.get("login_files", [])),
        login_hint=data.get("login_hint", ""),
        agent=data.get("agent", True),
        usage=usage,
        prices=prices,
        docker_image=data.get("docker_image", ""),
        sandbox_state=_strs(path, "sandbox_state", data.get("sandbox_state", [])),
        sandbox_env=_strs(path, "sandbox_env", data.get("sandbox_env", [])),
    )


def load_provider_file(path: Path) -> Provider:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise _err(path, f"cannot read: {e.strerror}") from None
    return load_provider_bytes(path, data)


@dataclass
class Registry:
    providers: dict[str, Provider]
    errors: list[str]  # files that failed to load (reported, not fatal for the others)
    skipped: dict[str, str] = field(default_factory=dict)  # name -> why its file was skipped

    def get(self, name: str) -> Provider:
        p = self.providers.get(name)
        if p is None:
            self._why_skipped(name)
            raise ProviderError(_unknown("provider " + repr(name), name, self.providers))
        return p

    def _why_skipped(self, name: str) -> None:
        """Asked for a provider whose file failed to load: say why, not just "unknown"."""
        if name in self.skipped:
            raise ProviderError(f"provider {name!r} was skipped: {self.skipped[name]}")

    def resolve(self, spec: str) -> tuple[Provider, Variant | None]:
        """``claude`` -> (claude, default variant); ``claude-opus`` -> (claude, opus)."""
        spec = spec.strip().lstrip("@")
        name, variant = split_agent(spec)
        if name not in self.providers:
            self._why_skipped(name)
            choices = list(self.providers) + [agent_name(p.name, v)
                                              for p in self.providers.values()
                                              for v in p.variants]
            raise ProviderError(_unknown(f"agent {spec!r}", spec, choices))
        provider = self.providers[name]
        if variant and variant not in provider.variants:
            raise ProviderError(_unknown(f"variant {variant!r} of {name}", variant,
                                         provider.variants, f"{name}-"))
        return provider, provider.variant(variant or None)

    def default(self, configured: str = "") -> str:
        if configured:
            self.resolve(configured)
            return configured
        for name in PREFERENCE:
            p = self.providers.get(name)
            if p and p.resolve_binary():
                return name
        return "shell"


@dataclass(frozen=True)
class TrustedFiles:
    """A project's ``.planeai/providers``, admitted by trust: the exact bytes that were hashed
    and found trusted (not whatever the files hold a moment later)."""

    dir: Path
    files: dict[str, bytes]   # file name -> bytes


def load_provider_bytes(path: Path, data: bytes) -> Provider:
    try:
        parsed = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise _err(path, f"not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start}); "
                         "save it as UTF-8") from None
    except tomllib.TOMLDecodeError as e:
        raise _err(path, f"invalid TOML: {e}") from None
    return parse_provider(path, parsed)


def load_registry(dirs: Iterable[Path | TrustedFiles]) -> Registry:
    providers: dict[str, Provider] = {}
    errors: list[str] = []
    skipped: dict[str, str] = {}
    for d in dirs:
        if isinstance(d, TrustedFiles):
            for name, data in sorted(d.files.items()):
                try:
                    providers[Path(name).stem] = load_provider_bytes(d.dir / name, data)
                except ProviderError as e:
                    errors.append(str(e))
                    skipped[Path(name).stem] = str(e)
                    providers.pop(Path(name).stem, None)  # never silently the layer below
            continue
        if not d.is_dir():
            continue
        for f in sorted(d.glob("*.toml")):
            try:
                providers[f.stem] = load_provider_file(f)
            except ProviderError as e:
                errors.append(str(e))
                skipped[f.stem] = str(e)
                providers.pop(f.stem, None)  # never silently the layer below
    for name in providers:
        skipped.pop(name, None)  # a later layer's good file wins over an earlier bad one
    return Registry(providers, errors, skipped)


def provider_dirs(project_path: Path | str | None = None) -> list[Path | TrustedFiles]:
    """Bundled, user, then the project's provider files if the user trusts them (a cloned
    repo's provider file is a command line planeai would run: `planeai trust` first)."""
    from planeai.bundled import providers_dir
    from planeai.paths import locations

    dirs: list[Path | TrustedFiles] = [providers_dir(), locations().user_providers_dir]
    if project_path:
        from planeai.services.trust import PROVIDERS_DIR, admitted_providers

        files = admitted_providers(project_path)  # {} when untrusted: said once on stderr
        if files:
            dirs.append(TrustedFiles(Path(project_path) / PROVIDERS_DIR, files))
    return dirs
