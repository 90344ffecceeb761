"""Aligning faces to the FFHQ template and pasting restored faces back.

    matrix = similarity_transform(face.landmarks, template_points())  # image -> crop
    crop = warp_face(image, matrix)            # 512 x 512, the face where GFPGAN expects it
    image = paste_face(image, restored, matrix)

GFPGAN and CodeFormer are trained on 512 x 512 FFHQ crops whose five landmarks (eyes, nose
tip, mouth corners) sit at fixed places; facexlib's template gives them (in its pixel-index
coordinates, here shifted by half a pixel to the continuous coordinates of
`sdtui.faces.mtcnn`, where pixel (i, j) covers [i, i + 1) x [j, j + 1)). A face is mapped
onto it by the similarity transform (rotation, uniform scale, translation) that fits the
landmarks best in the least-squares sense (Umeyama 1991). The restored crop goes back
through the inverse transform, blended with a mask that is eroded and blurred (as
facexlib's `paste_faces_to_input_image` does) so there is no visible seam; pixels beyond
the blurred edge stay exactly as they were.

A transform here is a 2 x 3 matrix `[[a, b, tx], [c, d, ty]]`: (x, y) -> (a x + b y + tx,
c x + d y + ty).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

FACE_SIZE = 512
BORDER_GREY = (132, 133, 135)  # facexlib's warpAffine border, (135, 133, 132) in BGR
# facexlib's FFHQ template for a 512 x 512 crop (pixel-index coordinates)
FFHQ_TEMPLATE_512 = np.array(
    [
        [192.98138, 239.94708],
        [318.90277, 240.1936],
        [256.63416, 314.01935],
        [201.26117, 371.41043],
        [313.08905, 371.15118],
    ]
)


def template_points(size: int = FACE_SIZE) -> np.ndarray:
    """The template's five points for a size x size crop, in continuous coordinates."""
    return (FFHQ_TEMPLATE_512 + 0.5) * (size / 512)


def similarity_transform(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The 2 x 3 similarity transform taking the points `source` (N, 2) closest to
    `target` (N, 2) in least squares (Umeyama's closed form, no reflection)."""
    source, target = np.asarray(source, dtype=float), np.asarray(target, dtype=float)
    source_mean, target_mean = source.mean(axis=0), target.mean(axis=0)
    centred_source, centred_target = source - source_mean, target - target_mean
    variance = (centred_source**2).sum() / len(source)
    if variance <= 0:
        raise ValueError("the source points coincide: no transform fits them")
    covariance = centred_target.T @ centred_source / len(source)
    u, singular, vt = np.linalg.svd(covariance)
    sign = np.diag([1.0, np.sign(np.linalg.det(u) * np.linalg.det(vt)) or 1.0])
    rotation = u @ sign @ vt
    scale = float(np.trace(np.diag(singular) @ sign) / variance)
    translation = target_mean - scale * rotation @ source_mean
    return np.column_stack([scale * rotation, translation])


def apply_transform(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """`points` (N, 2) mapped by the 2 x 3 `matrix`."""
    points = np.asarray(points, dtype=float)
    return points @ matrix[:, :2].T + matrix[:, 2]


def invert_transform(matrix: np.ndarray) -> np.ndarray:
    """The 2 x 3 inverse of an invertible 2 x 3 affine transform."""
    linear = np.linalg.inv(matrix[:, :2])
    return np.column_stack([linear, -linear @ matrix[:, 2]])


def _warp(
    image: Image.Image, matrix: np.ndarray, size: tuple[int, int], **options: Any
) -> Image.Image:
    """`image` moved by `matrix` (source -> destination) onto a canvas of `size`."""
    # PIL asks, for each output pixel, where to sample the input: the inverse map
    data = tuple(float(v) for v in invert_transform(matrix).ravel())
    return image.transform(size, Image.Transform.AFFINE, data, **options)


def warp_face(image: Image.Image, matrix: np.ndarray, size: int = FACE_SIZE) -> Image.Image:
    """The size x size crop that `matrix` (image -> crop coordinates) maps the face to;
    beyond the image's edges, facexlib's grey."""
    return _warp(
        image.convert("RGB"),
        matrix,
        (size, size),
        resample=Image.Resampling.BICUBIC,
        fillcolor=BORDER_GREY,
    )


def face_mask(matrix: np.ndarray, image_size: tuple[int, int], crop_size: int) -> Image.Image:
    """The blend mask ("L", `image_size`) of a crop pasted back through `matrix` (image ->
    crop): the crop's square eroded by 2 + 2 * edge pixels of the crop, mapped into the
    image and blurred by about edge / 3 there, where edge is a 20th of the face's side (as
    in facexlib). Zero where the crop does not reach."""
    edge = crop_size // 20
    inset = 2 + 2 * edge
    square = Image.new("L", (crop_size, crop_size), 0)
    ImageDraw.Draw(square).rectangle(
        (inset, inset, crop_size - inset - 1, crop_size - inset - 1), fill=255
    )
    mask = _warp(square, invert_transform(matrix), image_size, resample=Image.Resampling.BILINEAR)
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))  # crop pixels per image pixel
    radius = max(edge / scale / 3, 0.5)
    return mask.filter(ImageFilter.GaussianBlur(radius))


def paste_face(image: Image.Image, face: Image.Image, matrix: np.ndarray) -> Image.Image:
    """`image` with the square crop `face` put back through the inverse of `matrix`
    (image -> crop coordinates), blended in with `face_mask`."""
    image = image.convert("RGB")
    inverse = invert_transform(matrix)
    back = _warp(face.convert("RGB"), inverse, image.size, resample=Image.Resampling.BICUBIC)
    mask = face_mask(matrix, image.size, face.width)
    return Image.composite(back, image, mask)
