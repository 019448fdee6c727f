"""Readable text from an HTML email body: words and line breaks, never markup or scripts."""

from __future__ import annotations

import re
from html.parser import HTMLParser

_BLOCKS = frozenset(
    {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table", "hr"}
)
_SILENT = frozenset({"script", "style", "head", "title", "template"})


class _TextCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.pieces: list[str] = []
        self.silent_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SILENT:
            self.silent_depth += 1
        elif tag in _BLOCKS:
            self.pieces.append("\n")
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt:
                self.pieces.append(f"[image: {alt}]")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SILENT:
            self.silent_depth = max(0, self.silent_depth - 1)
        elif tag in _BLOCKS:
            self.pieces.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.silent_depth:
            self.pieces.append(data)


def html_to_text(html: str) -> str:
    """The visible text of `html`, with paragraphs on their own lines."""
    collector = _TextCollector()
    collector.feed(html)
    collector.close()
    lines = (" ".join(line.split()) for line in "".join(collector.pieces).splitlines())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
