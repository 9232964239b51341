"""Parameters of the image use case: one place for its defaults."""

from __future__ import annotations

from dataclasses import dataclass

CLASS_NAMES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


@dataclass(frozen=True)
class FashionParams:
    """Defaults of the image use case (CLI options and the DAG derive from them)."""

    #: The release date of Fashion-MNIST: the drop's ``ds``.
    drop: str = "2017-08-25"
    #: Seed of the train / validation split of the official training set.
    split_seed: int = 17
    #: Share of the official training set held out for validation (model choice, early stopping).
    validation_share: float = 0.1
    #: CNN from scratch.
    #: Epochs of its cosine schedule (the learning rate reaches zero at the last one).
    cnn_epochs: int = 20
    #: The CNN trains its whole schedule (the epoch kept is still the best on validation):
    #: stopped early, it stops with the learning rate still high (see docs/measured.md).
    cnn_early_stopping: bool = False
    cnn_batch_size: int = 128
    cnn_learning_rate: float = 2e-3
    cnn_channels: tuple[int, ...] = (32, 64, 128)
    #: Pretrained EfficientNet-Lite0: input resolution, epochs of head-only then last-block training.
    effnet_resolution: int = 48
    effnet_head_epochs: int = 1
    effnet_finetune_epochs: int = 2
    #: Share of the train split EfficientNet trains on: on 2 CPU cores a 48 px pass runs
    #: ~170 images/s forward, ~75 images/s with the last blocks training.
    effnet_train_fraction: float | None = 0.25
    effnet_last_blocks: int = 2
    effnet_learning_rate: float = 1e-3
    #: Early stopping on the validation loss.
    patience: int = 3
    #: Classic baseline: logistic regression on pixels, inverse regularisation chosen on validation.
    logreg_c_grid: tuple[float, ...] = (0.01, 0.1, 1.0)
    #: Resamples of the bootstrap intervals and paired tests.
    bootstrap_resamples: int = 1000
    seed: int = 7
    #: Models trained by default, and the DDP ranks of the networks.
    models: tuple[str, ...] = ("logreg", "cnn", "efficientnet_lite0")
    num_processes: int = 2
    #: The recommended model is the best on validation by this metric.
    select_by: str = "accuracy"


PARAMS = FashionParams()
