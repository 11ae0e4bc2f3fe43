"""In-process terminal emulator for agent sessions.

``TerminalScreen`` turns the bytes an agent CLI writes to its PTY into a screen
(text, styles, cursor, modes) that the TUI renders line by line.

Engine: Ghostty's VT core (libghostty-vt) through ``pyghostty`` (cffi).  Measured
by ``bench/bench_emulator.py`` it parses agent-like streams one to two orders of
magnitude faster than pyte and faster than tmux.  ``feed`` is a single C call;
reading the screen goes through Ghostty's render state: one call per row copies
out the row's packed cells, which are decoded here in Python, and styles are
looked up once per distinct style in the row.  Nothing reads cell by cell over
FFI (each such call costs about a microsecond).

Thread-safety: a ``TerminalScreen`` is not thread-safe.  One thread at a time
may use it; callers that feed from a reader thread and render from another must
hold a lock around every call (``feed``, ``take_dirty``, ``row_runs`` ...).

This module must stay free of textual/rich imports: the core stays light.

Over 450 lines on purpose: it is one concept, a screen over one Ghostty terminal.  Almost all
of it reads that terminal's render state (rows, cells, graphemes, styles, scrollback) through
the same handles, iterator and cell layout checks; ``CellStyle`` and its SGR text are the
vocabulary those reads return.  Split, the halves would share private FFI state.
"""

from __future__ import annotations

import re
import weakref
from dataclasses import dataclass

from pyghostty import ffi, lib

__all__ = ["CellStyle", "DEFAULT_STYLE", "TerminalScreen"]


@dataclass(frozen=True, slots=True)
class CellStyle:
    """Style of a run of cells.

    Colours: ``None`` is the terminal default; otherwise one of the 16 Rich
    names ("red" .. "bright_white"), ``"color(N)"`` for 256-colour indexes
    16..255, or ``"#rrggbb"`` for truecolor.
    """

    fg: str | None = None
    bg: str | None = None
    bold: bool = False
    dim: bool = False
    italic: bool = False
    underline: bool = False
    reverse: bool = False
    strike: bool = False


DEFAULT_STYLE = CellStyle()

ANSI_NAMES = (
    "black", "red", "green", "yellow", "blue", "magenta", "cyan", "white",
    "bright_black", "bright_red", "bright_green", "bright_yellow",
    "bright_blue", "bright_magenta", "bright_cyan", "bright_white",
)
_NAME_TO_INDEX = {name: i for i, name in enumerate(ANSI_NAMES)}


def _palette_name(n: int) -> str:
    return ANSI_NAMES[n] if n < 16 else f"color({n})"


def _color_sgr(color: str, base: int) -> str:
    """SGR parameters for ``color`` as foreground (base 30) or background (base 40)."""
    idx = _NAME_TO_INDEX.get(color)
    if idx is not None:
        return str(base + idx) if idx < 8 else str(base + 60 + idx - 8)
    if color.startswith("color("):
        return f"{base + 8};5;{color[6:-1]}"
    if color.startswith("#") and len(color) == 7:
        r, g, b = int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)
        return f"{base + 8};2;{r};{g};{b}"
    return str(base + 9)


def style_sgr(style: CellStyle) -> str:
    """An SGR sequence that sets exactly ``style`` (starting from a reset)."""
    params = ["0"]
    if style.bold:
        params.append("1")
    if style.dim:
        params.append("2")
    if style.italic:
        params.append("3")
    if style.underline:
        params.append("4")
    if style.reverse:
        params.append("7")
    if style.strike:
        params.append("9")
    if style.fg is not None:
        params.append(_color_sgr(style.fg, 30))
    if style.bg is not None:
        params.append(_color_sgr(style.bg, 40))
    return "\x1b[" + ";".join(params) + "m"


