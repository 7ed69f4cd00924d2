"""Run every variant through ``runtime/`` on the same data and compare accuracy, latency and size."""
from .harness import BenchConfig, Variant, measure_all, measure_variant
from .report import make_report, print_table, write_report

__all__ = ["BenchConfig", "Variant", "make_report", "measure_all", "measure_variant", "print_table", "write_report"]
