"""Train sdtui's embedded default model (a small SD1 that draws coloured shapes) from scratch.

    .venv/bin/python tools/train_default_model.py --work-dir ~/train-default \
        --export config/default_model/sdtui-shapes.safetensors

What it does (sdtui.training): generates captioned images of one shape (circle, square,
triangle) in a named colour on a named background at a 3x3 grid position, small or large
(sdtui.training.shapes_dataset; some colour x shape pairs are held out); trains SD1's
AutoencoderKL at small widths on 64 px crops; encodes the UNet's training images once;
teaches the CLIP text encoder to name each caption's attributes (sdtui.training.text_stage,
a stand-in for CLIP's own pretraining); trains the UNet on top of it (the encoder at a tenth
of the UNet's learning rate) with SD's noise schedule and eps-prediction, 10% empty captions
for classifier-free guidance and a moving average of the weights; exports one fp16
single-file checkpoint in the LDM layout with its `.yaml` (sdtui.models.ldm_export).

Stages: `--stage vae`, `--stage text`, `--stage unet` (needs the VAE and, with
--text-steps > 0, the text stage finished), `--stage all` (default: all three, then the
export), `--stage export` (export the last saves as they are). Every stage saves
its state (weights, optimiser, step, RNG) into --work-dir every 50 steps, atomically; run the
same command again after an interruption and it resumes from the last save, repeating what an
uninterrupted run would have done bit for bit. Keep --work-dir outside the repository (the
saves are ~100 MB); only the exported file belongs in it. Losses go to stdout and to
<work-dir>/losses.jsonl.

Duration with the defaults on 2 idle CPU cores: about half an hour (VAE 2000 steps of 8
crops at ~0.14 s, encoding 8000 latents ~3 min, text encoder 600 steps of 64 captions at
~0.11 s, UNet 4000 steps of 32 at ~0.3 s; other processes on the same cores stretch this a
lot). Step counts may be raised for a run that
has finished or stopped (it resumes and continues; the learning-rate schedule then follows
the new total). Evaluate the result with bench/default_model_eval.py.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sdtui.training.recipe import TrainingPlan, run_training

DEFAULT_WORK_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / (
    "sdtui/train-default-model"
)
DEFAULT_EXPORT_NAME = "export/sdtui-shapes.safetensors"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    plan = TrainingPlan()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=DEFAULT_WORK_DIR,
        help=f"saves, latent cache, loss log; outside the repository (default {DEFAULT_WORK_DIR})",
    )
    parser.add_argument("--stage", choices=("vae", "text", "unet", "all", "export"), default="all")
    parser.add_argument(
        "--export",
        type=Path,
        help=f"checkpoint written once training is done (default <work-dir>/{DEFAULT_EXPORT_NAME})",
    )
    parser.add_argument("--seed", type=int, default=plan.seed)
    parser.add_argument("--vae-steps", type=int, default=plan.vae.steps)
    parser.add_argument("--vae-batch", type=int, default=plan.vae.batch_size)
    parser.add_argument(
        "--text-steps",
        type=int,
        default=plan.text.steps,
        help="steps of the text stage (attribute heads on the text encoder; 0: none)",
    )
    parser.add_argument(
        "--text-lr-scale",
        type=float,
        default=plan.unet.text_lr_scale,
        help="text encoder learning rate in the UNet stage, relative to the UNet's (0: frozen)",
    )
    parser.add_argument("--unet-steps", type=int, default=plan.unet.steps)
    parser.add_argument("--unet-batch", type=int, default=plan.unet.batch_size)
    parser.add_argument(
        "--pyramid-noise",
        type=float,
        default=plan.unet.pyramid_noise,
        help="multi-resolution noise discount for the UNet stage (0: plain noise)",
    )
    parser.add_argument(
        "--pyramid-noise-from",
        type=int,
        default=plan.unet.pyramid_noise_from,
        help="UNet step from which the multi-resolution noise is used",
    )
    parser.add_argument(
        "--high-noise-weight",
        type=float,
        default=plan.unet.high_noise_weight,
        help="cap of the 1/SNR weight on high-noise samples (1: off; see diffusion_loss)",
    )
    parser.add_argument(
        "--high-t-share",
        type=float,
        default=plan.unet.high_t_share,
        help="share of each UNet batch with timesteps from --high-t-from up (0: uniform)",
    )
    parser.add_argument("--high-t-from", type=int, default=plan.unet.high_t_from)
    parser.add_argument(
        "--high-t-blind",
        action="store_true",
        help="the high-timestep share sees pure noise (a sampler's first step), not its image",
    )
    parser.add_argument(
        "--position-caption-share",
        type=float,
        default=plan.unet.position_caption_share,
        help="share of the captions that name only the position",
    )
    parser.add_argument("--unet-lr", type=float, default=plan.unet.lr, help="peak learning rate")
    parser.add_argument(
        "--latents", type=int, default=plan.latents, help="training images encoded for the UNet"
    )
    parser.add_argument("--threads", type=int, default=plan.threads, help="torch CPU threads")
    parser.add_argument(
        "--stop-after", type=int, help="end each stage at this step (as an interruption would)"
    )
    return parser.parse_args(argv)


def plan_from(args: argparse.Namespace) -> TrainingPlan:
    plan = TrainingPlan()
    return replace(
        plan,
        seed=args.seed,
        vae=replace(plan.vae, steps=args.vae_steps, batch_size=args.vae_batch),
        text=replace(plan.text, steps=args.text_steps),
        unet=replace(
            plan.unet,
            steps=args.unet_steps,
            batch_size=args.unet_batch,
            pyramid_noise=args.pyramid_noise,
            pyramid_noise_from=args.pyramid_noise_from,
            high_noise_weight=args.high_noise_weight,
            high_t_share=args.high_t_share,
            high_t_from=args.high_t_from,
            high_t_blind=args.high_t_blind or plan.unet.high_t_blind,
            position_caption_share=args.position_caption_share,
            lr=args.unet_lr,
            text_lr_scale=args.text_lr_scale,
        ),
        latents=args.latents,
        threads=args.threads,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    export = args.export
    if export is None and args.stage in ("all", "export"):
        export = args.work_dir / DEFAULT_EXPORT_NAME
    written = run_training(
        plan_from(args), args.work_dir, args.stage, export, stop_after=args.stop_after
    )
    if written is not None:
        print(f"wrote {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
