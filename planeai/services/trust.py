"""Trust for repo-provided config that runs commands, like direnv's ``allow``.

A cloned repo's committed ``.planeai/`` can make planeai run commands: hooks in
``.planeai/config.toml`` (the ``[hooks]`` table) and provider files in
``.planeai/providers/*.toml`` (``command``, ``version_command``, ``prompt_command``, ``env``,
...). None of it is used until the user trusts that exact content: the trust store keeps, per
resolved repo path, a sha256 over the ``[hooks]`` table and every provider file's bytes. Any
change to them needs trust again. Project config that runs nothing (priorities, dispatch rules,
...) always applies. Project skills are text for the agent, like the repo's own CLAUDE.md, and
never run anything on planeai's side, so they are not part of it.

Consumers verify what they use: config loading and provider loading each hash the content they
actually read and use it only when that digest is the trusted one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import sys
import tempfile
import threading
import tomllib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from planeai.errors import PlaneaiError, ValidationError

if TYPE_CHECKING:
    from planeai.store.repository import Store

CONFIG_FILE = Path(".planeai") / "config.toml"
PROVIDERS_DIR = Path(".planeai") / "providers"
STORE_VERSION = 1

# [review] checks run commands like hooks: trusted with them, as one more key of that table
CHECKS_KEY = "review.checks"


def executable_table(parsed: dict[str, Any]) -> dict[str, Any]:
    """The part of a parsed .planeai/config.toml that runs commands: its [hooks] table, plus
    ``review.checks`` when set."""
    hooks = parsed.get("hooks", {})
    hooks = dict(hooks) if isinstance(hooks, dict) else {}
    review = parsed.get("review")
    if isinstance(review, dict) and review.get("checks"):
        hooks[CHECKS_KEY] = review["checks"]
    return hooks


# the state of a repo's executable content
NOTHING = "nothing"        # no hooks, no provider files: nothing to trust
TRUSTED = "trusted"
UNTRUSTED = "untrusted"    # never trusted
CHANGED = "changed"        # trusted once, then the content changed


class TrustError(PlaneaiError):
    """The trust store cannot be read or written."""


@dataclass(frozen=True)
class Content:
    """What in a repo's ``.planeai/`` can run commands, as read at one moment."""

    root: str                                   # resolved repo path
    hooks: dict[str, Any]                       # the [hooks] table of .planeai/config.toml
    providers: dict[str, bytes]                 # file name -> bytes, .planeai/providers/*.toml
    problems: tuple[str, ...] = field(default=())  # files that could not be read

    @property
    def hook_commands(self) -> dict[str, list[str]]:
        return {k: v for k, v in self.hooks.items()
                if k not in ("timeout", CHECKS_KEY) and isinstance(v, list) and v}

    @property
    def checks(self) -> list[str]:
        """The ``[review] checks`` of the same file (they run commands too)."""
        v = self.hooks.get(CHECKS_KEY)
        return list(v) if isinstance(v, list) else []

    @property
    def empty(self) -> bool:
        return not self.hook_commands and not self.providers and not self.checks

    def file_digests(self) -> list[tuple[str, str]]:
        """(repo-relative path, sha256) of every part, in a fixed order."""
        parts = []
        if self.hooks:
            canon = json.dumps(self.hooks, sort_keys=True, ensure_ascii=False,
                               separators=(",", ":"), default=str)
            parts.append((f"{CONFIG_FILE} [hooks]", _sha(canon.encode("utf-8"))))
        for name in sorted(self.providers):
            parts.append((str(PROVIDERS_DIR / name), _sha(self.providers[name])))
        return parts

    @property
    def digest(self) -> str:
        lines = "".join(f"{path}\0{sha}\n" for path, sha in self.file_digests())
        return _sha(f"planeai-trust-v{STORE_VERSION}\n{lines}".encode("utf-8"))

    @property
    def what(self) -> str:
        kinds = [k for k, has in (("hooks", self.hook_commands), ("checks", self.checks),
                                  ("provider files", self.providers)) if has]
        return " and ".join(kinds) or "nothing"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def resolve_root(path: Path | str) -> str:
    return str(Path(path).expanduser().resolve())


