"""What both training stages share: resumable state files, per-step randomness, the loss log,
the learning-rate schedule and weight averaging.

Randomness comes from `step_generator(seed, stage, step)`, a fresh generator per step, and
data from the step number, so a run resumed from a save repeats exactly what an uninterrupted
run does. A state file is written to a temporary name and renamed over the old one, so a run
stopped at any moment leaves the previous save intact.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

import torch


def save_state(path: Path, state: dict[str, Any]) -> None:
    """torch.save `state` atomically (temporary file, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as handle:
        torch.save({**state, "rng": rng_states()}, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def load_state(path: Path) -> dict[str, Any] | None:
    """A state saved by `save_state` (its RNG states restored), or None when there is none."""
    if not path.is_file():
        return None
    state = torch.load(path, map_location="cpu", weights_only=False)
    restore_rng_states(state.get("rng", {}))
    return state


def resume_fingerprint(options: Any, *free: str) -> dict[str, Any]:
    """A stage's options (a dataclass) that a resumed run must share with its save: all but
    the step count and the save period (a run may be continued with more steps) and `free`."""
    values = asdict(options)
    for name in ("steps", "save_every", *free):
        values.pop(name)
    return values


def save_stage(
    path: Path,
    config: dict[str, Any],
    step: int,
    modules: Mapping[str, torch.nn.Module],
    optimizer: torch.optim.Optimizer,
) -> None:
    """Save a stage at `step`: its settings, each module's weights under its name, the
    optimiser and the RNG states."""
    weights = {name: module.state_dict() for name, module in modules.items()}
    save_state(
        path, {"config": config, "step": step, **weights, "optimizer": optimizer.state_dict()}
    )


def resume_stage(
    path: Path,
    config: dict[str, Any],
    modules: Mapping[str, torch.nn.Module],
    optimizer: torch.optim.Optimizer,
    log: LossLog,
    total: int,
) -> int:
    """Load a stage's last save into `modules` and `optimizer`, refusing one made with other
    settings, and drop the log lines written after it; the step to go on from (0: no save)."""
    state = load_state(path)
    if state is None:
        return 0
    same_config(state["config"], config, path)
    for name, module in modules.items():
        module.load_state_dict(state[name])
    optimizer.load_state_dict(state["optimizer"])
    step = int(state["step"])
    log.resume_at(step)
    if step < total:
        log.say(f"resuming from step {step} ({path})")
    return step


def rng_states() -> dict[str, Any]:
    return {"torch": torch.get_rng_state(), "python": random.getstate()}


def restore_rng_states(states: dict[str, Any]) -> None:
    if "torch" in states:
        torch.set_rng_state(states["torch"])
    if "python" in states:
        random.setstate(states["python"])


def step_generator(seed: int, stage: str, step: int) -> torch.Generator:
    """A torch generator for one step of one stage, independent of every other step."""
    digest = hashlib.sha256(f"{seed}:{stage}:{step}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") >> 1)


def learning_rate(step: int, total: int, peak: float, warmup: int, floor: float = 0.1) -> float:
    """Linear warm-up to `peak`, then a cosine down to `floor * peak` at `total`."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


def set_learning_rate(optimizer: torch.optim.Optimizer, value: float) -> None:
    """Every parameter group's rate: `value` times the group's "lr_scale" (default 1)."""
    for group in optimizer.param_groups:
        group["lr"] = value * group.get("lr_scale", 1.0)


@torch.no_grad()
def update_ema(average: torch.nn.Module, model: torch.nn.Module, step: int, decay: float) -> None:
    """Exponential moving average of the weights (decay warms up over the first steps)."""
    rate = min(decay, (1 + step) / (10 + step))
    for kept, current in zip(average.parameters(), model.parameters(), strict=True):
        kept.lerp_(current.detach(), 1 - rate)


def same_config(saved: dict[str, Any], expected: dict[str, Any], path: Path) -> None:
    if saved != expected:
        raise SystemExit(
            f"{path} was saved with other settings:\n  saved:    {json.dumps(saved)}\n"
            f"  expected: {json.dumps(expected)}\nuse another --work-dir or the same settings"
        )


@dataclass
class LossLog:
    """Per-step losses as JSON lines in `path`; a summary line on `stream` every `every`."""

    path: Path
    stage: str
    every: int = 10
    stream: TextIO | None = sys.stdout

    def __post_init__(self) -> None:
        self._pending: list[float] = []
        self._started = time.perf_counter()

    def resume_at(self, step: int) -> None:
        """Drop lines of this stage past `step` (written after the last save)."""
        if not self.path.is_file():
            return
        kept = []
        for line in self.path.read_text().splitlines():
            record = json.loads(line)
            if record.get("stage") != self.stage or record.get("step", 0) <= step:
                kept.append(line)
        self.path.write_text("".join(line + "\n" for line in kept))

    def add(self, step: int, total: int, loss: float, **extra: float) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        record = {"stage": self.stage, "step": step, "loss": loss, **extra}
        with open(self.path, "a") as handle:
            handle.write(json.dumps(record) + "\n")
        self._pending.append(loss)
        if self.stream is not None and (len(self._pending) >= self.every or step == total):
            seconds = (time.perf_counter() - self._started) / len(self._pending)
            mean = sum(self._pending) / len(self._pending)
            details = "".join(f" {key} {value:.3g}" for key, value in extra.items())
            print(
                f"[{self.stage}] step {step}/{total} loss {mean:.5f}{details} "
                f"({seconds:.2f} s/step)",
                file=self.stream,
                flush=True,
            )
            self._pending, self._started = [], time.perf_counter()

    def say(self, text: str) -> None:
        if self.stream is not None:
            print(f"[{self.stage}] {text}", file=self.stream, flush=True)


def read_losses(path: Path, stage: str) -> list[float]:
    """The losses of a stage in a log, in step order."""
    if not path.is_file():
        return []
    records = [json.loads(line) for line in path.read_text().splitlines()]
    return [r["loss"] for r in sorted(records, key=lambda r: r["step"]) if r["stage"] == stage]
