"""Textual-inversion embeddings: A1111's file formats, the folder database, prompt lookup.

Every file is written here by hand in the layout A1111 (or diffusers, or an SDXL trainer)
writes, so reading is checked against the format, not against code of ours that writes it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from safetensors.torch import save_file

from sdtui.engine.prompt_chunks import prompt_token_count, tokenize_line
from sdtui.models.checkpoint_file import CheckpointError
from sdtui.models.embedding_db import EmbeddingDatabase, EmbeddingSet, misfit
from sdtui.models.embedding_images import lcg_stream
from sdtui.models.embeddings import Embedding, load_embedding
from sdtui.models.tokenizer import BOS_ID, EOS_ID, get_tokenizer

TOK = get_tokenizer()
A, B = TOK.encode("a")[0], TOK.encode("b")[0]
SD1 = {"text_encoder": 32}
SDXL = {"text_encoder": 32, "text_encoder_2": 48}


def vectors(count: int, width: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(count, width, generator=torch.Generator().manual_seed(seed))


# -- writers in the formats' own layouts -----------------------------------------------------


def write_a1111_pt(path: Path, vec: torch.Tensor, **extra: Any) -> Path:
    """What A1111's `Embedding.save` writes."""
    data = {
        "string_to_token": {"*": 265},
        "string_to_param": {"*": vec.clone().requires_grad_(True)},
        "name": extra.get("name", path.stem),
        "step": extra.get("step", 0),
        "sd_checkpoint": extra.get("sd_checkpoint"),
        "sd_checkpoint_name": extra.get("sd_checkpoint_name"),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(data, path)
    return path


def write_safetensors(path: Path, tensors: dict[str, torch.Tensor]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path))
    return path


def a1111_json(data: dict[str, Any]) -> bytes:
    """A1111's EmbeddingEncoder: tensors as {"TORCHTENSOR": nested lists}."""

    def tensor(obj: Any) -> Any:
        if isinstance(obj, torch.Tensor):
            return {"TORCHTENSOR": obj.tolist()}
        raise TypeError(type(obj))

    return json.dumps(data, default=tensor).encode()


def ti_data(vec: torch.Tensor, name: str) -> dict[str, Any]:
    return {"string_to_param": {"*": vec}, "name": name, "step": 7, "sd_checkpoint": None}


def picture(width: int = 20, height: int = 12) -> Image.Image:
    return Image.new("RGB", (width, height), (200, 180, 90))


def write_text_chunk_png(path: Path, data: dict[str, Any]) -> Path:
    info = PngInfo()
    info.add_text("sd-ti-embedding", base64.b64encode(a1111_json(data)).decode())
    picture().save(path, pnginfo=info)
    return path


def python_lcg(count: int) -> list[int]:
    seed, out = 0, []
    for _ in range(count):
        seed = (1664525 * seed + 1013904223) % 2**32
        out.append(seed % 255)
    return out


def write_pixel_png(path: Path, data: dict[str, Any], image: Image.Image) -> Path:
    """A1111's `insert_image_data_embed`: zlib(JSON) nibbles in blocks [h, -1, 3] left and
    right of the picture, XORed with the LCG's low nibbles; the decoration only touches the
    high nibble (a constant here instead of A1111's dots)."""
    raw = np.frombuffer(zlib.compress(a1111_json(data), 9), np.uint8)
    height = image.height
    size = len(raw) + (height - len(raw) % height)
    size += height * 3 - size % (height * 3)

    def block(nibbles: np.ndarray) -> Image.Image:
        laid = np.resize(nibbles, size).reshape(height, -1, 3)
        noise = np.array(python_lcg(laid.size), np.uint8).reshape(laid.shape) & 0x0F
        return Image.fromarray((laid ^ noise) | 0x50, mode="RGB")

    low, high = block(raw & 0x0F), block(raw >> 4)
    canvas = Image.new("RGB", (image.width + low.width + high.width + 2, height))
    canvas.paste(low, (0, 0))
    canvas.paste(image, (low.width + 1, 0))
    canvas.paste(high, (low.width + 1 + image.width + 1, 0))
    canvas.save(path)
    return path


