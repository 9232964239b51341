"""The settings reference: every field of ``moulin.settings.Settings`` with its
``MOULIN_*`` variable, type, default, the ``cluster`` profile's value and the comment
above it in the code; then every other ``MOULIN_*`` variable the code reads."""

from __future__ import annotations

import dataclasses
import io
import re
import tokenize
from pathlib import Path
from typing import Any

from moulin_docs import REPO_ROOT
from moulin_docs.text import cell, field_comments, rst_to_md

#: A MOULIN_* name, not inside a longer name (AIRFLOW_CONN_MOULIN_...).
_VARIABLE = re.compile(r"(?<![A-Z0-9_])MOULIN_[A-Z0-9_]*[A-Z0-9]")
#: The fields of FlightsParams that FlightsParams.from_env reads as MOULIN_FLIGHTS_<FIELD>.
FLIGHTS_FIELDS = ("sample_per_month",)
#: Where other MOULIN_* variables are looked for.
SCANNED = ("moulin", "bin", "dags", "docker", ".ci")


def _shown(value: Any) -> str:
    """A default as the page shows it: the user's home folder as ``~``."""
    if value is None or value == "":
        return "(empty)"
    text = str(value)
    home = str(Path.home())
    if text.startswith(home):
        text = "~" + text[len(home) :]
    return f"`{text}`"


def _type_name(annotation: Any) -> str:
    return str(annotation).replace("Path | None", "path").replace("Path", "path")


def _rows(settings_cls: type, prefix: str, default_obj: Any, cluster_obj: Any, comments: dict) -> list[str]:
    rows = []
    for f in dataclasses.fields(settings_cls):
        value = getattr(default_obj, f.name)
        if dataclasses.is_dataclass(value) or f.name == "profile":
            continue
        cluster = getattr(cluster_obj, f.name)
        var = f"{prefix}{f.name}".upper()
        rows.append(
            f"| `{var}` | {_type_name(f.type)} | {_shown(value)} | "
            f"{_shown(cluster) if cluster != value else ''} | {cell(comments.get(f.name, ''))} |"
        )
    return rows


def settings_variables() -> set[str]:
    """The ``MOULIN_*`` variable of every settings field (what ``load_settings`` reads)."""
    from moulin.settings import ENV_PREFIX, Settings

    names = {"MOULIN_PROFILE"}
    for f in dataclasses.fields(Settings):
        default = getattr(Settings(), f.name)
        if dataclasses.is_dataclass(default):
            names |= {f"{ENV_PREFIX}{f.name}_{s.name}".upper() for s in dataclasses.fields(default)}
        elif f.name != "profile":
            names.add(f"{ENV_PREFIX}{f.name}".upper())
    return names


def _variables_in(path: Path) -> set[str]:
    """MOULIN_* names in a file: in a Python file only inside string literals (a constant
    named MOULIN_X is not a variable), elsewhere anywhere."""
    text = path.read_text(errors="replace")
    if path.suffix != ".py":
        return set(_VARIABLE.findall(text))
    found: set[str] = set()
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type in (tokenize.STRING, getattr(tokenize, "FSTRING_MIDDLE", -1)):
                found |= set(_VARIABLE.findall(token.string))
    except (tokenize.TokenError, SyntaxError):
        pass
    return found


def other_variables(listed: set[str] = frozenset()) -> dict[str, list[str]]:
    """Every ``MOULIN_*`` variable named in the code that is neither a settings field nor
    in ``listed``, with the files naming it (relative to the repository).  A name that
    only starts others (``MOULIN_HDFS`` of ``f"MOULIN_HDFS_{field}"``) is left out."""
    known = settings_variables() | set(listed)
    found: dict[str, set[str]] = {}
    for top in SCANNED:
        base = REPO_ROOT / top
        paths = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file())
        for path in paths:
            if "__pycache__" in path.parts or path.suffix in (".pyc", ".jar"):
                continue
            for name in _variables_in(path) - known:
                found.setdefault(name, set()).add(str(path.relative_to(REPO_ROOT)))
    every = known | set(found)
    return {k: sorted(v) for k, v in sorted(found.items()) if not any(o.startswith(k + "_") for o in every)}


def page() -> str:
    """The Markdown of ``reference/settings.md``."""
    import moulin.settings as ms
    from moulin.usecases.flights.params import FlightsParams

    base, cluster = ms.Settings(), ms.load_settings("cluster", env={"MOULIN_WAREHOUSE_URI": "hdfs://nn/x"})
    path = Path(ms.__file__)
    lines = [
        "# Settings and MOULIN_* variables",
        "",
        "Generated from `moulin/settings.py` when the site is built. `moulin settings` prints the "
        "resolved values of this machine.",
        "",
        rst_to_md(ms.__doc__ or ""),
        "",
        f"Profiles: {', '.join(f'`{p}`' for p in ms.PROFILES)}. The *cluster* column gives the value "
        "the `cluster` profile sets where it differs from the default (`SPARK_MASTER` and "
        "`HADOOP_CONF_DIR` come from the environment there).",
        "",
    ]
    header = ["| variable | type | default | cluster | what |", "|---|---|---|---|---|"]
    lines += ["## Top level", "", *header]
    lines += _rows(ms.Settings, ms.ENV_PREFIX, base, cluster, field_comments(path, "Settings"))
    for f in dataclasses.fields(ms.Settings):
        section = getattr(base, f.name)
        if not dataclasses.is_dataclass(section):
            continue
        cls = type(section)
        lines += ["", f"## {f.name}: {cls.__name__}", "", rst_to_md(cls.__doc__ or ""), "", *header]
        lines += _rows(
            cls,
            f"{ms.ENV_PREFIX}{f.name}_",
            section,
            getattr(cluster, f.name),
            field_comments(path, cls.__name__),
        )
    flights = FlightsParams()
    params_path = REPO_ROOT / "moulin" / "usecases" / "flights" / "params.py"
    comments = field_comments(params_path, "FlightsParams")
    lines += [
        "",
        "## Flights use case",
        "",
        rst_to_md(FlightsParams.from_env.__doc__ or ""),
        "",
        "| variable | default | what |",
        "|---|---|---|",
    ]
    for name in FLIGHTS_FIELDS:
        lines.append(
            f"| `MOULIN_FLIGHTS_{name.upper()}` | {_shown(getattr(flights, name))} | {cell(comments.get(name, ''))} |"
        )
    lines.append(f"| `MOULIN_FLIGHTS_EPOCHS` | {_shown(flights.train.epochs)} | epochs of the MLP |")
    flights_vars = {f"MOULIN_FLIGHTS_{n.upper()}" for n in (*FLIGHTS_FIELDS, "epochs")}
    lines += [
        "",
        "## Every other MOULIN_* variable",
        "",
        "Named in the code but not a settings field (found by a scan of "
        f"{', '.join(f'`{s}/`' for s in SCANNED)}); see the files for what each does.",
        "",
        "| variable | named in |",
        "|---|---|",
    ]
    for name, files in other_variables(flights_vars).items():
        lines.append(f"| `{name}` | {', '.join(f'`{f}`' for f in files)} |")
    return "\n".join(lines) + "\n"
