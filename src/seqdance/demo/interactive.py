"""Demo step 6 (with report.md): the interactive HTML report of one predicted protein.

A saturation scan of ``3tvj_I`` (every substitution at every position, residue properties
only, so the tiny model takes seconds), then ``report.html``: the prediction's tracks and
pair maps, the scan heat map and the bundled structure in 3D, in one offline file.
"""

from __future__ import annotations

from pathlib import Path

from seqdance.demo.results import Prediction
from seqdance.inference.scan import run_scan
from seqdance.report.build import ReportOptions, write_html_report
from seqdance.schema import resolve_properties

REPORTED = "3tvj_I"  # a prediction of the demo with its structure among the inputs
SCAN_PROPERTIES = "sasa_mean,rmsf_nor,ss,nma_res"  # residue features: fast and readable


def write_interactive_report(
    model, prediction: Prediction, structure: Path, out: Path, progress: bool
) -> Path:
    """Scan ``prediction``'s sequence into ``out/scan`` and write ``out/report.html``."""
    scan_dir = out / "scan"
    run_scan(
        model,
        prediction.sequence,
        scan_dir,
        resolve_properties(SCAN_PROPERTIES),
        progress=progress,
    )
    options = ReportOptions(
        structure=structure,
        title=f"{prediction.name}: demo model (tiny, not meaningful)",
        model="demo model (seqdance demo)",
        command="seqdance demo",
    )
    return write_html_report(
        out / "report.html", prediction.residue_tsv, scan=scan_dir, options=options, model=model
    )