# -- file formats ----------------------------------------------------------------------------


def test_a1111_pt_round_trip(tmp_path: Path) -> None:
    vec = vectors(3, 32)
    path = write_a1111_pt(
        tmp_path / "MyStyle.pt",
        vec,
        name="trained-as-other",
        step=1500,
        sd_checkpoint="abcd1234",
        sd_checkpoint_name="v1-5",
    )
    embedding = load_embedding(path)
    assert embedding is not None
    assert embedding.name == "MyStyle"  # the file stem, case kept, not the stored name
    assert embedding.vectors == 3 and embedding.width == 32 and not embedding.is_sdxl
    assert torch.equal(embedding.vectors_for("text_encoder", 32), vec)
    assert (embedding.step, embedding.checkpoint_hash, embedding.checkpoint_name) == (
        1500,
        "abcd1234",
        "v1-5",
    )


def test_original_textual_inversion_parameter_dict(tmp_path: Path) -> None:
    vec = vectors(2, 32)
    params = torch.nn.ParameterDict({"*": torch.nn.Parameter(vec.clone())})
    torch.save({"string_to_token": {"*": 265}, "string_to_param": params}, tmp_path / "old.pt")
    embedding = load_embedding(tmp_path / "old.pt")
    assert embedding is not None and torch.equal(embedding.parts["*"], vec)


def test_diffusers_concept_bin_is_one_vector(tmp_path: Path) -> None:
    vec = vectors(1, 32)[0]
    torch.save({"<cat-toy>": vec}, tmp_path / "cat-toy.bin")
    embedding = load_embedding(tmp_path / "cat-toy.bin")
    assert embedding is not None and embedding.name == "cat-toy" and embedding.vectors == 1
    assert torch.equal(embedding.vectors_for("text_encoder", 32), vec[None])


def test_safetensors_emb_params(tmp_path: Path) -> None:
    vec = vectors(4, 32).half()
    path = write_safetensors(tmp_path / "neg.safetensors", {"emb_params": vec})
    embedding = load_embedding(path)
    assert embedding is not None and embedding.vectors == 4
    assert embedding.parts["*"].dtype == torch.float32
    assert torch.equal(embedding.parts["*"], vec.float())


def test_sdxl_safetensors_vectors_go_to_their_encoders(tmp_path: Path) -> None:
    clip_l, clip_g = vectors(2, 32, 1), vectors(2, 48, 2)
    path = write_safetensors(tmp_path / "xl.safetensors", {"clip_l": clip_l, "clip_g": clip_g})
    embedding = load_embedding(path)
    assert embedding is not None and embedding.is_sdxl and embedding.vectors == 2
    assert embedding.width == 80
    assert torch.equal(embedding.vectors_for("text_encoder", 32), clip_l)
    assert torch.equal(embedding.vectors_for("text_encoder_2", 48), clip_g)
    with pytest.raises(ValueError, match="no vectors for text_encoder of width 48"):
        embedding.vectors_for("text_encoder", 48)


def test_png_text_chunk(tmp_path: Path) -> None:
    vec = vectors(2, 32)
    embedding = load_embedding(write_text_chunk_png(tmp_path / "card.png", ti_data(vec, "inner")))
    assert embedding is not None
    assert embedding.name == "inner"  # images take the name stored inside (A1111)
    assert embedding.step == 7 and torch.allclose(embedding.parts["*"], vec)


def test_lcg_matches_a1111_reference() -> None:
    # the first values and the sum of the next 100000, from A1111's image_embedding.py test
    reference = [253, 242, 127, 44, 157, 27, 239, 133, 38, 79, 167, 4, 177, 95, 130, 79, 78, 14]
    stream = lcg_stream(100_100)
    assert stream[: len(reference)].tolist() == reference
    assert int(stream[100:].astype(np.int64).sum()) == 12731374
    assert stream[:5000].tolist() == python_lcg(5000)


