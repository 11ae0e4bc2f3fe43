"""What agent CLIs record about their own runs (tokens, models), read from their files.

Pure reading and arithmetic, no store and no config: ``jsonl`` reads a growing JSON-lines file
from a byte offset; ``claude`` and ``codex`` find a session's files and add up their usage;
``prices`` turns tokens into an estimated cost. planeai.services.metrics puts it together.
"""
