"""Outpainting mk2's fill: noise shaped in frequency like the known part of the image and
matched to its colours (A1111's `get_matched_noise`, from g-diffuser-bot), in numpy.

    filled = matched_noise(image, mask, fall_off=1.0, color_variation=0.05)

`image` is float RGB in [0, 1] (rows, columns, 3), `mask` the same shape, 1 where to fill.
The known part (mask 0), normalised, with the masked area at the image's mean, gives an
amplitude spectrum; greyish noise (`color_variation` of its colour kept) from a fixed seed
(numpy's default_rng(0): the fill follows only the image, as A1111's) is low-passed, and its
spectrum's squared magnitude times the image's amplitude ** `fall_off` with the image's
phase makes the shaped noise. That is scaled to [0, 1], its masked values histogram-matched
per channel to the known pixels (skimage's match_histograms, written out here), and laid
under the known part: unmasked pixels come back as they were.
"""

from __future__ import annotations

import numpy as np

AXES = (0, 1)  # rows, columns of a [rows, columns, channels] array: each channel on its own


def _fft2(data: np.ndarray) -> np.ndarray:
    centred = np.fft.fft2(np.fft.fftshift(data, axes=AXES), axes=AXES, norm="ortho")
    return np.fft.ifftshift(centred, axes=AXES)


def _ifft2(data: np.ndarray) -> np.ndarray:
    centred = np.fft.ifft2(np.fft.fftshift(data, axes=AXES), axes=AXES, norm="ortho")
    return np.fft.ifftshift(centred, axes=AXES)


def _window(rows: int, columns: int, std: float = 3.14) -> np.ndarray:
    """A1111's mode-1 window: 1 / ((x^2 + 1)(y^2 + 1)) ** (std / 3.14), x and y in [-1, 1)
    scaled by the aspect ratio."""
    short = min(rows, columns)
    x = (np.arange(rows) / rows * 2.0 - 1.0) * (rows / short)
    y = (np.arange(columns) / columns * 2.0 - 1.0) * (columns / short)
    return (1 / ((x[:, None] ** 2 + 1.0) * (y[None, :] ** 2 + 1.0))) ** (std / 3.14)


def match_histograms(source: np.ndarray, template: np.ndarray) -> np.ndarray:
    """Each column (channel) of `source` (n, c) mapped so its distribution is the
    template's (m, c): skimage's cumulative-distribution matching."""
    matched = np.empty(source.shape, dtype=np.float64)
    for channel in range(source.shape[1]):
        _values, inverse, counts = np.unique(
            source[:, channel], return_inverse=True, return_counts=True
        )
        template_values, template_counts = np.unique(template[:, channel], return_counts=True)
        quantiles = np.cumsum(counts) / source.shape[0]
        template_quantiles = np.cumsum(template_counts) / template.shape[0]
        mapped = np.interp(quantiles, template_quantiles, template_values)
        matched[:, channel] = mapped[inverse.reshape(-1)]
    return matched


def matched_noise(
    image: np.ndarray, mask: np.ndarray, fall_off: float = 1.0, color_variation: float = 0.05
) -> np.ndarray:
    """`image` with its masked part filled by matched noise, in [0, 1] (see the module)."""
    rows, columns, channels = image.shape
    grey_mask = np.sum(mask, axis=2) / 3.0
    to_fill = grey_mask > 1e-6
    known = grey_mask < 1e-3

    windowed = image * (1.0 - np.repeat(grey_mask[:, :, None], 3, axis=2))
    windowed /= np.max(windowed)
    windowed += np.average(image) * mask
    source = _fft2(windowed)
    amplitude = np.absolute(source)
    phase = source / amplitude

    rng = np.random.default_rng(0)
    noise = rng.random((rows, columns, channels))
    grey = np.sum(noise, axis=2) / 3.0
    noise *= color_variation
    for channel in range(channels):
        noise[:, :, channel] += (1.0 - color_variation) * grey
    spectrum = _fft2(noise)
    spectrum *= _window(rows, columns)[:, :, None]
    noise = np.real(_ifft2(spectrum))
    shaped = _fft2(noise)
    shaped = np.absolute(shaped) ** 2 * (amplitude**fall_off) * phase

    result = np.real(_ifft2(shaped))
    result -= np.min(result)
    result /= np.max(result)
    result[to_fill, :] = match_histograms(result[to_fill, :], image[known, :])
    result = image * (1.0 - mask) + result * mask
    return np.clip(result, 0.0, 1.0)
