"""What an artifact is built from and with, as one key: an artifact is reused only when its key matches.

The key covers the source model (architecture and weights), the recipe and
every setting of it (and of its parent), the format and precision, the
calibration and check inputs, the training data's content (for recipes that
fine-tune), the seed, and the versions of every library that converts or
quantizes. Change any of them and the variant is rebuilt.
"""
from __future__ import annotations

import hashlib
import json
from importlib import metadata
from typing import Optional

# The libraries whose version can change an artifact's bytes or numbers.
LIBRARIES = ("edgedl", "tensorflow", "tf-keras", "tensorflow-model-optimization", "tf2onnx", "onnx", "onnxruntime",
             "ai-edge-litert", "numpy")  # fmt: skip


def library_versions() -> dict:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def recipe_settings(name: Optional[str]) -> list:
    """The recipe and its parents, every config with all its fields (dataclass reprs)."""
    from .recipes import RECIPES

    chain = []
    while name is not None:
        recipe = RECIPES[name]
        chain.append({"recipe": recipe.name, "configs": [repr(c) for c in recipe.configs]})
        name = recipe.parent
    return chain


def build_key(source_sha256: str, recipe: Optional[str], fmt: str, precision: str, calibration_sha256: str,
              data_sha256: str, seed: int, versions: Optional[dict] = None,
              settings: Optional[list] = None, form: Optional[dict] = None) -> str:  # fmt: skip
    """sha256 of everything that shapes one variant's artifact (``settings``: the recipe chain as applied,
    when a run changes a recipe's configs; ``form``: the exporter's options, an int8 .onnx's activations)."""
    document = {
        "source": source_sha256,
        "recipe": settings if settings is not None else recipe_settings(recipe),
        "format": fmt,
        "precision": precision,
        "calibration": calibration_sha256,
        "data": data_sha256 if recipe is not None else None,  # post-training variants see only the calibration
        "seed": seed if recipe is not None else None,
        "versions": versions if versions is not None else library_versions(),
        **({"form": form} if form else {}),
    }
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def built_with(path, key: str) -> bool:
    """Whether the artifact at ``path`` exists, reads, and was built with ``key`` (so it can be reused)."""
    from pathlib import Path

    from runtime import read_metadata
    from runtime.errors import UserError

    if not Path(path).exists():
        return False
    try:
        return read_metadata(path).build_key == key
    except UserError:
        return False
