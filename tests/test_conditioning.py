"""Prompt chunking and text-encoder conditioning against A1111's rules, on tiny random models."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from sdtui.engine.conditioning import (
    Conditioning,
    MultiConditioning,
    PromptEncoder,
    ScheduledConditioning,
    cond_at,
    emphasis_infotext,
    match_lengths,
    match_lengths_v0,
    multicond_at,
    stack_contexts,
)
from sdtui.engine.prompt_chunks import (
    empty_chunk,
    pad_tokens,
    prompt_token_count,
    target_token_count,
    tokenize_line,
)
from sdtui.models.architectures import build_component
from sdtui.models.tokenizer import BOS_ID, EOS_ID, get_tokenizer
from tests.tiny_models import TEXT_WIDTH, TEXT_WIDTH_2, randomize, tiny_configs

TOK = get_tokenizer()
A, B, COMMA = TOK.encode("a")[0], TOK.encode("b")[0], TOK.encoder[",</w>"]
CAT, DOG, FISH = TOK.encode("cat")[0], TOK.encode("dog")[0], TOK.encode("fish")[0]


def wrap(tokens: list[int], pad: int = EOS_ID) -> list[int]:
    return [BOS_ID, *tokens, *[pad] * (75 - len(tokens)), EOS_ID]


@pytest.fixture(scope="module")
def encoders() -> dict[str, dict[str, torch.nn.Module]]:
    """Only the text encoders of the tiny families (fast to build)."""
    out = {}
    for family in ("sd1", "sd2", "sdxl"):
        configs = tiny_configs(family)
        out[family] = {
            name: randomize(build_component(name, config), seed=7 + index)
            for index, (name, config) in enumerate(configs.items())
            if name.startswith("text_encoder")
        }
    return out


def text_model(module: torch.nn.Module) -> torch.nn.Module:
    return getattr(module, "text_model", module)


def make(encoders, family: str, **options) -> PromptEncoder:
    return PromptEncoder.from_components(family, **encoders[family], **options)


# -- chunking --------------------------------------------------------------------------------


def test_short_prompt_is_one_chunk_with_bos_padding_eos():
    line = tokenize_line("a cat")
    assert len(line.chunks) == 1
    assert line.chunks[0].tokens == wrap([A, CAT])
    assert line.chunks[0].multipliers == [1.0] * 77
    assert line.token_count == 2


def test_empty_prompt_is_bos_75_pads_eos():
    line = tokenize_line("")
    assert [c.tokens for c in line.chunks] == [[BOS_ID] + [EOS_ID] * 76]
    assert line.chunks[0].tokens == empty_chunk().tokens
    assert line.token_count == 0


def test_emphasis_weights_land_on_their_tokens():
    chunk = tokenize_line("a (cat:1.5) [dog] ((fish))").chunks[0]
    assert chunk.tokens[:6] == [BOS_ID, A, CAT, DOG, FISH, EOS_ID]
    assert chunk.multipliers[:6] == pytest.approx([1.0, 1.0, 1.5, 1 / 1.1, 1.21, 1.0])
    assert chunk.multipliers[6:] == [1.0] * 71
    ignored = tokenize_line("a (cat:1.5)", emphasis="Ignore").chunks[0]
    assert ignored.tokens[:3] == [BOS_ID, A, CAT]
    literal = tokenize_line("a (cat:1.5)", emphasis="None").chunks[0]
    assert TOK.encode("(")[0] in literal.tokens and set(literal.multipliers) == {1.0}
    with pytest.raises(ValueError, match="valid: Original"):
        tokenize_line("a", emphasis="Strong")


def test_75_token_boundary():
    exact = tokenize_line("a " * 75)
    assert len(exact.chunks) == 1 and exact.token_count == 75
    assert exact.chunks[0].tokens == [BOS_ID] + [A] * 75 + [EOS_ID]
    over = tokenize_line("a " * 76)
    assert [c.tokens for c in over.chunks] == [[BOS_ID] + [A] * 75 + [EOS_ID], wrap([A])]
    assert over.token_count == 76
    assert target_token_count(over.token_count) == 150
    assert target_token_count(0) == 75 and target_token_count(75) == 75


def test_comma_backtracking_moves_the_tail_after_the_last_comma():
    text = "a " * 70 + ", " + "b " * 10
    line = tokenize_line(text)
    assert [c.tokens for c in line.chunks] == [wrap([A] * 70 + [COMMA]), wrap([B] * 10)]
    assert line.token_count == 85
    no_backtrack = tokenize_line(text, comma_backtrack=0)
    assert [c.tokens for c in no_backtrack.chunks] == [
        [BOS_ID] + [A] * 70 + [COMMA] + [B] * 4 + [EOS_ID],
        wrap([B] * 6),
    ]
    far = tokenize_line("a " * 50 + ", " + "b " * 30)  # the comma is 25 tokens back: too far
    assert far.chunks[0].tokens == [BOS_ID] + [A] * 50 + [COMMA] + [B] * 24 + [EOS_ID]
    edge = tokenize_line("a " * 55 + ", " + "b " * 20)  # 75 - 55 = 20: just within reach
    assert [c.tokens for c in edge.chunks] == [wrap([A] * 55 + [COMMA]), wrap([B] * 20)]
    beyond = tokenize_line("a " * 54 + ", " + "b " * 21)  # 21 back: stays
    assert len(beyond.chunks[0].tokens) == 77 and beyond.chunks[0].tokens[-2] == B
    assert beyond.chunks[1].tokens[:3] == [BOS_ID, B, EOS_ID]
    weighted = tokenize_line("a " * 70 + ", (" + "b " * 10 + ":1.3)").chunks[1]
    assert weighted.multipliers[1:11] == pytest.approx([1.3] * 10)


def test_comma_as_76th_token_starts_the_next_chunk_without_backtracking():
    line = tokenize_line("a " * 75 + ", b")
    assert [c.tokens for c in line.chunks] == [[BOS_ID] + [A] * 75 + [EOS_ID], wrap([COMMA, B])]


def test_break_starts_a_new_chunk():
    line = tokenize_line("a cat BREAK dog")
    assert [c.tokens for c in line.chunks] == [wrap([A, CAT]), wrap([DOG])]
    assert line.token_count == 76
    trailing = tokenize_line("a BREAK")
    assert len(trailing.chunks) == 1 and trailing.token_count == 75
    leading = tokenize_line("BREAK a")
    assert [c.tokens for c in leading.chunks] == [empty_chunk().tokens, wrap([A])]
    literal = tokenize_line("a BREAK dog", emphasis="None")
    assert len(literal.chunks) == 1


def test_pad_tokens_zero_after_first_eos():
    assert pad_tokens(wrap([A]), 0) == [BOS_ID, A, EOS_ID] + [0] * 74
    full = [BOS_ID] + [A] * 75 + [EOS_ID]
    assert pad_tokens(full, 0) == full
    assert pad_tokens(wrap([A]), EOS_ID) == wrap([A])


def test_prompt_token_count_like_the_ui_counter():
    assert prompt_token_count("a cat") == (2, 75)
    assert prompt_token_count("a cat AND a dog fish") == (3, 75)
    assert prompt_token_count("[a:a a a a:5]", steps=10) == (4, 75)
    assert prompt_token_count("<lora:thing:0.8> a cat # note") == (2, 75)
    assert prompt_token_count("a " * 80) == (80, 150)
    assert prompt_token_count("a AND b c", is_positive=False) == (4, 75)


# -- encoders ------------------------------------------------------------------------------


def test_sd1_matches_last_hidden_state_and_clip_skip(encoders):
    te = encoders["sd1"]["text_encoder"]
    ids = torch.tensor([TOK.tokenize("a photo of a cat")])
    with torch.no_grad():
        out = te(input_ids=ids, output_hidden_states=True)
    cond = make(encoders, "sd1").encode(["a photo of a cat"])[0]
    assert cond.pooled is None and cond.context.shape == (77, TEXT_WIDTH)
    assert not cond.context.requires_grad
    assert torch.equal(cond.context, out.last_hidden_state[0])
    skip2 = make(encoders, "sd1", clip_skip=2).encode(["a photo of a cat"])[0]
    with torch.no_grad():
        expected = text_model(te).final_layer_norm(out.hidden_states[-2])[0]
    assert torch.equal(skip2.context, expected)
    assert not torch.allclose(skip2.context, cond.context)
    with pytest.raises(ValueError, match="clip skip 9"):
        make(encoders, "sd1", clip_skip=9).encode(["a"])


def test_emphasis_modes(encoders):
    plain = make(encoders, "sd1").encode(["a cat dog"])[0].context
    weights = torch.ones(77)
    weights[2] = 1.5
    no_norm = make(encoders, "sd1", emphasis="No norm").encode(["a (cat:1.5) dog"])[0].context
    assert torch.allclose(no_norm, plain * weights[:, None])
    assert torch.allclose(no_norm[2], plain[2] * 1.5) and torch.equal(no_norm[3], plain[3])
    original = make(encoders, "sd1").encode(["a (cat:1.5) dog"])[0].context
    assert torch.allclose(original.mean(), plain.mean(), atol=1e-6)
    scaled = plain * weights[:, None]
    assert torch.allclose(original, scaled * (plain.mean() / scaled.mean()), atol=1e-6)
    assert not torch.allclose(original, no_norm)
    ignore = make(encoders, "sd1", emphasis="Ignore").encode(["a (cat:1.5) dog"])[0].context
    assert torch.equal(ignore, plain)
    assert emphasis_infotext(["a (cat)"], "Ignore") == {"Emphasis": "Ignore"}
    assert emphasis_infotext(["a (cat)"], "Original") == {}


def test_sd2_penultimate_with_final_norm_and_zero_padding(encoders):
    te = encoders["sd2"]["text_encoder"]
    ids = torch.tensor([[BOS_ID, A, CAT, EOS_ID] + [0] * 73])
    with torch.no_grad():
        states = te(input_ids=ids, output_hidden_states=True).hidden_states
        expected = text_model(te).final_layer_norm(states[-2])[0]
    cond = make(encoders, "sd2").encode(["a cat"])[0]
    assert torch.equal(cond.context, expected)
    assert torch.equal(make(encoders, "sd2", clip_skip=2).encode(["a cat"])[0].context, expected)


def _xl_oracle(encoders, tokens: list[int]):
    te, te2 = encoders["sdxl"]["text_encoder"], encoders["sdxl"]["text_encoder_2"]
    with torch.no_grad():
        out_l = te(input_ids=torch.tensor([wrap(tokens)]), output_hidden_states=True)
        ids_g = torch.tensor([pad_tokens(wrap(tokens), 0)])
        out_g = te2(input_ids=ids_g, output_hidden_states=True)
    return out_l, out_g


def test_sdxl_concatenates_penultimate_states_and_pools_the_first_chunk(encoders):
    encoder = make(encoders, "sdxl")
    cond = encoder.encode(["a cat"])[0]
    out_l, out_g = _xl_oracle(encoders, [A, CAT])
    assert cond.context.shape == (77, TEXT_WIDTH + TEXT_WIDTH_2)
    assert torch.equal(cond.context[:, :TEXT_WIDTH], out_l.hidden_states[-2][0])
    assert torch.equal(cond.context[:, TEXT_WIDTH:], out_g.hidden_states[-2][0])
    assert cond.pooled.shape == (TEXT_WIDTH_2,)
    assert torch.equal(cond.pooled, out_g.text_embeds[0])
    long = encoder.encode(["a cat BREAK dog"])[0]
    assert long.context.shape == (154, TEXT_WIDTH + TEXT_WIDTH_2)
    assert torch.equal(long.pooled, out_g.text_embeds[0])
    skip = make(encoders, "sdxl", sdxl_clip_l_skip=True).encode(["a cat"])[0]
    assert torch.equal(skip.context[:, :TEXT_WIDTH], out_l.hidden_states[-1][0])
    assert torch.equal(skip.context[:, TEXT_WIDTH:], cond.context[:, TEXT_WIDTH:])


def test_sdxl_empty_negative_is_zero_and_refiner_has_only_big_g(encoders):
    encoder = make(encoders, "sdxl")
    negative = encoder.encode([""], is_negative=True)[0]
    assert not negative.context.any() and not negative.pooled.any()
    assert encoder.encode([""])[0].context.abs().sum() > 0
    assert encoder.encode(["a"], is_negative=True)[0].context.abs().sum() > 0
    refiner = PromptEncoder.from_components(
        "sdxl-refiner", text_encoder_2=encoders["sdxl"]["text_encoder_2"]
    )
    cond = refiner.encode(["a cat"])[0]
    _, out_g = _xl_oracle(encoders, [A, CAT])
    assert torch.equal(cond.context, out_g.hidden_states[-2][0])
    assert torch.equal(cond.pooled, out_g.text_embeds[0])
    with pytest.raises(ValueError, match="needs text_encoder_2"):
        PromptEncoder.from_components("sdxl", text_encoder=encoders["sdxl"]["text_encoder"])
    with pytest.raises(ValueError, match="valid: sd1"):
        PromptEncoder.from_components("sd3")


def test_chunks_concatenate_and_batches_pad_with_empty_chunks(encoders):
    encoder = make(encoders, "sd1")
    long, short = encoder.encode(["a " * 76, "b"])
    assert long.context.shape == short.context.shape == (154, TEXT_WIDTH)
    alone_a = encoder.encode(["a"])[0].context
    assert torch.equal(long.context[77:], alone_a)
    assert torch.equal(short.context[:77], encoder.encode(["b"])[0].context)
    assert torch.equal(short.context[77:], encoder.empty().context)


def test_match_lengths_pads_with_empty_prompt_chunks(encoders):
    encoder = make(encoders, "sd1")
    empty = encoder.empty().context
    cond = encoder.encode(["a cat BREAK dog"])[0].context[None]
    uncond = encoder.encode(["fish"])[0].context[None]
    padded_cond, padded_uncond = match_lengths(cond, uncond, empty)
    assert torch.equal(padded_cond, cond)
    assert padded_uncond.shape == (1, 154, TEXT_WIDTH)
    assert torch.equal(padded_uncond[0, 77:], empty) and torch.equal(padded_uncond[:, :77], uncond)
    swapped_uncond, swapped_cond = match_lengths(uncond, cond, empty)
    assert torch.equal(swapped_uncond, padded_uncond) and torch.equal(swapped_cond, cond)
    _, v0 = match_lengths_v0(cond, uncond)
    assert torch.equal(v0[0, 77:], uncond[0, -1:].expand(77, -1))
    _, cut = match_lengths_v0(uncond, cond)
    assert torch.equal(cut, cond[:, :77])


class RowCounter:
    """Counts the token rows a text encoder is run on."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.rows = 0
        self.handle = module.register_forward_pre_hook(self.hook, with_kwargs=True)

    def hook(self, module, args, kwargs):
        self.rows += kwargs["input_ids"].shape[0]


