"""AUTOMATIC1111's model hashes, and a cache so big files are hashed once.

- `sha256_file`: full-file sha256; its first 10 hex digits are the infotext "Model hash".
- `legacy_model_hash`: the old 8-hex "model hash" (sha256 of 64 KiB at offset 1 MiB).
- `addnet_hash`: LoRA hash (kohya/"addnet": sha256 of a .safetensors file's tensor data,
  i.e. everything after the 8-byte length and JSON header; full-file sha256 otherwise), shown
  with 12 hex digits.

`HashCache` keeps sha256/addnet hashes in `<data-dir>/sdtui/hashes.json`, keyed by absolute
path and reused while the file's size and mtime are unchanged. It also reads (never writes)
A1111's `cache.json` in the data dir root, so an A1111 install's hashes are not recomputed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import struct
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sdtui.paths import DataDirs

log = logging.getLogger(__name__)

CHUNK = 1024 * 1024
LEGACY_OFFSET = 0x100000
LEGACY_LENGTH = 0x10000
CACHE_VERSION = 1

Progress = Callable[[int, int], None]  # (bytes done, total bytes)


def _hash_stream(f: Any, total: int, progress: Progress | None) -> str:
    digest = hashlib.sha256()
    done = 0
    while chunk := f.read(CHUNK):
        digest.update(chunk)
        done += len(chunk)
        if progress is not None:
            progress(done, total)
    return digest.hexdigest()


def sha256_file(path: str | os.PathLike[str], progress: Progress | None = None) -> str:
    """Full-file sha256 (64 hex), read in 1 MiB chunks."""
    with open(path, "rb") as f:
        return _hash_stream(f, os.fstat(f.fileno()).st_size, progress)


def short_hash(sha256: str) -> str:
    """A1111's "Model hash" / title hash: the first 10 hex digits of the sha256."""
    return sha256[:10]


def lora_short_hash(sha256: str) -> str:
    """A1111's LoRA / embedding hash as shown in infotext: the first 12 hex digits."""
    return sha256[:12]


def legacy_model_hash(path: str | os.PathLike[str]) -> str:
    """A1111's old model hash: sha256 of the 0x10000 bytes at offset 0x100000, 8 hex.

    Files shorter than that hash what is there (possibly nothing); a missing file is "NOFILE".
    """
    try:
        with open(path, "rb") as f:
            f.seek(LEGACY_OFFSET)
            return hashlib.sha256(f.read(LEGACY_LENGTH)).hexdigest()[:8]
    except FileNotFoundError:
        return "NOFILE"


def addnet_hash(path: str | os.PathLike[str], progress: Progress | None = None) -> str:
    """The kohya/"addnet" hash (64 hex) of a LoRA; full-file sha256 for non-safetensors."""
    if Path(path).suffix.lower() != ".safetensors":
        return sha256_file(path, progress)
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        prefix = f.read(8)
        if len(prefix) < 8:
            return hashlib.sha256(b"").hexdigest()
        (header_len,) = struct.unpack("<Q", prefix)
        f.seek(8 + header_len)
        return _hash_stream(f, max(0, size - 8 - header_len), progress)


# ---------------------------------------------------------------------------- cache