def test_png_pixels_embedding(tmp_path: Path) -> None:
    vec = vectors(3, 32)
    path = write_pixel_png(tmp_path / "hidden.png", ti_data(vec, "hidden-name"), picture(24, 16))
    embedding = load_embedding(path)
    assert embedding is not None and embedding.name == "hidden-name"
    assert torch.allclose(embedding.parts["*"], vec)


def test_pictures_without_embeddings_are_not_embeddings(tmp_path: Path) -> None:
    picture().save(tmp_path / "style.png")
    write_text_chunk_png(tmp_path / "style.preview.png", ti_data(vectors(1, 32), "x"))
    assert load_embedding(tmp_path / "style.png") is None
    assert load_embedding(tmp_path / "style.preview.png") is None


def test_pickled_code_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self) -> Any:
            return (os.mkdir, (str(marker),))

    torch.save({"string_to_param": {"*": Payload()}}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="refused to run code"):
        load_embedding(tmp_path / "evil.pt")
    assert not marker.exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"string_to_param": {"*": vectors(1, 8), "#": vectors(1, 8)}}, "has 2 terms"),
        ({"a": vectors(1, 8), "b": vectors(1, 8)}, "has 2 entries"),
        ({"clip_l": vectors(1, 8), "clip_g": vectors(2, 8)}, "different vector counts"),
        ({"emb_params": vectors(76, 8)}, "at most 75"),
        ({"emb_params": torch.zeros(2, 2, 2)}, "not \\[vectors, width\\]"),
    ],
)
def test_not_an_embedding_is_explained(tmp_path: Path, data: dict, message: str) -> None:
    torch.save(data, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match=message):
        load_embedding(tmp_path / "bad.pt")


# -- the database ----------------------------------------------------------------------------


def test_folder_loads_recursively_skips_misfits_and_reports_broken_files(tmp_path: Path) -> None:
    write_a1111_pt(tmp_path / "good.pt", vectors(1, 32))
    write_a1111_pt(tmp_path / "sub" / "deeper" / "nested.pt", vectors(2, 32))
    write_a1111_pt(tmp_path / "wide.pt", vectors(1, 48))  # an SD2-style width here
    write_safetensors(
        tmp_path / "xl.safetensors", {"clip_l": vectors(1, 32), "clip_g": vectors(1, 48)}
    )
    (tmp_path / "broken.pt").write_bytes(b"PK\x03\x04 not really a zip")
    (tmp_path / "truncated.safetensors").write_bytes(b"\xff" * 12)
    (tmp_path / "empty.pt").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not an embedding")
    picture().save(tmp_path / "good.png")  # a preview picture beside it

    database = EmbeddingDatabase(tmp_path)
    sd1 = database.for_widths(SD1)
    assert sorted(sd1.loaded) == ["good", "nested"]
    assert {s.name: s.reason for s in sd1.skipped} == {
        "wide": "made for width 48; the model needs width 32",
        "xl": "made for clip_l 32 + clip_g 48 (SDXL); the model needs width 32",
    }
    assert sorted(p.path.name for p in sd1.problems) == ["broken.pt", "truncated.safetensors"]
    assert all(p.path.name in p.message for p in sd1.problems)

    sdxl = database.for_widths(SDXL)
    assert list(sdxl.loaded) == ["xl"]
    assert {s.name for s in sdxl.skipped} == {"good", "nested", "wide"}


def test_misfit_reasons_name_the_families() -> None:
    sd1 = Embedding("e", {"*": vectors(1, 768)})
    assert misfit(sd1, {"text_encoder": 768}) is None
    assert misfit(sd1, {"text_encoder": 1024}) == (
        "made for width 768 (SD1); the model needs width 1024 (SD2)"
    )
    assert "clip_l 768 + clip_g 1280 (SDXL)" in str(
        misfit(sd1, {"text_encoder": 768, "text_encoder_2": 1280})
    )


