"""A1111's model hashes and the hash cache (sdtui.models.hashes)."""

from __future__ import annotations

import hashlib
import json
import os
import random
import struct
import threading

import pytest
import torch
from safetensors.torch import save_file

from sdtui.models import hashes
from sdtui.models.hashes import (
    HashCache,
    addnet_hash,
    legacy_model_hash,
    lora_short_hash,
    sha256_file,
    short_hash,
)


def _random_file(path, size: int, seed: int = 0):
    rng = random.Random(seed)
    path.write_bytes(rng.randbytes(size))
    return path


def test_sha256_matches_hashlib_and_reports_progress(tmp_path):
    path = _random_file(tmp_path / "m.safetensors", 3 * 1024 * 1024 + 17)
    seen = []
    digest = sha256_file(path, progress=lambda done, total: seen.append((done, total)))
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    assert seen[-1] == (path.stat().st_size, path.stat().st_size) and len(seen) == 4
    assert short_hash(digest) == digest[:10] and len(short_hash(digest)) == 10
    assert lora_short_hash(digest) == digest[:12]


def test_legacy_hash_of_a_large_file(tmp_path):
    path = _random_file(tmp_path / "big.ckpt", 0x100000 + 0x10000 + 5000)
    data = path.read_bytes()
    expected = hashlib.sha256(data[0x100000 : 0x100000 + 0x10000]).hexdigest()[:8]
    assert legacy_model_hash(path) == expected
    assert len(expected) == 8


@pytest.mark.parametrize("size", [0, 1000, 0x100000 + 100])
def test_legacy_hash_of_a_short_file_hashes_what_is_there(tmp_path, size):
    path = _random_file(tmp_path / "small.ckpt", size)
    expected = hashlib.sha256(path.read_bytes()[0x100000:]).hexdigest()[:8]
    assert legacy_model_hash(path) == expected
    if size <= 0x100000:
        assert expected == hashlib.sha256(b"").hexdigest()[:8]


def test_legacy_hash_of_a_missing_file(tmp_path):
    assert legacy_model_hash(tmp_path / "nope.ckpt") == "NOFILE"


def test_addnet_hash_skips_the_safetensors_header(tmp_path):
    path = tmp_path / "lora.safetensors"
    save_file({"lora_up.weight": torch.arange(12.0).reshape(3, 4)}, str(path), {"ss_x": "1"})
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    assert addnet_hash(path) == hashlib.sha256(data[8 + n :]).hexdigest()
    # Same tensors, different metadata: same addnet hash, different file hash.
    other = tmp_path / "other.safetensors"
    save_file({"lora_up.weight": torch.arange(12.0).reshape(3, 4)}, str(other), {"ss_x": "2"})
    assert addnet_hash(other) == addnet_hash(path)
    assert sha256_file(other) != sha256_file(path)


def test_addnet_hash_of_other_formats_is_the_file_hash(tmp_path):
    path = _random_file(tmp_path / "lora.pt", 5000)
    assert addnet_hash(path) == hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------------------- cache


