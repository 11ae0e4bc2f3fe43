"""The Docker sandbox as a service: whether a session is sandboxed, what its container gets,
the images and containers `planeai sandbox status` shows, and cleanup (stop, delete, crash).

A sandboxed session is one whose session directory holds ``sandbox.json`` (the spec its
supervisor runs, planeai.sandbox.supervise); its container carries the session's labels, so
after any crash ``reconcile`` finds what is left by asking the engine, not the store.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from planeai.config import Config
from planeai.core.models import LIVE_STATES, Project, Session, Task
from planeai.paths import Locations
from planeai.providers import Provider
from planeai.sandbox import engine
from planeai.sandbox.container import (SECRETS_DIR, ContainerPlan, Limits,
                                       container_name, store_label)
from planeai.sandbox.engine import SandboxError
from planeai.sandbox.state import ensure_state

SPEC = "sandbox.json"
SECRETS_FILE = "secrets.env"
CLIENT = Path(__file__).resolve().parent.parent / "sandbox" / "planeai-inbox.sh"
# Always passed into a container (values from the session's environment), besides the
# provider's own sandbox_env and [sandbox] env.
BASE_ENV = ("PLANEAI_SESSION_ID", "PLANEAI_TASK_KEY", "PLANEAI_PROJECT", "PLANEAI_WORKTREE",
            "TERM", "COLORTERM", "LANG", "LC_ALL", "IS_SANDBOX", "GIT_AUTHOR_NAME",
            "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL")


def wanted(config: Config, *, explicit: bool | None, task: Task | None, provider: Provider,
           project: Project) -> bool:
    """Sandboxed or not: the start's own flag, else the task's own setting, else the most
    specific config (task, provider, project), else [sandbox] enabled."""
    if explicit is not None:
        return explicit
    if task is not None and task.sandbox is not None:
        return task.sandbox  # set on the task itself (task add/edit --sandbox)
    sb = config.sandbox
    if task is not None and task.key in sb.tasks:
        return sb.tasks[task.key]
    if provider.name in sb.providers:
        return sb.providers[provider.name]
    if project.name in sb.projects:
        return sb.projects[project.name]
    return sb.enabled


def require_image(provider: Provider) -> None:
    """SandboxError saying how to fix it when the engine or the provider's image is missing."""
    if not engine.image_exists(provider.image):
        raise SandboxError(f"the sandbox image {provider.image} is missing: build it with "
                           f"`planeai sandbox build {provider.name}` (or start with "
                           "--no-sandbox)")


def root(locs: Locations) -> Path:
    return locs.data_dir / "sandbox"


def label(locs: Locations) -> str:
    return store_label(locs.db_path)


def is_sandboxed(session_dir: Path) -> bool:
    return (session_dir / SPEC).is_file()


@dataclass
class Prepared:
    launch: list[str]        # what the session's terminal runs (the supervisor)
    env: dict[str, str]      # the session's environment with what the container needs


