"""Offline CLIP byte-pair-encoding tokenizer, as used by Stable Diffusion's text encoders.

The vocabulary comes from ``bpe_simple_vocab_16e6.txt.gz``, the merge list that ships inside
the installed ``open_clip`` package (found without importing it, which would pull in torch).

Layout of the 49408-entry vocabulary (ids in order):

* 256 byte symbols (each byte mapped to a printable unicode character),
* the same 256 symbols with the end-of-word marker ``</w>`` appended,
* one entry per merge (the two halves concatenated), for the first 48894 merge lines,
* ``<|startoftext|>`` (49406) and ``<|endoftext|>`` (49407).

Text is cleaned the way CLIP does it (ftfy ``fix_text`` when ftfy is importable, HTML entities
unescaped twice, whitespace collapsed, lower-cased), split with CLIP's pre-tokenization regex
and each piece is BPE-merged. Results are cached per piece.

Padding differs per text encoder, see :class:`ClipPad`:

* SD1.x (OpenAI CLIP ViT-L/14) and SDXL's first encoder (also CLIP ViT-L) pad with
  ``<|endoftext|>`` (49407): :attr:`ClipPad.EOS`.
* SD2.x (OpenCLIP ViT-H/14) and SDXL's second encoder (OpenCLIP ViT-bigG/14) pad with id 0
  (the token ``!``): :attr:`ClipPad.ZERO`.
"""

from __future__ import annotations

import enum
import gzip
import html
import importlib.util
import itertools
import threading
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import regex

VOCAB_FILENAME = "bpe_simple_vocab_16e6.txt.gz"
END_OF_WORD = "</w>"
BOS_TOKEN = "<|startoftext|>"
EOS_TOKEN = "<|endoftext|>"
NUM_MERGES = 49152 - 256 - 2  # merge lines CLIP uses (after the header line)
VOCAB_SIZE = 256 * 2 + NUM_MERGES + 2  # 49408
BOS_ID = VOCAB_SIZE - 2  # 49406
EOS_ID = VOCAB_SIZE - 1  # 49407
DEFAULT_CONTEXT_LENGTH = 77
_CACHE_LIMIT = 200_000  # cached pieces before the per-piece cache is cleared

# CLIP's pre-tokenization: English contractions, runs of letters, single digits, and runs of
# anything that is neither whitespace, letter nor digit. Special-token strings typed in the
# text are *not* treated specially (this matches open_clip's SimpleTokenizer).
_PIECE_PATTERN = regex.compile(
    r"""'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""", regex.IGNORECASE
)


class VocabFileNotFoundError(FileNotFoundError):
    """The CLIP BPE vocabulary file could not be found."""


class ClipPad(enum.Enum):
    """Which id fills the tail of a fixed-length token sequence.

    ``EOS``: SD1.x and SDXL ``text_encoder`` (OpenAI CLIP ViT-L/14) pad with 49407.
    ``ZERO``: SD2.x and SDXL ``text_encoder_2`` (OpenCLIP ViT-H/14, ViT-bigG/14) pad with 0.
    """

    EOS = "eos"
    ZERO = "zero"

    @property
    def pad_id(self) -> int:
        return EOS_ID if self is ClipPad.EOS else 0

    @property
    def pad_token(self) -> str:
        """The pad token string a Hugging Face tokenizer config of this family names."""
        return EOS_TOKEN if self is ClipPad.EOS else "!"


