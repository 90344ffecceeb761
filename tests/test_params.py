"""The parameter schema, validation, and the A1111 infotext codec."""

from __future__ import annotations

import dataclasses
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sdtui.params.codec import RunFacts, infotext_from_params, params_from_infotext
from sdtui.params.infotext import parse_infotext, quote, unquote
from sdtui.params.schema import PARAMS, GenerationParams, cli_flag, spec
from sdtui.params.validate import ParameterError, resolve, resolve_seed, validate

# Written by hand from A1111's format (A1111-FACTS §4): what A1111 1.10 writes.
GOLDEN_HIRES = (
    "masterpiece, a castle on a hill, (detailed:1.2)\n"
    "Negative prompt: blurry, lowres\n"
    "Steps: 30, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7.5, Seed: 2848233036, "
    "Size: 512x768, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, "
    "Denoising strength: 0.5, Clip skip: 2, Hires upscale: 2, Hires steps: 15, "
    'Hires upscaler: 4x-UltraSharp, Lora hashes: "add_detail: 7c6bad76eb54, foo: 0123456789ab", '
    "Version: v1.10.1"
)
GOLDEN_VARIATION = (
    "a red fox in snow\n"
    "Steps: 20, Sampler: Euler a, Schedule type: Automatic, CFG scale: 7, Seed: 12345, "
    "Size: 512x512, Model hash: abcdef0123, Model: my model, Variation seed: 999, "
    "Variation seed strength: 0.25, Seed resize from: 768x512, ENSD: 31337, RNG: NV, "
    'Hires prompt: "a fox, detailed", Version: v1.10.1'
)
GOLDEN_LEGACY = (
    "old style\nSteps: 25, Sampler: DPM++ 2M Karras, CFG scale: 9, Seed: 1, Size: 640x448, "
    "Model hash: 8badf00d, Some Extension Key: value kept, Tiling: True"
)


def test_golden_hires_infotext() -> None:
    parsed = params_from_infotext(GOLDEN_HIRES)
    values = parsed.values
    assert values["prompt"] == "masterpiece, a castle on a hill, (detailed:1.2)"
    assert values["negative_prompt"] == "blurry, lowres"
    assert (values["width"], values["height"]) == (512, 768)
    assert values["seed"] == 2848233036 and values["cfg_scale"] == 7.5
    assert values["sampler"] == "DPM++ 2M" and values["schedule"] == "Karras"
    assert values["enable_hires"] and values["hires_scale"] == 2.0
    assert values["hires_steps"] == 15 and values["hires_upscaler"] == "4x-UltraSharp"
    assert values["denoising_strength"] == 0.5 and values["clip_skip"] == 2
    assert values["rng"] == "GPU"  # no RNG key: A1111's GPU noise
    assert parsed.info["Lora hashes"] == "add_detail: 7c6bad76eb54, foo: 0123456789ab"
    assert parsed.info["Model hash"] == "6ce0161689" and parsed.info["Version"] == "v1.10.1"
    assert parsed.unknown == {}


def test_golden_variation_infotext() -> None:
    parsed = params_from_infotext(GOLDEN_VARIATION)
    values = parsed.values
    assert "negative_prompt" in values and values["negative_prompt"] == ""
    assert values["variation_seed"] == 999 and values["variation_strength"] == 0.25
    assert (values["seed_resize_from_width"], values["seed_resize_from_height"]) == (768, 512)
    assert values["ensd"] == 31337 and values["rng"] == "NV"
    assert values["hires_prompt"] == "a fox, detailed"
    assert values["model"] == "my model" and values["schedule"] == "Automatic"


def test_legacy_sampler_names_split_and_unknown_keys_are_kept() -> None:
    parsed = params_from_infotext(GOLDEN_LEGACY)
    assert parsed.values["sampler"] == "DPM++ 2M" and parsed.values["schedule"] == "Karras"
    assert parsed.values["tiling"] is True
    assert parsed.unknown == {"Some Extension Key": "value kept"}


