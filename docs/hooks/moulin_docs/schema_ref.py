"""The reference of the YAML formats: table contracts (``moulin.contracts``) with every
contract shipped in ``schemas/``, and source specs (``moulin.sources.spec``) with every
spec shipped in ``schemas/sources/``."""

from __future__ import annotations

import dataclasses
import sys
import typing
from pathlib import Path

from moulin_docs import REPO_ROOT
from moulin_docs.text import cell, field_comments, first_paragraph, rst_to_md


def _default(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        value = f.default_factory()  # type: ignore[misc]
    else:
        return "required"
    return "(none)" if value in (None, "", (), {}) else f"`{value}`"


def _type(cls: type, f: dataclasses.Field) -> str:
    """The field's annotation as written in the code; a ``Literal`` alias as its values."""
    text = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    parts = []
    for part in (p.strip() for p in text.split("|")):
        alias = getattr(sys.modules[cls.__module__], part, None)
        if typing.get_origin(alias) is typing.Literal:
            parts += [str(a) for a in typing.get_args(alias)]
        else:
            parts.append(part)
    return " | ".join(parts)


def fields_table(cls: type, skip: tuple[str, ...] = ()) -> list[str]:
    """A Markdown table of the fields of dataclass ``cls``: YAML key, type, default, comment."""
    comments = field_comments(Path(sys.modules[cls.__module__].__file__ or ""), cls.__name__)
    rows = ["| key | type | default | what |", "|---|---|---|---|"]
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        rows.append(
            f"| `{f.name}` | {cell(_type(cls, f))} | {_default(f)} | {cell(comments.get(f.name, ''))} |"
        )
    return rows


def contracts_page() -> str:
    """The Markdown of ``reference/contracts.md``."""
    import moulin.contracts as mc

    lines = [
        "# Table contracts",
        "",
        "Generated from `moulin/contracts.py` and the files of `schemas/` when the site is built.",
        "A team's contracts live in `$MOULIN_CONTRACTS_DIR`, searched before moulin's own.",
        "",
        "## Format",
        "",
        rst_to_md(mc.__doc__ or ""),
        "",
        "Top-level keys (**bold**: required): "
        + ", ".join(
            f"**`{k}`**" if k in mc.REQUIRED_FIELDS else f"`{k}`" for k in sorted(mc.TOP_LEVEL_FIELDS)
        )
        + f". Layers: {', '.join(f'`{x}`' for x in mc.LAYERS)}. Column types: "
        + ", ".join(f"`{t}`" for t in mc.SCALAR_TYPES)
        + ", `decimal(p,s)`, `array<type>`.",
        "",
    ]
    for title, cls, skip in (
        ("A column (`columns[]`)", mc.ColumnSpec, ()),
        ("Personal data of a column (`columns[].personal`)", mc.PersonalColumn, ()),
        ("Record of processing (`privacy`)", mc.PrivacyPolicy, ()),
    ):
        lines += [f"### {title}", "", first_paragraph(cls.__doc__), "", *fields_table(cls, skip), ""]
    lines += ["## Contracts shipped with moulin", ""]
    contracts = mc.load_all_contracts(mc.SCHEMAS_DIR)
    lines += [
        "| contract | layer | table | keys | partitioned by | personal data |",
        "|---|---|---|---|---|---|",
    ]
    for name, c in contracts.items():
        lines.append(
            f"| [`{name}`](#{name}) | {c.layer} | `{c.table}` | {', '.join(c.keys)} | "
            f"{', '.join(c.partition_by)} | {', '.join(c.personal_data) or ', '.join(c.personal_columns)} |"
        )
    for name, c in contracts.items():
        rel = Path(c.path).resolve().relative_to(REPO_ROOT)
        lines += [f"### {name} {{#{name}}}", "", f"`{rel}`: {cell(c.description)}", ""]
        lines += ["| column | type | nullable | personal | what |", "|---|---|---|---|---|"]
        for col in c.columns:
            personal = f"{col.personal.category}, {col.personal.treatment}" if col.personal else ""
            lines.append(f"| `{col.name}` | `{col.type}` | {'yes' if col.nullable else 'no'} | {personal} | "
                         f"{cell(col.description)} |")  # fmt: skip
        if c.expectations:
            lines += [
                "",
                "Expectations: " + ", ".join(f"`{e.name}` ({e.type})" for e in c.expectations) + ".",
            ]
        lines += ["", f"Quarantine threshold: {c.quarantine_threshold}.", ""]
    return "\n".join(lines)


def specs_page() -> str:
    """The Markdown of ``reference/source-specs.md``."""
    import moulin.sources.spec as ms

    lines = [
        "# Source specs",
        "",
        "Generated from `moulin/sources/spec.py` and `schemas/sources/` when the site is built. "
        "How to write one: [Add a source](../tutorials/add-a-source.md).",
        "",
        "## Format",
        "",
        rst_to_md(ms.__doc__ or ""),
        "",
        "### Top level",
        "",
        *fields_table(ms.SourceSpec, skip=("path",)),
        "",
    ]
    for key, cls in (("file", ms.FileOptions), ("sql", ms.SqlOptions), ("http", ms.HttpOptions)):
        lines += [f"### `{key}`", "", first_paragraph(cls.__doc__), "", *fields_table(cls), ""]
    lines += ["## Specs shipped with moulin", "", "| source | kind | contract | format | schedule | mode | file |",
              "|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, path in sorted(ms.all_spec_files().items()):
        if Path(path).resolve().parent.parent != (REPO_ROOT / "schemas").resolve():
            continue
        spec = ms.load_spec(path)
        lines.append(
            f"| `{name}` | {spec.kind} | `{spec.contract}` | {spec.raw_format} | {spec.schedule or ''} | "
            f"{spec.mode} | `{spec.file.path if spec.file else ''}` |"
        )
    return "\n".join(lines) + "\n"
