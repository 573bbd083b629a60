"""Demo step 2: a manifest with train/test labels, ``build_dataset`` and the loss weights."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from seqdance.data.build import BuildConfig, build_dataset
from seqdance.data.loss_weights import WEIGHTS_FILE, compute_loss_weights
from seqdance.demo.inputs import PROTEINS
from seqdance.errors import SeqDanceError
from seqdance.utils.io import atomic_path


def build_demo_dataset(inputs: Path, out: Path, progress: bool) -> tuple[int, int]:
    """Manifest with labels, ``build_dataset`` and loss weights; returns (n_train, n_test)."""
    rows = []
    for p in PROTEINS:
        paths = [str(inputs / f) for f in p.files]
        rows.append(
            {
                "name": p.name,
                "source": p.source,
                "kind": p.kind,
                "topology": paths[0] if p.kind == "md" else "",
                "trajectory": paths[1] if p.kind == "md" else "",
                "structure": paths[0] if p.kind == "nma" else "",
                "label": p.label,
            }
        )
    manifest = out / "manifest.csv"
    with atomic_path(manifest) as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False)
    report = build_dataset(manifest, out, BuildConfig(workers=1, progress=progress))
    if not report.ok:
        reasons = "; ".join(f"{k}: {v}" for k, v in report.failed.items())
        raise SeqDanceError(f"demo dataset build failed: {reasons}")
    compute_loss_weights(out, label="train").save(out / WEIGHTS_FILE)
    n_train = sum(p.label == "train" for p in PROTEINS)
    return n_train, len(PROTEINS) - n_train
