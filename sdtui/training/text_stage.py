"""Stage 2: the text encoder alone, taught to name what a caption describes.

    text_encoder, done = train_text_encoder(work_dir, size, seed, TextOptions(), log)

Stable Diffusion's UNet learns on top of a text encoder that CLIP's contrastive training has
already taught to tell captions apart. Trained from scratch together with the UNet, a small
text encoder learns the words that change many pixels (colours) and not the ones that move a
few (the grid position): two position words among 77 tokens hardly move cross-attention that
still attends uniformly, so the UNet cannot learn to use them, so the text encoder gets no
reason to make them stand out. This stage breaks that loop the way CLIP's pretraining does
for SD, with the attributes the generator knows: linear heads read the shape, colour,
background, position and size from the mean of the encoder's last hidden state over all 77
tokens (exactly what uniformly attending cross-attention sees) and the encoder is trained
with their cross-entropy. The heads are thrown away; the UNet stage starts from the encoder.

Captions are drawn like the UNet stage's (training split, every phrasing); each step's specs
and phrasing come from the step number, so a resumed run repeats an uninterrupted one.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from sdtui.training.default_model import ModelSize, build_text_encoder
from sdtui.training.shapes_dataset import COLOURS, POSITIONS, SHAPES, SIZES, caption, random_spec
from sdtui.training.train_state import (
    LossLog,
    learning_rate,
    load_state,
    resume_fingerprint,
    resume_stage,
    save_stage,
    set_learning_rate,
)
from sdtui.training.unet_stage import token_ids

STATE_FILE = "text-state.pt"
# classes per ShapeSpec index (shape, colour, background, position, size)
ATTRIBUTE_CLASSES = (len(SHAPES), len(COLOURS), len(COLOURS), len(POSITIONS), len(SIZES))
ATTRIBUTES = ("shape", "colour", "background", "position", "size")


@dataclass(frozen=True)
class TextOptions:
    steps: int = 600  # 0: no text stage, the UNet stage starts from a fresh encoder
    batch_size: int = 64
    lr: float = 1e-3
    warmup: int = 50
    save_every: int = 100

    def fingerprint(self) -> dict[str, Any]:
        return resume_fingerprint(self)


class AttributeHeads(torch.nn.Module):
    """One linear classifier per attribute over the token-mean of the last hidden state."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.heads = torch.nn.ModuleList(torch.nn.Linear(width, n) for n in ATTRIBUTE_CLASSES)

    def forward(self, hidden: torch.Tensor) -> list[torch.Tensor]:
        pooled = hidden.mean(dim=1)
        return [head(pooled) for head in self.heads]


def text_batch(seed: int, step: int, count: int) -> tuple[list[str], torch.Tensor]:
    """Captions of training-split specs and their [count, 5] attribute indices."""
    rng = random.Random(f"text-stage:{seed}:{step}")
    specs = [random_spec(rng, "train") for _ in range(count)]
    captions = [caption(spec, rng) for spec in specs]
    return captions, torch.tensor([spec.to_indices() for spec in specs])


def attribute_loss(
    text_encoder: Any, heads: AttributeHeads, ids: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, list[float]]:
    """Summed cross-entropy of the five heads, and each head's accuracy."""
    hidden = text_encoder(input_ids=ids).last_hidden_state
    logits = heads(hidden)
    loss = sum(
        torch.nn.functional.cross_entropy(scores, labels[:, index])
        for index, scores in enumerate(logits)
    )
    accuracy = [
        float((scores.argmax(-1) == labels[:, index]).float().mean())
        for index, scores in enumerate(logits)
    ]
    return loss, accuracy  # type: ignore[return-value]


def train_text_encoder(
    work_dir: Path,
    size: ModelSize,
    seed: int,
    options: TextOptions,
    log: LossLog,
    stop_after: int | None = None,
) -> tuple[torch.nn.Module, bool]:
    """Train (or resume) up to `options.steps` (or `stop_after`); returns the encoder and
    whether the stage is complete."""
    path = work_dir / STATE_FILE
    text_encoder = build_text_encoder(size, seed)
    torch.manual_seed(seed * 1000 + 7)
    heads = AttributeHeads(size.text_width)
    parameters = [*text_encoder.parameters(), *heads.parameters()]
    optimizer = torch.optim.AdamW(parameters, lr=options.lr, betas=(0.9, 0.99), weight_decay=0.01)
    config = {"size": size.as_dict(), "seed": seed, "options": options.fingerprint()}
    modules = {"text_encoder": text_encoder, "heads": heads}
    step = resume_stage(path, config, modules, optimizer, log, options.steps)
    last = options.steps if stop_after is None else min(options.steps, stop_after)
    text_encoder.train()

    while step < last:
        lr = learning_rate(step, options.steps, options.lr, options.warmup)
        set_learning_rate(optimizer, lr)
        captions, labels = text_batch(seed, step, options.batch_size)
        loss, accuracy = attribute_loss(text_encoder, heads, token_ids(captions), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        step += 1
        named = {f"acc_{name}": value for name, value in zip(ATTRIBUTES, accuracy, strict=True)}
        log.add(step, options.steps, loss.item(), lr=lr, **named)
        if step % options.save_every == 0 or step == last:
            save_stage(path, config, step, modules, optimizer)
    return text_encoder.eval(), step >= options.steps


def load_trained_text_encoder(
    work_dir: Path, size: ModelSize, seed: int
) -> tuple[torch.nn.Module, int]:
    """The text encoder of the text stage's last save and its step."""
    state = load_state(work_dir / STATE_FILE)
    if state is None:
        raise SystemExit(f"no text encoder in {work_dir}: run the text stage first")
    text_encoder = build_text_encoder(size, seed)
    text_encoder.load_state_dict(state["text_encoder"])
    return text_encoder.eval(), int(state["step"])
