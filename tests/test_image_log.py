"""The Save / Zip buttons' files, the picker's name listing and failure advice, without the UI."""

from __future__ import annotations

import csv
import datetime as dt

from sdtui.services.failure_advice import error_type, failure_advice
from sdtui.services.image_log import ImageRecord, save_images, zip_images, zip_name
from sdtui.services.network_names import (
    embedding_names,
    lora_completion,
    lora_names,
    lora_tag,
    matching,
)
from sdtui.services.outputs import OutputNaming

INFOTEXT = (
    "a cat, (sky:1.2)\nNegative prompt: ugly\n"
    "Steps: 20, Sampler: Euler a, Schedule type: Karras, CFG scale: 4.5, Seed: 42, "
    "Size: 512x768, Model hash: 0123456789, Model: v1-5, Version: sdtui"
)


def record(tmp_path, name: str, seed: int, grid: bool = False) -> ImageRecord:
    path = tmp_path / "out" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"PNG bytes of " + name.encode())
    return ImageRecord(path, INFOTEXT.replace("Seed: 42", f"Seed: {seed}"), seed, grid)


def test_save_copies_and_appends_an_a1111_log_row(tmp_path) -> None:
    folder = tmp_path / "log" / "images"
    folder.mkdir(parents=True)
    # a log from an older A1111, before the model columns were added
    old = "prompt,seed,width,height,sampler,cfgs,steps,filename,negative_prompt\r\n"
    (folder / "log.csv").write_text(old + "old,1,512,512,Euler,7,20,00000-1.png,\r\n")
    (folder / "00000-1.png").write_bytes(b"old")
    copies = save_images([record(tmp_path, "x.png", 42)], folder, OutputNaming())
    assert [c.name for c in copies] == ["00001-42-a cat, (sky_1.2).png"]
    assert copies[0].read_bytes() == b"PNG bytes of x.png"
    with open(folder / "log.csv", encoding="utf-8", newline="") as file:
        rows = list(csv.reader(file))
    assert rows == [
        ["prompt", "seed", "width", "height", "sampler", "cfgs", "steps", "filename",
         "negative_prompt", "sd_model_name", "sd_model_hash"],
        ["old", "1", "512", "512", "Euler", "7", "20", "00000-1.png", "", "", ""],
        ["a cat, (sky:1.2)", "42", "512", "768", "Euler a", "4.5", "20",
         "00001-42-a cat, (sky_1.2).png", "ugly", "v1-5", "0123456789"],
    ]  # fmt: skip


def test_zip_holds_every_image_under_a1111s_name(tmp_path) -> None:
    images = [
        record(tmp_path, "a.png", 42),
        record(tmp_path, "b.png", 43),
        record(tmp_path, "grid.png", 42, grid=True),
    ]
    when = dt.datetime(2024, 7, 27, 12, 30, 5)
    assert zip_name(images, when) == "20240727123005_[v1-5]_42-43"
    archive = zip_images(images, tmp_path / "save", OutputNaming(), write_log=False, now=when)
    assert archive == tmp_path / "save" / "20240727123005_[v1-5]_42-43.zip"
    assert not (tmp_path / "save" / "log.csv").exists()


def test_listing_names_without_reading_files(data_dirs) -> None:
    for relative in ("b.safetensors", "sub/A.pt", "sub/b.ckpt", "b.preview.png", "notes.txt"):
        path = data_dirs.lora / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    (data_dirs.lora / "empty.safetensors").write_bytes(b"")
    (data_dirs.lora / ".hidden.safetensors").write_bytes(b"x")
    assert lora_names(data_dirs) == ["A", "b"]
    (data_dirs.embeddings / "Easy.pt").write_bytes(b"x")
    (data_dirs.embeddings / "card.png").write_bytes(b"x")
    (data_dirs.embeddings / "card.preview.png").write_bytes(b"x")
    assert embedding_names(data_dirs) == ["card", "Easy"]


def test_lora_completion_and_matching() -> None:
    assert lora_completion("a <lora:ad").partial == "ad"
    assert lora_completion("a <lora:ad").start == len("a <lora:")
    assert lora_completion("<lyco:").partial == ""
    assert lora_completion("a <lora:ad:1>") is None
    assert lora_completion("a <lora:ad:0.5") is None  # past the name: no completion
    found = matching(["grain_detail", "add_detail", "Detail"], "det")
    assert found == ["Detail", "grain_detail", "add_detail"]  # starts with, then contains
    assert lora_tag("x") == "<lora:x:1>" and lora_tag("x", 0.75) == "<lora:x:0.75>"


def test_failure_advice_says_what_to_do() -> None:
    assert error_type("CheckpointError: /m/x.safetensors: bad") == "CheckpointError"
    assert error_type("no type here") == ""
    advice = failure_advice("CheckpointError: /m/x.safetensors: truncated")
    assert advice.title == "Cannot read a model file"
    assert advice.text.startswith("/m/x.safetensors: truncated\nChoose another checkpoint")
    memory = failure_advice("OutOfMemoryError: CUDA out of memory", out_of_memory=True)
    assert memory.text.startswith("CUDA out of memory\nOut of memory. Lower the width")
    assert failure_advice("ZeroDivisionError: x").title == "Generation failed"
