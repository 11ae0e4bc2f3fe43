"""First-run dialogs planeai answers on screen, per the ``[[dialogs]]`` policy of the provider
file (Claude Code's bypass-mode consent in a yolo session, its "trust this folder?" in a
worktree planeai made): an unattended agent must not wait for a keyboard nobody sits at.

Answering writes nothing into the agent's own config: the keys a person would press are
pressed, once per appearance, and the event log says what was answered. A screen no policy
matches stays "needs input". Called by every observer (the dispatcher, the app, the CLI), so
the press is claimed in the store first: one process answers an appearance, never two (a
second Enter would land on the next dialog).
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

from planeai.core import events as ev
from planeai.core.models import Session
from planeai.errors import BackendError
from planeai.providers import Dialog, Provider

# The same dialog on the same screen this long after it was answered: the keys were lost
# (never seen otherwise); press once more. Long, so a slow redraw never gets a second press.
REANSWER_AFTER = 10.0
# Right after an answer the agent redraws (the next dialog, a half-drawn screen): a needs-input
# reading this soon after is the answer settling, not a question for a person.
SETTLE = 3.0


def yolo_used(s: Session, provider: Provider) -> bool:
    """Was the session started with the provider's yolo flag (its argv holds it, in order)?"""
    flag = list(provider.yolo_flag)
    if not flag:
        return False
    argv = list(s.argv)
    return any(argv[i:i + len(flag)] == flag for i in range(len(argv) - len(flag) + 1))


def in_own_worktree(s: Session, worktrees_root: Path | None) -> bool:
    """Does the session run in a worktree planeai made for it (never the user's checkout)?"""
    if not s.worktree:
        return False
    if worktrees_root is None:
        return True
    try:
        Path(s.worktree).resolve().relative_to(Path(worktrees_root).resolve())
    except ValueError:
        return False
    return True


def allowed(d: Dialog, s: Session, provider: Provider, worktrees_root: Path | None) -> bool:
    for cond in d.when:
        if cond == "yolo" and not yolo_used(s, provider):
            return False
        if cond == "worktree" and not in_own_worktree(s, worktrees_root):
            return False
    return True


def matching(provider: Provider, s: Session, screen: str,
             worktrees_root: Path | None) -> Dialog | None:
    """The first dialog of the provider's policy that is on screen and may be answered here."""
    for d in provider.dialogs:
        if d.match.search(screen) and allowed(d, s, provider, worktrees_root):
            return d
    return None


def _digest(screen: str) -> str:
    return hashlib.sha256(screen.encode("utf-8", "replace")).hexdigest()[:16]


def _last_answer(store, s: Session):
    for e in reversed(store.events(task_key=s.task_key, newest=True, limit=200)):
        if e.kind == ev.SESSION_DIALOG_ANSWERED and e.session_id == s.id:
            return e
    return None


def answer(manager, s: Session, provider: Provider, screen: str) -> str | None:
    """Answer the dialog on ``screen`` if the policy allows it. The dialog's name when keys
    were pressed, when this appearance was already answered, or while the agent redraws
    after an answer (SETTLE); None when the screen is a question for a person."""
    if not provider.dialogs or not manager.config.dispatch.answer_dialogs:
        return None
    root_of = getattr(manager, "_worktrees_root", None)
    d = matching(provider, s, screen, root_of() if root_of else None)
    store = manager.store
    if d is None:
        last = _last_answer(store, s)
        if last is not None and time.time() - float(last.data.get("at", 0)) < SETTLE:
            return str(last.data.get("dialog"))
        return None
    digest = _digest(screen)
    with store.write():
        last = _last_answer(store, s)
        if (last is not None and last.data.get("dialog") == d.name
                and last.data.get("screen") == digest
                and time.time() - float(last.data.get("at", 0)) < REANSWER_AFTER):
            return d.name  # answered already: the agent has not redrawn yet
        store.append_event(ev.SESSION_DIALOG_ANSWERED, project_id=s.project_id,
                           task_key=s.task_key, session_id=s.id,
                           data={"dialog": d.name, "keys": list(d.keys), "screen": digest,
                                 "at": time.time()})
    try:
        manager.backend(s.backend).send_keys(s.name, *d.keys)
    except BackendError:
        return None  # gone meanwhile: the next observation judges it
    return d.name
