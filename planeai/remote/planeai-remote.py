#!/usr/bin/env python3
"""`planeai` on a host that runs planeai's sessions over SSH (installed by planeai as
ROOT/bin/planeai; the planeai package is not there). The board lives on the user's machine:
this sends the command to planeai's relay over the socket the SSH connection forwards
(PLANEAI_RELAY_SOCKET), with the session's token (PLANEAI_RELAY_TOKEN), and prints the answer.
Only the board's commands (``task ...``) are served. Python 3 standard library only.
"""

import json
import os
import socket
import sys

TIMEOUT = 120.0  # the relay gives up on a command after ~110 s
NO_BOARD = ("planeai: error: no connection to the planeai board (is the user's planeai "
            "reachable over SSH?)")


def fail(message):
    sys.stderr.write(message + "\n")
    return 1


def main(argv):
    path = os.environ.get("PLANEAI_RELAY_SOCKET", "")
    token = os.environ.get("PLANEAI_RELAY_TOKEN", "")
    if not path or not token:
        return fail(NO_BOARD)
    request = json.dumps({"token": token, "argv": argv}).encode("utf-8") + b"\n"
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    except OSError as e:
        return fail("planeai: error: cannot make a socket: %s" % e)
    data = b""
    try:
        sock.settimeout(TIMEOUT)
        try:
            sock.connect(path)
        except OSError:  # no socket file, or nobody listens behind it (connection gone)
            return fail(NO_BOARD)
        try:
            sock.sendall(request)
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except socket.timeout:
            return fail("planeai: error: the planeai board did not answer in %d s" % TIMEOUT)
        except OSError:
            return fail(NO_BOARD)
    finally:
        sock.close()
    try:
        answer = json.loads(data.decode("utf-8"))
        rc, out, err = int(answer["rc"]), str(answer["out"]), str(answer["err"])
    except (ValueError, KeyError, TypeError):
        return fail(NO_BOARD if not data else "planeai: error: the planeai board answered "
                    "something this client does not understand")
    sys.stdout.write(out)
    sys.stdout.flush()
    sys.stderr.write(err)
    return rc


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(130)
