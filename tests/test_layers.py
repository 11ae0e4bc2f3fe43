"""The layer rule, checked on the source: front ends (the CLI and the app) reach the store,
the backends and git only through services. See /work/shared/DESIGN.md's "Layers"."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "planeai"
FRONT_ENDS = ("cli", "tui")
FORBIDDEN = ("planeai.store", "planeai.backends", "planeai.git")


def _package_of(path: Path) -> str:
    """The package a relative import in ``path`` starts from (``planeai.cli`` for
    planeai/cli/main.py and for planeai/cli/__init__.py)."""
    return ".".join(path.parent.relative_to(PACKAGE.parent).parts)


def imported_modules(source: str, package: str) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in ``source``, in functions too: relative
    imports resolved against ``package``, ``from planeai import store`` as ``planeai.store``,
    and ``importlib.import_module("...")`` / ``__import__("...")`` with a literal name."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if _is_forbidden(module):
                found.append((node.lineno, module))
            else:  # the names may be modules: `from planeai import store`
                found += [(node.lineno, f"{module}.{a.name}") for a in node.names]
        elif (isinstance(node, ast.Call) and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
              and (getattr(node.func, "attr", None) == "import_module"
                   or getattr(node.func, "id", None) in ("import_module", "__import__"))):
            found.append((node.lineno, node.args[0].value))
    return found


def _is_forbidden(module: str) -> bool:
    return any(module == f or module.startswith(f + ".") for f in FORBIDDEN)


def layer_violations(front: str) -> list[str]:
    """``path:line: module`` for each import of a forbidden layer under planeai/<front>/."""
    out = []
    for path in sorted((PACKAGE / front).rglob("*.py")):
        for line, module in imported_modules(path.read_text(encoding="utf-8"),
                                             _package_of(path)):
            if _is_forbidden(module):
                out.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {module}")
    return out


def test_the_checker_sees_every_import_form() -> None:
    src = ("import planeai.store.repository\n"
           "from planeai import backends, services\n"
           "from ..git import worktrees\n"
           "from . import common\n"
           "def f():\n"
           "    import importlib\n"
           "    importlib.import_module('planeai.git.safe_git')\n"
           "from planeai.services import tasks\n"
           "from planeai.storefront import x\n")
    modules = [m for _, m in imported_modules(src, "planeai.cli")]
    assert sorted(m for m in modules if _is_forbidden(m)) == [
        "planeai.backends", "planeai.git", "planeai.git.safe_git", "planeai.store.repository"]
    assert "planeai.cli.common" in modules and "planeai.services.tasks" in modules


@pytest.mark.parametrize("front", FRONT_ENDS)
def test_front_ends_import_no_store_backends_or_git(front: str) -> None:
    bad = layer_violations(front)
    assert bad == [], ("a front end imports a layer below services (use a service):\n"
                       + "\n".join(bad))
