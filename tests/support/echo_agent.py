"""A minimal stand-in agent CLI: prints the prompt it was started with, then echoes what it
is sent, literally. Tests use it where a real agent is not the point: unlike the `shell`
provider (which planeai never hands text to), it executes nothing it reads."""

from __future__ import annotations

import sys


def main() -> int:
    if len(sys.argv) > 1:
        print("prompt: " + sys.argv[1], flush=True)
    while True:
        sys.stdout.write("> ")
        sys.stdout.flush()
        line = sys.stdin.readline()
        if not line:
            return 0
        print("got: " + line.rstrip("\r\n"), flush=True)


if __name__ == "__main__":
    sys.exit(main())
