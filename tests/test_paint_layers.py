"""The painting model: strokes at image resolution, undo, rectangles, eyedropper, exports.

Oracles: covered pixels come from a brute-force distance computation per pixel (math.hypot
against each segment), composites from PIL's alpha_composite and hand-worked values, undo from
byte-exact snapshots taken before each edit.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from sdtui.core.paint_brush import (
    BRUSH_SIZES,
    ColourError,
    hex_colour,
    parse_colour,
    segment_coverage,
    step_size,
)
from sdtui.core.paint_layers import MASK_OPACITY, MASK_TINT, PaintDocument

BASE = (10, 20, 30)


def distance_to_segment(px: float, py: float, a: tuple, b: tuple) -> float:
    """Brute force: the closest of the segment's end points and its perpendicular foot."""
    (ax, ay), (bx, by) = a, b
    best = min(math.hypot(px - ax, py - ay), math.hypot(px - bx, py - by))
    length2 = (bx - ax) ** 2 + (by - ay) ** 2
    if length2 > 0:
        t = ((px - ax) * (bx - ax) + (py - ay) * (by - ay)) / length2
        if 0 <= t <= 1:
            best = min(best, math.hypot(px - (ax + t * (bx - ax)), py - (ay + t * (by - ay))))
    return best


def expected_stroke(size: tuple[int, int], points: list, radius: float) -> tuple[set, set]:
    """(pixels within `radius`, those of them exactly at it) of a stroke, by brute force."""
    width, height = size
    segments = list(itertools.pairwise(points)) or [(points[0], points[0])]
    inside, edge = set(), set()
    for y in range(height):
        for x in range(width):
            distance = min(distance_to_segment(x, y, a, b) for a, b in segments)
            if distance <= radius + 1e-6:
                inside.add((x, y))
            if abs(distance - radius) <= 1e-6:
                edge.add((x, y))
    return inside, edge


def white(image: Image.Image) -> set:
    array = np.asarray(image)
    return {(int(x), int(y)) for y, x in zip(*np.nonzero(array == 255), strict=True)}


def document(size=(32, 24), mode="inpaint", **options) -> PaintDocument:
    return PaintDocument(Image.new("RGB", size, BASE), mode, **options)


def test_a_horizontal_stroke_covers_the_pixels_within_its_radius() -> None:
    doc = document(radius=2)
    assert doc.stroke([(0, 0), (20, 0)])
    inside, edge = expected_stroke(doc.size, [(0, 0), (20, 0)], 2)
    assert (2, 2) in edge and (22, 0) in edge  # exactly 2 away counts as covered
    assert white(doc.mask()) == inside
    # by hand: rows 0-2 of x 0..20 (63) plus the round cap's (21, 0), (21, 1), (22, 0)
    assert len(white(doc.mask())) == 66


@settings(deadline=None, max_examples=40)
@given(
    points=st.lists(
        st.tuples(st.floats(-5, 30, allow_nan=False), st.floats(-5, 25, allow_nan=False)),
        min_size=1,
        max_size=4,
    ),
    radius=st.floats(0.5, 6),
)
def test_strokes_join_their_points_with_thick_round_capped_lines(points, radius) -> None:
    doc = document(radius=radius)
    doc.stroke(points)
    inside, edge = expected_stroke(doc.size, points, radius)
    assert inside - edge <= white(doc.mask()) <= inside  # ties at the radius may go either way


def test_far_apart_points_are_joined_not_dotted() -> None:
    doc = document((64, 16), radius=1)
    doc.stroke([(2, 8), (60, 8)])
    assert {(x, 8) for x in range(1, 62)} <= white(doc.mask())


def test_segment_coverage_outside_the_image_is_none() -> None:
    assert segment_coverage((10, 10), (-20, -20), (-15, -20), 2) is None


def snapshot(doc: PaintDocument) -> tuple[bytes, bytes]:
    return doc._colour.tobytes(), doc._mask.tobytes()


