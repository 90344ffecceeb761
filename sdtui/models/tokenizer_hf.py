"""Write Hugging Face tokenizer files for the offline CLIP vocabulary.

``transformers.CLIPTokenizer.from_pretrained(directory)`` (and diffusers' ``from_single_file``
with a local ``config=`` folder, which loads ``tokenizer/`` and ``tokenizer_2/`` subfolders)
needs ``vocab.json`` and ``merges.txt``; ``tokenizer_config.json`` and
``special_tokens_map.json`` name the special tokens. The only difference between the SD
families is the pad token: ``<|endoftext|>`` for SD1.x / SDXL ``tokenizer``, ``!`` (id 0) for
SD2.x / SDXL ``tokenizer_2``; choose it with :class:`~sdtui.models.tokenizer.ClipPad`.
"""

from __future__ import annotations

import json
from pathlib import Path

from sdtui.models.tokenizer import (
    BOS_TOKEN,
    DEFAULT_CONTEXT_LENGTH,
    EOS_TOKEN,
    ClipPad,
    ClipTokenizer,
    get_tokenizer,
)

HF_TOKENIZER_FILES = (
    "vocab.json",
    "merges.txt",
    "tokenizer_config.json",
    "special_tokens_map.json",
)
MERGES_HEADER = "#version: 0.2"


def special_tokens_map(pad: ClipPad) -> dict[str, str]:
    """The special tokens of a CLIP tokenizer whose pad token follows ``pad``."""
    return {
        "bos_token": BOS_TOKEN,
        "eos_token": EOS_TOKEN,
        "unk_token": EOS_TOKEN,
        "pad_token": pad.pad_token,
    }


def tokenizer_config(pad: ClipPad, model_max_length: int) -> dict[str, object]:
    """Contents of ``tokenizer_config.json``, as the SD repositories' tokenizer folders have."""
    return {
        "tokenizer_class": "CLIPTokenizer",
        "model_max_length": model_max_length,
        "do_lower_case": True,
        "errors": "replace",
        "add_prefix_space": False,
        **special_tokens_map(pad),
    }


def write_hf_tokenizer_files(
    directory: str | Path,
    pad: ClipPad = ClipPad.EOS,
    model_max_length: int = DEFAULT_CONTEXT_LENGTH,
    tokenizer: ClipTokenizer | None = None,
) -> list[Path]:
    """Write the four tokenizer files into ``directory`` (created if missing); return paths.

    ``pad=ClipPad.EOS`` for SD1.x and SDXL's ``tokenizer``; ``ClipPad.ZERO`` for SD2.x and
    SDXL's ``tokenizer_2``.
    """
    if not isinstance(pad, ClipPad):
        valid = ", ".join(f"ClipPad.{p.name}" for p in ClipPad)
        raise TypeError(f"pad must be one of {valid}, got {pad!r}")
    tok = tokenizer if tokenizer is not None else get_tokenizer()
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    contents = {
        "vocab.json": json.dumps(tok.encoder, ensure_ascii=False),
        "merges.txt": "\n".join([MERGES_HEADER, *(f"{a} {b}" for a, b in tok.merges)]) + "\n",
        "tokenizer_config.json": json.dumps(tokenizer_config(pad, model_max_length), indent=2),
        "special_tokens_map.json": json.dumps(special_tokens_map(pad), indent=2),
    }
    paths = []
    for name in HF_TOKENIZER_FILES:
        path = out / name
        path.write_text(contents[name], encoding="utf-8")
        paths.append(path)
    return paths
