"""Inputs that are not a batch of samples, and state carried from one call to the next.

Most inputs carry the batch on their first axis (free, or 1). Some a model
takes whole on every call: a scalar (a sample rate), a vector without a batch
axis (16,000 audio samples), a recurrent state of fixed shape (2×1×128). In a
batch of several samples such a *whole* input carries a leading sample axis
of its own (a sample rate per sample), so that every batch slices alike; a
model with whole inputs is then run one sample at a time (``run_whole``), and
each of its outputs gains the sample axis too.

A recurrent model exported with its state as an input and the next state as an
output (matched by shape, dtype and name: ``state``/``stateN``, ``h0``/``hn``,
``h_in``/``h_out``) runs over a sequence with ``run_sequence``: the state
starts at zeros (or as given) and each step's next state is the next step's
input.
"""
from __future__ import annotations

import re
from typing import Callable, Optional

import numpy as np

from .errors import UserError, one_line
from .metadata import ModelMetadata, TensorSpec

_ENDS = ("input", "output", "next", "prev", "past", "present", "new", "old", "in", "out", "n", "0")


def batched(spec: TensorSpec) -> bool:
    """Whether the input's first axis is the batch: free, or 1."""
    return bool(spec.shape) and spec.shape[0] in (None, 1)


def whole_inputs(specs) -> set:
    """Names of the inputs a model takes whole on every call (see the module's text)."""
    return {s.name for s in specs if not batched(s)}


def _stem(name: str) -> str:
    """A state tensor's name without its in/out, previous/next marker: ``h_out`` -> ``h``, ``stateN`` -> ``state``."""
    s = re.sub(r"[^a-z0-9]", "", name.lower())
    for end in _ENDS:
        if s.endswith(end) and len(s) > len(end):
            s = s[: -len(end)]
            break
    for start in _ENDS[:8]:
        if s.startswith(start) and len(s) > len(start):
            return s[len(start) :]
    return s


def state_pairs(meta: ModelMetadata) -> dict:
    """{input name: output name} of the state a recurrent model hands to its next call: an output of the same
    shape and dtype as an input, whose name is the input's but for an in/out or previous/next marker. Only a
    model of several inputs has state, never in its first input (the data: a denoiser's picture in and
    picture out is no state), and plain ``input``/``output`` name none."""
    if len(meta.inputs) < 2:
        return {}
    pairs, plain = {}, {"input", "output", "inputs", "outputs"}
    for spec in meta.inputs[1:]:
        if spec.name.lower() in plain:
            continue
        same = [o for o in meta.outputs if o.shape == spec.shape and o.dtype == spec.dtype
                and o.name not in pairs.values() and o.name.lower() not in plain
                and _stem(o.name) == _stem(spec.name)]  # fmt: skip
        if len(same) == 1 and _stem(spec.name):
            pairs[spec.name] = same[0].name
    return pairs


def stacked(meta: ModelMetadata, arrays: dict, where: str, zeros_for: tuple = ()) -> dict:
    """A batch by input name from arrays by input name: a batched input's array holds the samples; a whole
    input's is one value for every sample (the model's shape) or one per sample (a leading sample axis).
    The inputs named in ``zeros_for`` (a recurrent state) start at zeros when absent."""
    whole = whole_inputs(meta.inputs)
    counts = {n for s in meta.inputs if s.name in arrays and (s.name not in whole or
              np.ndim(arrays[s.name]) == len(s.shape) + 1)  # fmt: skip
              for n in [len(arrays[s.name]) if np.ndim(arrays[s.name]) else 1]}
    if len(counts) > 1:
        raise UserError(f"{where}: the inputs' arrays hold different numbers of samples ({', '.join(map(str, sorted(counts)))})")
    n = counts.pop() if counts else 1
    batch = {}
    for s in meta.inputs:
        if s.name not in arrays:
            if s.name not in zeros_for:
                raise UserError(f"{where}: no array for input {s.name!r}; it has {', '.join(arrays) or 'none'}")
            arrays = {**arrays, s.name: np.zeros([d or 1 for d in s.shape], np.dtype(s.dtype))}
        a = np.asarray(arrays[s.name])
        if s.name in whole and a.ndim == len(s.shape):  # one value for every sample
            a = np.broadcast_to(a, (n, *a.shape))
        if s.name in whole and not _fits(a.shape[1:], s.shape):
            raise UserError(f"{where}: input {s.name!r} is {_shown(a.shape[1:])} a sample; the model takes it whole "
                            f"as {s.shown()}")  # fmt: skip
        batch[s.name] = a
    return batch


