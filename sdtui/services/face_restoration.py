"""Looking up a face restorer (GFPGAN, CodeFormer, a plugin's) before a job runs, for the
Extras tab and for "Restore faces" in txt2img / img2img.

    problem = restorer_problem(host, "GFPGAN")       # None, or what to do ("put ... into ...")
    restore = face_restorer(host, "CodeFormer", 0.5)  # image -> image; ValueError if unusable
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


def face_restorer(host: Any, name: str, code_former_weight: float) -> Callable[[Any], Any]:
    """What "Restore faces" runs (image -> image) with the restorer `name` (CodeFormer at
    `code_former_weight`); ValueError says what is missing before anything runs."""
    problem = restorer_problem(host, name)
    if problem:
        raise ValueError(f"Restore faces: {problem}")
    restorer = host.face_restorers.get(name)
    if restorer.name == "CodeFormer":
        return lambda image: restorer.restore(image, weight=code_former_weight)
    return restorer.restore
