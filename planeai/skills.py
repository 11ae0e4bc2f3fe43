"""Skills: folders with a SKILL.md (YAML front matter + markdown instructions).

Found in order: the project's ``.planeai/skills/``, the user's skills dir, then the bundled
``skills/``; an earlier one wins over a later one with the same trigger. A skill with a
malformed front matter is reported (file and field) and skipped; the others still load.

Installing a skill into a session writes it where the provider's CLI reads skills
(``.claude/skills/<name>/SKILL.md``, or a marked section of AGENTS.md ...) without dirtying
the user's branch: the paths go into the repo's ``info/exclude`` and a user's own files are
never overwritten.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from planeai.errors import PlaneaiError, ValidationError

TRIGGER_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
MODES = ("interactive", "autonomous", "any")
_FIELDS = {"name": str, "trigger": str, "description": str, "default_provider": str,
           "mode": str, "tools": list, "timeout_minutes": (int, float), "context_paths": list}
SECTION_BEGIN = "<!-- planeai:skill {name} begin (managed by planeai; not committed) -->"
SECTION_END = "<!-- planeai:skill {name} end -->"


class SkillError(PlaneaiError):
    pass


@dataclass(frozen=True)
class Skill:
    name: str
    trigger: str
    description: str
    body: str              # the markdown instructions
    source: Path
    default_provider: str = ""
    mode: str = "any"
    tools: tuple[str, ...] = ()
    timeout_minutes: float = 0
    context_paths: tuple[str, ...] = ()
    text: str = field(default="", repr=False)   # the whole SKILL.md

    @property
    def timeout_seconds(self) -> float | None:
        return self.timeout_minutes * 60 if self.timeout_minutes else None


def check_trigger(trigger: str) -> str:
    if not TRIGGER_RE.match(trigger):
        raise ValidationError(
            f"skill name {trigger!r} is not accepted: lower-case letters, digits, - and _, "
            "at most 64 (no paths)")
    return trigger


def parse_skill(path: Path) -> Skill:
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise SkillError(f"{path}: cannot read: {e}") from None
    if not text.startswith("---"):
        raise SkillError(f"{path}: no YAML front matter (the file must start with ---)")
    end = text.find("\n---", 3)
    if end < 0:
        raise SkillError(f"{path}: front matter is not closed with ---")
    try:
        meta = yaml.safe_load(text[3:end]) or {}
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        line = f" line {where.line + 2}" if where else ""
        raise SkillError(f"{path}:{line} front matter is not valid YAML") from None
    if not isinstance(meta, dict):
        raise SkillError(f"{path}: front matter must be a mapping of fields")
    for key, value in meta.items():
        if key not in _FIELDS:
            raise SkillError(f"{path}: unknown field {key!r}; known: {', '.join(_FIELDS)}")
        if value is not None and not isinstance(value, _FIELDS[key]):
            raise SkillError(f"{path}: field {key!r} has the wrong type "
                             f"({type(value).__name__})")
    name = meta.get("name") or path.parent.name
    trigger = meta.get("trigger") or name
    try:
        check_trigger(str(trigger))
        check_trigger(str(name))
    except ValidationError as e:
        raise SkillError(f"{path}: field 'trigger': {e}") from None
    mode = meta.get("mode") or "any"
    if mode not in MODES:
        raise SkillError(f"{path}: field 'mode' is {mode!r}; one of: {', '.join(MODES)}")
    if not meta.get("description"):
        raise SkillError(f"{path}: field 'description' is required")
    timeout = meta.get("timeout_minutes") or 0
    if timeout < 0:
        raise SkillError(f"{path}: field 'timeout_minutes' must be >= 0")
    for key in ("tools", "context_paths"):
        if not all(isinstance(v, str) for v in meta.get(key) or []):
            raise SkillError(f"{path}: field {key!r} must be a list of strings")
    return Skill(name=str(name), trigger=str(trigger), description=str(meta["description"]),
                 body=text[end + 4:].lstrip("\n"), source=path,
                 default_provider=str(meta.get("default_provider") or ""), mode=mode,
                 tools=tuple(meta.get("tools") or ()), timeout_minutes=float(timeout),
                 context_paths=tuple(meta.get("context_paths") or ()), text=text)


@dataclass
class SkillSet:
    skills: dict[str, Skill]       # by trigger
    errors: list[str]

    def get(self, trigger: str) -> Skill:
        check_trigger(trigger)
        s = self.skills.get(trigger)
        if s is None:
            import difflib

            close = difflib.get_close_matches(trigger, list(self.skills), n=1, cutoff=0.5)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise ValidationError(f"unknown skill {trigger!r}{hint} "
                                  f"(known: {', '.join(sorted(self.skills)) or 'none'})")
        return s


def load_skills(dirs: Iterable[Path]) -> SkillSet:
    """``dirs`` in priority order: the first definition of a trigger wins."""
    skills: dict[str, Skill] = {}
    errors: list[str] = []
    for d in dirs:
        if not d.is_dir():
            continue
        for f in sorted(d.glob("*/SKILL.md")):
            try:
                s = parse_skill(f)
            except SkillError as e:
                errors.append(str(e))
                continue
            skills.setdefault(s.trigger, s)
    return SkillSet(skills, errors)


def skill_dirs(project_path: Path | str | None = None) -> list[Path]:
    from planeai.bundled import skills_dir
    from planeai.paths import locations

    dirs = []
    if project_path:
        dirs.append(Path(project_path) / ".planeai" / "skills")
    dirs += [locations().user_skills_dir, skills_dir()]
    return dirs


# ---------------------------------------------------------------------------- installing

def _exclude(worktree: Path, rel: str) -> None:
    """Keep ``rel`` out of commits: the repo's info/exclude (shared by its worktrees)."""
    from planeai.git.safe_git import git_common_dir

    exclude = git_common_dir(worktree) / "info" / "exclude"
    exclude.parent.mkdir(parents=True, exist_ok=True)
    line = "/" + rel.strip("/")
    existing = exclude.read_text(encoding="utf-8").splitlines() if exclude.exists() else []
    if line not in existing:
        with exclude.open("a", encoding="utf-8") as f:
            if existing and existing[-1] != "":
                f.write("\n")
            f.write(line + "\n")


