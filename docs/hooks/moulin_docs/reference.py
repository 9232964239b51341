"""Every page generated from the code, by its path under the docs folder."""

from __future__ import annotations

from collections.abc import Callable

from moulin_docs import api_ref, cli_ref, registry_ref, schema_ref, settings_ref

#: Generated pages: path under docs/ -> the function writing its Markdown.
GENERATED: dict[str, Callable[[], str]] = {
    "reference/cli.md": cli_ref.page,
    "reference/settings.md": settings_ref.page,
    "reference/contracts.md": schema_ref.contracts_page,
    "reference/source-specs.md": schema_ref.specs_page,
    "reference/expectations.md": registry_ref.expectations_page,
    "reference/stages.md": registry_ref.stages_page,
}


def pages() -> dict[str, str]:
    """``{path under docs/: Markdown}`` of every generated page."""
    out = {path: write() for path, write in GENERATED.items()}
    out.update(api_ref.pages())
    return out
