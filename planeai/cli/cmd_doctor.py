"""planeai doctor: where things live and which tools are here."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tomllib

from planeai import __version__
from planeai.bundled import providers_dir, skills_dir
from planeai.cli.common import print_json

_TOOLS = ["git", "tmux", "docker"]
_FALLBACK_AGENTS = {"claude": "claude", "codex": "codex", "gemini": "gemini", "kiro": "kiro-cli",
                    "copilot": "copilot", "aider": "aider", "opencode": "opencode"}


def _version(binary: str) -> str | None:
    try:
        out = subprocess.run([binary, "--version"] if binary != "tmux" else [binary, "-V"],
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0] if text else None


def _agents() -> dict[str, str]:
    """provider name -> binary, from the bundled provider files."""
    found = {}
    d = providers_dir()
    for f in sorted(d.glob("*.toml")) if d.is_dir() else []:
        try:
            data = tomllib.loads(f.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError):
            continue
        if data.get("binary") and f.stem != "shell":
            found[f.stem] = data["binary"]
    return found or dict(_FALLBACK_AGENTS)


def run(args: argparse.Namespace) -> int:
    from planeai.cli.common import context

    locs = context().locations
    cfg = context().config
    pdir, sdir = providers_dir(), skills_dir()
    report = {
        "version": __version__,
        "config_file": str(locs.config_file),
        "config_file_exists": locs.config_file.is_file(),
        "config_sources": [str(p) for p in cfg.sources],
        "data_dir": str(locs.data_dir),
        "database": str(locs.db_path),
        "state_dir": str(locs.state_dir),
        "runtime_dir": str(locs.runtime_dir),
        "bundled_providers": str(pdir),
        "providers": sorted(f.stem for f in pdir.glob("*.toml")) if pdir.is_dir() else [],
        "bundled_skills": str(sdir),
        "skills": sorted(f.parent.name for f in sdir.glob("*/SKILL.md")) if sdir.is_dir() else [],
        "tools": {},
        "agents": {},
    }
    for tool in _TOOLS:
        path = shutil.which(tool)
        report["tools"][tool] = {"path": path, "version": _version(tool) if path else None}
    for name, binary in _agents().items():
        path = shutil.which(binary)
        report["agents"][name] = {"binary": binary, "path": path}
    if args.json:
        print_json(report)
        return 0
    print(f"planeai {__version__}")
    print(f"config file:       {report['config_file']}"
          + ("" if report["config_file_exists"] else "  (not present; defaults apply)"))
    print(f"config in effect:  {', '.join(report['config_sources']) or 'built-in defaults'}")
    print(f"data dir:          {report['data_dir']}")
    print(f"database:          {report['database']}")
    print(f"state dir:         {report['state_dir']}")
    print(f"runtime dir:       {report['runtime_dir']}")
    print(f"bundled providers: {pdir}  ({', '.join(report['providers']) or 'MISSING'})")
    print(f"bundled skills:    {sdir}  ({', '.join(report['skills']) or 'none'})")
    print("tools:")
    for tool, info in report["tools"].items():
        state = f"{info['path']}  {info['version'] or ''}".rstrip() if info["path"] else "not found"
        print(f"  {tool:<9} {state}")
    print("agent CLIs:")
    for name, info in report["agents"].items():
        state = info["path"] or "not found"
        print(f"  {name:<9} {info['binary']:<10} {state}")
    return 0
