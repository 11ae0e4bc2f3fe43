"""Skills (discovery, overrides, install) and @mentions (parsing, resolution, rejection)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from planeai.core.mentions import find_mentions, strip_mentions
from planeai.errors import ValidationError
from planeai.providers import load_registry
from planeai.services.mentions import resolve_all
from planeai.skills import install, load_skills

ROOT = Path(__file__).resolve().parent.parent


def write_skill(base: Path, folder: str, front: str, body: str = "Do the thing.\n") -> Path:
    f = base / folder / "SKILL.md"
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(f"---\n{front}\n---\n\n{body}")
    return f


def test_bundled_skills_parse():
    sset = load_skills([ROOT / "skills"])
    assert sset.errors == []
    p = sset.get("planeai")
    assert "planeai task add" in p.body and "planeai task done" in p.body
    assert sset.get("review").default_provider == "claude"


def test_earlier_dir_overrides_by_trigger_and_bad_ones_are_skipped(tmp_path):
    proj, user = tmp_path / "proj", tmp_path / "user"
    write_skill(proj, "mine", "name: mine\ntrigger: review\ndescription: project review")
    write_skill(user, "review", "name: review\ndescription: user review")
    write_skill(user, "broken", "name: broken\ndescription: x\ntimeout_minutes: soon")
    write_skill(user, "bad-yaml", "name: [unclosed\ndescription: x")
    write_skill(user, "sneaky", "name: sneaky\ntrigger: ../../etc\ndescription: x")
    write_skill(user, "extra", "name: extra\ndescription: x\ncolour: red")
    sset = load_skills([proj, user, ROOT / "skills"])
    assert sset.get("review").description == "project review"
    assert "planeai" in sset.skills  # the others still load
    errs = "\n".join(sset.errors)
    assert "broken/SKILL.md: field 'timeout_minutes' has the wrong type" in errs
    assert "bad-yaml/SKILL.md" in errs and "not valid YAML" in errs
    assert "sneaky/SKILL.md: field 'trigger'" in errs and "no paths" in errs
    assert "extra/SKILL.md: unknown field 'colour'" in errs
    assert set(sset.skills) == {"review", "planeai"}


def test_unknown_skill_suggests(tmp_path):
    sset = load_skills([ROOT / "skills"])
    with pytest.raises(ValidationError, match="did you mean review"):
        sset.get("reveiw")


@pytest.mark.parametrize("text, expected", [
    ("@claude do it", [("claude", None, None)]),
    ("@claude-opus fix", [("claude", "opus", None)]),
    ("@claude:review now", [("claude", None, "review")]),
    ("ask @claude-opus:review and @gemini-flash", [("claude", "opus", "review"),
                                                   ("gemini", "flash", None)]),
    ("mail me at dev@example.com", []),
    ("@@claude", []),
])
def test_parse_mentions(text, expected):
    assert [(m.provider, m.variant, m.skill) for m in find_mentions(text)] == expected


def test_strip_mentions():
    assert strip_mentions("@claude-opus  fix the parser @gemini") == "fix the parser"


REG = load_registry([ROOT / "providers"])
SKILLS = load_skills([ROOT / "skills"])


def test_resolve_variants_and_defaults():
    r = resolve_all("@claude @claude-opus:review @gemini-flash", REG, SKILLS)
    assert [x.agent for x in r] == ["claude-sonnet", "claude-opus", "gemini-flash"]
    assert r[1].skill.trigger == "review" and r[0].skill is None


@pytest.mark.parametrize("text, message", [
    ("@claude-opsu", "did you mean claude-opus?"),
    ("@gemnii", "did you mean gemini?"),
    ("@claude:reveiw", "did you mean review?"),
    ("@claude:../../etc", "is not accepted"),
    ("@claude:..", "is not accepted"),
    ("@claude:/etc/passwd", "is not accepted"),
    ("@claude:Review$(id)", "is not accepted"),
    ("@claude:", "skill name is missing"),
])
def test_bad_mentions_are_rejected(text, message):
    with pytest.raises(ValidationError, match=message.replace("?", r"\?").replace("$", r"\$")
                       .replace("(", r"\(").replace(")", r"\)")):
        resolve_all(text, REG, SKILLS)


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          check=True).stdout


def test_install_into_skills_dir_keeps_the_branch_clean(repo: Path):
    sset = load_skills([ROOT / "skills"])
    written = install([sset.get("planeai")], repo, skills_dir=".claude/skills")
    assert written == [".claude/skills/planeai/SKILL.md"]
    assert (repo / ".claude/skills/planeai/SKILL.md").read_text() == sset.get("planeai").text
    assert _git(repo, "status", "--porcelain") == ""  # excluded, not committed
    assert "/.claude/skills/planeai" in (repo / ".git/info/exclude").read_text().splitlines()


def test_install_leaves_the_users_own_files_alone(repo: Path):
    own = repo / ".claude/skills/planeai/SKILL.md"
    own.parent.mkdir(parents=True)
    own.write_text("my own planeai skill\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "mine")
    (repo / "AGENTS.md").write_text("# my agents file\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "agents")
    sset = load_skills([ROOT / "skills"])
    assert install([sset.get("planeai")], repo, skills_dir=".claude/skills") == []
    assert install([sset.get("planeai")], repo, instructions_file="AGENTS.md") == []
    assert own.read_text() == "my own planeai skill\n"
    assert (repo / "AGENTS.md").read_text() == "# my agents file\n"
    assert _git(repo, "status", "--porcelain") == ""


def test_install_into_instructions_file_is_a_replaceable_section(repo: Path):
    sset = load_skills([ROOT / "skills"])
    skills = [sset.get("planeai"), sset.get("review")]
    install(skills, repo, instructions_file="GEMINI.md")
    install(skills, repo, instructions_file="GEMINI.md")  # again: replaced, not doubled
    text = (repo / "GEMINI.md").read_text()
    assert text.count("planeai:skill planeai begin") == 1
    assert text.count("planeai:skill review begin") == 1
    assert "planeai task add" in text
    assert _git(repo, "status", "--porcelain") == ""


def test_skill_cli(run_cli, tmp_path):
    code, out, _ = run_cli("skill", "list", "--json", cwd=tmp_path)
    assert {s["trigger"] for s in json.loads(out)} >= {"planeai", "review"}
    code, out, _ = run_cli("skill", "show", "review", cwd=tmp_path)
    assert code == 0 and "Review the branch" in out
    code, _, err = run_cli("skill", "show", "../../etc", cwd=tmp_path)
    assert code == 1 and "no paths" in err
