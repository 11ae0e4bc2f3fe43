"""The Docker engine, through the ``docker`` CLI (argv lists only, never a shell).

The CLI rather than the Python SDK: it is what users have and debug with, it needs no socket
path guessing, and ``docker run -it`` is the one tool that wires a container's TTY to the
terminal planeai's backends already manage.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass

from planeai.errors import PlaneaiError

# Labels on every container planeai starts: which session it is, and which planeai home
# (database) owns it, so two homes on one engine never reconcile each other's containers.
LABEL_SESSION = "planeai.session"
LABEL_NAME = "planeai.name"
LABEL_TASK = "planeai.task"
LABEL_STORE = "planeai.store"

TIMEOUT = 60.0


class SandboxError(PlaneaiError):
    """The sandbox cannot do what was asked (no engine, no image, a refused container)."""


def docker_bin() -> str:
    exe = shutil.which("docker")
    if exe is None:
        raise SandboxError(
            "docker is not installed: install Docker (Debian/Ubuntu: apt-get install docker.io) "
            "and start its engine, or run without the sandbox (--no-sandbox)")
    return exe


def run(args: list[str], *, timeout: float = TIMEOUT, check: bool = True,
        input: str | None = None) -> subprocess.CompletedProcess:
    """``docker ARGS`` captured; a failure is a SandboxError carrying docker's own last line."""
    try:
        cp = subprocess.run([docker_bin(), *args], capture_output=True, text=True,
                            timeout=timeout, input=input, stdin=None if input else
                            subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise SandboxError(f"docker {args[0]} did not answer within {timeout:.0f} s: "
                           "is the Docker engine hung? (docker info)") from None
    if check and cp.returncode != 0:
        raise SandboxError(_engine_hint(cp.stderr) or
                           f"docker {args[0]} failed: {_last_line(cp.stderr)}")
    return cp


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1].strip() if lines else "no output"


def _engine_hint(stderr: str) -> str | None:
    if "Cannot connect to the Docker daemon" in stderr or "Is the docker daemon running" in stderr:
        return ("the Docker engine is not running: start it (systemctl start docker, or "
                "dockerd &) or run without the sandbox (--no-sandbox)")
    if "permission denied" in stderr and "docker.sock" in stderr:
        return ("no permission to use the Docker engine: add your user to the docker group "
                "(then log in again) or run without the sandbox (--no-sandbox)")
    return None


@dataclass(frozen=True)
class EngineInfo:
    client: str
    server: str


def engine() -> EngineInfo:
    """The running engine's version; SandboxError (with how to fix it) when there is none."""
    cp = run(["version", "--format", "{{json .}}"], timeout=20)
    try:
        data = json.loads(cp.stdout)
    except json.JSONDecodeError:
        raise SandboxError(f"docker version printed no JSON: {_last_line(cp.stdout)}") from None
    return EngineInfo((data.get("Client") or {}).get("Version", "?"),
                      (data.get("Server") or {}).get("Version", "?"))


def _found(cp: subprocess.CompletedProcess) -> bool:
    """True on success; False when docker said "no such thing"; SandboxError when the engine
    itself is the problem (not running, no permission)."""
    if cp.returncode == 0:
        return True
    hint = _engine_hint(cp.stderr)
    if hint:
        raise SandboxError(hint)
    return False


def image_exists(image: str) -> bool:
    return _found(run(["image", "inspect", "--format", "{{.Id}}", "--", image], check=False,
                      timeout=20))


@dataclass(frozen=True)
class ImageInfo:
    name: str
    id: str
    size: int
    created: str


def images(prefix: str) -> list[ImageInfo]:
    cp = run(["image", "ls", "--format", "{{json .}}"], timeout=20)
    out = []
    for line in cp.stdout.splitlines():
        try:
            d = json.loads(line)
        except json.JSONDecodeError:
            continue
        name = f"{d.get('Repository')}:{d.get('Tag')}"
        if name.startswith(prefix):
            out.append(ImageInfo(name, d.get("ID", ""), 0, d.get("CreatedSince", "")))
    return out


@dataclass(frozen=True)
class Container:
    id: str
    name: str
    state: str          # running, exited, created, ...
    session_id: str
    session_name: str
    task_key: str


def containers(store_label: str) -> list[Container]:
    """Every container (running or not) that this planeai home started."""
    fmt = ('{{.ID}}\t{{.Names}}\t{{.State}}\t{{.Label "%s"}}\t{{.Label "%s"}}\t{{.Label "%s"}}'
           % (LABEL_SESSION, LABEL_NAME, LABEL_TASK))
    cp = run(["ps", "-a", "--no-trunc", "--filter", f"label={LABEL_STORE}={store_label}",
              "--format", fmt], timeout=20)
    out = []
    for line in cp.stdout.splitlines():
        parts = line.split("\t")
        if len(parts) == 6:
            out.append(Container(*parts))
    return out


def remove(name_or_id: str) -> bool:
    """Force-remove a container; True when it existed."""
    return _found(run(["rm", "-f", "--", name_or_id], check=False, timeout=30))
