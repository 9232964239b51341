"""The image networks ``cnn`` and ``efficientnet_lite0`` (:mod:`moulin.training.vision`)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from moulin.training.networks import network
from moulin.training.vision import (
    FASHION_MNIST_MEAN,
    FASHION_MNIST_STD,
    EfficientNetLite0Classifier,
    SmallCNN,
)


@network("cnn")
def _cnn(cardinalities: Sequence[int], n_numeric: int, config: dict) -> nn.Module:
    return SmallCNN(
        channels=tuple(int(c) for c in config.get("channels", (32, 64, 128))),
        dropout=float(config.get("dropout", 0.25)),
        num_classes=int(config.get("num_classes", 10)),
        mean=float(config.get("mean", FASHION_MNIST_MEAN)),
        std=float(config.get("std", FASHION_MNIST_STD)),
        hidden=int(config.get("hidden", 256)),
        image_size=int(config.get("image_size", 28)),
    )


@network("efficientnet_lite0")
def _efficientnet_lite0(cardinalities: Sequence[int], n_numeric: int, config: dict) -> nn.Module:
    return EfficientNetLite0Classifier(
        num_classes=int(config.get("num_classes", 10)),
        resolution=int(config.get("resolution", 64)),
        pretrained=bool(config.get("pretrained", True)),
        stage=config.get("stage", "head"),
        last_blocks=int(config.get("last_blocks", 2)),
    )
