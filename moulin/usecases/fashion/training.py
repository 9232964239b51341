"""Training and comparing the image classifiers on one pinned snapshot of
``silver/fashion_images``: logistic regression on pixels (classic baseline), a
CNN from scratch and EfficientNet-Lite0 fine-tuned from ImageNet weights (both
DDP through the one trainer), evaluated on the official test set.

Files under ``models/fashion/<run id>/``: one folder per model (``model.pt`` or
``model.skops``, checkpoints per phase and epoch) and ``results.json`` (the
report's input).
"""

from __future__ import annotations

import numpy as np

from moulin.settings import Settings
from moulin.training.batches import ImageCodec
from moulin.training.classifiers import ClassifierSuite, Frames, NetworkSpec, Phase
from moulin.training.config import TrainConfig
from moulin.training.logistic_baseline import Features, LogisticBaseline
from moulin.training.split_copies import copies_across_splits
from moulin.usecases.fashion.corpus import published_results
from moulin.usecases.fashion.params import CLASS_NAMES, PARAMS, FashionParams

COLUMNS = ["image_id", "label", "pixels", "image_sha256"]
_LOGREG_MAX_ITER = 300


def network_specs(params: FashionParams = PARAMS) -> dict[str, NetworkSpec]:
    """The networks of the use case, from its parameters."""
    cnn_train = TrainConfig(
        batch_size=params.cnn_batch_size, patience=params.patience, seed=params.seed, schedule="cosine",
        eval_batch_size=1024, weight_decay=1e-4, early_stopping=params.cnn_early_stopping,
    )  # fmt: skip
    effnet_train = TrainConfig(batch_size=64, patience=params.patience, seed=params.seed, eval_batch_size=256)
    return {
        "cnn": NetworkSpec(
            name="cnn",
            network="cnn",
            family="CNN from scratch (3 conv blocks, batch norm; DDP via TorchDistributor)",
            model_config={"num_classes": len(CLASS_NAMES), "channels": list(params.cnn_channels)},
            phases=(Phase("train", params.cnn_epochs, params.cnn_learning_rate),),
            train=cnn_train,
        ),
        "efficientnet_lite0": NetworkSpec(
            name="efficientnet_lite0",
            network="efficientnet_lite0",
            family=f"EfficientNet-Lite0 pretrained on ImageNet, fine-tuned at {params.effnet_resolution} px",
            model_config={"num_classes": len(CLASS_NAMES), "resolution": params.effnet_resolution},
            phases=(
                Phase("head", params.effnet_head_epochs, params.effnet_learning_rate, {"stage": "head"}),
                Phase(
                    "last_blocks",
                    params.effnet_finetune_epochs,
                    params.effnet_learning_rate / 3,
                    {"stage": "last_blocks", "last_blocks": params.effnet_last_blocks},
                ),
            ),
            train=effnet_train,
            train_fraction=params.effnet_train_fraction,
        ),
    }


def _pixels(frames: Frames) -> Features:
    """Each image's pixels scaled to [0, 1], one row per image."""
    codec = ImageCodec(key="image_id", label="label")
    x = {
        s: codec.decode(f["pixels"].tolist()).reshape(len(f), -1).astype(np.float32) / 255.0
        for s, f in frames.items()
    }
    return Features(x, saved={"inputs": codec.to_dict()})


def _logistic_regression(params: FashionParams) -> LogisticBaseline:
    """Multinomial logistic regression on the pixels; C chosen on validation accuracy."""
    return LogisticBaseline(
        name="logreg",
        family="logistic regression on pixels (scikit-learn, C chosen on validation)",
        features=_pixels,
        c_grid=params.logreg_c_grid,
        score="accuracy",
        max_iter=_LOGREG_MAX_ITER,
        reported={"max_iter": _LOGREG_MAX_ITER},
    )


def suite(settings: Settings, params: FashionParams = PARAMS) -> ClassifierSuite:
    """The image classifiers of the use case and what its report needs of them."""
    from moulin.reporting.images import png_data_uri

    specs = network_specs(params)
    augmented = ImageCodec(key="image_id", label="label", augment=True)
    plain = ImageCodec(key="image_id", label="label")

    def describe(worst: list[dict], test) -> None:
        images = plain.decode(test["pixels"].iloc[[w["row"] for w in worst]].tolist()) if worst else []
        for w, image in zip(worst, images, strict=True):
            w["image"] = png_data_uri(image)

    def extra(frames: dict) -> dict:
        return {
            "duplicates": copies_across_splits({s: f["image_sha256"] for s, f in frames.items()}),
            "published": published_results(settings),
        }

    return ClassifierSuite(
        use_case="fashion",
        contract="silver_fashion",
        key="image_id",
        columns=tuple(COLUMNS),
        class_names=CLASS_NAMES,
        baselines={"logreg": _logistic_regression(params).fitter(settings)},
        networks=lambda frames: {name: (spec, augmented) for name, spec in specs.items()},
        network_names=tuple(specs),
        select_by=params.select_by,
        bootstrap_resamples=params.bootstrap_resamples,
        seed=params.seed,
        describe_examples=describe,
        extra_results=extra,
    )