def bytes_to_unicode() -> dict[int, str]:
    """Map every byte to a printable character, so BPE symbols never contain whitespace/control.

    Printable Latin-1 bytes map to themselves; the other 68 bytes map, in byte order, to
    code points 256, 257, ... The dict's order is the vocabulary order: the printable bytes
    first (so id 0 is ``!``), then the remapped ones.
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    printable += range(ord("®"), ord("ÿ") + 1)
    table = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def vocab_search_dirs() -> list[Path]:
    """Directories of the installed ``open_clip`` package (found without importing it)."""
    try:
        spec = importlib.util.find_spec("open_clip")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        return []
    return [Path(p) for p in spec.submodule_search_locations]


def find_vocab_file() -> Path:
    """Path of ``bpe_simple_vocab_16e6.txt.gz`` inside the installed open_clip package."""
    dirs = vocab_search_dirs()
    for directory in dirs:
        candidate = directory / VOCAB_FILENAME
        if candidate.is_file():
            return candidate
    looked = ", ".join(str(d / VOCAB_FILENAME) for d in dirs) or "(open_clip is not installed)"
    raise VocabFileNotFoundError(
        f"CLIP vocabulary {VOCAB_FILENAME} not found; looked in: {looked}. "
        "Install open-clip-torch or pass vocab_path= explicitly."
    )


def read_merges(path: Path) -> list[tuple[str, str]]:
    """The merge pairs CLIP uses: lines 2 .. NUM_MERGES+1 of the gzipped file."""
    if not path.is_file():
        raise VocabFileNotFoundError(f"CLIP vocabulary file not found: {path}")
    lines = gzip.decompress(path.read_bytes()).decode("utf-8").split("\n")
    body = lines[1 : NUM_MERGES + 1]
    merges: list[tuple[str, str]] = []
    for number, line in enumerate(body, start=2):
        parts = line.split()
        if len(parts) != 2:
            raise ValueError(f"{path}: line {number} is not a merge pair: {line!r}")
        merges.append((parts[0], parts[1]))
    if len(merges) != NUM_MERGES:
        raise ValueError(f"{path}: expected {NUM_MERGES} merge lines, found {len(merges)}")
    return merges


@lru_cache(maxsize=1)
def _fix_text_function() -> Any:
    """ftfy's ``fix_text`` if ftfy is importable, else None (imported lazily: ~0.1 s)."""
    try:
        import ftfy
    except ImportError:
        return None
    return ftfy.fix_text


def clean_text(text: str) -> str:
    """CLIP's text cleaning: ftfy, HTML unescape twice, collapse whitespace, lower-case."""
    fix_text = _fix_text_function()
    if fix_text is not None:
        text = fix_text(text)
    text = html.unescape(html.unescape(text))
    return " ".join(text.split()).lower()


