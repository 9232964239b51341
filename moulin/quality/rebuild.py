"""Rebuilding a derived table from one pinned version of its source table, checked:
the rows are transformed, validated against the target's contract, written in one
idempotent commit (keyed on the source version and the parameters), and counted on
both sides from the Delta log, so a lost or duplicated row stops the stage."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from moulin.contracts import load_contract
from moulin.errors import DataError
from moulin.lineage import run_key
from moulin.settings import Settings


@dataclass(frozen=True)
class Rebuild:
    """One rebuild: source and target contracts, the transform, what its rows are
    called in messages, the columns counted by, the pipeline naming the commit, and
    the parameters that change the result (part of the idempotency key).  ``check``
    (optional) looks at the pinned source before anything is written and raises a
    :class:`DataError` naming what is wrong."""

    source: str
    target: str
    transform: Callable[[Any], Any]
    rows_called: str
    count_by: Sequence[str]
    pipeline: str
    parameters: Sequence[Any] = ()
    check: Callable[[Any, str], None] | None = None
    summaries: Sequence[Callable[[Any], tuple[str, Any]]] = field(default_factory=tuple)


def rebuild(spark, settings: Settings, spec: Rebuild) -> dict[str, Any]:
    """Rebuild ``spec.target`` from the latest version of ``spec.source`` (overwrite,
    one commit; a rerun on the same version commits nothing); returns ``{table, uri,
    source_version, rows, counts, version, committed, data_docs_uri, ...}`` with each
    of ``spec.summaries``' ``(name, value)`` computed on the cached rows."""
    from moulin.delta import AppTransaction, DeltaTableStore, TableProperties
    from moulin.quality.tables import check_table

    store = DeltaTableStore(spark)
    contract = load_contract(spec.target)
    source_uri = settings.table_uri(load_contract(spec.source).table)
    version = store.version(source_uri)
    source = store.read(source_uri, version=version)
    if spec.check is not None:
        spec.check(source, source_uri)
    source_rows = store.count(source_uri, version)  # from the Delta log's file statistics
    rows_df = spec.transform(source).cache()
    try:
        checked = check_table(rows_df, contract, settings, f"bronze_v{version}")
        counts = {
            tuple(r[c] for c in spec.count_by): int(r["count"])
            for r in rows_df.groupBy(*spec.count_by).count().collect()
        }
        extras = dict(summary(rows_df) for summary in spec.summaries)
        key = run_key(source_uri, version, *spec.parameters)
        uri = settings.table_uri(contract.table)
        res = store.write(
            rows_df,
            uri,
            mode="overwrite",
            partition_by=list(contract.partition_by),
            transaction=AppTransaction(f"{spec.pipeline}.{spec.target}.{key}", 1),
            properties=TableProperties(**contract.delta_metadata),
        )
    finally:
        rows_df.unpersist()
    rows = sum(counts.values())
    committed = store.count(uri, res.version)
    if not source_rows == rows == committed:
        raise DataError(
            f"{spec.target}: {source_uri} v{version} holds {source_rows} {spec.rows_called}, Spark produced {rows}, "
            f"but {uri} v{res.version} holds {committed}: rows were lost or duplicated; do not use it"
        )
    return {
        "table": contract.table,
        "uri": uri,
        "bronze_version": version,
        "rows": committed,
        "counts": {
            "/".join(str(v) for v in k): n for k, n in sorted(counts.items(), key=lambda kv: str(kv[0]))
        },
        **extras,
        "version": res.version,
        "committed": res.committed,
        "data_docs_uri": checked.get("data_docs_uri", ""),
    }
