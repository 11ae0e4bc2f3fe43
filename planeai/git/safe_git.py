"""A hardened git runner: repository config written by an agent cannot make it run code.

An agent that can write ``.git/config`` (or ``config.worktree``, or a file it includes) could
otherwise make planeai's host-side ``git status`` / ``diff`` / ``add`` / ``worktree add`` run
commands through ``core.fsmonitor``, hooks, ``diff.external``, diff drivers, textconv or filter
drivers.  Every call made through :func:`git` therefore

* always passes ``-c core.fsmonitor=false -c core.hooksPath=/dev/null -c protocol.ext.allow=never
  -c commit.gpgSign=false -c diff.ignoreSubmodules=dirty`` and ``--no-pager``;
* adds ``--no-ext-diff --no-textconv`` to ``diff``/``log``/``show``;
* for subcommands that may read file content (status, add, diff, checkout, reset, worktree add
  ...), first reads the config (``git config --show-scope``, which runs nothing) and blanks every
  command-valued key set in an agent-writable scope (``local`` or ``worktree``, including files
  those include): ``filter.<x>.clean/smudge/process`` (and ``required=false``),
  ``diff.<x>.command/textconv``, ``diff.external``, ``merge.<x>.driver``, ``core.sshCommand``,
  ``core.gitProxy``, ``core.askPass``, ``core.alternateRefsCommand``, ``gpg[.<fmt>].program``,
  ``credential[.<url>].helper``, ``remote.<x>.uploadpack/receivepack``.  The overrides travel as
  ``GIT_CONFIG_COUNT``/``GIT_CONFIG_KEY_n``/``GIT_CONFIG_VALUE_n`` (no ``-c key=value`` parsing, so
  odd driver names cannot break out) and are inherited by git's own child processes.
  Drivers defined only in system/global config (e.g. ``git lfs install``) keep working.
* runs with ``LC_ALL=C``, ``GIT_TERMINAL_PROMPT=0``, ``GIT_OPTIONAL_LOCKS=0`` (status does not
  take the index lock an agent may be using), editors set to ``true``, and with inherited
  ``GIT_DIR``/``GIT_INDEX_FILE``/``GIT_CONFIG_*``/``GIT_EXTERNAL_DIFF``/... removed.

Caveat: the config read and the git run are two processes, so an agent racing to add a *new*
filter name between them could win a window of a few milliseconds.  Hooks, fsmonitor and
``--no-ext-diff`` have no such window.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from planeai.errors import GitError

# Always on, for every call.
HARDENING_ARGS: tuple[str, ...] = (
    "--no-pager",
    "-c", "core.fsmonitor=false",
    "-c", "core.hooksPath=/dev/null",
    "-c", "protocol.ext.allow=never",
    "-c", "commit.gpgSign=false",
    "-c", "tag.gpgSign=false",
    "-c", "diff.ignoreSubmodules=dirty",
    "-c", "status.submoduleSummary=false",
    "-c", "submodule.recurse=false",
)

# Environment variables that would redirect or reconfigure git behind our back.
_STRIP_ENV = (
    "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR", "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_NAMESPACE", "GIT_CEILING_DIRECTORIES",
    "GIT_DISCOVERY_ACROSS_FILESYSTEM", "GIT_EXTERNAL_DIFF", "GIT_DIFF_OPTS", "GIT_PAGER",
    "GIT_CONFIG", "GIT_CONFIG_PARAMETERS", "GIT_CONFIG_COUNT", "GIT_EXEC_PATH", "GIT_TRACE",
    "GIT_PREFIX", "GIT_QUARANTINE_PATH", "GIT_ATTR_SOURCE", "GIT_SSH", "GIT_PROXY_COMMAND",
)

# Subcommands (or "cmd sub") that never read worktree content through drivers, so the config
# scan (one extra fork) is skipped for them.  Hooks and fsmonitor stay disabled regardless.
# Anything that writes the index is NOT here: writing an index re-checks racily clean entries
# by content, through the clean filter (measured: `git write-tree` ran a filter.<x>.process).
_NO_SCAN = frozenset({
    "rev-parse", "for-each-ref", "show-ref", "symbolic-ref", "update-ref", "branch", "config",
    "commit-tree", "merge-base", "rev-list", "check-ref-format", "ls-tree", "var", "version",
    "count-objects", "mktree", "check-ignore",
    "worktree list", "worktree prune", "worktree lock", "worktree unlock",
})

_DIFF_LIKE = frozenset({"diff", "log", "show"})

_UNTRUSTED_SCOPES = frozenset({"local", "worktree"})


def _base_env(extra: dict | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in _STRIP_ENV and not k.startswith("GIT_CONFIG_KEY_")
           and not k.startswith("GIT_CONFIG_VALUE_")}
    env.update({
        "LC_ALL": "C",
        "LANG": "C",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_OPTIONAL_LOCKS": "0",
        "GIT_EDITOR": "true",
        "GIT_SEQUENCE_EDITOR": "true",
        "GIT_MERGE_AUTOEDIT": "no",
    })
    if extra:
        for k, v in extra.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = str(v)
    # Never let a caller-supplied counted config list through: we own it.
    for k in [k for k in env if k.startswith(("GIT_CONFIG_KEY_", "GIT_CONFIG_VALUE_"))]:
        del env[k]
    env.pop("GIT_CONFIG_COUNT", None)
    env.pop("GIT_CONFIG_PARAMETERS", None)
    return env


_OPTS_WITH_VALUE = frozenset({"-c", "-C", "--git-dir", "--work-tree", "--namespace",
                              "--config-env", "--exec-path"})


def _subcommand(args: tuple[str, ...]) -> tuple[int, str, str]:
    """(index of the subcommand in args, subcommand, its first non-option argument)."""
    i = 0
    while i < len(args):
        a = args[i]
        if a in _OPTS_WITH_VALUE:
            i += 2
            continue
        if a.startswith("-"):
            i += 1
            continue
        sub = next((b for b in args[i + 1:] if not b.startswith("-")), "")
        return i, a, sub
    return -1, "", ""


def dangerous_overrides(key_scopes: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Overrides (key, value) that blank command-valued keys set in agent-writable scopes."""
    out: dict[str, str] = {}
    for scope, key in key_scopes:
        if scope not in _UNTRUSTED_SCOPES:
            continue
        low = key.lower()
        section, _, rest = key.partition(".")
        section = section.lower()
        sub, _, var = rest.rpartition(".")
        var = var.lower()
        if section == "filter" and sub and var in ("clean", "smudge", "process", "required"):
            for v in ("clean", "smudge", "process"):
                out[f"filter.{sub}.{v}"] = ""
            out[f"filter.{sub}.required"] = "false"
        elif section == "diff" and sub and var in ("command", "textconv"):
            out[f"diff.{sub}.command"] = ""
            out[f"diff.{sub}.textconv"] = ""
        elif low == "diff.external":
            out["diff.external"] = ""
        elif section == "merge" and sub and var == "driver":
            out[f"merge.{sub}.driver"] = "false"
        elif low in ("core.sshcommand", "core.gitproxy", "core.askpass",
                     "core.alternaterefscommand", "gpg.program", "credential.helper"):
            out[key] = ""
        elif section == "gpg" and sub and var == "program":
            out[key] = ""
        elif section == "credential" and sub and var == "helper":
            out[key] = ""
        elif section == "remote" and sub and var in ("uploadpack", "receivepack"):
            out[key] = "false"
    return list(out.items())


