"""Finding checkpoints and VAEs the way A1111 names them (sdtui.models.discovery)."""

from __future__ import annotations

import builtins
import hashlib
import io
import json
import os
import time

import pytest

from sdtui.models import discovery, hashes
from sdtui.models.discovery import (
    ModelNotFoundError,
    discover_checkpoints,
    discover_vaes,
    find_checkpoint,
    resolve_vae,
    vae_choices,
)
from sdtui.models.hashes import HashCache


def _file(path, data: bytes = b"weights"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def tree(data_dirs):
    ck = data_dirs.checkpoints
    _file(ck / "v1-5-pruned.safetensors", b"one" * 1000)
    _file(ck / "v1-5-pruned.yaml", b"model: {}")
    _file(ck / "SDXL" / "sd_xl_base_1.0.safetensors", b"two" * 1000)
    _file(ck / "anime" / "nested" / "Waifu.ckpt", b"three" * 1000)
    _file(ck / "anime" / "nested" / "Waifu.vae.pt", b"vae-beside")
    _file(ck / "b.safetensors", b"four")
    _file(ck / ".hidden" / "secret.safetensors")
    _file(ck / "notes.txt")
    _file(ck / "model.vae.safetensors", b"vae in ckpt dir")
    _file(data_dirs.vae / "vae-ft-mse-840000-ema-pruned.safetensors", b"mse")
    _file(data_dirs.vae / "kl" / "kl-f8-anime2.ckpt", b"kl")
    _file(data_dirs.vae / "vae10.pt", b"10")
    _file(data_dirs.vae / "vae9.pt", b"9")
    _file(data_dirs.vae / "readme.md")
    return data_dirs


def test_names_model_names_and_order(tree):
    infos = discover_checkpoints(tree)
    assert [i.name for i in infos] == [
        "anime/nested/Waifu.ckpt",
        "b.safetensors",
        "SDXL/sd_xl_base_1.0.safetensors",
        "v1-5-pruned.safetensors",
    ]
    by_name = {i.name: i for i in infos}
    assert by_name["anime/nested/Waifu.ckpt"].model_name == "anime_nested_Waifu"
    assert by_name["SDXL/sd_xl_base_1.0.safetensors"].model_name == "SDXL_sd_xl_base_1.0"
    assert by_name["v1-5-pruned.safetensors"].model_name == "v1-5-pruned"
    assert by_name["v1-5-pruned.safetensors"].config == tree.checkpoints / "v1-5-pruned.yaml"
    assert by_name["b.safetensors"].config is None
    assert by_name["anime/nested/Waifu.ckpt"].stem == "Waifu"


def test_hashes_are_lazy_and_correct(tree, monkeypatch):
    calls = []
    real = hashes.sha256_file
    monkeypatch.setattr(hashes, "sha256_file", lambda p, progress=None: calls.append(p) or real(p))
    info = next(i for i in discover_checkpoints(tree) if i.name == "b.safetensors")
    assert calls == [] and info.known_sha256() is None
    expected = hashlib.sha256(b"four").hexdigest()
    assert info.sha256 == expected
    assert info.short_hash == expected[:10]
    assert info.title == f"b.safetensors [{expected[:10]}]"
    assert info.legacy_hash == hashlib.sha256(b"").hexdigest()[:8]  # a tiny file
    assert len(calls) == 1  # computed once, then remembered
    again = next(i for i in discover_checkpoints(tree) if i.name == "b.safetensors")
    assert again.known_sha256() == expected and again.sha256 == expected and len(calls) == 1


def test_uses_a1111_cache_json_for_checkpoints(tree, monkeypatch):
    path = tree.checkpoints / "SDXL" / "sd_xl_base_1.0.safetensors"
    entry = {"mtime": path.stat().st_mtime, "sha256": "31e35c80fc" + "0" * 54}
    raw = json.dumps({"hashes": {"checkpoint/SDXL/sd_xl_base_1.0.safetensors": entry}}).encode()
    (tree.root / "cache.json").write_bytes(raw)
    monkeypatch.setattr(hashes, "sha256_file", lambda *a, **k: pytest.fail("hashed"))
    info = next(i for i in discover_checkpoints(tree) if i.stem == "sd_xl_base_1.0")
    assert info.title == "SDXL/sd_xl_base_1.0.safetensors [31e35c80fc]"
    assert (tree.root / "cache.json").read_bytes() == raw


def test_listing_2000_files_opens_nothing_and_is_fast(data_dirs, monkeypatch):
    for i in range(2000):
        (data_dirs.checkpoints / f"model_{i:04d}.safetensors").touch()
    opened = []
    real_open, real_io_open = builtins.open, io.open

    def spy(real):
        def wrapper(file, *args, **kwargs):
            opened.append(file)
            return real(file, *args, **kwargs)

        return wrapper

    monkeypatch.setattr(builtins, "open", spy(real_open))
    monkeypatch.setattr(io, "open", spy(real_io_open))
    monkeypatch.setattr(hashes, "sha256_file", lambda *a, **k: pytest.fail("hashed"))
    start = time.perf_counter()
    infos = discover_checkpoints(data_dirs)
    elapsed = time.perf_counter() - start
    monkeypatch.undo()
    assert len(infos) == 2000 and opened == []
    assert elapsed < 2.0


def test_symlink_loop_does_not_hang(data_dirs):
    _file(data_dirs.checkpoints / "sub" / "m.safetensors")
    os.symlink(data_dirs.checkpoints, data_dirs.checkpoints / "sub" / "loop")
    assert [i.name for i in discover_checkpoints(data_dirs)] == ["sub/m.safetensors"]


def test_missing_checkpoint_dir(tmp_path):
    from sdtui.paths import DataDirs

    dirs = DataDirs.resolve(tmp_path / "nothing")
    assert discover_checkpoints(dirs, embedded=False) == []
    (shipped,) = discover_checkpoints(dirs)
    assert shipped.embedded and shipped.name == "sdtui-shapes.safetensors"


def test_the_embedded_model_stands_in_only_for_an_empty_folder(data_dirs):
    (shipped,) = discover_checkpoints(data_dirs)
    assert shipped.embedded and shipped.model_name == "sdtui-shapes"
    assert shipped.config is not None and shipped.config.name == "sdtui-shapes.yaml"
    _file(data_dirs.checkpoints / "mine.safetensors")
    assert [i.name for i in discover_checkpoints(data_dirs)] == ["mine.safetensors"]
    # an infotext's "Model: sdtui-shapes" still finds it beside the user's files
    assert find_checkpoint(data_dirs, "sdtui-shapes").embedded
    assert find_checkpoint(data_dirs, "mine").name == "mine.safetensors"


# ---------------------------------------------------------------------------- find_checkpoint


def test_find_checkpoint_by_every_alias(tree):
    infos = discover_checkpoints(tree)
    target = next(i for i in infos if i.stem == "Waifu")
    for query in (
        "anime/nested/Waifu.ckpt",
        "Waifu",
        "anime_nested_Waifu",
        target.title,
        target.short_hash,
        target.sha256,
        f"anime/nested/Waifu.ckpt [{target.short_hash}]",
        "Waifu [0000000000]",  # A1111 ignores a stale hash when the name matches
        "nested/Wai",  # substring fallback, as A1111 does
    ):
        assert find_checkpoint(tree, query, infos) is target, query


def test_find_checkpoint_by_legacy_hash_of_a_large_file(data_dirs):
    data = os.urandom(0x100000 + 0x10000)
    _file(data_dirs.checkpoints / "big.ckpt", data)
    _file(data_dirs.checkpoints / "small.ckpt", b"x")
    legacy = hashlib.sha256(data[0x100000:]).hexdigest()[:8]
    assert find_checkpoint(data_dirs, legacy).name == "big.ckpt"


def test_find_checkpoint_error_lists_names(tree):
    with pytest.raises(ModelNotFoundError) as info:
        find_checkpoint(tree, "does-not-exist")
    message = str(info.value)
    assert "does-not-exist" in message and "b.safetensors" in message
    assert "SDXL/sd_xl_base_1.0.safetensors" in message


def test_find_checkpoint_in_empty_dir_says_where_to_put_files(data_dirs):
    with pytest.raises(ModelNotFoundError, match="Stable-diffusion"):
        find_checkpoint(data_dirs, "x")


# ---------------------------------------------------------------------------- VAEs


def test_discover_vaes(tree):
    vaes = discover_vaes(tree)
    assert list(vaes) == [
        "kl-f8-anime2.ckpt",
        "model.vae.safetensors",
        "vae9.pt",  # natural order, as A1111: "vae" + 9 sorts before "vae-ft-mse-"
        "vae10.pt",
        "vae-ft-mse-840000-ema-pruned.safetensors",
        "Waifu.vae.pt",
    ]
    assert vaes["Waifu.vae.pt"] == tree.checkpoints / "anime" / "nested" / "Waifu.vae.pt"
    assert vae_choices(tree)[:3] == ["Automatic", "None", "kl-f8-anime2.ckpt"]


def test_vae_files_are_not_checkpoints(tree):
    names = [i.name for i in discover_checkpoints(tree)]
    assert "model.vae.safetensors" not in names


def test_resolve_vae_rules(tree):
    infos = {i.stem: i for i in discover_checkpoints(tree)}
    waifu, b = infos["Waifu"], infos["b"]
    beside = tree.checkpoints / "anime" / "nested" / "Waifu.vae.pt"
    assert resolve_vae(waifu, "Automatic", tree) == beside
    assert resolve_vae(b, "Automatic", tree) is None  # no VAE named after it: baked in
    assert resolve_vae(waifu, "None", tree) is None
    mse = tree.vae / "vae-ft-mse-840000-ema-pruned.safetensors"
    assert resolve_vae(waifu, "vae-ft-mse-840000-ema-pruned.safetensors", tree) == mse
    assert resolve_vae(b.path, "vae-ft-mse-840000-ema-pruned", tree) == mse
    with pytest.raises(ModelNotFoundError) as info:
        resolve_vae(b, "missing.pt", tree)
    assert "Automatic" in str(info.value) and "vae9.pt" in str(info.value)


def test_automatic_vae_prefers_the_file_beside_the_checkpoint(data_dirs):
    ckpt = _file(data_dirs.checkpoints / "m.safetensors")
    _file(data_dirs.vae / "m-anime.pt")  # A1111 1.x would also match this by prefix
    assert resolve_vae(ckpt, "Automatic", data_dirs) == data_dirs.vae / "m-anime.pt"
    beside = _file(data_dirs.checkpoints / "m.vae.safetensors")
    assert resolve_vae(ckpt, "Automatic", data_dirs) == beside


def test_walk_is_the_only_listing(monkeypatch, tree):
    """discover_* list through one walker, so the no-open guarantee covers VAEs too."""
    seen = []
    real = discovery.walk_files
    monkeypatch.setattr(discovery, "walk_files", lambda top: seen.append(top) or real(top))
    discover_vaes(tree)
    assert seen == [tree.checkpoints, tree.vae]
    assert isinstance(HashCache.for_dirs(tree), HashCache)


def test_find_checkpoint_without_hashing(tree, monkeypatch):
    infos = discover_checkpoints(tree)
    target = next(i for i in infos if i.stem == "b")
    short = hashlib.sha256(b"four").hexdigest()[:10]
    monkeypatch.setattr(hashes, "sha256_file", lambda *a, **k: pytest.fail("hashed"))
    with pytest.raises(ModelNotFoundError):
        find_checkpoint(tree, short, infos, compute_hashes=False)
    monkeypatch.undo()
    assert target.sha256.startswith(short)  # now known: found without hashing again
    monkeypatch.setattr(hashes, "sha256_file", lambda *a, **k: pytest.fail("hashed"))
    assert (
        find_checkpoint(tree, short, discover_checkpoints(tree), compute_hashes=False).stem == "b"
    )


def test_checkpoint_info_without_a_cache(tmp_path):
    path = _file(tmp_path / "x.safetensors", b"abc")
    info = discovery.CheckpointInfo(path=path, name="x.safetensors")
    assert info.known_sha256() is None
    assert info.title == f"x.safetensors [{hashlib.sha256(b'abc').hexdigest()[:10]}]"
