"""The MkDocs hook of moulin's site (mkdocs.yml: ``hooks``).

* ``on_config``: the ``Guides`` section of the navigation lists every page under
  ``docs/guides/`` (:mod:`moulin_docs.guides`), so a merged guide needs no nav edit,
  and the ``Python API`` section a page per module of :mod:`moulin_docs.api_ref`;
* ``on_files``: the reference pages generated from the code
  (:mod:`moulin_docs.reference`) join the site as pages of their own.

The checkout's ``moulin`` is documented (its folder goes first on ``sys.path``), not
another installed copy.
"""

from __future__ import annotations

import sys
from pathlib import Path

HOOKS = Path(__file__).resolve().parent
for folder in (HOOKS, HOOKS.parents[1]):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from mkdocs.structure.files import File  # noqa: E402
from moulin_docs import api_ref, guides, reference  # noqa: E402


def on_config(config):
    """Fill the Guides section with the pages under docs/guides/, and the Python API
    section with a page per module of :data:`moulin_docs.api_ref.MODULES`."""
    nav = guides.fill_nav(config["nav"], guides.SECTION, guides.guides_nav(Path(config["docs_dir"])))
    config["nav"] = guides.fill_nav(nav, api_ref.SECTION, api_ref.nav_entries())
    return config


def on_files(files, config):
    """Add the pages generated from the code (refusing to shadow a written page)."""
    for path, text in reference.pages().items():
        if files.get_file_from_path(path) is not None:
            raise ValueError(f"docs/{path} is generated from the code when the site builds: delete the file")
        files.append(File.generated(config, path, content=text))
    return files
