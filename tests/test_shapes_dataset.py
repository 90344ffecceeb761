"""The shapes dataset: deterministic, captions that say what the pixels show, held-out pairs
kept out of training, varied phrasing; and the pixel measurement the evaluation relies on."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest

from sdtui.training.measure import measure
from sdtui.training.shapes_dataset import (
    HELD_OUT_PAIRS,
    ShapeSpec,
    canonical_caption,
    colour_shape_pairs,
    make_sample,
)

# An independent oracle: CSS colours as anchors (not the dataset's table), words parsed
# back from the caption by hand-written rules.
ANCHORS = {
    "red": (255, 0, 0),
    "green": (0, 128, 0),
    "blue": (0, 0, 255),
    "yellow": (255, 255, 0),
    "white": (255, 255, 255),
    "black": (0, 0, 0),
    "orange": (255, 165, 0),
    "purple": (128, 0, 128),
}
SHAPE_WORDS = ("circle", "square", "triangle")


def anchor_name(rgb: np.ndarray) -> str:
    def distance(name: str) -> int:
        return sum((int(a) - b) ** 2 for a, b in zip(rgb, ANCHORS[name], strict=True))

    return min(ANCHORS, key=distance)


def parse_caption(text: str) -> dict[str, str]:
    words = re.findall(r"[a-z]+", text.lower())
    (shape,) = [w for w in words if w in SHAPE_WORDS]
    shape_colour = words[words.index(shape) - 1]
    colours = [w for w in words if w in ANCHORS]
    assert len(colours) == 2 and shape_colour in colours, text
    background = next(c for c in colours if c != shape_colour)
    sizes = {"small": "small", "little": "small", "large": "large", "big": "large"}
    (size,) = [sizes[w] for w in words if w in sizes]
    row = 0 if "top" in words else 2 if "bottom" in words else 1
    column = 0 if "left" in words else 2 if "right" in words else 1
    if row == 1 and column == 1:
        assert {"centre", "center", "middle"} & set(words), text
    return {
        "shape": shape,
        "colour": shape_colour,
        "background": background,
        "size": size,
        "cell": f"{column},{row}",
    }


def test_same_seed_same_sample_other_seed_other_sample() -> None:
    first = [make_sample(3, i) for i in range(5)]
    again = [make_sample(3, i) for i in range(5)]
    other = [make_sample(4, i) for i in range(5)]
    for a, b in zip(first, again, strict=True):
        assert a.caption == b.caption and a.spec == b.spec
        assert a.image.tobytes() == b.image.tobytes()
    assert [s.caption for s in first] != [s.caption for s in other]


@pytest.mark.parametrize("seed", [0, 1])
def test_captions_say_what_the_pixels_show(seed: int) -> None:
    for index in range(120):
        sample = make_sample(seed, index, "all")
        said = parse_caption(sample.caption)
        spec = sample.spec
        assert (said["shape"], said["colour"], said["background"], said["size"]) == (
            spec.shape,
            spec.colour,
            spec.background,
            spec.size,
        ), sample.caption
        pixels = np.asarray(sample.image)
        x, y = sample.centre
        column, row = int(3 * x / pixels.shape[1]), int(3 * y / pixels.shape[0])
        assert said["cell"] == f"{column},{row}", sample.caption
        assert anchor_name(pixels[int(y), int(x)]) == said["colour"], sample.caption
        assert anchor_name(pixels[0, 0]) == said["background"], sample.caption
        assert anchor_name(pixels[-1, -1]) == said["background"], sample.caption


def test_canonical_caption_reads_as_the_issue_writes_it() -> None:
    spec = ShapeSpec("circle", "red", "blue", "top left", "small")
    assert canonical_caption(spec) == "a small red circle on a blue background, top left"
    assert parse_caption(canonical_caption(spec))["cell"] == "0,0"


def test_phrasing_varies() -> None:
    captions = [make_sample(0, i).caption for i in range(300)]
    positions = ["top", "bottom", "left", "right", "centre", "center", "middle"]
    words = "|".join(["small", "little", "large", "big", *ANCHORS, *SHAPE_WORDS, *positions])
    forms = Counter(re.sub(rf"\b({words})\b", "X", caption) for caption in captions)
    assert len(forms) >= 8
    assert any(c.startswith("a small") or c.startswith("a large") for c in captions)
    assert any("background with" in c for c in captions)
    assert not [c for c in captions if re.search(r"\ba orange\b", c)]  # "an orange"
    spec = ShapeSpec("circle", "orange", "orange", "centre", "large")
    assert "an orange background" in canonical_caption(spec)


def test_held_out_pairs_never_appear_in_training() -> None:
    assert len(HELD_OUT_PAIRS) >= 3
    train = {make_sample(0, i, "train").spec.pair for i in range(500)}
    assert not train & HELD_OUT_PAIRS
    assert len(train) == 24 - len(HELD_OUT_PAIRS)  # every other pair does appear
    held_out = {make_sample(0, i, "held_out").spec.pair for i in range(100)}
    assert held_out == HELD_OUT_PAIRS
    assert set(colour_shape_pairs("train")) | HELD_OUT_PAIRS == set(colour_shape_pairs("all"))


def test_every_attribute_value_is_drawn_and_backgrounds_differ() -> None:
    specs = [make_sample(2, i, "all").spec for i in range(300)]
    assert {s.shape for s in specs} == set(SHAPE_WORDS)
    assert {s.colour for s in specs} == set(ANCHORS) == {s.background for s in specs}
    assert len({s.position for s in specs}) == 9 and {s.size for s in specs} == {"small", "large"}
    assert all(s.colour != s.background for s in specs)


def test_measure_reads_every_attribute_of_clean_images() -> None:
    for index in range(30):
        sample = make_sample(7, index, "all")
        assert all(measure(sample.image).matches(sample.spec).values()), sample.spec


def test_measure_sees_no_shape_in_a_flat_image_and_moved_shapes() -> None:
    from PIL import Image

    flat = measure(Image.new("RGB", (128, 128), (250, 250, 250)))
    assert flat.background == "white" and flat.colour is None and flat.position is None
    spec = ShapeSpec("square", "black", "yellow", "bottom right", "large")
    moved = make_sample(0, 0, spec=spec)
    found = measure(moved.image)
    assert (found.colour, found.background, found.position) == ("black", "yellow", "bottom right")
    assert found.centroid[0] > 85 and found.centroid[1] > 85
