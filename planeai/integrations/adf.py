"""Atlassian Document Format (Jira's rich text) to markdown, and plain text to ADF.

Pure functions, no I/O. The input is untrusted: anything that is not the documented shape
(a missing ``content``, a number where text belongs, an unknown node) degrades to the text
it holds, never an exception; nesting deeper than ``MAX_DEPTH`` is cut off. Structure
reference: developer.atlassian.com/cloud/jira/platform/apis/document/structure/.
"""

from __future__ import annotations

from typing import Any

MAX_DEPTH = 64


def _text(v: Any) -> str:
    return v if isinstance(v, str) else ""


def _children(node: dict) -> list:
    c = node.get("content")
    return [n for n in c if isinstance(n, dict)] if isinstance(c, list) else []


def _attrs(node: dict) -> dict:
    a = node.get("attrs")
    return a if isinstance(a, dict) else {}


def _marked(text: str, marks: Any) -> str:
    if not isinstance(marks, list) or not text:
        return text
    link = None
    for m in marks:
        kind = m.get("type") if isinstance(m, dict) else None
        if kind == "code":
            text = f"`{text}`"
        elif kind == "strong":
            text = f"**{text}**"
        elif kind == "em":
            text = f"*{text}*"
        elif kind == "strike":
            text = f"~~{text}~~"
        elif kind == "link":
            link = _text(_attrs(m).get("href"))
    return f"[{text}]({link})" if link else text


def _inline(nodes: list, depth: int) -> str:
    out = []
    for n in nodes:
        kind = n.get("type")
        a = _attrs(n)
        if kind == "text":
            out.append(_marked(_text(n.get("text")), n.get("marks")))
        elif kind == "hardBreak":
            out.append("\n")
        elif kind == "mention":
            out.append(_text(a.get("text")) or "@someone")
        elif kind == "emoji":
            out.append(_text(a.get("text")) or _text(a.get("shortName")))
        elif kind in ("inlineCard", "blockCard", "embedCard"):
            out.append(_text(a.get("url")))
        elif kind == "status":
            out.append(f"[{_text(a.get('text'))}]")
        elif kind == "date":
            out.append(_text(str(a.get("timestamp", ""))))
        elif depth < MAX_DEPTH:
            out.append(_inline(_children(n), depth + 1))
    return "".join(out)


def _block(node: dict, depth: int, indent: str = "") -> list[str]:
    """Markdown lines of one block node (no trailing blank line)."""
    if depth > MAX_DEPTH:
        return []
    kind = node.get("type")
    a = _attrs(node)
    kids = _children(node)
    if kind == "paragraph":
        return _text_lines(_inline(kids, depth + 1), indent)
    if kind == "heading":
        level = a.get("level") if isinstance(a.get("level"), int) else 1
        return [indent + "#" * min(max(level, 1), 6) + " " + _inline(kids, depth + 1)
                .replace("\n", " ")]
    if kind == "codeBlock":
        lang = _text(a.get("language"))
        body = "".join(_text(k.get("text")) for k in kids)
        fence = "```" + "`" * _longest_backticks(body)
        return [indent + fence + lang, *[indent + ln for ln in body.split("\n")],
                indent + fence]
    if kind in ("bulletList", "orderedList"):
        lines: list[str] = []
        start = a.get("order") if isinstance(a.get("order"), int) else 1
        for i, item in enumerate(kids):
            mark = "- " if kind == "bulletList" else f"{start + i}. "
            sub = _blocks(_children(item), depth + 1, indent + " " * len(mark))
            if not sub:
                sub = [indent + " " * len(mark)]
            first = sub[0][len(indent) + len(mark):] if sub[0].startswith(
                indent + " " * len(mark)) else sub[0].lstrip()
            lines.append(indent + mark + first)
            lines += [ln for ln in sub[1:] if ln.strip()]
        return lines
    if kind == "blockquote":
        return [indent + "> " + ln[len(indent):] if ln.strip() else indent + ">"
                for ln in _blocks(kids, depth + 1, indent)]
    if kind == "rule":
        return [indent + "---"]
    if kind == "panel":
        return [indent + "> " + ln[len(indent):] for ln in _blocks(kids, depth + 1, indent)]
    if kind == "table":
        return _table(kids, depth, indent)
    if kind in ("mediaSingle", "mediaGroup", "media"):
        return [indent + "[attachment]"]
    if kind == "text" or kind in ("hardBreak", "mention", "emoji", "inlineCard", "status"):
        return _text_lines(_inline([node], depth + 1), indent)
    # unknown or container nodes (doc, expand, layoutSection ...): their content
    if kind == "expand" and _text(a.get("title")):
        return [indent + "**" + _text(a.get("title")) + "**", *_blocks(kids, depth + 1, indent)]
    return _blocks(kids, depth + 1, indent)


def _text_lines(text: str, indent: str) -> list[str]:
    return [indent + ln for ln in text.split("\n")]


def _longest_backticks(text: str) -> int:
    run = best = 0
    for ch in text:
        run = run + 1 if ch == "`" else 0
        best = max(best, run)
    return max(0, best - 2)


def _table(rows: list, depth: int, indent: str) -> list[str]:
    cells = [[" ".join(" ".join(_blocks(_children(c), depth + 2, "")).split()).replace("|", "\\|")
              for c in _children(r)] for r in rows]
    cells = [r for r in cells if r]
    if not cells:
        return []
    width = max(len(r) for r in cells)
    lines = []
    for i, r in enumerate(cells):
        r = r + [""] * (width - len(r))
        lines.append(indent + "| " + " | ".join(r) + " |")
        if i == 0:
            lines.append(indent + "|" + "---|" * width)
    return lines


def _blocks(nodes: list, depth: int, indent: str = "") -> list[str]:
    out: list[str] = []
    for n in nodes:
        lines = _block(n, depth, indent)
        if not lines:
            continue
        if out:
            out.append("")
        out += lines
    return out


def to_markdown(doc: Any) -> str:
    """Markdown for an ADF document (a plain string, as older APIs send, is returned as is;
    anything else that is not a document gives "")."""
    if isinstance(doc, str):
        return doc
    if not isinstance(doc, dict):
        return ""
    lines = _blocks([doc], 0) if doc.get("type") != "doc" else _blocks(_children(doc), 1)
    return "\n".join(ln.rstrip() for ln in lines).strip("\n")


def from_text(text: str) -> dict:
    """An ADF document for plain text: paragraphs at blank lines, line breaks kept. URLs get
    a link mark so the PR link is clickable in Jira."""
    import re

    url = re.compile(r"https?://[^\s<>\"]+")
    paragraphs = []
    for para in re.split(r"\n\s*\n", text.strip()):
        content: list[dict] = []
        for i, line in enumerate(para.split("\n")):
            if i:
                content.append({"type": "hardBreak"})
            pos = 0
            for m in url.finditer(line):
                if m.start() > pos:
                    content.append({"type": "text", "text": line[pos:m.start()]})
                content.append({"type": "text", "text": m.group(),
                                "marks": [{"type": "link", "attrs": {"href": m.group()}}]})
                pos = m.end()
            if pos < len(line):
                content.append({"type": "text", "text": line[pos:]})
        paragraphs.append({"type": "paragraph", "content": content})
    return {"version": 1, "type": "doc", "content": paragraphs}
