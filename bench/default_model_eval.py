"""How well the default model follows prompts: attributes measured from generated pixels.

    .venv/bin/python bench/default_model_eval.py CHECKPOINT [--seeds 3] [--cfg 1,7]
        [--json out.json] [--grid grid.png]

For every colour x shape pair of the shapes dataset (held-in pairs and the held-out ones the
model never saw), `--seeds` prompts are built with a background, grid position and size that
rotate through all values, each in the dataset's canonical phrasing ("a small red circle on a
blue background, top left"), and generated through sdtui's own txt2img engine at the
defaults (DPM++ 2M, Automatic schedule, 20 steps, the model's native size), once per CFG
scale. `sdtui.training.measure` reads back from the pixels: the background (border colour),
the shape's colour (dominant non-background colour), its grid cell (centroid), its kind and
size. Printed: accuracy per attribute, held-in vs held-out, per CFG scale, and the goals
(held-in at CFG 7: colour and background >= 90%, position >= 80%; guidance must help).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PIL import Image

from sdtui.training.measure import ATTRIBUTES, measure
from sdtui.training.shapes_dataset import (
    COLOURS,
    HELD_OUT_PAIRS,
    POSITIONS,
    SIZES,
    ShapeSpec,
    canonical_caption,
    colour_shape_pairs,
)

GOALS = {"colour": 0.9, "background": 0.9, "position": 0.8}


def eval_specs(seeds: int) -> list[tuple[ShapeSpec, int]]:
    """(spec, generation seed) for every colour x shape pair, `seeds` each; backgrounds,
    positions and sizes rotate so each is used about equally often."""
    positions, colours = list(POSITIONS), list(COLOURS)
    cases = []
    for number, (colour, shape) in enumerate(colour_shape_pairs("all")):
        backgrounds = [name for name in colours if name != colour]
        for k in range(seeds):
            turn = number * seeds + k
            spec = ShapeSpec(
                shape=shape,
                colour=colour,
                background=backgrounds[(number + 3 * k) % len(backgrounds)],
                position=positions[turn % len(positions)],
                size=SIZES[(number + k) % 2],
            )
            cases.append((spec, 1000 + turn))
    return cases


def generate(
    model: object, host: object, prompt: str, seed: int, cfg: float, size: int
) -> Image.Image:
    from sdtui.engine.txt2img import EngineOptions, txt2img
    from sdtui.params.schema import GenerationParams
    from sdtui.services.requests import prepare_txt2img

    params = GenerationParams(prompt=prompt, seed=seed, cfg_scale=cfg, width=size, height=size)
    params = prepare_txt2img(params, host)
    (result,) = txt2img(model, params, EngineOptions(host.samplers, host.schedules))
    return result.image


def summarise(rows: list[dict]) -> dict[str, dict[str, dict[str, float]]]:
    """{cfg: {"held_in" / "held_out": {attribute: accuracy, "n": count}}}."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for row in rows:
        split = "held_out" if row["held_out"] else "held_in"
        groups[(str(row["cfg"]), split)].append(row)
    summary: dict[str, dict[str, dict[str, float]]] = defaultdict(dict)
    for (cfg, split), members in sorted(groups.items()):
        scores = {
            name: sum(r["match"][name] for r in members) / len(members) for name in ATTRIBUTES
        }
        summary[cfg][split] = {**scores, "n": len(members)}
    return dict(summary)


def report(summary: dict[str, dict[str, dict[str, float]]]) -> list[str]:
    lines = [f"{'cfg':>5} {'split':<9} {'n':>4} " + " ".join(f"{a:>10}" for a in ATTRIBUTES)]
    for cfg, splits in summary.items():
        for split, scores in splits.items():
            values = " ".join(f"{scores[a]:>10.0%}" for a in ATTRIBUTES)
            lines.append(f"{cfg:>5} {split:<9} {int(scores['n']):>4} {values}")
    return lines


def goals(summary: dict[str, dict[str, dict[str, float]]], cfgs: list[float]) -> list[str]:
    high, low = str(max(cfgs)), str(min(cfgs))
    lines = []
    held_in = summary.get(high, {}).get("held_in")
    if held_in:
        for name, goal in GOALS.items():
            verdict = "ok" if held_in[name] >= goal else "MISSED"
            lines.append(
                f"goal held-in {name} at CFG {high} >= {goal:.0%}: {held_in[name]:.0%} {verdict}"
            )
    if high != low and held_in and low in summary:
        mean = lambda s: sum(s[a] for a in GOALS) / len(GOALS)  # noqa: E731
        better = mean(held_in) > mean(summary[low]["held_in"])
        lines.append(f"guidance helps (CFG {high} beats CFG {low}): {'ok' if better else 'MISSED'}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--seeds", type=int, default=3, help="prompts per colour x shape pair")
    parser.add_argument("--cfg", default="1,7", help="CFG scales, comma-separated")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, help="write every measurement and the summary")
    parser.add_argument("--grid", type=Path, help="save the images at the highest CFG as a grid")
    parser.add_argument("--verbose", action="store_true", help="print every measurement")
    args = parser.parse_args(argv)

    import torch

    from sdtui.models.loader import load_checkpoint
    from sdtui.plugins import PluginHost

    torch.set_num_threads(args.threads)
    cfgs = [float(value) for value in args.cfg.split(",")]
    model = load_checkpoint(args.checkpoint)
    host = PluginHost(load_entry_points=False)
    size = model.family.native_size or 512
    rows, images = [], []
    started = time.perf_counter()
    for cfg in cfgs:
        for spec, seed in eval_specs(args.seeds):
            prompt = canonical_caption(spec)
            image = generate(model, host, prompt, seed, cfg, size)
            found = measure(image)
            rows.append(
                {
                    "cfg": cfg,
                    "prompt": prompt,
                    "seed": seed,
                    "held_out": spec.pair in HELD_OUT_PAIRS,
                    "match": found.matches(spec),
                    "measured": {a: getattr(found, a) for a in ATTRIBUTES},
                }
            )
            if cfg == max(cfgs):
                images.append(image)
            if args.verbose:
                misses = [name for name, ok in rows[-1]["match"].items() if not ok]
                print(f"cfg {cfg:g} seed {seed} {prompt!r}: {found} misses {misses}", flush=True)
    seconds = time.perf_counter() - started
    summary = summarise(rows)
    print(f"{args.checkpoint}: {len(rows)} images at {size}x{size} in {seconds:.0f} s")
    print("\n".join(report(summary) + goals(summary, cfgs)))
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "rows": rows}, indent=1))
    if args.grid and images:
        columns = args.seeds * 3
        rows_count = -(-len(images) // columns)
        grid = Image.new("RGB", (columns * size, rows_count * size))
        for index, image in enumerate(images):
            grid.paste(image, ((index % columns) * size, (index // columns) * size))
        grid.save(args.grid)
    return 0


if __name__ == "__main__":
    sys.exit(main())
