"""Prompts -> text-encoder conditioning, as A1111 computes it.

    encoder = PromptEncoder.from_model(model, clip_skip=2, emphasis="Original")
    conds = encoder.multicond(prompts, steps)        # one MultiConditioning per batch item
    unconds = encoder.schedule(negatives, steps, is_negative=True)
    weights, cond = multicond_at(conds, step)        # CondBatch: context [N, T, W], pooled
    uncond = cond_at(unconds, step)

Per encoder (A1111's `sd_hijack_clip` / sgm conditioner):

* SD1, CLIP-L: clip skip 1 -> last hidden state after the final norm; k > 1 ->
  hidden_states[-k], then the final norm.
* SD2, OpenCLIP-H: hidden_states[-2], then the final norm; clip skip is ignored.
* SDXL: CLIP-L hidden_states[-2] (with `sdxl_clip_l_skip`: hidden_states[-clip_skip]) and
  bigG hidden_states[-2], no final norm, concatenated along features; pooled = bigG's
  `text_embeds` of the first chunk. The refiner has only bigG. An SDXL negative prompt whose
  texts are all empty gives zeros (A1111's `force_zero_embeddings`).

A batch of texts is encoded together: texts with fewer chunks get empty-prompt chunks;
emphasis is applied per chunk and encoder over the whole batch ("Original" restores the mean
of the batch's chunk tensor). Each distinct prompt is encoded once per call, and each
distinct token row goes through the transformer once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from sdtui.core.prompt_parser import prompt_schedule, split_and
from sdtui.engine.prompt_chunks import (
    DEFAULT_COMMA_BACKTRACK,
    EmbeddingLookup,
    PromptChunk,
    TokenizedLine,
    check_emphasis,
    empty_chunk,
    pad_tokens,
    tokenize_line,
)
from sdtui.models.tokenizer import EOS_ID, ClipTokenizer, get_tokenizer

ARCHITECTURES = ("sd1", "sd2", "sdxl", "sdxl-refiner")


@dataclass
class Conditioning:
    """One text's conditioning: context [77*n, width], pooled [projection] (SDXL) or None."""

    context: torch.Tensor
    pooled: torch.Tensor | None = None


@dataclass
class CondBatch:
    """Conditionings stacked for the UNet: context [N, T, W], pooled [N, P] or None."""

    context: torch.Tensor
    pooled: torch.Tensor | None = None


@dataclass
class ScheduledConditioning:
    """[(last step, conditioning)] of one prompt over the sampling steps."""

    entries: list[tuple[int, Conditioning]]

    def at(self, step: int) -> Conditioning:
        """The conditioning at 0-based sampling step `step` (A1111: the first entry whose
        end step is >= step; past every end, A1111 falls back to the first entry)."""
        for end, cond in self.entries:
            if step <= end:
                return cond
        return self.entries[0][1]


@dataclass
class MultiConditioning:
    """Composable diffusion: one prompt's AND parts, [(weight, ScheduledConditioning)]."""

    parts: list[tuple[float, ScheduledConditioning]] = field(default_factory=list)

    def at(self, step: int) -> list[tuple[float, Conditioning]]:
        return [(weight, scheduled.at(step)) for weight, scheduled in self.parts]


# -- the text encoders -----------------------------------------------------------------------


