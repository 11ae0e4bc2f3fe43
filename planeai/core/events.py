"""The event log's vocabulary: every event kind, once, and what each one means to hooks and
to notifications. Pure, no I/O.

The store appends these kinds; hooks (planeai.services.hooks) and notifications
(planeai.services.notify) read them through ``hook_name`` and ``notification_for`` only, so a
new kind that should fire a hook or notify is one line here.
"""

from __future__ import annotations

from typing import Final

from planeai.core.models import Event

# projects
PROJECT_ADDED: Final = "project.added"
PROJECT_RESTORED: Final = "project.restored"
PROJECT_REMOVED: Final = "project.removed"
PROJECT_PURGED: Final = "project.purged"

# tasks
TASK_CREATED: Final = "task.created"
TASK_EDITED: Final = "task.edited"
TASK_MOVED: Final = "task.moved"
TASK_BLOCKED: Final = "task.blocked"
TASK_UNBLOCKED: Final = "task.unblocked"
TASK_DELETED: Final = "task.deleted"
TASK_FAILED: Final = "task.failed"
# the agent said done while subtasks were open; the session's done_requested is set with it
TASK_DONE_REQUESTED: Final = "task.done_requested"

# review and delivery (planeai.services.review / delivery / gc)
REVIEW_CHECKED: Final = "review.checked"      # checks ran in a worktree: passed, results
REVIEW_COMMITTED: Final = "review.committed"  # the worktree's changes became a commit
TASK_MERGED: Final = "task.merged"            # its branch landed in its base locally
TASK_PUSHED: Final = "task.pushed"
TASK_PR_OPENED: Final = "task.pr_opened"
GC_REMOVED: Final = "gc.removed"              # a stale worktree or branch went

# sessions
SESSION_CREATED: Final = "session.created"
SESSION_STARTED: Final = "session.started"
SESSION_FAILED: Final = "session.failed"
SESSION_STATUS: Final = "session.status"
SESSION_PROMPT: Final = "session.prompt"
SESSION_PROMPT_FAILED: Final = "session.prompt_failed"
# planeai answered a first-run dialog on screen ([[dialogs]] of the provider file)
SESSION_DIALOG_ANSWERED: Final = "session.dialog_answered"
SESSION_EXITED: Final = "session.exited"
SESSION_EXIT_CODE: Final = "session.exit_code"
SESSION_ABORTED: Final = "session.aborted"
SESSION_LOST: Final = "session.lost"
SESSION_STOPPED: Final = "session.stopped"
SESSION_RESTARTED: Final = "session.restarted"
SESSION_ARCHIVED: Final = "session.archived"
SESSION_DELETED: Final = "session.deleted"
# another session of its task was kept (`planeai keep`): its work is in a recovery ref
SESSION_DISCARDED: Final = "session.discarded"

# the dispatcher
DISPATCH_LEASE: Final = "dispatch.lease"
DISPATCH_DISPATCHED: Final = "dispatch.dispatched"
DISPATCH_WAITING: Final = "dispatch.waiting"
DISPATCH_COMPLETED: Final = "dispatch.completed"
DISPATCH_FAILED: Final = "dispatch.failed"
DISPATCH_STALE: Final = "dispatch.stale"
DISPATCH_ABORTED: Final = "dispatch.aborted"
DISPATCH_ERROR: Final = "dispatch.error"
# a project (or task) spent its budget: no new work starts on it (planeai.services.metrics)
DISPATCH_OVER_BUDGET: Final = "dispatch.over_budget"

# trackers (Jira, Plane: planeai.services.trackers)
TRACKER_SYNCED: Final = "tracker.synced"            # a sync pulled items: counts, errors
TRACKER_SYNC_FAILED: Final = "tracker.sync_failed"  # stopped early; earlier pages kept
TRACKER_TAKEN: Final = "tracker.taken"              # an item became a local task
TRACKER_WRITEBACK: Final = "tracker.writeback"      # a comment or transition posted back
# Plane agent runs (planeai.services.plane_agent)
PLANE_RUN_STARTED: Final = "plane.run_started"      # a run got its task and session
PLANE_ACTIVITY: Final = "plane.activity"            # an activity was posted to a run
PLANE_ERROR: Final = "plane.error"                  # a run could not be served or answered

# hosts ([hosts.NAME]): one stopped answering (its sessions are unreachable, not exited), or
# answers again
HOST_DOWN: Final = "host.down"
HOST_UP: Final = "host.up"
# hooks
HOOK_RAN: Final = "hook.ran"
HOOK_FAILED: Final = "hook.failed"

# agent statuses (session.status "to") that are hook and notification names of their own
_STATUS_NAMES: Final = ("busy", "idle", "needs_input")
# dispatcher verdicts named by their last part: completed, failed, stale
_VERDICTS: Final = {DISPATCH_COMPLETED: "completed", DISPATCH_FAILED: "failed",
                    DISPATCH_STALE: "stale", DISPATCH_OVER_BUDGET: "over_budget"}
_HOOK_OF_KIND: Final = {TASK_MOVED: "task_moved", DISPATCH_DISPATCHED: "task_dispatched",
                        SESSION_STARTED: "session_started", **_VERDICTS}

# every name a [hooks] key or a notify.events entry may use
HOOK_NAMES: Final = ("task_dispatched", "session_started", *_STATUS_NAMES, *_VERDICTS.values(),
                     "task_moved")
NOTIFICATION_NAMES: Final = ("needs_input", *_VERDICTS.values(), "idle", "busy")


def _status_name(e: Event) -> str | None:
    to = e.data.get("to")
    return to if to in _STATUS_NAMES else None


def hook_name(e: Event) -> str | None:
    """The hook an event fires (a key of the [hooks] config section), or None."""
    if e.kind == SESSION_STATUS:
        return _status_name(e)
    return _HOOK_OF_KIND.get(e.kind)


def notification_for(e: Event) -> str | None:
    """The notification an event makes (a notify.events name), or None."""
    if e.kind == SESSION_STATUS:
        return _status_name(e)
    return _VERDICTS.get(e.kind)
