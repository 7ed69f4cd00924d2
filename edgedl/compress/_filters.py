"""Filter pruning: remove whole convolution filters and dense units, and rebuild a thinner Keras model.

Unlike magnitude pruning (zeros in a kernel of the same shape: smaller when
zipped, no faster), the result has fewer channels, so fewer multiply-accumulates
in every format. As in NNCF's filter pruning, the layers whose outputs meet in an
element-wise operation (a residual ``Add``) form one group and keep the same
channels; a group's channels are ranked by the L1 norm of their filters (Li et
al., 2017, summed over the group) and the weakest ``ratio`` of them are removed,
with the matching input channels of every layer that reads them (BatchNormalization,
depthwise convolutions, the next convolution or dense layer, through pooling and
``Flatten``). Layers that set the model's output widths are kept whole.
Anything the rebuild does not understand (a ``Concatenate``, a ``Reshape``, a
recurrent layer) keeps the channels that reach it.
"""
from __future__ import annotations

import numpy as np

from exporters.tfkeras import keras, output_names
from runtime.errors import UserError
from runtime.tasks import get_task

PRODUCERS = ("Conv2D", "Dense")
# Layers whose output channels are their input's (and that slice their own weights by them, for BN and depthwise).
PASS_THROUGH = ("BatchNormalization", "Activation", "ReLU", "LeakyReLU", "PReLU", "ELU", "Dropout", "SpatialDropout2D",
                "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D", "GlobalMaxPooling2D", "ZeroPadding2D",
                "Cropping2D", "UpSampling2D", "DepthwiseConv2D", "GaussianNoise")  # fmt: skip
ELEMENTWISE = ("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum")


def _inputs(layer) -> list:
    if len(layer.inbound_nodes) > 1:
        raise UserError(f"filter pruning: layer {layer.name!r} is used more than once; shared layers are not "
                        "supported (use prune or distill)")  # fmt: skip
    found = layer.inbound_nodes[0].inbound_layers if layer.inbound_nodes else []
    return list(found) if isinstance(found, (list, tuple)) else [found]


class _Groups:
    """Which layers produce which channels: a union-find over the producers' groups."""

    def __init__(self):
        self.parent: dict = {}
        self.fixed: set = set()

    def new(self, name: str) -> str:
        self.parent[name] = name
        return name

    def root(self, g):
        while g is not None and self.parent[g] != g:
            g = self.parent[g]
        return g

    def join(self, groups: list):
        roots = [self.root(g) for g in groups]
        if any(r is None for r in roots):  # meets a fixed tensor (the input, a kept head): all stay whole
            self.fix(roots)
            return None
        for r in roots[1:]:
            self.parent[r] = roots[0]
            if r in self.fixed:
                self.fixed.add(roots[0])
        return roots[0]

    def fix(self, groups) -> None:
        self.fixed.update(r for r in (self.root(g) for g in groups) if r is not None)


def _trace(model, heads: set):
    """(source of each layer's output channels, what each layer reads, the groups)."""
    groups = _Groups()
    source, reads = {}, {}
    for layer in model.layers:
        kind = type(layer).__name__
        ins = [source.get(i.name) for i in _inputs(layer)]
        config = layer.get_config()
        flattened = any(isinstance(g, tuple) for g in ins)
        if config.get("data_format") == "channels_first" or config.get("groups", 1) != 1 or \
                (flattened and kind != "Dense"):  # fmt: skip
            kind = "unknown"
        if kind == "InputLayer":
            source[layer.name] = None
        elif kind in PRODUCERS and len(ins) == 1:
            reads[layer.name] = ins[0]
            source[layer.name] = None if layer.name in heads else groups.new(layer.name)
        elif kind in PASS_THROUGH and len(ins) == 1:
            reads[layer.name] = ins[0]
            source[layer.name] = ins[0]
            if kind == "DepthwiseConv2D" and config.get("depth_multiplier", 1) != 1:
                groups.fix(ins)
                source[layer.name] = None
        elif kind == "Flatten" and len(ins) == 1:
            source[layer.name] = ("flat", ins[0], int(np.prod(layer.input_shape[1:-1])))
        elif kind in ELEMENTWISE:
            source[layer.name] = groups.join(ins)
        else:
            groups.fix([g[1] if isinstance(g, tuple) else g for g in ins])
            source[layer.name] = None
    outputs = [source.get(name) for name in output_names(model)]  # the model's outputs keep their widths
    groups.fix([g[1] if isinstance(g, tuple) else g for g in outputs])
    return source, reads, groups


def _l1(layer) -> np.ndarray:
    kernel = layer.get_weights()[0]
    return np.abs(kernel).reshape(-1, kernel.shape[-1]).sum(axis=0)


