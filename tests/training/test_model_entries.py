"""Models as entries: the flights registry, a model added by one declaration, and the
networks found by scanning their package."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.training


def test_flights_declares_one_network_and_two_baselines_in_order() -> None:
    from moulin.training.tabular_models import FLIGHTS_MODELS

    entries = FLIGHTS_MODELS.chosen(None)
    assert [(e.name, e.kind) for e in entries] == [
        ("mlp", "network"),
        ("logreg", "baseline"),
        ("hist_gbt", "baseline"),
    ]
    assert [e.name for e in FLIGHTS_MODELS.chosen(("hist_gbt", "mlp"))] == ["hist_gbt", "mlp"]
    with pytest.raises(ValueError, match="unknown model.*'svm'.*choose among mlp, logreg, hist_gbt"):
        FLIGHTS_MODELS.chosen(("svm",))
    with pytest.raises(ValueError, match="choose among"):
        FLIGHTS_MODELS.chosen(())


def test_a_name_is_declared_once() -> None:
    from moulin.training.baselines import LogisticBaseline
    from moulin.training.model_entries import ModelEntry, ModelRegistry
    from moulin.training.tabular_models import baseline_fit

    registry = ModelRegistry("test")
    registry.declare(ModelEntry("logreg", "baseline", baseline_fit(LogisticBaseline)))
    with pytest.raises(ValueError, match="'logreg' of test is declared twice"):
        registry.declare(ModelEntry("logreg", "baseline", baseline_fit(LogisticBaseline), {"C": 0.1}))


def test_a_second_baseline_is_one_declaration(settings, synthetic_table) -> None:
    """A baseline declared with its own options is fitted, evaluated and compared beside
    the others with no other edit (no Spark: the network is not trained here)."""
    from moulin.training.binary_results import choose_and_compare, evaluate_fitted, training_results
    from moulin.training.model_entries import ModelEntry, ModelRegistry
    from moulin.training.prepared_run import prepare_run
    from moulin.training.run_options import TrainingOptions
    from moulin.training.tabular_models import FLIGHTS_MODELS
    from moulin.training.training_results import TrainingResults

    registry = ModelRegistry("flights-test")
    registry.declare(FLIGHTS_MODELS.entries["logreg"])
    registry.declare(
        ModelEntry("logreg_strong", "baseline", FLIGHTS_MODELS.entries["logreg"].fit, {"C": 0.01})
    )
    options = TrainingOptions(
        contract="flight_features", features_uri=synthetic_table["uri"], version=0, use_gpu=False,
        run_id="entries", bootstrap_resamples=20,
    )  # fmt: skip
    entries = registry.chosen(None)
    run = prepare_run(None, settings, options, {e.name: dict(e.options) for e in entries})
    fitted = [e.fit(e, run) for e in entries]
    assert fitted[1].hyperparams["C"] == 0.01 and fitted[0].hyperparams["C"] == 1.0
    assert fitted[1].model_uri.endswith("/logreg_strong/model.skops")
    evaluated = {f.name: evaluate_fitted(run, f) for f in fitted}
    results = training_results(run, evaluated, choose_and_compare(run, evaluated, fitted))
    assert [m.model for m in results.models] == ["logreg", "logreg_strong"]
    assert {(c.a, c.b) for c in results.comparisons} == {("logreg", "logreg_strong")}
    assert results.best_model in {"logreg", "logreg_strong"} and results.chosen.model == results.best_model
    assert all(m.metric("roc_auc").value > 0.6 for m in results.models)
    # built typed, written as JSON, read back the same, byte for byte
    written = results.to_json()
    assert (
        TrainingResults.from_json(written) == results
        and TrainingResults.from_json(written).to_json() == written
    )


def test_networks_are_found_by_scanning_their_package() -> None:
    from moulin.training.networks import build_network, network, registered_networks

    assert {"mlp", "mlp_classes", "text_cnn", "minilm", "cnn", "efficientnet_lite0"} <= set(
        registered_networks()
    )
    with pytest.raises(ValueError, match="unknown network 'nope': registered networks are cnn, "):
        build_network("nope", (), 0, {})
    with pytest.raises(ValueError, match="network 'mlp' is declared twice"):
        network("mlp")(lambda cardinalities, n_numeric, config: None)
