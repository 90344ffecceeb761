"""A generated dataset of captioned images: one flat shape on a flat background.

    sample = make_sample(seed=0, index=17)           # deterministic from (seed, split, index)
    sample.image, sample.caption, sample.spec        # 128x128 RGB, "a small red circle on ..."
    canonical_caption(spec)            # "a small red circle on a blue background, top left"

Every image shows one shape (circle, square, triangle) in one of eight named colours, on a
background of another named colour, centred on a cell of a 3x3 grid (top left ... centre ...
bottom right), small or large, with a little jitter of position and size. Captions are plain
English with varied word order and phrasing ("a blue background with a little red circle in
the top left corner"); `canonical_caption` is the fixed phrasing the evaluation prompts with.

`HELD_OUT_PAIRS` (colour x shape) never appear in the "train" split: an evaluation on them
measures whether the model composes attributes it learnt apart. Shapes are drawn at twice the
size and box-filtered down, so edges are anti-aliased but flat regions keep the exact colour
of `COLOURS`, the table the evaluation classifies pixels with (nearest colour in RGB).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image, ImageDraw

RGB = tuple[int, int, int]
Split = Literal["train", "held_out", "all"]

COLOURS: dict[str, RGB] = {
    "red": (220, 30, 30),
    "green": (30, 160, 60),
    "blue": (30, 70, 220),
    "yellow": (245, 220, 40),
    "white": (245, 245, 245),
    "black": (15, 15, 15),
    "orange": (245, 140, 25),
    "purple": (135, 50, 175),
}
SHAPES = ("circle", "square", "triangle")
SIZES = ("small", "large")
# name -> (column, row) on the 3x3 grid
POSITIONS: dict[str, tuple[int, int]] = {
    "top left": (0, 0),
    "top": (1, 0),
    "top right": (2, 0),
    "left": (0, 1),
    "centre": (1, 1),
    "right": (2, 1),
    "bottom left": (0, 2),
    "bottom": (1, 2),
    "bottom right": (2, 2),
}
HELD_OUT_PAIRS: frozenset[tuple[str, str]] = frozenset(
    {("red", "triangle"), ("green", "square"), ("blue", "circle"), ("purple", "triangle")}
)
NATIVE_SIZE = 128
CELL_CENTRES = (0.2, 0.5, 0.8)  # fraction of the side: inside the thirds, shapes not cut
RADIUS = {"small": 0.075, "large": 0.13}  # fraction of the image side
POSITION_JITTER = 0.025  # fraction of the image side, each axis
RADIUS_JITTER = 0.1  # relative
SUPERSAMPLE = 2
CANONICAL_SHARE = 0.3  # share of training captions in the canonical phrasing

_SIZE_WORDS = {"small": ("small", "little"), "large": ("large", "big")}
_TEMPLATES = (
    "a {size} {colour} {shape} {where} on {a_background} background",
    "{place}: a {size} {colour} {shape} on {background}",
    "{a_background} background with a {size} {colour} {shape} {where}",
    "{size} {colour} {shape}, {background} background, {place}",
    "{a_colour} {shape}, {size}, {where}, on {a_background} background",
    "{where} of {a_background} background there is a {size} {colour} {shape}",
    "{background} background, {size} {colour} {shape} {where}",
)


@dataclass(frozen=True)
class ShapeSpec:
    """What one image shows (all names are keys of the tables above)."""

    shape: str
    colour: str
    background: str
    position: str
    size: str

    @property
    def pair(self) -> tuple[str, str]:
        return (self.colour, self.shape)

    def to_indices(self) -> tuple[int, int, int, int, int]:
        return (
            SHAPES.index(self.shape),
            list(COLOURS).index(self.colour),
            list(COLOURS).index(self.background),
            list(POSITIONS).index(self.position),
            SIZES.index(self.size),
        )

    @classmethod
    def from_indices(cls, indices: tuple[int, ...] | list[int]) -> ShapeSpec:
        shape, colour, background, position, size = (int(i) for i in indices)
        names = list(COLOURS)
        return cls(
            SHAPES[shape], names[colour], names[background], list(POSITIONS)[position], SIZES[size]
        )


@dataclass(frozen=True)
class Sample:
    image: Image.Image
    caption: str
    spec: ShapeSpec
    centre: tuple[float, float]  # pixels, (x, y)
    radius: float  # pixels


def colour_shape_pairs(split: Split = "all") -> list[tuple[str, str]]:
    """(colour, shape) pairs of a split, in table order."""
    pairs = [(colour, shape) for colour in COLOURS for shape in SHAPES]
    if split == "train":
        return [pair for pair in pairs if pair not in HELD_OUT_PAIRS]
    if split == "held_out":
        return [pair for pair in pairs if pair in HELD_OUT_PAIRS]
    if split == "all":
        return pairs
    raise ValueError(f"unknown split {split!r}; known: train, held_out, all")


def random_spec(rng: random.Random, split: Split = "train") -> ShapeSpec:
    colour, shape = rng.choice(colour_shape_pairs(split))
    background = rng.choice([name for name in COLOURS if name != colour])
    return ShapeSpec(shape, colour, background, rng.choice(list(POSITIONS)), rng.choice(SIZES))


def cell_centre(position: str, size: int = NATIVE_SIZE) -> tuple[float, float]:
    column, row = POSITIONS[position]
    return (size * CELL_CENTRES[column], size * CELL_CENTRES[row])


def shape_polygon(
    shape: str, centre: tuple[float, float], radius: float
) -> list[tuple[float, float]]:
    """Square and triangle corners (the triangle's centroid is `centre`)."""
    x, y = centre
    if shape == "square":
        half = 0.9 * radius
        return [
            (x - half, y - half),
            (x + half, y - half),
            (x + half, y + half),
            (x - half, y + half),
        ]
    if shape == "triangle":
        r = 1.2 * radius
        return [(x, y - r), (x + r * 0.866, y + r * 0.5), (x - r * 0.866, y + r * 0.5)]
    raise ValueError(f"{shape!r} is not a polygon")


def render(
    spec: ShapeSpec, centre: tuple[float, float], radius: float, size: int = NATIVE_SIZE
) -> Image.Image:
    big = size * SUPERSAMPLE
    image = Image.new("RGB", (big, big), COLOURS[spec.background])
    draw = ImageDraw.Draw(image)
    x, y, r = centre[0] * SUPERSAMPLE, centre[1] * SUPERSAMPLE, radius * SUPERSAMPLE
    colour = COLOURS[spec.colour]
    if spec.shape == "circle":
        draw.ellipse([x - r, y - r, x + r, y + r], fill=colour)
    else:
        draw.polygon(shape_polygon(spec.shape, (x, y), r), fill=colour)
    return image.resize((size, size), Image.Resampling.BOX)


def _where(position: str, rng: random.Random) -> str:
    """The position as an adverbial phrase ("in the top left corner", "on the left")."""
    if position == "centre":
        return rng.choice(("in the centre", "in the center", "in the middle"))
    if " " in position:
        return rng.choice((f"in the {position}", f"at the {position}", f"in the {position} corner"))
    if position in ("left", "right"):
        return rng.choice((f"on the {position}", f"at the {position}"))
    return f"at the {position}"


def _place(position: str, rng: random.Random) -> str:
    """The position as a bare name ("top left", "center")."""
    if position == "centre":
        return rng.choice(("centre", "center", "middle"))
    return position


def with_article(word: str) -> str:
    """ "a red", "an orange"."""
    return f"{'an' if word[0] in 'aeiou' else 'a'} {word}"


def canonical_caption(spec: ShapeSpec) -> str:
    thing = f"a {spec.size} {spec.colour} {spec.shape}"
    return f"{thing} on {with_article(spec.background)} background, {spec.position}"


def caption(spec: ShapeSpec, rng: random.Random) -> str:
    """A caption of `spec` in one of several phrasings (the canonical one 30% of the time)."""
    if rng.random() < CANONICAL_SHARE:
        return canonical_caption(spec)
    template = rng.choice(_TEMPLATES)
    return template.format(
        size=rng.choice(_SIZE_WORDS[spec.size]),
        colour=spec.colour,
        shape=spec.shape,
        background=spec.background,
        a_colour=with_article(spec.colour),
        a_background=with_article(spec.background),
        where=_where(spec.position, rng),
        place=_place(spec.position, rng),
    )


def position_caption(spec: ShapeSpec, rng: random.Random) -> str:
    """Only where the shape is, as a bare name ("top left") or a phrase ("in the top left")."""
    return rng.choice((_place, _where))(spec.position, rng)


def sample_rng(seed: int, index: int, split: Split, purpose: str = "image") -> random.Random:
    """A generator for one sample, independent of every other (string seeds hash with SHA-512,
    not Python's per-process hash)."""
    return random.Random(f"shapes:{purpose}:{seed}:{split}:{index}")


def layout(
    spec: ShapeSpec, rng: random.Random, size: int = NATIVE_SIZE
) -> tuple[tuple[float, float], float]:
    """The jittered centre and radius of a spec's shape."""
    x, y = cell_centre(spec.position, size)
    jitter = POSITION_JITTER * size
    centre = (x + rng.uniform(-jitter, jitter), y + rng.uniform(-jitter, jitter))
    radius = RADIUS[spec.size] * size * rng.uniform(1 - RADIUS_JITTER, 1 + RADIUS_JITTER)
    return centre, radius


def make_sample(
    seed: int,
    index: int,
    split: Split = "train",
    size: int = NATIVE_SIZE,
    spec: ShapeSpec | None = None,
) -> Sample:
    """Sample `index` of the dataset `seed` (a given `spec` fixes what it shows)."""
    rng = sample_rng(seed, index, split)
    spec = spec or random_spec(rng, split)
    centre, radius = layout(spec, rng, size)
    return Sample(render(spec, centre, radius, size), caption(spec, rng), spec, centre, radius)


def image_batch(
    seed: int, indices: range | list[int], split: Split = "train", size: int = NATIVE_SIZE
) -> np.ndarray:
    """uint8 [B, H, W, 3] images of samples `indices`."""
    return np.stack([np.asarray(make_sample(seed, i, split, size).image) for i in indices])


def nearest_colour(pixels: np.ndarray) -> np.ndarray:
    """Index into `COLOURS` of the nearest named colour (RGB distance) of each pixel [..., 3]."""
    table = np.array(list(COLOURS.values()), dtype=np.float32)
    distances = ((pixels[..., None, :].astype(np.float32) - table) ** 2).sum(-1)
    return distances.argmin(-1)


def position_at(x: float, y: float, size: int = NATIVE_SIZE) -> str:
    """The grid cell name of a point (pixels)."""
    column = min(2, max(0, int(3 * x / size)))
    row = min(2, max(0, int(3 * y / size)))
    return next(name for name, cell in POSITIONS.items() if cell == (column, row))
