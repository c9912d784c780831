"""The precision a run uses when nobody chose one: bfloat16 only where it is fast (config.for_this_machine)."""

from __future__ import annotations

import pytest

from fmnist_core import machine
from fmnist_core.config import PRESETS, for_this_machine, precision_note
from fmnist_core.models.registry import get_spec
from fmnist_core.store.cache import ModelCache
from fmnist_core.training.pipeline import Outcome, preset_here
from tests.records import StandInModel, make_record

SLOW_CPU = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse sse2 avx f16c fma\n\n"
FAST_CPU = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx avx2 avx512f avx512_bf16\n\n"


@pytest.fixture
def bfloat16_fast(monkeypatch):
    """Set whether this 'machine' computes bfloat16 fast; the rule reads machine.bfloat16_is_fast."""

    def choose(fast: bool) -> None:
        monkeypatch.setattr(machine, "bfloat16_is_fast", lambda: fast)

    return choose


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(FAST_CPU)
    assert {"avx512_bf16", "avx2"} <= machine.cpu_flags(str(cpuinfo))
    assert machine.cpu_flags(str(tmp_path / "missing")) is None


@pytest.mark.parametrize(
    ("cpuinfo", "gpu", "fast"),
    [(FAST_CPU, False, True), (SLOW_CPU, False, False), (SLOW_CPU, True, True), (None, False, False)],
)
def test_bfloat16_counts_as_fast_only_with_native_cpu_support_or_a_gpu(tmp_path, monkeypatch, cpuinfo, gpu, fast):
    path, read = tmp_path / "cpuinfo", machine.cpu_flags
    if cpuinfo is not None:
        path.write_text(cpuinfo)
    monkeypatch.setattr(machine, "cpu_flags", lambda: read(str(path)))
    monkeypatch.setattr(machine, "nvidia_gpu_present", lambda: gpu)
    assert machine.bfloat16_is_fast.__wrapped__() is fast


def test_without_fast_bfloat16_the_presets_train_in_float32_and_say_why(bfloat16_fast):
    bfloat16_fast(False)
    for preset in PRESETS.values():
        assert for_this_machine(preset) == preset.replace(precision="float32")
        assert "no native bfloat16" in precision_note(preset)
    chosen = PRESETS["quick"].replace(precision="float32")
    assert for_this_machine(chosen) == chosen and precision_note(chosen) is None


def test_with_fast_bfloat16_the_presets_stay_as_defined(bfloat16_fast):
    bfloat16_fast(True)
    for preset in PRESETS.values():
        assert for_this_machine(preset) == preset and precision_note(preset) is None


def test_a_cached_bfloat16_model_is_used_rather_than_trained_again_in_float32(cache_dir, bfloat16_fast):
    bfloat16_fast(False)
    cache, spec, quick = ModelCache(), get_spec("model1"), PRESETS["quick"]
    assert preset_here(spec, quick, cache) == quick.replace(precision="float32"), "nothing cached: float32"
    assert cache.lookup_either_precision(spec, quick) is None
    cache.save(StandInModel(), make_record(spec, quick))
    assert preset_here(spec, quick, cache) == quick, "the shipped or earlier bfloat16 model is the preset's model"
    assert cache.lookup_either_precision(spec, quick).record.config == quick


def test_lookup_without_a_chosen_precision_finds_what_train_trained_here(cache_dir, bfloat16_fast):
    bfloat16_fast(False)
    cache, spec, quick = ModelCache(), get_spec("model1"), PRESETS["quick"]
    cache.save(StandInModel(), make_record(spec, quick.replace(precision="float32")))
    assert cache.lookup(spec, quick) is None
    assert cache.lookup_either_precision(spec, quick).record.config.precision == "float32"


@pytest.mark.parametrize(("given", "json"), [(None, False), (None, True), ("mixed_bfloat16", False)])
def test_train_without_precision_trains_this_machines_and_says_so(
    cache_dir, bfloat16_fast, monkeypatch, capsys, given, json
):
    from fmnist_core.cli import main
    from fmnist_core.training.loop import Progress

    bfloat16_fast(False)
    trained = []

    def fake_train_and_cache(spec, config, progress=None, **unused):
        trained.append(config)
        if progress is not None:
            progress(Progress("start", 1, config.epochs, 0, 10, 0.0, 0.0))
        return Outcome(ModelCache().save(StandInModel(), make_record(spec, config)), reused=False)

    monkeypatch.setattr("fmnist_core.training.pipeline.train_and_cache", fake_train_and_cache)
    arguments = ["train", "--model", "model1", "--preset", "class"] + (["--json"] if json else [])
    assert main(arguments + (["--precision", given] if given else [])) == 0
    note = capsys.readouterr().err
    if given is None:
        assert trained == [PRESETS["class"].replace(precision="float32")]
        assert "Training in float32: this CPU has no native bfloat16" in note
        assert "--precision mixed_bfloat16 keeps bfloat16" in note
    else:
        assert trained == [PRESETS["class"]], "a chosen precision is never changed"
        assert "float32" not in note
    # `evaluate` with the same flags finds that model (and would load it next).
    loaded = []
    monkeypatch.setattr(ModelCache, "load_model", lambda cache, entry_id: loaded.append(entry_id) or _stop())
    with pytest.raises(_Found):
        main(["evaluate", "--model", "model1", "--preset", "class"] + (["--precision", given] if given else []))
    assert loaded == [ModelCache().find(get_spec("model1"), trained[0]).entry_id]


class _Found(Exception):
    """Raised where `evaluate` loads the model it found."""


def _stop():
    raise _Found


# The Train page ----------------------------------------------------------------------------------------------

from tests.test_app_home_dataset_train import (  # noqa: E402
    ALICE,
    BOB,
    blocking_job,
    button,
    job_manager,
    open_page,
    router,  # noqa: F401  (router: fixture)
    stop_everything,
)


@pytest.mark.parametrize("fast", [True, False])
def test_the_train_page_offers_the_class_demo_in_the_precision_this_machine_trains_fast_in(
    router,  # noqa: F811
    cache_dir,
    bfloat16_fast,
    fast,
):
    bfloat16_fast(fast)
    blocking_job(owner=ALICE)  # The request waits in the queue, so nothing trains in this test.
    try:
        app = open_page(router, "train.py", visitor=BOB)
        [caption] = [caption.value for caption in app.caption if caption.value.startswith("2 epochs × all")]
        assert ("linear schedule, float32, seed 42" in caption) is not fast
        assert ("Training in float32: this CPU has no native bfloat16" in caption) is not fast
        button(app, "Train Model 1").click().run()
        assert not app.exception
        [waiting] = job_manager().queue()
        expected = PRESETS["class"] if fast else PRESETS["class"].replace(precision="float32")
        assert waiting.details == {"model": "model1", "config": expected.to_dict()}
        # A reload puts the same settings back: the float32 run is still the class demo.
        again = open_page(router, "train.py", visitor=BOB)
        assert again.radio[1].value == "class"
    finally:
        stop_everything()


def test_a_preset_trained_in_another_precision_is_still_that_preset():
    from fmnist_core.config import preset_name

    for name, preset in PRESETS.items():
        assert preset_name(preset) == name
        assert preset_name(preset.replace(precision="float32")) == name
    assert preset_name(PRESETS["quick"].replace(epochs=4)) is None