class ClipTokenizer:
    """CLIP BPE tokenizer. Use :func:`get_tokenizer` for a shared, already loaded instance."""

    bos_id = BOS_ID
    eos_id = EOS_ID
    vocab_size = VOCAB_SIZE

    def __init__(self, vocab_path: str | Path | None = None) -> None:
        path = Path(vocab_path) if vocab_path is not None else find_vocab_file()
        self.vocab_path = path
        self.merges = read_merges(path)
        self.byte_encoder = bytes_to_unicode()
        self.byte_decoder = {char: byte for byte, char in self.byte_encoder.items()}
        symbols = list(self.byte_encoder.values())
        tokens = symbols + [s + END_OF_WORD for s in symbols]
        tokens += [a + b for a, b in self.merges] + [BOS_TOKEN, EOS_TOKEN]
        self.tokens: list[str] = tokens
        self.encoder: dict[str, int] = {token: i for i, token in enumerate(tokens)}
        self.ranks: dict[tuple[str, str], int] = {pair: i for i, pair in enumerate(self.merges)}
        self._cache: dict[str, tuple[int, ...]] = {}
        self._lock = threading.Lock()

    # -- encoding -------------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` without BOS/EOS."""
        ids: list[int] = []
        for piece in _PIECE_PATTERN.findall(clean_text(text)):
            ids.extend(self._encode_piece(piece))
        return ids

    def _encode_piece(self, piece: str) -> tuple[int, ...]:
        cached = self._cache.get(piece)
        if cached is not None:
            return cached
        symbols = "".join(self.byte_encoder[b] for b in piece.encode("utf-8"))
        ids = tuple(self.encoder[s] for s in self._bpe(symbols))
        with self._lock:
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[piece] = ids
        return ids

    def _bpe(self, symbols: str) -> list[str]:
        """Apply merges (lowest rank first, all non-overlapping occurrences, left to right)."""
        word = [*symbols[:-1], symbols[-1] + END_OF_WORD]
        ranks = self.ranks
        while len(word) > 1:
            best_rank, best = None, None
            for pair in itertools.pairwise(word):
                rank = ranks.get(pair)
                if rank is not None and (best_rank is None or rank < best_rank):
                    best_rank, best = rank, pair
            if best is None:
                break
            word = _merge_pair(word, best)
        return word

    def tokenize(
        self,
        text: str,
        context_length: int = DEFAULT_CONTEXT_LENGTH,
        pad: ClipPad | int = ClipPad.EOS,
        truncate: bool = True,
    ) -> list[int]:
        """BOS + ids + EOS, padded to ``context_length``.

        ``pad``: a :class:`ClipPad` (``EOS`` for SD1 / SDXL CLIP-L, ``ZERO`` for SD2 /
        SDXL OpenCLIP-bigG) or an explicit pad id. Too long input is cut to
        ``context_length`` with EOS kept as the last token; with ``truncate=False`` it raises
        ``ValueError`` instead.
        """
        if context_length < 2:
            raise ValueError(f"context_length must be at least 2 (BOS + EOS), got {context_length}")
        pad_id = pad.pad_id if isinstance(pad, ClipPad) else int(pad)
        if not 0 <= pad_id < VOCAB_SIZE:
            raise ValueError(f"pad id {pad_id} is outside the vocabulary 0..{VOCAB_SIZE - 1}")
        ids = [BOS_ID, *self.encode(text), EOS_ID]
        if len(ids) > context_length:
            if not truncate:
                raise ValueError(
                    f"text is {len(ids)} tokens with BOS/EOS, longer than context_length "
                    f"{context_length}: {text[:60]!r}"
                )
            ids = [*ids[: context_length - 1], EOS_ID]
        return ids + [pad_id] * (context_length - len(ids))

    # -- decoding -------------------------------------------------------------------------
    def decode(self, ids: Iterable[int], skip_special_tokens: bool = True) -> str:
        """Text of ``ids``; word ends become spaces, surrounding whitespace is stripped."""
        out = bytearray()
        for token_id in ids:
            token_id = int(token_id)
            if not 0 <= token_id < VOCAB_SIZE:
                raise ValueError(
                    f"token id {token_id} is outside the vocabulary 0..{VOCAB_SIZE - 1}"
                )
            token = self.tokens[token_id]
            if token_id >= BOS_ID:
                if not skip_special_tokens:
                    out += token.encode("utf-8") + b" "
                continue
            word_end = token.endswith(END_OF_WORD)
            if word_end:
                token = token[: -len(END_OF_WORD)]
            out += bytes(self.byte_decoder[char] for char in token)
            if word_end:
                out += b" "
        return out.decode("utf-8", errors="replace").strip()

    def token_strings(self, ids: Sequence[int]) -> list[str]:
        """Vocabulary strings of ``ids`` (byte symbols, with ``</w>`` at word ends)."""
        return [self.tokens[int(i)] for i in ids]


def _merge_pair(word: list[str], pair: tuple[str, str]) -> list[str]:
    first, second = pair
    merged: list[str] = []
    i, n = 0, len(word)
    while i < n:
        if i < n - 1 and word[i] == first and word[i + 1] == second:
            merged.append(first + second)
            i += 2
        else:
            merged.append(word[i])
            i += 1
    return merged


_shared: ClipTokenizer | None = None
_shared_lock = threading.Lock()


def get_tokenizer() -> ClipTokenizer:
    """The process-wide tokenizer, loaded from open_clip's vocabulary on first use."""
    global _shared
    if _shared is None:
        with _shared_lock:
            if _shared is None:
                _shared = ClipTokenizer()
    return _shared
