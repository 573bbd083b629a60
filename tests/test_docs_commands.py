"""The docs stay true: every ``bash`` and ``python`` block of README.md and docs/*.md runs.

Each Markdown file gets a fresh sandbox folder holding the files its examples name
(``proteins.fasta``, ``top.pdb``, ``traj.xtc``, ``manifest.csv`` ... made from the bundled
real data, see :data:`PLACEHOLDERS`) and a Hugging Face cache in which ``ChaoHou/SeqDance``
and ``ChaoHou/ESMDance`` are tiny random models in the published layout (offline mode: the
real hub loading code runs; ``facebook/esm2_t12_35M_UR50D`` is the tiny ESM2 masked LM of
``tests/data/esm2_versions``). The blocks of one file run in order in its sandbox, as a
reader would type them, so that ``dataset build`` makes the ``ds`` that ``train`` reads.

A block that needs what the repository lacks (the authors' checkpoint, several GPUs, a
Dask scheduler) is marked in the Markdown, invisibly, on the line before its fence::

    <!-- docs-test: skip (needs 4 GPUs and the full dataset) -->
    <!-- docs-test: requires transformers -->

Blocks in other languages (``text`` for a synopsis with ``[options]``, ``csv``, ``json``)
are not run.
"""

from __future__ import annotations

import gzip
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import mdtraj
import pandas as pd
import pytest

from helpers import ROOT, hub_snapshot, write_mdcath
from seqdance.features.contacts import detect_contacts
from seqdance.features.getcontacts import write_contacts

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUN_LANGUAGES = {"bash": "bash", "sh": "bash", "python": "python"}
MARKER = re.compile(r"^<!--\s*docs-test:\s*(skip|requires)\s*(.*?)\s*-->\s*$")
FENCE = re.compile(r"^```(\S*)\s*$")
MD = ROOT / "tests/data/md/3tvj_I"
ENGINES = ROOT / "tests/data/engines"


