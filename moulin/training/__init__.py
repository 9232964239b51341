"""Training and comparing models on a feature table described by its contract.

Runs in the training environment (``.venv-train``: petastorm, torch, pyarrow 14)
on the driver and on the Spark executors.  Modules:

* :mod:`~moulin.training.config` -- optimisation defaults (:class:`TrainConfig`);
* :mod:`~moulin.training.contract` -- column roles from the feature table's contract;
* :mod:`~moulin.training.data` -- the Delta snapshot (version pinned) as files per
  split, read with pyarrow (pandas) for the baselines;
* :mod:`~moulin.training.loader` -- the same files as device batches for the networks
  (:mod:`~moulin.training.loader_options`: how, and by which reader;
  :mod:`~moulin.training.sharding`: equal row shares per rank;
  :mod:`~moulin.training.slice_reader`: one row-group slice read and encoded;
  :mod:`~moulin.training.batching`: the shuffle buffer and the batches made ahead;
  :mod:`~moulin.training.parquet_files`: local and ``hdfs://`` files read in place;
  :mod:`~moulin.training.petastorm_loader`: Petastorm's reader instead, by option);
* :mod:`~moulin.training.preprocessing` -- vocabularies, imputation, scaling, fitted on train;
* :mod:`~moulin.training.model` -- the tabular MLP with embeddings, predictions;
* :mod:`~moulin.training.networks` -- the networks by name, one module per family (scanned);
* :mod:`~moulin.training.ddp` -- the DistributedDataParallel loop run by TorchDistributor;
* :mod:`~moulin.training.checkpoints` -- checkpoints written in the background, resume;
* :mod:`~moulin.training.baselines` -- logistic regression and gradient-boosted trees;
* :mod:`~moulin.training.metrics` -- test metrics with bootstrap intervals, slices;
* :mod:`~moulin.training.leaderboard` -- the Delta leaderboard table;
* :mod:`~moulin.training.model_entries` -- a model as an entry (name, kind, fit, options) of
  a use case's registry (:mod:`~moulin.training.tabular_models`: the flights models);
* :mod:`~moulin.training.run_options` -- the typed options of a flights run;
* :mod:`~moulin.training.prepared_run` -- the pinned snapshot read, encoded, fingerprinted;
* :mod:`~moulin.training.binary_results` -- evaluation, selection on validation, paired
  comparison, the run's typed results and leaderboard rows;
* :mod:`~moulin.training.training_results` -- a binary run's results (``results.json``),
  typed: written by training, read by the flights report;
* :mod:`~moulin.training.compared_models` -- what binary and multi-class results share:
  metrics with intervals, the selection, paired comparisons, the :class:`ComparedModels` protocol;
* :mod:`~moulin.training.run` -- :func:`train_and_compare`, one training run end to end.
"""

from moulin.errors import DataError, MoulinError


class TrainingError(MoulinError):
    """A training run cannot proceed; the message says what to fix."""


class TrainingDataError(TrainingError, DataError):
    """The feature table cannot be trained on as it is (a split is empty, the table is
    not partitioned by its split): a retry on the same snapshot fails the same way."""


__all__ = ["TrainingDataError", "TrainingError"]
