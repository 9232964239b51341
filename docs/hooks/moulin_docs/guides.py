"""The Guides section: every page under ``docs/guides/``, found when the site is built,
so a guide merged from another branch needs no edit of the navigation."""

from __future__ import annotations

import re
from pathlib import Path

_TITLE = re.compile(r"^#\s+(.+?)\s*#*\s*$", re.M)
#: The nav entry the hook fills (mkdocs.yml: ``- Guides: guides/index.md``).
SECTION = "Guides"


def title(path: Path) -> str:
    """A page's first level-1 heading, else its file name in words."""
    found = _TITLE.search(path.read_text())
    return found.group(1).strip() if found else path.stem.replace("-", " ").replace("_", " ").capitalize()


def guides_nav(docs_dir: Path) -> list:
    """The Guides section's entries: its index first, then every other guide by title."""
    folder = docs_dir / "guides"
    pages = sorted(folder.rglob("*.md"), key=lambda p: (p.name != "index.md", title(p).lower()))
    return [
        p.relative_to(docs_dir).as_posix()
        if p.name == "index.md"
        else {title(p): p.relative_to(docs_dir).as_posix()}
        for p in pages
    ]


def fill_nav(nav: list, section: str, entries: list) -> list:
    """``nav`` with every entry titled ``section`` (at any depth) replaced by ``entries``."""
    out = []
    for entry in nav:
        if isinstance(entry, dict):
            entry = {
                title: entries
                if title == section
                else (fill_nav(value, section, entries) if isinstance(value, list) else value)
                for title, value in entry.items()
            }
        out.append(entry)
    return out
