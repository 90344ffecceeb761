"""The default model's trainer on a tiny model: it trains, saves, resumes bit for bit, and
exports a checkpoint sdtui's ordinary loader rebuilds with the trained configs."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import random
from pathlib import Path

import pytest
import torch

from sdtui.models.loader import load_checkpoint
from sdtui.training.default_model import META_TRAINING, TINY_SIZE
from sdtui.training.recipe import LOSS_LOG, TrainingPlan, run_training
from sdtui.training.shapes_dataset import ShapeSpec, caption
from sdtui.training.text_stage import TextOptions
from sdtui.training.train_state import LossLog, read_losses
from sdtui.training.unet_stage import (
    UNetOptions,
    diffusion_loss,
    loss_weights,
    sample_timesteps,
    step_captions,
    training_noise,
)
from sdtui.training.vae_stage import VAEOptions

ROOT = Path(__file__).resolve().parent.parent
PLAN = TrainingPlan(
    seed=5,
    size=TINY_SIZE,
    vae=VAEOptions(steps=3, batch_size=2, crop=32, warmup=1, save_every=10),
    text=TextOptions(steps=0),  # the encoder trains with the UNet; see test_text_stage.py
    unet=UNetOptions(steps=3, batch_size=2, warmup=1, save_every=10, text_lr_scale=1.0),
    latents=6,
    threads=1,
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """An uninterrupted run: its work dir and export."""
    work = tmp_path_factory.mktemp("train") / "uninterrupted"
    exported = run_training(PLAN, work, "all", work / "out" / "m.safetensors", stream=None)
    assert exported is not None
    return work, exported


def test_interrupted_run_resumes_to_the_same_losses_and_weights(
    trained: tuple[Path, Path], tmp_path: Path
) -> None:
    work, exported = trained
    other = tmp_path / "interrupted"
    assert (
        run_training(PLAN, other, "all", other / "m.safetensors", stream=None, stop_after=2) is None
    )
    assert len(read_losses(other / LOSS_LOG, "vae")) == 2
    assert not (other / "m.safetensors").exists()
    run_training(PLAN, other, "vae", stream=None)  # the VAE resumes from its save at step 2
    assert len(read_losses(other / LOSS_LOG, "vae")) == 3
    run_training(PLAN, other, "all", other / "m.safetensors", stream=None, stop_after=2)
    assert len(read_losses(other / LOSS_LOG, "unet")) == 2
    again = run_training(PLAN, other, "all", other / "m.safetensors", stream=None)
    assert again is not None
    for stage in ("vae", "unet"):
        expected = read_losses(work / LOSS_LOG, stage)
        assert len(expected) == 3 and all(loss > 0 for loss in expected)
        assert read_losses(other / LOSS_LOG, stage) == expected
    from safetensors.torch import load_file

    first, second = load_file(str(exported)), load_file(str(again))
    assert first.keys() == second.keys()
    assert all(torch.equal(first[key], second[key]) for key in first)


def test_saves_hold_what_a_resume_needs(trained: tuple[Path, Path]) -> None:
    work, _ = trained
    for name, modules in (("vae-state.pt", ["vae"]), ("unet-state.pt", ["unet", "ema_unet"])):
        state = torch.load(work / name, map_location="cpu", weights_only=False)
        assert state["step"] == 3
        assert {"optimizer", "rng", "config", *modules} <= set(state)
    assert not list(work.glob("*.tmp"))


def test_export_loads_through_the_normal_loader(trained: tuple[Path, Path]) -> None:
    work, exported = trained
    model = load_checkpoint(exported)
    assert model.family.id == "sd1"
    assert model.family.prediction_type == "epsilon"
    assert model.family.native_size == 64
    unet, vae, text = model.unet.config, model.vae.config, model.text_encoder.config
    assert list(unet.block_out_channels) == [16, 32]
    assert list(unet.down_block_types) == ["DownBlock2D", "CrossAttnDownBlock2D"]
    assert unet.attention_head_dim == 2 and unet.norm_num_groups == 4
    assert unet.cross_attention_dim == 16 and text.hidden_size == 16
    assert text.num_hidden_layers == 1 and text.num_attention_heads == 2
    assert text.vocab_size == 49408 and text.max_position_embeddings == 77
    assert list(vae.block_out_channels) == [8, 8, 16, 16] and vae.latent_channels == 4
    latents = torch.load(work / "latents.pt", weights_only=False)
    assert vae.scaling_factor == pytest.approx(1 / float(latents["latents"].std()), rel=1e-5)
    # the exported UNet is the moving average of the last save, in fp16
    state = torch.load(work / "unet-state.pt", weights_only=False)["ema_unet"]
    loaded = model.unet.state_dict()
    assert all(torch.equal(state[key].half().float(), loaded[key]) for key in state)
    info = json.loads(model.metadata[META_TRAINING])
    assert info["unet_steps"] == 3 and info["seed"] == 5
    yaml = exported.with_suffix(".yaml").read_text()
    assert "model_channels: 16" in yaml and "context_dim: 16" in yaml
    assert "parameterization" not in yaml  # eps-prediction, as LDM's default


def test_resuming_with_other_settings_is_refused(trained: tuple[Path, Path]) -> None:
    work, _ = trained
    changed = dataclasses.replace(PLAN, vae=dataclasses.replace(PLAN.vae, lr=PLAN.vae.lr * 2))
    with pytest.raises(SystemExit, match="other settings"):
        run_training(changed, work, "vae", stream=None)


def test_a_tenth_of_captions_are_empty() -> None:
    specs = torch.tensor([[0, 0, 1, 4, 0]] * 50)
    captions = [c for step in range(40) for c in step_captions(0, step, specs, 0.1)]
    share = captions.count("") / len(captions)
    assert 0.07 < share < 0.13
    assert all(c == "" or ("red" in c and "circle" in c) for c in captions)


def test_position_captions_name_only_the_place_and_leave_the_others_as_they_were() -> None:
    specs = torch.tensor([[0, 0, 1, 0, 0]] * 50)  # a small red circle, top left
    plain = [step_captions(0, step, specs, 0.1) for step in range(20)]
    mixed = [step_captions(0, step, specs, 0.1, position_share=0.5) for step in range(20)]
    pairs = [(a, b) for x, y in zip(plain, mixed, strict=True) for a, b in zip(x, y, strict=True)]
    assert all((a == "") == (b == "") for a, b in pairs)  # the same unconditional share
    alone = [b for _, b in pairs if b and "circle" not in b]
    assert all(b in ("top left", "in the top left", "at the top left", "in the top left corner")
               for b in alone), set(alone)  # fmt: skip
    assert 0.35 < len(alone) / sum(1 for _, b in pairs if b) < 0.65
    # without a position share the captions are exactly those runs before it had (a resumed
    # run keeps its captions): one draw for the empty share, then the caption's own
    earlier = []
    for step in range(20):
        for index in range(len(specs)):
            rng = random.Random(f"caption:0:{step}:{index}")
            empty = rng.random() < 0.1
            earlier.append("" if empty else caption(ShapeSpec.from_indices([0, 0, 1, 0, 0]), rng))
    assert [c for captions in plain for c in captions] == earlier


def test_loss_log_drops_lines_past_the_resumed_step(tmp_path: Path) -> None:
    log = LossLog(tmp_path / "l.jsonl", "unet", stream=None)
    other = LossLog(tmp_path / "l.jsonl", "vae", stream=None)
    for step in (1, 2, 3):
        other.add(step, 3, float(step))
        log.add(step, 3, 10.0 + step)
    log.resume_at(1)
    assert read_losses(tmp_path / "l.jsonl", "unet") == [11.0]
    assert read_losses(tmp_path / "l.jsonl", "vae") == [1.0, 2.0, 3.0]


def test_command_line_maps_flags_onto_the_plan() -> None:
    spec = importlib.util.spec_from_file_location(
        "train_tool", ROOT / "tools/train_default_model.py"
    )
    assert spec is not None and spec.loader is not None
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    args = tool.parse_args(["--work-dir", "/tmp/w", "--vae-steps", "7", "--unet-batch", "4"])
    plan = tool.plan_from(args)
    assert (plan.vae.steps, plan.unet.batch_size, args.stage) == (7, 4, "all")
    assert plan.unet.steps == TrainingPlan().unet.steps


def test_pyramid_noise_hides_the_lowest_frequencies_at_unit_variance() -> None:
    shape = torch.Size([256, 4, 16, 16])
    plain = training_noise(shape, torch.Generator().manual_seed(0), 0.0)
    coarse = training_noise(shape, torch.Generator().manual_seed(0), 0.7)
    assert torch.equal(plain, torch.randn(shape, generator=torch.Generator().manual_seed(0)))
    assert torch.allclose(coarse.std(dim=(1, 2, 3)), torch.ones(256), atol=1e-4)
    # the per-channel mean (an image's overall colour): 1/16 for white noise, far more here
    assert plain.mean(dim=(2, 3)).std() < 0.08
    assert coarse.mean(dim=(2, 3)).std() > 0.2


def test_a_run_can_be_continued_with_more_steps_and_pyramid_noise(
    trained: tuple[Path, Path], tmp_path: Path
) -> None:
    import shutil

    work, _ = trained
    copy = tmp_path / "continued"
    shutil.copytree(work, copy)
    unet = dataclasses.replace(PLAN.unet, steps=5, pyramid_noise=0.7, pyramid_noise_from=3)
    exported = run_training(
        dataclasses.replace(PLAN, unet=unet), copy, "all", copy / "m.safetensors", stream=None
    )
    assert exported is not None
    info = json.loads(load_checkpoint(exported).metadata[META_TRAINING])
    assert (info["unet_steps"], info["pyramid_noise_from"]) == (5, 3)


def test_high_noise_weight_is_one_over_snr_capped_below_snr_one() -> None:
    snr = torch.tensor([100.0, 5.0, 1.0, 0.5, 0.1, 0.01])
    plain = loss_weights(snr, gamma=5.0)
    assert plain.tolist() == pytest.approx([0.05, 1, 1, 1, 1, 1])  # min-SNR-5: min(SNR, 5)/SNR
    weighted = loss_weights(snr, gamma=5.0, high_noise_weight=20.0)
    assert weighted.tolist() == pytest.approx([0.05, 1, 1, 2, 10, 20])
    assert loss_weights(snr, 5.0, high_noise_weight=1.0).tolist() == plain.tolist()


def test_the_high_timestep_share_draws_from_the_top_of_the_schedule() -> None:
    timesteps = sample_timesteps(400, 1000, torch.Generator().manual_seed(0), 0.25, 850)
    assert bool((timesteps[:100] >= 850).all()) and int(timesteps[100:].min()) < 850
    plain = sample_timesteps(400, 1000, torch.Generator().manual_seed(0))
    assert torch.equal(
        plain, torch.randint(0, 1000, (400,), generator=torch.Generator().manual_seed(0))
    )


def test_blind_samples_see_pure_noise_and_still_learn_their_image() -> None:
    """The blind share's x_t carries nothing of x0, and its eps target is the one that turns
    that x_t back into x0 (x0 = (x_t - sqrt(1 - abar) eps) / sqrt(abar)): an oracle that
    knows x0 has zero loss."""
    from types import SimpleNamespace

    from sdtui.core.discrete import alphas_cumprod_from_betas, scaled_linear_betas

    abar_all = alphas_cumprod_from_betas(scaled_linear_betas()).float()
    seen: list[torch.Tensor] = []

    def loss_for(x0: torch.Tensor) -> torch.Tensor:
        def oracle(noisy: torch.Tensor, timesteps: torch.Tensor, **_: object) -> SimpleNamespace:
            seen.append(noisy)
            abar = abar_all[timesteps].reshape(-1, 1, 1, 1)
            return SimpleNamespace(sample=(noisy - abar.sqrt() * x0) / (1 - abar).sqrt())

        def text(input_ids: torch.Tensor) -> SimpleNamespace:
            return SimpleNamespace(last_hidden_state=torch.zeros(len(input_ids), 1, 1))

        return diffusion_loss(
            oracle, text, x0, torch.zeros(8, 1), abar_all, 5.0, torch.Generator().manual_seed(1),
            high_noise_weight=50.0, high_t_share=0.5, high_t_from=900, high_t_blind=True,
        )  # fmt: skip

    first = torch.randn(8, 4, 8, 8, generator=torch.Generator().manual_seed(2))
    assert float(loss_for(first)) < 1e-9
    assert float(loss_for(first + 1)) < 1e-9
    blind_a, blind_b = seen[0][:4], seen[1][:4]
    assert torch.equal(blind_a, blind_b)  # nothing of the image in the blind share's input
    assert not torch.equal(seen[0][4:], seen[1][4:])