def _read_hooks(root: Path) -> tuple[dict[str, Any], str | None]:
    f = root / CONFIG_FILE
    try:
        raw = f.read_bytes()
    except FileNotFoundError:
        return {}, None
    except OSError as e:
        return {}, f"{f}: cannot read: {e.strerror}"
    try:
        parsed = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        # config loading reports it; its hooks cannot be used (or trusted) as they are
        return {}, f"{f}: not valid TOML text: {e}"
    return executable_table(parsed), None


def read_content(root: Path | str, *, hooks: dict[str, Any] | None = None) -> Content:
    """Read the executable content of the repo at ``root``. ``hooks``: the [hooks] table the
    caller already parsed from that repo's config (so it is the one checked and used)."""
    real = Path(resolve_root(root))
    problems = []
    if hooks is None:
        hooks, problem = _read_hooks(real)
        if problem:
            problems.append(problem)
    providers: dict[str, bytes] = {}
    pdir = real / PROVIDERS_DIR
    if pdir.is_dir():
        for f in sorted(pdir.glob("*.toml")):
            if not f.is_file():
                continue
            try:
                providers[f.name] = f.read_bytes()
            except OSError as e:
                problems.append(f"{f}: cannot read: {e.strerror}")
    return Content(str(real), dict(hooks), providers, tuple(problems))


# ---------------------------------------------------------------------------- the store

def store_path() -> Path:
    from planeai.paths import locations

    return locations().data_dir / "trust.json"


def _load(path: Path) -> dict[str, dict]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as e:
        raise TrustError(f"cannot read the trust store {path}: {e}") from None
    try:
        data = json.loads(text)
        entries = data["trusted"]
        if not isinstance(entries, dict) or not all(
                isinstance(e, dict) and isinstance(e.get("sha256"), str)
                for e in entries.values()):
            raise TypeError("its entries are not {path: {sha256: ...}}")
    except (ValueError, KeyError, TypeError) as e:
        raise TrustError(f"the trust store {path} is damaged ({e}); move it away and trust "
                         "your repos again") from None
    return entries


def _write(path: Path, entries: dict[str, dict]) -> None:
    """Atomically: a reader sees the old file or the new one, never half of one."""
    text = json.dumps({"version": STORE_VERSION, "trusted": entries}, indent=2,
                      ensure_ascii=False, sort_keys=True) + "\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".trust-", suffix=".tmp")  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


