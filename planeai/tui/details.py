"""The main pane when no terminal is shown: a task's details, a project, or a welcome."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from planeai.core.models import Project, Session, Task
from planeai.tui.model import BADGES, STATUS_LABEL, agent_status


def _kv(rows: list[tuple[str, str | Text]]) -> Table:
    t = Table.grid(padding=(0, 2))
    t.add_column(style="dim", no_wrap=True)
    t.add_column()
    for k, v in rows:
        t.add_row(k, v)
    return t


class Details(Static):
    DEFAULT_CSS = """
    Details { width: 1fr; height: 1fr; padding: 1 2; }
    """

    _shown: object = ""

    def update(self, content="", **kw) -> None:  # type: ignore[override]
        self._shown = content
        super().update(content, **kw)

    @property
    def plain(self) -> str:
        """What is shown, as plain text (tests, and screen readers of the future)."""
        import io

        from rich.console import Console

        buf = io.StringIO()
        Console(width=120, file=buf, color_system=None).print(self._shown)
        return buf.getvalue()

    def show_welcome(self, has_projects: bool) -> None:
        if has_projects:
            body = Text("Select a task on the left.\n\n"
                        "n new task   s start a session   ? help   ctrl+p every action")
        else:
            body = Text.assemble(
                ("No projects yet.\n\n", "bold"),
                "Register a git repo from a shell:  ", ("planeai project add PATH", "cyan"),
                "\nor start planeai inside a repo and accept the offer.\n\n",
                "? help   q quit")
        self.update(body)

    def show_project(self, p: Project, counts: dict[str, int], sessions: int) -> None:
        rows: list[tuple[str, str | Text]] = [
            ("key", p.key_prefix), ("path", p.path), ("branch", p.default_branch or "-"),
            ("tasks", ", ".join(f"{STATUS_LABEL[s]} {n}" for s, n in counts.items()) or "none"),
            ("sessions", str(sessions)),
        ]
        self.update(Group(Text(p.name, style="bold"), Text(""), _kv(rows), Text(""),
                          Text("n new task", style="dim")))

    def show_task(self, t: Task, session: Session | None, children: list[str]) -> None:
        rows: list[tuple[str, str | Text]] = [
            ("status", STATUS_LABEL[t.status]),
            ("priority", str(t.priority)),
        ]
        if t.blocked_by:
            b = Text(", ".join(t.blocked_by))
            if t.open_blockers:
                b.append(f"   waiting for {', '.join(t.open_blockers)}", style="red")
            rows.append(("blocked by", b))
        if t.parent_key:
            rows.append(("parent", t.parent_key))
        if children:
            rows.append(("subtasks", ", ".join(children)))
        if t.base_branch:
            rows.append(("base branch", t.base_branch))
        rows.append(("agent", t.provider or "(default)"))
        if session is not None:
            st = agent_status(session)
            sym, colour, label = BADGES[st]
            line = Text.assemble((sym, colour), f" {session.name}  {label}")
            if session.exit_code is not None:
                line.append(f" (exit {session.exit_code})")
            rows.append(("session", line))
        hint = ("s start a session   e edit   m move   N subtask" if session is None else
                "R restart   a archive   s start another")
        parts = [Text(f"{t.key}  {t.title}", style="bold"), Text(""), _kv(rows)]
        if t.description.strip():
            parts += [Text(""), Text(t.description)]
        parts += [Text(""), Text(hint, style="dim")]
        self.update(Group(*parts))

    def show_lost(self, s: Session, why: str) -> None:
        self.update(Group(Text(f"{s.name}", style="bold"), Text(""), Text(why),
                          Text(""), Text("R restart   a archive", style="dim")))
