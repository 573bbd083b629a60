"""Demo step 4: predictions (residue tables, pair arrays and plots) of a few sequences."""

from __future__ import annotations

from pathlib import Path

from seqdance.demo.results import Prediction
from seqdance.inference.plots import plot_pairs, plot_profiles
from seqdance.inference.predict import predict, write_pair_npz, write_residue_tsv


def run_predictions(
    model, sequences: dict[str, str], out: Path, figures: Path, progress: bool, fmt: str = "png"
) -> list[Prediction]:
    """Residue table, pair arrays and both plots (``fmt``: png, svg, pdf) of every sequence
    (name -> sequence)."""
    names = list(sequences)
    outputs = predict(model, [sequences[n] for n in names], progress=progress)
    results = []
    for name, output in zip(names, outputs, strict=True):
        title = f"{name}: demo model prediction (tiny model, not meaningful)"
        results.append(
            Prediction(
                name=name,
                sequence=sequences[name],
                residue_tsv=write_residue_tsv(
                    out / f"{name}.residue.tsv", sequences[name], output.residue
                ),
                pair_npz=write_pair_npz(out / f"{name}.pair.npz", output.pair),
                profile_png=plot_profiles(
                    figures / f"{name}_profiles.{fmt}", title, output.residue
                ),
                pair_png=plot_pairs(figures / f"{name}_pairs.{fmt}", title, output.pair),
            )
        )
    return results
