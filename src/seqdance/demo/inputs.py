"""The demo's bundled inputs: seven small proteins (two MD trajectories, five structures)
and one deep mutational scan, shipped inside the package under ``data/``."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path


@dataclass(frozen=True)
class DemoProtein:
    """One bundled protein of the training set."""

    name: str
    source: str  # dataset source (selects the training data group)
    kind: str  # md or nma
    files: tuple[str, ...]  # md: (topology, trajectory); nma: (structure,); under data/
    label: str  # train or test
    note: str


PROTEINS: tuple[DemoProtein, ...] = (
    DemoProtein("3tvj_I", "ATLAS", "md", ("md/3tvj_I.pdb", "md/3tvj_I_10frames.dcd"), "train",
                "ATLAS all-atom MD, 10 frames"),
    DemoProtein("5xnd", "mdCATH", "md", ("md/5xnd_topology.pdb", "md/5xnd_6frames.dcd"), "train",
                "GetContacts test trajectory, 6 frames"),
    DemoProtein("2g3r", "proteinflow_pdb", "nma", ("structures/2g3r.pdb",), "train",
                "PDB 2G3R (authors' NMA reference)"),
    DemoProtein("1GJS", "proteinflow_pdb", "nma", ("structures/1GJS.pdb",), "train",
                "mega-scale wild type"),
    DemoProtein("1I6C", "proteinflow_pdb", "nma", ("structures/1I6C.pdb",), "train",
                "mega-scale wild type"),
    DemoProtein("2M8I", "proteinflow_pdb", "nma", ("structures/2M8I.pdb",), "train",
                "mega-scale wild type"),
    DemoProtein("2KCF", "proteinflow_pdb", "nma", ("structures/2KCF.pdb",), "test",
                "mega-scale wild type (held out)"),
)  # fmt: skip
ASSAY = "assay/F7YBW8_MESOW_Aakre_2015.csv"  # the wild type is the .fasta beside it
PREDICTED = ("3tvj_I", "2KCF")  # plus the assay's wild type


def bundled_data() -> Path:
    """The folder of the demo's bundled inputs (inside the installed package)."""
    return Path(str(resources.files("seqdance.demo") / "data"))


def copy_inputs(inputs: Path) -> None:
    """Copy the bundled data (with its README of origins) to ``inputs``."""
    shutil.copytree(bundled_data(), inputs, ignore=shutil.ignore_patterns("__pycache__"))