def plan(model, ratio: float, source: dict, groups: _Groups) -> tuple[dict, dict]:
    """(kept channels by group root, the group's width before) for every group that can be thinned, from
    ``_trace``'s sources and groups."""
    members: dict = {}
    for layer in model.layers:
        if type(layer).__name__ in PRODUCERS and source.get(layer.name) is not None:
            members.setdefault(groups.root(source[layer.name]), []).append(layer)
    kept, width = {}, {}
    for root, layers in members.items():
        if root in groups.fixed:
            continue
        score = sum(_l1(layer) for layer in layers)
        k = max(1, int(round(len(score) * (1.0 - ratio))))
        kept[root], width[root] = np.sort(np.argsort(-score, kind="stable")[:k]), len(score)
    return kept, width


def filter_pruned(model, ratio: float, heads: set):
    """A thinner copy of ``model`` (weights copied, channels removed) and each thinned layer's
    ``[width after, width before]``."""
    source, reads, groups = _trace(model, heads)
    kept, width = plan(model, ratio, source, groups)
    producers = {name: groups.root(g) for name, g in source.items()
                 if g is not None and not isinstance(g, tuple) and type(model.get_layer(name)).__name__ in PRODUCERS}
    own = {name: r for name, r in producers.items() if r in kept}  # the producers this pruning thins
    if not own:
        raise UserError(f"filter pruning: no layer of {model.name} can be thinned (every channel reaches an output, "
                        "a Concatenate, a Reshape or a layer it does not know)")  # fmt: skip

    def rows(g):
        """The input channels a layer reading ``g`` keeps (over every position after a Flatten), or None."""
        if isinstance(g, tuple):
            _, inner, positions = g
            r = groups.root(inner)
            if r not in kept:
                return None
            return (np.arange(positions)[:, None] * width[r] + kept[r][None, :]).ravel()
        r = groups.root(g)
        return kept.get(r) if r is not None else None

    def clone(layer):
        config = layer.get_config()
        if layer.name in own:
            config["filters" if "filters" in config else "units"] = int(len(kept[own[layer.name]]))
        return type(layer).from_config(config)

    thin = keras().models.clone_model(model, clone_function=clone)
    for old in model.layers:
        weights = old.get_weights()
        if weights:
            out = kept[own[old.name]] if old.name in own else None
            into = rows(reads[old.name]) if old.name in reads else None
            thin.get_layer(old.name).set_weights(_sliced(type(old).__name__, weights, into, out))
    return thin, {name: [int(len(kept[r])), int(width[r])] for name, r in own.items()}


def filter_prune(model, config, data, task: str, before: tuple, backup=None):
    """The technique (see ``compress``): thin the model, then fine-tune it; a classifier is distilled from the
    original (same data, its soft answers), a denoiser or generic model fine-tuned on its targets."""
    from ..training.model_io import require_tf_keras
    from ._configs import DistillConfig
    from ._distill import distill, output_heads
    from ._techniques import fine_tune

    require_tf_keras(model, "filter pruning")
    thin, _ = filter_pruned(model, config.ratio, output_heads(model))
    if get_task(task).class_scores and config.teacher:
        teacher = DistillConfig(student_model=thin, epochs=config.epochs, learning_rate=config.learning_rate,
                                batch_size=config.batch_size)  # fmt: skip
        return distill(model, teacher, data, task, before, backup)
    fine_tune(thin, data, task, config.learning_rate, config.epochs, config.batch_size, backup=backup)
    return thin


def layer_widths(before, after) -> dict:
    """``{layer: [width after, width before]}`` for the convolution and dense layers whose width changed."""
    def widths(model):
        return {layer.name: layer.get_weights()[0].shape[-1] for layer in model.layers
                if type(layer).__name__ in PRODUCERS and layer.get_weights()}  # fmt: skip

    old = widths(before)
    return {name: [int(w), int(old[name])] for name, w in widths(after).items() if name in old and old[name] != w}


def _sliced(kind: str, weights: list, rows, out) -> list:
    """A layer's weights with the removed input channels (``rows``) and output channels (``out``) taken out."""
    if kind in ("BatchNormalization", "DepthwiseConv2D"):
        if rows is None:
            return weights
        if kind == "BatchNormalization":
            return [w[rows] for w in weights]
        return [weights[0][:, :, rows, :], *[w[rows] for w in weights[1:]]]
    kernel, rest = weights[0], weights[1:]
    in_axis = kernel.ndim - 2
    if rows is not None:
        kernel = np.take(kernel, rows, axis=in_axis)
    if out is not None:
        kernel = kernel[..., out]
        rest = [w[out] for w in rest]
    return [kernel, *rest]