def test_reloads_only_changed_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sdtui.models.embedding_db as db_module

    reads: list[str] = []
    real = db_module.load_embedding
    monkeypatch.setattr(db_module, "load_embedding", lambda p: reads.append(p.name) or real(p))
    first = write_a1111_pt(tmp_path / "one.pt", vectors(1, 32, 1))
    write_a1111_pt(tmp_path / "two.pt", vectors(1, 32, 2))
    database = EmbeddingDatabase(tmp_path)
    before = database.for_widths(SD1)
    assert sorted(reads) == ["one.pt", "two.pt"]
    assert database.for_widths(SD1) is before and len(reads) == 2  # nothing changed

    write_a1111_pt(first, vectors(2, 32, 3))
    stat = first.stat()
    os.utime(first, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    (tmp_path / "two.pt").unlink()
    write_a1111_pt(tmp_path / "three.pt", vectors(1, 32, 4))
    after = database.for_widths(SD1)
    assert reads[2:] == ["one.pt", "three.pt"]
    assert sorted(after.loaded) == ["one", "three"]
    assert torch.equal(after.loaded["one"].parts["*"], vectors(2, 32, 3))


def test_same_name_twice_first_found_wins(tmp_path: Path) -> None:
    write_a1111_pt(tmp_path / "dup.pt", vectors(1, 32, 1))
    write_a1111_pt(tmp_path / "sub" / "dup.pt", vectors(1, 32, 2))
    embeddings = EmbeddingDatabase(tmp_path).for_widths(SD1)
    assert embeddings.loaded["dup"].path == tmp_path / "dup.pt"
    (skipped,) = embeddings.skipped
    assert skipped.path == tmp_path / "sub" / "dup.pt" and "same name" in skipped.reason


def ids(text: str) -> list[int]:
    return TOK.encode(text)


def test_lookup_prefers_the_longest_name() -> None:
    cat, cat_toy = (
        Embedding("cat", {"*": vectors(1, 32)}),
        Embedding("cat toy", {"*": vectors(2, 32)}),
    )
    lookup = EmbeddingSet([cat, cat_toy])
    tokens = ids("a cat toy")
    assert lookup.find_at(tokens, 1) == (cat_toy, 2)
    assert lookup.find_at(ids("a cat b"), 1) == (cat, 1)
    assert lookup.find_at(tokens, 0) is None and lookup.find_at(tokens, 2) is None
    # the CLIP tokenizer lower-cases, so names match whatever the case (as in A1111)
    assert lookup.find_at(ids("CAT"), 0) == (cat, 1)


def test_multi_vector_embedding_takes_its_slots_and_counts() -> None:
    style = Embedding("mystyle", {"*": vectors(3, 32)})
    lookup = EmbeddingSet([style])
    line = tokenize_line("a mystyle b", embeddings=lookup)
    (chunk,) = line.chunks
    assert chunk.tokens[:7] == [BOS_ID, A, 0, 0, 0, B, EOS_ID]
    assert [(fix.offset, fix.embedding) for fix in chunk.fixes] == [(1, style)]
    assert line.token_count == 5
    assert prompt_token_count("a mystyle b", embeddings=lookup) == (5, 75)
    assert prompt_token_count("a mystyle b") == (len(ids("a mystyle b")), 75)
    # 73 tokens leave no room for 3 vectors: the chunk closes, the embedding starts the next
    line = tokenize_line("a " * 73 + "mystyle", embeddings=lookup)
    assert [len(c.fixes) for c in line.chunks] == [0, 1]
    assert line.chunks[0].tokens[74:] == [EOS_ID, EOS_ID, EOS_ID]
    assert line.chunks[1].fixes[0].offset == 0 and line.token_count == 75 + 3


def test_ti_hashes_are_sha256_of_the_file(tmp_path: Path) -> None:
    one = write_a1111_pt(tmp_path / "one.pt", vectors(1, 32, 1))
    odd = write_a1111_pt(tmp_path / "we:ird,name.pt", vectors(1, 32, 2))
    embeddings = EmbeddingDatabase(tmp_path).for_widths(SD1)
    used = embeddings.tracked()
    tokenize_line("we:ird,name and one, one", embeddings=used)
    assert list(used.used) == ["we:ird,name", "one"]

    def short(path: Path) -> str:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:12]

    assert used.infotext() == {"TI hashes": f"weirdname: {short(odd)}, one: {short(one)}"}
    assert embeddings.tracked().infotext() == {}
