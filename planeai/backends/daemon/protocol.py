"""The daemon's wire protocol, version 1.

Every frame is a 5-byte header, ``>IB`` (payload length, frame type), then the payload:

- ``CONTROL`` (1): one UTF-8 JSON object.
  Client -> daemon requests ``{"id": N, "op": "...", ...}``; the daemon answers each with
  ``{"id": N, "ok": true, "result": ...}`` or ``{"id": N, "ok": false, "error": "..."}``, in
  order. The daemon also pushes events without an id: ``{"event": "exit", "name": ...,
  "code": ...}`` to a session's subscribers, ``{"event": "input_error", ...}`` for an INPUT
  frame it could not deliver. A refused peer gets one ``{"ok": false, "error": ...}``.
  The first request on a connection must be ``{"op": "hello", "version": 1}``.
- ``OUTPUT`` (2): raw PTY output of one session, daemon -> subscribed clients, in order:
  one byte name length, the name, then the bytes exactly as the agent wrote them.
- ``INPUT`` (3): raw bytes for a session's PTY, client -> daemon, same layout as OUTPUT. No
  answer (errors come back as an ``input_error`` event), so a typing client never waits.

A frame longer than ``MAX_FRAME``, an unknown type, bad JSON or a request before ``hello``
closes that client's connection; nothing else is affected.
"""

from __future__ import annotations

import json
import struct

VERSION = 1
MAX_FRAME = 16 * 1024 * 1024
HEADER = struct.Struct(">IB")

CONTROL = 1
OUTPUT = 2
INPUT = 3
FRAME_TYPES = (CONTROL, OUTPUT, INPUT)


class ProtocolError(Exception):
    """The peer broke the protocol: the connection is closed."""


def encode_control(msg: dict) -> bytes:
    payload = json.dumps(msg, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if len(payload) > MAX_FRAME:
        raise ProtocolError(f"control message of {len(payload)} bytes is over {MAX_FRAME}")
    return HEADER.pack(len(payload), CONTROL) + payload


def encode_data(kind: int, name: str, data: bytes) -> bytes:
    """An OUTPUT or INPUT frame (large data is split by the caller below MAX_FRAME)."""
    nb = name.encode("utf-8")
    if len(nb) > 255:
        raise ProtocolError("session name too long")
    return HEADER.pack(1 + len(nb) + len(data), kind) + bytes((len(nb),)) + nb + data


def split_data(kind: int, name: str, data: bytes, chunk: int = 1 << 20) -> list[bytes]:
    return [encode_data(kind, name, data[i:i + chunk]) for i in range(0, len(data), chunk)]


def decode_data(payload: bytes | memoryview) -> tuple[str, bytes]:
    if not payload:
        raise ProtocolError("empty data frame")
    n = payload[0]
    if len(payload) < 1 + n:
        raise ProtocolError("data frame shorter than its name")
    try:
        name = bytes(payload[1:1 + n]).decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("session name is not UTF-8") from None
    return name, bytes(payload[1 + n:])


def decode_control(payload: bytes | memoryview) -> dict:
    try:
        msg = json.loads(bytes(payload).decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ProtocolError("control frame is not JSON") from None
    if not isinstance(msg, dict):
        raise ProtocolError("control frame is not a JSON object")
    return msg


class FrameReader:
    """Incremental frame parser: feed bytes, get ``(type, payload)`` pairs.

    The length is checked as soon as a header is complete, so a 100 MB announcement is
    refused after 5 bytes, before anything is buffered for it.
    """

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self.max_frame = max_frame
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self._buf += data
        out = []
        buf = self._buf
        pos = 0
        while len(buf) - pos >= HEADER.size:
            length, kind = HEADER.unpack_from(buf, pos)
            if kind not in FRAME_TYPES:
                raise ProtocolError(f"unknown frame type {kind}")
            if length > self.max_frame:
                raise ProtocolError(f"frame of {length} bytes is over the {self.max_frame} limit")
            end = pos + HEADER.size + length
            if len(buf) < end:
                break
            out.append((kind, bytes(buf[pos + HEADER.size:end])))
            pos = end
        if pos:
            del buf[:pos]
        return out
