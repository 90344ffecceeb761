"""Looking up a face restorer (GFPGAN, CodeFormer, a plugin's) before a job runs, for the
Extras tab and for "Restore faces" in txt2img / img2img.

    problem = restorer_problem(host, "GFPGAN")       # None, or what to do ("put ... into ...")
    restore = face_restorer(host, "CodeFormer", 0.5)  # image -> image; ValueError if unusable
    image = restore_with(restorer, image, unload=True, weight=0.5)

`unload` is A1111's face_restoration_unload ("Move face restoration model from VRAM into RAM
after processing"): after each image the restorer's `offload()` (when it has one) moves its
network to the CPU; the next image moves it back to the runtime's device.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def restorer_problem(host: Any, name: str) -> str | None:
    """Why the restorer `name` cannot run (not installed, no weights), or None."""
    from sdtui.registry import UnknownNameError

    try:
        restorer = host.face_restorers.get(name)
    except UnknownNameError as error:
        return str(error)
    unavailable = getattr(restorer, "unavailable", None)
    return unavailable() if callable(unavailable) else None


def restore_with(restorer: Any, image: Any, unload: bool = False, **options: Any) -> Any:
    """`restorer.restore(image, **options)`, then its `offload()` when `unload` is set."""
    restored = restorer.restore(image, **options)
    offload = getattr(restorer, "offload", None)
    if unload and callable(offload):
        offload()
    return restored


def face_restorer(
    host: Any, name: str, code_former_weight: float, unload: bool = False
) -> Callable[[Any], Any]:
    """What "Restore faces" runs (image -> image) with the restorer `name` (CodeFormer at
    `code_former_weight`; `unload` as in `restore_with`); ValueError says what is missing
    before anything runs."""
    problem = restorer_problem(host, name)
    if problem:
        raise ValueError(f"Restore faces: {problem}")
    restorer = host.face_restorers.get(name)
    options = {"weight": code_former_weight} if restorer.name == "CodeFormer" else {}
    return lambda image: restore_with(restorer, image, unload, **options)
