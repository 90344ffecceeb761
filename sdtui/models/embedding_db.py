"""The embeddings folder as A1111's `EmbeddingDatabase`: what loads for a model, what is
skipped and why, and how prompt tokens find an embedding.

    database = EmbeddingDatabase(dirs.embeddings, hashes=HashCache.for_dirs(dirs))
    embeddings = database.for_model(loaded_model)   # rescans cheaply: only changed files load
    embeddings.loaded, embeddings.skipped, embeddings.problems
    used = embeddings.tracked()                     # the EmbeddingLookup a PromptEncoder takes
    used.infotext()                                 # {"TI hashes": "name: 0123456789ab, ..."}

* Files: `.pt`, `.bin`, `.safetensors` and images, in subfolders too (top-down, sorted; links
  followed); empty files and `x.preview.png` are ignored, as are pictures without an
  embedding. A file that cannot be read is reported in `problems` and never stops the rest.
* A file is read again only when its size or mtime changes; a removed file disappears.
* Fit (A1111 compares the embedding's width with the model's): one tensor needs a model with
  one text encoder of that width (SD1 768, SD2 1024, the SDXL refiner 1280); SDXL needs
  clip_l and clip_g of its two encoders' widths. Others are `skipped`, with the reason.
  Two files with one name: the first found loads, the other is skipped.
* Lookup (A1111 `find_embedding_at_position`): each name is tokenized with the CLIP tokenizer
  (which lower-cases, so `EasyNegative` also matches `easynegative`); at a prompt position the
  longest name whose tokens start there wins.
* Hashes: sha256 of the file, first 12 hex, via the hash cache under A1111's title
  `textual_inversion/<name>`; only computed for embeddings a prompt used.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sdtui.models.checkpoint_file import CheckpointError
from sdtui.models.embeddings import (
    EMBEDDING_EXTENSIONS,
    SINGLE,
    Embedding,
    load_embedding,
)
from sdtui.models.hashes import HashCache, lora_short_hash, sha256_file
from sdtui.models.tokenizer import ClipTokenizer, get_tokenizer

log = logging.getLogger(__name__)

INFOTEXT_KEY = "TI hashes"
ENCODER_KEYS = ("text_encoder", "text_encoder_2")
KNOWN_WIDTHS = {768: "SD1", 1024: "SD2", 1280: "SDXL refiner"}


@dataclass(frozen=True)
class SkippedEmbedding:
    """An embedding that does not fit the model (A1111 lists it as skipped)."""

    name: str
    path: Path
    reason: str


@dataclass(frozen=True)
class EmbeddingProblem:
    """A file in the embeddings folder that could not be read."""

    path: Path
    message: str


@dataclass
class _FileEntry:
    signature: tuple[int, int]  # size, mtime_ns
    result: Embedding | EmbeddingProblem | None


def text_encoder_widths(model: Any) -> dict[str, int]:
    """{"text_encoder": width, "text_encoder_2": width} of a loaded model's encoders."""
    widths = {}
    for key in ENCODER_KEYS:
        module = getattr(model, key, None)
        if module is not None:
            widths[key] = int(module.config.hidden_size)
    return widths


def _describe(widths: Mapping[str, int]) -> str:
    if set(widths) in ({SINGLE}, {"text_encoder"}, {"text_encoder_2"}):
        (width,) = widths.values()
        known = KNOWN_WIDTHS.get(width)
        return f"width {width}" + (f" ({known})" if known else "")
    clip_l = widths.get("clip_l", widths.get("text_encoder"))
    clip_g = widths.get("clip_g", widths.get("text_encoder_2"))
    return f"clip_l {clip_l} + clip_g {clip_g} (SDXL)"


def misfit(embedding: Embedding, widths: Mapping[str, int]) -> str | None:
    """Why an embedding does not fit text encoders of `widths`, or None when it fits."""
    if embedding.is_sdxl:
        needs = {
            "text_encoder": embedding.widths["clip_l"],
            "text_encoder_2": embedding.widths["clip_g"],
        }
        fits = dict(widths) == needs
    else:
        fits = len(widths) == 1 and embedding.widths[SINGLE] in widths.values()
    if fits:
        return None
    return f"made for {_describe(embedding.widths)}; the model needs {_describe(widths)}"


class EmbeddingSet:
    """The embeddings usable with one model; an `EmbeddingLookup` for prompt chunking."""

    def __init__(
        self,
        loaded: Sequence[Embedding],
        skipped: Sequence[SkippedEmbedding] = (),
        problems: Sequence[EmbeddingProblem] = (),
        *,
        hashes: HashCache | None = None,
        tokenizer: ClipTokenizer | None = None,
    ) -> None:
        self.loaded = {e.name: e for e in sorted(loaded, key=lambda e: e.name.lower())}
        self.skipped = list(skipped)
        self.problems = list(problems)
        self.hashes = hashes
        tokenizer = tokenizer or get_tokenizer()
        index: dict[int, list[tuple[tuple[int, ...], Embedding]]] = {}
        for embedding in loaded:  # registration order: the first of equal tokens wins
            ids = tuple(tokenizer.encode(embedding.name))
            if ids:
                index.setdefault(ids[0], []).append((ids, embedding))
        self._index = {
            first: sorted(entries, key=lambda entry: len(entry[0]), reverse=True)
            for first, entries in index.items()
        }

    def find_at(self, tokens: Sequence[int], position: int) -> tuple[Embedding, int] | None:
        """The embedding with the longest name whose tokens start at `position`."""
        for ids, embedding in self._index.get(tokens[position], ()):
            if tuple(tokens[position : position + len(ids)]) == ids:
                return embedding, len(ids)
        return None

    def short_hash(self, embedding: Embedding) -> str | None:
        """12 hex digits of the file's sha256 (A1111's TI hash); None without a file."""
        if embedding.path is None:
            return None
        try:
            if self.hashes is not None:
                sha = self.hashes.sha256(embedding.path, f"textual_inversion/{embedding.name}")
            else:
                sha = sha256_file(embedding.path)
        except OSError:
            return None
        return lora_short_hash(sha)

    def infotext(self, used: Iterable[Embedding]) -> dict[str, str]:
        """`{"TI hashes": "name: hash, ..."}` for `used` (names without ":" and ","), or {}."""
        entries = []
        for embedding in used:
            short = self.short_hash(embedding)
            if short:
                name = embedding.name.replace(":", "").replace(",", "")
                entries.append(f"{name}: {short}")
        return {INFOTEXT_KEY: ", ".join(entries)} if entries else {}

    def tracked(self) -> UsedEmbeddings:
        """A lookup over this set that records which embeddings prompts used."""
        return UsedEmbeddings(self)


