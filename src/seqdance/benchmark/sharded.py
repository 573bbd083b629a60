"""``seqdance benchmark`` on several processes: one shard per assay.

Each rank scores its assays (:func:`~seqdance.benchmark.run.score_assay`, longest first by
tokens) and writes each frame of scores atomically to ``OUT/shards/``; rank 0 then runs
:func:`~seqdance.benchmark.run.run_benchmark` with a scorer that reads those frames, so every
output file is written by the one-process code from the same numbers.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from seqdance.benchmark.assays import Assay, subsample
from seqdance.benchmark.run import BenchmarkResult, run_benchmark, score_assay
from seqdance.errors import SeqDanceError
from seqdance.inference import sharding
from seqdance.inference.options import ScoreOptions
from seqdance.model.quantize import state_fingerprint

SHARDS_DIR = "shards"


def frame_to_arrays(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """A scored assay's frame as arrays ``numpy.savez`` writes without pickling."""
    arrays = {"columns": np.array(list(frame.columns), dtype=str)}
    for i, column in enumerate(frame.columns):
        values = frame[column]
        arrays[f"c{i}"] = (
            values.to_numpy()
            if pd.api.types.is_numeric_dtype(values)
            else np.array(values.tolist(), dtype=str)  # fmt: skip
        )
    return arrays


def arrays_to_frame(arrays: dict[str, np.ndarray]) -> pd.DataFrame:
    """Inverse of :func:`frame_to_arrays` (text columns as Python strings)."""
    columns = arrays["columns"].tolist()
    data = {}
    for i, column in enumerate(columns):
        values = arrays[f"c{i}"]
        data[column] = values.tolist() if values.dtype.kind == "U" else values
    return pd.DataFrame(data, columns=columns)


def run_benchmark_sharded(
    group: sharding.Group,
    model,
    assays: Sequence[Assay],
    out_dir: str | os.PathLike,
    properties: Sequence[str],
    *,
    baselines: Sequence[str] = (),
    mlm=None,
    max_variants: int | None = None,
    options: ScoreOptions,
    **kwargs,
) -> BenchmarkResult | None:
    """:func:`~seqdance.benchmark.run.run_benchmark` over the ranks of ``group`` (same
    arguments; ``kwargs`` go to it on rank 0). Returns the result on rank 0, None elsewhere."""
    out_dir = Path(out_dir)
    chosen = [subsample(a, max_variants) for a in assays]
    shards = [
        sharding.Shard(k, (k,), len(a) * (len(a.wild_type) + 2)) for k, a in enumerate(chosen)
    ]
    manifest = {
        "assays": [(a.name, a.wild_type, len(a)) for a in chosen],
        "properties": list(properties),
        "baselines": list(baselines),
        "options": repr(options),
        "model": state_fingerprint(model),
        "mlm": state_fingerprint(mlm) if mlm is not None else None,
    }
    key = "benchmark-" + sharding.digest(manifest)

    def compute(shard: sharding.Shard) -> dict[str, np.ndarray]:
        assay = chosen[shard.items[0]]
        try:
            frame = score_assay(model, assay, properties, baselines=baselines, mlm=mlm,
                                options=options)  # fmt: skip
        except SeqDanceError as exc:  # skipped by run_benchmark, as one process does
            return {"error": np.array(str(exc))}
        return frame_to_arrays(frame)

    parts = sharding.run_shards(group, out_dir / SHARDS_DIR, key, shards, compute)
    if parts is None:
        return None
    done = iter(parts)

    def read_scores(*_args, **_kwargs) -> pd.DataFrame:  # called once per assay, in order
        arrays = next(done)
        if "error" in arrays:
            raise SeqDanceError(str(arrays["error"]))
        return arrays_to_frame(arrays)

    result = run_benchmark(model, assays, out_dir, properties, baselines=baselines, mlm=mlm,
                           max_variants=max_variants, options=options, scorer=read_scores,
                           **kwargs)  # fmt: skip
    sharding.remove_shards(out_dir / SHARDS_DIR, key)
    return result
