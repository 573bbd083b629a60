"""Issue 23 classes 3, 6 and 8 on the real CLI (in-process through ``main``).

Class 3: an ``--out`` that is a folder where a file is meant, or that lies in a read-only place,
is one ``error:`` line naming the user's path (never our temporary names), before any work.
Class 6: a refused option leaves nothing behind, and the corrected command then runs.
Class 8: inputs that used to be accepted silently are errors naming the row, column or option.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest

from helpers import cli, one_error_line
from seqdance.inference.scan import BLOCK_POSITIONS

DATA = Path(__file__).parent / "data"
TVJ = DATA / "md" / "3tvj_I"
GYM = DATA / "scoring" / "proteingym"
SCORING = DATA / "scoring"
WT = "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDGT"  # 44 residues: over a 16-residue window


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@contextlib.contextmanager
def read_only_place(path: Path):
    """A folder nothing can be written into: a read-only tmpfs as root (root ignores file
    modes), else a folder without write permission."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(path)],
                              capture_output=True)  # fmt: skip
        if done.returncode != 0:
            pytest.skip("root, but cannot mount a read-only tmpfs here")
        try:
            yield path
        finally:
            subprocess.run(["umount", "-l", str(path)], check=False)
    else:
        path.chmod(0o555)
        try:
            yield path
        finally:
            path.chmod(0o755)