@dataclass
class ClipEncoder:
    """One text encoder and how A1111 reads it: which hidden state, final norm, pooled."""

    key: str  # "text_encoder" or "text_encoder_2": the name embeddings look vectors up by
    module: Any  # transformers CLIPTextModel / CLIPTextModelWithProjection
    pad_id: int
    layer: int  # index into hidden_states (-1: last layer)
    final_norm: bool
    pooled: bool = False

    @property
    def text_model(self) -> Any:
        """The part holding embeddings and final_layer_norm (transformers 5's CLIPTextModel
        is that part itself; CLIPTextModelWithProjection wraps it as `text_model`)."""
        return getattr(self.module, "text_model", self.module)

    @torch.no_grad()
    def __call__(self, chunks: Sequence[PromptChunk]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """[B, 77, width] hidden states (and [B, projection] pooled) of a batch of chunks."""
        param = next(self.module.parameters())
        ids = torch.tensor([pad_tokens(c.tokens, self.pad_id) for c in chunks], device=param.device)
        with _embedding_fixes(self, chunks):
            out = self.module(input_ids=ids, output_hidden_states=True)
        states = out.hidden_states
        if not -len(states) <= self.layer < len(states):
            raise ValueError(
                f"{self.key}: clip skip {-self.layer} is past the first layer; the encoder has "
                f"{len(states) - 1} layers (valid clip skip: 1..{len(states) - 1})"
            )
        z = states[self.layer]
        if self.final_norm:
            z = self.text_model.final_layer_norm(z)
        return z, (out.text_embeds if self.pooled else None)


class _embedding_fixes:
    """Textual-inversion hook: while active, embedding vectors replace the token embeddings
    at each chunk's fixes (position 1 + offset, after BOS)."""

    def __init__(self, encoder: ClipEncoder, chunks: Sequence[PromptChunk]) -> None:
        self.encoder, self.chunks, self.handle = encoder, chunks, None

    def __enter__(self) -> None:
        if any(chunk.fixes for chunk in self.chunks):
            layer = self.encoder.text_model.embeddings.token_embedding
            self.handle = layer.register_forward_hook(self._apply)

    def __exit__(self, *exc: object) -> None:
        if self.handle is not None:
            self.handle.remove()

    def _apply(self, module: Any, inputs: Any, output: torch.Tensor) -> torch.Tensor:
        output = output.clone()
        width = output.shape[-1]
        for row, chunk in enumerate(self.chunks):
            for fix in chunk.fixes:
                vectors = fix.embedding.vectors_for(self.encoder.key, width).to(output)
                count = min(output.shape[1] - fix.offset - 1, vectors.shape[0])
                output[row, fix.offset + 1 : fix.offset + 1 + count] = vectors[:count]
        return output


def build_encoders(
    architecture: str,
    text_encoder: Any = None,
    text_encoder_2: Any = None,
    *,
    clip_skip: int = 1,
    sdxl_clip_l_skip: bool = False,
) -> list[ClipEncoder]:
    """The encoders of an architecture ("sd1", "sd2", "sdxl", "sdxl-refiner")."""
    if clip_skip < 1:
        raise ValueError(f"clip skip must be 1 or more, got {clip_skip}")
    needed = {"sd1": (1,), "sd2": (1,), "sdxl": (1, 2), "sdxl-refiner": (2,)}.get(architecture)
    if needed is None:
        valid = ", ".join(ARCHITECTURES)
        raise ValueError(f"unknown architecture {architecture!r}; valid: {valid}")
    given = {1: text_encoder, 2: text_encoder_2}
    for number in needed:
        if given[number] is None:
            name = "text_encoder" if number == 1 else "text_encoder_2"
            raise ValueError(f"{architecture} needs {name}, which the model does not have")
    if architecture == "sd1":
        return [ClipEncoder("text_encoder", text_encoder, EOS_ID, -clip_skip, True)]
    if architecture == "sd2":
        return [ClipEncoder("text_encoder", text_encoder, 0, -2, True)]
    big_g = ClipEncoder("text_encoder_2", text_encoder_2, 0, -2, False, pooled=True)
    if architecture == "sdxl-refiner":
        return [big_g]
    clip_l_layer = -clip_skip if sdxl_clip_l_skip else -2
    return [ClipEncoder("text_encoder", text_encoder, EOS_ID, clip_l_layer, False), big_g]


def apply_emphasis(z: torch.Tensor, multipliers: torch.Tensor, emphasis: str) -> torch.Tensor:
    """Weights on a batch chunk z [B, 77, W]; multipliers [B, 77] (float32, as A1111's;
    the result is cast back to z's dtype, as the UNet's input would be)."""
    if emphasis in ("Ignore", "None"):
        return z
    dtype, original_mean = z.dtype, z.mean()
    z = z * multipliers.reshape(*multipliers.shape, 1).expand(z.shape)
    if emphasis == "Original":
        z = z * (original_mean / z.mean())
    return z.to(dtype)


# -- prompts -> conditioning -----------------------------------------------------------------


class PromptEncoder:
    """Encodes prompts with a model's text encoders (A1111's `get_learned_conditioning`)."""

    def __init__(
        self,
        encoders: list[ClipEncoder],
        *,
        emphasis: str = "Original",
        comma_backtrack: int = DEFAULT_COMMA_BACKTRACK,
        embeddings: EmbeddingLookup | None = None,
        zero_empty_negative: bool = False,
        tokenizer: ClipTokenizer | None = None,
    ) -> None:
        self.encoders = encoders
        self.emphasis = check_emphasis(emphasis)
        self.comma_backtrack = comma_backtrack
        self.embeddings = embeddings
        self.zero_empty_negative = zero_empty_negative
        self.tokenizer = tokenizer or get_tokenizer()
        self._empty: Conditioning | None = None

    @classmethod
    def from_components(
        cls,
        architecture: str,
        text_encoder: Any = None,
        text_encoder_2: Any = None,
        *,
        clip_skip: int = 1,
        sdxl_clip_l_skip: bool = False,
        **options: Any,
    ) -> PromptEncoder:
        encoders = build_encoders(
            architecture,
            text_encoder,
            text_encoder_2,
            clip_skip=clip_skip,
            sdxl_clip_l_skip=sdxl_clip_l_skip,
        )
        return cls(encoders, zero_empty_negative=architecture.startswith("sdxl"), **options)

    @classmethod
    def from_model(cls, model: Any, **options: Any) -> PromptEncoder:
        """From a loaded model (`sdtui.models.loader.LoadedModel`)."""
        return cls.from_components(
            model.family.architecture, model.text_encoder, model.text_encoder_2, **options
        )

    def tokenize(self, text: str) -> TokenizedLine:
        return tokenize_line(
            text,
            self.tokenizer,
            emphasis=self.emphasis,
            comma_backtrack=self.comma_backtrack,
            embeddings=self.embeddings,
        )

    @torch.no_grad()
    def encode(self, texts: Sequence[str], *, is_negative: bool = False) -> list[Conditioning]:
        """Encode a batch of texts together; one Conditioning per text, in order."""
        if not texts:
            raise ValueError("encode needs at least one text")
        lines = {text: self.tokenize(text) for text in dict.fromkeys(texts)}
        count = max(len(line.chunks) for line in lines.values())
        contexts, pooled = [], None
        for index in range(count):
            batch = [_chunk_at(lines[text], index) for text in texts]
            context, chunk_pooled = self._encode_chunks(batch)
            contexts.append(context)
            if index == 0:
                pooled = chunk_pooled
        context = torch.cat(contexts, dim=1)
        if self.zero_empty_negative and is_negative and all(text == "" for text in texts):
            context = torch.zeros_like(context)
            pooled = torch.zeros_like(pooled) if pooled is not None else None
        return [
            Conditioning(context[row], pooled[row] if pooled is not None else None)
            for row in range(len(texts))
        ]

    def _encode_chunks(self, batch: list[PromptChunk]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One chunk per text -> context [B, 77, sum of widths], pooled; each distinct row
        goes through the transformers once, emphasis is applied over the whole batch."""
        keys = [_row_key(chunk) for chunk in batch]
        unique = list(dict.fromkeys(keys))
        order = torch.tensor([unique.index(key) for key in keys])
        first = {key: chunk for key, chunk in zip(keys, batch, strict=True)}
        distinct = [first[key] for key in unique]
        parts, pooled = [], None
        for encoder in self.encoders:
            z, encoder_pooled = encoder(distinct)
            z = z[order.to(z.device)]
            weights = torch.tensor([c.multipliers for c in batch], device=z.device)
            parts.append(apply_emphasis(z, weights, self.emphasis))
            if encoder_pooled is not None:
                pooled = encoder_pooled[order.to(z.device)]
        return torch.cat(parts, dim=-1), pooled

    def empty(self) -> Conditioning:
        """The empty prompt's conditioning (for padding cond/uncond), computed once."""
        if self._empty is None:
            self._empty = self.encode([""])[0]
        return self._empty

    def schedule(
        self,
        prompts: Sequence[str],
        steps: int,
        *,
        hires_steps: int | None = None,
        old_scheduling: bool = False,
        is_negative: bool = False,
    ) -> list[ScheduledConditioning]:
        """One ScheduledConditioning per prompt; each distinct prompt is encoded once, its
        schedule's texts as one batch (as A1111 does)."""
        cache: dict[str, ScheduledConditioning] = {}
        result = []
        for prompt in prompts:
            if prompt not in cache:
                schedule = prompt_schedule(prompt, steps, hires_steps, old_scheduling)
                conds = self.encode([text for _, text in schedule], is_negative=is_negative)
                entries = [(end, cond) for (end, _), cond in zip(schedule, conds, strict=True)]
                cache[prompt] = ScheduledConditioning(entries)
            result.append(cache[prompt])
        return result

    def multicond(
        self,
        prompts: Sequence[str],
        steps: int,
        *,
        hires_steps: int | None = None,
        old_scheduling: bool = False,
    ) -> list[MultiConditioning]:
        """Positive prompts split at AND; each distinct sub-prompt is encoded once."""
        split = [split_and(prompt) for prompt in prompts]
        flat = list(dict.fromkeys(text for parts in split for text, _ in parts))
        scheduled = self.schedule(
            flat, steps, hires_steps=hires_steps, old_scheduling=old_scheduling
        )
        by_text = dict(zip(flat, scheduled, strict=True))
        return [MultiConditioning([(w, by_text[text]) for text, w in parts]) for parts in split]


def _chunk_at(line: TokenizedLine, index: int) -> PromptChunk:
    return line.chunks[index] if index < len(line.chunks) else empty_chunk()


def _row_key(chunk: PromptChunk) -> tuple:
    fixes = tuple((fix.offset, id(fix.embedding)) for fix in chunk.fixes)
    return tuple(chunk.tokens), fixes


# -- batches for the denoiser ----------------------------------------------------------------


def stack_contexts(contexts: Sequence[torch.Tensor]) -> torch.Tensor:
    """[N, T, W] from [T_i, W]; shorter ones repeat their last row (A1111 `stack_conds`)."""
    length = max(context.shape[0] for context in contexts)
    padded = [
        torch.cat([c, c[-1:].expand(length - c.shape[0], -1)]) if c.shape[0] < length else c
        for c in contexts
    ]
    return torch.stack(padded)


def stack_conditionings(conds: Sequence[Conditioning]) -> CondBatch:
    context = stack_contexts([cond.context for cond in conds])
    pooled = [cond.pooled for cond in conds]
    if any(p is None for p in pooled):
        return CondBatch(context)
    return CondBatch(context, torch.stack(pooled))  # type: ignore[arg-type]


def multicond_at(
    batch: Sequence[MultiConditioning], step: int
) -> tuple[list[list[tuple[int, float]]], CondBatch]:
    """A1111's `reconstruct_multicond_batch`: per batch item [(row in the stack, weight)]
    and all AND parts' conditionings at `step` stacked."""
    rows: list[Conditioning] = []
    weights: list[list[tuple[int, float]]] = []
    for multi in batch:
        item = []
        for weight, cond in multi.at(step):
            item.append((len(rows), weight))
            rows.append(cond)
        weights.append(item)
    return weights, stack_conditionings(rows)


def cond_at(batch: Sequence[ScheduledConditioning], step: int) -> CondBatch:
    """The uncond batch at `step` (A1111's `reconstruct_cond_batch`)."""
    return stack_conditionings([scheduled.at(step) for scheduled in batch])


def match_lengths(
    cond: torch.Tensor, uncond: torch.Tensor, empty: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Setting "Pad prompt/negative prompt" (`pad_cond_uncond`): the shorter of cond and
    uncond [N, T, W] gets the empty prompt's context [77, W] appended until they match.
    (With the setting off, A1111 runs cond and uncond through the UNet separately.)"""
    empty = empty.reshape(1, -1, empty.shape[-1])
    repeats = (cond.shape[1] - uncond.shape[1]) // empty.shape[1]
    if repeats < 0:
        cond = torch.cat([cond, empty.to(cond).repeat(cond.shape[0], -repeats, 1)], dim=1)
    elif repeats > 0:
        uncond = torch.cat([uncond, empty.to(uncond).repeat(uncond.shape[0], repeats, 1)], dim=1)
    return cond, uncond


def match_lengths_v0(cond: torch.Tensor, uncond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Setting `pad_cond_uncond_v0`: uncond repeats its last row or is cut to cond's length."""
    if uncond.shape[1] < cond.shape[1]:
        extra = uncond[:, -1:].repeat(1, cond.shape[1] - uncond.shape[1], 1)
        uncond = torch.cat([uncond, extra], dim=1)
    elif uncond.shape[1] > cond.shape[1]:
        uncond = uncond[:, : cond.shape[1]]
    return cond, uncond


def emphasis_infotext(texts: Sequence[str], emphasis: str) -> dict[str, str]:
    """`Emphasis: <mode>` for the infotext when a prompt has brackets and the mode is not
    the default "Original"."""
    if emphasis != "Original" and any("(" in text or "[" in text for text in texts):
        return {"Emphasis": emphasis}
    return {}
