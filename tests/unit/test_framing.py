"""Framings as data (moulin.framing): the four use cases' framings validate, and each
coherence check finds its mistake at the right file:line:field; the sentence that sets a
result against the threshold; ``moulin usecase check``."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from moulin.cli import run
from moulin.errors import DataError, MoulinError
from moulin.framing import (
    METRICS,
    FramingError,
    framing_file,
    framing_files,
    known_sources,
    load_framing,
    load_usecase_framing,
)
from moulin.reporting.framing import fmt_goal, goal_sentence, naive_score
from moulin.settings import REPO_ROOT, load_settings
from moulin.training.classification_results import ClassificationResults
from moulin.usecases.mail.summary import against_goal

USE_CASES = ("flights", "fashion", "sentiment", "mail")


def _text(name: str) -> str:
    return framing_file(name).read_text(encoding="utf-8")


def _line_of(text: str, snippet: str) -> int:
    """The 1-based line of the only line of ``text`` holding ``snippet``."""
    found = [i for i, line in enumerate(text.splitlines(), 1) if snippet in line]
    assert len(found) == 1, (snippet, found)
    return found[0]


def _problems(tmp_path: Path, text: str, name: str = "framing.yaml") -> tuple[Path, list[str]]:
    """The problems of ``text`` written as ``<tmp>/<its use case>/<name>``."""
    named = re.search(r"^name: (\S+)", text, re.M)
    path = tmp_path / (named.group(1) if named else "") / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    with pytest.raises(FramingError) as caught:
        load_framing(path)
    return path, [str(p) for p in caught.value.problems]


def _changed(name: str, old: str, new: str) -> str:
    text = _text(name)
    assert text.count(old) == 1, old
    return text.replace(old, new)


def _assert_problem(problems: list[str], prefix: str, *words: str) -> None:
    hits = [p for p in problems if p.startswith(prefix)]
    assert hits, f"no problem at {prefix!r} in {problems}"
    assert all(w in hits[0] for w in words), hits[0]
    assert " — " in hits[0], "a problem says what to do"


# -- the real framings --------------------------------------------------------------------


@pytest.mark.parametrize("name", USE_CASES)
def test_the_use_cases_framings_validate(name: str) -> None:
    framing = load_usecase_framing(name)
    assert framing.name == name and framing.path == load_settings().usecases_dir / name / "framing.yaml"
    assert framing.question.endswith("?")
    assert framing.task.type in METRICS[framing.metric.name].tasks
    assert framing.task.label.table in framing.data.tables
    assert {s.name for s in framing.data.sources} <= set(known_sources())
    assert not any(f.input and not f.known_at_prediction for f in framing.task.features)
    assert framing.limits and framing.hardware.training and framing.privacy.ethical_risks


def test_every_use_case_with_a_folder_has_a_framing() -> None:
    assert set(framing_files()) == set(USE_CASES)
    assert load_settings().usecases_dir == REPO_ROOT / "moulin" / "usecases"


def test_the_framings_state_the_metric_each_use_case_reports() -> None:
    """The metric of each framing is the one its training reports and chooses by."""
    from moulin.usecases.fashion.params import PARAMS as FASHION
    from moulin.usecases.sentiment.params import PARAMS as SENTIMENT

    assert load_usecase_framing("flights").metric.name == "roc_auc"
    assert load_usecase_framing("fashion").metric.name == FASHION.select_by == "accuracy"
    assert load_usecase_framing("sentiment").metric.name == SENTIMENT.select_by == "macro_f1"
    assert load_usecase_framing("mail").metric.name == "f1"
    # the flights inputs are exactly the feature table's categorical and numeric columns
    from moulin.contracts import load_contract

    contract = load_contract("flight_features")
    inputs = {c.name for c in contract.columns if c.role in ("categorical", "numeric")}
    assert {f.name for f in load_usecase_framing("flights").task.inputs} == inputs


def test_framing_error_is_a_data_error() -> None:
    assert issubclass(FramingError, DataError) and issubclass(FramingError, MoulinError)


# -- each coherence check, at its file:line:field -----------------------------------------


def test_a_metric_that_does_not_fit_the_task(tmp_path: Path) -> None:
    text = _changed("flights", "  type: binary\n", "  type: regression\n")
    path, problems = _problems(tmp_path, text)
    line = _line_of(text, "  name: roc_auc")
    _assert_problem(problems, f"{path}:{line}:metric.name:", "roc_auc", "regression", "rmse, mae, r2")

    text = _changed("flights", "  name: roc_auc\n", "  name: rmse\n")
    path, problems = _problems(tmp_path, text)
    _assert_problem(problems, f"{path}:{_line_of(text, '  name: rmse')}:metric.name:", "binary", "roc_auc")


def test_a_feature_not_known_at_prediction_time_used_as_an_input(tmp_path: Path) -> None:
    old = "{name: dep_delay, known_at_prediction: false, input: false,"
    text = _changed("flights", old, "{name: dep_delay, known_at_prediction: false,")
    path, problems = _problems(tmp_path, text)
    index = next(
        i for i, f in enumerate(load_usecase_framing("flights").task.features) if f.name == "dep_delay"
    )
    _assert_problem(
        problems,
        f"{path}:{_line_of(text, '{name: dep_delay,')}:task.features[{index}].input:",
        "dep_delay is not known at prediction time but is used as an input",
        "input: false",
    )


def test_a_model_input_declared_not_known_at_prediction_time(tmp_path: Path) -> None:
    """The feature table's contract gives the column a feature role: the model reads it."""
    old = "{name: visib, known_at_prediction: true,"
    text = _changed("flights", old, "{name: visib, known_at_prediction: false, input: false,")
    path, problems = _problems(tmp_path, text)
    index = next(i for i, f in enumerate(load_usecase_framing("flights").task.features) if f.name == "visib")
    _assert_problem(
        problems,
        f"{path}:{_line_of(text, '{name: visib,')}:task.features[{index}].input:",
        "visib is declared not known at prediction time",
        "flight_features",
    )
    # an input of the contract left undeclared
    text = _changed(
        "flights",
        "    - {name: visib, known_at_prediction: true,",
        "    - {name: pressure, known_at_prediction: true,",
    )
    path, problems = _problems(tmp_path, text)
    _assert_problem(
        problems, f"{path}:{_line_of(text, '  features:')}:task.features:", "visib", "not declared"
    )


