"""Hosts: other machines that run agents over SSH, one ``[hosts.NAME]`` table each in the user
config (keys and checks in planeai.config: HOST_KEYS; every one is user config only).

``add`` and ``remove`` edit the user's config file as text (no TOML writer is a dependency):
add appends one ``[hosts.NAME]`` table, remove deletes exactly that table's lines. Either
edit is parsed again and must come out as the old file plus (or minus) that one host, else
nothing is written; the file is replaced atomically (temp file + rename) under a lock, so a
config is never left half-written. ``check`` proves SSH, tmux, git and each agent CLI on the
host, over the one shared connection (planeai.remote.ssh).
"""

from __future__ import annotations

import copy
import fcntl
import os
import tempfile
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from planeai import config as config_mod
from planeai.config import Config, HostSettings
from planeai.errors import ConfigError, ConflictError, NotFoundError, ValidationError
from planeai.paths import Locations
from planeai.remote.ssh import SshHost, control_dir, one_line

# sh -c script of the probes: "$1" is a program's name, the rest its version command. The
# script is ours; the names and arguments are its positional parameters, never code.
_PROBE = ('p=$(command -v "$1" 2>/dev/null) || exit 127; printf "%s\\n" "$p"; shift; '
          'exec "$@" </dev/null 2>&1')
_WHOAMI = 'printf "%s\\n%s\\n" "$(id -un)" "$(uname -srm)"'
PROBE_TIMEOUT = 30.0


# ---- reading


def all_hosts(config: Config) -> list[HostSettings]:
    return list(config.hosts.values())


def get(config: Config, name: str) -> HostSettings:
    host = config.hosts.get(name)
    if host is None:
        known = ", ".join(config.hosts) or "none configured; see `planeai host add`"
        raise NotFoundError(f"no host {name!r} (known: {known})")
    return host


def connection(host: HostSettings, locs: Locations) -> SshHost:
    return SshHost(host.name, host.ssh, port=host.port, ssh_config=host.ssh_config,
                   control_dir=control_dir(locs.runtime_dir),
                   connect_timeout=host.connect_timeout)


def as_dict(host: HostSettings) -> dict:
    return {"name": host.name, "ssh": host.ssh, "port": host.port,
            "max_sessions": host.max_sessions, "root": host.root, "repos": dict(host.repos),
            "enabled": host.enabled, "ssh_config": host.ssh_config,
            "connect_timeout": host.connect_timeout}


# ---- editing the user config


def table_for(name: str, ssh: str, *, port: int | None = None, max_sessions: int | None = None,
              root: str | None = None, repos: dict[str, str] | None = None,
              ssh_config: str | None = None, enabled: bool | None = None,
              connect_timeout: int | None = None) -> dict:
    """A host's table as the config file will hold it, checked like a file's would be (keys
    not given are left out: their defaults apply)."""
    table: dict = {"ssh": ssh}
    for key, value in (("port", port), ("max_sessions", max_sessions), ("root", root),
                       ("repos", repos), ("ssh_config", ssh_config), ("enabled", enabled),
                       ("connect_timeout", connect_timeout)):
        if value is not None:
            table[key] = value
    config_mod.validate({"hosts": {name: table}}, Path("command line"), "")
    return table


def add(config: Config, config_file: Path, name: str, table: dict) -> HostSettings:
    """Append ``[hosts.NAME]`` (a :func:`table_for`) to the user config file."""
    config_mod.validate({"hosts": {name: table}}, Path("command line"), "")
    if name in config.hosts:
        raise ConflictError(f"host {name!r} is already configured; `planeai host remove "
                            f"{name}` first")
    with _locked(config_file):
        text, old = _read(config_file)
        if name in (old.get("hosts") or {}):
            raise ConflictError(f"host {name!r} is already in {config_file}")
        expected = copy.deepcopy(old)
        expected.setdefault("hosts", {})[name] = table
        sep = "" if not text else ("\n" if text.endswith("\n") else "\n\n")
        new_text = text + sep + _table_text(name, table)
        _replace(config_file, new_text, expected)
    return _typed(name, table)


def remove(config: Config, config_file: Path, locs: Locations | None, name: str) -> None:
    """Delete the ``[hosts.NAME]`` table (and its sub-tables) from the user config file, and
    close that host's shared connection."""
    with _locked(config_file):
        text, old = _read(config_file)
        if name not in (old.get("hosts") or {}):
            if name in config.hosts:
                raise ConfigError(f"host {name!r} is not set in {config_file} but in another "
                                  "config file (--config or PLANEAI_CONFIG); edit that one")
            get(config, name)  # NotFoundError naming the known ones
        lines = text.splitlines(keepends=True)
        drop = _table_lines(lines, name)
        if not drop:
            raise ConfigError(f"{config_file}: host {name!r} is not written as a [hosts.{name}] "
                              "table; remove it by hand")
        start = min(drop)
        if start > 0 and not lines[start - 1].strip() and start - 1 not in drop:
            drop.add(start - 1)  # the blank line `add` put before it
        new_text = "".join(ln for i, ln in enumerate(lines) if i not in drop)
        expected = copy.deepcopy(old)
        del expected["hosts"][name]
        _replace(config_file, new_text, expected)
    host = config.hosts.get(name)
    if host is not None and locs is not None:
        from planeai.remote import relay

        relay.stop_relay(locs, name)  # before its connection goes: it would log in again
        try:
            connection(host, locs).exit_master()
        except OSError:
            pass  # no connection to close


