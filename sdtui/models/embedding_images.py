"""Textual-inversion embeddings carried inside images, in A1111's two layouts.

    data = read_image_embedding(Path("embeddings/style.png"))   # dict, or None: no embedding

A1111 (`textual_inversion/image_embedding.py`) writes an embedding's data dict (the same
dict as its `.pt` files: `string_to_param`, `name`, `step`, ...) into images two ways:

* a PNG text chunk `sd-ti-embedding` holding base64 of JSON, where every tensor is written as
  `{"TORCHTENSOR": nested lists}`;
* in the pixels: the JSON, zlib-compressed, split into low and high nibbles; each nibble
  block is laid out [height, columns, 3] and XORed with the low nibble of a fixed LCG stream
  (seed 0, a=1664525, c=1013904223, m=2**32, each value mod 255); the low block sits left of
  the picture and the high block right of it, each behind one black column. The high nibble
  of those pixels only carries decoration. Reading crops black borders, finds the black
  columns in the low nibbles, and undoes the XOR.

An image with neither is a preview picture, not an embedding: None. JSON and zlib are data
formats; nothing in the file is executed.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

TEXT_KEY = "sd-ti-embedding"
TENSOR_KEY = "TORCHTENSOR"
IMAGE_EXTENSIONS = (".png", ".webp", ".jxl", ".avif")
MAX_JSON_BYTES = 256 * 1024 * 1024  # far above any embedding; stops decompression bombs

LCG_A, LCG_C, LCG_M = 1664525, 1013904223, 2**32


class ImageEmbeddingError(ValueError):
    """An image that carries an embedding which cannot be decoded."""


def _tensor_hook(value: dict[str, Any]) -> Any:
    if TENSOR_KEY in value:
        try:
            return torch.tensor(np.array(value[TENSOR_KEY], dtype=np.float64))
        except (TypeError, ValueError) as exc:
            raise ImageEmbeddingError(f"bad tensor in the embedded data ({exc})") from None
    return value


def _parse_json(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw, object_hook=_tensor_hook)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ImageEmbeddingError(f"the embedded data is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ImageEmbeddingError("the embedded data is not a JSON object")
    return data


def decode_text_chunk(value: str | bytes) -> dict[str, Any]:
    """The data dict of an `sd-ti-embedding` text chunk (base64 of JSON)."""
    try:
        raw = base64.b64decode(value, validate=False)
    except (binascii.Error, ValueError) as exc:
        raise ImageEmbeddingError(f"the {TEXT_KEY} text is not base64 ({exc})") from None
    return _parse_json(raw)


def lcg_stream(count: int) -> np.ndarray:
    """The first `count` values of A1111's LCG (uint8, each in 0..254), computed by doubling:
    the states after k steps are an affine map of the states before."""
    states = np.array([LCG_C], dtype=np.uint64)  # state after one step from seed 0
    mul, add = LCG_A, LCG_C  # the map for len(states) steps
    while len(states) < count:
        # mul, states < 2**32: products and sums stay below 2**64
        more = (states * np.uint64(mul) + np.uint64(add)) & np.uint64(LCG_M - 1)
        states = np.concatenate([states, more])
        mul, add = (mul * mul) % LCG_M, (mul * add + add) % LCG_M
    return (states[:count] % np.uint64(255)).astype(np.uint8)


def _unxor(block: np.ndarray) -> np.ndarray:
    noise = lcg_stream(block.size).reshape(block.shape) & 0x0F
    return np.bitwise_xor(block, noise)


def _crop_black(pixels: np.ndarray) -> np.ndarray:
    """The pixels without black borders (A1111's `crop_black`, tolerance 0)."""
    lit = (pixels > 0).all(axis=2)
    columns, rows = lit.any(axis=0), lit.any(axis=1)
    left, right = int(columns.argmax()), lit.shape[1] - int(columns[::-1].argmax())
    top, bottom = int(rows.argmax()), lit.shape[0] - int(rows[::-1].argmax())
    return pixels[top:bottom, left:right]


def _zlib_header(first: int, second: int) -> bool:
    return first & 0x0F == 8 and (first << 8 | second) % 31 == 0


def _inflate(data: bytes) -> bytes:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, MAX_JSON_BYTES)
    except zlib.error as exc:
        raise ImageEmbeddingError(f"the data hidden in the pixels is corrupt ({exc})") from None
    if inflater.unconsumed_tail:
        raise ImageEmbeddingError("the data hidden in the pixels is too large")
    if not inflater.eof:
        raise ImageEmbeddingError("the data hidden in the pixels is truncated")
    return out


def decode_pixels(image: Image.Image) -> dict[str, Any] | None:
    """The data dict hidden in an image's pixels, or None when there is none."""
    pixels = np.asarray(image.convert("RGB"), dtype=np.uint8)
    low = _crop_black(pixels) & 0x0F
    black = np.flatnonzero(low.sum(axis=(0, 2), dtype=np.int64) == 0)
    if len(black) < 2:
        return None
    lower, upper = low[:, : black.min()], low[:, black.max() + 1 :]
    if lower.shape != upper.shape or lower.size == 0:
        return None
    # check the zlib header from the first two bytes before undoing the XOR everywhere
    head = lcg_stream(2) & 0x0F
    first_two = ((upper.reshape(-1)[:2] ^ head) << 4) | (lower.reshape(-1)[:2] ^ head)
    if len(first_two) < 2 or not _zlib_header(int(first_two[0]), int(first_two[1])):
        return None
    data = (_unxor(upper) << 4) | _unxor(lower)
    return _parse_json(_inflate(data.reshape(-1).tobytes()))


def read_image_embedding(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The embedding data dict an image carries (text chunk first, then pixels), or None."""
    try:
        with Image.open(Path(path)) as image:
            text = getattr(image, "text", None) or {}
            if TEXT_KEY in text:
                return decode_text_chunk(text[TEXT_KEY])
            return decode_pixels(image)
    except (OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ImageEmbeddingError(f"cannot read the image ({exc})") from None
