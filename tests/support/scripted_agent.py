"""A scripted agent CLI for dispatcher tests: a real process in a real session.

It reads what to do from its task's description (through the real `planeai task show`),
logs start/end to $SCRIPTED_AGENT_LOG, and acts like an interactive agent: works, then
waits at a "> " prompt. Instructions, one per line:
  write FILE        write FILE (content: the task key), git commit it, run `planeai task done`
  subtask TITLE     run `planeai task add TITLE` (a subtask that writes a file and is done)
  exit N            exit with code N
  sleep S           stay busy (printing a spinner line) for S seconds
  silent-busy       print a busy marker once and go silent forever
  idle              just sit at the prompt
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time


def log(what: str) -> None:
    path = os.environ.get("SCRIPTED_AGENT_LOG")
    if path:
        with open(path, "a") as f:
            f.write(f"{time.time():.3f} {what} {os.environ.get('PLANEAI_TASK_KEY')}\n")


def planeai(*args: str) -> str:
    return subprocess.run(["planeai", *args], check=True, capture_output=True,
                          text=True).stdout


def main() -> int:
    key = os.environ["PLANEAI_TASK_KEY"]
    log("start")
    task = json.loads(planeai("task", "show", key, "--json"))
    print(f"working on {key}: {task['title']}", flush=True)
    for line in task["description"].splitlines():
        cmd, _, arg = line.strip().partition(" ")
        if cmd == "sleep":
            end = time.time() + float(arg)
            while time.time() < end:
                print("* working... (esc to interrupt)", flush=True)
                time.sleep(0.2)
            # like real agents, the spinner goes away when the work is done
            print("\x1b[2J\x1b[H" + f"worked on {key}", flush=True)
        elif cmd == "write":
            with open(arg, "w") as f:
                f.write(key + "\n")
            subprocess.run(["git", "add", arg], check=True)
            subprocess.run(["git", "commit", "-q", "-m", f"{key}: {arg}"], check=True)
        elif cmd == "subtask":
            slug = arg.lower().replace(" ", "-")
            print("created", planeai("task", "add", arg, "-d",
                                     f"write {slug}.txt\ndone").strip(), flush=True)
        elif cmd == "done":
            log("end")
            planeai("task", "done")
        elif cmd == "exit":
            log("end")
            return int(arg)
        elif cmd == "silent-busy":
            print("* thinking (esc to interrupt)", flush=True)
            time.sleep(3600)
    print("> ", end="", flush=True)
    time.sleep(3600)
    return 0


if __name__ == "__main__":
    sys.exit(main())