def _typed(name: str, table: dict) -> HostSettings:
    values = {k: copy.deepcopy(s.default) for k, s in config_mod.HOST_KEYS.items()}
    values.update(copy.deepcopy(table))
    return HostSettings(name=name, **values)


def toml_string(s: str) -> str:
    """A TOML basic string holding exactly ``s``."""
    out = ['"']
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return toml_string(v)
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{toml_string(k)} = {_toml_value(x)}"
                                for k, x in v.items()) + " }" if v else "{}"
    raise TypeError(f"no TOML for {type(v).__name__}")


def _table_text(name: str, table: dict) -> str:
    # the name is a bare key (HOST_NAME: letters, digits, - and _)
    return f"[hosts.{name}]\n" + "".join(f"{k} = {_toml_value(v)}\n" for k, v in table.items())


def _header_path(line: str) -> tuple[tuple[str, ...], bool] | None:
    """(dotted key path, is an array of tables) when ``line`` is a table header, else None.
    TOML's own parser reads the header, so quoting and spaces are handled as TOML does."""
    s = line.strip()
    if not s.startswith("["):
        return None
    try:
        node = tomllib.loads(s)
    except tomllib.TOMLDecodeError:
        return None
    path: list[str] = []
    while isinstance(node, dict) and len(node) == 1:
        key = next(iter(node))
        path.append(key)
        node = node[key]
    if isinstance(node, list):
        return tuple(path), True
    return (tuple(path), False) if node == {} and path else None


def _table_lines(lines: list[str], name: str) -> set[int]:
    """Indexes of the lines of [hosts.NAME] and its sub-tables ([hosts.NAME.repos])."""
    out: set[int] = set()
    inside = False
    for i, line in enumerate(lines):
        header = _header_path(line)
        if header is not None:
            path, _ = header
            inside = path[:2] == ("hosts", name)
        if inside:
            out.add(i)
    return out


def _read(path: Path) -> tuple[str, dict]:
    if not path.exists():
        return "", {}
    text = path.read_text(encoding="utf-8")
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}; fix it before editing hosts") from None


