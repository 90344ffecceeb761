"""A prompt line -> 75-token chunks with a weight per token, as A1111 builds them.

    line = tokenize_line("a (cat:1.2), BREAK a dog")
    line.chunks[0].tokens       # 77 ids: BOS, 75 tokens or EOS padding, EOS
    line.chunks[0].multipliers  # 77 weights, 1.0 on BOS/EOS/padding
    line.token_count            # what the "N/75" counter shows

Rules (A1111 `sd_hijack_clip.tokenize_line`):

* Emphasis is parsed with `parse_attention` (BREAK included) unless the emphasis mode is
  "None", where the whole line is one literal run of weight 1.0.
* Each run is tokenized without BOS/EOS. A run ("BREAK", -1) closes the current chunk.
* Before a token is added: a comma only records its position; any other token, when the
  chunk already holds 75 tokens and the last comma is at most `comma_backtrack` tokens from
  the end, moves the tokens after that comma into a fresh chunk. Then a chunk holding 75
  tokens is closed.
* At the end the last chunk is closed if it has tokens or if there is no chunk at all.
* Closing pads to 75 with EOS, then puts BOS in front and EOS at the end (77 tokens). The
  encoders that pad with 0 (OpenCLIP) replace everything after the first EOS with 0 just
  before encoding (`pad_tokens`).
* `token_count`: 75 per chunk closed early (full, BREAK, comma backtrack) plus the tokens of
  the last chunk.

Textual inversion: an `EmbeddingLookup` may claim a token sequence at a position; its
vectors then take `vectors` slots (token id 0, the run's weight) and the chunk records a
`ChunkFix` the encoder applies to the token embeddings (`sdtui.models.embedding_db`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sdtui.core.prompt_parser import (
    BREAK_WEIGHT,
    parse_attention,
    prompt_schedule,
    split_and,
    strip_comments,
)
from sdtui.models.tokenizer import BOS_ID, EOS_ID, ClipTokenizer, get_tokenizer

CHUNK_LENGTH = 75
DEFAULT_COMMA_BACKTRACK = 20
EMPHASIS_MODES = ("Original", "No norm", "Ignore", "None")
EXTRA_NETWORK = re.compile(r"<(\w+):([^>]+)>")


class TokenEmbedding(Protocol):
    """A textual-inversion embedding: `vectors` slots, vectors per text encoder."""

    name: str
    vectors: int

    def vectors_for(self, encoder: str, width: int) -> Any:
        """Tensor [vectors, width] for the encoder named `encoder` ("text_encoder", ...)."""


class EmbeddingLookup(Protocol):
    """Finds an embedding whose trigger tokens start at `position` of `tokens`."""

    def find_at(self, tokens: Sequence[int], position: int) -> tuple[TokenEmbedding, int] | None:
        """(embedding, number of prompt tokens it replaces), or None."""


@dataclass(frozen=True)
class ChunkFix:
    """Embedding vectors to place at `offset` (counted without BOS) of a chunk."""

    offset: int
    embedding: TokenEmbedding


@dataclass
class PromptChunk:
    """77 token ids (BOS, 75, EOS) with a multiplier each, and embedding fixes."""

    tokens: list[int] = field(default_factory=list)
    multipliers: list[float] = field(default_factory=list)
    fixes: list[ChunkFix] = field(default_factory=list)


@dataclass
class TokenizedLine:
    chunks: list[PromptChunk]
    token_count: int


def empty_chunk() -> PromptChunk:
    """The chunk of an empty prompt: BOS and 76 EOS, all weights 1.0."""
    return PromptChunk([BOS_ID] + [EOS_ID] * (CHUNK_LENGTH + 1), [1.0] * (CHUNK_LENGTH + 2))


def check_emphasis(mode: str) -> str:
    if mode not in EMPHASIS_MODES:
        raise ValueError(f"unknown emphasis mode {mode!r}; valid: {', '.join(EMPHASIS_MODES)}")
    return mode


def comma_token(tokenizer: ClipTokenizer) -> int:
    return tokenizer.encoder[",</w>"]


class _ChunkBuilder:
    """The state of A1111's chunking loop: finished chunks, the open chunk, last comma."""

    def __init__(self) -> None:
        self.chunks: list[PromptChunk] = []
        self.chunk = PromptChunk()
        self.token_count = 0
        self.last_comma = -1

    def close(self, is_last: bool = False) -> None:
        chunk = self.chunk
        self.token_count += len(chunk.tokens) if is_last else CHUNK_LENGTH
        missing = CHUNK_LENGTH - len(chunk.tokens)
        chunk.tokens = [BOS_ID, *chunk.tokens, *[EOS_ID] * missing, EOS_ID]
        chunk.multipliers = [1.0, *chunk.multipliers, *[1.0] * missing, 1.0]
        self.chunks.append(chunk)
        self.chunk = PromptChunk()
        self.last_comma = -1

    def before_token(self, token: int, comma: int, backtrack: int) -> None:
        chunk = self.chunk
        if token == comma:
            self.last_comma = len(chunk.tokens)
        elif (
            backtrack != 0
            and len(chunk.tokens) == CHUNK_LENGTH
            and self.last_comma != -1
            and len(chunk.tokens) - self.last_comma <= backtrack
        ):
            cut = self.last_comma + 1
            tail_tokens, tail_weights = chunk.tokens[cut:], chunk.multipliers[cut:]
            del chunk.tokens[cut:], chunk.multipliers[cut:]
            self.close()
            self.chunk.tokens, self.chunk.multipliers = tail_tokens, tail_weights
        if len(self.chunk.tokens) == CHUNK_LENGTH:
            self.close()

    def add_run(
        self,
        tokens: list[int],
        weight: float,
        comma: int,
        backtrack: int,
        embeddings: EmbeddingLookup | None,
    ) -> None:
        position = 0
        while position < len(tokens):
            self.before_token(tokens[position], comma, backtrack)
            found = embeddings.find_at(tokens, position) if embeddings is not None else None
            if found is None:
                self.chunk.tokens.append(tokens[position])
                self.chunk.multipliers.append(weight)
                position += 1
                continue
            embedding, length = found
            if len(self.chunk.tokens) + embedding.vectors > CHUNK_LENGTH:
                self.close()
            self.chunk.fixes.append(ChunkFix(len(self.chunk.tokens), embedding))
            self.chunk.tokens += [0] * embedding.vectors
            self.chunk.multipliers += [weight] * embedding.vectors
            position += length


