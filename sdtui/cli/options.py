"""Options every subcommand accepts (A1111's flag names where A1111 has one)."""

from __future__ import annotations

import argparse

from sdtui.paths import DataDirs

_PATH_OPTIONS = (
    (
        "--data-dir",
        "data directory in A1111's layout (default: $SDTUI_DATA_DIR or "
        "~/.local/share/sdtui); an A1111 install works as it is",
    ),
    ("--ckpt-dir", "checkpoint folder (default: <data-dir>/models/Stable-diffusion)"),
    ("--vae-dir", "VAE folder (default: <data-dir>/models/VAE)"),
    ("--lora-dir", "LoRA folder (default: <data-dir>/models/Lora)"),
    ("--embeddings-dir", "embeddings folder (default: <data-dir>/embeddings)"),
)


def add_common_options(parser: argparse.ArgumentParser, *, suppress_defaults: bool) -> None:
    """Add the shared options. Subparsers suppress their defaults so a value given before
    the subcommand (`sdtui --data-dir X plugins`) is not overwritten by the subparser."""

    def default(value: object) -> object:
        return argparse.SUPPRESS if suppress_defaults else value

    group = parser.add_argument_group("common options")
    for flag, text in _PATH_OPTIONS:
        group.add_argument(flag, metavar="DIR", default=default(None), help=text)
    group.add_argument(
        "--device", default=default(None), help="cuda, cuda:N, mps or cpu (default: best)"
    )
    group.add_argument(
        "--precision",
        default=default(None),
        help="auto, fp32, fp16 or bf16 (default: auto = fp16 on GPU, fp32 on CPU)",
    )


def data_dirs_from(args: argparse.Namespace) -> DataDirs:
    return DataDirs.resolve(
        getattr(args, "data_dir", None),
        ckpt_dir=getattr(args, "ckpt_dir", None),
        vae_dir=getattr(args, "vae_dir", None),
        lora_dir=getattr(args, "lora_dir", None),
        embeddings_dir=getattr(args, "embeddings_dir", None),
    )
