"""The refiner: the base model samples until the noise level passes "switch at", then the
refiner continues the same sampling (A1111's apply_refiner).

Hand oracle for the switch: DDIM with 4 steps calls the model at timesteps 751, 501, 251
(A1111's loop stops at timestep 1 without a call), which are (999 - t) / 1000 = 0.248,
0.498, 0.748 done; the refiner takes the calls past `switch at`.
"""

from __future__ import annotations

import numpy as np
import pytest

from sdtui.core.discrete import DiscreteSchedule
from sdtui.engine.model_switch import Checkpoint, OtherModels
from sdtui.engine.refiner import completed_ratio, refiner_due, refiner_in_pass
from sdtui.params.codec import params_from_infotext
from tests.model_switch_helpers import Loads, counting, generate, pixels, tiny

TITLE = "tiny-refiner [0123abcdef]"


def refiner_models(refiner, loads: Loads | None = None) -> OtherModels:
    load = loads.loader("refiner", refiner) if loads else (lambda: refiner)
    return OtherModels(refiner=Checkpoint(TITLE, load))


def test_completed_ratio_follows_the_nearest_timestep() -> None:
    schedule = DiscreteSchedule.stable_diffusion()
    sigmas = schedule.sigmas
    assert completed_ratio(sigmas[999], schedule) == 0.0
    assert completed_ratio(sigmas[751], schedule) == pytest.approx(0.248)
    assert completed_ratio(sigmas[1], schedule) == pytest.approx(0.998)
    assert completed_ratio(sigmas[0], schedule) == pytest.approx(0.999)
    # a batch of sigmas counts its largest; a sigma between two timesteps takes the nearer
    assert completed_ratio([sigmas[10], sigmas[500]], schedule) == pytest.approx(0.499)
    between = sigmas[500] * 0.9 + sigmas[501] * 0.1
    assert completed_ratio(between, schedule) == pytest.approx(0.499)
    assert not any(refiner_due(sigma, 1.0, schedule) for sigma in sigmas)
    assert refiner_due(sigmas[199], 0.8, schedule) and not refiner_due(sigmas[200], 0.8, schedule)


def test_which_pass_the_refiner_may_join() -> None:
    assert refiner_in_pass(False, False, "second pass")
    assert [refiner_in_pass(True, hires, "second pass") for hires in (False, True)] == [0, 1]
    assert [refiner_in_pass(True, hires, "first pass") for hires in (False, True)] == [1, 0]
    assert [refiner_in_pass(True, hires, "both passes") for hires in (False, True)] == [1, 1]
    with pytest.raises(ValueError, match="hires refiner pass"):
        refiner_in_pass(True, False, "third pass")


# DDIM at 4 steps: A1111's loop calls the model at timesteps 751, 501 and 251 (completed
# (999 - t) / 1000 = 0.248, 0.498, 0.748); the refiner takes the calls past `switch_at`
@pytest.mark.parametrize(("switch_at", "base_calls", "refiner_calls"), [(0.3, 1, 2), (0.5, 2, 1)])
def test_the_refiner_takes_the_calls_after_the_switch(switch_at, base_calls, refiner_calls):
    base, refiner = tiny("sd1", 0), tiny("sd1", 5)
    with counting(base.unet, refiner.unet) as calls:
        (result,) = generate(
            base,
            prompt="a fox",
            sampler="DDIM",
            refiner_checkpoint="tiny-refiner",
            refiner_switch_at=switch_at,
            other_models=refiner_models(refiner),
        )
    assert (calls[0], calls[1]) == (base_calls, refiner_calls)
    assert calls.order == [0] * base_calls + [1] * refiner_calls
    assert f"Refiner: {TITLE}, Refiner switch at: {switch_at}" in result.infotext
    parsed = params_from_infotext(result.infotext).values
    assert parsed["refiner_checkpoint"] == TITLE and parsed["refiner_switch_at"] == switch_at


def test_switch_at_one_is_the_base_model_alone() -> None:
    base, refiner, loads = tiny("sd1", 0), tiny("sd1", 5), Loads()
    (alone,) = generate(base, prompt="a fox", sampler="DDIM")
    with counting(refiner.unet) as calls:
        (never,) = generate(
            base,
            prompt="a fox",
            sampler="DDIM",
            refiner_checkpoint="tiny-refiner",
            refiner_switch_at=1.0,
            other_models=refiner_models(refiner, loads),
        )
    assert np.array_equal(pixels(alone), pixels(never))
    assert calls[0] == 0 and loads.order == []
    assert never.infotext == alone.infotext  # A1111 names the refiner only once it ran


