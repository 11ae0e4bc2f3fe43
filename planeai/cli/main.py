"""The ``planeai`` command line.

Only argparse is imported up front; each command imports what it needs when it runs, so the
call agents make all day (``planeai task add``) stays fast and never loads Textual, GitPython
or keyring.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Sequence

# command path -> "module:function" in planeai.cli
Handler = str


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # usage errors: one line, exit 2 (argparse's convention)
        self.exit(2, f"planeai: usage error: {message} (see `{self.prog} --help`)\n")


def _cmd(sub, name: str, handler: Handler, help: str, **kw) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help, description=help, **kw)
    p.set_defaults(handler=handler)
    return p


def _description_args(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("-d", "--description", metavar="TEXT", help="task description")
    g.add_argument("--description-file", metavar="FILE",
                   help="read the description from FILE (- for stdin)")


def _sandbox_flags(p: argparse.ArgumentParser, *, as_configured: bool = False) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--sandbox", dest="sandbox", action="store_const", const=True,
                   help="run the agent in a Docker container (see planeai sandbox)")
    g.add_argument("--no-sandbox", dest="sandbox", action="store_const", const=False,
                   help="run the agent on this host even where config sandboxes it")
    if as_configured:
        g.add_argument("--sandbox-as-configured", dest="sandbox", action="store_const",
                       const="config", help="let config decide again ([sandbox])")


def build_parser() -> argparse.ArgumentParser:
    from planeai import __version__
    from planeai.config import BACKEND_NAMES  # the backends registry's names

    parser = _Parser(prog="planeai",
                     description="Mission control for parallel AI coding agents. "
                                 "Run without arguments to open the app.")
    parser.add_argument("--version", action="version", version=f"planeai {__version__}")
    parser.add_argument("--config", metavar="FILE",
                        help="extra config file, applied last (also PLANEAI_CONFIG)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    # ---- project
    proj = sub.add_parser("project", help="register and manage git repos")
    psub = proj.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True,
                               parser_class=_Parser)
    p = _cmd(psub, "add", "project:add", "register a git repo as a project")
    p.add_argument("path", nargs="?", default=".", help="repo path (default: current dir)")
    p.add_argument("--name", help="project name (default: the folder name)")
    p.add_argument("--key", help="task key prefix, e.g. PLA (default: from the name)")
    p.add_argument("--json", action="store_true")
    p = _cmd(psub, "list", "project:list", "list projects")
    p.add_argument("--all", action="store_true", help="include removed projects")
    p.add_argument("--json", action="store_true")
    p = _cmd(psub, "show", "project:show", "show one project")
    p.add_argument("project", nargs="?", help="name, key or path (default: current repo)")
    p.add_argument("--json", action="store_true")
    p = _cmd(psub, "remove", "project:remove",
             "unregister a project (its tasks are kept unless --purge)")
    p.add_argument("project", help="name, key or path")
    p.add_argument("--purge", action="store_true", help="also delete its tasks")

    # ---- task
    task = sub.add_parser("task", help="create and manage tasks")
    tsub = task.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True,
                               parser_class=_Parser)
    p = _cmd(tsub, "add", "task:add", "create a task and print its key")
    p.add_argument("title")
    p.add_argument("stdin", nargs="?", choices=["-"], help="- reads the description from stdin")
    _description_args(p)
    p.add_argument("-p", "--priority", type=int, default=None, help="higher runs first")
    p.add_argument("--blocked-by", nargs="+", action="extend", default=[], metavar="KEY")
    pg = p.add_mutually_exclusive_group()
    pg.add_argument("--parent", metavar="KEY")
    pg.add_argument("--no-parent", action="store_true",
                    help="inside a session, do not make it a subtask of the session's task")
    p.add_argument("--base-branch", metavar="BRANCH")
    p.add_argument("--provider", metavar="NAME", help="agent to run it, e.g. claude-opus")
    _sandbox_flags(p)
    p.add_argument("--host", metavar="NAME",
                   help="run its agents on this host ([hosts.NAME]) or on local only")
    p.add_argument("--project", metavar="P")
    p.add_argument("--json", action="store_true")

    p = _cmd(tsub, "list", "task:list", "list tasks")
    p.add_argument("--status", action="append", metavar="S",
                   help="todo, in_progress, in_review, done (repeatable)")
    p.add_argument("--project", metavar="P")
    p.add_argument("--all-projects", action="store_true")
    p.add_argument("--ready", action="store_true", help="only tasks that can start now")
    p.add_argument("--tree", action="store_true", help="nest subtasks under their parents")
    p.add_argument("--json", action="store_true")

    p = _cmd(tsub, "show", "task:show", "show a task")
    p.add_argument("key")
    p.add_argument("--json", action="store_true")

    p = _cmd(tsub, "edit", "task:edit", "change a task's fields")
    p.add_argument("key")
    p.add_argument("--title")
    _description_args(p)
    p.add_argument("-p", "--priority", type=int)
    pg = p.add_mutually_exclusive_group()
    pg.add_argument("--parent", metavar="KEY")
    pg.add_argument("--no-parent", action="store_true", help="make it a top-level task")
    p.add_argument("--base-branch", metavar="BRANCH")
    p.add_argument("--provider", metavar="NAME")
    _sandbox_flags(p, as_configured=True)
    hg = p.add_mutually_exclusive_group()
    hg.add_argument("--host", metavar="NAME", help="run its agents on this host, or local")
    hg.add_argument("--any-host", dest="host", action="store_const", const="",
                    help="let the dispatcher choose the machine again")
    p.add_argument("--json", action="store_true")

    p = _cmd(tsub, "move", "task:move", "set a task's status")
    p.add_argument("key")
    p.add_argument("status", help="todo, in_progress, in_review or done")
    for name, help_ in (("done", "mark a task done"),
                        ("review", "mark a task ready for human review (in_review)")):
        p = _cmd(tsub, name, f"task:{name}", help_)
        p.add_argument("key", nargs="?", help="default: the session's task (PLANEAI_TASK_KEY)")
    p = _cmd(tsub, "block", "task:block", "make a task wait for others")
    p.add_argument("key")
    p.add_argument("--by", nargs="+", action="extend", required=True, metavar="KEY")
    p = _cmd(tsub, "unblock", "task:unblock", "remove blockers (all unless --by)")
    p.add_argument("key")
    p.add_argument("--by", nargs="+", action="extend", metavar="KEY")
    p = _cmd(tsub, "delete", "task:delete", "delete a task")
    p.add_argument("key")
    p.add_argument("--recursive", action="store_true", help="also delete its subtasks")

    # ---- session
    sess = sub.add_parser("session", help="run agents: one terminal per task")
    ssub = sess.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True,
                               parser_class=_Parser)
    p = _cmd(ssub, "start", "session:start",
             "start an agent for a task in its own worktree and branch")
    p.add_argument("key", nargs="?", help="task key (omit for a scratch session in the repo)")
    p.add_argument("--provider", metavar="AGENT", help="claude, claude-opus, codex, shell, ...")
    p.add_argument("--backend", choices=BACKEND_NAMES)
    p.add_argument("--no-worktree", action="store_true", help="run in the repo itself")
    p.add_argument("--yolo", action="store_true", help="turn off the agent's permission prompts")
    p.add_argument("--prompt", metavar="TEXT", help="initial prompt")
    p.add_argument("--autonomous", action="store_true",
                   help="start with the provider's autonomous prompt for the task")
    p.add_argument("--project", metavar="P", help="for a scratch session")
    _sandbox_flags(p)
    p.add_argument("--host", metavar="NAME",
                   help="run it in tmux on this host over SSH ([hosts.NAME])")
    p.add_argument("--json", action="store_true")
    p = _cmd(ssub, "list", "session:list", "list sessions with their agent status")
    p.add_argument("--all", action="store_true", help="include archived sessions")
    p.add_argument("--json", action="store_true")
    for name, help_ in (("attach", "open a session's terminal here (tmux and daemon)"),
                        ("stop", "stop the agent (the session and worktree stay)"),
                        ("archive", "stop and file away a session; the worktree is kept"),
                        ("logs", "print a session's scrollback as text")):
        p = _cmd(ssub, name, f"session:{name}", help_)
        p.add_argument("ref", metavar="KEY", help="task key, session name or id")
    p = _cmd(ssub, "restart", "session:restart", "start an exited session again, same worktree")
    p.add_argument("ref", metavar="KEY")
    p.add_argument("--yolo", action="store_true")
    p = _cmd(ssub, "send", "session:send",
             "type a prompt into an agent at its prompt (idle); refuses while it asks a "
             "question (answer with `session keys`); says whether it went to work")
    p.add_argument("ref", metavar="KEY")
    p.add_argument("text", help="the prompt (- reads stdin)")
    p.add_argument("--wait", type=float, default=30.0, metavar="SECONDS",
                   help="how long to wait for a busy agent to become idle (default 30)")
    p.add_argument("--force", action="store_true",
                   help="type it whatever the agent is doing (even into a dialog)")
    p.add_argument("--watch", type=float, default=10.0, metavar="SECONDS",
                   help="how long to watch for the agent to start working (default 10)")
    p.add_argument("--json", action="store_true")
    p = _cmd(ssub, "keys", "session:keys",
             "press keys in an agent's terminal, e.g. to answer its dialog: Enter, Escape, "
             "Tab, Up, Down, Left, Right, Space, BSpace, C-c (ctrl+letter), 1, y ...")
    p.add_argument("ref", metavar="KEY")
    p.add_argument("keys", nargs="+", metavar="KEYNAME", help="keys, pressed in order")
    p.add_argument("--json", action="store_true")
    p = _cmd(ssub, "delete", "session:delete",
             "stop and forget a session and remove its worktree (refuses unsaved work)")
    p.add_argument("ref", metavar="KEY")
    p.add_argument("--force", action="store_true",
                   help="remove even with unsaved work (kept in a recovery ref)")
    p = _cmd(sub, "attach", "session:attach", "open a session's terminal (tmux and daemon)")
    p.add_argument("ref", metavar="KEY")

    # ---- provider
    prov = sub.add_parser("provider", help="agent CLIs planeai can run")
    vsub = prov.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True,
                               parser_class=_Parser)
    p = _cmd(vsub, "list", "provider:list", "list providers and their variants")
    p.add_argument("--json", action="store_true")
    p = _cmd(vsub, "show", "provider:show", "show a provider's command and variants")
    p.add_argument("name", help="claude or claude-opus")
    p.add_argument("--json", action="store_true")
    p = _cmd(vsub, "check", "provider:check", "is the CLI installed, which version, secrets set?")
    p.add_argument("name", nargs="?")
    p.add_argument("--json", action="store_true")

    # ---- daemon
    dmn = sub.add_parser("daemon", help="the background process that owns daemon-backend sessions")
    dsub = dmn.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True,
                              parser_class=_Parser)
    _cmd(dsub, "start", "daemon:start", "start the daemon (sessions on it outlive the app)")
    p = _cmd(dsub, "stop", "daemon:stop", "stop the daemon and the sessions it runs")
    p.add_argument("--force", action="store_true", help="do not ask before ending sessions")
    p = _cmd(dsub, "restart", "daemon:restart", "stop (ending its sessions) and start again")
    p.add_argument("--force", action="store_true", help="do not ask before ending sessions")
    p = _cmd(dsub, "status", "daemon:status",
             "is it running, its pid, socket, clients and sessions (exit 3: not running)")
    p.add_argument("--json", action="store_true")

    # ---- run: one prompt, N agents
    p = _cmd(sub, "run", "run:run",
             "send one prompt to several agents at once, each in its own worktree")
    p.add_argument("prompt", help="the prompt; may contain @agent mentions")
    p.add_argument("agents", nargs="*", metavar="@AGENT",
                   help="@claude-opus @gemini-pro @claude:review ...")
    p.add_argument("--task", metavar="KEY", help="run for this task (default: a new task)")
    p.add_argument("--project", metavar="P")
    p.add_argument("--backend", choices=BACKEND_NAMES)
    p.add_argument("--yolo", action="store_true")
    _sandbox_flags(p)
    p.add_argument("--json", action="store_true")

    # ---- skill
    sk = sub.add_parser("skill", help="skills agents can use")
    ksub = sk.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True,
                             parser_class=_Parser)
    p = _cmd(ksub, "list", "skill:list", "list skills (project, user, bundled)")
    p.add_argument("--json", action="store_true")
    p = _cmd(ksub, "show", "skill:show", "show a skill's instructions")
    p.add_argument("trigger")
    p.add_argument("--json", action="store_true")

    # ---- dispatch
    disp = sub.add_parser("dispatch", help="feed ready tasks to agents automatically")
    dsub = disp.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True,
                               parser_class=_Parser)
    p = _cmd(dsub, "run", "dispatch:run",
             "run the dispatcher here: poll, dispatch, reconcile, notify")
    p.add_argument("--once", action="store_true", help="one pass, then exit")
    p.add_argument("--exit-when-idle", action="store_true",
                   help="exit once no task is ready and no dispatched session runs")
    p.add_argument("--project", metavar="P", help="only this project's tasks")
    p.add_argument("--max-sessions", type=int, metavar="N", help="override dispatch.max_sessions")
    p.add_argument("--backend", choices=BACKEND_NAMES,
                   help="override dispatch.backend")
    _sandbox_flags(p)
    p = _cmd(dsub, "status", "dispatch:status", "who dispatches, slots in use, the queue")
    p.add_argument("--json", action="store_true")

    # ---- review and delivery
    p = _cmd(sub, "diff", "review:diff",
             "a task's changes against its base: committed, uncommitted and untracked")
    p.add_argument("key")
    p.add_argument("--session", metavar="NAME", help="this session's worktree (default: newest)")
    p.add_argument("--stat", action="store_true", help="only the files with +/- counts")
    p.add_argument("--json", action="store_true")
    p = _cmd(sub, "check", "review:check",
             "run the [review] checks in a task's worktree (exit 1 when one fails)")
    p.add_argument("key")
    p.add_argument("--session", metavar="NAME")
    p.add_argument("--json", action="store_true")
    p = _cmd(sub, "commit", "review:commit",
             "commit all of a task's worktree changes (untracked too) with the task's message")
    p.add_argument("key")
    p.add_argument("-m", "--message", metavar="MSG", help="instead of `KEY: title` + description")
    p.add_argument("--session", metavar="NAME")
    p = _cmd(sub, "merge", "review:merge",
             "merge a task's branch into its base here, then mark it done and clean up")
    p.add_argument("key")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--squash", action="store_true", help="one commit on the base")
    g.add_argument("--rebase", action="store_true", help="replay its commits onto the base")
    p.add_argument("--commit", action="store_true", help="commit uncommitted work first")
    p.add_argument("--session", metavar="NAME")
    p.add_argument("--stack", action="store_true",
                   help="first merge the unmerged tasks its branch was started from")
    p.add_argument("--json", action="store_true")
    p = _cmd(sub, "keep", "review:keep",
             "of a task run by several agents, merge this session's work and discard the "
             "others (their work kept in recovery refs)")
    p.add_argument("session", metavar="SESSION")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--squash", action="store_true", help="one commit on the base")
    g.add_argument("--rebase", action="store_true", help="replay its commits onto the base")
    p.add_argument("--commit", action="store_true", help="commit uncommitted work first")
    p.add_argument("--json", action="store_true")
    p = _cmd(sub, "pr", "review:pr",
             "push a task's branch and open a pull request with gh (URL kept on the task)")
    p.add_argument("key")
    p.add_argument("--remote", metavar="NAME", help="default: [review] remote (origin)")
    p.add_argument("--commit", action="store_true", help="commit uncommitted work first")
    p.add_argument("--session", metavar="NAME")
    p.add_argument("--json", action="store_true")
    p = _cmd(sub, "gc", "review:gc",
             "remove stale worktrees, retry leftovers and delivered branches (never unsaved "
             "work)")
    p.add_argument("--dry-run", action="store_true", help="only list them, with their size")
    p.add_argument("--yes", action="store_true", help="do not ask")
    p.add_argument("--json", action="store_true")

    # ---- sandbox: agents in Docker containers
    sbx = sub.add_parser("sandbox", help="run agents in Docker: images, engine, containers")
    xsub = sbx.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True,
                              parser_class=_Parser)
    p = _cmd(xsub, "build", "sandbox:build",
             "build an agent's image (or `base`, the one they build on), with docker's output")
    p.add_argument("agent", metavar="AGENT", help="base, claude, codex, ...")
    p.add_argument("--debootstrap", action="store_true",
                   help="base only: make it with debootstrap and docker import (no registry; "
                        "needs root)")
    p = _cmd(xsub, "status", "sandbox:status", "the engine, the images and running sandboxes")
    p.add_argument("--json", action="store_true")
    p = _cmd(xsub, "push", "sandbox:push",
             "copy an agent's image (or `base`) from this engine to a host's, over its SSH "
             "connection (docker save | docker load)")
    p.add_argument("agent", metavar="AGENT", help="base, claude, codex, ...")
    p.add_argument("--host", metavar="NAME", required=True)

    # ---- host: other machines that run agents over SSH ([hosts.NAME] in the user config)
    hst = sub.add_parser("host", help="machines that run agents over SSH")
    hsub = hst.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True,
                              parser_class=_Parser)
    p = _cmd(hsub, "add", "host:add", "add a [hosts.NAME] table to your user config")
    p.add_argument("name", metavar="NAME", help="letters, digits, - and _")
    p.add_argument("ssh", metavar="SSH",
                   help="user@host or host (identity, ProxyJump: your ~/.ssh/config)")
    p.add_argument("--port", type=int, metavar="N", help="ssh port (default: ssh's own)")
    p.add_argument("--max-sessions", type=int, metavar="N", help="sessions at once there")
    p.add_argument("--root", metavar="PATH",
                   help="where planeai keeps repos and worktrees there (default ~/.planeai)")
    p.add_argument("--repo", action="append", metavar="PROJECT=PATH",
                   help="a project's repo path there (repeatable)")
    p.add_argument("--ssh-config", metavar="FILE",
                   help="an ssh config file to use instead of ~/.ssh/config (ssh -F)")
    p.add_argument("--connect-timeout", type=int, metavar="S",
                   help="seconds to reach it and log in (default 10)")
    p = _cmd(hsub, "list", "host:list_", "list the configured hosts")
    p.add_argument("--json", action="store_true")
    p = _cmd(hsub, "check", "host:check",
             "prove SSH, tmux, git and each agent CLI on a host, with versions")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--json", action="store_true")
    p = _cmd(hsub, "remove", "host:remove", "remove a host from your user config")
    p.add_argument("name", metavar="NAME")

    # ---- secret: provider keys for the agents, kept in the OS keyring (never in argv)
    sec = sub.add_parser("secret", help="store provider keys for agents (OS keyring)")
    ssub = sec.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True,
                              parser_class=_Parser)
    for name, handler, help_ in (
            ("set", "secret:set_", "store a secret: typed at a hidden prompt, or --stdin"),
            ("get", "secret:get", "say whether a secret is set (--show prints it)"),
            ("delete", "secret:delete", "remove a stored secret")):
        p = _cmd(ssub, name, handler, help_)
        p.add_argument("provider", help="provider name (or planeai, for its tracker tokens)")
        p.add_argument("name", help="one of the provider's declared secrets, e.g. "
                                    "ANTHROPIC_API_KEY")
        if name == "set":
            p.add_argument("--stdin", action="store_true",
                           help="read the value from standard input (one line)")
        elif name == "get":
            p.add_argument("--show", action="store_true", help="print the value itself")
    p = _cmd(ssub, "list", "secret:list_", "list the provider/name pairs set (never values)")
    p.add_argument("--json", action="store_true")

    # ---- jira: issues of named JQL filters, taken into projects as tasks
    jira = sub.add_parser("jira", help="sync Jira Cloud issues and take them as tasks")
    jsub = jira.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True,
                               parser_class=_Parser)
    p = _cmd(jsub, "sync", "jira:sync",
             "pull the issues of the [jira.filters] (then post pending write-backs)")
    p.add_argument("--filter", metavar="NAME", help="only this filter")
    p.add_argument("--progress", action="store_true",
                   help="a line per page on stderr (default: when stderr is a terminal)")
    p.add_argument("--json", action="store_true")
    p = _cmd(jsub, "list", "jira:list_", "the synced issues by filter, with their tasks")
    p.add_argument("--filter", metavar="NAME", help="only this filter")
    p.add_argument("--all", action="store_true", help="also issues that left their filter")
    p.add_argument("--json", action="store_true")
    p = _cmd(jsub, "take", "jira:take", "make a synced issue a task of a project")
    p.add_argument("key", metavar="KEY", help="the Jira issue key, like PROJ-12")
    p.add_argument("--project", metavar="P", required=True)
    p.add_argument("--json", action="store_true")

    # ---- trust: a repo's .planeai/ hooks and provider files run commands
    p = _cmd(sub, "trust", "trust:run",
             "review and trust a repo's .planeai/ hooks and provider files (they run commands)")
    p.add_argument("path", nargs="?", help="repo path or project name (default: current repo)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--show", action="store_true", help="show what would run; trust nothing")
    g.add_argument("--revoke", action="store_true", help="stop trusting it")
    g.add_argument("--list", action="store_true", help="list trusted repos")
    p.add_argument("--json", action="store_true")

    # ---- stats
    p = _cmd(sub, "stats", "stats:run",
             "what agents did and cost: time busy / idle / waiting, tokens, estimated cost")
    p.add_argument("--project", metavar="P", help="only this project (default: all)")
    p.add_argument("--since", metavar="DATE",
                   help="sessions started since: YYYY-MM-DD, an ISO time, or an age (7d, 12h)")
    p.add_argument("--by", choices=("task", "agent", "day", "project", "session"),
                   default="task", help="one line per task (default), agent, day, ...")
    p.add_argument("--json", action="store_true")

    # ---- plane: work items, and planeai as a Plane agent
    pl = sub.add_parser("plane", help="Plane: sync work items, answer @mentions as an agent")
    plsub = pl.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True,
                              parser_class=_Parser)
    p = _cmd(plsub, "sync", "plane:sync",
             "pull the work items of the [plane] projects; write results back")
    p.add_argument("--progress", action="store_true",
                   help="a line per page on stderr (the default when it is a terminal)")
    p.add_argument("--json", action="store_true")
    p = _cmd(plsub, "list", "plane:list_", "list synced Plane work items")
    p.add_argument("--all", action="store_true", help="include items no longer listed")
    p.add_argument("--json", action="store_true")
    p = _cmd(plsub, "take", "plane:take", "make a synced work item a task")
    p.add_argument("ref", metavar="KEY", help="work item key (WEB-12) or id")
    p.add_argument("--project", metavar="P", help="default: its mapped project")
    p.add_argument("--json", action="store_true")
    p = _cmd(plsub, "serve", "plane:serve",
             "receive Plane's agent webhooks and run agents for them (Ctrl-C stops)")
    p.add_argument("--port", type=int, default=8787, metavar="N", help="default 8787")
    p.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1")
    p.add_argument("--poll", action="store_true",
                   help="also read the workspace's activity feed for prompts")
    _cmd(plsub, "poll", "plane:poll",
         "run agents for prompts found in the workspace's activity feed (no webhooks)")

    # ---- misc
    p = _cmd(sub, "doctor", "doctor:run",
             "show where planeai keeps things and which tools it finds")
    p.add_argument("--json", action="store_true")
    p = _cmd(sub, "events", "events:run",
             "print the event log: the newest --limit events, oldest first")
    p.add_argument("--task", metavar="KEY")
    p.add_argument("--after", type=int, default=0, metavar="ID",
                   help="only events after this id (with --oldest: page forward from it)")
    p.add_argument("--limit", type=int, default=100, metavar="N")
    p.add_argument("--oldest", action="store_true",
                   help="the first N events (after --after) instead of the newest N")
    p.add_argument("--json", action="store_true")
    return parser


def _resolve(handler: Handler) -> Callable[[argparse.Namespace], int]:
    import importlib

    module, func = handler.split(":")
    return getattr(importlib.import_module(f"planeai.cli.cmd_{module}"), func)


def _one_line(msg: str) -> str:
    """An error as one line; control characters (from a damaged file or row) never reach the
    terminal as escape sequences."""
    import re

    return re.sub(r"[\x00-\x1f\x7f-\x9f]", "?", msg.replace("\n", " "))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        if args.command is None:
            handler = "app:run"
        else:
            parser.parse_args([args.command, "--help"])
            return 2
    from planeai.cli import common
    from planeai.errors import PlaneaiError

    try:
        common.begin(args)
        return _resolve(handler)(args) or 0
    except PlaneaiError as e:
        print(f"planeai: error: {_one_line(str(e))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # stdout closed early (`planeai task list | head`): not an error worth a traceback
        try:
            sys.stdout = None  # type: ignore[assignment]
        finally:
            return 0
    except Exception as e:
        # the one path for I/O, database and decoding failures: one line, exit 1
        from planeai.cli.common import failure_line

        line = failure_line(e)
        if line is None:
            raise
        print(f"planeai: error: {_one_line(line)}", file=sys.stderr)
        return 1
    finally:
        common.end()


if __name__ == "__main__":
    sys.exit(main())
