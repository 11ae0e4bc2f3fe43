"""A headless dispatcher SIGKILLed at random points, over and over: no task runs twice (by the
agents' own start log) and none is lost. Real processes throughout: `planeai dispatch run` on
a private tmux server, agents that call `planeai task done` themselves."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from conftest import make_repo, planeai_cmd, retry_until

from planeai.core.models import Status
from planeai.services import tasks as task_svc
from planeai.services.context import open_store
from planeai.services.projects import add_project

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")

# The agent: logs its own start (the evidence), works briefly, then reports done itself
# (task numbers ending in 3, 6, 9) or just exits 0, which is success too (the others).
AGENT = ('printf "%s start %s\\n" "$PLANEAI_TASK_KEY" "$$" >> "$CRASH_LOG"; sleep 1; '
         'case "$PLANEAI_TASK_KEY" in *[369]) planeai task done >/dev/null;; esac; '
         'printf "%s end\\n" "$PLANEAI_TASK_KEY" >> "$CRASH_LOG"')


def write_provider(providers_dir: Path, log: Path) -> None:
    providers_dir.mkdir(parents=True, exist_ok=True)
    # {prompt} is taken (and ignored) as $1, so nothing is pasted into the agent later
    (providers_dir / "crashy.toml").write_text(
        'name = "crashy"\nbinary = "sh"\n'
        f'command = ["/bin/sh", "-c", {AGENT!r}, "crashy", "{{prompt}}"]\n'
        f'env = {{ CRASH_LOG = "{log}" }}\n')


def dispatcher_env(tmp_path: Path, planeai_home: Path, socket: str, tmux_tmp: Path,
                   **dispatch) -> dict:
    cfg = tmp_path / "planeai.toml"
    extra = "".join(f"{k} = {v}\n" for k, v in dispatch.items())
    cfg.write_text(f'[defaults]\nprovider = "crashy"\n[tmux]\nsocket = "{socket}"\n'
                   '[dispatch]\nbackend = "tmux"\npoll_interval = 0.1\n' + extra)
    home = tmp_path / "user-home"
    home.mkdir(exist_ok=True)
    return {**os.environ, "PLANEAI_HOME": str(planeai_home), "PLANEAI_CONFIG": str(cfg),
            "TMUX_TMPDIR": str(tmux_tmp), "HOME": str(home)}


def created_after(mark: int, timeout: float) -> bool:
    """Wait (up to ``timeout``) for a session reserved after event ``mark``."""
    deadline = time.monotonic() + timeout
    with open_store() as s:
        while time.monotonic() < deadline:
            if any(e.kind == "session.created" for e in s.events(after=mark)):
                return True
            time.sleep(0.001)
    return False


def starts(log: Path) -> Counter:
    lines = log.read_text().splitlines() if log.exists() else []
    return Counter(ln.split()[0] for ln in lines if ln.split()[1:2] == ["start"])


def test_fifty_random_sigkills_run_every_task_exactly_once(tmp_path, planeai_home,
                                                          private_tmux):
    socket, tmux_tmp = private_tmux
    log = tmp_path / "agents.log"
    write_provider(planeai_home / "config" / "providers", log)
    repo = make_repo(tmp_path / "crashrepo")
    with open_store() as s:
        project, _ = add_project(s, repo)
    keys: list[str] = []

    def keep_work_queued() -> None:
        """Work never runs out while the kills go on: at least 4 tasks not done yet."""
        with open_store() as s:
            left = sum(s.get_task(k).status is not Status.DONE for k in keys)
            for _ in range(4 - left):
                keys.append(task_svc.add_task(s, project, f"job {len(keys)}").key)

    env = dispatcher_env(tmp_path, planeai_home, socket, tmux_tmp, max_sessions=3)
    cmd = planeai_cmd() + ["dispatch", "run"]
    rng = random.Random(int(os.environ.get("PLANEAI_CRASH_SEED", time.time_ns())))
    kills = 0
    out = open(tmp_path / "dispatchers.log", "ab")
    try:
        while kills < 50:
            keep_work_queued()
            with open_store() as s:
                mark = s.last_event_id()
            p = subprocess.Popen(cmd, env=env, stdout=out, stderr=out)
            if kills % 2:
                # random points anywhere: start-up, reconcile, judging, dispatching
                time.sleep(rng.uniform(0.25, 1.6))
            else:
                # random points soon after a session is reserved: its worktree, the spawn,
                # recording it (a window of milliseconds to some tenths)
                created_after(mark, timeout=2.0)
                time.sleep(rng.uniform(0.0, rng.choice((0.005, 0.02, 0.2))))
            p.send_signal(signal.SIGKILL)
            p.wait()
            kills += 1
        assert len(keys) >= 12
        last = subprocess.run(cmd + ["--exit-when-idle"], env=env, capture_output=True,
                              text=True, timeout=120)
        assert last.returncode == 0, last.stderr
        # the agents report done themselves, a moment after the dispatcher sees them exit
        with open_store() as s:
            retry_until(lambda: all(s.get_task(k).status is Status.DONE for k in keys),
                        message="every task done")
            events = s.events(limit=100_000)
    finally:
        out.close()
    started = starts(log)
    twice = {k: n for k, n in started.items() if n > 1}
    assert not twice, (f"tasks started more than once after {kills} kills: {twice}\n"
                       + log.read_text())
    assert sorted(started) == sorted(keys)
    # the interrupted starts were re-queued without counting as failures of their tasks
    assert not [e for e in events if e.kind == "dispatch.failed"], \
        [(e.task_key, e.data) for e in events if e.kind == "dispatch.failed"]


# --------------------------------------------------------------------------- the lease

def slow_checkout_repo(tmp_path: Path, seconds: int) -> tuple[Path, Path]:
    """A repo whose every checkout takes ``seconds``: a file behind a smudge filter defined
    in the user's global git config, the way git-lfs fetches big files (planeai leaves
    global filters working). Returns (repo, the global config file)."""
    repo = make_repo(tmp_path / "slowrepo")
    (repo / ".gitattributes").write_text("*.bin filter=slowfetch\n")
    (repo / "model.bin").write_bytes(b"\0" * 1024)
    subprocess.run(["git", "-C", str(repo), "add", "."], check=True)
    subprocess.run(["git", "-C", str(repo), "commit", "-qm", "a big file"], check=True)
    gitconfig = tmp_path / "global.gitconfig"
    gitconfig.write_text(f'[filter "slowfetch"]\n\tsmudge = sleep {seconds}; cat\n'
                         '\tclean = cat\n')
    return repo, gitconfig


def lease_events(s) -> list:
    return [e for e in s.events(limit=100_000) if e.kind == "dispatch.lease"]


def holder_pid(e) -> int:
    return int(e.data["holder"].split(":")[1])


def per_task(events, kind: str) -> Counter:
    return Counter(e.task_key for e in events if e.kind == kind)


def two_jobs_on_a_slow_repo(tmp_path, planeai_home, private_tmux, log, *, seconds: float):
    """Two tasks in a repo whose checkouts take ``seconds``; the env a dispatcher runs in
    (two slots, agents logging their starts to ``log``)."""
    socket, tmux_tmp = private_tmux
    write_provider(planeai_home / "config" / "providers", log)
    repo, gitconfig = slow_checkout_repo(tmp_path, seconds)
    with open_store() as s:
        project, _ = add_project(s, repo)
        keys = [task_svc.add_task(s, project, f"job {i}").key for i in range(2)]
    env = {**dispatcher_env(tmp_path, planeai_home, socket, tmux_tmp, max_sessions=2),
           "GIT_CONFIG_GLOBAL": str(gitconfig)}
    return keys, env


def test_two_dispatchers_on_a_slow_repo_dispatch_each_task_once(tmp_path, planeai_home,
                                                               private_tmux):
    """A worktree takes 6 s, longer than the lease's 5 s TTL: the heartbeat keeps the lease
    with the dispatcher that is busy making it, so the second one never takes over."""
    log = tmp_path / "agents.log"
    keys, env = two_jobs_on_a_slow_repo(tmp_path, planeai_home, private_tmux, log, seconds=6)
    cmd = planeai_cmd() + ["dispatch", "run", "--exit-when-idle"]
    first = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    second = None
    try:
        with open_store() as s:
            retry_until(lambda: lease_events(s), message="the first dispatcher leading")
        second = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        out1, err1 = first.communicate(timeout=120)
        out2, err2 = second.communicate(timeout=60)
    finally:
        for p in (first, second):
            if p is not None and p.poll() is None:
                p.kill()
    assert first.returncode == 0 and second.returncode == 0, (err1, err2)
    with open_store() as s:
        events = s.events(limit=100_000)
        assert all(s.get_task(k).status is Status.DONE for k in keys)
        sessions = Counter(x.task_key for x in s.list_sessions())
    leaders = [holder_pid(e) for e in events if e.kind == "dispatch.lease"]
    assert leaders[0] == first.pid and second.pid not in leaders[:-1], leaders
    assert per_task(events, "dispatch.dispatched") == Counter(keys), out1 + out2
    assert sessions == Counter(keys)
    assert starts(log) == Counter(keys)
    assert "dispatched" not in out2 and "Traceback" not in err1 + err2


def test_a_stalled_dispatcher_is_fenced_off_and_kills_nothing(tmp_path, planeai_home,
                                                              private_tmux):
    """The leader freezes (SIGSTOP) while making a worktree; its lease expires and a second
    dispatcher takes over. Resumed, the stale one's writes are refused: it starts no agent,
    judges and kills nothing, and goes back to waiting. Every task still runs exactly once."""
    log = tmp_path / "agents.log"
    keys, env = two_jobs_on_a_slow_repo(tmp_path, planeai_home, private_tmux, log, seconds=2)
    cmd = planeai_cmd() + ["dispatch", "run"]
    stale = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    new = None
    try:
        with open_store() as s:
            retry_until(lambda: any(e.kind == "session.created" for e in s.events()),
                        message="the first session reserved")
            stale.send_signal(signal.SIGSTOP)  # mid-worktree: its heartbeat stops too
            new = subprocess.Popen(cmd + ["--exit-when-idle"], env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            retry_until(lambda: any(holder_pid(e) == new.pid for e in lease_events(s)),
                        timeout=60, message="the second dispatcher taking over")
            stale.send_signal(signal.SIGCONT)
            out_new, err_new = new.communicate(timeout=120)
            assert new.returncode == 0, err_new
            retry_until(lambda: all(s.get_task(k).status is Status.DONE for k in keys),
                        message="every task done")
            events = s.events(limit=100_000)
            sessions = s.list_sessions()
        assert stale.poll() is None  # still alive: waiting for the lease again
    finally:
        for p in (stale, new):
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGCONT)
                p.terminate()
        out_stale, err_stale = stale.communicate(timeout=30)
    assert "stopped dispatching: the dispatch lease was taken over" in out_stale, \
        (out_stale, err_stale)
    assert "Traceback" not in err_stale + err_new
    assert starts(log) == Counter(keys), log.read_text()
    # the stale leader's reservation was given up, never run, and re-queued without a failure
    first = next(x for x in sessions if x.name == keys[0])
    assert first.outcome == "aborted" and first.pid is None
    assert not [e for e in events if e.kind in ("dispatch.failed", "session.stopped")]
    # refused is not broken: the stale one recorded no error, it stood down
    assert not [e for e in events if e.kind == "dispatch.error"]