def test_the_label_is_the_answer_not_an_input(tmp_path: Path) -> None:
    text = _changed(
        "mail",
        "    - {name: n_recipients, known_at_prediction: true,",
        "    - {name: label, known_at_prediction: true}\n    - {name: n_recipients, known_at_prediction: true,",
    )
    path, problems = _problems(tmp_path, text)
    _assert_problem(
        problems, f"{path}:{_line_of(text, '{name: label,')}:task.features[3].input:", "is the label"
    )


def test_a_label_that_is_not_a_column_of_the_declared_tables(tmp_path: Path) -> None:
    text = _changed("flights", "column: dep_delayed_15}", "column: delayed_15}")
    path, problems = _problems(tmp_path, text)
    line = _line_of(text, "  label: {table: flight_features")
    _assert_problem(
        problems,
        f"{path}:{line}:task.label.column:",
        "'delayed_15' is not a column of contract flight_features",
    )
    text = _changed(
        "sentiment", "  tables: [bronze_sentiment, silver_sentiment]", "  tables: [bronze_sentiment]"
    )
    path, problems = _problems(tmp_path, text)
    line = _line_of(text, "  label: {table: silver_sentiment")
    _assert_problem(problems, f"{path}:{line}:task.label.table:", "not among data.tables")


def test_personal_data_without_a_legal_basis(tmp_path: Path) -> None:
    text = _changed(
        "mail",
        "  legal_basis: Legitimate interest (GDPR art. 6(1)(f)) in protecting users and systems from spam\n",
        "",
    )
    path, problems = _problems(tmp_path, text)
    _assert_problem(
        problems, f"{path}:{_line_of(text, 'privacy:')}:privacy.legal_basis:", "without a legal basis", "GDPR"
    )


def test_personal_columns_of_the_contracts_must_be_declared(tmp_path: Path) -> None:
    text = _changed("mail", "from_address, from_name, to_addresses", "from_address, to_addresses")
    path, problems = _problems(tmp_path, text)
    line = _line_of(text, "  personal_data: [")
    _assert_problem(problems, f"{path}:{line}:privacy.personal_data:", "bronze_mail marks from_name")


def test_a_threshold_outside_the_metric_s_range(tmp_path: Path) -> None:
    text = _changed("fashion", "  threshold: 0.90\n", "  threshold: 90\n")
    path, problems = _problems(tmp_path, text)
    _assert_problem(
        problems,
        f"{path}:{_line_of(text, '  threshold: 90')}:metric.threshold:",
        "outside the range of accuracy",
    )