def test_undo_restores_each_state_byte_exact_and_redo_reapplies() -> None:
    doc = document((48, 40), radius=3)
    states = [snapshot(doc)]
    doc.stroke([(5, 5), (30, 20)])
    states.append(snapshot(doc))
    doc.mode, doc.colour = "sketch", (200, 100, 0)
    doc.stroke([(40, 2), (10, 35), (12, 12)])
    states.append(snapshot(doc))
    doc.fill_rect((1, 30), (20, 38))
    states.append(snapshot(doc))
    doc.eraser = True
    doc.stroke([(0, 0), (47, 39)])
    states.append(snapshot(doc))
    doc.clear()
    states.append(snapshot(doc))
    assert all(a != b for a, b in itertools.pairwise(states))  # every edit changed something
    for state in reversed(states[:-1]):
        assert doc.undo()
        assert snapshot(doc) == state
    assert not doc.undo() and not doc.can_undo
    for state in states[1:]:
        assert doc.redo()
        assert snapshot(doc) == state
    assert not doc.redo()


def test_a_new_edit_drops_the_redo_steps() -> None:
    doc = document(radius=1)
    doc.stroke([(3, 3)])
    doc.undo()
    assert doc.can_redo
    doc.stroke([(9, 9)])
    assert not doc.can_redo


def test_undo_keeps_only_the_changed_box() -> None:
    doc = document((512, 512), radius=2)
    doc.stroke([(100, 200), (110, 200)])
    step = doc._undo[-1]
    assert step.box == (98, 198, 113, 203)  # x 98..112, y 198..202 by hand
    assert doc.undo_bytes == 15 * 5 * (4 + 1)  # RGBA colour + L mask
    doc.stroke([(100, 200), (110, 200)])  # the same again changes nothing: no step
    assert len(doc._undo) == 1


def test_undo_history_stays_within_its_budget() -> None:
    doc = document((64, 64), radius=4, max_undo_bytes=6000)
    for y in range(8, 64, 8):
        doc.stroke([(0, y), (63, y)])  # rows y-4..y+4, the first masked by the stroke before
    assert doc.undo_bytes == 2 * 64 * 8 * 5  # two steps of 64 x 8 changed pixels, 5 bytes each
    undone = 0
    while doc.undo():
        undone += 1
    assert undone == 2
    assert not doc.is_blank  # the oldest strokes can no longer be undone


def test_a_rectangle_masks_exactly_its_box() -> None:
    doc = document()
    assert doc.fill_rect((10.4, 7), (3, 4.2))  # corners in any order, rounded to pixels
    assert white(doc.mask()) == {(x, y) for x in range(3, 11) for y in range(4, 8)}
    doc.undo()
    doc.fill_rect((-5, 20), (2, 40))  # clipped to the image
    assert white(doc.mask()) == {(x, y) for x in range(0, 3) for y in range(20, 24)}
    assert not doc.fill_rect((40, 40), (50, 50))  # wholly outside


def test_the_eyedropper_picks_the_composited_colour() -> None:
    image = Image.new("RGB", (16, 16), BASE)
    image.putpixel((5, 6), (1, 2, 3))
    doc = PaintDocument(image, "sketch", radius=0.5, colour=(250, 0, 0))
    doc.stroke([(9, 9)])
    assert doc.pick((5.2, 5.8)) == (1, 2, 3) and doc.colour == (1, 2, 3)
    assert doc.pick((9, 9)) == (250, 0, 0)
    assert doc.pick((-3, 40)) == BASE  # clamped to the image


def test_the_sketch_composite_is_the_colour_layer_over_the_image() -> None:
    image = Image.effect_noise((40, 30), 60).convert("RGB")
    doc = PaintDocument(image, "sketch", radius=3, colour=(0, 200, 255))
    doc.stroke([(2, 2), (35, 25)])
    doc.colour = (255, 255, 0)
    doc.fill_rect((20, 2), (30, 8))
    layer = Image.fromarray(doc._colour)
    oracle = Image.alpha_composite(image.convert("RGBA"), layer).convert("RGB")
    assert doc.composite().tobytes() == oracle.tobytes()
    painted = np.asarray(layer)[..., 3] == 255
    expected = np.where(painted[..., None], np.asarray(layer)[..., :3], np.asarray(image))
    assert np.array_equal(np.asarray(doc.composite()), expected)
    assert np.array_equal(np.asarray(doc.mask()), np.zeros((30, 40)))  # sketch masks nothing


