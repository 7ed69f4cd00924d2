"""Knowledge distillation (Hinton, Vinyals & Dean, 2015), written out: no library here does it for tf-keras.

A classifier student minimises ``alpha * CE(labels, student) + (1 - alpha) * T² * KL(teacher_T || student_T)``
where ``_T`` is a softmax at temperature ``T``. The zoo's classifiers end in a
softmax, so logits are recovered as log-probabilities (equal up to a constant,
which the softmax ignores). Both teacher and student see the same randomly
shifted images, where the teacher's answer carries more than the label.

A denoiser student minimises ``alpha * MSE(clean, student) + (1 - alpha) * MSE(teacher, student)`` on the
same noisy patches: the teacher's output is a target with no noise of its own and, for a student of a
smaller receptive field, one it can reach.
"""
from __future__ import annotations

from exporters.tfkeras import keras, output_names, tf
from runtime.errors import UserError, one_line

from ..data.datasets import Dataset
from ..tasks import HOST_TASKS, host_task
from ..training import distribute
from ..training.model_io import require_tf_keras
from ..training.train import compile_for_task
from ._configs import DistillConfig

EPS = 1e-7


def _share(loss):
    """This replica's share of the loss: the optimizer sums the replicas' gradients, so a mean over the
    global batch is each replica's mean divided by the number of replicas (Keras's compiled losses do this)."""
    return loss / tf().distribute.get_replica_context().num_replicas_in_sync


def _distiller_class():
    k, t = keras(), tf()

    class Distiller(k.Model):
        """Trains ``student`` against ``teacher``; ``alpha == 1`` is plain training on the labels."""

        def __init__(self, student, teacher, temperature: float, alpha: float, shift: float):
            super().__init__()
            self.student, self.teacher = student, teacher
            self.temperature, self.alpha = temperature, alpha
            self.augment = (
                k.layers.RandomTranslation(shift, shift, fill_mode="constant") if shift > 0 else None
            )

        def call(self, x, training=False):
            return self.student(x, training=training)

        def train_step(self, data):
            x, y = data
            if self.augment is not None:
                x = self.augment(x, training=True)
            temp = self.temperature
            with t.GradientTape() as tape:
                p_student = self.student(x, training=True)
                hard = k.losses.sparse_categorical_crossentropy(y, p_student)
                loss = self.alpha * hard
                if self.alpha < 1.0:
                    p_teacher = self.teacher(x, training=False)
                    soft_t = t.nn.softmax(t.math.log(p_teacher + EPS) / temp)
                    soft_s = t.nn.softmax(t.math.log(p_student + EPS) / temp)
                    loss += (1.0 - self.alpha) * temp**2 * k.losses.kl_divergence(soft_t, soft_s)
                loss = t.reduce_mean(loss)
                share = _share(loss)
            grads = tape.gradient(share, self.student.trainable_variables)
            self.optimizer.apply_gradients(zip(grads, self.student.trainable_variables))
            return {"loss": loss}

    return Distiller


def _denoising_distiller_class():
    k, t = keras(), tf()

    class DenoisingDistiller(k.Model):
        """Trains a denoiser ``student`` on noisy patches towards ``alpha`` × the clean image and
        (1 − ``alpha``) × the ``teacher``'s output for the same noisy input (mean squared errors)."""

        def __init__(self, student, teacher, alpha: float):
            super().__init__()
            self.student, self.teacher, self.alpha = student, teacher, alpha

        def call(self, x, training=False):
            return self.student(x, training=training)

        def train_step(self, data):
            noisy, clean = data
            with t.GradientTape() as tape:
                out = self.student(noisy, training=True)
                loss = self.alpha * t.reduce_mean(t.square(out - clean))
                if self.alpha < 1.0:
                    taught = t.stop_gradient(self.teacher(noisy, training=False))
                    loss += (1.0 - self.alpha) * t.reduce_mean(t.square(out - taught))
                share = _share(loss)
            grads = tape.gradient(share, self.student.trainable_variables)
            self.optimizer.apply_gradients(zip(grads, self.student.trainable_variables))
            return {"loss": loss}

    return DenoisingDistiller


SCALED = ("Conv1D", "Conv2D", "Conv3D", "SeparableConv1D", "SeparableConv2D", "Conv2DTranspose", "Dense", "LSTM",
          "GRU", "SimpleRNN")  # fmt: skip


def output_heads(model) -> set:
    """The names of the layers that set the outputs' widths: each output's layer and, back through layers
    without weights (a Reshape, an Activation, a Concatenate), the last layers with weights before it."""
    heads, todo = set(), [model.get_layer(name) for name in output_names(model)]
    while todo:
        layer = todo.pop()
        if layer.name in heads:
            continue
        heads.add(layer.name)
        if not layer.weights:
            for node in layer.inbound_nodes:
                found = node.inbound_layers
                todo += found if isinstance(found, (list, tuple)) else [found]
    return heads


