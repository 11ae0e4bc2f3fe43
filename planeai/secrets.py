"""Where secrets live (the OS keyring, or an opted-in 0600 file) and how they reach an agent.

Stores: ``keyring`` (the default) keeps each value in the OS keyring through the keyring
library, service ``planeai``, user ``PROVIDER/NAME``. A machine with no keyring backend (a
headless Linux box: keyring answers NoKeyringError) gets a one-line error saying how to get
one, or to opt into ``[secrets] store = "file"``: a JSON file, mode 0600, under planeai's config
dir, plaintext at rest. Nothing falls back to a file silently.

Delivery: a session's secrets never travel in argv, in tmux's environment or over the daemon's
socket. planeai writes them to a private file in the session's state dir and runs the agent
behind ``STEP``, a few lines of sh that open the file, delete it, export each ``NAME=value``
line and exec the agent: every backend, and a container's entrypoint, can use the same step.
``keyring`` is imported only when a keyring is really asked (it costs ~0.1 s).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
from pathlib import Path

from planeai.errors import PlaneaiError

SERVICE = "planeai"
STORES = ("keyring", "file")
FILE_NAME = "secrets.json"
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
VALUE_MAX = 64 * 1024

# $0 is the secrets file, "$@" the agent's argv: no value is ever parsed by the shell (each
# line is one quoted word to `export`). The file is opened, then removed, then read, so it is
# gone before the agent runs; a read-only mount (a container) just keeps it (rm fails quietly,
# the host removes it). A missing file (already consumed, or withdrawn after a failed start)
# runs the agent without secrets rather than not at all.
STEP = ('{ PATH="$PATH:/bin:/usr/bin" rm -f -- "$0"; '
        'while IFS= read -r l <&4 || [ -n "$l" ]; do export "$l" || exit 126; done; '
        '} 2>/dev/null 4< "$0"; exec "$@"')


class SecretError(PlaneaiError):
    """A secret cannot be stored or read as asked (no keyring, a bad value, an unsafe file)."""


def check_value(value: str, what: str) -> str:
    """A value that fits one line of the session file (API keys and tokens do)."""
    if not value:
        raise SecretError(f"{what}: the value is empty; nothing was stored")
    if "\n" in value or "\r" in value or "\0" in value:
        raise SecretError(f"{what}: the value holds a line break or NUL; a secret is one line")
    if len(value.encode("utf-8")) > VALUE_MAX:
        raise SecretError(f"{what}: the value is over {VALUE_MAX // 1024} KiB")
    return value


# ---------------------------------------------------------------------- the stores
class KeyringStore:
    """The OS keyring, through the keyring library."""

    kind = "keyring"

    def __init__(self) -> None:
        import keyring
        from keyring.backends import fail

        self._keyring = keyring
        backend = keyring.get_keyring()
        # a chainer of nothing, or the fail backend: keyring found no usable store
        inner = getattr(backend, "backends", None)
        if isinstance(backend, fail.Keyring) or inner == []:
            raise SecretError(
                "no OS keyring is available here (the keyring library found no backend): "
                "unlock or install one (GNOME Keyring / KWallet over D-Bus, macOS Keychain, "
                "Windows Credential Locker), or opt into a plaintext 0600 file with "
                "[secrets] store = \"file\" in planeai's config")
        self.where = f"the OS keyring ({type(backend).__name__})"

    def _call(self, fn, *args):
        try:
            return fn(*args)
        except self._keyring.errors.KeyringError as e:
            raise SecretError(f"the OS keyring refused: {e}".rstrip(": ")) from None

    def get(self, provider: str, name: str) -> str | None:
        return self._call(self._keyring.get_password, SERVICE, f"{provider}/{name}")

    def set(self, provider: str, name: str, value: str) -> None:
        self._call(self._keyring.set_password, SERVICE, f"{provider}/{name}", value)

    def delete(self, provider: str, name: str) -> bool:
        if self.get(provider, name) is None:
            return False
        try:
            self._keyring.delete_password(SERVICE, f"{provider}/{name}")
        except self._keyring.errors.PasswordDeleteError:
            return False
        except self._keyring.errors.KeyringError as e:
            raise SecretError(f"the OS keyring refused: {e}") from None
        return True


class FileStore:
    """``[secrets] store = "file"``: ``{provider: {NAME: value}}`` as JSON, mode 0600,
    PLAINTEXT at rest (anyone who can read the file as this user reads the secrets)."""

    kind = "file"

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.where = f"{self.path} (plaintext file, [secrets] store = \"file\")"

    def _read(self) -> dict[str, dict[str, str]]:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except FileNotFoundError:
            return {}
        except OSError as e:
            raise SecretError(f"cannot read the secrets file {self.path}: {e.strerror}") from None
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if st.st_mode & 0o077 or st.st_uid != os.getuid():
                raise SecretError(f"the secrets file {self.path} is readable by others (mode "
                                  f"{st.st_mode & 0o777:o}); run `chmod 600 {self.path}`")
            try:
                data = json.loads(f.read().decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                raise SecretError(f"the secrets file {self.path} is not valid JSON; fix or "
                                  "remove it") from None
        if not isinstance(data, dict):
            raise SecretError(f"the secrets file {self.path} is not a JSON object")
        return {str(p): {str(k): str(v) for k, v in (t or {}).items()}
                for p, t in data.items() if isinstance(t, dict)}

    def _write(self, data: dict) -> None:
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)  # whole or not at all

    def _locked(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.with_name(f".{self.path.name}.lock"),
                     os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)  # concurrent sets: none is lost
        return fd

    def get(self, provider: str, name: str) -> str | None:
        return self._read().get(provider, {}).get(name)

    def set(self, provider: str, name: str, value: str) -> None:
        fd = self._locked()
        try:
            data = self._read()
            data.setdefault(provider, {})[name] = value
            self._write(data)
        finally:
            os.close(fd)

    def delete(self, provider: str, name: str) -> bool:
        fd = self._locked()
        try:
            data = self._read()
            if name not in data.get(provider, {}):
                return False
            del data[provider][name]
            if not data[provider]:
                del data[provider]
            self._write(data)
            return True
        finally:
            os.close(fd)


def open_store(kind: str, config_dir: Path) -> KeyringStore | FileStore:
    """The configured store; raises SecretError (one line, with the fix) when the keyring
    has no backend here."""
    if kind == "file":
        return FileStore(Path(config_dir) / FILE_NAME)
    return KeyringStore()


# ---------------------------------------------------------------------- delivery
def write_env_file(path: Path, values: dict[str, str]) -> None:
    """``NAME=value`` lines in a new 0600 file (an old one is replaced), for ``STEP``."""
    lines = []
    for name, value in values.items():
        if not NAME_RE.match(name) or "\n" in value or "\r" in value or "\0" in value:
            raise SecretError(f"secret {name} cannot be passed to a session: names are "
                              "letters, digits and _; a value is one line")
        lines.append(f"{name}={value}\n")
    remove_env_file(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW,
                 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("".join(lines))


def remove_env_file(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def step_argv(path: Path, argv: list[str]) -> list[str]:
    """``argv`` run behind ``STEP`` with the secrets file ``path``: only the path is shown."""
    return ["/bin/sh", "-c", STEP, str(path), *argv]