def _fits(shape: tuple, want: tuple) -> bool:
    return len(shape) == len(want) and all(w is None or w == d for w, d in zip(want, shape))


def _shown(shape: tuple) -> str:
    return "×".join(map(str, shape)) or "a scalar"


def run_whole(run: Callable[[list], list], specs_in, specs_out, xs: list, where: str) -> list:
    """Outputs of a model with whole inputs for a batch of ``xs`` (in input order, whole inputs with or without
    their sample axis): one call per sample, through ``run`` (arrays in, arrays out); a batched output's
    batches of one joined, every other output stacked on a sample axis."""
    whole = whole_inputs(specs_in)
    per_sample = [s.name in whole and np.ndim(x) == len(s.shape) + 1 or s.name not in whole
                  for s, x in zip(specs_in, xs)]  # fmt: skip
    counts = {len(x) for x, p in zip(xs, per_sample) if p and np.ndim(x)}
    if len(counts) > 1:
        raise UserError(f"{where}: the inputs hold different numbers of samples ({', '.join(map(str, sorted(counts)))})")
    n = counts.pop() if counts else 1
    for s, x, p in zip(specs_in, xs, per_sample):
        shape = np.shape(x)[1:] if p and s.name in whole else np.shape(x)
        if s.name in whole and not _fits(shape, s.shape):
            raise UserError(f"{where}: input {s.name!r} is {_shown(shape)} a sample; the model takes it whole as "
                            f"{s.shown()}")  # fmt: skip
    steps = []
    for i in range(n):
        feeds = [np.asarray((x[i] if s.name in whole else x[i : i + 1]) if p else x)
                 for s, x, p in zip(specs_in, xs, per_sample)]
        steps.append(run(feeds))
    return [np.concatenate(outs) if batched(spec) else np.stack(outs) for spec, outs in zip(specs_out, zip(*steps))]


def run_sequence(model, inputs: dict) -> list:
    """A recurrent model over a sequence: sample ``i`` of every input (whole inputs and the first state as
    given), the state of step ``i`` from the outputs of step ``i - 1``. One dict of outputs per step."""
    pairs = state_pairs(model.metadata)
    if not pairs:
        raise UserError(f"{model.path.name}: no output is an input's next state; it is not run as a sequence")
    n = len(next(v for k, v in inputs.items() if k not in pairs))
    state = {k: np.asarray(inputs[k][:1]) for k in pairs}
    steps = []
    for i in range(n):
        feed = {k: (state[k] if k in pairs else v[i : i + 1]) for k, v in inputs.items()}
        out = model.run(feed)
        state = {k: out[o][:1] for k, o in pairs.items()}  # the sample axis kept: a whole input's next value
        steps.append({k: v[0] for k, v in out.items()})
    return steps


def stride_rule(name: str, spec: TensorSpec, layout: str, shape: tuple, stride: Optional[int]) -> None:
    """Refuse a picture whose free height or width is not a multiple of the model's ``stride`` (a detector's
    own metadata says it: Ultralytics writes ``stride``), naming the rule and the size that keeps it."""
    if not stride or len(spec.shape) != 4 or len(shape) != 4:
        return
    axes = (2, 3) if layout == "NCHW" else (1, 2)
    for axis, what in zip(axes, ("height", "width")):
        if spec.shape[axis] is None and shape[axis] % stride:
            up = [-(-shape[a] // stride) * stride for a in axes]
            raise UserError(f"{name}: input {spec.name!r} is {shape[axes[0]]}×{shape[axes[1]]}: its {what} must be "
                            f"a multiple of {stride} (the model's stride, from its metadata); give --size "
                            f"{up[0]}x{up[1]}")  # fmt: skip


def shape_failure(name: str, specs, shapes: list, ran: Optional[tuple], exc: BaseException) -> Optional[UserError]:
    """The interpreter's refusal of inputs of free sizes as a shape error: the shapes given, those the model
    declares and the last it ran at, and the interpreter's reason. None when no input has a free size (then
    the input was not the matter)."""
    if not any(None in s.shape[1:] for s in specs) or isinstance(exc, (UserError, MemoryError)):
        return None
    given = ", ".join(f"{s.name} {_shown(tuple(shape))}" for s, shape in zip(specs, shapes))
    declared = ", ".join(f"{s.name} {s.shown()}" for s in specs)
    before = "" if not ran or list(ran) == list(shapes) else \
        f"; it ran at {', '.join(_shown(tuple(r)) for r in ran)}"  # fmt: skip
    return UserError(f"{name}: the model cannot take {given} (it declares {declared}{before}): "
                     f"{one_line(exc, 200)}; give inputs of another size")  # fmt: skip