def test_schedule_switches_after_the_step_and_encodes_texts_once(encoders):
    encoder = make(encoders, "sd1")
    counter = RowCounter(encoders["sd1"]["text_encoder"])
    try:
        first, second = encoder.schedule(["a [cat:dog:5]", "a [cat:dog:5]"], steps=10)
        assert counter.rows == 2 and first is second
        assert [end for end, _ in first.entries] == [5, 10]
        cat, dog = encoder.encode(["a cat", "a dog"])
        assert torch.allclose(first.at(0).context, cat.context)
        assert first.at(5) is first.entries[0][1] and first.at(6) is first.entries[1][1]
        assert torch.allclose(first.at(6).context, dog.context)
        counter.rows = 0
        alternating = encoder.schedule(["[cat|dog]"], steps=10)[0]
        assert len(alternating.entries) == 10 and counter.rows == 2
        counter.rows = 0
        multi = encoder.multicond(["a cat AND a dog :0.5", "a cat"], steps=10)
        assert counter.rows == 2
        assert [w for w, _ in multi[0].parts] == [1.0, 0.5] and len(multi[1].parts) == 1
        assert multi[0].parts[0][1] is multi[1].parts[0][1]
    finally:
        counter.handle.remove()


def test_multicond_batch_stacks_parts_repeating_the_last_row(encoders):
    encoder = make(encoders, "sd1")
    multi = encoder.multicond(["a cat AND a dog BREAK fish :0.5", "a cat"], steps=4)
    weights, batch = multicond_at(multi, step=0)
    assert weights == [[(0, 1.0), (1, 0.5)], [(2, 1.0)]]
    assert batch.context.shape == (3, 154, TEXT_WIDTH) and batch.pooled is None
    assert torch.equal(batch.context[0, 77:], batch.context[0, 76:77].expand(77, -1))
    uncond = cond_at(encoder.schedule(["", ""], steps=4, is_negative=True), step=3)
    assert uncond.context.shape == (2, 77, TEXT_WIDTH)
    assert stack_contexts([torch.zeros(2, 3), torch.ones(1, 3)])[1].sum() == 6


