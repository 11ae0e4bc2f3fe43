"""What sessions on another machine ([hosts.NAME], over SSH) cost a user, each side by side
with the same thing done with local tmux in the same run (same agent, same repo).

Against the tests' own sshd on 127.0.0.1 (tests/support/sshd.py: needs root and
openssh-server; its second user stands in for the host, with its own tmux). The agent is the
tests' scripted agent (tests/support/scripted_agent.py): it asks the board for its task (from
the host through the relay) and prints ``working on KEY: ...``.

1. start: the CLI process ``planeai session start KEY --host box`` until the agent's first
   line shows in ``planeai session logs KEY`` (polled with the CLI, as a user would), vs the
   same with ``--backend tmux``; medians of N interleaved runs after one warm-up each (the
   cold first start there, which clones the repo and starts the relay, is shown apart).
2. idle: 30 idle sessions followed the app's way (``subscribe_activity`` on the remote
   backend: one ``list-panes`` a second; ``subscribe`` on local tmux: a watcher each) for
   WINDOW seconds in alternating rounds: CPU of this machine's side (this process with its
   control clients, the ssh master, the relay) and of the host's (sshd's children, the host
   user's tmux server and agents), vs this process and the local tmux server.
3. sshd connections (Sshd.connections()) with the 30 sessions followed: expect 1.

    python bench/bench_remote.py [--runs 7] [--sessions 30] [--window 30] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from support.sshd import Sshd, sshd_problem  # noqa: E402

AGENT = ROOT / "tests" / "support" / "scripted_agent.py"
TICK = os.sysconf("SC_CLK_TCK")
GIT = {"GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "b",
       "GIT_COMMITTER_EMAIL": "b@b"}


# ---- processes, from /proc


def _stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as f:
            return f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _parents() -> dict[int, int]:
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (st := _stat(int(entry))):
            out[int(entry)] = int(st[1])
    return out


def tree(*roots: int | None) -> set[int]:
    """``roots`` and all their descendants."""
    parents = _parents()
    found = {r for r in roots if r}
    grew = True
    while grew:
        more = {p for p, pp in parents.items() if pp in found and p not in found}
        found |= more
        grew = bool(more)
    return found


def user_procs(user: str) -> set[int]:
    uid = pwd.getpwnam(user).pw_uid
    out = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    out.add(int(entry))
            except OSError:
                pass
    return out


def cpu_ns(pids: set[int]) -> dict[int, int]:
    """CPU time of each live pid in ns: its threads' (schedstat: exact, where the clock-tick
    counts of /proc/PID/stat round a poll's few ms away) plus its reaped children's (ticks:
    a command it ran in the window counts too)."""
    out = {}
    for pid in pids:
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        st = _stat(pid)
        if not st:
            continue
        total = (int(st[13]) + int(st[14])) * 10**9 // TICK
        for t in tasks:
            try:
                with open(f"/proc/{pid}/task/{t}/schedstat") as f:
                    total += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass
        out[pid] = total
    return out


class Window:
    """CPU of named groups of processes over a window (groups fixed at its start)."""

    def __init__(self, groups: dict[str, set[int]]) -> None:
        self.groups = groups
        self.before = {g: cpu_ns(p) for g, p in groups.items()}
        self.t0 = time.monotonic()

    def end(self) -> tuple[float, dict[str, float], dict[str, int]]:
        """Wall seconds, CPU seconds and live processes of each group."""
        wall = time.monotonic() - self.t0
        used, count = {}, {}
        for g, pids in self.groups.items():
            after = cpu_ns(pids)
            used[g] = sum(after[p] - self.before[g].get(p, after[p]) for p in after) / 1e9
            count[g] = len(after)
        return wall, used, count


# ---- the CLI, as a user runs it


def cli(env: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, "-m", "planeai", *args], env=env, capture_output=True,
                       text=True, timeout=300, stdin=subprocess.DEVNULL)
    if check and r.returncode != 0:
        raise SystemExit(f"planeai {' '.join(args)} failed: {r.stderr.strip()}")
    return r


def one_start(env: dict, key: str, where: list[str]) -> float:
    """`session start` until the agent's first line is in `session logs` (seconds)."""
    t0 = time.perf_counter()
    cli(env, "session", "start", key, *where)
    while f"working on {key}" not in cli(env, "session", "logs", key, check=False).stdout:
        if time.perf_counter() - t0 > 120:
            raise SystemExit(f"{key}: no first output in 120 s")
    took = time.perf_counter() - t0
    cli(env, "session", "stop", key)
    return took


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--sessions", type=int, default=30)
    ap.add_argument("--window", type=float, default=30.0, help="seconds of idle per side")
    ap.add_argument("--rounds", type=int, default=3, help="alternations the window is cut in")
    args = ap.parse_args()
    problem = sshd_problem()
    if problem:
        sys.exit(f"bench_remote: {problem}")
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "planeai")],
                   check=False)
    sshd = Sshd().setup()
    agent_dir = Path("/tmp") / f"pai-agent-{uuid.uuid4().hex[:8]}"
    tmux_dir = Path("/tmp") / f"pbr-{uuid.uuid4().hex[:6]}"
    sock = f"bench-remote-{os.getpid()}"
    # a directory removed only after the relay stopped (it writes its log there)
    tmp = Path(tempfile.mkdtemp(prefix="pbr-"))
    try:
        # the host's user runs its own copy of the agent (it cannot read root's tmp)
        agent_dir.mkdir(mode=0o755)
        shutil.copy(AGENT, agent_dir / "scripted_agent.py")
        os.chmod(agent_dir / "scripted_agent.py", 0o644)
        tmux_dir.mkdir()
        user_home = tmp / "user-home"
        user_home.mkdir()
        cfg = tmp / "planeai.toml"
        box = {"ssh": sshd.target, "port": sshd.port, "ssh_config": str(sshd.client_config),
               "root": "~/.planeai-bench", "connect_timeout": 5}
        cfg.write_text('[defaults]\nprovider = "scripted"\n'
                       f'[tmux]\nsocket = "{sock}"\n[hosts.box]\n'
                       + "".join(f"{k} = {json.dumps(v)}\n" for k, v in box.items()))
        os.environ.update(GIT, PLANEAI_HOME=str(tmp / "home"), PLANEAI_CONFIG=str(cfg),
                          TMUX_TMPDIR=str(tmux_dir), HOME=str(user_home),
                          PYTHONPATH=str(ROOT))
        for var in ("TMUX", "TMUX_PANE", "PLANEAI_PROJECT", "PLANEAI_TASK_KEY",
                    "PLANEAI_SESSION_ID", "PLANEAI_WORKTREE"):
            os.environ.pop(var, None)
        env = dict(os.environ)

        from conftest import make_repo, trusted_repo_provider

        repo = make_repo(tmp / "planeai")
        trusted_repo_provider(repo, "scripted",
                              'name = "scripted"\nbinary = "python3"\n'
                              f'command = ["python3", "{agent_dir}/scripted_agent.py", '
                              '"{task.key}"]\n[status]\nbusy = ["esc to interrupt"]\n'
                              'idle = ["^> ?\\\\Z"]\n')
        cli(env, "project", "add", str(repo))

        def key(title: str) -> str:
            return cli(env, "task", "add", title, "-d", "idle", "--project",
                       "planeai").stdout.strip()

        remote_w, local_w = ["--host", "box"], ["--backend", "tmux"]
        cold = one_start(env, key("cold there"), remote_w)
        one_start(env, key("warm here"), local_w)
        there, here = [], []
        for i in range(args.runs):
            order = ((remote_w, there), (local_w, here))
            for where, out in (order if i % 2 == 0 else order[::-1]):
                out.append(one_start(env, key(f"run {i}"), where))
        results = idle_costs(args, env, sshd, sock)
    finally:
        from planeai.paths import locations
        from planeai.remote import relay

        if os.environ.get("PLANEAI_HOME") == str(tmp / "home"):  # ours, never the user's
            try:
                relay.stop_relay(locations(), "box")
            except Exception:
                pass
        subprocess.run(["tmux", "-L", sock, "kill-server"], capture_output=True,
                       env={**os.environ, "TMUX_TMPDIR": str(tmux_dir)})
        sshd.cleanup()
        for d in (agent_dir, tmux_dir, tmp):
            shutil.rmtree(d, ignore_errors=True)

    report(args, there, here, cold, *results)


