"""The shape every refused command must have: exit 1, one line on stderr starting
"planeai: error: ", no traceback."""

from __future__ import annotations

import subprocess


def one_line_error(r: subprocess.CompletedProcess, *needles: str) -> str:
    """Assert ``r`` is a clean refusal naming each of ``needles``; returns the line."""
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("planeai: error: "), lines[0]
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]
