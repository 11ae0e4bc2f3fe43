"""A client for Plane's REST API: work items, comments, agent runs and their activities.

Paths follow developers.plane.so (see ../shared/DESIGN.md): ``/api/v1/workspaces/{slug}/...``
with a trailing slash; auth ``X-API-Key`` (a personal key) or ``Authorization: Bearer`` (an
app's bot token). Lists page with ``per_page`` (at most 100) and ``cursor``
(``"per_page:page:is_prev"``); each page carries ``results``, ``next_cursor`` and
``next_page_results``. Throttling (429 with Retry-After), 401/403, 5xx and replies that are
not JSON are planeai.integrations.tracker_http's, as for Jira.

Agents (beta): a run's activities are posted to ``runs/{run_id}/activities/`` as
``{type, content: {type, body}}`` (an action: ``content: {type: "action", action,
parameters}``). The workspace-wide activity feed (v2, oldest first, filterable by
``type=prompt``) is how a planeai behind NAT finds new prompts without webhooks; its path is
``FEED_PATH`` below.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator

from planeai.integrations.tracker_http import (HttpClient, TrackerBadResponse,
                                               TrackerConfigError)

PER_PAGE = 100             # Plane's maximum
ACTIVITY_TYPES = ("thought", "action", "response", "elicitation", "error")
# v2: one feed of the activities on every run the caller can see, oldest first
FEED_PATH = "/api/v2/workspaces/{slug}/agent-run-activities/"


@dataclass(frozen=True)
class WorkItem:
    """One work item as Plane returned it (text untrusted)."""

    id: str
    project_id: str
    sequence_id: int | None
    name: str
    description: str          # description_stripped, else description_html
    state_id: str
    priority: str
    assignees: tuple[str, ...]
    updated_at: str

    @classmethod
    def parse(cls, raw: Any, project_id: str) -> "WorkItem":
        if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
            raise TrackerBadResponse("Plane: a work item without an id in the reply")
        state = raw.get("state")
        if isinstance(state, dict):  # expand=state
            state = state.get("id")
        seq = raw.get("sequence_id")
        return cls(
            id=raw["id"], project_id=str(raw.get("project") or project_id),
            sequence_id=seq if isinstance(seq, int) and not isinstance(seq, bool) else None,
            name=_text(raw.get("name")),
            description=_text(raw.get("description_stripped") or raw.get("description_html")),
            state_id=_text(state), priority=_text(raw.get("priority")),
            assignees=tuple(str(a) for a in raw.get("assignees") or () if isinstance(a, str)),
            updated_at=_text(raw.get("updated_at")))


def _text(v: Any) -> str:
    return v if isinstance(v, str) else ""


@dataclass(frozen=True)
class Page:
    results: list
    next_cursor: str | None


class PlaneClient:
    """Requests to one Plane workspace. ``api_key`` is never printed or logged."""

    def __init__(self, url: str, workspace: str, api_key: str, *, auth: str = "api_key",
                 sleep: Callable[[float], Any] | None = None, timeout: float = 30.0) -> None:
        if not url:
            raise TrackerConfigError("Plane: no [plane] url in the config")
        if not workspace:
            raise TrackerConfigError("Plane: no [plane] workspace (the slug in your Plane "
                                     "URLs) in the config")
        if not api_key:
            raise TrackerConfigError(
                "Plane: no API key; store one with `planeai secret set plane PLANE_API_KEY` "
                "or set PLANE_API_KEY")
        headers = ({"X-API-Key": api_key} if auth == "api_key"
                   else {"Authorization": f"Bearer {api_key}"})
        self.workspace = workspace
        self.http = HttpClient(url, headers, service="Plane", timeout=timeout, sleep=sleep,
                               auth_hint="check PLANE_API_KEY and [plane] auth")
        self._ws = f"/api/v1/workspaces/{_seg(workspace)}"

    # ------------------------------------------------------------------ paging
    def _page(self, path: str, params: dict[str, str]) -> Page:
        data = self.http.request("GET", path, params=params).data
        if not isinstance(data, dict) or not isinstance(data.get("results"), list):
            raise TrackerBadResponse(f"Plane: the reply to {path} has no results list")
        cursor = data.get("next_cursor")
        more = data.get("next_page_results") is True and isinstance(cursor, str) and cursor
        return Page(data["results"], cursor if more else None)

    def pages(self, path: str, params: dict[str, str] | None = None,
              cursor: str | None = None) -> Iterator[Page]:
        """Every page of a list, from ``cursor`` (a page's ``next_cursor``) on."""
        params = dict(params or {})
        params["per_page"] = str(PER_PAGE)
        while True:
            page = self._page(path, {**params, **({"cursor": cursor} if cursor else {})})
            yield page
            if page.next_cursor is None or page.next_cursor == cursor:
                return
            cursor = page.next_cursor

    # ------------------------------------------------------------------ work items
    def _items(self, project_id: str) -> str:
        return f"{self._ws}/projects/{_seg(project_id)}/work-items/"

    def work_item_pages(self, project_id: str,
                        cursor: str | None = None) -> Iterator[list[WorkItem]]:
        for page in self.pages(self._items(project_id), cursor=cursor):
            yield [WorkItem.parse(r, project_id) for r in page.results]

    def work_item(self, project_id: str, item_id: str) -> WorkItem:
        data = self.http.request("GET", self._items(project_id) + f"{_seg(item_id)}/").data
        return WorkItem.parse(data, project_id)

    def states(self, project_id: str) -> list[dict]:
        """The project's states: ``{id, name, group}`` (group: backlog, unstarted, started,
        completed, cancelled)."""
        path = f"{self._ws}/projects/{_seg(project_id)}/states/"
        return [s for page in self.pages(path) for s in page.results if isinstance(s, dict)]

    def project_identifier(self, project_id: str) -> str:
        """The project's key prefix (``WEB`` in WEB-12)."""
        data = self.http.request("GET", f"{self._ws}/projects/{_seg(project_id)}/").data
        ident = data.get("identifier") if isinstance(data, dict) else None
        if not isinstance(ident, str) or not ident:
            raise TrackerBadResponse(f"Plane: project {project_id} has no identifier")
        return ident

    def set_state(self, project_id: str, item_id: str, state_id: str) -> None:
        self.http.request("PATCH", self._items(project_id) + f"{_seg(item_id)}/",
                          body={"state": state_id})

    def add_comment(self, project_id: str, item_id: str, html: str) -> dict:
        return self.http.request(
            "POST", self._items(project_id) + f"{_seg(item_id)}/comments/",
            body={"comment_html": html}).data or {}

    # ------------------------------------------------------------------ agent runs
    def get_run(self, run_id: str) -> dict:
        data = self.http.request("GET", f"{self._ws}/runs/{_seg(run_id)}/").data
        if not isinstance(data, dict):
            raise TrackerBadResponse(f"Plane: run {run_id}: the reply is not an object")
        return data

    def run_activities(self, run_id: str, type: str | None = None) -> list[dict]:
        path = f"{self._ws}/runs/{_seg(run_id)}/activities/"
        params = {"type": type} if type else {}
        return [a for page in self.pages(path, params) for a in page.results
                if isinstance(a, dict)]

    def post_activity(self, run_id: str, type: str, body: str = "", *,
                      action: str | None = None, parameters: dict | None = None,
                      signal: str | None = None) -> dict:
        """One activity on a run: thought, action (``action`` and ``parameters``), response,
        elicitation or error."""
        if type not in ACTIVITY_TYPES:
            raise ValueError(f"unknown activity type {type!r}")
        if type == "action":
            content: dict = {"type": "action", "action": action or "", "parameters":
                             parameters or {}}
        else:
            content = {"type": type, "body": body}
        payload: dict = {"type": type, "content": content}
        if signal:
            payload["signal"] = signal
        return self.http.request("POST", f"{self._ws}/runs/{_seg(run_id)}/activities/",
                                 body=payload).data or {}

    def feed(self, *, type: str = "prompt", since: str | None = None,
             cursor: str | None = None) -> Iterator[Page]:
        """The workspace's activity feed (v2), oldest first, from ``since`` (ISO time)."""
        params = {"type": type}
        if since:
            params["created_at__gte"] = since
        return self.pages(FEED_PATH.format(slug=_seg(self.workspace)), params, cursor)

    def close(self) -> None:
        self.http.close()


def _seg(value: str) -> str:
    """One path segment: ids and slugs from config or replies never add path parts."""
    import urllib.parse

    return urllib.parse.quote(str(value), safe="")
