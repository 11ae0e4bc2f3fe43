"""Agent images: the bundled Dockerfiles (providers/docker/) and how `planeai sandbox build`
builds them, with docker's own progress on the terminal.

An agent image is the base (Debian + git) plus the agent CLI's native binary taken from the
user's own install, so the sandbox runs the version the host runs and a build needs no
registry. The base comes from ``docker build`` (a registry reachable) or, offline, from
debootstrap and ``docker import``.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Callable

from planeai.bundled import providers_dir
from planeai.sandbox.engine import SandboxError, docker_bin

BASE = "base"
DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"


def dockerfiles() -> Path:
    return providers_dir() / "docker"


def buildable() -> list[str]:
    d = dockerfiles()
    return sorted(p.name for p in d.iterdir() if (p / "Dockerfile").is_file()) if d.is_dir() else []


def native_binary(binary: str) -> Path:
    """The agent CLI's native executable on this host: the command itself when it is one,
    else the one its npm package vendors for this machine (e.g. codex's musl build)."""
    exe = shutil.which(binary)
    if exe is None:
        raise SandboxError(f"{binary} is not installed on this host: install it first "
                           "(its native binary goes into the image)")
    real = Path(exe).resolve()
    if _is_elf(real):
        return real
    arch = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64",
            "arm64": "aarch64"}.get(platform.machine().lower(), platform.machine())
    pkg = real.parent.parent
    for cand in sorted(pkg.rglob(binary)):
        if cand.is_file() and _is_elf(cand) and arch in str(cand) and "linux" in str(cand):
            return cand
    raise SandboxError(f"no native {binary} executable found in {pkg}: the image needs a "
                       "Linux binary of the agent CLI")


def _is_elf(p: Path) -> bool:
    try:
        with open(p, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def build(name: str, image: str, *, base_image: str, binary: str | None = None,
          debootstrap: bool = False, out: Callable[[str], None] = print) -> None:
    """Build ``image`` from the bundled Dockerfile ``name`` (or the base with debootstrap),
    streaming docker's progress through ``out``."""
    if name == BASE and debootstrap:
        return _base_from_debootstrap(image, out)
    src = dockerfiles() / name
    if not (src / "Dockerfile").is_file():
        raise SandboxError(f"no Dockerfile for {name!r}; bundled: {', '.join(buildable())}")
    with tempfile.TemporaryDirectory(prefix="planeai-build-") as tmp:
        ctx = Path(tmp)
        shutil.copy2(src / "Dockerfile", ctx / "Dockerfile")
        if name != BASE:
            agent = native_binary(binary or name)
            out(f"using {agent}")
            shutil.copy2(agent, ctx / "agent")
            os.chmod(ctx / "agent", 0o755)
        argv = [docker_bin(), "build", "-t", image, "--build-arg", f"BASE={base_image}",
                str(ctx)]
        # the classic builder: it uses local images as they are (BuildKit may try to resolve
        # a FROM in a registry) and is in every docker CLI
        env = dict(os.environ, DOCKER_BUILDKIT="0")
        _stream(argv, out, env=env, what=f"docker build of {image}")


def _base_from_debootstrap(image: str, out: Callable[[str], None]) -> None:
    exe = shutil.which("debootstrap")
    if exe is None:
        raise SandboxError("debootstrap is not installed (apt-get install debootstrap); or "
                           "build the base with a registry: planeai sandbox build base")
    if os.geteuid() != 0:
        raise SandboxError("debootstrap needs root: run `sudo planeai sandbox build base "
                           "--debootstrap`, or build with a registry without --debootstrap")
    with tempfile.TemporaryDirectory(prefix="planeai-rootfs-") as tmp:
        root = Path(tmp) / "root"
        _stream([exe, "--variant=minbase", "--include=git,ca-certificates", DEBIAN_SUITE,
                 str(root), DEBIAN_MIRROR], out, what="debootstrap")
        out(f"importing the root filesystem as {image}")
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        imp = subprocess.run([docker_bin(), "import", "--change", 'LABEL planeai.image="base"',
                              "-", image], stdin=tar.stdout, capture_output=True, text=True)
        tar.stdout.close()
        tar.wait()
        if imp.returncode != 0 or tar.returncode != 0:
            raise SandboxError(f"docker import failed: {imp.stderr.strip()[-300:]}")


def _stream(argv: list[str], out: Callable[[str], None], *, what: str,
            env: dict | None = None) -> None:
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, text=True, env=env, errors="replace")
    tail: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip("\n")
        out(line)
        tail = (tail + [line])[-5:]
    rc = proc.wait()
    if rc != 0:
        raise SandboxError(f"{what} failed (exit {rc}): {tail[-1] if tail else 'no output'}")
