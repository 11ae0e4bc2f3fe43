"""A real Docker engine and planeai's agent images for the sandbox tests.

The images are built the way a user builds them, with `planeai sandbox build` (the base
offline with debootstrap: no registry is reachable here), once per machine: a later run
finds them present. Without an engine the tests skip (and so fail under CI=true)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

BASE_IMAGE = "planeai-base:bookworm"


def engine_problem() -> str | None:
    """Why there is no usable engine, or None."""
    if shutil.which("docker") is None:
        return "docker is not installed"
    cp = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"],
                        capture_output=True, text=True, timeout=60)
    if cp.returncode != 0:
        return f"no Docker engine: {cp.stderr.strip()[-200:]}"
    return None


def image_present(image: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", image], capture_output=True,
                          timeout=60).returncode == 0


def ensure_image(agent: str, image: str, env: dict | None = None) -> None:
    """Build ``image`` with `planeai sandbox build` unless it is there already."""
    if image_present(image):
        return
    args = [sys.executable, "-m", "planeai.cli.main", "sandbox", "build", agent]
    if agent == "base":
        args.append("--debootstrap")
    cp = subprocess.run(args, capture_output=True, text=True, timeout=900,
                        env=env or os.environ.copy())
    assert cp.returncode == 0, f"planeai sandbox build {agent} failed:\n{cp.stderr[-2000:]}"


def containers(label: str) -> list[str]:
    cp = subprocess.run(["docker", "ps", "-a", "--filter", f"label={label}", "--format",
                         "{{.Names}}"], capture_output=True, text=True, timeout=60, check=True)
    return cp.stdout.split()