def test_scheduled_and_multi_conditioning_at():
    conds = [Conditioning(torch.full((77, 4), float(i))) for i in range(3)]
    scheduled = ScheduledConditioning([(3, conds[0]), (6, conds[1]), (10, conds[2])])
    assert [scheduled.at(s) for s in (0, 3, 4, 6, 7, 10)] == [conds[i] for i in (0, 0, 1, 1, 2, 2)]
    assert scheduled.at(11) is conds[0]  # A1111 falls back to the first entry
    multi = MultiConditioning([(1.0, scheduled), (0.5, scheduled)])
    assert multi.at(4) == [(1.0, conds[1]), (0.5, conds[1])]


@dataclass
class FakeEmbedding:
    name: str
    vectors: int
    data: torch.Tensor

    def vectors_for(self, encoder: str, width: int) -> torch.Tensor:
        assert encoder == "text_encoder" and width == self.data.shape[1]
        return self.data


class CatLookup:
    def __init__(self, embedding: FakeEmbedding) -> None:
        self.embedding = embedding

    def find_at(self, tokens, position):
        return (self.embedding, 1) if tokens[position] == CAT else None


def test_textual_inversion_hook_places_vectors(encoders):
    te = encoders["sd1"]["text_encoder"]
    table = text_model(te).embeddings.token_embedding.weight.detach()
    embedding = FakeEmbedding("cat", 2, table[[DOG, FISH]].clone())
    line = tokenize_line("a (cat:1.2) b", embeddings=CatLookup(embedding))
    chunk = line.chunks[0]
    assert chunk.tokens[:6] == [BOS_ID, A, 0, 0, B, EOS_ID]
    assert chunk.multipliers[2:4] == [1.2, 1.2] and chunk.fixes[0].offset == 1
    encoder = make(encoders, "sd1", embeddings=CatLookup(embedding), emphasis="Ignore")
    with_ti = encoder.encode(["a cat b"])[0].context
    expected = make(encoders, "sd1").encode(["a dog fish b"])[0].context
    # position 0 in the embedding table is "!": only the placed rows differ from it
    assert torch.allclose(with_ti, expected, atol=1e-6)


def test_from_model_reads_family_and_encoders(encoders):
    from types import SimpleNamespace

    from sdtui.models.families import FAMILIES

    model = SimpleNamespace(
        family=FAMILIES["sdxl"],
        text_encoder=encoders["sdxl"]["text_encoder"],
        text_encoder_2=encoders["sdxl"]["text_encoder_2"],
    )
    encoder = PromptEncoder.from_model(model, emphasis="No norm")
    assert [e.key for e in encoder.encoders] == ["text_encoder", "text_encoder_2"]
    assert encoder.zero_empty_negative and encoder.emphasis == "No norm"
    assert encoder.encode(["a"])[0].context.shape == (77, TEXT_WIDTH + TEXT_WIDTH_2)