def report(args, there: list[float], here: list[float], cold: float, remote, local, procs,
           conns: int, conns_cli: int) -> None:
    r, h = statistics.median(there), statistics.median(here)
    spread = lambda xs: f"{min(xs) * 1000:.0f}-{max(xs) * 1000:.0f}"  # noqa: E731
    (rw, rcpu), (lw, lcpu) = remote, local
    pct = lambda cpu, wall, groups: 100 * sum(cpu[g] for g in groups) / wall  # noqa: E731
    mine = ("this process", "ssh master", "relay")
    host = ("sshd", "tmux + agents")
    total_r, total_l = pct(rcpu, rw, rcpu), pct(lcpu, lw, lcpu)
    rows = [
        (f"start -> first output in `session logs`, median of {args.runs}", "", ""),
        (f"  --host box (runs {spread(there)} ms)", f"{r * 1000:.0f} ms", f"{r / h:.2f}x"),
        (f"  --backend tmux (anchor; runs {spread(here)} ms)", f"{h * 1000:.0f} ms", "1.00x"),
        ("  --host box, first (clone, relay)", f"{cold * 1000:.0f} ms", ""),
        (f"idle, {args.sessions} sessions followed, {rw:.0f} s each side", "% of a core",
         "procs"),
        ("  remote: this machine", f"{pct(rcpu, rw, mine):.2f}", ""),
        *[(f"    {g}", f"{pct(rcpu, rw, [g]):.2f}", str(procs['remote'][g])) for g in mine],
        ("  remote: the host", f"{pct(rcpu, rw, host):.2f}", ""),
        *[(f"    {g}", f"{pct(rcpu, rw, [g]):.2f}", str(procs['remote'][g])) for g in host],
        ("  remote: both machines", f"{total_r:.2f}",
         f"{total_r / total_l:.2f}x" if total_l else ""),
        *[(f"  local tmux (anchor): {g}", f"{pct(lcpu, lw, [g]):.2f}", str(procs['local'][g]))
          for g in lcpu],
        ("  local tmux (anchor): both", f"{total_l:.2f}", "1.00x"),
        (f"sshd connections, {args.sessions} sessions followed", str(conns), "expect 1"),
        ("  after a `session list` from the CLI too", str(conns_cli), "expect 1"),
    ]
    for a, b, c in rows:
        print(f"{a:56} {b:>12} {c:>7}")


