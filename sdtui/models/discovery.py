"""Finding checkpoints and VAEs in the data dir, named the way AUTOMATIC1111 names them.

Listing never opens a model file: hashes are computed lazily, through `HashCache`, the first
time `sha256` / `short_hash` / `title` / `legacy_hash` is asked for.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from sdtui.models.hashes import HashCache, legacy_model_hash, sha256_file, short_hash
from sdtui.paths import DataDirs

CHECKPOINT_EXTENSIONS = (".safetensors", ".ckpt")
VAE_EXTENSIONS = (".safetensors", ".pt", ".ckpt")
VAE_SUFFIXES = tuple(f".vae{ext}" for ext in VAE_EXTENSIONS)
VAE_AUTOMATIC = "Automatic"
VAE_NONE = "None"


class ModelNotFoundError(LookupError):
    """A checkpoint or VAE name that matches nothing; the message lists the known names."""


def walk_files(top: Path) -> Iterator[Path]:
    """Files under `top`, recursively, following links once, skipping hidden dirs and files."""
    seen: set[str] = set()
    for root, dirs, files in os.walk(top, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if not name.startswith("."):
                yield Path(root, name)


def natural_key(text: str) -> list[int | str]:
    """Sort key with numbers compared by value, case-insensitive (as A1111 sorts VAEs)."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


def _listing(paths: list[Path], names: list[str]) -> str:
    return ", ".join(names) if names else f"none (put files in {', '.join(map(str, paths))})"


# ---------------------------------------------------------------------------- checkpoints


@dataclass(eq=False)
class CheckpointInfo:
    """One checkpoint file; hashes are computed on first access only."""

    path: Path
    name: str  # relative to the checkpoint dir, with extension, '/'-separated (A1111's name)
    config: Path | None = None  # an A1111-style `<stem>.yaml` beside the file
    cache: HashCache | None = field(default=None, repr=False)
    embedded: bool = False  # sdtui's shipped default model, not a file of the user's

    @property
    def stem(self) -> str:
        """The file name without folders or extension (A1111's `name_for_extra`)."""
        return self.path.stem

    @property
    def model_name(self) -> str:
        """A1111's infotext "Model" value: the name without extension, '/' and '\\' as '_'."""
        base, _ = os.path.splitext(self.name)
        return base.replace("/", "_").replace("\\", "_")

    @cached_property
    def sha256(self) -> str:
        if self.cache is None:
            return sha256_file(self.path)
        return self.cache.sha256(self.path, a1111_key=f"checkpoint/{self.name}")

    @property
    def short_hash(self) -> str:
        """The 10-hex "Model hash"."""
        return short_hash(self.sha256)

    @cached_property
    def legacy_hash(self) -> str:
        """A1111's old 8-hex model hash."""
        return legacy_model_hash(self.path)

    @property
    def title(self) -> str:
        """ "name [0123456789]", as in A1111's checkpoint dropdown."""
        return f"{self.name} [{self.short_hash}]"

    def known_sha256(self) -> str | None:
        """The sha256 if already computed or cached, without hashing the file."""
        if "sha256" in self.__dict__:
            return self.__dict__["sha256"]
        if self.cache is None:
            return None
        return self.cache.cached_sha256(self.path, a1111_key=f"checkpoint/{self.name}")


def _is_checkpoint(name: str) -> bool:
    lower = name.lower()
    return lower.endswith(CHECKPOINT_EXTENSIONS) and not lower.endswith(VAE_SUFFIXES)


def discover_checkpoints(
    dirs: DataDirs, cache: HashCache | None = None, *, embedded: bool = True
) -> list[CheckpointInfo]:
    """Checkpoints under the checkpoint dir, sorted case-insensitively by name; where there
    are none, the embedded default model (`sdtui.models.default_model`) unless `embedded` is
    False.

    `.vae.ckpt` / `.vae.safetensors` files are VAEs, not checkpoints (as in A1111). No file is
    opened; hashes come later, lazily, through `cache` (default: the data dir's HashCache).
    """
    top = dirs.checkpoints
    cache = cache if cache is not None else HashCache.for_dirs(dirs)
    if not top.is_dir():
        return _embedded(cache) if embedded else []
    found: list[CheckpointInfo] = []
    files = list(walk_files(top))
    present = {str(p) for p in files}
    for path in files:
        if not _is_checkpoint(path.name):
            continue
        name = path.relative_to(top).as_posix()
        yaml = path.with_suffix(".yaml")
        config = yaml if str(yaml) in present else None
        found.append(CheckpointInfo(path=path, name=name, config=config, cache=cache))
    found.sort(key=lambda info: (info.name.lower(), info.name))
    return found or (_embedded(cache) if embedded else [])


def _embedded(cache: HashCache | None) -> list[CheckpointInfo]:
    """The shipped default model as a checkpoint (none where it was left out)."""
    from sdtui.models.default_model import default_model_path

    path = default_model_path()
    if path is None:
        return []
    yaml = path.with_suffix(".yaml")
    return [CheckpointInfo(path, path.name, yaml if yaml.is_file() else None, cache, embedded=True)]


_HASH_QUERY = re.compile(r"(?:[0-9a-f]{8}|[0-9a-f]{10}|[0-9a-f]{64})")
_TRAILING_HASH = re.compile(r"\s*\[([^\]]*)\]\s*$")


def _match_by_name(infos: list[CheckpointInfo], query: str) -> CheckpointInfo | None:
    for info in infos:
        if query in (info.name, info.stem, info.model_name, info.path.name, str(info.path)):
            return info
    bare = _TRAILING_HASH.sub("", query)  # "name [hash]": A1111 ignores the hash part
    for info in infos:
        if bare in (info.name, info.stem, info.model_name):
            return info
    return None