class _Locked:
    """Read-modify-write of the store under an exclusive lock (concurrent `planeai trust`s)."""

    def __init__(self) -> None:
        self.path = store_path()

    def __enter__(self) -> "_Locked":
        import fcntl

        from planeai.paths import ensure_private_dir

        try:
            ensure_private_dir(self.path.parent)
            self._fd = os.open(self.path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as e:
            raise TrustError(f"cannot write the trust store in {self.path.parent}: "
                             f"{e.strerror}") from None
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            self.entries = _load(self.path)
        except BaseException:
            os.close(self._fd)
            raise
        return self

    def save(self) -> None:
        try:
            _write(self.path, self.entries)
        except OSError as e:
            raise TrustError(f"cannot write the trust store {self.path}: {e.strerror}") from None

    def __exit__(self, *exc) -> None:
        os.close(self._fd)  # releases the lock


def state(content: Content) -> str:
    """NOTHING, TRUSTED, UNTRUSTED or CHANGED. An unreadable store trusts nothing."""
    if content.empty:
        return NOTHING
    try:
        entry = _load(store_path()).get(content.root)
    except TrustError:
        return UNTRUSTED
    if entry is None:
        return UNTRUSTED
    return TRUSTED if entry.get("sha256") == content.digest else CHANGED


def trust(content: Content) -> dict:
    """Trust exactly ``content`` (what the person was shown): its digest, not the files' later
    state."""
    entry = {"sha256": content.digest,
             "trusted_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
             "files": [p for p, _ in content.file_digests()]}
    with _Locked() as store:
        store.entries[content.root] = entry
        store.save()
    return entry


def revoke(path: Path | str) -> bool:
    """Forget the trust of the repo at ``path`` (also when it no longer exists)."""
    keys = {str(Path(path).expanduser().absolute()), resolve_root(path)}
    with _Locked() as store:
        found = [k for k in keys if k in store.entries]
        for k in found:
            del store.entries[k]
        if found:
            store.save()
    return bool(found)


def entries() -> dict[str, dict]:
    return _load(store_path())


# ---------------------------------------------------------------------------- telling the user

_announced: set[str] = set()
_lock = threading.Lock()


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


_sink: Callable[[str], None] = _stderr


def set_notice_sink(sink: Callable[[str], None] | None) -> Callable[[str], None]:
    """Where the notice goes (the app shows it as a notification); returns the previous one."""
    global _sink
    previous = _sink
    _sink = sink or _stderr
    return previous


def notice(content: Content, st: str) -> str:
    cmd = f"planeai trust {shlex.quote(content.root)}"
    where = str(Path(content.root) / ".planeai")
    if st == CHANGED:
        return (f"planeai: {where} holds {content.what} that run commands and changed since "
                f"you trusted them; not used until you review them and run: {cmd}")
    return (f"planeai: {where} holds {content.what} that run commands; not used until you "
            f"review them and run: {cmd}")


def announce(content: Content, st: str) -> None:
    """Say once per process and repo that its executable content is not used."""
    with _lock:
        if content.root in _announced:
            return
        _announced.add(content.root)
    _sink(notice(content, st))


def admitted_hooks(root: Path | str, hooks: dict[str, Any]) -> tuple[bool, Content]:
    """May the project config's [hooks] table (as parsed by the caller) be used?"""
    content = read_content(root, hooks=hooks)
    return state(content) in (TRUSTED, NOTHING), content


def admitted_providers(root: Path | str) -> dict[str, bytes]:
    """The project's provider files to load: the exact trusted bytes, or none (said once)."""
    content = read_content(root)
    if not content.providers:
        return {}
    st = state(content)
    if st == TRUSTED:
        return content.providers
    announce(content, st)
    return {}


# ---------------------------------------------------------------------------- review

def _show(s: object) -> str:
    """A value as the person should see it: control and bidi characters made visible."""
    text = s if isinstance(s, str) else json.dumps(s, ensure_ascii=False)
    if text.isprintable():
        return text
    return text.encode("unicode_escape").decode("ascii")


_PROVIDER_KEYS = ("binary", "command", "version_command", "prompt_command", "yolo_flag", "env")


def _provider_lines(data: bytes) -> list[str]:
    try:
        parsed = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        return ["    (not valid TOML text: it will be skipped)"]
    lines = []
    for key in _PROVIDER_KEYS:
        if key in parsed:
            lines.append(f"    {key}: {_show(parsed[key])}")
    for vname, v in (parsed.get("variants") or {}).items():
        if isinstance(v, dict) and v.get("args"):
            lines.append(f"    variant {_show(vname)} args: {_show(v['args'])}")
    return lines


def review_lines(content: Content) -> list[str]:
    """What trusting ``content`` lets run: the hooks' commands and each provider file."""
    lines = []
    if content.hook_commands:
        lines.append(f"hooks in {CONFIG_FILE} (run by /bin/sh at these events):")
        for event, commands in content.hook_commands.items():
            for c in commands:
                lines.append(f"  {_show(event)}: {_show(c)}")
    if content.checks:
        lines.append(f"checks in {CONFIG_FILE} ([review] checks, run in task worktrees by "
                     "`planeai check`):")
        lines.extend(f"  {_show(c)}" for c in content.checks)
    for name, data in sorted(content.providers.items()):
        lines.append(f"provider file {PROVIDERS_DIR / _show(name)} "
                     f"(sha256 {_sha(data)[:16]}):")
        lines.extend(_provider_lines(data))
    for p in content.problems:
        lines.append(f"note: {_show(p)}")
    return lines


def as_dict(content: Content, st: str | None = None) -> dict:
    return {"path": content.root, "state": st or state(content), "sha256": content.digest,
            "hooks": content.hook_commands,
            "files": [{"path": p, "sha256": s} for p, s in content.file_digests()],
            "problems": list(content.problems)}


def repo_for(ref: str | None, store: "Store") -> str:
    """The repo root a `planeai trust` argument names: a path in a git repo, or a project
    registered in ``store`` by name or key."""
    from planeai.services.context import repo_root_of

    ref = ref or "."
    p = Path(ref).expanduser()
    if p.exists():
        root = repo_root_of(p) if p.is_dir() else None
        if root is None:
            raise ValidationError(f"{ref} is not a git repository; planeai trust takes a repo "
                                  "path or a project name (default: the current directory)")
        return resolve_root(root)
    project = store.find_project(ref)
    if project is None:
        raise ValidationError(f"{ref} is neither a path nor a registered project; planeai trust "
                              "takes a repo path or a project name (default: the current "
                              "directory)")
    return resolve_root(project.path)
