"""The trainer's text stage: attribute heads teach the text encoder what captions say; the
UNet stage starts from that encoder (frozen or not); runs resume bit for bit."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import pytest
import torch

from sdtui.models.loader import load_checkpoint
from sdtui.training.default_model import TINY_SIZE
from sdtui.training.recipe import LOSS_LOG, TrainingPlan, run_training
from sdtui.training.shapes_dataset import ShapeSpec
from sdtui.training.text_stage import (
    AttributeHeads,
    TextOptions,
    attribute_loss,
    load_trained_text_encoder,
    text_batch,
    train_text_encoder,
)
from sdtui.training.train_state import LossLog, read_losses, set_learning_rate
from sdtui.training.unet_stage import UNetOptions, token_ids
from sdtui.training.vae_stage import VAEOptions

ROOT = Path(__file__).resolve().parent.parent
PLAN = TrainingPlan(
    seed=3,
    size=TINY_SIZE,
    vae=VAEOptions(steps=2, batch_size=2, crop=32, warmup=1, save_every=10),
    text=TextOptions(steps=3, batch_size=4, warmup=1, save_every=10),
    unet=UNetOptions(steps=2, batch_size=2, warmup=1, save_every=10, text_lr_scale=0.0),
    latents=4,
    threads=1,
)


def test_text_batches_label_each_caption_with_its_spec() -> None:
    captions, labels = text_batch(0, 7, 32)
    same_captions, same_labels = text_batch(0, 7, 32)
    assert (captions, labels.tolist()) == (same_captions, same_labels.tolist())
    assert captions != text_batch(0, 8, 32)[0]
    for text, indices in zip(captions, labels.tolist(), strict=True):
        spec = ShapeSpec.from_indices(indices)
        words = text.replace(",", " ").replace(":", " ").split()
        assert {spec.shape, spec.colour, spec.background} <= set(words), text
        if spec.position != "centre":
            assert set(spec.position.split()) <= set(words), text
        assert spec.pair not in {("red", "triangle"), ("green", "square")}  # held out


def test_the_heads_learn_every_attribute_from_the_token_mean(tmp_path: Path) -> None:
    options = TextOptions(steps=150, batch_size=32, lr=3e-3, warmup=10, save_every=1000)
    log = LossLog(tmp_path / LOSS_LOG, "text", stream=None)
    size = dataclasses.replace(TINY_SIZE, text_width=32, text_heads=2)
    encoder, done = train_text_encoder(tmp_path, size, 0, options, log)
    assert done
    losses = read_losses(tmp_path / LOSS_LOG, "text")
    assert len(losses) == 150 and sum(losses[-10:]) < 0.4 * sum(losses[:10])
    # fresh captions (another seed): the saved heads read the position far above chance (1/9)
    state = torch.load(tmp_path / "text-state.pt", weights_only=False)
    heads = AttributeHeads(size.text_width)
    heads.load_state_dict(state["heads"])
    captions, labels = text_batch(99, 0, 200)
    with torch.no_grad():
        _, accuracy = attribute_loss(encoder, heads, token_ids(captions), labels)
    shape, _, _, position, size_accuracy = accuracy
    assert position > 0.5 and shape > 0.9 and size_accuracy > 0.9, accuracy


def test_a_run_with_a_text_stage_resumes_and_exports_the_frozen_encoder(tmp_path: Path) -> None:
    whole = tmp_path / "whole"
    exported = run_training(PLAN, whole, "all", whole / "m.safetensors", stream=None)
    assert exported is not None
    stopped = tmp_path / "stopped"
    assert run_training(PLAN, stopped, "all", None, stream=None, stop_after=2) is None
    run_training(PLAN, stopped, "vae", stream=None)
    assert run_training(PLAN, stopped, "all", None, stream=None, stop_after=2) is None
    assert len(read_losses(stopped / LOSS_LOG, "text")) == 2  # stopped inside the text stage
    again = run_training(PLAN, stopped, "all", stopped / "m.safetensors", stream=None)
    assert again is not None
    for stage in ("vae", "text", "unet"):
        expected = read_losses(whole / LOSS_LOG, stage)
        assert len(expected) in (2, 3) and read_losses(stopped / LOSS_LOG, stage) == expected
    # frozen in the UNet stage: the exported text encoder is the text stage's, in fp16
    pretrained, step = load_trained_text_encoder(whole, PLAN.size, PLAN.seed)
    assert step == 3
    loaded = load_checkpoint(exported).text_encoder.state_dict()
    for key, value in pretrained.state_dict().items():
        assert torch.equal(value.half().float(), loaded[key]), key


def test_the_unet_stage_needs_a_finished_text_stage(tmp_path: Path) -> None:
    run_training(PLAN, tmp_path, "vae", stream=None)
    with pytest.raises(SystemExit, match="no text encoder"):
        run_training(PLAN, tmp_path, "unet", stream=None)
    run_training(PLAN, tmp_path, "text", stream=None, stop_after=1)
    with pytest.raises(SystemExit, match="text stage stopped at step 1/3"):
        run_training(PLAN, tmp_path, "unet", stream=None)


def test_learning_rates_follow_each_groups_scale() -> None:
    a, b = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([{"params": [a]}, {"params": [b], "lr_scale": 0.25}], lr=1.0)
    set_learning_rate(optimizer, 0.4)
    assert [group["lr"] for group in optimizer.param_groups] == [0.4, 0.1]


def test_command_line_sets_the_text_stage() -> None:
    spec = importlib.util.spec_from_file_location(
        "train_tool", ROOT / "tools/train_default_model.py"
    )
    assert spec is not None and spec.loader is not None
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    args = tool.parse_args(["--stage", "text", "--text-steps", "40", "--text-lr-scale", "0"])
    plan = tool.plan_from(args)
    assert (args.stage, plan.text.steps, plan.unet.text_lr_scale) == ("text", 40, 0.0)
    default = tool.plan_from(tool.parse_args([]))
    assert (default.text.steps, default.unet.text_lr_scale) == (600, 0.1)


def test_a_frozen_encoder_without_a_text_stage_is_refused(tmp_path: Path) -> None:
    plan = dataclasses.replace(PLAN, text=TextOptions(steps=0))
    run_training(plan, tmp_path, "vae", stream=None)
    with pytest.raises(SystemExit, match="frozen text encoder"):
        run_training(plan, tmp_path, "unet", stream=None)
