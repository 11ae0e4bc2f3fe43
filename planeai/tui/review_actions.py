"""The app's review and delivery actions: the diff view (D), the compare view (C), keeping one
session of several (W), and commit / checks / merge / pull request for a task's worktree.

A mixin of the App, like task_actions.py: the views (diff_view.py, compare_view.py) call
``review_commit`` / ``review_check`` / ``review_merge`` / ``review_pr`` / ``review_keep`` with
their task and session, the command palette calls the same for the selection. Every service
call runs in a worker thread (``_service``); checks run without the service lock (they can take
minutes and change nothing the lock guards), everything else under it. Results and refusals
are notifications; ``after`` runs on the event loop once something changed.
"""

from __future__ import annotations

from typing import Callable

from textual.markup import escape

from planeai.tui.review_dialogs import CommitDialog, MergeChoice, MergeDialog


def merge_lines(out) -> tuple[str, str]:
    """(text, severity) for a MergeOutcome (planeai.services.delivery)."""
    r = out.result
    lines = []
    if out.committed:
        lines.append(f"committed {out.committed[:12]} first")
    if not r.ok:
        lines.append(f"merging {r.branch} into {r.base} ({r.how}) conflicts in: "
                     f"{', '.join(r.conflicts)}; nothing changed: {r.base} stays at "
                     f"{r.base_after[:12]}, {r.branch} at {r.branch_after[:12]}")
        return "\n".join(lines), "error"
    if r.commit is None:
        lines.append(r.moved_by or f"nothing to merge: {r.base} has {r.branch}")
    else:
        lines.append(f"merged {r.branch} into {r.base} ({r.how}): {r.base} "
                     f"{r.base_before[:12]} -> {r.commit[:12]}")
    c = out.cleanup
    if c.removed:
        lines.append("removed the worktree" + (" and the branch" if c.branch_deleted else "")
                     + (f"; its own commits are kept in {c.recovery}" if c.recovery else ""))
    elif c.kept:
        lines.append(f"kept the worktree: {c.kept}")
    return "\n".join(lines), "information"


