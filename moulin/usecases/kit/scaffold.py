"""``moulin usecase new <name> --framing F [--source S ...]``: a working classifier use
case from a framing and onboarded sources.

It checks the framing (:func:`moulin.framing.load_framing`), reads the bronze contract
of each source (its spec under ``sources/``), and writes under
``Settings.own_usecases_dir/<name>/``:

* ``framing.yaml``: the framing, as given;
* ``contracts/silver_<name>.yaml``: the training table's contract, drafted from the bronze
  contract: its key, ``label`` (the class index of the framing's target), ``label_name``,
  the framing's inputs (features known at prediction time) with their roles, ``split``;
* ``usecase.py``: the declaration (``USECASE``): the table step bronze -> silver (a pure
  DataFrame -> DataFrame transform), the tabular suite (the naive ``majority`` baseline,
  a logistic regression, the MLP; :mod:`moulin.usecases.kit.tabular`) and the report's wording.

The use case then runs at once: ``moulin <name> run`` and its DAG ``<name>``.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from moulin.contracts import Contract, load_contract
from moulin.framing import FramingError, load_framing, read_framing_file
from moulin.settings import Settings, load_settings
from moulin.sources.spec import load_spec
from moulin.usecases.kit.discovery import usecase_files
from moulin.usecases.kit.parts import UseCaseError

#: Contract types read as numbers by the suite; every other type is a category.
NUMERIC_TYPES = ("int", "bigint", "smallint", "tinyint", "double", "float")
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{1,40}$")
#: Shares of the rows in the train and validation splits (the rest is test).
TRAIN_SHARE, VALIDATION_SHARE = 0.7, 0.15


@dataclass(frozen=True)
class Scaffolded:
    """What :func:`scaffold` wrote."""

    name: str
    folder: Path
    files: tuple[Path, ...]
    contract: str
    features: dict[str, str]
    classes: tuple[str, ...]
    #: The source and the bronze table the table step reads.
    source: str = ""
    bronze_table: str = ""


def _is_numeric(type_: str) -> bool:
    return type_ in NUMERIC_TYPES or type_.startswith("decimal")


def _classes(framing, column) -> tuple[str, ...]:
    """The class names, in the order of the label's indices."""
    task, where = framing.task, f"{framing.path}: task.classes"
    if column.type == "string":
        if not task.classes:
            raise UseCaseError(
                f"{where}: the label {column.name!r} is text; list its values as task.classes "
                "(their order gives the class indices)"
            )
        return tuple(task.classes)
    if column.type == "boolean":
        return tuple(task.classes) if task.classes else ("false", "true")
    if column.type in ("int", "bigint", "smallint", "tinyint"):
        if task.classes:
            return tuple(task.classes)
        if task.type == "binary":
            return ("0", "1")
        raise UseCaseError(f"{where}: name the classes of the integer label {column.name!r} (0, 1, 2, ...)")
    raise UseCaseError(
        f"{framing.path}: task.label.column: {column.name!r} is of type {column.type}; a classifier's label "
        "is text (one of task.classes), a boolean or an integer class index"
    )


def _source_contracts(sources: tuple[str, ...]) -> dict[str, Contract]:
    out = {}
    for source in sources:
        try:
            spec = load_spec(source)
        except Exception as exc:  # noqa: BLE001 - re-raised naming the source and what to do
            raise UseCaseError(
                f"source {source!r}: {exc} — onboard it first (docs/tutorials/add-a-source.md: a spec "
                f"sources/{source}.yaml beside its bronze contract, then `moulin source run {source} --ds ...`)"
            ) from exc
        out[source] = load_contract(spec.contract)
    return out


def _features(framing, bronze: Contract) -> dict[str, str]:
    """The framing's inputs by name -> role (``categorical`` or ``numeric``)."""
    columns = {c.name: c for c in bronze.columns}
    out = {}
    for feature in framing.task.inputs:
        if feature.name not in columns:
            raise UseCaseError(
                f"{framing.path}: task.features: {feature.name!r} is not a column of {bronze.name} "
                f"(columns: {', '.join(columns)}) — name a column of the label's table"
            )
        if feature.name != framing.task.label.column:
            out[feature.name] = "numeric" if _is_numeric(columns[feature.name].type) else "categorical"
    if not out:
        raise UseCaseError(
            f"{framing.path}: task.features declares no input: mark the features the model reads"
        )
    return out


