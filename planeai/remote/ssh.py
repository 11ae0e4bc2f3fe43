"""Commands on a host over SSH, every one over one connection per host.

OpenSSH multiplexes for us (ControlMaster=auto + ControlPersist): the first command logs in and
leaves a master process behind a socket in planeai's runtime dir; every later command, from
any planeai process, is a new channel on that connection (milliseconds, no new login). So a
hundred sessions on a host do not mean a hundred logins.

Identity, ProxyJump, user names and the like stay in the user's own ~/.ssh/config; a host's
``ssh_config`` key names another file (``ssh -F``), which the tests use for a config and
known_hosts of their own. BatchMode: ssh never prompts (a missing key is an error, not a hang).

ssh joins its arguments into one line that the host's login shell parses, so :meth:`run`
quotes every word with shlex.quote: untrusted text (a path, a branch name, a title) is one
literal argument there, never code. The host's login shell must be a POSIX shell.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from planeai.errors import PlaneaiError

CONNECT_TIMEOUT = 10        # seconds to reach a host and log in
PERSIST = "10m"             # how long an unused master connection stays
ALIVE_INTERVAL = 15         # keepalives: a dead network is noticed in 3 x this
# sun_path is 108 bytes with its NUL, and ssh binds "<ControlPath>.<16 random chars>" first
_SOCKET_MAX = 107 - 17


class HostUnreachable(PlaneaiError):
    """ssh itself failed: the host is down, refuses us, or is unknown. Not a command's
    failure (see :class:`RemoteCommandError`)."""

    def __init__(self, host: str, where: str, said: str) -> None:
        self.host, self.said = host, said
        super().__init__(f"host {host} ({where}) is unreachable: {said}")


class RemoteCommandError(PlaneaiError):
    """A command ran on the host and failed (or did not finish in time)."""


@dataclass(frozen=True)
class Result:
    rc: int
    out: str
    err: str

    @property
    def ok(self) -> bool:
        return self.rc == 0


def one_line(text: str, limit: int = 300) -> str:
    """The last non-empty line of ``text`` (what ssh or a command said last), with no control
    characters: it may come from the other machine."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    line = re.sub(r"[\x00-\x1f\x7f-\x9f]", "?", lines[-1] if lines else "")
    return line if len(line) <= limit else line[:limit - 1] + "…"


def remote_command(argv: Sequence[str]) -> str:
    """The line the host's shell runs for ``argv``: each word quoted, so each reaches the
    program as itself."""
    if not argv:
        raise ValueError("no command")
    for word in argv:
        if not isinstance(word, str):
            raise TypeError(f"remote argv words are str, not {type(word).__name__}")
        if "\0" in word:
            raise ValueError("a remote argument cannot hold a NUL byte")
    return " ".join(shlex.quote(w) for w in argv)


def control_dir(runtime_dir: Path) -> Path:
    """Where the master sockets live: <runtime>/ssh, or a short private dir in /tmp when that
    path is too long for a socket."""
    return socket_dir(runtime_dir, "ssh", longest="/h-0123456789ab")


def socket_dir(runtime_dir: Path, name: str, *, longest: str, avoid: str = "") -> Path:
    """A private directory for unix sockets: <runtime>/NAME, or /tmp/planeai-NAME-<uid>-<hash>
    when the first would make a socket path too long (``longest``: the longest file name it
    will hold) or holds a character of ``avoid``. PlaneaiError when it is not this user's."""
    d = Path(runtime_dir) / name
    if len(str(d)) + len(longest) > _SOCKET_MAX or set(str(d)) & set(avoid):
        digest = hashlib.sha256(str(runtime_dir).encode()).hexdigest()[:10]
        d = Path("/tmp") / f"planeai-{name}-{os.getuid()}-{digest}"
    try:
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
    except FileExistsError:
        pass
    st = os.lstat(d)
    # /tmp is shared: a dir someone else made (or a symlink) could be a trap for our sockets
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        raise PlaneaiError(f"{d} is not a directory of this user's; remove it and try again")
    if st.st_mode & 0o077:
        os.chmod(d, 0o700)
    return d