# Ghostty's packed cell (page.zig ``Cell``, a u64), checked at import time below.
_TAG_MASK = 0x3             # content tag: 0 codepoint, 1 grapheme, 2 bg palette, 3 bg rgb
_CONTENT_SHIFT = 2          # 24-bit content: codepoint (21 bits) / palette index / rgb
_STYLE_SHIFT = 26           # 16-bit style id, 0 = default style
_WIDE_SHIFT = 42            # 0 narrow, 1 wide, 2 spacer tail, 3 spacer head
_BLANK_MASK = (1 << _WIDE_SHIFT) - 1   # tag + content + style id
_SLOW_MASK = (0x2 << _WIDE_SHIFT) | _TAG_MASK   # spacer cells and non-codepoint cells

_MAX_PENDING_REPLIES = 1 << 16
_KITTY_KEYBOARD_REPLY = re.compile(rb"\x1b\[\?\d*u")
_ALT_ENTER = (b"\x1b[?1049h", b"\x1b[?1047h", b"\x1b[?47h")

_SCREEN_ALTERNATE = lib.GHOSTTY_TERMINAL_SCREEN_ALTERNATE


# Bound once at import: a finalizer may run during garbage collection triggered
# inside cffi's own type parser, whose lock is not re-entrant, so the finalizer
# must not make cffi resolve a name or parse a type.
_iterator_free = lib.ghostty_render_state_row_iterator_free
_state_free = lib.ghostty_render_state_free
_terminal_free = lib.ghostty_terminal_free


def _free_all(term, state, iterator, _keepalive) -> None:
    _iterator_free(iterator)
    _state_free(state)
    _terminal_free(term)


