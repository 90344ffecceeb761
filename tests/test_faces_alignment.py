"""Face alignment: the least-squares similarity transform, the warp to the 512 x 512
template and the feathered paste back, against analytic expectations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from sdtui.faces.alignment import (
    FFHQ_TEMPLATE_512,
    apply_transform,
    face_mask,
    invert_transform,
    paste_face,
    similarity_transform,
    template_points,
    warp_face,
)


def similarity(angle: float, scale: float, tx: float, ty: float) -> np.ndarray:
    cos, sin = math.cos(angle) * scale, math.sin(angle) * scale
    return np.array([[cos, -sin, tx], [sin, cos, ty]])


def smooth_image(size: int) -> Image.Image:
    """Low-frequency colours: bicubic resampling reproduces them closely."""
    y, x = np.mgrid[0:size, 0:size] / size
    channels = [
        0.5 + 0.4 * np.sin(2 * np.pi * x),
        0.5 + 0.4 * np.cos(2 * np.pi * y),
        0.5 + 0.4 * np.sin(2 * np.pi * (x + y) / 2),
    ]
    return Image.fromarray((np.stack(channels, -1) * 255).round().astype(np.uint8))


def test_the_template_onto_itself_is_the_identity() -> None:
    matrix = similarity_transform(FFHQ_TEMPLATE_512, FFHQ_TEMPLATE_512)
    np.testing.assert_allclose(matrix, [[1, 0, 0], [0, 1, 0]], atol=1e-9)


def test_the_template_is_facexlibs_shifted_to_pixel_centres() -> None:
    np.testing.assert_allclose(template_points()[0], [193.48138, 240.44708])
    np.testing.assert_allclose(template_points(256)[4], [(313.08905 + 0.5) / 2, 185.82559])


@settings(deadline=None, max_examples=50)
@given(
    angle=st.floats(-math.pi + 0.01, math.pi - 0.01),
    scale=st.floats(0.05, 20),
    tx=st.floats(-1000, 1000),
    ty=st.floats(-1000, 1000),
)
def test_a_known_similarity_is_recovered(angle: float, scale: float, tx: float, ty: float) -> None:
    expected = similarity(angle, scale, tx, ty)
    target = apply_transform(expected, FFHQ_TEMPLATE_512)
    np.testing.assert_allclose(
        similarity_transform(FFHQ_TEMPLATE_512, target), expected, rtol=1e-7, atol=1e-6
    )


def test_noisy_points_give_the_least_squares_fit() -> None:
    # a square stretched in x and squeezed in y: the residuals of the true similarity are
    # orthogonal to every change of translation, scale and rotation, so it is the fit
    source = np.array([[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]])
    centred = source - 5
    target = source * 2 + [3.0, 4.0] + 0.1 * centred * [1, -1]
    np.testing.assert_allclose(similarity_transform(source, target), [[2, 0, 3], [0, 2, 4]])


def test_a_reflection_is_not_fitted_as_a_rotation() -> None:
    # points mirrored left-right: the best *similarity* cannot flip; its det stays positive
    mirrored = FFHQ_TEMPLATE_512 * [-1, 1]
    matrix = similarity_transform(FFHQ_TEMPLATE_512, mirrored)
    assert np.linalg.det(matrix[:, :2]) > 0


def test_coincident_points_are_refused() -> None:
    with pytest.raises(ValueError, match="coincide"):
        similarity_transform(np.ones((5, 2)), FFHQ_TEMPLATE_512)


def test_invert_transform_round_trips_points() -> None:
    matrix = similarity(0.3, 1.7, 12.0, -5.0)
    points = np.array([[0.0, 0.0], [100.0, 50.0], [-3.0, 7.5]])
    back = apply_transform(invert_transform(matrix), apply_transform(matrix, points))
    np.testing.assert_allclose(back, points, atol=1e-9)


def test_a_whole_pixel_translation_moves_pixels_exactly() -> None:
    image = smooth_image(64)
    moved = warp_face(image, similarity(0, 1, -10, -20), size=32)
    np.testing.assert_array_equal(np.asarray(moved), np.asarray(image)[20:52, 10:42])


def test_a_point_lands_where_the_transform_sends_it() -> None:
    image = Image.new("RGB", (100, 100))
    image.putpixel((30, 40), (255, 255, 255))  # centre (30.5, 40.5)
    matrix = similarity(math.pi / 2, 2.0, 120.0, 10.0)  # (x, y) -> (120 - 2y, 10 + 2x)
    crop = np.asarray(warp_face(image, matrix, size=128)).sum(-1)
    y, x = np.unravel_index(np.argmax(crop), crop.shape)
    expected = apply_transform(matrix, [[30.5, 40.5]])[0]  # (39, 71): pixels 38..39, 70..71
    assert abs(x + 0.5 - expected[0]) <= 1 and abs(y + 0.5 - expected[1]) <= 1


def test_warp_then_paste_back_reproduces_the_interior() -> None:
    image = smooth_image(200)
    matrix = similarity(0.4, 4.0, 0, 0)  # the crop: 128 px of the image, inside it
    matrix[:, 2] = 256 - apply_transform(matrix, [[100.0, 100.0]])[0]  # centre -> centre
    crop = warp_face(image, matrix, size=512)
    back = paste_face(image, crop, matrix)
    mask = np.asarray(face_mask(matrix, image.size, 512))
    assert mask.max() == 255 and (mask == 0).any()
    difference = np.abs(np.asarray(back, dtype=int) - np.asarray(image, dtype=int))
    assert difference.max() <= 3  # resampled twice: a few levels at most, inside and out
    assert difference[mask == 0].max() == 0  # beyond the mask: untouched


def test_paste_back_replaces_the_centre_and_leaves_the_outside() -> None:
    image = Image.new("RGB", (300, 300), (10, 20, 30))
    matrix = similarity(0.2, 512 / 150, 0, 0)
    matrix[:, 2] = 256 - apply_transform(matrix, [[150.0, 150.0]])[0]  # image centre -> crop's
    white = Image.new("RGB", (512, 512), (250, 250, 250))
    pasted = np.asarray(paste_face(image, white, matrix))
    assert tuple(pasted[150, 150]) == (250, 250, 250)  # the middle of the face: all crop
    # the crop covers about 150 px around the centre: far outside it, nothing changed
    for y, x in [(0, 0), (299, 299), (150, 5), (5, 150), (150, 294)]:
        assert tuple(pasted[y, x]) == (10, 20, 30)
    # feathered: between the two there are values strictly between
    row = pasted[150, :, 0]
    assert ((row > 10) & (row < 250)).any()