class SshHost:
    """Runs commands on one host. Cheap to make; the connection is shared by every
    SshHost (in any process) with the same destination, port and ssh config."""

    def __init__(self, name: str, target: str, *, port: int = 0, ssh_config: str = "",
                 control_dir: Path, connect_timeout: float = CONNECT_TIMEOUT,
                 persist: str = PERSIST, ssh: str = "ssh") -> None:
        self.name, self.target, self.port = name, target, port
        self.ssh_config = os.path.expanduser(ssh_config) if ssh_config else ""
        self.connect_timeout = connect_timeout
        self.persist = persist
        self.ssh = ssh
        key = "\0".join((target, str(port), self.ssh_config))
        self.control_path = Path(control_dir) / f"h-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
        self._home: str | None = None

    @property
    def where(self) -> str:
        return f"{self.target}:{self.port}" if self.port else self.target

    def _options(self) -> list[str]:
        opts = [self.ssh]
        if self.ssh_config:
            opts += ["-F", self.ssh_config]
        if self.port:
            opts += ["-p", str(self.port)]
        for o in ("BatchMode=yes", "ControlMaster=auto", f"ControlPath={self.control_path}",
                  f"ControlPersist={self.persist}",
                  f"ConnectTimeout={max(1, round(self.connect_timeout))}",
                  f"ServerAliveInterval={ALIVE_INTERVAL}", "ServerAliveCountMax=3"):
            opts += ["-o", o]
        return opts

    def argv(self, remote_argv: Sequence[str], *, tty: bool = False) -> list[str]:
        """The local argv that runs ``remote_argv`` there (``tty``: for a terminal, like
        ``tmux attach``). ``--`` ends ssh's options: the destination is never one."""
        return [*self._options(), "-t" if tty else "-T", "--", self.target,
                remote_command(remote_argv)]

    def run(self, remote_argv: Sequence[str], *, input: str | None = None,
            timeout: float | None = 60, check: bool = False) -> Result:
        """Run ``remote_argv`` there; (rc, out, err). HostUnreachable when ssh could not get
        there; with ``check``, RemoteCommandError when the command failed."""
        r = self._run(remote_argv, input, timeout, text=True)
        result = Result(r.returncode, r.stdout, r.stderr)
        if check and not result.ok:
            raise RemoteCommandError(
                f"host {self.name}: {remote_argv[0]} failed (exit {r.returncode}): "
                f"{one_line(r.stderr or r.stdout) or 'no output'}")
        return result

    def run_bytes(self, remote_argv: Sequence[str], *, input: bytes | None = None,
                  timeout: float | None = 600, check: bool = True) -> tuple[int, bytes, str]:
        """:meth:`run` for binary data (a git bundle, a tar stream, a secrets file on stdin:
        data that must never be a command-line word): (rc, stdout bytes, stderr text)."""
        r = self._run(remote_argv, input, timeout, text=False)
        err = r.stderr.decode("utf-8", "replace")
        if check and r.returncode != 0:
            raise RemoteCommandError(
                f"host {self.name}: {remote_argv[0]} failed (exit {r.returncode}): "
                f"{one_line(err) or 'no output'}")
        return r.returncode, r.stdout, err

    def _run(self, remote_argv: Sequence[str], input, timeout: float | None, *, text: bool):
        try:
            r = subprocess.run(self.argv(remote_argv), input=input, capture_output=True,
                               text=text, errors="replace" if text else None, timeout=timeout,
                               stdin=subprocess.DEVNULL if input is None else None)
        except subprocess.TimeoutExpired:
            raise RemoteCommandError(
                f"host {self.name}: {remote_argv[0]} did not finish in {timeout:g} s") from None
        except FileNotFoundError:
            raise PlaneaiError(f"{self.ssh} is not installed (the OpenSSH client)") from None
        # 255 is ssh's own failure, or the command's exit status; with no master running
        # there was no connection, so it was ssh's
        if r.returncode == 255 and not self.check_master():
            err = r.stderr if text else r.stderr.decode("utf-8", "replace")
            raise HostUnreachable(self.name, self.where,
                                  one_line(err) or "ssh failed (exit status 255)")
        return r

    def _control(self, op: str) -> subprocess.CompletedProcess:
        return subprocess.run([*self._options(), "-O", op, "--", self.target],
                              capture_output=True, text=True, errors="replace",
                              stdin=subprocess.DEVNULL, timeout=30)

    def forward_socket(self, remote_path: str, local_path: str, *, cancel: bool = False
                       ) -> None:
        """Forward unix socket ``remote_path`` there to ``local_path`` here over the master
        connection (``-O forward -R``); it lasts as long as that connection. ``cancel``
        takes it back. HostUnreachable when no master runs."""
        self._forward(f"{remote_path}:{local_path}", cancel)

    def forward_port(self, remote_port: int, local_port: int, *, cancel: bool = False
                     ) -> None:
        """Forward TCP 127.0.0.1:``remote_port`` there to 127.0.0.1:``local_port`` here over
        the master connection (e.g. a model endpoint here for agents there)."""
        self._forward(f"127.0.0.1:{int(remote_port)}:127.0.0.1:{int(local_port)}", cancel)

    def _forward(self, spec: str, cancel: bool) -> None:
        op = "cancel" if cancel else "forward"
        r = subprocess.run([*self._options(), "-O", op, "-R", spec, "--", self.target],
                           capture_output=True, text=True, errors="replace",
                           stdin=subprocess.DEVNULL, timeout=30)
        if r.returncode != 0:
            raise HostUnreachable(self.name, self.where,
                                  one_line(r.stderr) or f"ssh -O {op} failed")

    def connect(self) -> None:
        """Log in now (the master connection) unless already connected; HostUnreachable."""
        if not self.check_master():
            self.run(["true"], check=True)

    def check_master(self) -> bool:
        """Is a master connection up for this host?"""
        if not self.control_path.exists():
            return False
        return self._control("check").returncode == 0

    def master_pid(self) -> int | None:
        """The pid of the master ssh (a local process), or None when none runs."""
        if not self.control_path.exists():
            return None
        r = self._control("check")
        m = re.search(r"pid=(\d+)", r.stderr + r.stdout)
        return int(m.group(1)) if r.returncode == 0 and m else None

    def exit_master(self) -> None:
        """Close the master connection (and so every channel on it)."""
        if self.control_path.exists():
            self._control("exit")

    def home(self) -> str:
        """The login's home directory there (asked once)."""
        if self._home is None:
            r = self.run(["sh", "-c", 'printf %s "$HOME"'], check=True)
            if not r.out.startswith("/"):
                raise RemoteCommandError(f"host {self.name}: $HOME is not a path: "
                                         f"{one_line(r.out)!r}")
            self._home = r.out
        return self._home

    def path(self, path: str) -> str:
        """A host path from config (``/...``, ``~`` or ``~/...``) as an absolute path there:
        words are quoted, so the host's shell never expands ``~`` itself."""
        if path == "~" or path.startswith("~/"):
            return self.home().rstrip("/") + path[1:]
        return path
