"""Reading session metrics from agent transcripts.

200 sessions, each with a Claude Code transcript of 10,000 lines in the real format (records
as 2.1.197 writes them: user prompts, tool results, attachments, assistant responses written
as two records per response with the same message id), read by planeai's MetricsCollector:

1. first read: every session's transcript found, read whole, tokens and cost saved;
2. incremental re-read after every transcript grew by 20 lines;
3. re-read with nothing new (what every observer tick costs).

Anchor, same run: a bare loop that ``json.loads`` every line of the same files (what a
non-incremental reader pays on every pass). Medians of --repeat runs; the files are in the
page cache (written just before), so this measures CPU, not the disk.

    python bench/bench_metrics.py [--sessions 200] [--lines 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

GIT = {"GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "b",
       "GIT_COMMITTER_EMAIL": "b@b"}


def _ts(t: datetime) -> str:
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def transcript_lines(cwd: str, n: int, t0: datetime) -> list[str]:
    """``n`` records shaped like Claude Code 2.1.197's (fields and nesting as measured)."""
    sid = str(uuid.uuid4())
    base = {"isSidechain": False, "userType": "external", "entrypoint": "cli", "cwd": cwd,
            "sessionId": sid, "version": "2.1.197", "gitBranch": "planeai/PLA-1"}
    out, parent, i = [], None, 0
    while len(out) < n:
        t = _ts(t0 + timedelta(milliseconds=len(out)))
        kind = i % 4
        if kind == 0:
            rec = {"parentUuid": parent, **base, "type": "user", "uuid": str(uuid.uuid4()),
                   "timestamp": t, "promptId": str(uuid.uuid4()), "permissionMode": "default",
                   "message": {"role": "user", "content": "Please fix the failing test in "
                               "tests/test_parser.py and run the suite again."}}
            out.append(rec)
        elif kind == 1:
            mid = f"msg_{uuid.uuid4().hex[:24]}"
            usage = {"input_tokens": 3 + i % 7, "cache_creation_input_tokens": 250 + i,
                     "cache_read_input_tokens": 18000 + 10 * i, "output_tokens": 120 + i % 50,
                     "server_tool_use": {"web_search_requests": 0, "web_fetch_requests": 0},
                     "service_tier": "standard",
                     "cache_creation": {"ephemeral_1h_input_tokens": 0,
                                        "ephemeral_5m_input_tokens": 250 + i},
                     "inference_geo": "", "iterations": [], "speed": "standard"}
            for block in ({"type": "text", "text": "Let me look at the parser first; the "
                           "failure points at the tokenizer's handling of escapes."},
                          {"type": "tool_use", "id": f"toolu_{uuid.uuid4().hex[:24]}",
                           "name": "Bash", "input": {"command": "python -m pytest -q -x "
                                                     "tests/test_parser.py",
                                                     "description": "Run the parser tests"}}):
                # key order as 2.1.197 writes an assistant record
                out.append({"parentUuid": parent, "isSidechain": False,
                            "message": {"id": mid, "type": "message", "role": "assistant",
                                        "model": "claude-sonnet-4-6", "content": [block],
                                        "stop_reason": "tool_use", "stop_sequence": None,
                                        "usage": usage, "stop_details": None},
                            "requestId": f"req_{uuid.uuid4().hex[:24]}", "type": "assistant",
                            "uuid": str(uuid.uuid4()), "timestamp": t, **base})
        elif kind == 2:
            out.append({"parentUuid": parent, **base, "type": "user", "uuid": str(uuid.uuid4()),
                        "timestamp": t, "toolUseResult": {"stdout": "." * 40 + "\n1 failed",
                                                          "stderr": "", "interrupted": False},
                        "message": {"role": "user", "content": [
                            {"type": "tool_result", "tool_use_id": "toolu_x",
                             "content": "F" + "." * 39 + "\nFAILED tests/test_parser.py::"
                                        "test_escapes - AssertionError", "is_error": False}]}})
        else:
            out.append({"parentUuid": parent, **base, "type": "attachment",
                        "uuid": str(uuid.uuid4()), "timestamp": t,
                        "attachment": {"type": "todo_reminder", "content": [], "itemCount": 0}})
        parent = out[-1]["uuid"]
        i += 1
    return [json.dumps(r, separators=(",", ":")) + "\n" for r in out[:n]]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=200)
    ap.add_argument("--lines", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="pmb-") as tmp:
        tmp = Path(tmp)
        os.environ["PLANEAI_HOME"] = str(tmp / "planeai")
        os.environ["HOME"] = str(tmp / "home")
        os.environ.update(GIT)
        repo = tmp / "repo"
        subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
        (repo / "f").write_text("x")
        subprocess.run(["git", "-C", str(repo), "add", "."], check=True)
        subprocess.run(["git", "-C", str(repo), "commit", "-qm", "i"], check=True)
        from planeai import config
        from planeai.agents_usage.claude import project_dir_name
        from planeai.paths import locations
        from planeai.services.context import open_store
        from planeai.services.metrics import MetricsCollector
        from planeai.services.projects import add_project
        from planeai.services.sessions import SessionManager

        store = open_store(locations())
        project, _ = add_project(store, repo)
        cfg = config.load(user_file=None, env={})
        m = SessionManager(store, cfg, locations())
        collector = MetricsCollector(store, cfg, m.registry)
        sessions, files = [], []
        size = 0
        for i in range(a.sessions):
            cwd = str(tmp / "worktrees" / f"PLA-{i + 1}")
            s = store.add_session(id=uuid.uuid4().hex[:8], name=f"s{i}", project=project,
                                  task_key=None, provider="claude", variant="sonnet",
                                  backend="local", worktree=cwd, branch=None, autonomous=False,
                                  argv=["claude"])
            # running (never final): every pass reads, as for live sessions
            sessions.append(store.update_session(s.id, state="running"))
            d = Path(os.environ["HOME"]) / ".claude" / "projects" / project_dir_name(cwd)
            d.mkdir(parents=True)
            f = d / f"{uuid.uuid4()}.jsonl"
            # records start after their session did (writing 200 of them takes a while)
            started = datetime.now(timezone.utc)
            data = "".join(transcript_lines(cwd, a.lines, started + timedelta(seconds=1)))
            f.write_text(data)
            size += len(data)
            files.append((f, cwd, started))
        print(f"{a.sessions} sessions x {a.lines} lines, {size / 1e6:.0f} MB of transcripts")

        def reset() -> None:
            with store.write() as c:
                c.execute("DELETE FROM session_metrics")

        first, grown, idle, naive = [], [], [], []
        for _ in range(a.repeat):
            reset()
            t = time.perf_counter()
            rows = collector.update_all(sessions)
            first.append(time.perf_counter() - t)
            assert all(r.tokens and r.tokens.output > 0 for r in rows)
            for f, cwd, started in files:
                with f.open("a") as fh:
                    fh.write("".join(transcript_lines(cwd, 20, started + timedelta(seconds=2))))
            t = time.perf_counter()
            collector.update_all(sessions)
            grown.append(time.perf_counter() - t)
            t = time.perf_counter()
            collector.update_all(sessions)
            idle.append(time.perf_counter() - t)
            t = time.perf_counter()
            for f, _, _ in files:
                with f.open("rb") as fh:
                    for line in fh:
                        json.loads(line)
            naive.append(time.perf_counter() - t)
        med = statistics.median
        print(f"first read (find, read all, save): {med(first) * 1000:8.0f} ms "
              f"({med(first) / a.sessions * 1000:.1f} ms per session)")
        print(f"re-read after +20 lines each:      {med(grown) * 1000:8.0f} ms "
              f"({med(grown) / a.sessions * 1000:.2f} ms per session)")
        print(f"re-read, nothing new:              {med(idle) * 1000:8.0f} ms "
              f"({med(idle) / a.sessions * 1000:.2f} ms per session)")
        print(f"anchor: json.loads of every line:  {med(naive) * 1000:8.0f} ms")
        m.close()
        store.close()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
