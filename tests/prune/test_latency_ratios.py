"""Which cells a run times (RunConfig.is_timed) and the recoveries a preset compares by default."""

from prune.config import STUDY, RunConfig, Variant
from prune.presets import get_preset

BN = Variant("l1-unstructured", "bn")
FINETUNE = Variant("l1-unstructured", "finetune")


def test_the_study_is_timed_at_its_latency_ratios_at_zero_and_at_the_compare_ratios_only():
    cfg = RunConfig(models=("lenet5",), ratios=(0, 25, 50, 90, 99), recoveries=("none", "finetune"),
                    compare_ratios=(50,), latency_ratios=(90,))
    timed = [ratio for ratio in cfg.ratios if cfg.is_timed("lenet5", STUDY, ratio)]
    assert timed == [0, 50, 90]


def test_every_other_variant_is_timed_at_its_ratios():
    cfg = RunConfig(models=("lenet5",), recoveries=("none", "finetune"), compare_ratios=(50,), latency_ratios=(90,))
    assert cfg.is_timed("lenet5", FINETUNE, 50)


def test_without_latency_ratios_the_preset_decides_quick_times_every_lenet_ratio_and_four_resnet_ones():
    cfg = RunConfig(models=("lenet5", "resnet18"), methods=("l1-unstructured", "global-l1"))
    assert all(cfg.is_timed("lenet5", STUDY, ratio) for ratio in cfg.ratios)
    assert [r for r in cfg.ratios if cfg.is_timed("resnet18", STUDY, r)] == [0, 50, 90, 99]


def test_no_recovery_given_means_the_presets_recoveries_per_model():
    cfg = RunConfig(models=("lenet5", "resnet18"), methods=("l1-unstructured",), recoveries=None)
    assert set(cfg.variants("lenet5")) == {STUDY, FINETUNE}
    assert set(cfg.variants("resnet18")) == {STUDY, BN}
    assert get_preset("quick").settings("resnet50").compare_recoveries == ("none", "bn")


def test_a_given_recovery_list_applies_to_every_model():
    cfg = RunConfig(models=("resnet18",), methods=("l1-unstructured",), recoveries=("finetune",))
    assert set(cfg.variants("resnet18")) == {STUDY, Variant("l1-unstructured", "finetune")}


def test_bn_is_left_out_for_a_model_without_batchnorm_and_the_run_says_why():
    cfg = RunConfig(models=("lenet5", "resnet18"), methods=("l1-unstructured",), recoveries=("none", "bn"))
    assert set(cfg.variants("lenet5")) == {STUDY}
    assert cfg.skipped_recoveries("lenet5") == {"bn": "skipped: lenet5 has no BatchNorm layers"}
    assert set(cfg.variants("resnet18")) == {STUDY, BN} and cfg.skipped_recoveries("resnet18") == {}