@pytest.fixture(scope="module")
def inputs(tiny_dir, small_dataset, tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("fault_inputs")
    fasta = folder / "a.fasta"
    fasta.write_text(">a\nMKTAYIAKQRQISFVKSHFSRQLEERLGLIEV\n>b\nMSTNPKPQRKTKRNTNRRPQDVKFPGG\n")
    mutations = folder / "m.csv"
    mutations.write_text("mutant\nK2A\nT3G\n")
    return {"model": tiny_dir, "fasta": fasta, "mutations": mutations,
            "h5": small_dataset / "features.h5", "dataset": small_dataset}  # fmt: skip


# (command with OUT where the output goes; whether OUT is a file (True) or a folder)
COMMANDS = {
    "score": (lambda i, out: ["score", "-m", i["model"], "--mutations", i["mutations"],
                              "--sequence", "MKTAYIAKQR", "-o", out], True),
    "contacts": (lambda i, out: ["contacts", "-t", TVJ / "3tvj_I.pdb", "-x",
                                 TVJ / "3tvj_I_10frames.dcd", "-o", out, "--no-progress"], True),
    "dataset-merge": (lambda i, out: ["dataset", "merge", i["h5"], "-o", out], True),
    "embed": (lambda i, out: ["embed", i["fasta"], "-m", i["model"], "-o", out,
                              "--no-progress"], True),
    "evaluate": (lambda i, out: ["evaluate", "-m", i["model"], "-d", i["dataset"], "-o", out,
                                 "--no-progress"], True),
    "predict": (lambda i, out: ["predict", i["fasta"], "-m", i["model"], "-o", out,
                                "--no-progress"], False),
    "scan": (lambda i, out: ["scan", "-m", i["model"], "--sequence", "MKTAYIAKQR",
                             "--positions", "2-3", "-o", out, "--no-progress"], False),
    "explain": (lambda i, out: ["explain", "-m", i["model"], "--sequence", "MKTAYIAKQR",
                                "--mutant", "K2A", "-o", out], False),
    "benchmark": (lambda i, out: ["benchmark", "-m", i["model"], "--assays", GYM, "-o", out,
                                  "--max-variants", "5", "--no-progress"], False),
}  # fmt: skip


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_out_in_a_read_only_place_is_named_before_work(command, inputs, tmp_path, capsys):
    build, is_file = COMMANDS[command]
    with read_only_place(tmp_path / "ro") as ro:
        out = ro / ("out.x" if is_file else "out")
        if command == "embed":
            out = ro / "out.h5"
        code, err = cli(build(inputs, out), capsys)
        line = one_error_line(err)
        assert code == 1 and str(ro) in line and ".tmp" not in line, line
        assert list(ro.iterdir()) == []


@pytest.mark.parametrize("command", sorted(c for c, (_, f) in COMMANDS.items() if f))
def test_out_that_is_a_folder_is_named(command, inputs, tmp_path, capsys):
    build, _ = COMMANDS[command]
    out = tmp_path / "a_folder"
    out.mkdir()
    code, err = cli(build(inputs, out), capsys)
    line = one_error_line(err)
    assert code == 1 and line == f"error: {out}: is a folder; give a file name to write", line
    assert list(out.iterdir()) == [] and [p.name for p in tmp_path.iterdir()] == ["a_folder"]


# -- class 6: nothing written before the options are checked --------------------------------------


def test_scan_window_without_residues_only_writes_nothing(inputs, tmp_path, capsys):
    out = tmp_path / "scan"
    args = ["scan", "-m", inputs["model"], "--sequence", WT[:40], "--positions", "2",
            "-o", out, "--window", "16", "--no-progress"]  # fmt: skip
    code, err = cli(args, capsys)
    assert code == 1 and "--residues-only" in one_error_line(err)
    assert not out.exists()
    code, err = cli([*args, "--residues-only"], capsys)  # the corrected command runs
    assert code == 0, err
    assert (out / "scan.csv").is_file()


# -- class 5: scans resume over damaged parts; heat maps of unusual wild types --------------------


def test_scan_recomputes_a_truncated_block_with_a_note(inputs, tmp_path, capsys):
    out = tmp_path / "scan"
    args = ["scan", "-m", inputs["model"], "--sequence", "MKTAYIAKQR", "-o", out,
            "--no-progress", "--properties", "rmsf_nor"]  # fmt: skip
    assert cli(args, capsys)[0] == 0
    first = (out / "scan.csv").read_bytes()
    block = out / "parts" / "block_00000.npz"
    block.write_bytes(block.read_bytes()[:100])  # truncated (a killed copy, a full disk)
    code, err = cli(args, capsys)
    assert code == 0, err
    assert f"note: 1 damaged block(s) in {out / 'parts'} were scored again" in err
    assert (out / "scan.csv").read_bytes() == first  # the same bytes as the undamaged run
    with np.load(block) as data:
        assert data["scores"].shape == (19 * min(10, BLOCK_POSITIONS), 1)


@pytest.mark.parametrize("letter", ["X", "B", "Z", "U", "O"])
def test_scan_heat_map_with_an_unusual_wild_type_letter(letter, inputs, tmp_path, capsys):
    out = tmp_path / "scan"
    code, err = cli(["scan", "-m", inputs["model"], "--sequence", f"MK{letter}AYIAKQR",
                     "--positions", "2-4", "-o", out, "--no-progress"], capsys)  # fmt: skip
    assert code == 0, err
    assert sorted(p.name for p in out.glob("*.png"))  # heat maps drawn
    assert "Traceback" not in err


# -- class 8: silently accepted input -------------------------------------------------------------

REFERENCE = SCORING / "proteingym_reference_DMS_substitutions.csv"
DMS_LEVEL = SCORING / "DMS_substitutions_Spearman_DMS_level.csv"


def _edit_dms_level(tmp_path: Path, edit) -> Path:
    lines = DMS_LEVEL.read_text().splitlines()
    rows = [ln.split(",") for ln in lines]
    edit(rows)
    path = tmp_path / "DMS_substitutions_Spearman_DMS_level.csv"
    path.write_text("\n".join(",".join(r) for r in rows) + "\n")
    return path


def _set(r: int, c: int, value: str):
    return lambda rows: rows[r].__setitem__(c, value)


AGGREGATE_FAULTS = {
    "header-only": (lambda rows: rows.__delitem__(slice(1, None)),
                    "the per-assay table has no rows (only a header)"),
    "text": (_set(3, 2, "abc"), "line 4 (DMS ID {a3}), column 'EVmutation': 'abc' is not a number"),
    "spearman-7.5": (_set(3, 2, "7.5"),
                     "line 4 (DMS ID {a3}), column 'EVmutation': 7.5 is outside the range of "
                     "Spearman [-1, 1]"),
    "inf": (_set(5, 1, "inf"), "line 6 (DMS ID {a5}), column 'Site-Independent': inf is not a "
                               "finite number"),
    "duplicate": (lambda rows: rows.append(list(rows[5])),
                  "line 219 (DMS ID {a5}) repeats an earlier row; keep one row per DMS ID"),
}  # fmt: skip


@pytest.mark.parametrize("fault", sorted(AGGREGATE_FAULTS))
def test_aggregate_refuses_what_it_used_to_average(fault, tmp_path, capsys):
    edit, message = AGGREGATE_FAULTS[fault]
    ids = [ln.split(",")[0] for ln in DMS_LEVEL.read_text().splitlines()]
    table = _edit_dms_level(tmp_path, edit)
    out = tmp_path / "out"
    code, err = cli(["benchmark", "--aggregate", table, "--reference", REFERENCE, "-o", out,
                     "--bootstrap-samples", "20"], capsys)  # fmt: skip
    expected = message.format(a3=ids[3], a5=ids[5])
    assert code == 1 and one_error_line(err) == f"error: {table}: {expected}"
    assert not out.exists()


def test_aggregate_of_our_layout_checks_cells_and_repeats(tmp_path, capsys):
    ref = ["--reference", REFERENCE, "--bootstrap-samples", "20", "-o", tmp_path / "o"]
    table = tmp_path / "ours.csv"
    table.write_text("assay,property,spearman,n\nBLAT_ECOLX_Jacquier_2013,rmsf,0.3,10\n"
                     "BLAT_ECOLX_Jacquier_2013,sasa,x,10\n")  # fmt: skip
    code, err = cli(["benchmark", "--aggregate", table, *ref], capsys)
    assert one_error_line(err) == (
        f"error: {table}: line 3 (assay BLAT_ECOLX_Jacquier_2013, property sasa), column "
        "'spearman': 'x' is not a number"
    )
    table.write_text("assay,property,spearman,n\nBLAT_ECOLX_Jacquier_2013,rmsf,0.3,10\n"
                     "BLAT_ECOLX_Jacquier_2013,rmsf,0.5,10\n")  # fmt: skip
    code, err = cli(["benchmark", "--aggregate", table, *ref], capsys)
    assert code == 1 and "line 3 (assay BLAT_ECOLX_Jacquier_2013, property rmsf) repeats" in err


def test_headline_must_be_a_score_column(inputs, tmp_path, capsys):
    out = tmp_path / "b"
    code, err = cli(["benchmark", "-m", inputs["model"], "--assays", GYM, "-o", out,
                     "--suite", "proteingym-viral", "--reference", REFERENCE, "--headline",
                     "bogus", "--no-progress"], capsys)  # fmt: skip
    assert code == 1 and one_error_line(err).startswith(
        "error: --headline: no score column 'bogus' in this run (columns: "
    )
    assert not out.exists()


def test_megascale_ddg_that_is_not_a_number_is_named(tmp_path):
    from seqdance.benchmark.megascale import TSUBOYAMA_COLUMNS, read_tsuboyama
    from seqdance.errors import InputFileError

    header = list(TSUBOYAMA_COLUMNS)
    rows = []
    for mut_type, seq, ddg in [("wt", "MKTAY", "0"), ("K2A", "MATAY", "0.5"),
                               ("T3G", "MKGAY", "abc"), ("A4C", "MKTCY", "-")]:  # fmt: skip
        row = dict.fromkeys(header, "1")
        row.update(aa_seq=seq, mut_type=mut_type, WT_name="1abc.pdb", WT_cluster="1",
                   ddG_ML=ddg)  # fmt: skip
        rows.append(",".join(row[c] for c in header))
    path = tmp_path / "Tsuboyama2023_Dataset2_Dataset3_20230416.csv"
    path.write_text("\n".join([",".join(header), *rows]) + "\n")
    with pytest.raises(InputFileError) as info:
        read_tsuboyama(path)
    assert str(info.value) == (
        f"{path}: line 4, column ddG_ML: 'abc' is not a finite number (or '-' for an unreliable "
        "value); fix or remove that row"
    )
    path.write_text(path.read_text().replace(",abc,", ",inf,"))
    with pytest.raises(InputFileError, match="line 4, column ddG_ML: 'inf' is not a finite"):
        read_tsuboyama(path)
    path.write_text(path.read_text().replace(",inf,", ",-0.25,"))
    (assay,) = read_tsuboyama(path)  # '-' still drops its row, as the authors' notebook
    np.testing.assert_array_equal(np.sort(assay.target), [-0.25, 0.0, 0.5])


def test_explain_empty_mutant_is_refused(inputs, tmp_path, capsys):
    out = tmp_path / "ex"
    code, err = cli(["explain", "-m", inputs["model"], "--sequence", "MKTAYIAKQR",
                     "--mutant", "", "-o", out], capsys)  # fmt: skip
    assert code == 1 and one_error_line(err) == (
        "error: --mutant: empty; give a substitution such as A24C or A24C:G30D"
    )
    assert not out.exists()


# -- mdCATH files and source options ---------------------------------------------------------------


def _mdcath(path: Path, shapes: dict[str, tuple], dtype=np.float32, scale: float = 1.0) -> Path:
    """A minimal mdCATH file of 3tvj_I's atoms: ``shapes`` maps 'T/R' to the coords shape."""
    import mdtraj as md

    traj = md.load(str(TVJ / "3tvj_I_10frames.dcd"), top=str(TVJ / "3tvj_I.pdb"))
    pdb = [ln for ln in (TVJ / "3tvj_I.pdb").read_text().splitlines(keepends=True)
           if ln.startswith("ATOM")]  # fmt: skip
    with h5py.File(path, "w") as h5:
        group = h5.create_group(path.stem.removeprefix("mdcath_dataset_"))
        group.create_dataset("pdbProteinAtoms", data="".join(pdb).encode())
        for label, shape in shapes.items():
            n = shape[1] if len(shape) > 1 else traj.n_atoms
            xyz = np.resize(traj.xyz[:, :n] * 10.0 * scale, shape).astype(dtype)
            group.create_group(label).create_dataset("coords", data=xyz)
    return path


@pytest.mark.parametrize(
    "shapes, dtype, scale, message",
    [
        ({"320/0": (5, 280), "320/1": (5, 287, 3)}, np.float32, 1.0, "320/0/coords has shape"),
        ({"320/0": (5, 287, 3), "320/1": (5, 280, 3)}, np.float32, 1.0,
         "320/1/coords has 280 atoms, the other replicas and the topology 287"),
        ({"320/0": (5, 280, 3), "320/1": (5, 287, 3)}, np.float32, 1.0,
         "320/0/coords has 280 atoms, the other replicas and the topology 287"),
        ({"320/0": (5, 287, 3)}, np.int32, 1.0, "320/0/coords holds int32"),
        ({"320/0": (5, 287, 3)}, np.float32, 1e30, "320 K replica 0, frame 0: coordinates beyond"),
    ],
    ids=["rank", "short-second", "short-first", "dtype", "1e30"],
)  # fmt: skip
def test_damaged_mdcath_files_are_named(shapes, dtype, scale, message, tmp_path, capsys):
    h5 = _mdcath(tmp_path / "mdcath_dataset_3tvjI00.h5", shapes, dtype, scale)
    out = tmp_path / "x"
    code, err = cli(["features", "md", "--source", "mdCATH", "--input", h5, "-o", out,
                     "--no-progress"], capsys)  # fmt: skip
    line = one_error_line(err)
    assert code == 1 and line.startswith(f"error: {h5}: ") and message in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == [h5.name]


def test_source_options_a_reader_does_not_take_are_refused(tmp_path, capsys):
    code, err = cli(["features", "md", "--source", "PED", "--input", TVJ / "3tvj_I.pdb",
                     "--temperatures", "348", "-o", tmp_path / "x"], capsys)  # fmt: skip
    assert code == 1 and one_error_line(err) == (
        "error: temperatures is not an option of source PED (it takes: none of temperatures, "
        "replicas, backmapped)"
    )
    h5 = _mdcath(tmp_path / "mdcath_dataset_3tvjI00.h5", {"320/0": (5, 287, 3)})
    code, err = cli(["features", "md", "--source", "mdCATH", "--input", h5, "--replicas",
                     "0,0", "-o", tmp_path / "x"], capsys)  # fmt: skip
    assert code == 1 and "replicas: [0, 0] lists one twice" in one_error_line(err)


def test_manifest_row_with_path_and_files_is_refused(tmp_path):
    from seqdance.data.manifest import read_manifest

    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "name,source,kind,topology,trajectory,structure,label,path,temperatures\n"
        f"a,mdCATH,md,{TVJ / '3tvj_I.pdb'},{TVJ / '3tvj_I_10frames.dcd'},,train,{TVJ},\n"
        f"b,ATLAS,md,{TVJ / '3tvj_I.pdb'},{TVJ / '3tvj_I_10frames.dcd'},,train,,348\n"
    )
    a, b = read_manifest(manifest)
    assert a.problem() == "give path or topology and trajectory, not both (which one is meant?)"
    assert b.problem() == "temperatures and replicas are read only with a native source's path"
