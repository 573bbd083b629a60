"""Shared test fixtures: data paths, the tiny architecture and models (built once per
session), the naive reference forward, the in-process CLI runner and the real reference
records of a small dataset.

Session fixtures are shared between tests: a test that changes what it gets copies it first
(a model: ``copy.deepcopy``; a folder: ``shutil.copytree``; the records: ``list(...)``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest
import torch

from helpers import ROOT, TINY, load_naive_model
from seqdance.cli import main
from seqdance.data.store import ProteinRecord, encode_md, encode_nma, merge_into, write_index
from seqdance.features.structure import read_calphas
from seqdance.model import Esm2Architecture, SeqDanceConfig, SeqDanceModel
from seqdance.schema import INTERACTIONS, SS_CLASSES

DATA = ROOT / "tests" / "data"
TINY_SEED = 7  # the shared tiny model's seed

# Every command a test runs uses one thread unless the test asks for more: the default
# follows the machine's load (seqdance.utils.threads.default_threads), and runs that a test
# compares byte for byte (a training run and its resume) must not differ in thread count.
os.environ.setdefault("SEQDANCE_THREADS", "1")


@pytest.fixture(scope="module")
def one_torch_thread():
    """torch on one thread for a module's in-process runs (``pytestmark = usefixtures``):
    tiny models on a busy machine, where a second OpenMP thread waits for a time slice at
    every small op (it made the training tests up to 30x slower)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# -- data paths ------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def data_path() -> Callable[..., Path]:
    """``data_path("md", "3tvj_I")`` -> ``tests/data/md/3tvj_I`` (which must exist)."""

    def get(*parts: str) -> Path:
        path = DATA.joinpath(*parts)
        assert path.exists(), f"no test data file {path}"
        return path

    return get


# -- the tiny model ----------------------------------------------------------------------------
@pytest.fixture(scope="session")
def tiny_arch() -> Esm2Architecture:
    """The tiny ESM2 architecture: 2 layers, hidden size 32, 4 heads, FFN 64."""
    return TINY


@pytest.fixture(scope="session")
def make_tiny_model() -> Callable[..., SeqDanceModel]:
    """A builder of new tiny models in eval mode: ``make_tiny_model(seed, ...)``.

    ``head_biases``: the heads' biases drawn from N(0, 0.3), so that no output sits at a
    special value (the score tests divide by ``|P_wt| + 0.01``); ``noise``: that times
    N(0, 1) added to every parameter; other keywords go to :class:`SeqDanceConfig`.
    """

    def make(
        seed: int, *, head_biases: bool = False, noise: float = 0.0, **config
    ) -> SeqDanceModel:
        torch.manual_seed(seed)
        model = SeqDanceModel(SeqDanceConfig(arch=TINY, **config))
        with torch.no_grad():
            if noise:
                for param in model.parameters():
                    param.add_(noise * torch.randn_like(param))
            if head_biases:
                for name, param in model.named_parameters():
                    if not name.startswith("esm2") and name.endswith("bias"):
                        param.normal_(0, 0.3)
        return model.eval()

    return make


@pytest.fixture(scope="session")
def tiny_model(make_tiny_model) -> SeqDanceModel:
    """The shared tiny model (random head biases); do not change it in a test."""
    return make_tiny_model(TINY_SEED, head_biases=True)


@pytest.fixture(scope="session")
def tiny_dir(tiny_model, tmp_path_factory) -> Path:
    """:func:`tiny_model` saved as a model folder (config.json + model.safetensors)."""
    return tiny_model.save_pretrained(tmp_path_factory.mktemp("tiny"))


# -- the naive reference forward ---------------------------------------------------------------
@pytest.fixture(scope="session")
def naive_model() -> ModuleType:
    """``benchmarks/naive_model.py``: the independent reference (full pair tensor, stacked maps)."""
    return load_naive_model()


@pytest.fixture(scope="session")
def naive_forward(naive_model) -> Callable:
    """``naive_forward(model, ids, mask) -> (residue, pair, attentions)``."""
    return naive_model.naive_forward


# -- the command line ------------------------------------------------------------------------
@pytest.fixture(scope="session")
def run_cli() -> Callable[[list[str]], int]:
    """Run ``seqdance ARGS`` in-process; returns the exit status (the command must exit)."""

    def run(args: list[str]) -> int:
        with pytest.raises(SystemExit) as exit_info:
            main(args)
        return exit_info.value.code

    return run


# -- a small dataset of real reference arrays ------------------------------------------------------
@pytest.fixture(scope="session")
def reference_md() -> tuple[pd.DataFrame, dict[str, np.ndarray], np.ndarray]:
    """The authors' 3tvj_I reference outputs as an MDFeatures-like residues table + pair dict,
    and the raw pair array (38, 38, 10) with one triangle filled."""
    tvj = DATA / "md" / "3tvj_I"
    table = pd.read_csv(tvj / "3tvj_I_res_feature.csv")
    renames = {f"dssp_{c if c != 'loop' else ' '}": f"ss_{c}" for c in SS_CLASSES}
    residues = table.rename(columns=renames)
    raw = np.load(tvj / "3tvj_I_pair_feature.npz")["array"]  # (38, 38, 10), one triangle filled
    pair = {}
    for k, name in enumerate((*INTERACTIONS, "corr")):
        m = raw[..., k]
        pair[name] = m if name == "corr" else m + m.T - np.diag(np.diag(m))  # symmetric
    return residues, pair, raw


@pytest.fixture(scope="session")
def reference_records(reference_md) -> tuple[ProteinRecord, ...]:
    """Four stored proteins from the authors' reference arrays: 3tvj_I (ATLAS MD) and a copy
    as IDRome, 2g3r (NMA) for training and a copy for testing."""
    residues, pair, _ = reference_md
    res, stored = encode_md(residues, pair)
    nma = DATA / "nma"
    ref = np.load(nma / "nma_residue_pair_features_2g3r.npz")
    nres, npair = encode_nma(ref["gnm_msf"], ref["anm_cor"])
    seq_3tvj = read_calphas(DATA / "md" / "3tvj_I" / "3tvj_I.pdb").sequence
    seq_2g3r = read_calphas(nma / "2g3r.pdb").sequence
    return (
        ProteinRecord("3tvj_I", seq_3tvj, "ATLAS", "md", res, stored, "train"),
        ProteinRecord("idr1", seq_3tvj, "IDRome", "md", res * 1, stored * 1, "train"),
        ProteinRecord("2g3r", seq_2g3r, "proteinflow_pdb", "nma", nres, npair, "train"),
        ProteinRecord("2g3r_t", seq_2g3r, "proteinflow_pdb", "nma", nres, npair, "test"),
    )


@pytest.fixture(scope="session")
def small_dataset(reference_records, tmp_path_factory) -> Path:
    """:func:`reference_records` stored as a dataset folder (features.h5 + index.csv);
    read it only (copy it to change it)."""
    root = tmp_path_factory.mktemp("small")
    merge_into(root / "features.h5", list(reference_records))
    write_index(root / "index.csv", pd.DataFrame([r.index_row() for r in reference_records]))
    return root
