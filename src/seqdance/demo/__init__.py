"""The quick-start demo: ``seqdance demo --out DIR`` (the whole pipeline on bundled real data)."""

from seqdance.demo.inputs import bundled_data
from seqdance.demo.pipeline import run_demo
from seqdance.demo.results import DemoReport

__all__ = ["DemoReport", "bundled_data", "run_demo"]
