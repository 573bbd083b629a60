"""Zero-shot benchmarks: assays with measured fitness or stability, scored and ranked.

Above :mod:`seqdance.inference` (it imports the scoring code; the scoring code never imports
it), one module per step:

- :mod:`~seqdance.benchmark.assays`: the :class:`~seqdance.benchmark.assays.Assay` type,
  ProteinGym-style assays and ProteinGym's reference file;
- :mod:`~seqdance.benchmark.megascale`: the mega-scale stability tables (Tsuboyama 2023);
- :mod:`~seqdance.benchmark.suites`: which assays a path or one of the paper's suites
  (ProteinGym, mega-scale, designed, viral) holds, and the paper's results;
- :mod:`~seqdance.benchmark.metrics`: ProteinGym's metrics and leaderboard aggregation;
- :mod:`~seqdance.benchmark.run`: score every assay, evaluate, write the summaries.
- :mod:`~seqdance.benchmark.dynamics` (with ``dynamics_metrics`` and ``dynamics_report``):
  predicted against MD properties on a built dataset, the ATLAS protocol beside the peers;
- :mod:`~seqdance.benchmark.identity`: each benchmark protein's highest identity to a model's
  training sequences (MMseqs2).
"""