def _hash_matches(info: CheckpointInfo, digest: str, sha256: str | None) -> bool:
    if len(digest) == 8:
        return info.legacy_hash == digest
    return sha256 is not None and sha256.startswith(digest)


def _match_by_hash(infos: list[CheckpointInfo], query: str, compute: bool) -> CheckpointInfo | None:
    """A 8-hex legacy hash, 10-hex short hash or full sha256, bare or as "[hash]"."""
    trailing = _TRAILING_HASH.search(query)
    digest = (trailing.group(1) if trailing else query).strip().lower()
    if not _HASH_QUERY.fullmatch(digest):
        return None
    for info in infos:  # hashes already known first: no file is read for these
        if len(digest) != 8 and _hash_matches(info, digest, info.known_sha256()):
            return info
    if len(digest) != 8 and not compute:
        return None
    for info in infos:
        if _hash_matches(info, digest, None if len(digest) == 8 else info.sha256):
            return info
    return None


def find_checkpoint(
    dirs: DataDirs,
    query: str,
    checkpoints: list[CheckpointInfo] | None = None,
    *,
    compute_hashes: bool = True,
) -> CheckpointInfo:
    """The checkpoint a name, stem, model name, title, 10-hex short hash, full sha256 or 8-hex
    legacy hash refers to (A1111 accepts all of these), else the shortest name containing the
    query. Raises ModelNotFoundError listing the known names.

    A sha256 query hashes the checkpoints whose hash is not cached yet (slow for big
    libraries) unless `compute_hashes` is False; legacy hashes read only 64 KiB per file."""
    infos = checkpoints if checkpoints is not None else discover_checkpoints(dirs)
    query = query.strip()
    if query:
        cache = infos[0].cache if infos else None
        embedded = [] if any(info.embedded for info in infos) else _embedded(cache)
        found = (
            _match_by_name(infos, query)
            or _match_by_hash(infos, query, compute_hashes)
            or _match_by_name(embedded, query)  # "Model: sdtui-shapes" with other files present
        )
        if found is None:
            bare = _TRAILING_HASH.sub("", query).lower()
            partial = [info for info in infos if bare in info.name.lower()]
            found = min(partial, key=lambda info: len(info.name)) if partial else None
        if found is not None:
            return found
    names = [info.name for info in infos if not info.embedded]
    known = _listing([dirs.checkpoints], names)
    if len(names) < len(infos):
        known += f"; sdtui's default model: {infos[-1].name}"
    raise ModelNotFoundError(f"no checkpoint matches {query!r}; known checkpoints: {known}")


# ---------------------------------------------------------------------------- VAEs


def discover_vaes(dirs: DataDirs) -> dict[str, Path]:
    """VAE name (file name with extension) -> path, in A1111's natural order.

    `models/VAE/**.{safetensors,pt,ckpt}` plus `*.vae.{safetensors,pt,ckpt}` in the checkpoint
    dir; on a name clash the VAE dir's file wins, as in A1111.
    """
    found: dict[str, Path] = {}
    if dirs.checkpoints.is_dir():
        for path in walk_files(dirs.checkpoints):
            if path.name.lower().endswith(VAE_SUFFIXES):
                found[path.name] = path
    if dirs.vae.is_dir():
        for path in walk_files(dirs.vae):
            if path.name.lower().endswith(VAE_EXTENSIONS):
                found[path.name] = path
    return dict(sorted(found.items(), key=lambda item: natural_key(item[0])))


def vae_choices(dirs: DataDirs) -> list[str]:
    """What the VAE setting may be: "Automatic", "None", then every VAE name."""
    return [VAE_AUTOMATIC, VAE_NONE, *discover_vaes(dirs)]


def _vae_near(checkpoint: Path, vaes: dict[str, Path]) -> Path | None:
    """A1111's "Automatic" rule: `<stem>.vae.{safetensors,pt,ckpt}` beside the checkpoint;
    failing that (A1111 1.x), the first known VAE whose file name starts with the stem."""
    stem = checkpoint.name.rsplit(".", 1)[0]
    for suffix in VAE_SUFFIXES:
        beside = checkpoint.with_name(stem + suffix)
        if beside.is_file():
            return beside
    for name, path in vaes.items():
        if name.startswith(stem):
            return path
    return None


def resolve_vae(
    checkpoint: CheckpointInfo | Path | str, choice: str, dirs: DataDirs
) -> Path | None:
    """The VAE file to use with `checkpoint`, or None for the checkpoint's baked-in VAE.

    `choice` is "Automatic" (a VAE named after the checkpoint, else baked in), "None" (baked
    in) or a VAE name from `discover_vaes` (its file name; a path to an existing file works too).
    """
    path = checkpoint.path if isinstance(checkpoint, CheckpointInfo) else Path(checkpoint)
    if choice == VAE_NONE:
        return None
    vaes = discover_vaes(dirs)
    if choice in (VAE_AUTOMATIC, "auto"):
        return _vae_near(path, vaes)
    if choice in vaes:
        return vaes[choice]
    by_stem = [p for name, p in vaes.items() if Path(name).stem == choice]
    if len(by_stem) == 1:
        return by_stem[0]
    if os.sep in choice and Path(choice).expanduser().is_file():
        return Path(choice).expanduser()
    raise ModelNotFoundError(
        f"unknown VAE {choice!r}; choose one of: "
        f"{VAE_AUTOMATIC}, {VAE_NONE}, {_listing([dirs.vae, dirs.checkpoints], list(vaes))}"
    )
