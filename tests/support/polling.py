"""The tests' one polling helper, and the one place their default deadline comes from.

Everything that waits for something to happen (a pane to show text, a session to end, an app
to refresh) polls through :func:`retry_until` or :func:`retry_until_async` with a deadline
from :class:`Deadline`, so a slow machine is handled by changing DEADLINE here, not in every
test.
"""

from __future__ import annotations

import time
from typing import Awaitable, Callable, Generator, TypeVar

T = TypeVar("T")

# Seconds a test waits for a condition unless it says otherwise.
DEADLINE = 30.0


class Deadline:
    """A point ``timeout`` seconds from now (DEADLINE by default), on the monotonic clock."""

    def __init__(self, timeout: float | None = None) -> None:
        self.timeout = DEADLINE if timeout is None else timeout
        self.at = time.monotonic() + self.timeout

    @property
    def passed(self) -> bool:
        return time.monotonic() >= self.at

    def remaining(self) -> float:
        return max(0.0, self.at - time.monotonic())

    def failure(self, message: str, last: object, error: type[Exception] = AssertionError
                ) -> Exception:
        """The error to raise when the deadline passed with ``last`` still falsy."""
        return error(f"timed out after {self.timeout}s waiting for {message}; last={last!r}")


def _polls(fn: Callable[[], T], timeout: float | None, message: str,
           error: type[Exception]) -> Generator[None, None, T]:
    """Call ``fn`` once per step; yield (the caller waits) while it is falsy, return its value
    when truthy, raise ``error`` once the deadline has passed."""
    deadline = Deadline(timeout)
    while True:
        last = fn()
        if last:
            return last
        if deadline.passed:
            raise deadline.failure(message, last, error)
        yield


def retry_until(fn: Callable[[], T], timeout: float | None = None, interval: float = 0.02,
                message: str = "condition", error: type[Exception] = AssertionError) -> T:
    """Call ``fn`` until it returns something truthy and return that; raise ``error`` (an
    AssertionError unless told) once the deadline has passed."""
    polls = _polls(fn, timeout, message, error)
    try:
        while True:
            next(polls)
            time.sleep(interval)
    except StopIteration as done:
        return done.value


async def retry_until_async(fn: Callable[[], T], pause: Callable[[float], Awaitable[object]],
                            timeout: float | None = None, interval: float = 0.02,
                            message: str = "condition") -> T:
    """:func:`retry_until` for async tests: ``await pause(interval)`` between calls (e.g. a
    Textual pilot's pause, so the app runs while the test waits)."""
    polls = _polls(fn, timeout, message, AssertionError)
    try:
        while True:
            next(polls)
            await pause(interval)
    except StopIteration as done:
        return done.value