def test_a_threshold_no_better_than_the_naive_baseline(tmp_path: Path) -> None:
    text = _changed("flights", "  threshold: 0.65\n", "  threshold: 0.45\n")
    path, problems = _problems(tmp_path, text)
    _assert_problem(
        problems,
        f"{path}:{_line_of(text, '  threshold: 0.45')}:metric.threshold:",
        "no better than the naive",
    )


def test_an_unknown_source(tmp_path: Path) -> None:
    text = _changed("flights", "    - {name: weather,", "    - {name: wether,")
    path, problems = _problems(tmp_path, text)
    _assert_problem(
        problems, f"{path}:{_line_of(text, '{name: wether,')}:data.sources[1].name:", "'wether'", "weather?"
    )


def test_a_storage_table_of_another_layer(tmp_path: Path) -> None:
    text = _changed("sentiment", "    tables: [bronze_sentiment]", "    tables: [silver_sentiment]  # moved")
    path, problems = _problems(tmp_path, text)
    line = _line_of(text, "# moved")
    _assert_problem(problems, f"{path}:{line}:storage[2].tables[0]:", "silver table", "bronze step")


def test_types_unknown_fields_and_yaml_errors_are_all_reported(tmp_path: Path) -> None:
    text = _changed("fashion", "  type: multiclass\n", "  type: multi-class\n")
    text = text.replace("  threshold: 0.90\n", "  threshold: high\n").replace("limits:\n", "limit:\n")
    text = text.replace("    - Saying how sure it is, so that", "    - Saying how sure it is: so that")
    path, problems = _problems(tmp_path, text)
    _assert_problem(problems, f"{path}:{_line_of(text, '  type: multi-class')}:task.type:", "multiclass")
    _assert_problem(problems, f"{path}:{_line_of(text, 'threshold: high')}:metric.threshold:", "a number")
    _assert_problem(problems, f"{path}:{_line_of(text, 'limit:')}:limit:", "unknown field", "limits?")
    _assert_problem(problems, f"{path}:limits:", "missing required field")
    _assert_problem(
        problems, f"{path}:{_line_of(text, 'Saying how sure it is:')}:scope.ai_can_help[1]:", "quote the text"
    )
    path, problems = _problems(tmp_path, "name: x\nquestion: [unclosed\n", "broken.yaml")
    assert problems[0].startswith(f"{path}:3:(yaml): invalid YAML")
    path, problems = _problems(tmp_path, "", "empty.yaml")
    assert problems[0].startswith(f"{path}:(top): expected a mapping")


def test_the_name_is_the_use_case_s_folder(tmp_path: Path) -> None:
    text = _text("mail").replace("name: mail\n", "name: email\n")
    path = tmp_path / "mail" / "framing.yaml"
    path.parent.mkdir()
    path.write_text(text, encoding="utf-8")
    with pytest.raises(FramingError) as caught:
        load_framing(path)
    problems = [str(p) for p in caught.value.problems]
    _assert_problem(problems, f"{path}:{_line_of(text, 'name: email')}:name:", "'email' differs", "'mail'")


# -- the result against the threshold -----------------------------------------------------


def test_goal_sentence_meets_misses_and_says_what_is_unsure() -> None:
    goal = load_usecase_framing("flights").metric
    assert goal_sentence(goal, 0.7023) == "The model reaches 0.702 ROC AUC where 0.65 was needed."
    assert goal_sentence(goal, 0.61) == "The model falls short: 0.610 ROC AUC where 0.65 was needed."
    unsure = goal_sentence(goal, 0.66, (0.64, 0.68), baseline=0.5)
    assert "holds the threshold" in unsure and "0.640–0.680" in unsure
    assert unsure.endswith("the naive baseline (give every flight the same risk, the share of late flights in "
                           "the training months) scores 0.500.")  # fmt: skip
    assert "not available" in goal_sentence(goal, None)
    lower = dataclasses.replace(goal, name="log_loss", threshold=0.4)
    assert goal_sentence(lower, 0.35).startswith("The model reaches 0.350 log loss")
    assert goal_sentence(lower, 0.45).startswith("The model falls short: 0.450 log loss")
    assert fmt_goal(0.9) == "0.90" and fmt_goal(0.925) == "0.925"


def test_naive_scores_by_construction() -> None:
    fashion = load_usecase_framing("fashion").metric
    assert naive_score(fashion, [1000] * 10) == pytest.approx(0.1)
    sentiment = load_usecase_framing("sentiment").metric
    p = 0.6  # the majority class's F1 is 2p/(1+p); the others' 0
    assert naive_score(sentiment, [60, 25, 15]) == pytest.approx(2 * p / (1 + p) / 3)
    mail = load_usecase_framing("mail").metric
    assert naive_score(mail, positive_share=0.25) == pytest.approx(0.4)
    assert naive_score(load_usecase_framing("flights").metric) == 0.5
    assert naive_score(mail) is None