def test_last_line_with_fewer_than_three_pairs_is_prompt() -> None:
    parsed = parse_infotext("a photo\nstyle: watercolor, mood: calm")
    assert parsed.prompt == "a photo\nstyle: watercolor, mood: calm" and parsed.values == {}


def test_multiline_prompts() -> None:
    text = "line one\nline two\nNegative prompt: bad\nworse\nSteps: 5, Seed: 3, CFG scale: 4"
    parsed = parse_infotext(text)
    assert parsed.prompt == "line one\nline two" and parsed.negative_prompt == "bad\nworse"


@pytest.mark.parametrize("text", ["plain", "a, b", "key: value", "two\nlines", 'quote " in'])
def test_quote_round_trip(text: str) -> None:
    assert unquote(quote(text)) == text


def test_writer_uses_a1111_order_and_omits_defaults() -> None:
    params = resolve(
        GenerationParams(prompt="cat", seed=7, steps=12, cfg_scale=6.5, clip_skip=2),
        settings={"randn_source": "GPU"},
    )
    text = infotext_from_params(
        params,
        RunFacts(seed=7, schedule_label="Karras", model_name="m", model_hash="0123456789"),
    )
    assert text == (
        "cat\nSteps: 12, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6.5, Seed: 7, "
        "Size: 512x512, Model hash: 0123456789, Model: m, Clip skip: 2"
    )


def test_writer_hires_and_variation_keys() -> None:
    params = resolve(
        GenerationParams(
            prompt="p",
            negative_prompt="n",
            seed=1,
            variation_seed=5,
            variation_strength=0.3,
            enable_hires=True,
            hires_resize_width=1024,
            hires_resize_height=768,
            hires_sampler="Euler",
            hires_prompt="p, sharp",
        )
    )
    text = infotext_from_params(params, RunFacts(seed=1, variation_seed=5, version="sdtui 0.1.0"))
    last = text.splitlines()[-1]
    assert "Variation seed: 5, Variation seed strength: 0.3" in last
    assert "Denoising strength: 0.7, RNG: CPU, Hires sampler: Euler, " in last
    assert 'Hires prompt: "p, sharp", Hires resize: 1024x768, Hires upscaler: Latent' in last
    assert last.endswith("Version: sdtui 0.1.0")


def test_validation_lists_every_problem() -> None:
    params = GenerationParams(steps=0, width=513, cfg_scale=99.0, rng="TPU")
    with pytest.raises(ParameterError) as error:
        validate(params)
    assert error.value.problems == [
        "Sampling steps must be between 1 and 150, got 0",
        "Width must be a multiple of 8, got 513",
        "CFG Scale must be between 1 and 30, got 99.0",
        "Random number generator source 'TPU' is not one of: CPU, GPU, NV",
    ]
    with pytest.raises(ParameterError, match="Sampling method 'Eular' is not one of: Euler"):
        validate(GenerationParams(sampler="Eular"), {"sampler": ["Euler", "Euler a"]})
    validate(GenerationParams())  # the defaults are valid


def test_resolve_fills_settings_and_seeds() -> None:
    resolved = resolve(
        GenerationParams(), settings={"eta_noise_seed_delta": 31337}, rng=random.Random(0)
    )
    assert resolved.ensd == 31337 and resolved.rng == "CPU" and resolved.clip_skip == 1
    assert 0 <= resolved.seed < 4294967294 and resolved.variation_seed >= 0
    assert resolve(GenerationParams(seed=42)).seed == 42


def test_an_unused_variation_seed_resolves_to_a_fixed_value() -> None:
    """Without a variation strength the variation seed changes nothing, so -1 must not put a
    random number into the saved parameters (the same run would write other PNG bytes)."""
    assert resolve(GenerationParams(seed=1)).variation_seed == 0
    assert resolve(GenerationParams(seed=1, variation_seed=7)).variation_seed == 7
    varied = resolve(GenerationParams(seed=1, variation_strength=0.3), rng=random.Random(0))
    assert varied.variation_seed == resolve_seed(-1, random.Random(0))


