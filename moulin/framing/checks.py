"""The coherence checks of a framing: those that look at several fields together, and
at moulin's contracts and source specs (see :mod:`moulin.framing`)."""

from __future__ import annotations

import difflib
from pathlib import Path

from moulin.contracts import Contract, ContractError, load_contract
from moulin.framing.model import INPUT_ROLES, METRICS, Framing
from moulin.framing.reader import Reader
from moulin.sources.spec import all_spec_files


def check_coherence(r: Reader, f: Framing) -> None:
    """The checks that look at several fields together, and at the contracts and specs."""
    _check_metric(r, f)
    contracts = _tables(r, f)
    _check_label_and_features(r, f, contracts)
    _check_sources(r, f)
    _check_privacy(r, f, contracts)
    _check_storage(r, f)


def _check_metric(r: Reader, f: Framing) -> None:
    goal, spec = f.metric, METRICS[f.metric.name]
    if f.task.type not in spec.tasks:
        fits = [n for n, m in METRICS.items() if f.task.type in m.tasks]
        r.problem(
            "metric.name",
            f"{goal.name} ({spec.label}) does not fit a {f.task.type} task",
            f"use a metric of {f.task.type} tasks: {', '.join(fits)}",
        )
    if not spec.low <= goal.threshold <= spec.high:
        r.problem(
            "metric.threshold",
            f"{goal.threshold:g} is outside the range of {spec.label} ({spec.range_text()})",
            "give a threshold within the metric's range",
        )
        return
    value = goal.baseline.value
    if value is None:
        return
    if not spec.low <= value <= spec.high:
        r.problem(
            "metric.baseline.value",
            f"{value:g} is outside the range of {spec.label} ({spec.range_text()})",
            "give the naive baseline's score within the metric's range",
        )
    elif spec.better(value, goal.threshold):
        r.problem(
            "metric.threshold",
            f"{goal.threshold:g} {spec.label} is no better than the naive baseline's {value:g}",
            f"set a threshold {'above' if spec.higher_is_better else 'below'} the baseline: a model that "
            "only matches it is not worth using",
        )


def _tables(r: Reader, f: Framing) -> dict[str, Contract]:
    """The declared tables' contracts by name (a problem for each that does not load)."""
    out: dict[str, Contract] = {}
    for i, name in enumerate(f.data.tables):
        try:
            out[name] = load_contract(name)
        except ContractError as exc:
            r.problem(
                f"data.tables[{i}]", f"no valid contract {name!r} ({exc})", "name a contract of schemas/"
            )
    return out


def _check_label_and_features(r: Reader, f: Framing, contracts: dict[str, Contract]) -> None:
    task = f.task
    label = task.label
    if label.table not in f.data.tables:
        r.problem(
            "task.label.table",
            f"{label.table!r} is not among data.tables ({', '.join(f.data.tables)})",
            "declare the label's table under data.tables",
        )
    elif label.table in contracts and label.column not in contracts[label.table].column_names:
        r.problem(
            "task.label.column",
            f"{label.column!r} is not a column of contract {label.table} ({contracts[label.table].path})",
            f"name one of its columns ({', '.join(contracts[label.table].column_names)})",
        )
    columns = {c for contract in contracts.values() for c in contract.column_names}
    declared = {feature.name: i for i, feature in enumerate(task.features)}
    for i, feature in enumerate(task.features):
        where = f"task.features[{i}]"
        if feature.input and not feature.known_at_prediction:
            r.problem(
                f"{where}.input",
                f"{feature.name} is not known at prediction time but is used as an input",
                "set input: false (the model must not read it), or say why it is known at prediction time",
            )
        if feature.input and feature.name == label.column:
            r.problem(
                f"{where}.input",
                f"{feature.name} is the label: used as an input it gives the answer away",
                "set input: false",
            )
        if contracts and feature.name not in columns:
            r.problem(
                f"{where}.name",
                f"{feature.name!r} is not a column of the declared tables ({', '.join(contracts)})",
                "name a column of one of them, or declare the table that holds it under data.tables",
            )
    training = contracts.get(label.table)
    if training is None:
        return
    inputs = [c for c in training.column_names if training.column(c).role in INPUT_ROLES]
    missing = [c for c in inputs if c not in declared]
    if missing:
        r.problem(
            "task.features",
            f"{', '.join(missing)}: input(s) of the model (columns of role categorical or numeric in contract "
            f"{training.name}) not declared",
            "declare each with {name: <column>, known_at_prediction: true, note: <why it is known then>}",
        )
    for column in inputs:
        feature = task.features[declared[column]] if column in declared else None
        if feature is None or feature.input:
            continue  # undeclared: reported above; an input not known then: reported per feature
        said = "not known at prediction time" if not feature.known_at_prediction else "not an input"
        r.problem(
            f"task.features[{declared[column]}].input",
            f"{column} is declared {said}, yet contract {training.name} gives it role "
            f"{training.column(column).role}: the model reads it",
            f"take its role off in {training.path.name} so that training leaves it out, or declare it an "
            "input known at prediction time",
        )


def known_sources() -> dict[str, Path]:
    """Every source name moulin knows, with the file declaring it (its source spec,
    ``<contracts>/sources/<name>.yaml``)."""
    return all_spec_files()


def _check_sources(r: Reader, f: Framing) -> None:
    try:
        known = known_sources()
    except ContractError as exc:
        r.problem("data.sources", f"the known sources cannot be listed: {exc}", "fix that contract first")
        return
    for i, source in enumerate(f.data.sources):
        if source.name not in known:
            close = difflib.get_close_matches(source.name, list(known), n=1)
            r.problem(
                f"data.sources[{i}].name",
                f"unknown source {source.name!r}" + (f" (did you mean {close[0]}?)" if close else ""),
                f"name a source with a spec under schemas/sources/ or a bronze contract "
                f"(known: {', '.join(known)})",
            )


def _check_privacy(r: Reader, f: Framing, contracts: dict[str, Contract]) -> None:
    personal = f.privacy.personal_data
    if personal and not f.privacy.legal_basis:
        r.problem(
            "privacy.legal_basis",
            f"personal data is declared ({', '.join(personal)}) without a legal basis",
            "state the legal basis of the processing (e.g. legitimate interest, GDPR art. 6(1)(f))",
        )
    columns = {c for contract in contracts.values() for c in contract.column_names}
    for i, column in enumerate(personal):
        if contracts and column not in columns:
            r.problem(
                f"privacy.personal_data[{i}]",
                f"{column!r} is not a column of the declared tables ({', '.join(contracts)})",
                "name a column of one of them",
            )
    for name, contract in contracts.items():
        for column in contract.personal_columns:
            if column not in personal:
                r.problem(
                    "privacy.personal_data",
                    f"contract {name} marks {column} as personal data, the framing does not",
                    f"add {column} to privacy.personal_data (and state the legal basis)",
                )


def _check_storage(r: Reader, f: Framing) -> None:
    for i, step in enumerate(f.storage):
        for j, name in enumerate(step.tables):
            where = f"storage[{i}].tables[{j}]"
            try:
                contract = load_contract(name)
            except ContractError as exc:
                r.problem(where, f"no valid contract {name!r} ({exc})", "name a contract of schemas/")
                continue
            if contract.layer != step.layer:
                r.problem(
                    where,
                    f"{name} is a {contract.layer} table, listed under a {step.layer} step",
                    f"move it to the {contract.layer} step",
                )