def _contract_text(name: str, bronze: Contract, key, features: dict[str, str], classes, framing) -> str:
    personal = [c for c in bronze.personal_data if c in features]
    lines = [
        f"# Drafted by `moulin usecase new {name}` from {bronze.name}; review it.",
        f"name: silver_{name}",
        "layer: silver",
        f"table: silver/{name}",
        "description: >",
        f"  The training table of use case {name}: one row per {bronze.table} row with its key,",
        f"  the label (class index of: {framing.task.target.strip()}),",
        "  the features known at prediction time and the split (seeded hash of the key).",
        f"owner: {bronze.owner or 'data-science'}",
        f"keys: [{key.name}]",
        "partition_by: [split]",
        f"personal_data: [{', '.join(personal)}]",
        "quarantine_threshold: 0.0",
        "columns:",
        f"  - {{name: {key.name}, type: {key.type}, nullable: false, role: key}}",
        "  - {name: label, type: int, nullable: false, role: label}",
        "  - {name: label_name, type: string, nullable: false}",
    ]
    for feature, role in features.items():
        type_ = "string" if role == "categorical" else "double"  # as the table step casts them
        lines.append(f"  - {{name: {feature}, type: {type_}, nullable: true, role: {role}}}")
    lines += [
        "  - {name: split, type: string, nullable: false, role: split}",
        "expectations:",
        f"  - {{type: unique, columns: [{key.name}]}}",
        "  - {type: in_set, column: split, values: [train, validation, test]}",
        f"  - {{type: between, column: label, min: 0, max: {len(classes) - 1}}}",
    ]
    return "\n".join(lines) + "\n"


def _label_expression(column, classes) -> str:
    if column.type == "string":
        return (
            f'F.array_position(F.array(*[F.lit(c) for c in CLASSES]), F.col("{column.name}")).cast("int") - 1'
        )
    return f'F.col("{column.name}").cast("int")'


def _usecase_text(name: str, framing, source: str, bronze: Contract, key, label, features, classes) -> str:
    binary = framing.task.type == "binary" and len(classes) == 2
    positive = (framing.task.positive_class or classes[1]) if binary else None
    measured = (
        "accuracy",
        "macro_f1",
        *(("roc_auc", "pr_auc", "f1", "precision", "recall") if binary else ()),
    )
    select_by = framing.metric.name if framing.metric.name in measured else "accuracy"
    feature_lines = "\n".join(
        f'        F.col("{f}").cast("string").alias("{f}"),' if role == "categorical"
        else f'        F.col("{f}").cast("double").alias("{f}"),'
        for f, role in features.items()
    )  # fmt: skip
    label_names = ", ".join(f'(label == {i}, "{c}")' for i, c in enumerate(classes))
    what = framing.data.sources[0].what if framing.data.sources else bronze.description
    # "one order of the shop" -> "order"
    words = framing.task.unit.split()
    item = words[1] if len(words) > 1 and words[0].lower() in ("one", "a", "an", "each") else "row"
    return f'''"""{framing.question.strip()}

Use case {name}, scaffolded by `moulin usecase new` from framing.yaml and source {source!r}:
{bronze.name} -> silver_{name} (label, features known at prediction time, split) ->
the naive baseline, a logistic regression and an MLP compared -> the report.
"""

from moulin.usecases.kit import ReportText, TableStep, UseCase
from moulin.usecases.kit.tabular import TabularSuite

#: The classes, in the order of their index in column ``label``.
CLASSES = ({"".join(json.dumps(c) + ", " for c in classes).rstrip()})
#: Seed of the split, and the shares of the train and validation splits (the rest is test).
SPLIT_SEED = 17
TRAIN_SHARE, VALIDATION_SHARE = {TRAIN_SHARE}, {VALIDATION_SHARE}


def to_training_rows(bronze):
    """{bronze.name} rows -> silver_{name}: the key, the label's class index and name, the
    features the framing marks as inputs, the split by a seeded hash of the key."""
    from pyspark.sql import functions as F

    bucket = F.pmod(F.xxhash64(F.col("{key.name}").cast("string"), F.lit(SPLIT_SEED)), F.lit(1000)) / 1000.0
    split = (
        F.when(bucket < TRAIN_SHARE, "train")
        .when(bucket < TRAIN_SHARE + VALIDATION_SHARE, "validation")
        .otherwise("test")
    )
    label = {_label_expression(label, classes)}
    label_name = F.lit("?")
    for test, value in [{label_names}]:
        label_name = F.when(test, value).otherwise(label_name)
    return bronze.select(
        F.col("{key.name}"),
        label.alias("label"),
        label_name.alias("label_name"),
{feature_lines}
        split.alias("split"),
    )


USECASE = UseCase(
    name="{name}",
    description={json.dumps(framing.question.strip())},
    sources=("{source}",),
    steps=(
        TableStep(
            "features",
            source="{bronze.name}",
            target="silver_{name}",
            transform=to_training_rows,
            parameters=(SPLIT_SEED, TRAIN_SHARE, VALIDATION_SHARE),
        ),
    ),
    suite=TabularSuite(
        use_case="{name}",
        contract="silver_{name}",
        class_names=CLASSES,
        select_by="{select_by}",
        positive_class={json.dumps(positive) if positive else None},
    ),
    models=("majority", "logreg", "mlp"),
    report=ReportText(item={json.dumps(item)}, items={json.dumps(item + "s")}, data_description={json.dumps(what.strip())}),
)
'''