def test_every_field_has_a_complete_spec() -> None:
    for name in PARAMS:
        field_spec = spec(name)
        assert field_spec.label and field_spec.help and field_spec.section, name
        assert cli_flag(name).startswith("--") and "_" not in cli_flag(name)


def bounded(name: str, kind: type):
    s = spec(name)
    if kind is int:
        step = int(s.step or 1)
        return st.integers(int(s.minimum) // step, int(s.maximum) // step).map(lambda v: v * step)
    return st.floats(s.minimum, s.maximum, allow_nan=False).map(lambda v: round(v, 3))


prompt_text = (
    st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), max_size=40)
    .map(str.strip)
    .filter(lambda s: not s.startswith("Negative prompt:"))
)
choice = st.sampled_from


@st.composite
def requests(draw) -> GenerationParams:
    strength = draw(st.sampled_from([0.0, 0.5, 1.0]))
    hires = draw(st.booleans())
    return GenerationParams(
        prompt=draw(prompt_text),
        negative_prompt=draw(prompt_text),
        sampler=draw(choice(["Euler a", "DPM++ 2M", "DDIM", "UniPC"])),
        schedule=draw(choice(["Automatic", "Karras", "Exponential"])),
        steps=draw(bounded("steps", int)),
        width=draw(bounded("width", int)),
        height=draw(bounded("height", int)),
        cfg_scale=draw(bounded("cfg_scale", float)),
        seed=draw(st.integers(0, 2**32 - 1)),
        variation_seed=draw(st.integers(0, 2**32 - 1)),
        variation_strength=strength,
        clip_skip=draw(st.integers(1, 12)),
        rng=draw(choice(["CPU", "GPU", "NV"])),
        ensd=draw(st.integers(0, 99999)),
        eta=draw(choice([0.0, 0.5, 1.0])),
        s_noise=draw(choice([1.0, 0.9])),
        enable_hires=hires,
        hires_steps=draw(bounded("hires_steps", int)),
        denoising_strength=draw(bounded("denoising_strength", float)),
        hires_scale=draw(bounded("hires_scale", float)),
        hires_upscaler=draw(choice(["Latent", "R-ESRGAN 4x+", "Latent (nearest-exact)"])),
        hires_prompt=draw(prompt_text),
        tiling=draw(st.booleans()),
    )


CARRIED = [n for n in PARAMS if spec(n).infotext] + ["prompt", "negative_prompt"]


@settings(deadline=None, max_examples=150)
@given(requests())
def test_params_infotext_params_round_trip(params: GenerationParams) -> None:
    params = resolve(params)
    facts = RunFacts(
        seed=params.seed, variation_seed=params.variation_seed, uses_ensd=True, uses_eta=True
    )
    parsed = params_from_infotext(infotext_from_params(params, facts))
    back = parsed.apply_to(GenerationParams())
    assert parsed.unknown == {}
    skip = {"model", "vae", "hires_checkpoint", "refiner_checkpoint", "refiner_switch_at"}
    if params.variation_strength == 0:
        skip |= {"variation_seed"}
    if not params.enable_hires:
        skip |= {n for n in PARAMS if n.startswith("hires_")} | {"denoising_strength"}
    elif params.hires_prompt in ("", params.prompt):
        skip |= {"hires_prompt"}
    if not params.enable_hires or params.hires_sampler is None:
        skip |= {"hires_sampler", "hires_schedule"}
    for name in CARRIED:
        if name not in skip:
            assert getattr(back, name) == getattr(params, name), name
    assert back.enable_hires == params.enable_hires


def test_apply_to_keeps_unrelated_fields() -> None:
    base = GenerationParams(batch_size=4)
    applied = params_from_infotext(GOLDEN_VARIATION).apply_to(base)
    assert applied.batch_size == 4 and applied.seed == 12345
    assert dataclasses.replace(applied, seed=1).seed == 1
