"""Reading one row-group slice of a split's Parquet files and encoding it with a
codec (:class:`SliceReader`): the unit of work of the training loader's pool
(:mod:`moulin.training.loader`), and the row counts (with a sample applied) that
both readers plan with."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from moulin.training import TrainingError
from moulin.training.parquet_files import ParquetOpener
from moulin.training.sharding import RowSlice


@dataclass
class SliceReader:
    """Reads a row-group slice and encodes it with the codec (runs in the pool's workers)."""

    opener: ParquetOpener
    codec_spec: dict
    columns: tuple[str, ...]
    sample: float | None = None
    key: str | None = None

    def __post_init__(self) -> None:
        self._codec = None

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_codec"] = None
        return state

    @property
    def codec(self):
        if self._codec is None:
            from moulin.training.batches import codec_from_dict

            self._codec = codec_from_dict(self.codec_spec)
        return self._codec

    def _kept(self, table):
        if self.sample is None or self.sample >= 1.0:
            return table
        import pyarrow as pa

        from moulin.training.data import sample_mask

        keys = table.column(self.key).to_numpy(zero_copy_only=False)
        return table.filter(pa.array(sample_mask(keys, self.sample)))

    def count(self, file: int) -> list[int]:
        """Rows kept of each row group of ``file`` (reads the key column when sampling)."""
        parquet = self.opener.open(file)
        metadata = parquet.metadata
        if self.sample is None or self.sample >= 1.0:
            return [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
        return [
            self._kept(parquet.read_row_group(i, columns=[self.key])).num_rows
            for i in range(metadata.num_row_groups)
        ]

    def read(self, part: RowSlice, rng_seed: Sequence[int] | None) -> tuple[np.ndarray, ...]:
        """``(*inputs, targets)`` of the slice's rows."""
        from moulin.training.batches import codec_arrays

        try:
            table = self.opener.opened(part.file).read_row_group(part.index, columns=list(self.columns))
        except TrainingError:
            raise
        except Exception as exc:
            raise TrainingError(
                f"cannot read row group {part.index} of {self.opener.uris[part.file]}: {exc}"
            ) from exc
        table = self._kept(table).slice(part.start, part.rows)
        rng = np.random.default_rng(list(rng_seed)) if rng_seed is not None else None
        return codec_arrays(self.codec, table, rng)


def split_reader(
    uris: Sequence[str], codec: Any, settings: Any = None, sample: float | None = None
) -> tuple[Any, SliceReader]:
    """The codec (from itself or its dict) and the :class:`SliceReader` of a split's files,
    reading the codec's columns; the key column only when it decides a sample (or when
    the codec has no Arrow path)."""
    from moulin.training.batches import codec_from_dict

    spec = codec if isinstance(codec, dict) else codec.to_dict()
    codec = codec_from_dict(spec) if isinstance(codec, dict) else codec
    columns = tuple(
        c
        for c in codec.columns
        if c != codec.key or sample is not None or not hasattr(codec, "arrays_from_arrow")
    )
    return codec, SliceReader(ParquetOpener(tuple(uris), settings), spec, columns, sample, codec.key)