def _replace(path: Path, text: str, expected: dict) -> None:
    """Write ``text`` to ``path`` atomically, only if it parses to ``expected`` and passes
    the config's checks."""
    try:
        parsed = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: the edit would not be valid TOML ({e}); nothing was "
                          "changed: edit the file by hand") from None
    if _without_empty_hosts(parsed) != _without_empty_hosts(expected):
        raise ConfigError(f"{path}: the edit would change more than that host; nothing was "
                          "changed: edit the file by hand")
    config_mod.validate(parsed, path, text)
    path = Path(os.path.realpath(path))  # a symlinked config (dotfiles) stays a symlink
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = (path.stat().st_mode & 0o777) if path.exists() else 0o644 & ~_umask()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _without_empty_hosts(d: dict) -> dict:
    return {k: v for k, v in d.items() if not (k == "hosts" and v == {})}


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def _locked(config_file: Path):
    """One editor of the user config at a time (two `host add` at once lose nothing)."""
    config_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(config_file.parent / f".{config_file.name}.lock", os.O_RDWR | os.O_CREAT,
                 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


# ---- check


@dataclass(frozen=True)
class CheckItem:
    name: str            # ssh, tmux, git, an agent's name, root, repo NAME
    ok: bool
    required: bool       # a host without it cannot run sessions
    version: str         # what it says of itself ("" when absent)
    detail: str          # a path there, or what is wrong

    def as_dict(self) -> dict:
        return {"name": self.name, "ok": self.ok, "required": self.required,
                "version": self.version, "detail": self.detail}


def parse_repo_args(items: list[str] | None) -> dict[str, str] | None:
    """``PROJECT=PATH`` arguments as a table (None when none were given)."""
    if not items:
        return None
    repos: dict[str, str] = {}
    for item in items:
        project, sep, path = item.partition("=")
        if not sep or not project.strip() or not path:
            raise ValidationError(f"--repo {item!r}: give PROJECT=PATH (a path on the host)")
        if project in repos:
            raise ValidationError(f"--repo {project!r} is given twice")
        repos[project] = path
    return repos


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return one_line(line, 120)
    return ""


def _probe(conn: SshHost, name: str, argv: list[str], required: bool) -> CheckItem:
    r = conn.run(["sh", "-c", _PROBE, "sh", *argv[:1], *argv], timeout=PROBE_TIMEOUT)
    where, _, said = r.out.partition("\n")
    if r.rc == 127 and not where:
        return CheckItem(name, False, required, "", f"{argv[0]} is not on PATH there")
    version = _first_line(said)
    if r.rc != 0:
        return CheckItem(name, False, required, version,
                         f"{argv[0]} --version failed (exit {r.rc}) at {one_line(where)}")
    return CheckItem(name, True, required, version, one_line(where))


def check(host: HostSettings, locs: Locations, agents: list[tuple[str, list[str]]]
          ) -> list[CheckItem]:
    """One item per thing a host needs: ssh (HostUnreachable when it cannot log in), tmux,
    git, each agent in ``agents`` ((name, version command)), root, each repo path."""
    conn = connection(host, locs)
    t0 = time.monotonic()
    shared = conn.check_master()
    r = conn.run(["sh", "-c", _WHOAMI], check=True, timeout=PROBE_TIMEOUT)
    ms = (time.monotonic() - t0) * 1000
    user, _, system = r.out.partition("\n")
    how = "over the shared connection" if shared else "logged in, connection kept"
    items = [CheckItem("ssh", True, True, one_line(system),
                       f"{one_line(user)}@{host.ssh.rpartition('@')[2]} "
                       f"({how}, {ms:.0f} ms)")]
    jobs = [("tmux", ["tmux", "-V"], True), ("git", ["git", "--version"], True)]
    jobs += [(n, list(argv), False) for n, argv in agents if argv]
    with ThreadPoolExecutor(max_workers=4) as pool:  # channels of the one connection
        items += list(pool.map(lambda j: _probe(conn, *j), jobs))
    items.append(_path_item(conn, "root", host.root, git=False))
    for project, path in sorted(host.repos.items()):
        items.append(_path_item(conn, f"repo {project}", path, git=True))
    return items


def _path_item(conn: SshHost, name: str, path: str, *, git: bool) -> CheckItem:
    full = conn.path(path)
    if git:
        r = conn.run(["git", "-C", full, "rev-parse", "--is-inside-work-tree"])
        if r.ok:
            return CheckItem(name, True, False, "", full)
        return CheckItem(name, False, False, "", f"{full}: not a git repo there")
    r = conn.run(["test", "-d", full])
    return CheckItem(name, True, False, "", full if r.ok else f"{full} (not there yet)")


def agents_to_probe() -> list[tuple[str, list[str]]]:
    """(name, version command) of every known agent CLI (bundled and user provider files;
    a repo's own are not about another machine)."""
    from planeai.providers import load_registry, provider_dirs

    reg = load_registry(provider_dirs(None))
    return [(p.name, list(p.version_command)) for p in sorted(reg.providers.values(),
                                                              key=lambda p: p.name)
            if p.name != "shell" and p.version_command]


# ---- images


def push_image(host: HostSettings, locs: Locations, image: str) -> int:
    """Copy ``image`` from this machine's Docker engine to the host's: ``docker save`` here
    streamed into ``docker load`` there over the host's SSH connection (no registry). Returns
    the bytes sent. One-line errors: no such image here, no docker there, the host down."""
    import subprocess
    import threading

    from planeai.errors import PlaneaiError
    from planeai.remote.ssh import HostUnreachable
    from planeai.sandbox import engine

    engine.engine()  # a missing engine here is said first, with how to fix it
    have = subprocess.run([engine.docker_bin(), "image", "inspect", image],
                          capture_output=True, stdin=subprocess.DEVNULL, timeout=60)
    if have.returncode != 0:
        raise NotFoundError(f"no image {image} here: build it with `planeai sandbox build`")
    conn = connection(host, locs)
    conn.connect()
    save = subprocess.Popen([engine.docker_bin(), "save", image], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    load = subprocess.Popen(conn.argv(["docker", "load", "-q"]), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    sent = 0
    err: list[bytes] = []
    t = threading.Thread(target=lambda: err.append(load.stderr.read()), daemon=True)
    t.start()
    try:
        while chunk := save.stdout.read(1 << 20):
            sent += len(chunk)
            load.stdin.write(chunk)
    except BrokenPipeError:
        pass
    finally:
        load.stdin.close()
    save_rc, load_rc = save.wait(), load.wait()
    t.join(10)
    said = one_line((err[0] if err else b"").decode("utf-8", "replace"))
    if load_rc == 255 and not conn.check_master():
        raise HostUnreachable(host.name, conn.where, said or "ssh failed")
    if save_rc != 0:
        raise PlaneaiError(f"docker save {image} failed: "
                           f"{one_line(save.stderr.read().decode('utf-8', 'replace'))}")
    if load_rc != 0:
        raise PlaneaiError(f"docker load on host {host.name} failed (exit {load_rc}): "
                           f"{said or 'no output'}; is docker installed there and usable by "
                           f"{host.ssh}?")
    return sent
