"""A pipeline run's other workers on a cluster: the chief's training and compression, in the chief's order,
and nothing written.

Every worker of a multi-worker run executes the same steps (each training step sums the gradients of all of
them), so another worker than the chief repeats the chief's choices: the same model trained or reused, then
each variant that needs a compressed model (its artifact not built as this run would build it) compressed, in
the order of the variants, then the baseline. The choices read the run folder as it was before the run (the
chief writes an artifact only after the compression every worker took part in); a compression that fails
fails in every worker, and the chief records it. Exports, measurements and the report are the chief's alone.
"""
from __future__ import annotations

from .pipeline import Pipeline


def follow(pipeline: Pipeline) -> None:
    """Do this worker's share of ``pipeline``'s run."""
    entry, _, specs, data, original, _, info = pipeline.start()
    for spec in specs:
        if spec.recipe is None or pipeline.reusable(spec, *pipeline.planned(spec, info, data)):
            continue
        try:
            pipeline.compressed(spec.recipe, original, data)
        except Exception:  # noqa: BLE001 - the chief records the failure; the run goes on, here as there
            continue
    if entry is not None and entry.baseline:
        pipeline.baseline_model(entry.baseline, data)
