"""A1111's six latent upscale modes for hires fix (torch-free, so forms and the CLI can list
them): name -> (torch interpolate mode, antialias)."""

from __future__ import annotations

LATENT_MODES: dict[str, tuple[str, bool]] = {
    "Latent": ("bilinear", False),
    "Latent (antialiased)": ("bilinear", True),
    "Latent (bicubic)": ("bicubic", False),
    "Latent (bicubic antialiased)": ("bicubic", True),
    "Latent (nearest)": ("nearest", False),
    "Latent (nearest-exact)": ("nearest-exact", False),
}