@dataclass(frozen=True)
class Block:
    """One fenced code block of a Markdown file."""

    path: Path
    line: int  # 1-based line of the opening fence
    language: str
    text: str
    skip: str | None  # the marker's reason, None to run it
    requires: str | None  # a Python module the block needs

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def read_blocks(path: Path) -> list[Block]:
    """The fenced blocks of ``path`` with the ``docs-test`` marker of each (if any)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    k = 0
    while k < len(lines):
        fence = FENCE.match(lines[k])
        if fence is None:
            k += 1
            continue
        start, language = k, fence[1]
        end = next((j for j in range(k + 1, len(lines)) if lines[j].startswith("```")), None)
        assert end is not None, f"{path.name}:{start + 1}: a code fence is never closed"
        marker = MARKER.match(lines[start - 1]) if start else None
        blocks.append(
            Block(
                path=path,
                line=start + 1,
                language=language,
                text="\n".join(lines[start + 1 : end]) + "\n",
                skip=marker[2] if marker and marker[1] == "skip" else None,
                requires=marker[2] if marker and marker[1] == "requires" else None,
            )
        )
        k = end + 1
    return blocks


def runnable(blocks: list[Block]) -> list[Block]:
    return [b for b in blocks if b.language in RUN_LANGUAGES and b.skip is None]


# -- the sandbox --------------------------------------------------------------------------------
def _fasta(records: dict[str, str]) -> str:
    return "".join(f">{name}\n{seq}\n" for name, seq in records.items())


def _sequence(pdb: Path) -> str:
    return mdtraj.load_pdb(str(pdb)).topology.to_fasta()[0]


def _make_world(world: Path) -> None:
    """The files the docs' examples name, made from bundled real data."""
    (world / "tests").symlink_to(ROOT / "tests")
    (world / "configs").symlink_to(ROOT / "configs")
    md_pdb, md_dcd = MD / "3tvj_I.pdb", MD / "3tvj_I_10frames.dcd"
    traj = mdtraj.load(str(md_dcd), top=str(md_pdb))
    for name in ("top.pdb", "prot.pdb", "3tvj_I.pdb", "P1.pdb", "protein.pdb"):
        shutil.copy(md_pdb, world / name)
    for name in ("traj.dcd", "3tvj_I_10frames.dcd"):
        shutil.copy(md_dcd, world / name)
    longer = mdtraj.join([traj, traj, traj])  # 30 frames: `--stride 10` leaves 3
    longer.save_dcd(str(world / "prot.dcd"))
    # GetContacts' list for the frames `--stride 10` reads (as `contacts --stride 10` writes)
    header, lines = detect_contacts(world / "prot.pdb", world / "prot.dcd", stride=10)
    write_contacts(world / "prot_contacts.tsv", header, lines)
    for name in ("traj.xtc", "prot.xtc"):
        traj.save_xtc(str(world / name))
    atlas = world / "ATLAS" / "3tvj_I"
    atlas.mkdir(parents=True)
    shutil.copy(md_pdb, atlas / "3tvj_I.pdb")
    for r in (1, 2, 3):
        traj.save_xtc(str(atlas / f"3tvj_I_R{r}.xtc"))
    write_mdcath(world / "mdcath_dataset_1a0rP01.h5", traj, md_pdb, temps=(320, 348, 379))
    with gzip.open(ENGINES / "2r9r-1b.psf.gz", "rb") as src:
        (world / "sys.psf").write_bytes(src.read())
    for name in ("rep1.dcd", "rep2.dcd"):
        shutil.copy(ENGINES / "2r9r-1b.dcd", world / name)

    tvj = _sequence(md_pdb)
    assay = ROOT / "src/seqdance/demo/data/assay"
    f7 = "".join(
        (assay / "F7YBW8_MESOW_Aakre_2015.fasta").read_text().splitlines()[1:]
    )  # fmt: skip
    (world / "proteins.fasta").write_text(_fasta({"P1": tvj, "P2": f7}))
    (world / "seqs.fasta").write_text(_fasta({"P1": tvj, "P2": f7}))
    (world / "protein.fasta").write_text(_fasta({"protein": tvj}))
    (world / "wt.fasta").write_text(_fasta({"wt": tvj}))
    (world / "proteome.fasta").write_text(_fasta({"P1": tvj, "P2": f7}))
    (world / "P1.fasta").write_text(_fasta({"P1": tvj}))
    shutil.copytree(assay, world / "proteingym_single")
    scoring = ROOT / "tests/data/scoring"
    shutil.copy(scoring / "blat_ecolx_wt.fasta", world / "blat_wt.fasta")
    shutil.copy(scoring / "blat_ecolx_30.csv", world / "BLAT_ECOLX.csv")
    shutil.copy(
        ROOT / "tests/data/megascale/Tsuboyama2023_Dataset2_Dataset3_subset.csv",
        world / "Tsuboyama2023_Dataset2_Dataset3_20230416.csv",
    )
    data = ROOT / "tests/data"
    (world / "manifest.csv").write_text(
        "name,source,kind,topology,trajectory,structure,label\n"
        f"3tvj_I,ATLAS,md,{md_pdb},{md_dcd},,train\n"
        f"5xnd,ATLAS,md,{data}/md/5xnd/5xnd_topology.pdb,{data}/md/5xnd/5xnd_6frames.dcd,,train\n"
        f"2g3r,proteinflow_pdb,nma,,,{data}/nma/2g3r.pdb,train\n"
        f"2KCF,proteinflow_pdb,nma,,,{data}/nma/2KCF.pdb,test\n"
    )
    rg = pd.read_csv(ROOT / "tests/data/analysis/megascale_rg.csv")
    rg.rename(columns={"rg_nm": "rg"}).to_csv(world / "idr.csv", index=False)


PLACEHOLDERS = (
    "top.pdb, prot.pdb, traj.dcd, traj.xtc, ATLAS/3tvj_I/: 3tvj_I (10 frames); sys.psf, "
    "rep1.dcd, rep2.dcd: 2r9r; proteins.fasta, seqs.fasta: P1 = 3tvj_I, P2 = F7YBW8; "
    "protein.fasta, P1.fasta, P1.pdb: 3tvj_I; blat_wt.fasta, BLAT_ECOLX.csv (30 mutants); "
    "proteingym_single/; wt.fasta: 3tvj_I; proteome.fasta: as proteins.fasta; "
    "the mega-scale subset; idr.csv (30 proteins); prot.dcd: 3tvj_I's 10 frames 3 times, "
    "prot_contacts.tsv: its contacts; manifest.csv (3tvj_I, 5xnd, 2g3r, 2KCF, as in the README); "
    "mdcath_dataset_1a0rP01.h5: 3tvj_I in mdCATH's layout"
)


