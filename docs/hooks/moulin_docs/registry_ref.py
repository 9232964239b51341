"""The references read from moulin's registries: expectation types
(``moulin.expectations.EXPECTATION_TYPES``) and stages (``moulin.jobs.registry``)."""

from __future__ import annotations

import argparse
import inspect
import re

from moulin_docs.cli_ref import _help
from moulin_docs.text import cell, first_paragraph, rst_to_md

_GE_CLASS = re.compile(r"gx\.expectations\.(\w+)")


def ge_counterparts(cls: type) -> list[str]:
    """The Great Expectations classes an expectation type's ``ge`` builds (from its source)."""
    try:
        return sorted(set(_GE_CLASS.findall(inspect.getsource(cls.ge))))
    except (OSError, TypeError):
        return []


def expectations_page() -> str:
    """The Markdown of ``reference/expectations.md``."""
    import moulin.expectations as me

    lines = [
        "# Expectation types",
        "",
        "Generated from the registry `moulin.expectations.EXPECTATION_TYPES` when the site is built.",
        "",
        rst_to_md(me.__doc__ or ""),
        "",
        "| type | class | what | Great Expectations counterpart |",
        "|---|---|---|---|",
    ]
    for name, cls in me.EXPECTATION_TYPES.items():
        ge = ", ".join(f"`{g}`" for g in ge_counterparts(cls)) or "none: checked row by row only"
        lines.append(
            f"| `{name}` | `{cls.__module__}.{cls.__name__}` | {cell(first_paragraph(cls.__doc__))} | {ge} |"
        )
    return "\n".join(lines) + "\n"


def _stage_options(stage) -> str:
    """The stage's command line, as the entry point parses it (``--ds`` and its own options)."""
    parser = argparse.ArgumentParser(
        prog=f"spark-submit spark_jobs/run_stage.py {stage.name}", add_help=False
    )
    parser.add_argument("--ds", required=True, help="logical date of the run (YYYY-MM-DD)")
    if stage.arguments is not None:
        stage.arguments(parser)
    return _help(parser)


def stages_page() -> str:
    """The Markdown of ``reference/stages.md``."""
    import moulin.jobs.registry as mr

    known = mr.stages()
    lines = [
        "# Stages",
        "",
        "Generated from the stage registry (`moulin.jobs.registry.stages()`) when the site is built.",
        "",
        rst_to_md(mr.__doc__ or ""),
        "",
        "A stage runs as `spark-submit spark_jobs/run_stage.py <stage> --ds <date> [options]` "
        "(`moulin.jobs.submit.submit_job` builds that command), or on the job server on the "
        "`local` and `hdfs-local` profiles. Exit code 3 means a data error (no retry helps), 1 anything else.",
        "",
        "| stage | environment | module | what |",
        "|---|---|---|---|",
    ]
    for name, stage in known.items():
        lines.append(f"| [`{name}`](#{name}) | {stage.environment} | "
                     f"`{stage.function.__module__}` | {cell(stage.help)} |")  # fmt: skip
    for name, stage in known.items():
        lines += [
            "",
            f"## {name} {{#{name}}}",
            "",
            rst_to_md(inspect.getdoc(stage.function) or stage.help),
            "",
        ]
        lines += ["```text", _stage_options(stage), "```"]
    return "\n".join(lines) + "\n"