def tokenize_line(
    line: str,
    tokenizer: ClipTokenizer | None = None,
    *,
    emphasis: str = "Original",
    comma_backtrack: int = DEFAULT_COMMA_BACKTRACK,
    embeddings: EmbeddingLookup | None = None,
) -> TokenizedLine:
    """The chunks of one prompt line (no AND, no prompt editing left in it)."""
    tokenizer = tokenizer or get_tokenizer()
    runs = parse_attention(line) if check_emphasis(emphasis) != "None" else [(line, 1.0)]
    comma = comma_token(tokenizer)
    builder = _ChunkBuilder()
    for text, weight in runs:
        if text == "BREAK" and weight == BREAK_WEIGHT:
            builder.close()
            continue
        builder.add_run(tokenizer.encode(text), weight, comma, comma_backtrack, embeddings)
    if builder.chunk.tokens or not builder.chunks:
        builder.close(is_last=True)
    return TokenizedLine(builder.chunks, builder.token_count)


def pad_tokens(tokens: Sequence[int], pad_id: int) -> list[int]:
    """A chunk's ids as an encoder sees them: after the first EOS, `pad_id` (no-op for EOS)."""
    if pad_id == EOS_ID:
        return list(tokens)
    end = list(tokens).index(EOS_ID) + 1
    return [*tokens[:end], *[pad_id] * (len(tokens) - end)]


def target_token_count(token_count: int) -> int:
    """The counter's denominator: 75, 150, ... (at least 75)."""
    return math.ceil(max(token_count, 1) / CHUNK_LENGTH) * CHUNK_LENGTH


def prompt_token_count(
    prompt: str,
    steps: int = 20,
    *,
    is_positive: bool = True,
    tokenizer: ClipTokenizer | None = None,
    emphasis: str = "Original",
    comma_backtrack: int = DEFAULT_COMMA_BACKTRACK,
    comments: bool = True,
    embeddings: EmbeddingLookup | None = None,
) -> tuple[int, int]:
    """(N, target) for the "N/75" counter, as A1111's `update_token_counter`.

    Comments and extra-network tags (`<lora:x:1>`) are removed; the positive prompt is
    split at AND; every text of the step schedule is tokenized; the longest one counts.
    An embedding counts its vectors (with `embeddings`, the model's set).
    """
    text = strip_comments(prompt) if comments else prompt
    text = EXTRA_NETWORK.sub("", text)
    parts = [part for part, _ in split_and(text)] if is_positive else [text]
    texts = [t for part in parts for _, t in prompt_schedule(part, max(steps, 1))]
    count = 0
    for line in dict.fromkeys(texts):
        tokenized = tokenize_line(
            line,
            tokenizer,
            emphasis=emphasis,
            comma_backtrack=comma_backtrack,
            embeddings=embeddings,
        )
        count = max(count, tokenized.token_count)
    return count, target_token_count(count)
