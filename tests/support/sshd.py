"""A real OpenSSH server on 127.0.0.1 standing in for a second machine (DESIGN.md, "A second
machine, here"): an ``sshd -f CONFIG`` of the test's own (its own host key, port, pid file and
log; no PAM, no passwords) and a second user made for the test, logged in with a key the test
generated. The client side is a ssh config file and known_hosts of the test's own, passed with
``-F``: nothing reads or writes the real ~/.ssh.

Needs root (useradd, sshd switching users) and openssh-server (installed with apt-get when
missing). Without them the tests skip, which fails under CI=true (tests/conftest.py).
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from support.polling import retry_until

SSHD = "/usr/sbin/sshd"


def sshd_problem() -> str | None:
    """Why no test sshd can run here, or None; installs openssh-server when it can."""
    if os.geteuid() != 0:
        return "the sshd tests need root (useradd, sshd)"
    if not shutil.which("ssh") or not shutil.which("ssh-keygen"):
        return "the OpenSSH client is not installed"
    if not os.path.exists(SSHD) and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "install", "-y", "-qq", "openssh-server"], env=env,
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=600)
    if not os.path.exists(SSHD):
        return "openssh-server is not installed (apt-get install openssh-server)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _children(pid: int) -> list[int]:
    """Direct children of ``pid`` (from /proc: no ps parsing)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as f:
                stat = f.read()
        except OSError:
            continue
        # the command name may hold spaces and parens: the fields after its last ')' are fixed
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            out.append(int(entry))
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class Sshd:
    """One test sshd and its user. ``target`` is what a host's ``ssh`` key holds,
    ``client_config`` what its ``ssh_config`` key holds."""

    def __init__(self) -> None:
        # a short dir of its own: the client's ControlPath sockets are length-limited
        self.dir = Path(tempfile.mkdtemp(prefix="pai-sshd-"))
        self.user = "pai" + secrets.token_hex(4)
        self.port = 0
        self.config = self.dir / "sshd_config"
        self.pidfile = self.dir / "sshd.pid"
        self.log = self.dir / "sshd.log"
        self.client_config = self.dir / "ssh_config"
        self.key = self.dir / "client_key"
        self.known_hosts = self.dir / "known_hosts"
        self.pid: int | None = None
        self._user_made = False

    @property
    def target(self) -> str:
        return f"{self.user}@127.0.0.1"

    @property
    def home(self) -> Path:
        return Path(pwd.getpwnam(self.user).pw_dir)

    def setup(self) -> "Sshd":
        run = lambda *a: subprocess.run(list(a), check=True, capture_output=True,  # noqa: E731
                                        stdin=subprocess.DEVNULL, timeout=60)
        # '*' is a password nothing matches: the account is usable with a key, not locked
        # (sshd refuses a locked account when PAM is off)
        run("useradd", "-m", "-p", "*", "-s", "/bin/sh", self.user)
        self._user_made = True
        run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "planeai-test-host",
            "-f", str(self.dir / "host_key"))
        run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "planeai-test-client",
            "-f", str(self.key))
        ssh_dir = self.home / ".ssh"
        ssh_dir.mkdir(mode=0o700, exist_ok=True)
        auth = ssh_dir / "authorized_keys"
        auth.write_text((self.dir / "client_key.pub").read_text())
        auth.chmod(0o600)
        ent = pwd.getpwnam(self.user)
        for p in (ssh_dir, auth):
            os.chown(p, ent.pw_uid, ent.pw_gid)
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir
        self.start()
        return self

    def start(self) -> None:
        """Start (or restart after :meth:`stop`) on the same port where it can."""
        for _ in range(5):
            if not self.port or _listening(self.port):
                self.port = _free_port()
            self._write_configs()
            r = subprocess.run([SSHD, "-f", str(self.config), "-E", str(self.log)],
                               capture_output=True, text=True, stdin=subprocess.DEVNULL,
                               timeout=30)
            if r.returncode != 0:
                raise RuntimeError(f"sshd did not start: {r.stderr.strip()}")
            try:
                # sshd creates its pid file, then writes it: wait for the pid, not the file
                retry_until(lambda: self._pid_written() and _listening(self.port),
                            message="the test sshd to listen", timeout=10)
                self.pid = int(self.pidfile.read_text().split()[0])
                return
            except AssertionError:
                self.port = 0  # taken between choosing and binding: another port
        raise RuntimeError(f"sshd did not listen; log: {self.log.read_text()[-500:]}")

    def _pid_written(self) -> bool:
        try:
            return self.pidfile.read_text().strip().isdigit()
        except OSError:
            return False

    def _write_configs(self) -> None:
        self.config.write_text(
            f"Port {self.port}\n"
            "ListenAddress 127.0.0.1\n"
            f"HostKey {self.dir / 'host_key'}\n"
            f"PidFile {self.pidfile}\n"
            "UsePAM no\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "PubkeyAuthentication yes\n"
            "StrictModes no\n"
            f"AllowUsers {self.user}\n"
            "AuthorizedKeysFile .ssh/authorized_keys\n"
            # many sessions over one multiplexed connection (sessions, probes, attaches)
            "MaxSessions 100\n"
            "PrintMotd no\n"
            "LogLevel VERBOSE\n")
        host_pub = (self.dir / "host_key.pub").read_text().split()
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {host_pub[0]} {host_pub[1]}\n")
        self.client_config.write_text(
            "Host *\n"
            f"  IdentityFile {self.key}\n"
            "  IdentitiesOnly yes\n"
            f"  UserKnownHostsFile {self.known_hosts}\n"
            "  GlobalKnownHostsFile /dev/null\n"
            "  StrictHostKeyChecking yes\n")

    def connections(self) -> list[int]:
        """sshd's per-connection processes: each accepted TCP connection is one child of the
        listening daemon."""
        return [p for p in _children(self.pid) if _alive(p)] if self.pid else []

    def logins(self) -> int:
        """Successful logins since the start (sshd's log, LogLevel VERBOSE)."""
        if not self.log.exists():
            return 0
        return self.log.read_text(errors="replace").count("Accepted publickey for ")

    def stop(self) -> None:
        """The host goes down: the daemon and every connection it holds."""
        if self.pid is None:
            return
        conns = self.connections()
        for pid in [self.pid, *conns]:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        retry_until(lambda: not any(_alive(p) for p in [self.pid, *conns]),
                    message="the test sshd to stop", timeout=10)
        self.pid = None
        self.pidfile.unlink(missing_ok=True)

    def _user_processes(self) -> list[int]:
        uid = pwd.getpwnam(self.user).pw_uid
        out = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if os.stat(f"/proc/{entry}").st_uid == uid:
                        out.append(int(entry))
                except OSError:
                    pass
        return out

    def cleanup(self) -> None:
        try:
            self.stop()
        finally:
            if self._user_made:
                # what the test ran as that user (tmux servers, agents): by pid, then the user
                for pid in self._user_processes():
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                subprocess.run(["userdel", "-r", "-f", self.user], capture_output=True,
                               stdin=subprocess.DEVNULL, timeout=60)
            shutil.rmtree(self.dir, ignore_errors=True)


def start_sshd() -> Sshd:
    """A running test sshd (skips the test when none can run). Call ``cleanup()`` after."""
    problem = sshd_problem()
    if problem:
        pytest.skip(problem)
    sshd = Sshd()
    try:
        return sshd.setup()
    except Exception:
        sshd.cleanup()
        raise
