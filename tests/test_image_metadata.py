"""Parameters in image files: round trips per format, A1111's encodings, atomic writes."""

from __future__ import annotations

import pytest
from PIL import Image, PngImagePlugin

from sdtui.params.image_metadata import (
    decode_user_comment,
    encode_user_comment,
    read_image_metadata,
    save_image,
)

INFOTEXT = 'a cat, "quoted"\nNegative prompt: dog\nSteps: 20, Sampler: Euler a, Seed: 1, ü ✓'


def image() -> Image.Image:
    return Image.linear_gradient("L").convert("RGB").resize((64, 64))


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".jpeg", ".webp", ".gif"])
def test_infotext_round_trip(tmp_path, suffix: str) -> None:
    path = save_image(image(), tmp_path / f"out{suffix}", infotext=INFOTEXT)
    assert read_image_metadata(path).infotext == INFOTEXT
    assert not list(tmp_path.glob(".*.tmp"))


def test_png_keeps_json_and_other_chunks(tmp_path) -> None:
    path = save_image(
        image(),
        tmp_path / "x.png",
        infotext="p\nSteps: 1, Seed: 2, CFG scale: 3",
        params={"seed": 2, "prompt": "p"},
        extra_text={"extras": "Postprocess upscale by: 4"},
    )
    metadata = read_image_metadata(path)
    assert metadata.params == {"seed": 2, "prompt": "p"}
    assert metadata.items == {"extras": "Postprocess upscale by: 4"}


def test_reads_a1111_style_png_written_by_pillow(tmp_path) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", INFOTEXT)
    image().save(tmp_path / "a1111.png", pnginfo=info)
    assert read_image_metadata(tmp_path / "a1111.png").infotext == INFOTEXT


def test_user_comment_encoding_is_piexifs_unicode() -> None:
    encoded = encode_user_comment("hé")
    assert encoded == b"UNICODE\x00\x00h\x00\xe9"
    assert decode_user_comment(encoded) == "hé"
    assert decode_user_comment(b"ASCII\x00\x00\x00plain") == "plain"


def test_failed_save_leaves_nothing(tmp_path) -> None:
    target = tmp_path / "keep.png"
    target.write_bytes(b"old contents")

    class Broken(Image.Image):
        def save(self, *args, **kwargs):
            with open(args[0], "wb") as f:
                f.write(b"half")
            raise OSError("disk full")

    broken = image()
    broken.__class__ = Broken
    with pytest.raises(OSError, match="disk full"):
        save_image(broken, target, infotext="x")
    assert target.read_bytes() == b"old contents"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.png"]


def test_bad_inputs_have_clear_messages(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"unknown image format; known: \.png"):
        save_image(image(), tmp_path / "x.bmpx")
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(ValueError, match="not a readable image"):
        read_image_metadata(tmp_path / "text.png")
