"""The use-case kit without a cluster: discovery of declared use cases (moulin's and a
folder of one's own), what ``moulin usecase new`` writes from a framing and an onboarded
source, what is generated from it (stages, DAG, command), and the errors naming the
file, field or source that is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
from kit_files import FRAMING, SOURCE, onboard_parcels

from moulin.airflow_kit import PIPELINE, default_args
from moulin.settings import load_settings
from moulin.usecases.kit import UseCaseError, find_usecases, get_usecase
from moulin.usecases.kit.scaffold import scaffold

DECLARED = """
from moulin.usecases.kit import TableStep, UseCase

USECASE = UseCase(
    name="{name}",
    sources=(),
    steps=(TableStep("features", source="bronze_a", target="silver_a", transform=lambda rows: rows),),
    suite=lambda settings: None,
    models=("majority",),
)
"""


@pytest.fixture
def own(tmp_path, monkeypatch) -> Path:
    """A folder of one's own use cases and one of contracts, named by the settings' variables."""
    monkeypatch.setenv("MOULIN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MOULIN_USER_USECASES_DIR", str(tmp_path / "usecases"))
    monkeypatch.setenv("MOULIN_CONTRACTS_DIR", str(tmp_path / "contracts"))
    return tmp_path


def declare(own: Path, name: str, text: str = DECLARED) -> Path:
    path = own / "usecases" / name / "usecase.py"
    path.parent.mkdir(parents=True)
    path.write_text(text.format(name=name))
    return path


def test_use_cases_are_found_in_a_folder_of_ones_own_with_no_list_to_edit(own) -> None:
    declare(own, "kit_found_a")
    found = find_usecases(load_settings())
    assert found["kit_found_a"].steps[0].target == "silver_a"
    assert load_settings().own_usecases_dir == own / "usecases"
    assert get_usecase("kit_found_a").stage_name("features") == "kit_found_a_features"
    assert find_usecases(load_settings())["kit_found_a"] is found["kit_found_a"]  # imported once


def test_the_own_folder_defaults_under_home(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("MOULIN_HOME", str(tmp_path))
    monkeypatch.delenv("MOULIN_USER_USECASES_DIR", raising=False)
    settings = load_settings()
    assert settings.own_usecases_dir == tmp_path / "usecases"
    assert settings.usecase_dirs[0] == settings.usecases_dir  # moulin's own come first


def test_a_broken_declaration_is_named_with_what_to_do(own) -> None:
    path = declare(own, "kit_broken", "X = 1\n")
    with pytest.raises(UseCaseError, match=f"{path}: defines no USECASE"):
        get_usecase("kit_broken")
    assert "kit_broken" not in find_usecases(strict=False)  # logged, the others still load
    declare(own, "kit_renamed", DECLARED.replace('name="{name}"', 'name="other"'))
    with pytest.raises(UseCaseError, match="USECASE.name 'other' differs from its folder 'kit_renamed'"):
        get_usecase("kit_renamed")
    with pytest.raises(UseCaseError, match="no use case 'kit_nowhere'.*known: "):
        get_usecase("kit_nowhere")


def test_the_scaffold_writes_a_use_case_from_a_framing_and_an_onboarded_source(own) -> None:
    from moulin.contracts import load_contract
    from moulin.jobs.registry import stages
    from moulin.training.contract import FeatureContract

    onboard_parcels(own / "contracts", own / "drops", rows=10)
    done = scaffold("express", FRAMING)
    folder = own / "usecases" / "express"
    assert done.files == (
        folder / "framing.yaml",
        folder / "contracts" / "silver_express.yaml",
        folder / "usecase.py",
    )
    assert (folder / "framing.yaml").read_text() == FRAMING.read_text()
    assert not list((own / "usecases").glob(".*"))  # nothing left behind

    # the training table's contract: the bronze key, the label, the framing's inputs by role
    features = FeatureContract.load("silver_express")
    assert (features.key, features.label, features.split) == ("order_id", "label", "split")
    assert features.categorical == ("city",)
    assert features.numeric == ("quantity", "unit_price", "weight_kg")
    assert "customer" not in {c.name for c in load_contract("silver_express").columns}  # input: false
    assert load_contract("silver_express").table == "silver/express"

    # the declaration, found by discovery, and what the kit generates from it
    usecase = get_usecase("express")
    assert usecase.sources == (SOURCE,) and usecase.models == ("majority", "logreg", "mlp")
    assert usecase.framing.metric.name == "accuracy"
    assert 'positive_class="express"' in (folder / "usecase.py").read_text()
    assert usecase.wording().title == "Will the customer choose express shipping for this order?"
    assert usecase.wording().item == "order"
    registered = stages()
    assert registered["express_features"].environment == "platform"
    assert registered["express_train"].environment == "training"

    dag = usecase.dag()
    assert dag.dag_id == "express" and [t.task_id for t in dag.topological_sort()] == [
        "features",
        "train",
        "report",
    ]
    assert [a.uri for a in dag.timetable.asset_condition.objects] == [f"moulin://bronze/{SOURCE}"]
    assert [a.uri for a in dag.get_task("features").outlets] == ["moulin://silver/express"]
    assert dag.default_args == default_args(PIPELINE)

    from moulin.cli import build_parser

    args = build_parser().parse_args(["express", "run", "--ds", "2024-03-01", "--models", "logreg"])
    assert (args.ds, args.models, args.declared_usecase) == ("2024-03-01", "logreg", True)


def test_the_usecases_dag_file_builds_one_dag_per_declared_use_case(own) -> None:
    import runpy

    from moulin.orchestration import DAGS_FOLDER

    onboard_parcels(own / "contracts", own / "drops", rows=10)
    scaffold("express", FRAMING)
    dags = runpy.run_path(str(DAGS_FOLDER / "usecases.py"))
    assert {"express", "fashion_images", "sentiment_posts"} <= set(dags)
    assert dags["express"].fileloc == str(DAGS_FOLDER / "usecases.py")  # where Airflow parses it again


def test_a_follow_on_task_runs_after_the_last_table_step_beside_training(own) -> None:
    text = DECLARED.replace("import TableStep", "import FollowOnTask, TableStep")
    text = text.replace('target="silver_a"', 'target="silver_mail"')  # a contract the step's Asset names
    follow_on = 'follow_on=(FollowOnTask("views", stage="privacy_views"),)'
    declare(own, "kit_follow", text.replace('models=("majority",),', f'models=("majority",), {follow_on},'))
    usecase = get_usecase("kit_follow")
    dag = usecase.dag()
    upstream = {t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks}
    assert upstream == {"features": [], "train": ["features"], "report": ["train"], "views": ["features"]}


def test_declaration_errors_name_the_field_and_what_to_do() -> None:
    from moulin.usecases.kit import FollowOnTask, TableStep, UseCase

    step = TableStep("silver", source="bronze_a", target="silver_a", transform=lambda rows: rows)
    given = {"name": "kit_bad", "sources": (), "steps": (step,), "suite": lambda s: None, "models": ("m",)}
    with pytest.raises(UseCaseError, match=r"two of its tasks share a name .*rename the table step"):
        UseCase(**given, follow_on=(FollowOnTask("silver", stage="privacy_views"),))
    with pytest.raises(UseCaseError, match=r"two of its tasks share a name"):
        UseCase(**given, follow_on=(FollowOnTask("report", stage="privacy_views"),))
    with pytest.raises(UseCaseError, match=r"drop_dates is the string '2024-03-01'; give a tuple"):
        UseCase(**given, drop_dates="2024-03-01")  # type: ignore[arg-type]


def test_the_gates_of_several_drops_are_summed_for_the_report() -> None:
    from moulin.usecases.kit.chain import gate_totals

    a = {"ds": "d1", "rows_manifest": 5, "rows_read": 5, "rows_bronze": 4, "rows_quarantined": 1,
         "failures": {"bad date": 1}}  # fmt: skip
    b = {"ds": "d2", "rows_manifest": 3, "rows_read": 3, "rows_bronze": 1, "rows_quarantined": 2,
         "failures": {"bad date": 1, "unreadable": 1}}  # fmt: skip
    assert gate_totals([a]) == a and gate_totals([]) is None
    assert gate_totals([a, b]) == {
        "rows_manifest": 8, "rows_read": 8, "rows_bronze": 5, "rows_quarantined": 3,
        "failures": {"bad date": 2, "unreadable": 1},
    }  # fmt: skip


def test_the_mail_use_case_is_declared_once_and_its_command_is_generated() -> None:
    from moulin.cli import build_parser
    from moulin.jobs.registry import get_stage
    from moulin.usecases.mail.corpus import DROPS

    mail = get_usecase("mail")
    assert (mail.dag_name, mail.drop_dates, mail.pipeline) == (
        "mail_spam_filter",
        tuple(DROPS),
        "moulin.mail",
    )
    assert get_stage("mail_silver").environment == "platform"
    assert get_stage("mail_train").environment == "training"
    args = build_parser().parse_args(["mail", "run", "--limit", "50"])
    assert (args.declared_usecase, args.limit, args.ds, args.models) == (True, 50, None, "text,text_sender")


def test_scaffold_errors_name_the_file_field_or_source(own, tmp_path) -> None:
    onboard_parcels(own / "contracts", own / "drops", rows=10)
    with pytest.raises(UseCaseError, match="source 'nowhere'.*onboard it first"):
        scaffold("express", FRAMING, sources=("nowhere",))
    broken = tmp_path / "framing.yaml"
    broken.write_text(FRAMING.read_text().replace("column: express}", "column: expres}"))
    with pytest.raises(UseCaseError) as refused:
        scaffold("express", broken)
    assert f"{broken}:" in str(refused.value) and "task.label.column" in str(refused.value)
    other = tmp_path / "other.yaml"
    other.write_text(FRAMING.read_text().replace("name: express", "name: parcels_late"))
    with pytest.raises(
        UseCaseError,
        match=r"other.yaml:1:name: 'parcels_late' differs from the use case 'express' — set name: express",
    ):
        scaffold("express", other)
    with pytest.raises(UseCaseError, match="use case name 'Express!'"):
        scaffold("Express!", FRAMING)
    with pytest.raises(UseCaseError, match="is a moulin command already"):
        scaffold("source", FRAMING, reserved=frozenset({"source"}))
    assert not (own / "usecases" / "express").exists()  # nothing written
    scaffold("express", FRAMING)
    with pytest.raises(UseCaseError, match="use case 'express' exists"):
        scaffold("express", FRAMING)