class HashCache:
    """sha256 and addnet hashes by absolute path, reused while size and mtime match.

    Thread-safe; the JSON file is replaced atomically. `a1111_cache` (A1111's cache.json) is
    only ever read, for entries whose mtime matches the file on disk.
    """

    def __init__(self, cache_file: Path, a1111_cache: Path | None = None) -> None:
        self.cache_file = Path(cache_file)
        self.a1111_cache = Path(a1111_cache) if a1111_cache else None
        self._lock = threading.Lock()
        self._entries: dict[str, dict[str, Any]] | None = None
        self._a1111: dict[str, Any] | None = None

    @classmethod
    def for_dirs(cls, dirs: DataDirs) -> HashCache:
        """The cache in `<data-dir>/sdtui/hashes.json`, reading A1111's `<data-dir>/cache.json`."""
        return cls(dirs.own / "hashes.json", dirs.root / "cache.json")

    # -- public

    def sha256(
        self,
        path: str | os.PathLike[str],
        a1111_key: str | None = None,
        progress: Progress | None = None,
    ) -> str:
        """Full-file sha256. `a1111_key` is A1111's cache title, e.g. "checkpoint/x.safetensors"."""
        return self._get(Path(path), "sha256", ("hashes", a1111_key), sha256_file, progress)

    def addnet(
        self,
        path: str | os.PathLike[str],
        a1111_key: str | None = None,
        progress: Progress | None = None,
    ) -> str:
        """LoRA addnet hash. `a1111_key` is A1111's title, e.g. "lora/<name>"."""
        section = "hashes-addnet" if Path(path).suffix.lower() == ".safetensors" else "hashes"
        return self._get(Path(path), "addnet", (section, a1111_key), addnet_hash, progress)

    def cached_sha256(
        self, path: str | os.PathLike[str], a1111_key: str | None = None
    ) -> str | None:
        """The sha256 if known without reading the file, else None."""
        path = Path(path).absolute()
        try:
            st = path.stat()
        except OSError:
            return None
        return self._lookup(path, st, "sha256", ("hashes", a1111_key))

    # -- internals

    def _get(
        self,
        path: Path,
        kind: str,
        a1111: tuple[str, str | None],
        compute: Callable[[Path, Progress | None], str],
        progress: Progress | None,
    ) -> str:
        path = path.absolute()
        st = path.stat()  # FileNotFoundError for a missing file, as the hash functions would
        found = self._lookup(path, st, kind, a1111)
        if found is not None:
            return found
        value = compute(path, progress)
        after = path.stat()
        if (after.st_size, after.st_mtime_ns) == (st.st_size, st.st_mtime_ns):
            self._store(path, st, kind, value)
        return value

    def _lookup(
        self, path: Path, st: os.stat_result, kind: str, a1111: tuple[str, str | None]
    ) -> str | None:
        with self._lock:
            entry = self._load().get(str(path))
            if (
                entry
                and entry.get("size") == st.st_size
                and entry.get("mtime_ns") == st.st_mtime_ns
            ):
                value = entry.get(kind)
                if isinstance(value, str):
                    return value
        section, key = a1111
        value = self._from_a1111(section, key, st) if key else None
        if value is not None:
            self._store(path, st, kind, value)
        return value

    def _store(self, path: Path, st: os.stat_result, kind: str, value: str) -> None:
        with self._lock:
            entries = self._load()
            entry = entries.get(str(path))
            if not entry or (entry.get("size"), entry.get("mtime_ns")) != (
                st.st_size,
                st.st_mtime_ns,
            ):
                entry = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
                entries[str(path)] = entry
            entry[kind] = value
            self._save(entries)

    def _load(self) -> dict[str, dict[str, Any]]:
        if self._entries is None:
            self._entries = self._read_own()
        return self._entries

    def _read_own(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.cache_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable hash cache %s: %s", self.cache_file, exc)
            return {}
        entries = data.get("files") if isinstance(data, dict) else None
        return {k: v for k, v in (entries or {}).items() if isinstance(v, dict)}

    def _save(self, entries: dict[str, dict[str, Any]]) -> None:
        """Merge with what other instances wrote meanwhile, then replace the file atomically."""
        merged = {**self._read_own(), **entries}
        self._entries = merged
        tmp = self.cache_file.with_name(
            f"{self.cache_file.name}.{os.getpid()}.{threading.get_ident()}.tmp"
        )
        try:
            self.cache_file.parent.mkdir(parents=True, exist_ok=True)
            payload = {"version": CACHE_VERSION, "files": merged}
            tmp.write_text(json.dumps(payload, indent=1, sort_keys=True), encoding="utf-8")
            os.replace(tmp, self.cache_file)
        except OSError as exc:
            log.warning("could not write hash cache %s: %s", self.cache_file, exc)
            tmp.unlink(missing_ok=True)

    def _from_a1111(self, section: str, key: str, st: os.stat_result) -> str | None:
        """A1111's cache.json entry for `key` if its mtime matches the file (read-only)."""
        with self._lock:
            if self._a1111 is None:
                self._a1111 = self._read_a1111()
            entry = self._a1111.get(section, {}).get(key)
        if not isinstance(entry, dict):
            return None
        mtime, sha = entry.get("mtime"), entry.get("sha256")
        if not isinstance(mtime, (int, float)) or not isinstance(sha, str) or len(sha) != 64:
            return None
        return sha.lower() if abs(float(mtime) - st.st_mtime) < 1e-6 else None

    def _read_a1111(self) -> dict[str, Any]:
        if self.a1111_cache is None:
            return {}
        try:
            with open(self.a1111_cache, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}
