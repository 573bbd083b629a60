"""The quick-start demo: ``seqdance demo --out DIR`` (the whole pipeline on bundled real data)."""

from seqdance.demo.pipeline import DemoReport, bundled_data, run_demo

__all__ = ["DemoReport", "bundled_data", "run_demo"]