def width_scaled(model, factor: float):
    """A fresh copy of ``model``'s architecture with every convolution, dense and recurrent layer ``factor``
    times as wide (at least 1), except the layers that set the outputs' widths (``output_heads``): the teacher's
    own shape, thinner, for the student."""
    k = keras()
    outputs = output_heads(model)

    def clone(layer):
        config = layer.get_config()
        kind = type(layer).__name__
        if kind == "Bidirectional":
            inner = config["layer"]["config"]
            inner["units"] = max(1, round(inner["units"] * factor))
            config.pop("backward_layer", None)
        elif kind in SCALED and layer.name not in outputs:
            key = "filters" if "filters" in config else "units"
            config[key] = max(1, round(config[key] * factor))
        return type(layer).from_config(config)

    try:
        return k.models.clone_model(model, clone_function=clone)
    except ValueError as exc:  # a residual add between a scaled branch and a fixed one, say
        raise UserError(f"cannot make a {factor:g}-wide copy of {model.name} ({one_line(exc, 120)}); "
                        "give --student PATH (a model of your own)") from None


def build_student(teacher, config: DistillConfig, num_classes: int):
    """The student: a width-scaled copy of the teacher (``width:F``), a saved model (a path), or a fresh one
    from the registry; checked against the teacher."""
    from ..models import create_model, list_models

    name = config.student
    if config.student_model is not None:
        student = config.student_model
    elif name.startswith("width:"):
        try:
            factor = float(name.split(":", 1)[1])
        except ValueError:
            factor = 0.0
        if not 0 < factor <= 1:
            raise UserError(f"--student {name!r}: give width:F with F in (0, 1], e.g. width:0.5")
        student = width_scaled(teacher, factor)
    elif name not in list_models():
        from pathlib import Path

        from ..training.model_io import load_keras_model

        if not Path(name).exists():
            raise UserError(f"--student {name!r}: neither a zoo model ({', '.join(list_models())}), width:F, nor a "
                            "saved model file")  # fmt: skip
        student = load_keras_model(name)
    else:
        student = create_model(name, num_classes=num_classes) if num_classes else create_model(name)
    require_tf_keras(student, "distillation")
    def shapes(model, what: str) -> list:
        return [tuple(t.shape[1:]) for t in getattr(model, what)]

    for what in ("inputs", "outputs"):
        mine, theirs = shapes(student, what), shapes(teacher, what)
        if mine != theirs:
            shown = ", ".join(map(str, mine)), ", ".join(map(str, theirs))
            raise UserError(f"the student's {what[:-1]} shape {shown[0]} differs from the teacher's {shown[1]}")
    return student


def distill(teacher, config: DistillConfig, data: Dataset, task: str, before: tuple, backup=None):
    """Train a student from ``teacher`` on ``data`` (``alpha=1`` in the config: without it).

    Random state (the student's initial weights, the shifts) comes from the
    global seed, which ``compress`` sets: the same seed with and without the
    teacher gives the same starting student, so the two compare pairwise.
    """
    require_tf_keras(teacher, "distillation")
    kind = host_task(task).distiller
    if kind is None:
        served = ", ".join(name for name, t in HOST_TASKS.items() if t.distiller)
        raise UserError(f"distillation is implemented for {served} models, not {task}")
    how = DISTILLERS[kind]
    return how(teacher, config, data, backup)


def _towards_outputs(teacher, config: DistillConfig, data, backup):
    """No labels: the student learns the teacher's outputs, every one (``data``: see ``tasks.generic``)."""
    student = build_student(teacher, config, num_classes=None)
    compile_for_task(student, "generic", config.learning_rate)
    distribute.fit(student, data, batch_size=config.batch_size, epochs=config.epochs, backup=backup)
    return student


def _denoiser(teacher, config: DistillConfig, data, backup):
    """Noisy patches in, the clean image and the teacher's output as targets."""
    student = build_student(teacher, config, num_classes=None)
    distiller = _denoising_distiller_class()(student, teacher, config.alpha)
    distiller.compile(optimizer=keras().optimizers.Adam(config.learning_rate))
    distribute.fit(distiller, data, batch_size=config.batch_size, epochs=config.epochs, backup=backup)
    return student


def _classifier(teacher, config: DistillConfig, data: Dataset, backup):
    """Labelled images: the labels and the teacher's softened scores (Hinton et al., 2015)."""
    student = build_student(teacher, config, num_classes=int(teacher.outputs[0].shape[-1]))
    distiller = _distiller_class()(student, teacher, config.temperature, config.alpha, config.shift)
    distiller.compile(optimizer=keras().optimizers.Adam(config.learning_rate))
    distribute.fit(distiller, data, batch_size=config.batch_size, epochs=config.epochs, backup=backup)
    return student


# By the task's ``distiller`` (``edgedl.tasks``' registry).
DISTILLERS = {"labels": _classifier, "clean": _denoiser, "outputs": _towards_outputs}
