"""Live previews: the latent -> RGB map fitted to a VAE, and previews sent while sampling."""

from __future__ import annotations

import torch

import sdtui.engine.preview as preview
from sdtui.params.schema import GenerationParams
from tests.test_txt2img import run

# a "VAE" whose encoder is exactly linear: 8x8 average, then a known 3 -> 4 channel map,
# MIX [3, 4]
MIX = torch.tensor([[0.5, -0.2, 0.1, 0.3], [0.1, 0.6, -0.3, 0.2], [-0.2, 0.1, 0.7, -0.4]])
BIAS = torch.tensor([0.05, -0.1, 0.2, 0.0])


def linear_encode(_vae, pixels: torch.Tensor) -> torch.Tensor:
    pooled = torch.nn.functional.avg_pool2d(pixels, 8)  # [B, 3, h, w]
    return torch.einsum("bchw,cd->bdhw", pooled, MIX) + BIAS[:, None, None]


def test_the_fitted_map_inverts_a_linear_encoder(monkeypatch) -> None:
    monkeypatch.setattr(preview, "encode_images", linear_encode)
    mapping = preview.fit_preview_map(vae=None)
    for colour in ([1.0, 0.0, 0.0], [-0.5, 0.25, 0.9], [0.0, 0.0, 0.0]):
        flat = torch.tensor(colour)[None, :, None, None].expand(1, 3, 64, 64)
        picture = preview.latent_preview(linear_encode(None, flat), mapping)
        expected = [round((c + 1) * 127.5) for c in colour]
        assert picture.size == (8, 8)
        assert all(abs(a - b) <= 1 for a, b in zip(picture.getpixel((3, 3)), expected, strict=True))


class PreviewContext:
    def __init__(self) -> None:
        self.previews: list = []

    def check(self) -> None:
        pass

    def progress(self, step: int, total: int, **_) -> None:
        pass

    def preview(self, image) -> None:
        self.previews.append(image)


def test_previews_arrive_every_n_steps() -> None:
    context = PreviewContext()
    run(GenerationParams(prompt="x", steps=5, sampler="Euler"), context=context, preview_every=2)
    assert len(context.previews) == 2  # after steps 2 and 4; the last step makes the image
    assert context.previews[0].size == (8, 8)


def test_full_previews_are_the_vae_picture_of_the_current_denoised_latent() -> None:
    """show_progress_type "Full": the VAE decodes the prediction (here at the last preview,
    after step 2 of 3, so a 64 px picture); "Approx NN" / "TAESD" fall back to the cheap one."""
    params = GenerationParams(prompt="x", steps=3, sampler="Euler")
    full, cheap = PreviewContext(), PreviewContext()
    run(params, context=full, preview_every=2, preview_method="Full")
    run(params, context=cheap, preview_every=2, preview_method="TAESD")
    assert [p.size for p in full.previews] == [(64, 64)]
    assert [p.size for p in cheap.previews] == [(8, 8)]
