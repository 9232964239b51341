"""Loading framings: a file into a validated :class:`~moulin.framing.model.Framing`,
and where each use case's framing lives (``Settings.usecase_dirs``)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from moulin.framing.checks import check_coherence
from moulin.framing.model import (
    BASELINE_KINDS,
    FRAMING_FILE,
    METRICS,
    STORAGE_LAYERS,
    TASK_TYPES,
    Baseline,
    DataNeeds,
    DataSource,
    Decision,
    Feature,
    Framing,
    FramingError,
    Hardware,
    Label,
    MetricGoal,
    Privacy,
    Problem,
    Scope,
    StorageStep,
    Task,
)
from moulin.framing.reader import Reader, read_framing_file, shown
from moulin.settings import Settings, load_settings

_TOP = (
    "name", "question", "decision", "scope", "task", "metric", "data", "storage", "privacy", "hardware", "limits",
)  # fmt: skip


def parse_framing(data: Any, path: Path, lines: Mapping[str, int] | None = None) -> Framing:
    """Validate the parsed YAML ``data`` of ``path`` (``lines``: field -> line) and build a
    :class:`Framing`; raises :class:`FramingError` listing every problem."""
    r = Reader(Path(path), lines or {})
    if not isinstance(data, dict):
        r.problem(
            "(top)",
            f"expected a mapping of fields, got {shown(data)}",
            f"write the fields {', '.join(_TOP)} (see docs/guides/framing.md)",
        )
        raise FramingError(r.problems)
    top = r.mapping(data, "", _TOP, _TOP)
    name = r.text(top, "name", "")

    d = r.mapping(
        top.get("decision"), "decision", ("supports", "acted_on_by", "when"), ("supports", "acted_on_by")
    )
    decision = Decision(
        r.text(d, "supports", "decision"),
        r.text(d, "acted_on_by", "decision"),
        r.text(d, "when", "decision", False),
    )
    s = r.mapping(
        top.get("scope"), "scope", ("ai_can_help", "ai_cannot_help"), ("ai_can_help", "ai_cannot_help")
    )
    scope = Scope(r.texts(s, "ai_can_help", "scope"), r.texts(s, "ai_cannot_help", "scope"))
    task = _task(r, top.get("task"))
    metric = _metric(r, top.get("metric"))
    data_needs = _data(r, top.get("data"))
    storage = tuple(_storage(r, where, item) for where, item in r.items(top, "storage", ""))
    p = r.mapping(
        top.get("privacy"), "privacy", ("personal_data", "legal_basis", "note", "ethical_risks"),
        ("personal_data", "ethical_risks"),
    )  # fmt: skip
    privacy = Privacy(
        r.texts(p, "personal_data", "privacy", required=False),
        r.text(p, "legal_basis", "privacy", False),
        r.text(p, "note", "privacy", False),
        r.texts(p, "ethical_risks", "privacy"),
    )
    h = r.mapping(
        top.get("hardware"), "hardware", ("training", "serving", "accelerator"), ("training", "serving")
    )
    hardware = Hardware(
        r.text(h, "training", "hardware"),
        r.text(h, "serving", "hardware"),
        r.text(h, "accelerator", "hardware", False),
    )
    framing = Framing(
        name=name,
        path=Path(path),
        question=r.text(top, "question", ""),
        decision=decision,
        scope=scope,
        task=task,
        metric=metric,
        data=data_needs,
        storage=storage,
        privacy=privacy,
        hardware=hardware,
        limits=r.texts(top, "limits", ""),
    )
    if not r.problems:
        check_coherence(r, framing)
    if name and name != Path(path).parent.name and Path(path).name == FRAMING_FILE:
        r.problem(
            "name", f"{name!r} differs from the use case's folder {Path(path).parent.name!r}", "rename one"
        )
    if r.problems:
        raise FramingError(r.problems)
    return framing


_NO_TASK = Task("binary", "", "", "", Label("", ""), ())


def _task(r: Reader, raw: Any) -> Task:
    allowed = ("type", "target", "unit", "prediction_time", "label", "features", "classes", "positive_class")
    t = r.mapping(raw, "task", allowed, ("type", "target", "unit", "prediction_time", "label", "features"))
    if not t:
        return _NO_TASK
    kind = r.choice(t, "type", "task", TASK_TYPES) or "binary"
    lab = r.mapping(t.get("label"), "task.label", ("table", "column"), ("table", "column"))
    label = Label(r.text(lab, "table", "task.label"), r.text(lab, "column", "task.label"))
    features = []
    for where, item in r.items(t, "features", "task"):
        f = r.mapping(
            item, where, ("name", "known_at_prediction", "input", "note"), ("name", "known_at_prediction")
        )
        if not f:
            continue
        features.append(
            Feature(
                r.text(f, "name", where),
                r.flag(f, "known_at_prediction", where, True),
                r.flag(f, "input", where, True),
                r.text(f, "note", where, False),
            )
        )
    classes = r.texts(t, "classes", "task", required=False)
    positive = r.text(t, "positive_class", "task", False)
    if kind == "binary" and classes and len(classes) != 2:
        r.problem("task.classes", f"a binary task has 2 classes, not {len(classes)}", "name the two classes")
    if kind == "multiclass" and len(classes) < 3:
        r.problem("task.classes", "a multi-class task needs its 3 or more classes", "list the class names")
    if positive and classes and positive not in classes:
        r.problem(
            "task.positive_class", f"{positive!r} is not among classes {list(classes)}", "name one of them"
        )
    return Task(
        kind,  # type: ignore[arg-type]
        r.text(t, "target", "task"),
        r.text(t, "unit", "task"),
        r.text(t, "prediction_time", "task"),
        label,
        tuple(features),
        classes,
        positive,
    )


def _metric(r: Reader, raw: Any) -> MetricGoal:
    m = r.mapping(
        raw, "metric", ("name", "why", "threshold", "threshold_why", "baseline"),
        ("name", "why", "threshold", "threshold_why", "baseline"),
    )  # fmt: skip
    name = r.choice(m, "name", "metric", tuple(METRICS)) or ""
    b = r.mapping(
        m.get("baseline"), "metric.baseline", ("kind", "description", "value"), ("kind", "description")
    )
    baseline = Baseline(
        r.choice(b, "kind", "metric.baseline", BASELINE_KINDS) or "rule",  # type: ignore[arg-type]
        r.text(b, "description", "metric.baseline"),
        r.number(b, "value", "metric.baseline"),
    )
    threshold = r.number(m, "threshold", "metric")
    return MetricGoal(
        name, r.text(m, "why", "metric"), threshold if threshold is not None else math.nan,
        r.text(m, "threshold_why", "metric"), baseline,
    )  # fmt: skip


def _data(r: Reader, raw: Any) -> DataNeeds:
    d = r.mapping(
        raw, "data", ("sources", "tables", "history", "volume", "growth"),
        ("sources", "tables", "history", "volume", "growth"),
    )  # fmt: skip
    sources = []
    for where, item in r.items(d, "sources", "data"):
        s = r.mapping(item, where, ("name", "what"), ("name", "what"))
        if s:
            sources.append(DataSource(r.text(s, "name", where), r.text(s, "what", where)))
    return DataNeeds(
        tuple(sources),
        r.texts(d, "tables", "data"),
        r.text(d, "history", "data"),
        r.text(d, "volume", "data"),
        r.text(d, "growth", "data"),
    )


def _storage(r: Reader, where: str, raw: Any) -> StorageStep:
    s = r.mapping(raw, where, ("layer", "what", "where", "schedule", "tables"), ("layer", "what"))
    return StorageStep(
        (r.choice(s, "layer", where, STORAGE_LAYERS) or "source"),  # type: ignore[arg-type]
        r.text(s, "what", where),
        r.text(s, "where", where, False),
        r.text(s, "schedule", where, False),
        r.texts(s, "tables", where, required=False),
    )


def load_framing(path: Path | str) -> Framing:
    """Load and validate the framing file ``path`` (:class:`FramingError` lists every problem)."""
    data, lines = read_framing_file(Path(path))
    return parse_framing(data, Path(path), lines)


def framing_file(name: str, settings: Settings | None = None) -> Path:
    """The framing file of use case ``name``: ``<folder>/<name>/framing.yaml`` in the first of
    ``Settings.usecase_dirs`` (moulin's own, then this installation's) that holds one."""
    dirs = (settings or load_settings()).usecase_dirs
    for folder in dirs:
        if (folder / name / FRAMING_FILE).is_file():
            return folder / name / FRAMING_FILE
    return dirs[0] / name / FRAMING_FILE


def framing_files(settings: Settings | None = None) -> dict[str, Path]:
    """Every use case's framing file, by use-case name (moulin's own first)."""
    found: dict[str, Path] = {}
    for folder in (settings or load_settings()).usecase_dirs:
        for p in sorted(folder.glob(f"*/{FRAMING_FILE}")):
            found.setdefault(p.parent.name, p)
    return found


def find_framing(target: str, settings: Settings | None = None) -> Path:
    """The framing file of ``target``: a file path, or a use case's name."""
    if target.endswith((".yaml", ".yml")) or "/" in target:
        return Path(target)
    path = framing_file(target, settings)
    if not path.is_file():
        known = ", ".join(framing_files(settings)) or "none"
        raise FramingError(
            [Problem(path, None, "(file)", f"use case {target!r} has no framing file",
                     f"write {path}, or name a use case that has one ({known})")]
        )  # fmt: skip
    return path


def load_usecase_framing(name: str, settings: Settings | None = None) -> Framing:
    """The validated framing of use case ``name``."""
    return load_framing(find_framing(name, settings))