def test_the_mail_filter_against_its_threshold() -> None:
    """Read from a run's results.json: the recommended filter's spam F1, its interval and
    the naive baseline from the test share of spam (30 of 100: F1 0.6/1.3)."""
    per_class = [{"class": "ham", "support": 70}, {"class": "spam", "support": 30}]
    text = {
        "model": "text",
        "test": {"n": 100, "f1": 0.965, "per_class": per_class, "intervals": {"f1": [0.95, 0.98]}},
    }
    other = {"model": "text_sender", "test": {"n": 100, "f1": 0.5, "per_class": per_class}}
    results = {"selection": {"recommended": "text"}, "models": [other, text], "class_names": ["ham", "spam"]}
    said = against_goal(ClassificationResults.from_dict(results))
    assert said.startswith("The text filter reaches 0.965 F1 where 0.90 was needed;")
    assert "0.462" in said  # flag every message as spam: 2 * 0.3 / 1.3
    text["test"] |= {"f1": 0.85, "intervals": {"f1": [0.8, 0.91]}}
    said = against_goal(ClassificationResults.from_dict(results))
    assert said.startswith("The text filter falls short: 0.850 F1 where 0.90 was needed (its 95% interval")
    assert "0.800–0.910, holds the threshold" in said


def test_reports_hold_no_copy_of_the_framing_prose() -> None:
    """The question and limits are written once, in the framing files."""
    flights = (REPO_ROOT / "moulin" / "usecases" / "flights" / "report.py").read_text(encoding="utf-8")
    for prose in ("One year of data (2013)", "Will a flight leave", "known before departure"):
        assert prose not in flights
    fashion = (REPO_ROOT / "moulin" / "usecases" / "fashion" / "report.py").read_text(encoding="utf-8")
    assert "Which model should sort" not in fashion


# -- the command line ---------------------------------------------------------------------


def test_usecase_check_prints_ok_or_the_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["usecase", "check"]) == 0
    out = capsys.readouterr().out
    assert all(f"{framing_file(n)}: OK ({n}:" in out for n in USE_CASES)
    assert run(["usecase", "check", "flights"]) == 0
    assert "OK (flights: binary, ROC AUC >= 0.65)" in capsys.readouterr().out
    bad = tmp_path / "flights" / "framing.yaml"
    bad.parent.mkdir()
    text = _changed("flights", "    - {name: weather,", "    - {name: wether,")
    bad.write_text(text, encoding="utf-8")
    assert run(["usecase", "check", str(bad)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(
        f"{bad}:{_line_of(text, '{name: wether,')}:data.sources[1].name: unknown source"
    )
    assert run(["usecase", "check", "nosuch"]) == 1
    assert "use case 'nosuch' has no framing file" in capsys.readouterr().err


def test_the_guide_lists_every_metric_and_field() -> None:
    """docs/guides/framing.md: its metric table is METRICS, and it documents every field."""
    guide = (REPO_ROOT / "docs" / "guides" / "framing.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(\w+)` \| ([^|]+) \| ([^|]+) \| ([^|]+) \| (higher|lower) \|$", guide, re.M)
    assert {r[0] for r in rows} == set(METRICS)
    for name, label, tasks, range_text, better in rows:
        spec = METRICS[name]
        assert label.strip() == spec.label and tasks.strip() == ", ".join(spec.tasks)
        assert range_text.strip() == spec.range_text()
        assert (better == "higher") == spec.higher_is_better
    for field in ("ai_cannot_help", "prediction_time", "known_at_prediction", "threshold_why", "legal_basis",
                  "ethical_risks", "accelerator", "growth", "schedule"):  # fmt: skip
        assert f"`{field}`" in guide, field


def test_the_guide_s_example_is_a_framing_short_of_its_undeclared_inputs(tmp_path: Path) -> None:
    """The excerpt in docs/guides/framing.md passes every check but the one its text names."""
    guide = (REPO_ROOT / "docs" / "guides" / "framing.md").read_text(encoding="utf-8")
    (example,) = re.findall(r"```yaml\n(.*?)```", guide, re.S)
    path, problems = _problems(tmp_path, example)
    assert len(problems) == 1 and problems[0].startswith(
        f"{path}:{_line_of(example, '  features:')}:task.features:"
    )
    assert "not declared" in problems[0]