def _forbid_hashing(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("the file was hashed again")

    monkeypatch.setattr(hashes, "sha256_file", fail)
    monkeypatch.setattr(hashes, "addnet_hash", fail)


def test_cache_hit_after_restart(data_dirs, monkeypatch):
    path = _random_file(data_dirs.checkpoints / "a.safetensors", 5000)
    expected = hashlib.sha256(path.read_bytes()).hexdigest()
    assert HashCache.for_dirs(data_dirs).sha256(path) == expected
    stored = json.loads((data_dirs.own / "hashes.json").read_text())
    assert stored["files"][str(path.absolute())]["sha256"] == expected

    _forbid_hashing(monkeypatch)
    assert HashCache.for_dirs(data_dirs).sha256(path) == expected


def test_cache_miss_after_the_file_changes(data_dirs):
    path = _random_file(data_dirs.checkpoints / "a.safetensors", 5000, seed=1)
    cache = HashCache.for_dirs(data_dirs)
    first = cache.sha256(path)
    _random_file(path, 5000, seed=2)  # same size, new content
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    second = HashCache.for_dirs(data_dirs).sha256(path)
    assert second != first and second == hashlib.sha256(path.read_bytes()).hexdigest()
    assert cache.sha256(path) == second  # the old instance notices too


def test_addnet_and_sha256_are_cached_separately(data_dirs, monkeypatch):
    path = data_dirs.lora / "l.safetensors"
    save_file({"w": torch.ones(3)}, str(path))
    cache = HashCache.for_dirs(data_dirs)
    full, addnet = cache.sha256(path), cache.addnet(path)
    assert full != addnet and addnet == addnet_hash(path)
    _forbid_hashing(monkeypatch)
    fresh = HashCache.for_dirs(data_dirs)
    assert (fresh.sha256(path), fresh.addnet(path)) == (full, addnet)


def _a1111_cache(data_dirs, entries: dict) -> bytes:
    raw = json.dumps(entries, indent=4).encode()
    (data_dirs.root / "cache.json").write_bytes(raw)
    return raw


def test_a1111_cache_is_used_when_mtime_matches_and_never_written(data_dirs, monkeypatch):
    sub = data_dirs.checkpoints / "sdxl"
    sub.mkdir()
    path = _random_file(sub / "base.safetensors", 4000)
    fake = "ab" * 32  # A1111's value wins without reading the file
    raw = _a1111_cache(
        data_dirs,
        {
            "hashes": {
                "checkpoint/sdxl/base.safetensors": {"mtime": path.stat().st_mtime, "sha256": fake}
            }
        },
    )
    before = (data_dirs.root / "cache.json").stat().st_mtime_ns
    _forbid_hashing(monkeypatch)
    cache = HashCache.for_dirs(data_dirs)
    assert cache.sha256(path, a1111_key="checkpoint/sdxl/base.safetensors") == fake
    assert cache.cached_sha256(path) == fake  # copied into our own cache
    assert (data_dirs.root / "cache.json").read_bytes() == raw
    assert (data_dirs.root / "cache.json").stat().st_mtime_ns == before


def test_a1111_cache_with_stale_mtime_is_ignored(data_dirs):
    path = _random_file(data_dirs.checkpoints / "m.ckpt", 4000)
    raw = _a1111_cache(
        data_dirs,
        {"hashes": {"checkpoint/m.ckpt": {"mtime": path.stat().st_mtime - 5, "sha256": "cd" * 32}}},
    )
    got = HashCache.for_dirs(data_dirs).sha256(path, a1111_key="checkpoint/m.ckpt")
    assert got == hashlib.sha256(path.read_bytes()).hexdigest()
    assert (data_dirs.root / "cache.json").read_bytes() == raw


def test_a1111_addnet_section(data_dirs, monkeypatch):
    path = data_dirs.lora / "style.safetensors"
    save_file({"w": torch.ones(3)}, str(path))
    fake = "ef" * 32
    _a1111_cache(
        data_dirs,
        {"hashes-addnet": {"lora/style": {"mtime": path.stat().st_mtime, "sha256": fake}}},
    )
    _forbid_hashing(monkeypatch)
    assert HashCache.for_dirs(data_dirs).addnet(path, a1111_key="lora/style") == fake


def test_corrupt_cache_file_is_ignored_and_replaced(data_dirs):
    (data_dirs.own / "hashes.json").write_text("{not json")
    path = _random_file(data_dirs.checkpoints / "m.ckpt", 100)
    assert (
        HashCache.for_dirs(data_dirs).sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    )
    assert json.loads((data_dirs.own / "hashes.json").read_text())["version"] == 1


def test_cache_is_thread_safe_and_leaves_no_temp_files(data_dirs):
    paths = [_random_file(data_dirs.checkpoints / f"m{i}.ckpt", 2000, seed=i) for i in range(16)]
    cache = HashCache.for_dirs(data_dirs)
    errors = []

    def work(chunk):
        try:
            for p in chunk:
                cache.sha256(p)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(paths[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    stored = json.loads((data_dirs.own / "hashes.json").read_text())["files"]
    assert {k: v["sha256"] for k, v in stored.items()} == {
        str(p.absolute()): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths
    }
    assert sorted(os.listdir(data_dirs.own)) == ["hashes.json"]


def test_two_instances_do_not_lose_each_others_entries(data_dirs):
    a = _random_file(data_dirs.checkpoints / "a.ckpt", 100, seed=1)
    b = _random_file(data_dirs.checkpoints / "b.ckpt", 100, seed=2)
    first, second = HashCache.for_dirs(data_dirs), HashCache.for_dirs(data_dirs)
    first.sha256(a)
    second.sha256(b)
    stored = json.loads((data_dirs.own / "hashes.json").read_text())["files"]
    assert set(stored) == {str(a.absolute()), str(b.absolute())}
