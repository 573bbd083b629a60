"""Class 6 of docs/reliability.md: every option is checked before anything is written.

For every command, an option combination that is invalid (each option valid alone, or a
value only the command can judge) must end with one ``error:`` line, a non-zero exit, and
no output path (folder, file, manifest, staging, log, checkpoints) created. The corrected
command then runs (scan, train, dataset build).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from seqdance.cli import main

DATA = Path(__file__).parent / "data"
TVJ = DATA / "md" / "3tvj_I"
NMA = DATA / "nma"
SCORING = DATA / "scoring"
CONFIGS = Path(__file__).resolve().parents[1] / "configs"
LONG = "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDGTQDNLSGAEKAVQVKVKALPDAQ"  # 65 residues


def run(args: list[str], capsys) -> tuple[int, list[str]]:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    return exit_info.value.code, capsys.readouterr().err.splitlines()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, tiny_dir, small_dataset) -> dict[str, Path]:
    """Small valid inputs for every command (files the tests only read)."""
    root = tmp_path_factory.mktemp("inputs")
    fasta = root / "seqs.fasta"
    fasta.write_text(f">p1\n{LONG}\n")
    manifest = root / "manifest.csv"
    manifest.write_text(
        "name,source,kind,topology,trajectory,structure,label\n"
        f"2g3r,proteinflow_pdb,nma,,,{NMA / '2g3r.pdb'},train\n"
    )
    table = root / "table.csv"
    rows = [f"{LONG[: 20 + i]},{'train' if i < 6 else 'test'},{i * 0.5}" for i in range(8)]
    table.write_text("sequence,split,y\n" + "\n".join(rows) + "\n")
    mutations = root / "mutations.csv"
    mutations.write_text("mutant\nM1A\nK2C\n")
    return {
        "model": tiny_dir,
        "fasta": fasta,
        "manifest": manifest,
        "dataset": small_dataset,
        "table": table,
        "mutations": mutations,
    }


# (id, args with {placeholders}, paths under tmp that must not exist afterwards)
CASES = [
    ("predict", ["predict", "{fasta}", "-m", "{model}", "-o", "{out}", "--pairs", "bogus"], []),
    (
        "predict-pair-dtype",
        ["predict", "{fasta}", "-m", "{model}", "-o", "{out}", "--pair-dtype", "float64"],
        [],
    ),  # fmt: skip
    (
        "predict-band",
        ["predict", "{fasta}", "-m", "{model}", "-o", "{out}", "--pair-band", "-1"],
        [],
    ),
    (
        "predict-none-band",
        [
            "predict",
            "{fasta}",
            "-m",
            "{model}",
            "-o",
            "{out}",
            "--pairs",
            "none",
            "--pair-band",
            "4",
        ],
        [],
    ),  # fmt: skip
    (
        "predict-npz-dtype",
        [
            "predict",
            "{fasta}",
            "-m",
            "{model}",
            "-o",
            "{out}",
            "--pair-format",
            "npz",
            "--pair-dtype",
            "float16",
        ],
        [],
    ),  # fmt: skip
    ("predict-model", ["predict", "{fasta}", "-m", "{tmp}/no_model", "-o", "{out}"], []),
    ("embed", ["embed", "{fasta}", "-m", "{tmp}/no_model", "-o", "{out}"], []),
    (
        "scan-window",
        [
            "scan",
            "-m",
            "{model}",
            "-o",
            "{out}",
            "--sequence",
            LONG,
            "--window",
            "16",
            "--no-progress",
        ],
        [],
    ),  # fmt: skip
    (
        "scan-positions",
        [
            "scan",
            "-m",
            "{model}",
            "-o",
            "{out}",
            "--sequence",
            LONG,
            "--positions",
            "500",
            "--no-progress",
        ],
        [],
    ),  # fmt: skip
    (
        "scan-plot",
        [
            "scan",
            "-m",
            "{model}",
            "-o",
            "{out}",
            "--sequence",
            LONG,
            "--plot",
            "nope",
            "--no-progress",
        ],
        [],
    ),  # fmt: skip
    ("scan-model", ["scan", "-m", "{tmp}/no_model", "-o", "{out}", "--sequence", LONG], []),
    (
        "explain",
        [
            "explain",
            "-m",
            "{model}",
            "-o",
            "{out}",
            "--sequence",
            LONG,
            "--mutant",
            "M1A",
            "--window",
            "16",
        ],
        [],
    ),  # fmt: skip
    (
        "explain-property",
        [
            "explain",
            "-m",
            "{model}",
            "-o",
            "{out}",
            "--sequence",
            LONG,
            "--mutant",
            "M1A",
            "--pdb-property",
            "nope",
        ],
        [],
    ),  # fmt: skip
    (
        "score",
        [
            "score",
            "--mutations",
            "{mutations}",
            "--sequence",
            LONG,
            "-m",
            "{model}",
            "-o",
            "{out}",
            "--window",
            "16",
        ],
        [],
    ),  # fmt: skip
    (
        "benchmark-headline",
        [
            "benchmark",
            "-m",
            "{model}",
            "--assays",
            SCORING / "blat_ecolx_30.csv",
            "-o",
            "{out}",
            "--headline",
            "bogus",
        ],
        [],
    ),  # fmt: skip
    (
        "benchmark-dynamics",
        [
            "benchmark",
            "--suite",
            "dynamics",
            "-m",
            "{model}",
            "--dataset",
            "{dataset}",
            "-o",
            "{out}",
            "--label",
            "nolabel",
        ],
        [],
    ),  # fmt: skip
    (
        "train",
        [
            "train",
            "--config",
            CONFIGS / "tiny.yaml",
            "data.dir={dataset}",
            "out_dir={out}",
            "train.max_steps=0",
        ],
        [],
    ),  # fmt: skip
    (
        "train-frozen",
        [
            "train",
            "--config",
            CONFIGS / "tiny.yaml",
            "data.dir={dataset}",
            "out_dir={out}",
            "model.freeze_trunk=true",
        ],
        [],
    ),  # fmt: skip
    (
        "evaluate",
        [
            "evaluate",
            "-m",
            "{model}",
            "--data",
            "{dataset}",
            "-o",
            "{out}",
            "--weights",
            "bogus",
            "--no-progress",
        ],
        [],
    ),  # fmt: skip
    (
        "evaluate-label",
        [
            "evaluate",
            "-m",
            "{model}",
            "--data",
            "{dataset}",
            "-o",
            "{out}",
            "--label",
            "nolabel",
            "--no-progress",
        ],
        [],
    ),  # fmt: skip
    (
        "features-nma",
        [
            "features",
            "nma",
            NMA / "2g3r.pdb",
            "-o",
            "{out}",
            "--chain",
            "",
        ],
        [],
    ),
    (
        "features-md",
        [
            "features",
            "md",
            "-t",
            TVJ / "3tvj_I.pdb",
            "-x",
            TVJ / "3tvj_I_10frames.dcd",
            "-o",
            "{out}/p",
            "--pbc",
            "bogus",
        ],
        ["out"],
    ),  # fmt: skip
    (
        "features-md-dtype",
        [
            "features",
            "md",
            "-t",
            TVJ / "3tvj_I.pdb",
            "-x",
            TVJ / "3tvj_I_10frames.dcd",
            "-o",
            "{out}/p",
            "--pair-dtype",
            "int8",
        ],
        ["out"],
    ),  # fmt: skip
    (
        "features-md-sel",
        [
            "features",
            "md",
            "-t",
            TVJ / "3tvj_I.pdb",
            "-x",
            TVJ / "3tvj_I_10frames.dcd",
            "-o",
            "{out}/p",
            "--selection",
            "(((",
        ],
        ["out"],
    ),  # fmt: skip
    (
        "contacts",
        [
            "contacts",
            "--topology",
            TVJ / "3tvj_I.pdb",
            "--trajectory",
            TVJ / "3tvj_I_10frames.dcd",
            "-o",
            "{out}",
            "--itypes",
            "zz",
        ],
        [],
    ),  # fmt: skip
    (
        "contacts-sel",
        [
            "contacts",
            "--topology",
            TVJ / "3tvj_I.pdb",
            "--trajectory",
            TVJ / "3tvj_I_10frames.dcd",
            "-o",
            "{out}",
            "-s",
            "(((",
        ],
        [],
    ),  # fmt: skip
    (
        "features-md-temps",
        [
            "features",
            "md",
            "-t",
            TVJ / "3tvj_I.pdb",
            "-x",
            TVJ / "3tvj_I_10frames.dcd",
            "-o",
            "{out}/p",
            "--temperatures",
            "320",
        ],
        ["out"],
    ),  # fmt: skip
    (
        "features-md-input",
        [
            "features",
            "md",
            "-t",
            TVJ / "3tvj_I.pdb",
            "-x",
            TVJ / "3tvj_I_10frames.dcd",
            "-o",
            "{out}/p",
            "-i",
            TVJ,
        ],
        ["out"],
    ),  # fmt: skip
    (
        "scan-int8",
        [
            "scan",
            "-m",
            "{model}",
            "-o",
            "{out}",
            "--sequence",
            LONG,
            "--int8",
            "--device",
            "cuda",
            "--no-progress",
        ],
        [],
    ),  # fmt: skip
    ("report-chain", ["report", "{tmp}/p1.residue.tsv", "-o", "{out}", "--chain", "Z"], []),
    (
        "demo-steps",
        ["demo", "-o", "{out}", "--steps", "3", "--figure-format", "tif", "--no-progress"],
        [],
    ),  # fmt: skip
    (
        "contacts-pbc",
        [
            "contacts",
            "--topology",
            TVJ / "3tvj_I.pdb",
            "--trajectory",
            TVJ / "3tvj_I_10frames.dcd",
            "-o",
            "{out}",
            "--pbc",
            "bogus",
        ],
        [],
    ),  # fmt: skip
    (
        "dataset-build",
        [
            "dataset",
            "build",
            "{manifest}",
            "-o",
            "{out}",
            "--scheduler",
            "nowhere",
            "--no-progress",
        ],
        [],
    ),  # fmt: skip
    (
        "dataset-build-workers",
        [
            "dataset",
            "build",
            "{manifest}",
            "-o",
            "{out}",
            "-j",
            "2",
            "--scheduler",
            "tcp://127.0.0.1:9",
            "--no-progress",
        ],
        [],
    ),  # fmt: skip
    ("dataset-split", ["dataset", "split", "{tmp}/no_dataset", "-o", "{out}"], []),
    (
        "dataset-weights",
        ["dataset", "weights", "{dataset}", "-o", "{out}", "--label", "nolabel", "--no-progress"],
        [],
    ),  # fmt: skip
    ("dataset-merge", ["dataset", "merge", "{tmp}/missing.h5", "-o", "{out}"], []),
    ("dataset-check", ["dataset", "check", "{tmp}/no_dataset"], []),
    (
        "analyze-attention",
        [
            "analyze",
            "attention",
            "-m",
            "{model}",
            "-d",
            "{dataset}",
            "-o",
            "{out}",
            "--label",
            "train",
            "--limit",
            "1",
            "--arch",
            "nope",
            "--no-progress",
        ],
        [],
    ),  # fmt: skip
    (
        "analyze-embeddings",
        [
            "analyze",
            "embeddings",
            "-m",
            "{model}",
            "-t",
            "{table}",
            "--target",
            "y",
            "-o",
            "{out}",
            "--split-column",
            "nope",
            "--no-progress",
        ],
        [],
    ),  # fmt: skip
    (
        "analyze-embeddings-col",
        [
            "analyze",
            "embeddings",
            "-m",
            "{model}",
            "-t",
            "{table}",
            "--target",
            "nope",
            "-o",
            "{out}",
            "--no-progress",
        ],
        [],
    ),  # fmt: skip
    ("report", ["report", "{tmp}/p1.residue.tsv", "-o", "{out}", "--scan-column", "nope"], []),
    ("demo", ["demo", "-o", "{out}", "--figure-format", "bmp", "--quick", "--no-progress"], []),
    ("demo-device", ["demo", "-o", "{out}", "--device", "tpu", "--quick", "--no-progress"], []),
]


def fill(args: list, tmp: Path, out: Path, inputs: dict[str, Path]) -> list[str]:
    names = {**{k: str(v) for k, v in inputs.items()}, "tmp": str(tmp), "out": str(out)}
    return [str(a).format(**names) for a in args]


@pytest.mark.parametrize(("args", "extra"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_invalid_options_write_nothing(args, extra, inputs, tmp_path, capsys):
    out = tmp_path / "out"
    code, err = run(fill(args, tmp_path, out, inputs), capsys)
    assert code != 0
    assert len(err) == 1 and err[0].startswith("error:"), err
    assert not out.exists(), sorted(p.name for p in out.rglob("*"))
    for name in extra:
        assert not (tmp_path / name).exists()


def test_corrected_scan_runs(inputs, tmp_path, capsys):
    """The class-6 case of the issue: ``--window`` without ``--residues-only`` is refused
    before OUT/parts/manifest.json exists, so the corrected command runs in the same folder."""
    out = tmp_path / "scan"
    base = ["scan", "-m", inputs["model"], "-o", out, "--sequence", LONG[:30], "--positions",
            "1-2", "--properties", "sasa_mean", "--no-progress", "--device", "cpu"]  # fmt: skip
    code, err = run([*base, "--window", "16"], capsys)
    assert code == 1 and len(err) == 1 and "--residues-only" in err[0] and not out.exists()
    code, err = run([*base, "--window", "16", "--residues-only"], capsys)
    assert code == 0, err
    table = (out / "scan.csv").read_text().splitlines()
    assert len(table) == 1 + 2 * 19 and (out / "parts" / "manifest.json").is_file()


def test_corrected_train_runs(inputs, tmp_path, capsys):
    out = tmp_path / "run"
    base = ["train", "--config", CONFIGS / "tiny.yaml", f"data.dir={inputs['dataset']}",
            f"out_dir={out}", "train.max_steps=2"]  # fmt: skip
    code, err = run([*base, "model.freeze_trunk=true"], capsys)
    assert code == 1 and len(err) == 1 and err[0].startswith("error:") and not out.exists()
    code, err = run(base, capsys)
    assert code == 0, err
    assert (out / "config.yaml").is_file() and (out / "checkpoints").is_dir()


def test_corrected_dataset_build_runs(inputs, tmp_path, capsys):
    out = tmp_path / "ds"
    base = ["dataset", "build", inputs["manifest"], "-o", out, "--no-progress"]
    code, err = run([*base, "--scheduler", "nowhere"], capsys)
    assert code == 1 and len(err) == 1 and "tcp://HOST:PORT" in err[0] and not out.exists()
    code, err = run(base, capsys)
    assert code == 0, err
    assert (out / "features.h5").is_file()
    assert "2g3r" in (out / "index.csv").read_text()


@pytest.mark.parametrize("damage", ["truncated", "not-json", "empty"])
def test_scan_resumes_over_a_damaged_manifest(damage, inputs, tmp_path, capsys):
    """A damaged parts/manifest.json (class 5): the scan is scored again from the start with
    a note, to the same bytes, and no one has to delete it by hand."""
    out = tmp_path / "scan"
    args = ["scan", "-m", inputs["model"], "-o", out, "--sequence", LONG[:30], "--positions",
            "1-3", "--properties", "sasa_mean", "--no-progress", "--device", "cpu"]  # fmt: skip
    assert run(args, capsys)[0] == 0
    first = (out / "scan.csv").read_bytes()
    manifest = out / "parts" / "manifest.json"
    text = manifest.read_text()
    manifest.write_text({"truncated": text[: len(text) // 2], "not-json": "\x00garbage",
                         "empty": ""}[damage])  # fmt: skip
    block = next((out / "parts").glob("block_*.npz"))
    block.write_bytes(b"stale block of unknown options")  # must not be trusted or kept
    (out / "scan.csv").unlink()
    code, err = run(args, capsys)
    assert code == 0, err
    notes = [line for line in err if line.startswith("note:")]
    assert len(notes) == 1 and "manifest.json was damaged" in notes[0]
    assert not any(line.startswith(("error", "resumed")) for line in err)
    assert (out / "scan.csv").read_bytes() == first
    assert manifest.read_text() == text
