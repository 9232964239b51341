"""moulin's documentation site: the pages generated from the code, the Guides section,
and the checks of the tutorials' commands.

Run through ``bin/docs`` (``python -m moulin_docs`` with ``docs/hooks`` on the path);
MkDocs loads :mod:`docs.hooks.hook`, which calls :func:`moulin_docs.reference.pages`
and :func:`moulin_docs.guides.guides_nav` while the site builds.
"""

from pathlib import Path

#: The repository root (docs/hooks/moulin_docs/ is three folders below it).
REPO_ROOT = Path(__file__).resolve().parents[3]
DOCS_DIR = REPO_ROOT / "docs"
