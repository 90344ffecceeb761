"""Embeddings through the text encoders and txt2img, checked against an independent oracle: a
hand-written CLIP text transformer fed token embeddings with the vectors placed by hand."""

from __future__ import annotations

import hashlib
import math
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import torch

from sdtui.engine.conditioning import PromptEncoder
from sdtui.engine.prompt_chunks import pad_tokens
from sdtui.models.architectures import build_component
from sdtui.models.embedding_db import EmbeddingDatabase, EmbeddingSet
from sdtui.models.embeddings import Embedding
from sdtui.models.tokenizer import BOS_ID, EOS_ID, get_tokenizer
from tests.tiny_models import TEXT_WIDTH, TEXT_WIDTH_2, randomize, tiny_configs

TOK = get_tokenizer()


@cache
def text_encoders(family: str) -> dict[str, torch.nn.Module]:
    configs = tiny_configs(family)
    return {
        name: randomize(build_component(name, config), seed=11 + index)
        for index, (name, config) in enumerate(configs.items())
        if name.startswith("text_encoder")
    }


def activation(name: str, x: torch.Tensor) -> torch.Tensor:
    if name == "quick_gelu":
        return x * torch.sigmoid(1.702 * x)
    assert name == "gelu"
    return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))


def clip_hidden_states(module: torch.nn.Module, embeds: torch.Tensor) -> list[torch.Tensor]:
    """CLIP's text transformer written out: token embeddings [77, W] (vectors placed by the
    caller) -> the hidden states after the position embedding and after each layer."""
    model = getattr(module, "text_model", module)
    config = module.config
    heads, length = config.num_attention_heads, embeds.shape[0]
    h = embeds + model.embeddings.position_embedding.weight[:length]
    states = [h]
    causal = torch.full((length, length), float("-inf")).triu(1)
    for layer in model.encoder.layers:
        attn = layer.self_attn
        x = layer.layer_norm1(h)

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(length, heads, -1).transpose(0, 1)

        q, k, v = split(attn.q_proj(x)), split(attn.k_proj(x)), split(attn.v_proj(x))
        weights = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(q.shape[-1]) + causal, dim=-1)
        h = h + attn.out_proj((weights @ v).transpose(0, 1).reshape(length, -1))
        x = layer.layer_norm2(h)
        h = h + layer.mlp.fc2(activation(config.hidden_act, layer.mlp.fc1(x)))
        states.append(h)
    return states


def placed(
    module: torch.nn.Module, tokens: list[int], where: dict[int, torch.Tensor]
) -> torch.Tensor:
    """Token embeddings of `tokens` with rows replaced by hand: {position: vector}."""
    table = getattr(module, "text_model", module).embeddings.token_embedding.weight
    embeds = table[torch.tensor(tokens)].clone()
    for position, vector in where.items():
        embeds[position] = vector
    return embeds


def chunk_tokens(words: list[int | None], pad: int) -> list[int]:
    """[BOS, words (None = an embedding slot), EOS, pad...] of 77."""
    body = [0 if w is None else w for w in words]
    return pad_tokens([BOS_ID, *body, *[EOS_ID] * (76 - len(body))], pad)


A, B = TOK.encode("a")[0], TOK.encode("b")[0]


@torch.no_grad()
@pytest.mark.parametrize("family", ["sd1", "sd2"])
def test_single_encoder_conditioning_equals_hand_placed_vectors(family: str) -> None:
    module = text_encoders(family)["text_encoder"]
    vec = torch.randn(3, TEXT_WIDTH, generator=torch.Generator().manual_seed(3))
    lookup = EmbeddingSet([Embedding("mystyle", {"*": vec})])
    encoder = PromptEncoder.from_components(
        family, module, emphasis="Ignore", embeddings=lookup, clip_skip=1
    )
    context = encoder.encode(["a mystyle b"])[0].context

    pad = EOS_ID if family == "sd1" else 0
    tokens = chunk_tokens([A, None, None, None, B], pad)
    states = clip_hidden_states(module, placed(module, tokens, {2: vec[0], 3: vec[1], 4: vec[2]}))
    layer = -1 if family == "sd1" else -2  # SD2 reads the penultimate layer
    expected = getattr(module, "text_model", module).final_layer_norm(states[layer])
    assert torch.allclose(context, expected, atol=1e-5)
    plain = PromptEncoder.from_components(family, module, emphasis="Ignore")
    assert not torch.allclose(plain.encode(["a mystyle b"])[0].context, expected, atol=1e-2)