def test_a_switch_half_way_differs_from_either_model_alone() -> None:
    base, refiner = tiny("sd1", 0), tiny("sd1", 5)
    (half,) = generate(
        base,
        prompt="a fox",
        refiner_checkpoint="tiny-refiner",
        refiner_switch_at=0.5,
        other_models=refiner_models(refiner),
    )
    (base_only,) = generate(base, prompt="a fox")
    (refiner_only,) = generate(refiner, prompt="a fox")
    assert not np.array_equal(pixels(half), pixels(base_only))
    assert not np.array_equal(pixels(half), pixels(refiner_only))


def test_a_refiner_that_is_the_base_model_does_nothing() -> None:
    base = tiny("sd1", 0)
    (alone,) = generate(base, prompt="a fox", steps=2)
    (same,) = generate(
        base,
        prompt="a fox",
        steps=2,
        refiner_checkpoint="itself",
        refiner_switch_at=0.3,
        other_models=refiner_models(base),
    )
    assert np.array_equal(pixels(alone), pixels(same)) and same.infotext == alone.infotext


def test_every_batch_starts_on_the_base_model() -> None:
    base, refiner, loads = tiny("sd1", 0), tiny("sd1", 5), Loads()
    other = OtherModels(
        refiner=Checkpoint(TITLE, loads.loader("refiner", refiner)),
        reload=loads.loader("base", base),
    )
    options = dict(sampler="DDIM", refiner_checkpoint="r", refiner_switch_at=0.5)
    with counting(base.unet, refiner.unet) as calls:
        _, second = generate(base, prompt="a fox", batch_count=2, other_models=other, **options)
    assert loads.order == ["base", "refiner", "base", "refiner"]
    assert calls.order == [0, 0, 1, 0, 0, 1]
    (alone,) = generate(base, prompt="a fox", seed=22, other_models=other, **options)
    assert np.array_equal(pixels(second), pixels(alone))


def test_sdxl_base_with_the_sdxl_refiner() -> None:
    base, refiner = tiny("sdxl", 0), tiny("sdxl-refiner", 1)
    with counting(base.unet, refiner.unet) as calls:
        (result,) = generate(
            base,
            prompt="a fox",
            negative_prompt="blurry",
            sampler="DDIM",
            refiner_checkpoint="r",
            refiner_switch_at=0.7,  # 0.748 done at the third call: the refiner takes the last
            other_models=refiner_models(refiner),
        )
    assert (calls[0], calls[1]) == (2, 1)
    (base_only,) = generate(base, prompt="a fox", negative_prompt="blurry", sampler="DDIM")
    assert not np.array_equal(pixels(result), pixels(base_only))


def test_with_hires_fix_the_refiner_joins_the_second_pass_by_default() -> None:
    base, refiner = tiny("sd1", 0), tiny("sd1", 5)
    options = dict(
        prompt="a fox",
        steps=3,
        enable_hires=True,
        hires_scale=1.5,
        hires_steps=3,
        denoising_strength=0.9,
        refiner_checkpoint="r",
        refiner_switch_at=0.5,
        other_models=refiner_models(refiner),
    )
    with counting(base.unet, refiner.unet) as calls:
        (second,) = generate(base, **options)
    assert calls.order[:3] == [0, 0, 0] and 0 < calls[1] < 3  # first pass all base
    assert calls.order[3:] == [0] * (calls[0] - 3) + [1] * calls[1]
    assert "Hires refiner" not in second.infotext and f"Refiner: {TITLE}" in second.infotext
    with counting(base.unet, refiner.unet) as calls:
        (first,) = generate(base, hires_refiner_pass="first pass", **options)
    # the first pass switches; the hires pass runs on the model that is active: the refiner
    assert calls.order == [0] * calls[0] + [1] * calls[1] and calls[0] < 3
    assert "Hires refiner: first pass" in first.infotext


def test_a_refiner_without_a_loader_is_an_error() -> None:
    with pytest.raises(ValueError, match="refiner 'r' needs a loader"):
        generate(tiny("sd1", 0), prompt="x", refiner_checkpoint="r")
    (result,) = generate(tiny("sd1", 0), prompt="x", steps=2, refiner_checkpoint="None")
    assert "Refiner" not in result.infotext