def _scan_config(cwd: Path | str, env: dict[str, str], timeout: float) -> list[tuple[str, str]]:
    """(scope, key) of every config key that can name a command."""
    proc = subprocess.run(
        ["git", *HARDENING_ARGS, "config", "-z", "--show-scope", "--get-regexp",
         r"^(filter|diff|merge|core|gpg|credential|remote)\."],
        cwd=cwd, env=env, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if proc.returncode not in (0, 1):  # 1: nothing matched
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GitError(f"git config scan in {cwd} failed: {err[-1] if err else proc.returncode}")
    parts = proc.stdout.decode("utf-8", "surrogateescape").split("\0")
    pairs: list[tuple[str, str]] = []
    for scope, kv in zip(parts[0::2], parts[1::2]):
        pairs.append((scope, kv.split("\n", 1)[0]))
    return pairs


def git(cwd: Path | str, *args: str, check: bool = True, timeout: float = 60,
        env: dict | None = None, input: bytes | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``git <args>`` in ``cwd`` hardened against repo config; text output (utf-8).

    Raises GitError (one line naming the command and git's last stderr line) when ``check``
    and git exits non-zero or times out.
    """
    if not os.path.isdir(cwd):
        raise GitError(f"git {' '.join(args[:2])}: directory {cwd} does not exist")
    full_env = _base_env(env)
    idx, cmd, sub = _subcommand(args)
    argv = list(args)
    if cmd in _DIFF_LIKE:
        argv[idx + 1:idx + 1] = ["--no-ext-diff", "--no-textconv"]
    try:
        if cmd not in _NO_SCAN and f"{cmd} {sub}" not in _NO_SCAN:
            overrides = dangerous_overrides(_scan_config(cwd, full_env, timeout))
            if overrides:
                full_env["GIT_CONFIG_COUNT"] = str(len(overrides))
                for n, (k, v) in enumerate(overrides):
                    full_env[f"GIT_CONFIG_KEY_{n}"] = k
                    full_env[f"GIT_CONFIG_VALUE_{n}"] = v
        proc = subprocess.run(
            ["git", *HARDENING_ARGS, *argv], cwd=cwd, env=full_env, capture_output=True,
            timeout=timeout, input=input, stdin=None if input is not None else subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise GitError(f"git {' '.join(args[:3])} in {cwd} timed out after {timeout:g}s") from None
    except FileNotFoundError as e:
        raise GitError("git executable not found on PATH") from e
    out = proc.stdout.decode("utf-8", "surrogateescape")
    err = proc.stderr.decode("utf-8", "replace")
    result = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    if check and proc.returncode != 0:
        raise GitError(f"git {' '.join(args[:3])} failed in {cwd}: {last_error_line(err)}")
    return result


def last_error_line(stderr: str) -> str:
    """The most telling line of git's stderr (prefers 'fatal:'/'error:' lines), one line."""
    lines = [ln.strip() for ln in stderr.strip().splitlines() if ln.strip()]
    for ln in reversed(lines):
        if ln.startswith(("fatal:", "error:")):
            return ln
    return lines[-1] if lines else "(no message)"


def git_common_dir(path: Path | str) -> Path:
    """The repository's common git dir (shared by all its worktrees), absolute."""
    out = git(path, "rev-parse", "--path-format=absolute", "--git-common-dir").stdout.strip()
    return Path(out)


def repo_root(path: Path | str) -> Path:
    """Top level of the main worktree, also when ``path`` is inside a linked worktree."""
    p = Path(path)
    if not p.exists():
        raise GitError(f"{p} does not exist")
    if not p.is_dir():
        p = p.parent
    common = git_common_dir(p)
    if common.name == ".git":
        return common.parent
    # Unusual layout (bare repo, separate git dir): the first entry of worktree list is main.
    out = git(p, "worktree", "list", "--porcelain").stdout
    for line in out.splitlines():
        if line.startswith("worktree "):
            return Path(line[len("worktree "):])
    raise GitError(f"cannot find the main worktree of {path}")


def _ref_exists(repo: Path | str, ref: str) -> bool:
    return git(repo, "show-ref", "--verify", "--quiet", ref, check=False).returncode == 0


def default_branch(repo: Path | str) -> str:
    """origin/HEAD's branch if set, else the main worktree's branch, else main or master."""
    out = git(repo, "symbolic-ref", "-q", "refs/remotes/origin/HEAD", check=False).stdout.strip()
    prefix = "refs/remotes/origin/"
    if out.startswith(prefix):
        return out[len(prefix):]
    root = repo_root(repo)
    out = git(root, "symbolic-ref", "-q", "HEAD", check=False).stdout.strip()
    if out.startswith("refs/heads/"):
        return out[len("refs/heads/"):]
    for name in ("main", "master"):
        if _ref_exists(root, f"refs/heads/{name}"):
            return name
    raise GitError(f"cannot tell the default branch of {root}: no origin/HEAD, detached HEAD, "
                   "and neither main nor master exists")
