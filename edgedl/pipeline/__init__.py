"""``edgedl pipeline``: the stages of one job (``stages``), the variants it can build (``recipes``), the
accuracy-aware search, the build keys that decide reuse (``provenance``), a foreign model's run (``foreign``)
and a cluster worker's share (``worker``)."""
from .stages import PipelineConfig, run_pipeline

__all__ = ["PipelineConfig", "run_pipeline"]