class ReviewActionsMixin:
    # ------------------------------------------------------------------ opening the views
    def _review_target(self):
        """(task key, session name or None) of the selection, or None (said)."""
        row = self.sidebar.current
        task = self._current_task()
        if task is None:
            return None
        s = self.row_session(row) if row is not None and row.kind == "session" else None
        return task.key, (s.name if s is not None else None)

    def action_diff(self) -> None:
        from planeai.tui.diff_view import DiffScreen

        target = self._review_target()
        if target is not None:
            self.push_screen(DiffScreen(*target))

    def action_compare(self) -> None:
        from planeai.tui.compare_view import CompareScreen

        task = self._current_task()
        if task is None:
            return
        if not self.data.sessions_by_task.get(task.key):
            self.notify(f"{task.key} has no session yet: start one (s), or several with "
                        "@mentions in a prompt (p)", severity="warning")
            return
        self.push_screen(CompareScreen(task.key))

    def action_keep_session(self) -> None:
        row = self.sidebar.current
        s = self.row_session(row)
        if s is None or not s.task_key:
            self.notify("select a session of a task (the rows under a task run by several "
                        "agents)", severity="warning")
            return
        if row.kind == "task" and len(self.data.sessions_by_task.get(s.task_key, [])) > 1:
            self.notify(f"{s.task_key} has several sessions: select the one to keep (the rows "
                        "under it), or compare them first (C)", severity="warning")
            return
        others = [o.name for o in self.data.sessions_by_task.get(s.task_key, [])
                  if o.id != s.id]
        self.review_keep(s.task_key, s.name, s.id, others)

    # the palette's versions of the diff view's keys: for the selected task
    def action_commit(self) -> None:
        target = self._review_target()
        if target is not None:
            self.review_commit(*target)

    def action_check(self) -> None:
        target = self._review_target()
        if target is not None:
            self.review_check(*target)

    def action_merge(self) -> None:
        target = self._review_target()
        if target is not None:
            self.review_merge(*target)

    def action_pull_request(self) -> None:
        target = self._review_target()
        if target is not None:
            self.review_pr(*target)

    # ------------------------------------------------------------------ the operations
    def review_commit(self, key: str, session: str | None,
                      after: Callable[[], None] | None = None) -> None:
        """Ask for the message (the task's, editable), then commit."""
        from planeai.services import delivery

        store = self.manager.store

        def ask(message: str) -> None:
            def done(msg: str | None) -> None:
                if msg is None:
                    return
                self._service(f"commit {key}",
                              lambda: delivery.commit(store, key, msg, session=session),
                              lambda sha: self._after(f"committed {sha[:12]} on {key}'s branch",
                                                      after))

            self.push_screen(CommitDialog(key, message), done)

        self._service(f"commit {key}", lambda: delivery.task_message(store, key), ask)

    def review_check(self, key: str, session: str | None,
                     after: Callable[[], None] | None = None) -> None:
        from planeai.services import review

        m = self.manager
        self.notify(f"running the checks of {key}…", timeout=3)

        def ran(run) -> None:
            failed = [r for r in run.results if not r.passed]
            if not failed:
                text = f"{key}: all {len(run.results)} check(s) passed"
            else:
                r = failed[0]
                tail = "\n".join(r.output.rstrip().splitlines()[-6:])
                verdict = "timed out" if r.timed_out else f"failed (exit {r.exit_code})"
                text = f"{key}: {r.command} {verdict}\n{tail}"
            self.notify(escape(text), severity="information" if run.passed else "error",
                        timeout=5 if run.passed else 10)
            if after is not None:
                after()

        self._service(f"check {key}", lambda: review.run_checks(m.store, m.config, key, session),
                      ran, lock=False)

    def review_merge(self, key: str, session: str | None,
                     after: Callable[[bool], None] | None = None) -> None:
        """Choose merge / squash / rebase (default: [review] merge), then merge. ``after``
        gets whether the merge happened."""
        from planeai.services import delivery

        def ask(default: str) -> None:
            def done(choice: MergeChoice | None) -> None:
                if choice is None:
                    return
                self._service(
                    f"merge {key}",
                    lambda: delivery.merge(self.manager, key, choice.how,
                                           commit_first=choice.commit_first, session=session),
                    lambda out: self._merged(out, after))

            self.push_screen(MergeDialog(key, default), done)

        self._service(f"merge {key}", lambda: self.manager.config.review.merge, ask, lock=False)

    def _merged(self, out, after) -> None:
        text, severity = merge_lines(out)
        self.notify(escape(text), severity=severity, timeout=10 if severity == "error" else 8)
        if after is not None:
            after(out.result.ok)

    def review_pr(self, key: str, session: str | None,
                  after: Callable[[], None] | None = None) -> None:
        from planeai.services import delivery
        from planeai.tui.confirm import Confirm

        def opened(out) -> None:
            lines = ([f"committed {out.committed[:12]} first"] if out.committed else []) + \
                [f"pushed {out.branch} to {out.remote}",
                 f"pull request: {out.url}" if out.url else (out.note or "")]
            self.notify(escape("\n".join(lines)), severity="information" if out.url else
                        "warning", timeout=10)
            if after is not None:
                after()

        def done(yes: bool | None) -> None:
            if yes:
                self._service(f"pull request for {key}",
                              lambda: delivery.pull_request(self.manager, key, commit_first=True,
                                                            session=session), opened)

        self.push_screen(Confirm(f"Push {key}'s branch and open a pull request?\nUncommitted "
                                 "changes are committed first, with the task's message.",
                                 yes="Push"), done)

    def review_keep(self, key: str, name: str, session_id: str, others: list[str],
                    after: Callable[[bool], None] | None = None) -> None:
        """Confirm, then keep one session: merge it, discard the task's others."""
        from planeai.services import delivery
        from planeai.tui.confirm import Confirm

        def kept(out) -> None:
            text, severity = merge_lines(out.merged)
            if out.merged.result.ok:
                for other, ref in out.discarded.items():
                    text += f"\ndiscarded {other}" + (f": its work is kept in {ref}" if ref
                                                      else " (it had no worktree)")
            self.notify(escape(text), severity=severity, timeout=15)
            if after is not None:
                after(out.merged.result.ok)

        def done(yes: bool | None) -> None:
            if yes:
                self._service(f"keep {name}",
                              lambda: delivery.keep(self.manager, session_id,
                                                    commit_first=True), kept)

        what = (f"the other sessions of {key} ({', '.join(others)}) are stopped and discarded: "
                "their work is kept in recovery refs (printed after)" if others
                else f"{key} has no other session")
        self.push_screen(Confirm(f"Keep {name}? Its changes are committed and merged into the "
                                 f"base (the config's review.merge way), {key} is done; "
                                 f"{what}.", yes="Keep"), done)

    def _after(self, text: str, after: Callable[[], None] | None) -> None:
        self.notify(escape(text))
        if after is not None:
            after()