def idle_costs(args, env: dict, sshd: Sshd, sock: str):
    """Start the sessions (in process), then alternate WINDOW/ROUNDS seconds of following
    each side's sessions the app's way."""
    from planeai import config as config_mod
    from planeai.paths import locations
    from planeai.remote import relay
    from planeai.services import tasks
    from planeai.services.context import open_store
    from planeai.services.sessions import SessionManager

    locs = locations()
    store = open_store(locs)
    cfg = config_mod.load(user_file=None, explicit=Path(env["PLANEAI_CONFIG"]), env={})
    m = SessionManager(store, cfg, locs, env=env)
    project = next(p for p in store.list_projects() if p.name == "planeai")
    remote_keys, local_keys = [], []
    try:
        for i in range(args.sessions):
            for where, keys in ((dict(host="box"), remote_keys),
                                (dict(backend="tmux"), local_keys)):
                k = tasks.add_task(store, project, f"idle {i}", description="idle").key
                m.start(task_key=k, **where)
                keys.append(k)
        deadline = time.monotonic() + 180
        while not all(m.observe(k).status.value == "idle" for k in remote_keys + local_keys):
            if time.monotonic() > deadline:
                raise SystemExit("the sessions did not all reach their prompt in 180 s")
            time.sleep(0.5)
        rbe, lbe = m.backend("host:box"), m.backend("tmux")
        me = os.getpid()
        tmux_pid = int(subprocess.run(["tmux", "-L", sock, "display", "-p", "#{pid}"],
                                      capture_output=True, text=True, env=env,
                                      check=True).stdout)
        state = relay.running(locs, "box")
        relay_pid = state["pid"] if state else None
        conns = conns_cli = 0
        spent = {"remote": [0.0, {}], "local": [0.0, {}]}
        procs: dict[str, dict[str, int]] = {"remote": {}, "local": {}}
        part = args.window / args.rounds
        for rnd in range(args.rounds):
            sides = ("remote", "local") if rnd % 2 == 0 else ("local", "remote")
            for side in sides:
                if side == "remote":
                    unsubs = [rbe.subscribe_activity(k, lambda n, d: None) for k in remote_keys]
                    while not rbe._activity_seen.keys() >= set(remote_keys):
                        time.sleep(0.05)  # the first poll: following has begun
                    mine = tree(me)
                    master = rbe.conn.master_pid()
                    host_user = user_procs(sshd.user)
                    on_sshd = tree(sshd.pid)
                    groups = {"this process": mine, "ssh master": tree(master) - mine,
                              "relay": tree(relay_pid) - mine,
                              "sshd": on_sshd,
                              "tmux + agents": host_user - on_sshd}
                else:
                    unsubs = [lbe.subscribe(k, lambda n, d: None) for k in local_keys]
                    groups = {"this process": tree(me), "tmux + agents": tree(tmux_pid)}
                w = Window(groups)
                time.sleep(part)
                wall, used, count = w.end()
                acc = spent[side]
                acc[0] += wall
                for g, s in used.items():
                    acc[1][g] = acc[1].get(g, 0.0) + s
                    procs[side][g] = max(procs[side].get(g, 0), count[g])
                if side == "remote" and rnd == 0:
                    conns = len(sshd.connections())
                    cli(env, "session", "list")
                    conns_cli = len(sshd.connections())
                for u in unsubs:
                    u()
        return (tuple(spent["remote"]), tuple(spent["local"]), procs, conns, conns_cli)
    finally:
        for k in remote_keys + local_keys:
            try:
                m.stop(k)
            except Exception:
                pass
        m.close()


if __name__ == "__main__":
    main()
