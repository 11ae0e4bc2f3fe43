"""planeai doctor, and the wheel carrying providers/ and skills/."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_doctor_reports_locations_and_tools(run_cli, planeai_home, tmp_path):
    code, out, err = run_cli("doctor", "--json", cwd=tmp_path)
    assert code == 0, err
    r = json.loads(out)
    assert r["database"] == str(planeai_home / "data" / "planeai.db")
    assert r["config_file"] == str(planeai_home / "config" / "config.toml")
    assert Path(r["bundled_providers"]).is_dir()
    assert "shell" in r["providers"] and "claude" in r["providers"]
    assert set(r["tools"]) == {"git", "tmux", "docker"}
    assert r["tools"]["git"]["path"] and "git version" in r["tools"]["git"]["version"]
    assert "claude" in r["agents"]
    code, out, _ = run_cli("doctor", cwd=tmp_path)
    assert "bundled providers:" in out and "agent CLIs:" in out


def test_doctor_rejects_a_bad_config(run_cli, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[defaults]\nbackend = "nope"\n')
    code, _, err = run_cli("--config", str(bad), "doctor", cwd=tmp_path)
    assert code == 1 and f"{bad}:2: defaults.backend" in err


@pytest.mark.timeout(600)
def test_wheel_in_fresh_venv_carries_bundled_files(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(dist), str(ROOT)], check=True)
    wheel = next(dist.glob("planeai-*.whl"))
    env_dir = tmp_path / "venv"
    # system site packages give it the dependencies without a download; the venv's own
    # site-packages (holding the wheel) come first on sys.path
    venv.create(env_dir, with_pip=True, system_site_packages=True)
    py = env_dir / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True)
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PLANEAI_HOME"] = str(home)
    out = subprocess.run([str(env_dir / "bin" / "planeai"), "doctor", "--json"], cwd=tmp_path,
                         env=env, capture_output=True, text=True, check=True)
    report = json.loads(out.stdout)
    site = str(env_dir)
    assert report["bundled_providers"].startswith(site), report["bundled_providers"]
    assert report["bundled_skills"].startswith(site)
    shipped = sorted(p.stem for p in (ROOT / "providers").glob("*.toml"))
    assert report["providers"] == shipped
    assert sorted(p.name for p in Path(report["bundled_providers"]).glob("*.toml")) == \
        sorted(p.name for p in (ROOT / "providers").glob("*.toml"))
    shipped_skills = sorted(p.parent.name for p in (ROOT / "skills").glob("*/SKILL.md"))
    assert report["skills"] == shipped_skills
