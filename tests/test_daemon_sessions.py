"""The shared session tests (tests/test_sessions.py), run on the daemon backend.

Every test there that takes the ``kind`` fixture runs here with ``kind = "daemon"``: the same
SessionManager code, a real daemon started on demand in this test's PLANEAI_HOME, stopped at
teardown.
"""

from __future__ import annotations

import inspect
import os

import pytest

import test_sessions as shared
from planeai.backends.daemon import daemon_paths
from planeai.backends.daemon.client import daemon_pid, stop_daemon

project = shared.project

for _name, _fn in inspect.getmembers(shared, inspect.isfunction):
    if _name.startswith("test_") and "kind" in inspect.signature(_fn).parameters:
        globals()[_name] = _fn


@pytest.fixture(autouse=True)
def _stop_daemon(planeai_home):
    yield
    paths = daemon_paths()
    stop_daemon(paths, timeout=10)
    pid = daemon_pid(paths)
    if pid and pid > 0:
        os.kill(pid, 9)


@pytest.fixture
def kind():
    return "daemon"


@pytest.fixture
def mgr(kind):
    m = shared._manager(kind)
    yield m
    m.close()
