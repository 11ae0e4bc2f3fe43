"""A small JSON-over-HTTPS client for the tracker integrations (Jira, Plane), on urllib.

Every failure is a TrackerError with one line that says what to do: 401/403 (check the
credentials), 5xx (the service failed), a reply that is not JSON (named with the URL path),
a network error. 429 and 503 with ``Retry-After`` are waited out (at most ``max_wait``
seconds each time, ``retries`` times) before giving up. Nothing here logs or prints a header,
so a token never reaches a terminal.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Callable

from planeai.errors import PlaneaiError

TIMEOUT = 30.0        # seconds per request (connect and each read)
MAX_WAIT = 60.0       # the longest Retry-After honoured at once
RETRIES = 4           # throttled answers waited out before giving up
BODY_MAX = 32 * 1024 * 1024


class TrackerError(PlaneaiError):
    """A tracker request failed; ``status`` is the HTTP status when there was one."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class TrackerAuthError(TrackerError):
    """401 or 403: the credentials are wrong or lack the permission."""


class TrackerServerError(TrackerError):
    """5xx: the service failed (after the retries a Retry-After allowed)."""


class TrackerThrottled(TrackerError):
    """429 (or 503) still after the retries, or a Retry-After longer than allowed."""


class TrackerBadResponse(TrackerError):
    """The reply is not the JSON the API documents."""


class TrackerConfigError(TrackerError):
    """The tracker is not configured (no url, email or token)."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are refused: urllib would resend the Authorization header to wherever a
    Location points (another host included), and turn a POST into a GET."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


@dataclass
class Response:
    status: int
    data: Any          # parsed JSON, or None for an empty body (204)
    headers: dict[str, str]


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        from datetime import datetime, timezone

        when = parsedate_to_datetime(value)
        return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())
    except (TypeError, ValueError):
        return None


class HttpClient:
    """JSON requests to one base URL with fixed headers (auth)."""

    def __init__(self, base_url: str, headers: dict[str, str], *, service: str,
                 timeout: float = TIMEOUT, max_wait: float = MAX_WAIT, retries: int = RETRIES,
                 auth_hint: str = "check the credentials",
                 sleep: Callable[[float], Any] | None = None) -> None:
        self.base = base_url.rstrip("/")
        self.headers = {"Accept": "application/json", "User-Agent": "planeai", **headers}
        self.service = service          # "Jira", "Plane": how errors name it
        self.timeout, self.max_wait, self.retries = timeout, max_wait, retries
        self.auth_hint = auth_hint
        self._stop = threading.Event()
        self._sleep = sleep or self._stop.wait
        self.waited = 0.0               # seconds spent waiting out Retry-After

    def request(self, method: str, path: str, *, body: Any = None,
                params: dict[str, str] | None = None) -> Response:
        url = self.base + path
        if params:
            url += "?" + urllib.parse.urlencode(params)
        data = None if body is None else json.dumps(body).encode("utf-8")
        headers = dict(self.headers)
        if data is not None:
            headers["Content-Type"] = "application/json"
        attempt = 0
        while True:
            if self._stop.is_set():
                raise TrackerError(f"{self.service}: {method} {path}: the client was closed")
            req = urllib.request.Request(url, data=data, method=method, headers=headers)
            try:
                with _OPENER.open(req, timeout=self.timeout) as resp:
                    return self._parse(path, resp.status, resp.read(BODY_MAX + 1),
                                       dict(resp.headers.items()))
            except urllib.error.HTTPError as e:
                status, hdrs = e.code, dict(e.headers.items()) if e.headers else {}
                try:
                    raw = e.read(64 * 1024)
                except OSError:
                    raw = b""
                hinted = retry_after(hdrs.get("Retry-After"))
                wait = hinted
                if status == 429 and wait is None:  # throttled without a hint: back off
                    wait = min(self.max_wait, 2.0 ** attempt)
                if status in (429, 503) and attempt < self.retries and wait is not None \
                        and wait <= self.max_wait:
                    attempt += 1
                    self.waited += wait
                    self._sleep(wait)
                    if self._stop.is_set():
                        raise TrackerError(f"{self.service}: {method} {path}: stopped while "
                                           "waiting out a Retry-After") from None
                    continue
                if 300 <= status < 400:
                    where = _short(hdrs.get("Location") or "elsewhere")
                    raise TrackerError(
                        f"{self.service}: {method} {path} was redirected (HTTP {status}) to "
                        f"{where}; not followed: set the url to the site itself",
                        status=status) from None
                raise self._http_error(method, path, status, raw, hinted) from None
            except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError,
                    http.client.HTTPException, OSError) as e:
                reason = getattr(e, "reason", None) or e
                raise TrackerError(f"{self.service}: {method} {path} failed: {reason}") from None

    def _parse(self, path: str, status: int, raw: bytes, headers: dict) -> Response:
        if len(raw) > BODY_MAX:
            raise TrackerBadResponse(f"{self.service}: the reply to {path} is over "
                                     f"{BODY_MAX // (1024 * 1024)} MiB", status=status)
        if not raw.strip():
            return Response(status, None, headers)
        try:
            return Response(status, json.loads(raw.decode("utf-8")), headers)
        except (UnicodeDecodeError, ValueError, RecursionError):  # nesting past the stack
            raise TrackerBadResponse(
                f"{self.service}: the reply to {path} (HTTP {status}) is not valid JSON",
                status=status) from None

    def _http_error(self, method: str, path: str, status: int, raw: bytes,
                    wait: float | None) -> TrackerError:
        detail = _messages(raw)
        tail = f": {detail}" if detail else ""
        if status in (401, 403):
            what = "not authorised" if status == 401 else "forbidden"
            return TrackerAuthError(f"{self.service}: {method} {path}: {what} (HTTP {status});"
                                    f" {self.auth_hint}{tail}", status=status)
        if status == 429:
            after = f" (Retry-After {wait:.0f}s)" if wait is not None else ""
            return TrackerThrottled(f"{self.service}: {method} {path}: rate limited "
                                    f"(HTTP 429){after}; try again later", status=status)
        if status >= 500:
            return TrackerServerError(f"{self.service}: {method} {path}: the server failed "
                                      f"(HTTP {status}); try again later{tail}", status=status)
        return TrackerError(f"{self.service}: {method} {path}: HTTP {status}{tail}",
                            status=status)

    def close(self) -> None:
        """End a Retry-After wait under way (its request fails); no request after this."""
        self._stop.set()


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _messages(raw: bytes) -> str:
    """The error text of a Jira/Plane error body (errorMessages, errors, detail), short."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return ""
    parts: list[str] = []
    if isinstance(data, dict):
        msgs = data.get("errorMessages")
        if isinstance(msgs, list):
            parts += [str(m) for m in msgs]
        errs = data.get("errors")
        if isinstance(errs, dict):
            parts += [f"{k}: {v}" for k, v in errs.items()]
        for k in ("detail", "error", "message"):
            if isinstance(data.get(k), str):
                parts.append(data[k])
    return "; ".join(parts)[:300]