class TerminalScreen:
    """A headless terminal screen fed with PTY output.

    Not thread-safe: one thread at a time (callers lock).
    """

    #: Drop answers to kitty keyboard protocol queries (``CSI ? u``) so agent
    #: CLIs fall back to legacy key encoding, which is what the backends send
    #: (tmux 3.3a does not answer either).
    report_kitty_keyboard = False

    def __init__(self, cols: int = 80, rows: int = 24, scrollback: int = 5000) -> None:
        cols, rows = max(1, min(int(cols), 0xFFFF)), max(1, min(int(rows), 0xFFFF))
        self._cols, self._rows = cols, rows
        self._scrollback_max = max(0, int(scrollback))
        tp = ffi.new("GhosttyTerminal*")
        if lib.ghostty_terminal_new(ffi.NULL, tp, cols, rows):
            raise MemoryError("ghostty_terminal_new failed")
        self._t = tp[0]
        self._set_history_bytes()
        # Default colours so OSC 10/11 colour queries get an answer (dark theme).
        for opt, rgb in ((lib.GHOSTTY_TERMINAL_OPT_COLOR_FOREGROUND, (229, 229, 229)),
                         (lib.GHOSTTY_TERMINAL_OPT_COLOR_BACKGROUND, (0, 0, 0))):
            lib.ghostty_terminal_set(self._t, opt, ffi.new("GhosttyColorRgb*", dict(zip("rgb", rgb))))
        # Callbacks close over plain objects, not self: no reference cycle, so a
        # dropped screen is freed at once by reference counting.
        self._replies = replies = bytearray()
        self._size = size = [cols, rows]

        def on_reply(_term, _userdata, data, n):
            if len(replies) < _MAX_PENDING_REPLIES:   # nobody reading: do not grow forever
                replies.extend(ffi.buffer(data, n))

        def on_size(_term, _userdata, out):
            out.rows, out.columns = size[1], size[0]
            out.cell_width, out.cell_height = 8, 16
            return True

        callbacks = (ffi.callback("GhosttyTerminalWritePtyFn", on_reply, onerror=_ignore_error),
                     ffi.callback("GhosttyTerminalSizeFn", on_size, onerror=_ignore_error))
        lib.ghostty_terminal_set(self._t, lib.GHOSTTY_TERMINAL_OPT_WRITE_PTY, callbacks[0])
        lib.ghostty_terminal_set(self._t, lib.GHOSTTY_TERMINAL_OPT_SIZE, callbacks[1])

        sp = ffi.new("GhosttyRenderState*")
        ip = ffi.new("GhosttyRenderStateRowIterator*")
        if lib.ghostty_render_state_new(ffi.NULL, sp) or lib.ghostty_render_state_row_iterator_new(ffi.NULL, ip):
            lib.ghostty_terminal_free(self._t)
            raise MemoryError("ghostty render state allocation failed")
        self._state, self._iter_p = sp[0], ip
        self._finalizer = weakref.finalize(self, _free_all, self._t, self._state, ip[0], callbacks)

        # Preallocated FFI scratch.
        self._u16 = ffi.new("uint16_t*")
        self._bool = ffi.new("bool*")
        self._int = ffi.new("int*")
        self._size_t = ffi.new("size_t*")
        self._gstr = ffi.new("GhosttyString*")
        self._mode = ffi.new("GhosttyTerminalModeConfig*")
        self._slice = ffi.new("uint64_t[2]")
        self._false = ffi.new("bool*", False)
        self._dirty_false = ffi.new("GhosttyRenderStateDirty*", 0)
        self._dirty_out = ffi.new("GhosttyRenderStateDirty*")
        self._point = ffi.new("GhosttyPointS*")
        self._ref = _sized("GhosttyGridRef")
        self._style = _sized("GhosttyStyle")
        self._cp_buf = ffi.new("uint32_t[32]")
        self._grid_ref_fn = ffi.cast("GhosttyResult(*)(GhosttyTerminal, GhosttyPointS, GhosttyGridRef*)",
                                     ffi.addressof(lib, "ghostty_terminal_grid_ref"))
        self._style_cache: dict[tuple, CellStyle] = {}

        self._stale = True              # render state older than the terminal
        self._rows_raw: list[tuple[int, int]] = []   # per row: (cells pointer, length) in the render state
        self._runs_cache: dict[int, list[tuple[str, CellStyle]]] = {}
        self._force_all_dirty = True
        self._last_alt = False
        self._main_scrollback_cache: list[str] | None = None

    # ------------------------------------------------------------------ input

    def feed(self, data: bytes) -> None:
        """Parse PTY output. Any bytes, any split points; never raises on garbage."""
        if not data:
            return
        if not isinstance(data, bytes):
            data = bytes(data)
        if self._main_scrollback_cache is None and b"\x1b[?" in data:
            # Keep the main screen's scrollback readable while an app is on the
            # alternate screen: capture it just before the switch.
            cut = min((i for i in (data.find(s) for s in _ALT_ENTER) if i >= 0), default=-1)
            if cut >= 0 and not self.alternate_screen:
                lib.ghostty_terminal_vt_write(self._t, data[:cut], cut)
                self._main_scrollback_cache = self._read_scrollback()
                data = data[cut:]
        lib.ghostty_terminal_vt_write(self._t, data, len(data))
        self._stale = True
        if self._main_scrollback_cache is not None and not self.alternate_screen:
            self._main_scrollback_cache = None

    def _set_history_bytes(self) -> None:
        # Ghostty keeps history in pages bounded by bytes (default 10 kB: a few
        # hundred rows).  Its line limit (OPT_SCROLLBACK_MAX_LINES) is not used:
        # measured, it slows every scrolled line about 15x (17 vs 260 MB/s).
        # So give it bytes for a bit more than `scrollback` rows of this width
        # (a row costs about 8 bytes per cell plus page overhead) and cut to
        # exactly `scrollback` lines when reading.
        n = self._scrollback_max
        # Pruning drops whole pages, hence the extra 2 MB.
        limit = 0 if n == 0 else (n * (self._cols * 8 + 256) * 5) // 4 + (2 << 20)
        lib.ghostty_terminal_set(self._t, lib.GHOSTTY_TERMINAL_OPT_SCROLLBACK_MAX_BYTES, ffi.new("size_t*", limit))

    def resize(self, cols: int, rows: int) -> None:
        cols, rows = max(1, min(int(cols), 0xFFFF)), max(1, min(int(rows), 0xFFFF))
        if (cols, rows) == (self._cols, self._rows):
            return
        lib.ghostty_terminal_resize(self._t, cols, rows, 8, 16)
        self._cols, self._rows = cols, rows
        self._size[:] = [cols, rows]
        self._set_history_bytes()
        self._stale = True
        self._force_all_dirty = True

    def take_replies(self) -> bytes:
        """Bytes the application asked for (DSR/DA/...) to write back to the PTY; clears."""
        out = bytes(self._replies)
        self._replies.clear()
        if out and not self.report_kitty_keyboard:
            out = _KITTY_KEYBOARD_REPLY.sub(b"", out)
        return out

    # ------------------------------------------------------------------ state

    @property
    def cols(self) -> int:
        return self._cols

    @property
    def rows(self) -> int:
        return self._rows

    def _get(self, key: int, out):
        lib.ghostty_terminal_get(self._t, key, out)
        return out[0]

    @property
    def cursor(self) -> tuple[int, int]:
        x = self._get(lib.GHOSTTY_TERMINAL_DATA_CURSOR_X, self._u16)
        y = self._get(lib.GHOSTTY_TERMINAL_DATA_CURSOR_Y, self._u16)
        return x, y

    @property
    def cursor_visible(self) -> bool:
        return bool(self._get(lib.GHOSTTY_TERMINAL_DATA_CURSOR_VISIBLE, self._bool))

    @property
    def title(self) -> str:
        s = self._gstr
        if lib.ghostty_terminal_get(self._t, lib.GHOSTTY_TERMINAL_DATA_TITLE, s) or not s.len:
            return ""
        return ffi.buffer(s.ptr, s.len)[:].decode("utf-8", "replace")

    def _dec_mode(self, n: int) -> bool:
        self._mode.mode = n & 0x7FFF
        lib.ghostty_terminal_get(self._t, lib.GHOSTTY_TERMINAL_DATA_MODE, self._mode)
        return bool(self._mode.value)

    @property
    def bracketed_paste(self) -> bool:
        return self._dec_mode(2004)

    @property
    def application_cursor(self) -> bool:
        return self._dec_mode(1)

    @property
    def alternate_screen(self) -> bool:
        return self._get(lib.GHOSTTY_TERMINAL_DATA_ACTIVE_SCREEN, self._int) == _SCREEN_ALTERNATE

    # ------------------------------------------------------------ screen read

    def _sync(self) -> None:
        """Bring the render state up to date with the terminal (after feeds)."""
        if not self._stale:
            return
        self._stale = False
        self._runs_cache.clear()
        state, it = self._state, self._iter_p
        lib.ghostty_render_state_update(state, self._t)
        lib.ghostty_render_state_get(state, lib.GHOSTTY_RENDER_STATE_DATA_ROW_ITERATOR, it)
        rows_raw = []
        sl = self._slice
        cells_raw = lib.GHOSTTY_RENDER_STATE_ROW_DATA_CELLS_RAW
        nxt, get = lib.ghostty_render_state_row_iterator_next, lib.ghostty_render_state_row_get
        while nxt(it[0]):
            if get(it[0], cells_raw, sl):
                rows_raw.append((0, 0))
            else:
                rows_raw.append((sl[0], sl[1]))
        self._rows_raw = rows_raw

    def take_dirty(self) -> set[int]:
        """Visible rows changed since the last call (all after resize or screen switch); clears."""
        self._sync()
        state, it = self._state, self._iter_p
        lib.ghostty_render_state_get(state, lib.GHOSTTY_RENDER_STATE_DATA_DIRTY, self._dirty_out)
        full = self._dirty_out[0] == lib.GHOSTTY_RENDER_STATE_DIRTY_FULL
        dirty: set[int] = set()
        if self._dirty_out[0] != lib.GHOSTTY_RENDER_STATE_DIRTY_FALSE:
            lib.ghostty_render_state_get(state, lib.GHOSTTY_RENDER_STATE_DATA_ROW_ITERATOR, it)
            y = self._u16
            nxt = lib.ghostty_render_state_row_iterator_next_dirty
            row_set, opt, false = lib.ghostty_render_state_row_set, lib.GHOSTTY_RENDER_STATE_ROW_OPTION_DIRTY, self._false
            while nxt(it[0], y):
                dirty.add(y[0])
                row_set(it[0], opt, false)
            lib.ghostty_render_state_set(state, lib.GHOSTTY_RENDER_STATE_OPTION_DIRTY, self._dirty_false)
        alt = self.alternate_screen
        if full or self._force_all_dirty or alt != self._last_alt:
            dirty = set(range(self._rows))
        self._force_all_dirty = False
        self._last_alt = alt
        return {y for y in dirty if 0 <= y < self._rows}

    def _cell_style(self, x: int, y: int) -> CellStyle:
        p = self._point
        p.tag = lib.GHOSTTY_POINT_TAG_ACTIVE
        p.value.x, p.value.y = x, y
        if self._grid_ref_fn(self._t, p[0], self._ref) or lib.ghostty_grid_ref_style(self._ref, self._style):
            return DEFAULT_STYLE
        st = self._style
        fg, bg = st.fg_color, st.bg_color
        key = (fg.tag, fg.value._padding, bg.tag, bg.value._padding, st.bold, st.faint, st.italic,
               st.underline, st.inverse, st.strikethrough, st.invisible)
        cs = self._style_cache.get(key)
        if cs is None:
            cs = CellStyle(_color(fg), _color(bg), bool(st.bold), bool(st.faint), bool(st.italic),
                           bool(st.underline), bool(st.inverse), bool(st.strikethrough))
            if st.invisible:
                cs = _Invisible(cs)  # type: ignore[assignment]
            if len(self._style_cache) > 4096:
                self._style_cache.clear()
            self._style_cache[key] = cs
        return cs

    def _style_for_key(self, key: int, x: int, y: int):
        if key >> 40:                       # background-only cell: tag + colour
            tag, content = key & _TAG_MASK, (key >> _CONTENT_SHIFT) & 0xFFFFFF
            if tag == 2:
                bg = _palette_name(content & 0xFF)
            else:
                bg = "#%02x%02x%02x" % (content & 0xFF, (content >> 8) & 0xFF, (content >> 16) & 0xFF)
            return _BG_STYLES.setdefault(bg, CellStyle(bg=bg))
        return self._cell_style(x, y)

    def _grapheme(self, x: int, y: int, first: int) -> str:
        p = self._point
        p.tag = lib.GHOSTTY_POINT_TAG_ACTIVE
        p.value.x, p.value.y = x, y
        n = self._size_t
        if self._grid_ref_fn(self._t, p[0], self._ref) or lib.ghostty_grid_ref_graphemes(self._ref, self._cp_buf, 32, n):
            return chr(first)
        return "".join(chr(c) for c in ffi.unpack(self._cp_buf, min(n[0], 32)) if 0 < c < 0x110000)

    def row_runs(self, y: int) -> list[tuple[str, CellStyle]]:
        """Styled runs of visible row ``y``: equal styles merged, trailing default blanks trimmed."""
        self._sync()
        cached = self._runs_cache.get(y)
        if cached is not None:
            return list(cached)
        if not 0 <= y < len(self._rows_raw):
            return []
        ptr, n = self._rows_raw[y]
        if not n:
            return []
        cells = ffi.unpack(ffi.cast("uint64_t*", ptr), min(n, self._cols))
        # Trim trailing blank default cells.
        end = len(cells)
        while end and (cells[end - 1] & _BLANK_MASK) in (0, 32 << _CONTENT_SHIFT):
            end -= 1
        # Runs are cut wherever the style key changes: the style id for text
        # cells, the colour for background-only cells.  Most cells take the
        # first branch (narrow codepoint), which does only integer work.
        raw_runs: list[tuple[str, object]] = []
        styles: dict[int, object] = {0: DEFAULT_STYLE}
        cur_key = 0
        cur_style: object = DEFAULT_STYLE
        run_x0 = 0
        buf: list[str] = []
        append = buf.append
        for x in range(end):
            c = cells[x]
            if not c & _SLOW_MASK:               # a codepoint, narrow or wide head
                key = (c >> 26) & 0xFFFF
                cp = (c >> 2) & 0x1FFFFF
                ch = chr(cp) if 0 < cp < 0x110000 else " "
            else:
                wide = (c >> _WIDE_SHIFT) & 0x3
                if wide == 2:                    # spacer tail of a wide char: drawn by the head
                    continue
                tag = c & _TAG_MASK
                if tag >= 2:                     # blank cell that only carries a background colour
                    key = (1 << 40) | (c & 0x3FFFFFF)
                    ch = " "
                else:
                    key = (c >> _STYLE_SHIFT) & 0xFFFF
                    cp = (c >> _CONTENT_SHIFT) & 0x1FFFFF
                    if wide == 3 or not 0 < cp < 0x110000:
                        ch = " "
                    elif tag == 1:
                        ch = self._grapheme(x, y, cp)
                    else:
                        ch = chr(cp)
            if key != cur_key:
                style = styles.get(key)
                if style is None:
                    style = styles[key] = self._style_for_key(key, x, y)
                cur_key = key
                if style is not cur_style:
                    if buf:
                        raw_runs.append((_run_text(buf, cur_style, x - run_x0), cur_style))
                        buf = []
                        append = buf.append
                    cur_style = style
                    run_x0 = x
            append(ch)
        if buf:
            raw_runs.append((_run_text(buf, cur_style, end - run_x0), cur_style))
        runs: list[tuple[str, CellStyle]] = []
        for text, style in raw_runs:
            if type(style) is _Invisible:
                style = style.visible  # type: ignore[attr-defined]
            if runs and runs[-1][1] == style:
                runs[-1] = (runs[-1][0] + text, style)  # type: ignore[assignment]
            else:
                runs.append((text, style))  # type: ignore[arg-type]
        self._runs_cache[y] = runs
        return list(runs)

    def text_lines(self) -> list[str]:
        self._sync()
        return ["".join(t for t, _ in self.row_runs(y)).rstrip() for y in range(self._rows)]

    def text(self) -> str:
        return "\n".join(self.text_lines())

    # ------------------------------------------------------------- scrollback

    def _read_scrollback(self) -> list[str]:
        n = self._get(lib.GHOSTTY_TERMINAL_DATA_SCROLLBACK_ROWS, self._size_t)
        if not n or not self._scrollback_max:
            return []
        first = max(0, n - self._scrollback_max)
        sel = _sized("GhosttySelection")
        p = self._point
        p.tag = lib.GHOSTTY_POINT_TAG_HISTORY
        p.value.x, p.value.y = 0, first
        if self._grid_ref_fn(self._t, p[0], ffi.addressof(sel, "start")):
            return []
        p.value.x, p.value.y = self._cols - 1, n - 1
        if self._grid_ref_fn(self._t, p[0], ffi.addressof(sel, "end")):
            return []
        opts = _sized("GhosttyFormatterTerminalOptions")
        opts.emit = lib.GHOSTTY_FORMATTER_FORMAT_PLAIN
        opts.unwrap, opts.trim, opts.selection = False, True, sel
        fp = ffi.new("GhosttyFormatter*")
        if lib.ghostty_formatter_terminal_new(ffi.NULL, fp, self._t, opts[0]):
            return []
        try:
            size = self._size_t
            lib.ghostty_formatter_format_buf(fp[0], ffi.NULL, 0, size)
            buf = ffi.new("uint8_t[]", max(size[0], 1))
            if lib.ghostty_formatter_format_buf(fp[0], buf, len(buf), size):
                return []
            text = ffi.buffer(buf, size[0])[:].decode("utf-8", "replace")
        finally:
            lib.ghostty_formatter_free(fp[0])
        lines = [ln.rstrip() for ln in text.split("\n")]
        want = n - first
        if len(lines) < want:   # trailing blank history rows trimmed by the formatter
            lines += [""] * (want - len(lines))
        return lines[-self._scrollback_max:]

    def scrollback(self) -> list[str]:
        """Plain lines scrolled off the top of the main screen, oldest first, at most ``scrollback``."""
        if self._main_scrollback_cache is not None and self.alternate_screen:
            return list(self._main_scrollback_cache)
        if self.alternate_screen:
            return []
        return self._read_scrollback()

    # --------------------------------------------------------------- snapshot

    def ansi_snapshot(self) -> bytes:
        """Bytes that reproduce the visible screen, styles, cursor and modes on a fresh screen."""
        out = ["\x1b[0m"]
        if self.alternate_screen:
            out.append("\x1b[?1049h")
        out.append("\x1b[H\x1b[2J")
        for y in range(self._rows):
            runs = self.row_runs(y)
            if not runs:
                continue
            out.append(f"\x1b[{y + 1};1H")
            for text, style in runs:
                out.append(style_sgr(style))
                out.append(text)
            out.append("\x1b[0m")
        title = self.title
        if title:
            out.append("\x1b]2;" + title.replace("\x07", "").replace("\x1b", "") + "\x07")
        if self.bracketed_paste:
            out.append("\x1b[?2004h")
        if self.application_cursor:
            out.append("\x1b[?1h")
        x, y = self.cursor
        out.append(f"\x1b[{y + 1};{x + 1}H")
        out.append("\x1b[?25h" if self.cursor_visible else "\x1b[?25l")
        return "".join(out).encode("utf-8", "replace")

    def close(self) -> None:
        """Free the native terminal now (garbage collection does it otherwise)."""
        self._finalizer()

    def __repr__(self) -> str:
        return f"<TerminalScreen {self._cols}x{self._rows}>"


