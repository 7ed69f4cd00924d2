"""Compression: pruning, 2:4 sparsity, clustering, quantization-aware training, distillation.

>>> from edgedl.compress import compress, PruneConfig, QATConfig
>>> result = compress(model, [PruneConfig(target_sparsity=0.8), QATConfig()], train_data)  # doctest: +SKIP
"""
from ._api import TECHNIQUES, CompressResult, Technique, compress, configs_from_options, model_stats, technique_name
from ._configs import ClusterConfig, DistillConfig, FilterPruneConfig, FineTuneConfig, PruneConfig, QATConfig
from ._distill import distill

__all__ = [
    "TECHNIQUES",
    "ClusterConfig",
    "CompressResult",
    "DistillConfig",
    "FilterPruneConfig",
    "FineTuneConfig",
    "PruneConfig",
    "QATConfig",
    "Technique",
    "compress",
    "configs_from_options",
    "distill",
    "model_stats",
    "technique_name",
]
