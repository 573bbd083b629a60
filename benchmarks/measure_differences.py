"""Measured effect of each authors-vs-ours option in docs/differences.md, on real data.

    python benchmarks/measure_differences.py [--threads 2] [--mutants 30]

- training (items 2-6, 13): the real 4-protein dataset of tests/test_train.py (3tvj_I and
  5xnd MD, 2g3r and 2KCF NMA) built by ``seqdance.data.build``; a random ESM2-35M-shaped
  SeqDance model (seed 0, eval mode); the loss of one batch per data group (whole proteins,
  N-terminal crop 1,024) with each option switched;
- scoring (items 7, 8): TEM-1 (263 residues) and the first ``--mutants`` single mutants of
  tests/data/scoring/blat_ecolx_30.csv, a random ESMDance-35M-shaped model (seed 0, non-zero
  head biases); all-token vs residue-only means, per channel and summary; Spearman of each
  convention with the measured fitness (2500 ug/ml ampicillin); one pass vs 1,022-residue
  windows on TEM-1 repeated to 1,100 residues;
- embeddings (item 9): all-token vs residue mean on tests/data/analysis/megascale_rg.csv;
- attention (item 10): top-L with L = tokens vs residues on the test proteins.

Prints one JSON object. Random weights: the numbers show how much each convention moves the
outputs, not the published models' accuracy.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"


def build_dataset(folder: Path) -> Path:
    from seqdance.data.build import BuildConfig, build_dataset

    tvj, xnd, nma = DATA / "md" / "3tvj_I", DATA / "md" / "5xnd", DATA / "nma"
    rows = [
        f"3tvj_I,ATLAS,md,{tvj / '3tvj_I.pdb'},{tvj / '3tvj_I_10frames.dcd'},,train",
        f"5xnd,mdCATH,md,{xnd / '5xnd_topology.pdb'},{xnd / '5xnd_6frames.dcd'},,test",
        f"2g3r,proteinflow_pdb,nma,,,{nma / '2g3r.pdb'},train",
        f"2KCF,proteinflow_sabdab,nma,,,{nma / '2KCF.pdb'},test",
    ]
    manifest = folder / "manifest.csv"
    header = "name,source,kind,topology,trajectory,structure,label"
    manifest.write_text("\n".join([header, *rows]) + "\n")
    out = folder / "ds"
    report = build_dataset(manifest, out, BuildConfig(workers=1, progress=False))
    assert report.ok, report.failed
    return out


def training_effects(root: Path) -> dict:
    from seqdance.data.dataset import DatasetConfig, ProteinDataset, collate
    from seqdance.data.loss_weights import AUTHORS_WEIGHTS, compute_loss_weights, load_weights
    from seqdance.model import SeqDanceConfig, SeqDanceModel
    from seqdance.model.loss import SeqDanceTargets, masked_rmse_loss
    from seqdance.schema import TRAINING_GROUPS

    torch.manual_seed(0)
    model = SeqDanceModel(SeqDanceConfig.from_dict({"esm2_select": "model_35M"})).eval()
    authors = load_weights(AUTHORS_WEIGHTS)
    ours_pooled = compute_loss_weights(root, label=None, nma_bands=False).weights
    out: dict = {}
    for clamp in (None, 2.0):
        ds = ProteinDataset(root, config=DatasetConfig(crop_size=1024, random_crop=False,
                                                       clamp=clamp))  # fmt: skip
        for group in ("ATLAS_GPCRmd_PED_mdCATH", "Proteinflow"):
            members = [i for i, g in enumerate(ds.groups) if g == group]
            batch = collate([ds[i] for i in members])
            with torch.no_grad():
                pred = model(batch["input_ids"], batch["attention_mask"])
            targets = SeqDanceTargets(batch["res"], batch["pair"])
            key = f"{group}/clamp={clamp}"
            for label, kwargs, weights in (
                ("authors", {}, authors[group]),
                ("element_mask", {"mask": "element"}, authors[group]),
                ("pooled_nma", {"nma_bands": False}, ours_pooled[group]),
                ("our_weights_pooled_element", {"mask": "element", "nma_bands": False},
                 ours_pooled[group]),
            ):  # fmt: skip
                loss, terms = masked_rmse_loss(pred.residue, pred.pair, targets, weights, **kwargs)
                out[f"{key}/{label}"] = {
                    "loss": round(float(loss), 5),
                    "terms": {k: round(float(v), 5) for k, v in terms.items()},
                }
            if clamp is None:
                valid = batch["res"][batch["res"] != -1]
                pair_valid = batch["pair"][batch["pair"] != -1]
                out[f"{group}/targets_above_2"] = int((valid > 2).sum() + (pair_valid > 2).sum())
                out[f"{group}/max_target"] = float(max(valid.max(), pair_valid.max()))
    full = ProteinDataset(root)
    training = ProteinDataset(root, group_table=TRAINING_GROUPS)
    out["proteins_read"] = {"all_sources": full.names, "authors_training_groups": training.names}
    return out


def interaction_cells() -> dict:
    from seqdance.features.getcontacts import read_contacts, residue_pair_counts

    tvj = DATA / "md" / "3tvj_I"
    header, lines = read_contacts(tvj / "3tvj_I_10frames_contact.tsv")
    lines = list(lines)
    residues = [("X", str(i)) for i in range(1, 39)]
    listed = residue_pair_counts(lines, residues, header.total_frames)
    both = residue_pair_counts(lines, residues, header.total_frames, cells="both")
    n_listed = sum(int((m > 0).sum()) for m in listed.values())
    n_both = sum(int((m > 0).sum()) for m in both.values())
    split = sum(int(((m > 0) & (m.T > 0)).sum()) // 2 for m in listed.values())
    return {
        "nonzero_cells_listed": n_listed,
        "nonzero_cells_both": n_both,
        "pairs_with_both_cells_filled_listed": split,
        "vdw_max_listed": float(listed["vdw"].max()),
        "vdw_max_both": float(both["vdw"].max()),
    }


def scoring_effects(n_mutants: int) -> dict:
    import pandas as pd
    from scipy.stats import spearmanr

    from seqdance.inference.fasta import read_fasta
    from seqdance.inference.mutations import build_mutant_set
    from seqdance.inference.options import ScoreOptions
    from seqdance.inference.score import score_mutants, score_sequences
    from seqdance.model import SeqDanceConfig, SeqDanceModel
    from seqdance.schema import resolve_properties

    torch.manual_seed(0)
    config = SeqDanceConfig.from_dict({"esm2_select": "model_35M", "model_select": "esmdance"})
    model = SeqDanceModel(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not name.startswith("esm2") and name.endswith("bias"):
                p.normal_(0, 0.3)
    tem1 = read_fasta(DATA / "scoring" / "blat_ecolx_wt.fasta")[0].sequence
    table = pd.read_csv(DATA / "scoring" / "blat_ecolx_30.csv").head(n_mutants)
    mutants = build_mutant_set(tem1, table["mutant"].tolist(), offset=24)
    channels = resolve_properties(None)
    allt = score_mutants(model, mutants, channels).columns()
    res = score_mutants(model, mutants, channels, ScoreOptions(residues_only=True)).columns()
    names = [c for c in allt if c not in channels or c in ("sasa_mean", "vdw", "corr")]
    rel = {c: np.abs(allt[c] / res[c] - 1) for c in names}
    fitness = table["2500"].to_numpy()
    out = {
        "tem1_n_mutants": len(table),
        "relative_difference_median_pct": {
            c: round(100 * float(np.median(v)), 2) for c, v in rel.items()
        },  # fmt: skip
        "relative_difference_max_pct": {
            c: round(100 * float(np.max(v)), 2) for c, v in rel.items()
        },  # fmt: skip
        "spearman_between_conventions": {
            c: round(float(spearmanr(allt[c], res[c])[0]), 4) for c in names
        },  # fmt: skip
        "spearman_with_fitness_all_tokens": round(
            float(spearmanr(-allt["norm_geometric_mean"], fitness)[0]), 4
        ),
        "spearman_with_fitness_residues_only": round(
            float(spearmanr(-res["norm_geometric_mean"], fitness)[0]), 4
        ),
    }
    long_wt = (tem1 * 5)[:1100]
    long_mutants = [long_wt[:k] + ("A" if long_wt[k] != "A" else "G") + long_wt[k + 1:]
                    for k in (50, 550, 1050)]  # fmt: skip
    props = resolve_properties("sasa_mean,psi")
    one = score_sequences(model, long_wt, long_mutants, props, ScoreOptions(residues_only=True))
    win = score_sequences(
        model, long_wt, long_mutants, props, ScoreOptions(residues_only=True, window=1022)
    )
    out["long_1100_one_pass_vs_windows_relative_difference_pct"] = [
        round(100 * float(x), 2) for x in np.abs(win / one - 1).max(axis=1)
    ]
    return out


def embedding_effects() -> dict:
    import pandas as pd

    from seqdance.analysis.embeddings import EmbeddingConfig, analyze_embeddings, mean_embeddings
    from seqdance.model import SeqDanceConfig, SeqDanceModel

    torch.manual_seed(0)
    model = SeqDanceModel(SeqDanceConfig.from_dict({"esm2_select": "model_35M"})).eval()
    table_path = DATA / "analysis" / "megascale_rg.csv"
    seqs = list(pd.read_csv(table_path)["sequence"])
    a = mean_embeddings(model, seqs)
    b = mean_embeddings(model, seqs, residues_only=True)
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    out = {"cosine_all_vs_residue_mean_min": round(float(cos.min()), 4),
           "relative_norm_difference_median_pct": round(
               100 * float(np.median(np.linalg.norm(a - b, axis=1) / np.linalg.norm(b, axis=1))),
               2)}  # fmt: skip
    for flag in (False, True):
        cfg = EmbeddingConfig(target="rg_nm", components=10, residues_only=flag)
        m = analyze_embeddings(model, table_path, cfg).metrics
        out[f"pearson_r_residues_only={flag}"] = round(m["pearson_r"], 4)
    return out


def attention_effects(root: Path) -> dict:
    from seqdance.analysis.attention import AttentionConfig, analyze_attention
    from seqdance.model import SeqDanceConfig, SeqDanceModel

    torch.manual_seed(0)
    model = SeqDanceModel(SeqDanceConfig.from_dict({"esm2_select": "model_35M"})).eval()
    out = {}
    values = {}
    for flag in (False, True):
        analysis = analyze_attention(model, root, AttentionConfig(label="all", top_residues=flag))
        s = analysis.summary
        values[flag] = s[s["metric"] == "top_l_ratio"]["value"].to_numpy()
    rel = np.abs(values[False] / values[True] - 1)
    out["top_l_ratio_relative_difference_median_pct"] = round(100 * float(np.nanmedian(rel)), 3)
    out["top_l_ratio_relative_difference_max_pct"] = round(100 * float(np.nanmax(rel)), 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--mutants", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    result = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = build_dataset(Path(tmp))
        result["training"] = training_effects(root)
        result["interaction_cells_3tvj_I"] = interaction_cells()
        result["attention"] = attention_effects(root)
    result["scoring"] = scoring_effects(args.mutants)
    result["embeddings"] = embedding_effects()
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