class _Invisible:
    """Marker wrapping the style of SGR 8 (concealed) cells: drawn as blanks."""

    __slots__ = ("visible",)

    def __init__(self, visible: CellStyle) -> None:
        self.visible = visible


_BG_STYLES: dict[str, CellStyle] = {}


def _run_text(buf: list[str], style: object, cells: int) -> str:
    if type(style) is _Invisible:           # concealed (SGR 8): blanks over its cells
        return " " * max(cells, 1)
    return "".join(buf)


def _ignore_error(exc, val, tb) -> bool:
    return False


def _sized(ctype: str):
    p = ffi.new(ctype + "*")
    _set_sizes(p)
    return p


def _set_sizes(p) -> None:
    t = ffi.typeof(p).item
    for name, f in t.fields:
        if name == "size":
            p.size = ffi.sizeof(t)
        elif f.type.kind == "struct":
            _set_sizes(ffi.addressof(p[0], name))


def _color(c) -> str | None:
    if c.tag == lib.GHOSTTY_STYLE_COLOR_PALETTE:
        return _palette_name(c.value.palette)
    if c.tag == lib.GHOSTTY_STYLE_COLOR_RGB:
        rgb = c.value.rgb
        return "#%02x%02x%02x" % (rgb.r, rgb.g, rgb.b)
    return None


def _check_cell_layout() -> None:
    """Fail loudly if this libghostty-vt packs cells differently than decoded above."""
    cell = (0x4E2D << _CONTENT_SHIFT) | (5 << _STYLE_SHIFT) | (1 << _WIDE_SHIFT)
    cp, sid, wide = ffi.new("uint32_t*"), ffi.new("uint16_t*"), ffi.new("int*")
    lib.ghostty_cell_get(cell, lib.GHOSTTY_CELL_DATA_CODEPOINT, cp)
    lib.ghostty_cell_get(cell, lib.GHOSTTY_CELL_DATA_STYLE_ID, sid)
    lib.ghostty_cell_get(cell, lib.GHOSTTY_CELL_DATA_WIDE, wide)
    tag = ffi.new("int*")
    lib.ghostty_cell_get(2 | (7 << _CONTENT_SHIFT), lib.GHOSTTY_CELL_DATA_CONTENT_TAG, tag)
    if (cp[0], sid[0], wide[0], tag[0]) != (0x4E2D, 5, 1, 2):
        raise ImportError("unsupported libghostty-vt cell layout (pyghostty version mismatch)")


_check_cell_layout()