@pytest.fixture(scope="module")
def world(tmp_path_factory, make_tiny_model) -> Path:
    """The shared inputs and the hub cache with the two tiny published-layout models."""
    world = tmp_path_factory.mktemp("docs_world")
    _make_world(world)
    cache = world.parent / "docs_hub"
    for seed, (repo, variant) in enumerate(
        (("ChaoHou/SeqDance", "seqdance"), ("ChaoHou/ESMDance", "esmdance"))
    ):
        model = make_tiny_model(11 + seed, head_biases=True, variant=variant)
        model.save_pretrained(hub_snapshot(cache, repo))
    esm2 = hub_snapshot(cache, "facebook/esm2_t12_35M_UR50D")  # a tiny ESM2 masked LM
    for name in ("config.json", "model.safetensors"):
        shutil.copy(ROOT / "tests/data/esm2_versions/mlm_4.48.2" / name, esm2 / name)
    bin_dir = world.parent / "docs_bin"
    bin_dir.mkdir()
    for name, module in (("seqdance", " -m seqdance"), ("python", ""), ("python3", "")):
        script = bin_dir / name
        script.write_text(f'#!/bin/sh\nexec "{sys.executable}"{module} "$@"\n')
        script.chmod(0o755)
    return world


def _environment(world: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PATH=f"{world.parent / 'docs_bin'}{os.pathsep}{env.get('PATH', '')}",
        HF_HUB_CACHE=str(world.parent / "docs_hub"),
        HF_HUB_OFFLINE="1",
        MPLBACKEND="Agg",
        TQDM_DISABLE="1",
        # one thread: the suite shares the machine; defaults are measured in benchmarks/
        OMP_NUM_THREADS="1",
        PYTHONPATH=os.pathsep.join(p for p in (str(ROOT / "src"), env.get("PYTHONPATH")) if p),
    )
    return env


def _run(block: Block, cwd: Path, env: dict[str, str]) -> None:
    if block.language == "python":
        argv = [sys.executable, "-c", block.text]
    else:
        argv = ["bash", "-e", "-o", "pipefail", "-c", block.text]
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        pytest.fail(
            f"{block.where}: the {block.language} block exits {done.returncode}\n"
            f"{block.text}\n--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}",
            pytrace=False,
        )


# pages whose blocks another test runs in the folder layout the page describes
RUN_ELSEWHERE = {"fine-tuning.md": "tests/test_fine_tuning_doc.py"}
RUN_DOCS = [p for p in DOCS if runnable(read_blocks(p)) and p.name not in RUN_ELSEWHERE]


def test_pages_run_elsewhere_have_their_test():
    for page, test in RUN_ELSEWHERE.items():
        assert (ROOT / "docs" / page).is_file() and page in (ROOT / test).read_text()


@pytest.mark.parametrize("doc", RUN_DOCS, ids=[p.name for p in RUN_DOCS])
def test_every_block_of_the_page_runs(doc, world, tmp_path):
    sandbox = tmp_path / "sandbox"
    shutil.copytree(world, sandbox, symlinks=True)
    env = _environment(world)
    for block in runnable(read_blocks(doc)):
        if block.requires and importlib.util.find_spec(block.requires) is None:
            continue  # an optional dependency that this environment lacks
        _run(block, sandbox, env)


def test_every_skipped_block_says_why():
    for doc in DOCS:
        for block in read_blocks(doc):
            if block.skip is not None:
                assert re.fullmatch(r"\(.{10,}\)", block.skip), (
                    f"{block.where}: a skipped block needs '(reason)', got {block.skip!r}"
                )


def test_commands_outside_runnable_blocks_are_marked():
    """A ``seqdance`` command in a fence without a language, or in an indented code block,
    would escape the test: it must be in a ``bash`` block (run) or a ``text`` one (synopsis)."""
    for doc in DOCS:
        for block in read_blocks(doc):
            if block.language == "" and re.search(r"^\s*seqdance \w", block.text, re.M):
                pytest.fail(f"{block.where}: give the block a language (bash, or text)")
        inside = False
        for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), start=1):
            inside = not inside if line.startswith("```") else inside
            if not inside and re.match(r"^ {4,}(seqdance|torchrun) ", line):
                pytest.fail(f"{doc.relative_to(ROOT)}:{number}: an indented command; fence it")
