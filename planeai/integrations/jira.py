"""Jira Cloud REST v3: enhanced JQL search (paged by ``nextPageToken``), transitions and
comments, with Basic auth (``email:api_token``).

Only the documented shapes are accepted (see /work/shared/DESIGN.md, "Tracker APIs"): a
search reply without an ``issues`` list is a TrackerBadResponse naming the path, not an empty
page. Text comes back as received (untrusted); the sync service decides what to do with it.
"""

from __future__ import annotations

import base64
import ipaddress
import re
import urllib.parse
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from planeai.integrations import adf
from planeai.integrations.tracker_http import (
    MAX_WAIT, TIMEOUT, HttpClient, TrackerBadResponse, TrackerConfigError,
)
from planeai.store.trackers import RemoteItem

SEARCH = "/rest/api/3/search/jql"
_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}-[0-9]{1,12}")
FIELDS = ("summary", "description", "status", "priority", "assignee", "updated")
PAGE_SIZE = 100  # Jira caps maxResults (100 for most field sets); the reply says isLast


@dataclass(frozen=True)
class SearchPage:
    items: list[RemoteItem]
    next_page_token: str | None
    is_last: bool


def check_url(url: str) -> str:
    """The site URL, refused unless https (plain http only to this machine, for tests and
    proxies): the token travels in every request."""
    url = (url or "").strip().rstrip("/")
    if not url:
        raise TrackerConfigError("Jira is not configured: set [jira] url (like "
                                 "\"https://acme.atlassian.net\") in planeai's config")
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("https", "http") or not host:
        raise TrackerConfigError(f"[jira] url {url!r} is not an https:// URL")
    if parts.scheme == "http" and not _loopback(host):
        raise TrackerConfigError(f"[jira] url {url!r} is plain http; the API token would "
                                 "travel unencrypted: use https://")
    return url


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _name(v: Any, key: str = "name") -> str:
    return v.get(key) if isinstance(v, dict) and isinstance(v.get(key), str) else ""


def issue_item(issue: Any, site: str) -> RemoteItem | None:
    """A RemoteItem from one search result, or None when it has no id and key."""
    if not isinstance(issue, dict):
        return None
    iid, key = issue.get("id"), issue.get("key")
    # keys are PROJ-12; anything else (a control character, a path) is not an issue of ours
    if not isinstance(key, str) or not _KEY.fullmatch(key) or not isinstance(iid, (str, int)) \
            or isinstance(iid, bool) or not str(iid).strip():
        return None
    f = issue.get("fields") if isinstance(issue.get("fields"), dict) else {}
    summary = f.get("summary") if isinstance(f.get("summary"), str) else ""
    return RemoteItem(
        external_id=str(iid), external_key=key, title=summary,
        description=adf.to_markdown(f.get("description")),
        status=_name(f.get("status")), priority=_name(f.get("priority")),
        assignee=_name(f.get("assignee"), "displayName"),
        url=f"{site}/browse/{urllib.parse.quote(key, safe='')}",
        remote_updated=f.get("updated") if isinstance(f.get("updated"), str) else "")


class JiraClient:
    def __init__(self, url: str, email: str, token: str, *, timeout: float = TIMEOUT,
                 max_wait: float = MAX_WAIT, sleep: Callable[[float], Any] | None = None
                 ) -> None:
        self.site = check_url(url)
        if not email or not email.strip():
            raise TrackerConfigError("Jira is not configured: set [jira] email (the Atlassian "
                                     "account the API token belongs to)")
        if not token:
            raise TrackerConfigError(
                "no Jira API token: run `planeai secret set jira JIRA_API_TOKEN` or set "
                "JIRA_API_TOKEN in the environment")
        if any(c in token + email for c in "\r\n\0"):
            raise TrackerConfigError("the Jira email or API token holds a line break")
        basic = base64.b64encode(f"{email.strip()}:{token}".encode()).decode("ascii")
        self.http = HttpClient(
            self.site, {"Authorization": f"Basic {basic}"}, service="Jira", timeout=timeout,
            max_wait=max_wait, sleep=sleep,
            auth_hint="check [jira] email and the API token "
                      "(`planeai secret set jira JIRA_API_TOKEN`)")

    def search(self, jql: str, *, next_page_token: str | None = None,
               max_results: int = PAGE_SIZE) -> SearchPage:
        body: dict[str, Any] = {"jql": jql, "fields": list(FIELDS), "maxResults": max_results}
        if next_page_token:
            body["nextPageToken"] = next_page_token
        data = self.http.request("POST", SEARCH, body=body).data
        if not isinstance(data, dict) or not isinstance(data.get("issues"), list):
            raise TrackerBadResponse(f"Jira: the reply to {SEARCH} has no issues list")
        items = [i for i in (issue_item(x, self.site) for x in data["issues"]) if i]
        token = data.get("nextPageToken")
        token = token if isinstance(token, str) and token else None
        # isLast missing: the last page is the one without a next token
        is_last = bool(data.get("isLast")) if "isLast" in data else token is None
        if not is_last and token is None:
            raise TrackerBadResponse(f"Jira: the reply to {SEARCH} says more pages follow "
                                     "but gives no nextPageToken")
        return SearchPage(items, token, is_last)

    def search_all(self, jql: str, *, page_size: int = PAGE_SIZE) -> Iterator[SearchPage]:
        """Every page of a search, in order, until isLast. A token given twice is a
        TrackerBadResponse: an endless loop otherwise, and a pass that is not known to be
        complete must not decide what left the filter."""
        token: str | None = None
        seen: set[str] = set()
        while True:
            page = self.search(jql, next_page_token=token, max_results=page_size)
            yield page
            if page.is_last:
                return
            token = page.next_page_token
            if token in seen:
                raise TrackerBadResponse(f"Jira: the reply to {SEARCH} repeats a "
                                         "nextPageToken; the search was stopped")
            seen.add(token)

    def _issue_path(self, key: str, tail: str) -> str:
        return f"/rest/api/3/issue/{urllib.parse.quote(key, safe='')}/{tail}"

    def transitions(self, key: str) -> list[dict]:
        """[{id, name, to}] the issue can take now."""
        path = self._issue_path(key, "transitions")
        data = self.http.request("GET", path).data
        if not isinstance(data, dict) or not isinstance(data.get("transitions"), list):
            raise TrackerBadResponse(f"Jira: the reply to {path} has no transitions list")
        return [t for t in data["transitions"] if isinstance(t, dict)
                and isinstance(t.get("id"), (str, int)) and isinstance(t.get("name"), str)]

    def transition(self, key: str, transition_id: str) -> None:
        self.http.request("POST", self._issue_path(key, "transitions"),
                          body={"transition": {"id": str(transition_id)}})

    def comment(self, key: str, text: str) -> str | None:
        """Post a comment (plain text, sent as ADF); returns its id."""
        data = self.http.request("POST", self._issue_path(key, "comment"),
                                 body={"body": adf.from_text(text)}).data
        return str(data.get("id")) if isinstance(data, dict) and data.get("id") else None

    def close(self) -> None:
        self.http.close()