def _tracked(worktree: Path, rel: str) -> bool:
    from planeai.git.safe_git import git

    r = git(worktree, "ls-files", "--error-unmatch", "--", rel, check=False)
    return r.returncode == 0


def install(skills: Iterable[Skill], worktree: Path | str, *, skills_dir: str = "",
            instructions_file: str = "") -> list[str]:
    """Put skills where the agent CLI reads them; returns the paths written (repo-relative).

    A file the user already has (tracked, or present and not ours) is left alone."""
    worktree = Path(worktree)
    written: list[str] = []
    skills = list(skills)
    if skills_dir:
        for s in skills:
            rel = f"{skills_dir.strip('/')}/{s.name}/SKILL.md"
            target = worktree / rel
            if _tracked(worktree, rel):
                continue  # the user's own skill of that name: theirs wins
            if target.exists() and target.read_text(encoding="utf-8") != s.text:
                if "managed by planeai" not in target.read_text(encoding="utf-8"):
                    continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(s.text, encoding="utf-8")
            _exclude(worktree, f"{skills_dir.strip('/')}/{s.name}/")
            written.append(rel)
    elif instructions_file:
        rel = instructions_file.strip("/")
        target = worktree / rel
        if _tracked(worktree, rel):
            return written  # a tracked AGENTS.md stays untouched; the prompt carries the skill
        text = target.read_text(encoding="utf-8") if target.exists() else ""
        for s in skills:
            begin, end = SECTION_BEGIN.format(name=s.name), SECTION_END.format(name=s.name)
            section = f"{begin}\n{s.body.rstrip()}\n{end}\n"
            if begin in text:
                text = re.sub(re.escape(begin) + r".*?" + re.escape(end) + r"\n?", section, text,
                              flags=re.S)
            else:
                text = (text.rstrip("\n") + "\n\n" if text.strip() else "") + section
        target.write_text(text, encoding="utf-8")
        _exclude(worktree, rel)
        written.append(rel)
    return written


def prompt_text(skills: Iterable[Skill]) -> str:
    """Skill instructions for an autonomous prompt's {skills} placeholder."""
    parts = []
    for s in skills:
        parts.append(f"## Skill: {s.name}\n{s.description}\n\n{s.body.strip()}")
    return "\n\n".join(parts)