def scaffold(
    name: str,
    framing_path: Path | str,
    sources: tuple[str, ...] = (),
    settings: Settings | None = None,
    force: bool = False,
    reserved: frozenset[str] = frozenset(),
) -> Scaffolded:
    """Write use case ``name`` from the framing file ``framing_path`` and ``sources`` (default:
    the framing's ``data.sources``) under ``Settings.own_usecases_dir``; returns what was written
    (``reserved``: names taken by other commands of the CLI).
    Raises :class:`UseCaseError` (or the framing's :class:`~moulin.framing.FramingError`)
    naming the file, field or source that is wrong, and writes nothing then."""

    settings = settings or load_settings()
    framing_path = Path(framing_path)
    if not NAME_PATTERN.match(name):
        raise UseCaseError(
            f"use case name {name!r}: use 2 to 41 lower-case letters, digits and _, starting with a letter"
        )
    if not framing_path.is_file():
        raise UseCaseError(
            f"--framing {framing_path}: no such file — write the framing first (docs/guides/framing.md)"
        )
    known = usecase_files(settings)
    folder = settings.own_usecases_dir / name
    if name in known and not (force and known[name].parent == folder):
        raise UseCaseError(
            f"use case {name!r} exists ({known[name]}): choose another name (or --force to rewrite yours)"
        )
    if (settings.usecases_dir / name).exists():
        raise UseCaseError(
            f"{name!r} is a use case of moulin's ({settings.usecases_dir / name}): choose another name"
        )
    if name in reserved and name not in known:
        raise UseCaseError(
            f"{name!r} is a moulin command already: choose another name for `moulin {name} run`"
        )

    try:
        raw, lines = read_framing_file(framing_path)
    except FramingError as exc:
        raise UseCaseError("the framing does not read:\n" + "\n".join(str(p) for p in exc.problems)) from None
    given = raw.get("name") if isinstance(raw, dict) else None
    if given != name:
        raise UseCaseError(
            f"{framing_path}:{lines.get('name', 1)}:name: {given!r} differs from the use case {name!r} — "
            f"set name: {name} in the framing (or scaffold it as {given})"
        )
    # the framing is checked where it will live: its name must be the folder's
    scratch = settings.own_usecases_dir / f".new-{name}"
    staging = scratch / name
    shutil.rmtree(scratch, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        shutil.copyfile(framing_path, staging / "framing.yaml")
        try:
            framing = load_framing(staging / "framing.yaml")
        except FramingError as exc:
            lines = [str(p).replace(str(staging / "framing.yaml"), str(framing_path)) for p in exc.problems]
            raise UseCaseError("the framing does not validate:\n" + "\n".join(lines)) from None
        if framing.task.type not in ("binary", "multiclass"):
            raise UseCaseError(
                f"{framing_path}: task.type: {framing.task.type!r}; the scaffold writes classifiers "
                "(binary, multiclass) — write this use case by hand (moulin.usecases.kit)"
            )
        sources = tuple(sources) or tuple(s.name for s in framing.data.sources)
        if not sources:
            raise UseCaseError(
                f"{framing_path}: data.sources is empty and no --source given: name the source"
            )
        contracts = _source_contracts(sources)
        by_contract = {c.name: (s, c) for s, c in contracts.items()}
        if framing.task.label.table not in by_contract:
            raise UseCaseError(
                f"{framing_path}: task.label.table: {framing.task.label.table!r} is not the bronze table of "
                f"source(s) {', '.join(sources)} ({', '.join(by_contract)}) — name the bronze contract that holds the label"
            )
        source, bronze = by_contract[framing.task.label.table]
        if len(bronze.keys) != 1:
            raise UseCaseError(
                f"contract {bronze.name}: keys: {list(bronze.keys)}; the training table needs one key column "
                "per row (its split is a hash of it) — declare one in the contract"
            )
        columns = {c.name: c for c in bronze.columns}
        key, label = columns[bronze.keys[0]], columns[framing.task.label.column]
        classes = _classes(framing, label)
        features = _features(framing, bronze)
        (staging / "contracts").mkdir()
        (staging / "contracts" / f"silver_{name}.yaml").write_text(
            _contract_text(name, bronze, key, features, classes, framing)
        )
        (staging / "usecase.py").write_text(
            _usecase_text(name, framing, source, bronze, key, label, features, classes)
        )
        if folder.exists():
            shutil.rmtree(folder)
        staging.rename(folder)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    files = (folder / "framing.yaml", folder / "contracts" / f"silver_{name}.yaml", folder / "usecase.py")
    return Scaffolded(name, folder, files, f"silver_{name}", features, classes, source, bronze.table)
