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


ACTIONS: list[Action] = [
    Action("n", "n", "new_task", "New", "New task: title, description, priority, blockers, "
           "parent, base branch, agent"),
    Action("N", "N", "new_subtask", "Subtask", "New subtask of the selected task", footer=False),
    Action("e", "e", "edit_task", "Edit", "Edit the selected task"),
    Action("m", "m", "move_task", "Move", "Move the selected task to another status"),
    Action("s", "s", "start_session", "Start", "Start a session for the selected task "
           "(choose the agent and backend)"),
    Action("x", "x", "stop_session", "Stop", "Stop the selected session's agent"),
    Action("R", "R", "restart_session", "Restart", "Restart the selected session "
           "(same worktree)", footer=False),
    Action("a", "a", "archive_session", "Archive", "Stop and archive the selected session",
           footer=False),
    Action("p", "p", "send_prompt", "Prompt", "Send a prompt to the selected session"),
    Action("t", "t", "attach", "Attach", "Full-screen attach (tmux sessions): the app "
           "suspends until you detach", footer=False),
    Action("d", "d", "toggle_dispatch", "Dispatch", "Toggle auto-dispatch: feed ready tasks "
           "to agents by priority, skipping blocked ones (one dispatcher per store)",
           footer=False),
    Action("slash", "/", "filter", "Filter", "Filter tasks by key or title (escape clears)"),
    Action("tab", "tab", "focus_terminal", "Terminal", "Type into the selected session's "
           "terminal (ctrl+] comes back)", footer=False),
    Action("question_mark", "?", "help", "Help", "This help"),
    Action("ctrl+p", "^p", "command_palette", "All actions", "Command palette: every action "
           "by name"),
    Action("q", "q", "quit", "Quit", "Quit (asks first when local sessions would end)"),
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
           "attach": "Attach full screen", "toggle_dispatch": "Toggle auto-dispatch",
           "filter": "Filter tasks",
           "focus_terminal": "Focus terminal", "help": "Help", "quit": "Quit",
           "command_palette": "Command palette"}
ACTIONS = [Action(a.key, a.display, a.action, a.label, a.help, a.footer,
                  _TITLES.get(a.action, a.label)) for a in ACTIONS]
