"""Choosing an image file: a path input that completes folder entries, a tree of images.

    PathInput(base=outputs, id="path")   # Tab / → accept the suggested completion
    ImageTree(outputs, id="tree")        # folders and images only (png, jpg, jpeg, webp)

Relative paths are taken from `base` (the outputs folder in the PNG Info tab); `~` and
absolute paths work too. Completion is fish-style: the first entry (sorted by name) that
starts with what was typed is shown greyed after the cursor; a folder completes with a
trailing `/`, so pressing Tab again walks into it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable
from pathlib import Path
from typing import ClassVar

from textual.binding import Binding
from textual.suggester import Suggester
from textual.widgets import DirectoryTree, Input

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def resolve_path(text: str, base: Path) -> Path:
    """What a typed path names: `~` expanded, relative paths taken from `base`."""
    path = Path(text.strip()).expanduser()
    return path if path.is_absolute() else base / path


def is_image_name(name: str, suffixes: Iterable[str] = IMAGE_SUFFIXES) -> bool:
    return name.lower().endswith(tuple(suffixes))


def complete_path(value: str, base: Path, suffixes: Iterable[str] = IMAGE_SUFFIXES) -> str | None:
    """`value` completed to the first matching folder or image (sorted by name), or None.

    The result starts with `value` exactly as typed (Textual shows the rest greyed); folders
    end in `/`. Hidden entries are offered only when the typed name starts with a dot."""
    if not value:
        return None
    if value == "~":
        return "~/"
    head, separator, prefix = value.rpartition("/")
    folder = resolve_path(head + separator, base) if separator else base
    suffixes = tuple(suffixes)
    try:
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    except OSError:
        return None
    for entry in entries:
        name = entry.name
        if not name.startswith(prefix) or (name.startswith(".") and not prefix.startswith(".")):
            continue
        try:
            is_folder = entry.is_dir()
        except OSError:
            continue
        if is_folder:
            return value + name[len(prefix) :] + "/"
        if name != prefix and is_image_name(name, suffixes):
            return value + name[len(prefix) :]
    return None


class PathSuggester(Suggester):
    """Suggests the completion of a typed path (read from disk each time: no cache)."""

    def __init__(self, base: Path, suffixes: Iterable[str] = IMAGE_SUFFIXES) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self.base = base
        self.suffixes = tuple(suffixes)

    async def get_suggestion(self, value: str) -> str | None:
        return await asyncio.to_thread(complete_path, value, self.base, self.suffixes)


class PathInput(Input):
    """An Input for a file path: suggests completions; Tab (or → at the end) accepts one."""

    BINDINGS: ClassVar = [Binding("tab", "complete", "Complete", show=False)]

    def __init__(
        self,
        base: Path,
        *,
        suffixes: Iterable[str] = IMAGE_SUFFIXES,
        placeholder: str = "",
        id: str | None = None,
    ) -> None:
        super().__init__(placeholder=placeholder, suggester=PathSuggester(base, suffixes), id=id)
        self.base = base

    @property
    def suggestion(self) -> str:
        """The completion shown after the cursor ("" when there is none)."""
        suggestion = self._suggestion
        return suggestion if len(suggestion) > len(self.value) else ""

    def action_complete(self) -> None:
        """Accept the suggestion; with none, Tab moves the focus on as usual."""
        if self.suggestion:
            self.value = self.suggestion
            self.cursor_position = len(self.value)
        else:
            self.screen.focus_next()

    @property
    def path(self) -> Path | None:
        """The path typed, resolved (None while empty)."""
        return resolve_path(self.value, self.base) if self.value.strip() else None


class ImageTree(DirectoryTree):
    """A DirectoryTree showing folders and image files only (no hidden entries)."""

    def __init__(
        self, path: str | Path, *, suffixes: Iterable[str] = IMAGE_SUFFIXES, id: str | None = None
    ) -> None:
        self.suffixes = tuple(suffixes)
        super().__init__(path, id=id)

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        return [
            path
            for path in paths
            if not path.name.startswith(".")
            and (is_image_name(path.name, self.suffixes) or self._safe_is_dir(path))
        ]
