"""Synthetic agent-like terminal byte streams for emulator benchmarks and tests.

Each generator is deterministic (seeded) and returns about ``size`` bytes of what
agent CLIs write to their terminal:

- ``spinner``:   Ink-style status redraws (Claude Code / Gemini CLI): erase the
                 previous frame line by line with cursor-up + EL, redraw a
                 coloured spinner, a status line and an input box.
- ``markdown``:  long streamed markdown-ish answer with ANSI (16/256/truecolor)
                 headings, inline code, bullet lists and diff hunks; scrolls.
- ``boxes``:     box-drawing tables and panels with coloured borders.
- ``cjk_emoji``: mixed CJK, emoji (incl. ZWJ/VS16 sequences) and Latin text.
- ``alt_tui``:   a full-screen alternate-screen app (ratatui/Ink fullscreen):
                 per-frame cursor addressing, styled cells, scroll regions,
                 partial updates; leaves the alternate screen at the end.

Run ``python bench/streams.py DIR`` to write them as files.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

COLS, ROWS = 120, 40

ESC = "\x1b"
CSI = ESC + "["

WORDS = (
    "the agent reads files runs tests and edits code in its own worktree while "
    "planeai watches every session refactor function module import return value "
    "error handler parser token stream buffer cursor render widget task branch "
    "commit diff patch review merge conflict resolve schedule dispatch priority"
).split()
CJK = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可也你说"
EMOJI = ["😀", "🚀", "✅", "❌", "🔥", "📦", "🧪", "👍🏽", "👩‍💻", "❤️", "⚠️", "🎉"]
SPIN = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


def _sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def spinner(size: int = 1 << 20, seed: int = 1) -> bytes:
    """Ink-like live region: erase previous frame (EL + cursor up) and redraw it."""
    rng = random.Random(seed)
    out: list[str] = []
    total = 0
    frame_lines = 0
    elapsed = 0
    while total < size:
        parts = []
        if frame_lines:
            parts.append((CSI + "2K" + CSI + "1A") * (frame_lines - 1) + CSI + "2K" + "\r")
        elapsed += 1
        if rng.random() < 0.05:
            # a finished tool call scrolls into history above the live region
            parts.append(f"{CSI}32m⏺{CSI}39m {CSI}1mBash{CSI}22m({_sentence(rng, 4)})\r\n")
            parts.append(f"  ⎿  {CSI}2m{_sentence(rng, 9)}{CSI}22m\r\n")
        spin = SPIN[elapsed % len(SPIN)]
        lines = [
            f"{CSI}38;5;208m{spin}{CSI}39m {CSI}38;2;215;119;87mThinking…{CSI}39m "
            f"{CSI}2m({elapsed // 10}s · ↑ {elapsed * 13 % 9000} tokens · esc to interrupt){CSI}22m",
            "",
            f"{CSI}2m╭{'─' * (COLS - 2)}╮{CSI}22m",
            f"{CSI}2m│{CSI}22m > {_sentence(rng, 6)[:COLS - 6]}".ljust(COLS + 8) + f"{CSI}2m│{CSI}22m",
            f"{CSI}2m╰{'─' * (COLS - 2)}╯{CSI}22m",
            f"  {CSI}2m? for shortcuts{CSI}22m",
        ]
        parts.append("\r\n".join(lines))
        frame_lines = len(lines)
        chunk = "".join(parts)
        out.append(chunk)
        total += len(chunk.encode())
    return "".join(out).encode()


def markdown(size: int = 1 << 20, seed: int = 2) -> bytes:
    rng = random.Random(seed)
    out: list[str] = []
    total = 0
    while total < size:
        kind = rng.random()
        if kind < 0.08:
            s = f"\r\n{CSI}1;38;5;75m## {_sentence(rng, 5).title()}{CSI}0m\r\n\r\n"
        elif kind < 0.35:
            s = f"  {CSI}33m•{CSI}0m {_sentence(rng, rng.randint(5, 25))} `{CSI}38;5;180m{rng.choice(WORDS)}(){CSI}0m`\r\n"
        elif kind < 0.55:
            lines = []
            for _ in range(rng.randint(3, 10)):
                if rng.random() < 0.5:
                    lines.append(f"{CSI}48;2;34;92;43m{CSI}38;2;220;255;220m+ {_sentence(rng, 8)}{CSI}K{CSI}0m")
                else:
                    lines.append(f"{CSI}48;2;96;32;32m{CSI}38;2;255;220;220m- {_sentence(rng, 8)}{CSI}K{CSI}0m")
            s = "\r\n".join(lines) + "\r\n"
        else:
            # long paragraph that soft-wraps across several rows
            words = _sentence(rng, rng.randint(20, 70)).split()
            for i in range(0, len(words), 7):
                if rng.random() < 0.2:
                    words[i] = f"{CSI}1m{words[i]}{CSI}22m"
                elif rng.random() < 0.2:
                    words[i] = f"{CSI}3;36m{words[i]}{CSI}23;39m"
            s = " ".join(words) + "\r\n"
        out.append(s)
        total += len(s.encode())
    return "".join(out).encode()


def boxes(size: int = 1 << 20, seed: int = 3) -> bytes:
    rng = random.Random(seed)
    out: list[str] = []
    total = 0
    while total < size:
        ncol = rng.randint(2, 5)
        widths = [rng.randint(8, 20) for _ in range(ncol)]
        color = rng.randint(16, 231)
        b = f"{CSI}38;5;{color}m"
        r = f"{CSI}39m"
        rows = [b + "┌" + "┬".join("─" * w for w in widths) + "┐" + r]
        for i in range(rng.randint(2, 8)):
            cells = [f" {_sentence(rng, 3)[:w - 2]}".ljust(w) for w in widths]
            if i == 0:
                cells = [f"{CSI}1m{c}{CSI}22m" for c in cells]
            rows.append(b + "│" + r + (b + "│" + r).join(cells) + b + "│" + r)
            if i == 0:
                rows.append(b + "├" + "┼".join("═" * w for w in widths) + "┤" + r)
        rows.append(b + "└" + "┴".join("─" * w for w in widths) + "┘" + r)
        s = "\r\n".join(rows) + "\r\n"
        out.append(s)
        total += len(s.encode())
    return "".join(out).encode()


def cjk_emoji(size: int = 1 << 20, seed: int = 4) -> bytes:
    rng = random.Random(seed)
    out: list[str] = []
    total = 0
    while total < size:
        parts = []
        for _ in range(rng.randint(5, 30)):
            r = rng.random()
            if r < 0.45:
                parts.append("".join(rng.choice(CJK) for _ in range(rng.randint(2, 8))))
            elif r < 0.65:
                parts.append(rng.choice(EMOJI))
            elif r < 0.8:
                parts.append(f"{CSI}35m{''.join(rng.choice(CJK) for _ in range(3))}{CSI}0m")
            else:
                parts.append(rng.choice(WORDS))
        s = " ".join(parts) + "\r\n"
        out.append(s)
        total += len(s.encode())
    return "".join(out).encode()


def alt_tui(size: int = 1 << 20, seed: int = 5, cols: int = COLS, rows: int = ROWS) -> bytes:
    """A full-screen TUI on the alternate screen, redrawn frame by frame."""
    rng = random.Random(seed)
    out: list[str] = [f"{CSI}?1049h{CSI}?25l{CSI}H{CSI}2J"]
    total = len(out[0])
    frame = 0
    log_top, log_bottom = 3, rows - 4
    while total < size:
        frame += 1
        parts = []
        # header bar (full repaint every frame, like ratatui diffs when the clock ticks)
        parts.append(f"{CSI}1;1H{CSI}48;5;24m{CSI}97m" + f" planeai · frame {frame} · {_sentence(rng, 3)}".ljust(cols)[:cols] + f"{CSI}0m")
        # sidebar list with a highlighted selection
        sel = frame % (rows - 8)
        for y in range(3, rows - 4):
            item = f" {'▶' if y - 3 == sel else ' '} PLA-{y:<3} {rng.choice(WORDS)}"[:28].ljust(28)
            style = f"{CSI}7m" if y - 3 == sel else f"{CSI}38;5;{rng.choice((244, 250, 114, 203))}m"
            parts.append(f"{CSI}{y};1H{style}{item}{CSI}0m{CSI}38;5;240m│{CSI}0m")
        # log pane: scroll region + new line at the bottom (tmux/ratatui style)
        parts.append(f"{CSI}{log_top};{log_bottom}r{CSI}{log_bottom};31H\n")
        parts.append(f"{CSI}{log_bottom};31H{CSI}38;2;{rng.randint(80,255)};{rng.randint(80,255)};200m{_sentence(rng, 10)[:cols - 31]}{CSI}0m{CSI}K")
        parts.append(f"{CSI}r")
        # status line + spinner cell
        parts.append(f"{CSI}{rows};1H{CSI}48;5;236m{CSI}38;5;250m {SPIN[frame % len(SPIN)]} {frame % 100}% ".ljust(cols)[:cols] + f"{CSI}0m")
        # a few random single-cell updates (progress bars, counters)
        for _ in range(rng.randint(2, 6)):
            y, x = rng.randint(2, rows - 1), rng.randint(31, cols - 10)
            parts.append(f"{CSI}{y};{x}H{CSI}38;5;{rng.randint(16, 255)}m{'█' * rng.randint(1, 8)}{CSI}0m")
        s = "".join(parts)
        out.append(s)
        total += len(s.encode())
    out.append(f"{CSI}?25h{CSI}?1049l")
    return "".join(out).encode()


STREAMS = {
    "spinner": spinner,
    "markdown": markdown,
    "boxes": boxes,
    "cjk_emoji": cjk_emoji,
    "alt_tui": alt_tui,
}


def all_streams(size: int = 1 << 20) -> dict[str, bytes]:
    return {name: fn(size) for name, fn in STREAMS.items()}


CLAUDE_CAPTURES = Path(__file__).resolve().parent.parent / "tests" / "data" / "screens" / "claude"


def claude_replay(size: int = 1 << 20, captures: Path = CLAUDE_CAPTURES) -> bytes:
    """Screens captured from the real Claude Code CLI (``tmux capture-pane -e``),
    replayed as full redraws (home, clear, the captured rows).  Empty if absent."""
    frames = [p.read_bytes().rstrip(b"\n").replace(b"\n", b"\r\n") for p in sorted(captures.glob("*.ansi"))]
    if not frames:
        return b""
    out, total, i = [], 0, 0
    while total < size:
        frame = b"\x1b[H\x1b[2J" + frames[i % len(frames)]
        out.append(frame)
        total += len(frame)
        i += 1
    return b"".join(out)


if __name__ == "__main__":
    d = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    d.mkdir(parents=True, exist_ok=True)
    for name, data in all_streams().items():
        (d / f"{name}.bin").write_bytes(data)
        print(name, len(data))
