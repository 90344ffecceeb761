"""MTCNN face detection with the facenet-pytorch wheel's weights, on a real photo."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from PIL import Image
from skimage import data

from sdtui.faces import detector_weights_folder
from sdtui.faces.mtcnn import Face, detect_faces, nms

# facenet-pytorch 2.5.3's own MTCNN on this photo (measured once): the box and the image-left
# eye, image-right eye, nose, mouth corners, in pixel-index coordinates
REFERENCE_BOX = (181.1, 62.2, 267.7, 172.1)
REFERENCE_LANDMARKS = [
    (205.0, 101.7),
    (246.8, 103.7),
    (224.7, 129.0),
    (201.7, 139.2),
    (245.3, 141.9),
]


@pytest.fixture(scope="module")
def astronaut() -> Image.Image:
    return Image.fromarray(data.astronaut())


@pytest.fixture(scope="module")
def astronaut_faces(astronaut: Image.Image) -> list[Face]:
    return detect_faces(astronaut)


def test_the_weights_come_from_the_wheel_without_importing_it() -> None:
    folder = detector_weights_folder()
    assert folder.name == "data" and folder.parent.name == "facenet_pytorch"
    assert "facenet_pytorch" not in sys.modules


def test_the_astronaut_has_one_face_with_plausible_landmarks(astronaut_faces: list[Face]) -> None:
    assert len(astronaut_faces) == 1
    face = astronaut_faces[0]
    assert face.score > 0.99
    left, top, right, bottom = face.box
    np.testing.assert_allclose(face.box, REFERENCE_BOX, atol=6)
    eye_left, eye_right, nose, mouth_left, mouth_right = face.landmarks
    for x, y in face.landmarks:
        assert left < x < right and top < y < bottom
    assert eye_left[0] < nose[0] < eye_right[0]
    assert mouth_left[0] < nose[0] < mouth_right[0]
    assert max(eye_left[1], eye_right[1]) < nose[1] < min(mouth_left[1], mouth_right[1])
    # continuous coordinates: the reference's pixel indices + 0.5, within a few pixels
    np.testing.assert_allclose(face.landmarks, np.add(REFERENCE_LANDMARKS, 0.5), atol=3)


def test_detection_follows_the_image_scale(
    astronaut: Image.Image, astronaut_faces: list[Face]
) -> None:
    (face,) = astronaut_faces
    (half,) = detect_faces(astronaut.resize((256, 256), Image.Resampling.LANCZOS))
    np.testing.assert_allclose(half.landmarks * 2, face.landmarks, atol=4)


def test_a_mirrored_photo_mirrors_the_landmarks(
    astronaut: Image.Image, astronaut_faces: list[Face]
) -> None:
    (face,) = astronaut_faces
    (mirrored,) = detect_faces(astronaut.transpose(Image.Transpose.FLIP_LEFT_RIGHT))
    # flipped x, and the left / right points swap places
    expected = np.column_stack([512 - face.landmarks[:, 0], face.landmarks[:, 1]])[[1, 0, 2, 4, 3]]
    np.testing.assert_allclose(mirrored.landmarks, expected, atol=3)


@pytest.mark.parametrize("kind", ["flat", "noise", "gradient"])
def test_no_face_in_images_without_one(kind: str) -> None:
    rng = np.random.default_rng(0)
    pixels = {
        "flat": np.full((200, 300, 3), 128, np.uint8),
        "noise": rng.integers(0, 256, (200, 300, 3), dtype=np.uint8),
        "gradient": np.broadcast_to(
            np.linspace(0, 255, 300, dtype=np.uint8)[None, :, None], (200, 300, 3)
        ),
    }[kind]
    assert detect_faces(Image.fromarray(np.ascontiguousarray(pixels))) == []


def test_tiny_and_greyscale_images_are_handled(astronaut: Image.Image) -> None:
    assert detect_faces(Image.new("RGB", (10, 10))) == []  # smaller than any face
    assert len(detect_faces(astronaut.convert("L"))) == 1


def test_nms_keeps_the_best_of_each_overlapping_group() -> None:
    boxes = np.array(
        [
            [0, 0, 10, 10],  # with the next: intersection 81, union 119 (0.68), min 0.81
            [1, 1, 11, 11],
            [20, 20, 30, 30],  # apart from all
            [0, 0, 4, 4],  # with the second: intersection 9, union 107, min 9 / 16
        ],
        dtype=float,
    )
    scores = np.array([0.8, 0.9, 0.5, 0.7])
    assert nms(boxes, scores, 0.5) == [1, 3, 2]
    assert nms(boxes, scores, 0.7) == [1, 0, 3, 2]
    assert nms(boxes, scores, 0.7, by_min=True) == [1, 3, 2]
    assert nms(boxes, scores, 0.5, by_min=True) == [1, 2]
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5) == []
