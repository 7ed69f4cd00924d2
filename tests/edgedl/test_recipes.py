"""The catalogue of variants: controls are the recipes' extra training without their technique, built only
when asked for."""
import pytest

from runtime.errors import UserError


def test_a_control_trains_as_long_as_its_recipe_in_the_same_steps():
    from edgedl.compress import FineTuneConfig, PruneConfig, QATConfig
    from edgedl.pipeline.recipes import RECIPES, control_of, recipe_techniques

    prune, qat = RECIPES["prune"].configs[0], RECIPES["prune_qat"].configs[0]
    assert isinstance(prune, PruneConfig) and isinstance(qat, QATConfig)
    control = RECIPES[control_of("prune_qat")]
    assert control.parent == "control_prune" and control.exports == (("tflite", "float32"),)
    assert RECIPES["control_prune"].configs == (FineTuneConfig(prune.epochs, prune.learning_rate, prune.batch_size),)
    assert control.configs == (FineTuneConfig(qat.epochs, qat.learning_rate, qat.batch_size, True),)  # frozen BN
    assert recipe_techniques("control_prune_qat") == ("finetune", "finetune")
    assert control_of("distill") is None and control_of("student") is None  # a student's control is `student`


def test_controls_are_built_only_when_asked_for():
    from edgedl.pipeline.recipes import select_variants

    default = [s.name for s in select_variants(None, "classification")]
    assert not [n for n in default if n.startswith("control_")] and "filter_prune_tflite_float32" in default
    asked = [s.name for s in select_variants(("qat", "cluster", "control"), "classification")]
    assert asked == ["cluster_tflite_float32", "cluster_tflite_int8", "qat_tflite_int8",
                     "control_cluster_tflite_float32", "control_qat_tflite_float32"]  # fmt: skip
    every = {s.recipe for s in select_variants(("control",), "classification")}
    assert "control_prune_cluster_qat" in every and "control_filter_prune" in every
    with pytest.raises(UserError, match="known: post, prune, filter_prune, .*, control, tflite_float32"):
        select_variants(("nope",), "classification")


def test_a_zoo_denoiser_is_distilled_into_its_registered_student(tmp_path):
    from edgedl.pipeline.stages import Pipeline, PipelineConfig
    from edgedl.pipeline.recipes import variant_names

    assert {"distill_tflite_int8", "student_tflite_float32"} <= set(variant_names("denoising", ("distill", "student")))
    for model, student in (("ircnn_lite", "dncnn_lite"), ("dncnn", "dncnn_lite"), ("cnn", "cnn_student")):
        (config,) = Pipeline(PipelineConfig(model=model, out=tmp_path)).recipe_configs("distill")
        assert config.student == student
    (alone,) = Pipeline(PipelineConfig(model="ircnn_lite", out=tmp_path)).recipe_configs("student")
    assert alone.student == "dncnn_lite" and alone.alpha == 1.0  # the same student without its teacher
