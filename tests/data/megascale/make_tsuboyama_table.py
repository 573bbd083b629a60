"""Write the mega-scale subset in the column layout of the published Tsuboyama 2023 table.

Input: ``system_info.csv`` of bioemu-benchmarks' mega-scale subset (97 wild types, 267 mutants;
microsoft/bioemu-benchmarks @b288358, MIT; a copy of Tsuboyama et al. 2023 values). Output: a
CSV with the 37 columns of ``Tsuboyama2023_Dataset2_Dataset3_20230416.csv`` in their order:
``WT_name`` = name + ``.pdb``, ``mut_type`` = ``wt`` or ``I23L`` / ``I23L:A45G`` (1-based),
``aa_seq`` = the sequence, ``deltaG``/``dG_ML`` = -dg_exp and ``ddG_ML`` = -ddg_exp (Tsuboyama's
sign: unfolding free energy, positive = stable), their 95% interval, ``Stabilizing_mut``;
columns the subset does not hold (DNA, K50s, per-protease values) are left empty. To exercise
the authors' filtering, the first wild type also gets: an unreliable row (``ddG_ML`` ``-``),
an insertion and a deletion, a second measurement of its first mutant and of itself.

    python tests/data/megascale/make_tsuboyama_table.py SYSTEM_INFO.csv OUT.csv
"""

from __future__ import annotations

import sys

import pandas as pd

sys.path.insert(0, "src")
from seqdance.benchmark.megascale import TSUBOYAMA_COLUMNS  # noqa: E402


def convert(system_info: pd.DataFrame) -> pd.DataFrame:
    rows = []
    clusters = {n: i for i, n in enumerate(dict.fromkeys(system_info["name_wt"]))}
    for r in system_info.itertuples(index=False):
        is_mutant = str(r.mutant).lower() in ("true", "1")
        mut_type = r.name.split("__", 1)[1].replace("_", ":") if is_mutant else "wt"
        wt_name = f"{r.name_wt}.pdb"
        ddg = -float(r.ddg_exp) + 0.0
        rows.append({
            "name": wt_name if mut_type == "wt" else f"{wt_name}_{mut_type}",
            "deltaG": -r.dg_exp, "deltaG_95CI_high": -r.dg_ci95_high,
            "deltaG_95CI_low": -r.dg_ci95_low, "deltaG_95CI": r.dg_ci95_low - r.dg_ci95_high,
            "aa_seq_full": r.sequence, "aa_seq": r.sequence, "mut_type": mut_type,
            "WT_name": wt_name, "WT_cluster": clusters[r.name_wt],
            "dG_ML": -r.dg_exp, "ddG_ML": ddg, "Stabilizing_mut": ddg > 1,
            "pair_name": mut_type if ":" in mut_type else "",
        })  # fmt: skip
    table = pd.DataFrame(rows)
    first = table[table["WT_name"] == table["WT_name"].iloc[0]]
    wt, mutant = first.iloc[0].to_dict(), first.iloc[1].to_dict()
    seq = wt["aa_seq"]
    extra = [
        {**mutant, "ddG_ML": mutant["ddG_ML"] + 0.5},  # measured twice: averaged
        {**wt, "ddG_ML": 0.2},  # the wild type measured twice
        {**mutant, "mut_type": "E2A", "aa_seq": seq[0] + "A" + seq[2:], "ddG_ML": "-",
         "name": f"{wt['WT_name']}_E2A"},  # unreliable: dropped
        {**wt, "mut_type": "ins3G", "aa_seq": seq[:3] + "G" + seq[3:], "ddG_ML": -1.0,
         "name": f"{wt['WT_name']}_ins3G"},  # insertion: dropped
        {**wt, "mut_type": "del3E", "aa_seq": seq[:2] + seq[3:], "ddG_ML": -2.0,
         "name": f"{wt['WT_name']}_del3E"},  # deletion: dropped
    ]  # fmt: skip
    table = pd.concat([table, pd.DataFrame(extra)], ignore_index=True)
    return table.reindex(columns=list(TSUBOYAMA_COLUMNS))


if __name__ == "__main__":
    source, out = sys.argv[1:3]
    convert(pd.read_csv(source)).to_csv(out, index=False)
