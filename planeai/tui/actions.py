"""Every app action in one table: key bindings, the footer, the help screen and the command
palette are all generated from it, so they cannot drift apart."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Action:
    key: str          # Textual key name(s), comma separated
    display: str      # as shown in the footer and help
    action: str       # App.action_<action>
    label: str        # footer / palette title
    help: str
    footer: bool = True
    title: str = ""   # in the command palette
    where: str = "app"  # app: everywhere on the main screen; diff / compare: in that view


ACTIONS: list[Action] = [
    Action("n", "n", "new_task", "New", "New task: title, description, priority, blockers, "
           "parent, base branch, agent"),
    Action("N", "N", "new_subtask", "Subtask", "New subtask of the selected task", footer=False),
    Action("e", "e", "edit_task", "Edit", "Edit the selected task", footer=False),
    Action("m", "m", "move_task", "Move", "Move the selected task to another status",
           footer=False),
    Action("s", "s", "start_session", "Start", "Start a session for the selected task "
           "(choose the agent and backend)"),
    Action("x", "x", "stop_session", "Stop", "Stop the selected session's agent"),
    Action("R", "R", "restart_session", "Restart", "Restart the selected session "
           "(same worktree)", footer=False),
    Action("a", "a", "archive_session", "Archive", "Stop and archive the selected session",
           footer=False),
    Action("X", "X", "delete_task", "Delete task", "Delete the selected task (its subtasks "
           "too, after a second confirmation)", footer=False),
    Action("ctrl+x", "^x", "delete_session", "Delete session", "Delete the selected session: "
           "stop it, remove its worktree and forget it; refused when work would be lost, "
           "then offered forced (the work kept in a recovery ref)", footer=False),
    Action("w", "w", "next_needs_input", "Waiting", "Jump to the next session that "
           "needs input (its question is waiting)"),
    Action("I", "I", "next_idle", "Idle", "Jump to the next idle session (its agent is done "
           "and waits for a prompt)", footer=False),
    Action("p", "p", "send_prompt", "Prompt", "Send a prompt to the selected session "
           "(only when its agent is idle)"),
    Action("K", "K", "send_keys", "Keys", "Press keys in the selected session: answer its "
           "agent's question (Enter, Down Enter, Escape, 1 ...)", footer=False),
    Action("t", "t", "attach", "Attach", "Full-screen attach (tmux and daemon sessions) at "
           "the terminal's size: the detach key is shown first, the app suspends until you "
           "detach", footer=False),
    Action("d", "d", "toggle_dispatch", "Dispatch", "Toggle auto-dispatch: feed ready tasks "
           "to agents by priority, skipping blocked ones (one dispatcher per store)",
           footer=False),
    Action("D", "D", "diff", "Diff", "Diff of the selected task or session against its base "
           "(committed, uncommitted and untracked): files with +/-, the patch, the last "
           "check; commit, check, merge or open a PR from there", footer=False),
    Action("C", "C", "compare", "Compare", "Compare the sessions of the selected task (one "
           "prompt, several agents): agent, state, files, +/-, checks, duration",
           footer=False),
    Action("W", "W", "keep_session", "Keep", "Keep the selected session: merge its branch "
           "and discard the task's other sessions (their work stays in recovery refs)",
           footer=False),
    Action("i", "i", "toggle_details", "Details", "Details of the selected session instead "
           "of its terminal: wall, busy, idle and needs-input time, exit code, tokens, model, "
           "estimated cost, and the task's sum over all its sessions (i again: the terminal)",
           footer=False),
    Action("plus", "+", "add_project", "Add project", "Add a project: the path of a git repo",
           footer=False),
    Action("minus", "-", "remove_project", "Remove project", "Remove the selected project "
           "from the list (its tasks are kept; adding the path again restores it)",
           footer=False),
    Action("b", "b", "toggle_sidebar", "Sidebar", "Hide / show the sidebar (the agent's "
           "terminal takes the width)", footer=False),
    Action("J", "J", "focus_trackers", "Trackers", "Jump to the Jira / Plane section under "
           "the projects (J again, or escape: back to the tasks)", footer=False),
    Action("T", "T", "take_tracker_item", "Take", "Take the highlighted Jira / Plane item into "
           "a project as a task (enter in the section too)", footer=False),
    Action("U", "U", "sync_trackers", "Sync trackers", "Sync Jira / Plane now: progress in "
           "their section, the counts when done", footer=False),
    Action("slash", "/", "filter", "Filter", "Filter tasks by key or title (escape clears)",
           footer=False),
    Action("tab", "tab", "focus_terminal", "Terminal", "Type into the selected session's "
           "terminal (ctrl+] comes back)", footer=False),
    Action("question_mark", "?", "help", "Help", "This help"),
    Action("ctrl+p", "^p", "command_palette", "All", "Command palette: every action "
           "by name"),
    Action("q", "q", "quit", "Quit", "Quit (asks first when local sessions would end)"),
]

# the diff view's keys (planeai.tui.diff_view) and the compare view's (compare_view)
ACTIONS += [
    Action("c", "c", "commit", "Commit", "Commit the worktree's changes (untracked files "
           "too); the message comes from the task, edit it first", where="diff"),
    Action("k", "k", "check", "Check", "Run the project's [review] checks in the worktree",
           where="diff"),
    Action("M", "M", "merge", "Merge", "Merge the branch into its base: merge, squash or "
           "rebase (default: [review] merge); the task is done, the worktree goes",
           where="diff"),
    Action("P", "P", "pull_request", "PR", "Push the branch and open a pull request (gh)",
           where="diff"),
    Action("r", "r", "reload", "Reload", "Compute the diff again", where="diff"),
    Action("escape", "esc", "back", "Back", "Back to the sidebar", where="diff"),
    Action("enter", "enter", "open_diff", "Diff", "Open the selected session's diff",
           where="compare"),
    Action("W", "W", "keep", "Keep", "Keep this session: merge it, discard the others "
           "(their work stays in recovery refs)", where="compare"),
    Action("r", "r", "reload", "Reload", "Compute the table again", where="compare"),
    Action("escape", "esc", "back", "Back", "Back to the sidebar", where="compare"),
]

NAV_HELP = [
    ("↑ ↓  j k", "move in the sidebar"),
    ("enter", "open: focus the session's terminal, or start one for the task"),
    ("space  ← →", "fold / unfold a project or status group"),
    ("ctrl+]", "leave the terminal, back to the sidebar"),
    ("shift+pgup/pgdn", "scroll back in the terminal (mouse wheel too)"),
]

_TITLES = {"new_task": "New task", "new_subtask": "New subtask", "edit_task": "Edit task",
           "move_task": "Move task", "start_session": "Start session",
           "stop_session": "Stop session", "restart_session": "Restart session",
           "archive_session": "Archive session", "send_prompt": "Send prompt",
           "send_keys": "Send keys",
           "attach": "Attach full screen", "toggle_dispatch": "Toggle auto-dispatch",
           "filter": "Filter tasks", "delete_task": "Delete task",
           "delete_session": "Delete session", "next_needs_input": "Next session needing input",
           "next_idle": "Next idle session",
           "add_project": "Add project", "remove_project": "Remove project",
           "toggle_sidebar": "Hide / show the sidebar",
           "focus_trackers": "Jira / Plane section", "take_tracker_item": "Take a tracker item",
           "sync_trackers": "Sync Jira / Plane now",
           "focus_terminal": "Focus terminal", "help": "Help", "quit": "Quit",
           "command_palette": "Command palette", "diff": "Diff of the task",
           "compare": "Compare the task's sessions",
           "toggle_details": "Session details and cost", "keep_session": "Keep this session",
           "commit": "Commit (diff view)", "check": "Run checks (diff view)",
           "merge": "Merge (diff view)", "pull_request": "Open a pull request (diff view)"}
ACTIONS = [Action(a.key, a.display, a.action, a.label, a.help, a.footer,
                  _TITLES.get(a.action, a.label), a.where) for a in ACTIONS]

# the key bar, most important first; it fits 80 columns (with the sidebar's "⏎ Open")
FOOTER_ORDER = ["start_session", "send_prompt", "new_task", "stop_session",
                "next_needs_input", "help", "command_palette", "quit"]


def footer_rank(a: Action) -> int:
    return FOOTER_ORDER.index(a.action) if a.action in FOOTER_ORDER else len(FOOTER_ORDER)


WHERE_TITLE = {"app": "", "diff": "in the diff view (D)", "compare": "in the compare view (C)"}


def actions_for(where: str) -> list[Action]:
    return [a for a in ACTIONS if a.where == where]
