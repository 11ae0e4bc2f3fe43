"""The ``docker run`` argv of one sandboxed session: what the agent can see, touch and use.

Mounted (nothing else from the host: no home, no Docker socket, no SSH keys, no database):
- the worktree, read-write, at its own path (so git's absolute paths resolve);
- the repo's git dir, read-write so commits land, with its ``config`` and ``hooks`` mounted
  read-only over it: an agent that could write them could make the host's next ``git status``
  run code (core.fsmonitor, filter.*, core.hooksPath);
- the provider's state dir as HOME (its login, settings, trust: planeai.sandbox.state);
- the session's inbox (the in-container ``planeai``) and its secrets dir (read once, deleted).

Limits: the host user's uid:gid, every capability dropped, no new privileges, a read-only root
filesystem with a private /tmp, memory (swap included), CPUs and pids from config, and the
network config names (``none``, ``host``, ``bridge`` or a network the user made).
Environment values travel in the docker client's environment (``-e NAME``), never in argv;
secrets never as environment at all (``docker inspect`` shows every container's env).
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from planeai.sandbox.engine import LABEL_NAME, LABEL_SESSION, LABEL_STORE, LABEL_TASK

# Where things are inside the container.
HOME = "/home/agent"
INBOX = "/run/planeai/inbox"
SECRETS_DIR = "/run/planeai/secrets"
CLIENT = "/usr/local/bin/planeai"
# docker's default detach keys (ctrl-p,ctrl-q) would eat Ctrl-P in every agent and shell:
# a sequence nobody types instead.
DETACH_KEYS = "ctrl-@,ctrl-@,ctrl-@,ctrl-@"


@dataclass(frozen=True)
class Limits:
    memory: str = "4g"
    cpus: float = 2.0
    pids: int = 512
    network: str = "bridge"
    tmp_size: str = "1g"


@dataclass
class ContainerPlan:
    """Everything ``docker run`` needs for one session; ``argv()`` builds the command."""

    name: str                 # container name
    image: str
    session_id: str
    session_name: str
    task_key: str
    store_label: str
    cwd: str
    git_dir: str | None       # the repo's common git dir (None: not a git worktree)
    state_dir: str            # the provider's HOME inside
    inbox_dir: str
    secrets_dir: str
    client: str               # the in-container planeai (a host file, mounted read-only)
    argv: list[str]           # what runs inside (the agent behind the secrets step)
    env_names: list[str]      # names passed as -e NAME (values from the client's env)
    limits: Limits = field(default_factory=Limits)
    user: str = ""            # "uid:gid" ("" = this process's)
    # which of the git dir's config and hooks exist (None: look here; a host's plan says)
    git_protected: tuple[str, ...] | None = None

    def argv_for_docker(self) -> list[str]:
        user = self.user or f"{os.getuid()}:{os.getgid()}"
        lim = self.limits
        out = ["run", "--rm", "-i", "-t", "--init", "--name", self.name,
               "--detach-keys", DETACH_KEYS,
               "--label", f"{LABEL_SESSION}={self.session_id}",
               "--label", f"{LABEL_NAME}={self.session_name}",
               "--label", f"{LABEL_TASK}={self.task_key}",
               "--label", f"{LABEL_STORE}={self.store_label}",
               "--user", user,
               "--cap-drop", "ALL",
               "--security-opt", "no-new-privileges",
               "--read-only",
               "--tmpfs", f"/tmp:rw,exec,nosuid,size={lim.tmp_size}",
               "--memory", lim.memory, "--memory-swap", lim.memory,
               "--cpus", f"{lim.cpus:g}",
               "--pids-limit", str(lim.pids),
               "--network", lim.network,
               "--workdir", self.cwd,
               "--mount", _bind(self.cwd, self.cwd)]
        if self.git_dir and not _inside(self.git_dir, self.cwd):
            out += ["--mount", _bind(self.git_dir, self.git_dir)]
        if self.git_dir:
            for ro in ("config", "hooks"):
                p = os.path.join(self.git_dir, ro)
                there = (os.path.exists(p) if self.git_protected is None
                         else ro in self.git_protected)
                if there:
                    out += ["--mount", _bind(p, p, readonly=True)]
        out += ["--mount", _bind(self.state_dir, HOME),
                "--mount", _bind(self.inbox_dir, INBOX),
                "--mount", _bind(self.secrets_dir, SECRETS_DIR),
                "--mount", _bind(self.client, CLIENT, readonly=True),
                "--env", f"HOME={HOME}"]
        for name in self.env_names:
            out += ["--env", name]  # the value from docker's own environment, never argv
        out += ["--", self.image, *self.argv]
        return out


def _bind(src: str, dst: str, *, readonly: bool = False) -> str:
    # --mount takes comma-separated key=value: a path holding "," or "=" or a quote cannot be
    # expressed without CSV quoting; quote every field CSV-style so any path is literal.
    parts = [("type", "bind"), ("source", src), ("target", dst)]
    text = ",".join(_csv(f"{k}={v}") for k, v in parts)
    return text + (",readonly" if readonly else "")


def _csv(field: str) -> str:
    if re.search(r'[",\n\r]', field):
        return '"' + field.replace('"', '""') + '"'
    return field


def _inside(path: str, root: str) -> bool:
    try:
        Path(path).resolve().relative_to(Path(root).resolve())
        return True
    except ValueError:
        return False


def container_name(session_name: str, session_id: str) -> str:
    """Docker names allow [a-zA-Z0-9][a-zA-Z0-9_.-]*: the task key is, the id makes it unique."""
    safe = re.sub(r"[^a-zA-Z0-9_.-]", "-", session_name)[:60] or "session"
    return f"planeai-{safe}-{session_id}"


def store_label(db_path: Path) -> str:
    """Which planeai home owns a container: a short hash of its database's real path."""
    return hashlib.sha256(str(Path(db_path).resolve()).encode()).hexdigest()[:16]