def prepare(*, config: Config, locs: Locations, session: Session, session_dir: Path,
            provider: Provider, cwd: str, argv: list[str], env: dict[str, str],
            secret_values: dict[str, str], host_env: dict[str, str]) -> Prepared:
    """Write the session's container spec and secrets; return the supervisor's argv."""
    from planeai.secrets import step_argv, write_env_file

    image = provider.image
    sb = config.sandbox
    base = root(locs)
    state = ensure_state(base, provider.name, host_env.get("HOME"), provider.sandbox_state)
    inbox = session_dir / "inbox"
    secrets_dir = session_dir / "secrets"
    for d in (inbox, secrets_dir):
        d.mkdir(mode=0o700, exist_ok=True)
        os.chmod(d, 0o700)
    # the in-container planeai: a copy made executable here (an installed wheel need not
    # keep the file's mode), mounted read-only
    client = session_dir / "planeai-client"
    client.write_bytes(CLIENT.read_bytes())
    os.chmod(client, 0o755)
    inner = argv
    if secret_values:
        write_env_file(secrets_dir / SECRETS_FILE, secret_values)
        # the same step as on the host: read the file, delete it, export, exec the agent
        inner = step_argv(Path(SECRETS_DIR) / SECRETS_FILE, argv)
    env = dict(env)
    env["IS_SANDBOX"] = "1"  # it is one: agents that ask (Claude's skip-permissions) may know
    env.update(git_identity(cwd, env))
    names = [n for n in dict.fromkeys((*BASE_ENV, *provider.env, *provider.sandbox_env,
                                       *sb.env)) if n in env and n not in secret_values]
    plan = ContainerPlan(
        name=container_name(session.name, session.id), image=image, session_id=session.id,
        session_name=session.name, task_key=session.task_key or "", store_label=label(locs),
        cwd=cwd, git_dir=_git_common_dir(cwd), state_dir=str(state), inbox_dir=str(inbox),
        secrets_dir=str(secrets_dir), client=str(client), argv=inner, env_names=names,
        limits=Limits(memory=sb.memory, cpus=sb.cpus, pids=sb.pids, network=sb.network,
                      tmp_size=sb.tmp_size))
    spec = {"container": plan.name, "image": image, "inbox": str(inbox), "cwd": cwd,
            "secrets_dir": str(secrets_dir), "secrets_file": SECRETS_FILE,
            "docker_args": plan.argv_for_docker()}
    path = session_dir / SPEC
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(spec, f)
    # where the agent's HOME really is, for metrics (its records live in the state dir)
    env["PLANEAI_AGENT_HOME"] = str(state)
    return Prepared([sys.executable, "-m", "planeai.sandbox.supervise", str(path)], env)


def _git_common_dir(cwd: str) -> str | None:
    try:
        cp = subprocess.run(["git", "-C", cwd, "rev-parse", "--path-format=absolute",
                             "--git-common-dir"], capture_output=True, text=True, timeout=20,
                            stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    out = cp.stdout.strip()
    return out if cp.returncode == 0 and out else None


def git_identity(cwd: str, env: dict[str, str]) -> dict[str, str]:
    """The user's git identity for commits inside (their global git config is not mounted)."""
    out = {}
    for key, names in (("user.name", ("GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME")),
                       ("user.email", ("GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"))):
        if all(n in env for n in names):
            continue
        try:
            cp = subprocess.run(["git", "-C", cwd, "config", "--get", key], capture_output=True,
                                text=True, timeout=20, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired):
            continue
        value = cp.stdout.strip()
        if cp.returncode == 0 and value:
            for n in names:
                out.setdefault(n, env.get(n) or value)
    return out


def discard(session_dir: Path) -> None:
    """A start that did not spawn: its secrets must not stay behind."""
    try:
        os.unlink(session_dir / "secrets" / SECRETS_FILE)
    except OSError:
        pass


def remove_container(session: Session, session_dir: Path) -> bool:
    """The session's container gone (stop, delete): True when one was removed."""
    if not is_sandboxed(session_dir):
        return False
    try:
        spec = json.loads((session_dir / SPEC).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    discard(session_dir)
    try:
        return engine.remove(spec["container"])
    except SandboxError:
        return False


def reconcile(locs: Locations,
              lookup: Callable[[str], Session | None]) -> list[engine.Container]:
    """Remove this home's containers whose session is not live (a SIGKILLed supervisor, a
    crash); returns what was removed. Costs one `docker ps` only once a sandbox was used."""
    if not root(locs).exists():
        return []
    removed = []
    for c in engine.containers(label(locs)):
        s = lookup(c.session_id)
        if s is None or s.state not in LIVE_STATES:
            if engine.remove(c.id):
                removed.append(c)
    return removed


@dataclass
class Status:
    engine: engine.EngineInfo | None
    engine_error: str | None
    images: list[tuple[str, str, bool]]       # (provider, image, present)
    containers: list[engine.Container]


def status(locs: Locations, providers: list[Provider], base_image: str) -> Status:
    try:
        info = engine.engine()
    except SandboxError as e:
        return Status(None, str(e), [], [])
    present = {i.name for i in engine.images("")}
    rows = [("base", base_image, base_image in present)]
    rows += [(p.name, p.image, p.image in present) for p in providers if p.agent]
    return Status(info, None, rows, engine.containers(label(locs)))