class UsedEmbeddings:
    """An `EmbeddingLookup` that remembers every embedding it found, in order of first use."""

    def __init__(self, embeddings: EmbeddingSet) -> None:
        self.embeddings = embeddings
        self.used: dict[str, Embedding] = {}

    def find_at(self, tokens: Sequence[int], position: int) -> tuple[Embedding, int] | None:
        found = self.embeddings.find_at(tokens, position)
        if found is not None:
            self.used.setdefault(found[0].name, found[0])
        return found

    def infotext(self) -> dict[str, str]:
        return self.embeddings.infotext(self.used.values())


class EmbeddingDatabase:
    """Every embedding under some folders, re-read only where files changed. Thread-safe."""

    def __init__(
        self,
        folders: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        *,
        hashes: HashCache | None = None,
        tokenizer: ClipTokenizer | None = None,
    ) -> None:
        if isinstance(folders, (str, os.PathLike)):
            folders = [folders]
        self.folders = [Path(folder) for folder in folders]
        self.hashes = hashes
        self.tokenizer = tokenizer
        self._files: dict[Path, _FileEntry] = {}
        self._sets: dict[tuple[tuple[str, int], ...], EmbeddingSet] = {}
        self._lock = threading.RLock()

    def _walk(self) -> Iterable[Path]:
        for folder in self.folders:
            for root, dirs, files in os.walk(folder, followlinks=True):
                dirs.sort()
                for name in sorted(files):
                    if name.lower().endswith(EMBEDDING_EXTENSIONS):
                        yield Path(root) / name

    @staticmethod
    def _read(path: Path) -> Embedding | EmbeddingProblem | None:
        try:
            return load_embedding(path)
        except CheckpointError as exc:
            problem = EmbeddingProblem(path, str(exc))
        except Exception as exc:  # a broken file must never stop the others
            problem = EmbeddingProblem(path, f"{path}: {type(exc).__name__}: {exc}")
        log.warning("embedding not loaded: %s", problem.message)
        return problem

    def refresh(self) -> bool:
        """Rescan the folders (stat only; changed files are read). True if anything changed."""
        with self._lock:
            files: dict[Path, _FileEntry] = {}
            for path in self._walk():
                try:
                    stat = path.stat()
                except OSError:
                    continue
                if stat.st_size == 0:
                    continue
                signature = (stat.st_size, stat.st_mtime_ns)
                entry = self._files.get(path)
                if entry is None or entry.signature != signature:
                    entry = _FileEntry(signature, self._read(path))
                files[path] = entry
            changed = files.keys() != self._files.keys() or any(
                files[path] is not self._files[path] for path in files
            )
            self._files = files
            if changed:
                self._sets.clear()
            return changed

    def all(self) -> tuple[list[Embedding], list[EmbeddingProblem]]:
        """(embeddings, problems) as of the last refresh, in scan order."""
        with self._lock:
            results = [entry.result for entry in self._files.values()]
        embeddings = [r for r in results if isinstance(r, Embedding)]
        return embeddings, [r for r in results if isinstance(r, EmbeddingProblem)]

    def for_widths(self, widths: Mapping[str, int], *, refresh: bool = True) -> EmbeddingSet:
        """The set for text encoders of `widths` ({"text_encoder": 768, ...})."""
        with self._lock:
            if refresh:
                self.refresh()
            key = tuple(sorted(widths.items()))
            cached = self._sets.get(key)
            if cached is None:
                cached = self._sets[key] = self._build(widths)
            return cached

    def _build(self, widths: Mapping[str, int]) -> EmbeddingSet:
        embeddings, problems = self.all()
        loaded: list[Embedding] = []
        skipped: list[SkippedEmbedding] = []
        names: dict[str, Embedding] = {}
        for embedding in embeddings:
            reason = misfit(embedding, widths)
            if reason is None and embedding.name in names:
                reason = f"another file has the same name: {names[embedding.name].path}"
            if reason is not None:
                skipped.append(SkippedEmbedding(embedding.name, embedding.path or Path(), reason))
                continue
            names[embedding.name] = embedding
            loaded.append(embedding)
        return EmbeddingSet(loaded, skipped, problems, hashes=self.hashes, tokenizer=self.tokenizer)

    def for_model(self, model: Any, *, refresh: bool = True) -> EmbeddingSet:
        """The set for a loaded model (`sdtui.models.loader.LoadedModel`)."""
        return self.for_widths(text_encoder_widths(model), refresh=refresh)