@torch.no_grad()
def test_sdxl_vectors_go_to_their_encoders() -> None:
    modules = text_encoders("sdxl")
    clip_l = torch.randn(2, TEXT_WIDTH, generator=torch.Generator().manual_seed(4))
    clip_g = torch.randn(2, TEXT_WIDTH_2, generator=torch.Generator().manual_seed(5))
    lookup = EmbeddingSet([Embedding("xl", {"clip_l": clip_l, "clip_g": clip_g})])
    encoder = PromptEncoder.from_components("sdxl", **modules, embeddings=lookup)
    cond = encoder.encode(["a xl b"])[0]

    parts = []
    for key, vec, pad in (("text_encoder", clip_l, EOS_ID), ("text_encoder_2", clip_g, 0)):
        tokens = chunk_tokens([A, None, None, B], pad)
        states = clip_hidden_states(
            modules[key], placed(modules[key], tokens, {2: vec[0], 3: vec[1]})
        )
        parts.append(states[-2])  # SDXL: penultimate layer, no final norm
    assert torch.allclose(cond.context, torch.cat(parts, dim=-1), atol=1e-5)
    big_g = modules["text_encoder_2"]
    final = big_g.text_model.final_layer_norm(states[-1])
    pooled = big_g.text_projection(final[tokens.index(EOS_ID)])
    assert torch.allclose(cond.pooled, pooled, atol=1e-5)


# -- txt2img end to end ----------------------------------------------------------------------


def sha12(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def test_txt2img_embedding_changes_the_image_and_lands_in_infotext(tmp_path: Path) -> None:
    from sdtui.engine.options import EngineOptions
    from sdtui.engine.txt2img import txt2img
    from sdtui.models.loader import load_checkpoint
    from sdtui.params.schema import GenerationParams
    from sdtui.plugins import PluginHost
    from tests.test_embeddings import write_a1111_pt, write_safetensors
    from tests.tiny_models import write_tiny_checkpoint

    model = load_checkpoint(write_tiny_checkpoint(tmp_path / "tiny.safetensors", "sd1"))
    folder = tmp_path / "embeddings"
    style = write_a1111_pt(folder / "mystyle.pt", torch.randn(2, TEXT_WIDTH) * 2)
    bad = write_safetensors(folder / "badhands.safetensors", {"emb_params": torch.randn(1, 32)})
    write_a1111_pt(folder / "unused.pt", torch.randn(1, TEXT_WIDTH))
    embeddings = EmbeddingDatabase(folder).for_model(model)
    host = PluginHost(load_entry_points=False)
    params = GenerationParams(
        prompt="a photo, mystyle",
        negative_prompt="badhands",
        width=64,
        height=64,
        steps=1,
        seed=3,
        variation_seed=0,
        rng="CPU",
    )

    def run(**options) -> list:
        engine = EngineOptions(samplers=host.samplers, schedules=host.schedules, **options)
        return txt2img(model, params, engine)

    (with_ti,) = run(embeddings=embeddings)
    (without,) = run()
    assert not np.array_equal(np.asarray(with_ti.image), np.asarray(without.image))
    # the prompt's embeddings, then the negative prompt's; "unused" is not listed
    expected = f'TI hashes: "mystyle: {sha12(style)}, badhands: {sha12(bad)}"'
    assert with_ti.infotext.endswith(f", {expected}")
    assert "TI hashes" not in without.infotext


def test_generate_cli_reads_the_embeddings_folder(data_dirs, capsys) -> None:
    from sdtui.cli import main
    from sdtui.params.image_metadata import read_image_metadata
    from tests.test_embeddings import write_a1111_pt
    from tests.tiny_models import write_tiny_checkpoint

    write_tiny_checkpoint(data_dirs.checkpoints / "tiny.safetensors", "sd1")
    style = write_a1111_pt(data_dirs.embeddings / "styles" / "MyStyle.pt", torch.randn(1, 32))
    argv = ["generate", "--prompt", "a mystyle cat", "--steps", "1", "--width", "64"]
    argv += ["--height", "64", "--device", "cpu", "--data-dir", str(data_dirs.root)]
    assert main(argv) == 0
    (path,) = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert f'TI hashes: "MyStyle: {sha12(style)}"' in read_image_metadata(path).infotext
