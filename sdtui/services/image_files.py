"""Reading an image a user names (an init image, a mask), with a message saying what is wrong.

    image = open_image(Path("photo.png"), "init image")   # ValueError: "init image photo.png:
                                                          # no such file", "... not an image
                                                          # sdtui can read (...)"

Used by `sdtui img2img` and the img2img tab, so both say the same. PIL only, no torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def open_image(path: Path, what: str) -> Any:
    """The image at `path`, fully read; ValueError saying what is wrong with it."""
    from PIL import Image, UnidentifiedImageError

    if path.is_dir():
        raise ValueError(f"{what} {path}: a folder, not an image")
    try:
        with Image.open(path) as image:
            image.load()
    except FileNotFoundError:
        raise ValueError(f"{what} {path}: no such file") from None
    except (UnidentifiedImageError, Image.DecompressionBombError) as error:
        raise ValueError(f"{what} {path}: not an image sdtui can read ({error})") from None
    except (OSError, SyntaxError) as error:  # truncated or corrupt files raise either
        raise ValueError(f"{what} {path}: cannot be read ({error})") from None
    return image