def test_inpaint_paints_the_mask_only_and_the_eraser_unmasks() -> None:
    doc = document(radius=2)
    doc.fill_rect((0, 0), (31, 23))
    doc.eraser = True
    doc.stroke([(16, 12)])
    inside, _ = expected_stroke(doc.size, [(16, 12)], 2)
    all_pixels = {(x, y) for x in range(32) for y in range(24)}
    assert white(doc.mask()) == all_pixels - inside
    assert doc.composite().tobytes() == Image.new("RGB", (32, 24), BASE).tobytes()


def test_the_preview_shows_the_mask_as_a_translucent_tint() -> None:
    doc = document(radius=1)
    doc.fill_rect((4, 4), (6, 6))
    preview = doc.preview()
    pairs = zip(BASE, MASK_TINT, strict=True)
    mixed = tuple(round(b * (1 - MASK_OPACITY) + t * MASK_OPACITY) for b, t in pairs)
    assert mixed == (132, 10, 142)  # by hand for the magenta tint at half opacity
    assert preview.getpixel((5, 5)) == mixed
    assert preview.getpixel((0, 0)) == BASE
    doc.undo()
    assert doc.preview().getpixel((5, 5)) == BASE  # only the changed box is redrawn


def test_inpaint_sketch_masks_the_changed_pixels_with_transparency() -> None:
    doc = document(mode="inpaint_sketch", radius=2, colour=(255, 0, 0))
    doc.stroke([(5, 5), (20, 5)])
    doc.colour = BASE  # painting the image's own colour changes nothing: not masked
    doc.fill_rect((0, 20), (31, 23))
    inside, _ = expected_stroke(doc.size, [(5, 5), (20, 5)], 2)
    assert white(doc.mask()) == inside
    image, mask = doc.inpaint_sketch_inputs(0)
    assert image.tobytes() == doc.composite().tobytes()
    doc.mask_transparency = 50
    image, mask = doc.inpaint_sketch_inputs(0)
    values = np.asarray(mask)
    assert set(np.unique(values)) in ({0, 127}, {0, 128})  # 255 dimmed by half
    red = np.asarray(image)[5, 10]
    assert abs(int(red[0]) - (10 + 245 / 2)) <= 1 and abs(int(red[1]) - 10) <= 1
    assert tuple(np.asarray(image)[15, 15]) == BASE
    doc.mask_transparency = 100
    assert not np.asarray(doc.inpaint_sketch_inputs(0)[1]).any()
    doc.mask_transparency = 0
    image, mask = doc.inpaint_sketch_inputs(2)  # blur: the image bleeds, the mask stays sharp
    assert np.asarray(mask)[8, 10] == 0 and np.asarray(image)[8, 10][0] > BASE[0]
    assert white(mask) == inside
    assert tuple(np.asarray(image)[15, 15]) == BASE


def test_clear_is_one_undoable_step() -> None:
    doc = document(mode="sketch", radius=2)
    assert not doc.clear()  # nothing to clear: no step
    doc.stroke([(3, 3), (9, 9)])
    doc.mode = "inpaint"
    doc.stroke([(20, 20)])
    before = snapshot(doc)
    assert doc.clear() and doc.is_blank
    assert doc.undo() and snapshot(doc) == before


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="inpaint_sketch"):
        document(mode="outpaint")


@pytest.mark.parametrize(
    ("text", "colour"),
    [
        ("#ff8000", (255, 128, 0)),
        ("FF8000", (255, 128, 0)),
        ("#f80", (255, 136, 0)),
        ("255, 128, 0", (255, 128, 0)),
        ("255 128 0", (255, 128, 0)),
        ("rgb(1,2,3)", (1, 2, 3)),
        ("  #000000 ", (0, 0, 0)),
    ],
)
def test_colours_parse(text, colour) -> None:
    assert parse_colour(text) == colour


@pytest.mark.parametrize("text", ["", "red", "#ff80", "#gg0000", "1,2", "256,0,0", "1,2,3,4"])
def test_bad_colours_say_what_is_accepted(text) -> None:
    with pytest.raises(ColourError, match="0-255"):
        parse_colour(text)


def test_hex_colour_and_brush_steps() -> None:
    assert hex_colour((255, 128, 0)) == "#ff8000"
    assert step_size(8, 1) == 10 and step_size(8, -1) == 6
    assert step_size(7, 1) == 8 and step_size(7, -1) == 6  # off the list: the neighbours
    assert step_size(BRUSH_SIZES[-1], 1) == BRUSH_SIZES[-1]
    assert step_size(1, -1) == 1
