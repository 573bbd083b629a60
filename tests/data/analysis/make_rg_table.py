"""Regenerate megascale_rg.csv: radius of gyration of 30 mega-scale wild-type structures.

    python tests/data/analysis/make_rg_table.py \
        /work/shared/data/structures/megascale_wildtypes

The first 30 structures by file name; Rg (nm) of the protein heavy atoms of the first model
(mdtraj.compute_rg, unweighted); sequence from the residues (unknown -> X); every 4th row
(rows 3, 7, ...) is a test row.
"""

import sys
from pathlib import Path

import mdtraj as md
import pandas as pd

from seqdance.residues import one_letter

folder = Path(sys.argv[1])
rows = []
for i, path in enumerate(sorted(folder.glob("*.pdb"))[:30]):
    traj = md.load(str(path))
    protein = traj.topology.select("protein and element != H")
    heavy = traj.atom_slice(protein)[0]
    sequence = "".join(one_letter(r.name) for r in heavy.topology.residues)
    rg = float(md.compute_rg(heavy)[0])
    rows.append((path.stem, sequence, round(rg, 5), "test" if i % 4 == 3 else "train"))
out = Path(__file__).with_name("megascale_rg.csv")
pd.DataFrame(rows, columns=["name", "sequence", "rg_nm", "split"]).to_csv(out, index=False)
print(f"{len(rows)} rows -> {out}")
