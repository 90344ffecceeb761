"""sdtui's settings file: `<data-dir>/sdtui/settings.json`, A1111's keys, never A1111's file.

    settings = Settings.load(dirs)         # never raises; settings.warnings says what was wrong
    settings["CLIP_stop_at_last_layers"]   # 1
    problems = settings.update({"CLIP_stop_at_last_layers": 2})   # [] and saved, or messages
    settings.generation_defaults()         # what `sdtui.params.validate.resolve` takes

The file is a flat JSON object like A1111's `config.json`, so values can be copied between
them, but sdtui only ever reads and writes its own file. Loading keeps keys it does not know
(a newer sdtui's, a plugin's) and writes them back; a value a setting does not accept is
replaced by the default with a warning; a file that does not parse is moved aside to
`settings.json.bad-<timestamp>` and replaced by the defaults, with a warning. Saving writes a
temporary file, syncs it and renames it over the old one, so a crash leaves either file whole.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdtui.params.settings_schema import SETTINGS, SettingValueError, convert, defaults
from sdtui.params.validate import SETTING_DEFAULTS
from sdtui.paths import DataDirs
from sdtui.services.outputs import OutputNaming

SETTINGS_FILE = "settings.json"


@dataclass
class Settings:
    path: Path
    root: Path  # the data dir: relative output paths are inside it
    values: dict[str, Any] = field(default_factory=defaults)
    extra: dict[str, Any] = field(default_factory=dict)  # keys sdtui does not know, kept
    warnings: list[str] = field(default_factory=list)

    # -- loading and saving ----------------------------------------------------------------

    @classmethod
    def load(cls, dirs: DataDirs) -> Settings:
        """The settings in `dirs.own / settings.json` (defaults where it has none)."""
        settings = cls(dirs.own / SETTINGS_FILE, dirs.root)
        settings.reload()
        return settings

    def reload(self) -> None:
        """Read the file again (never raises; problems end up in `warnings`)."""
        self.values, self.extra, self.warnings = defaults(), {}, []
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as error:
            self.warnings.append(f"cannot read {self.path} ({error}); using the defaults")
            return
        try:
            data = json.loads(raw.decode("utf-8"))
            if not isinstance(data, dict):
                raise ValueError(f"expected a JSON object, found {type(data).__name__}")
        except ValueError as error:  # JSONDecodeError and UnicodeDecodeError included
            self._replace_unreadable(str(error))
            return
        for name, value in data.items():
            spec = SETTINGS.get(name)
            if spec is None:
                self.extra[name] = value
                continue
            try:
                self.values[name] = convert(spec, value)
            except SettingValueError as error:
                self.warnings.append(f"{self.path.name}: {error}; using {spec.default!r}")

    def _replace_unreadable(self, reason: str) -> None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        backup = self.path.with_name(f"{self.path.name}.bad-{stamp}")
        counter = 1
        while backup.exists():
            backup = self.path.with_name(f"{self.path.name}.bad-{stamp}-{counter}")
            counter += 1
        try:
            os.replace(self.path, backup)
            self.save()
        except OSError as error:
            problem = f"{self.path} does not parse ({reason}) and cannot be replaced ({error})"
            self.warnings.append(f"{problem}; using the defaults")
            return
        self.warnings.append(
            f"{self.path} does not parse ({reason}); it was moved to {backup.name} and "
            "replaced by the defaults"
        )

    def save(self) -> None:
        """Write the file atomically (OSError when that is impossible; the old file stays)."""
        data = {**self.values, **self.extra}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(
            prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent
        )
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                json.dump(data, file, indent=4, ensure_ascii=False)
                file.write("\n")
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        _sync_folder(self.path.parent)

    # -- reading and changing --------------------------------------------------------------

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def update(self, changes: Mapping[str, Any]) -> list[str]:
        """Check every change; when all are valid, apply and save them and return [], else
        return a message per invalid value and change nothing (the file is not written)."""
        problems, converted = [], {}
        for name, value in changes.items():
            spec = SETTINGS.get(name)
            if spec is None:
                problems.append(f"unknown setting {name!r}")
                continue
            try:
                converted[name] = convert(spec, value)
            except SettingValueError as error:
                problems.append(str(error))
        if problems:
            return problems
        previous = dict(self.values)
        self.values.update(converted)
        try:
            self.save()
        except OSError as error:
            self.values = previous
            return [f"cannot write {self.path}: {error}"]
        return []

    # -- what the settings feed ------------------------------------------------------------

    def generation_defaults(self) -> dict[str, Any]:
        """Setting name -> value for every setting that supplies a parameter's default."""
        return {name: self.values[name] for name in SETTING_DEFAULTS}

    def output_naming(self, kind: str = "txt2img") -> OutputNaming:
        """Folders and file names for `kind` (txt2img, img2img, extras) from the settings."""
        images = self.values["outdir_samples"] or self.values[f"outdir_{kind}_samples"]
        grids = self.values["outdir_grids"] or self.values.get(f"outdir_{kind}_grids") or images
        return OutputNaming(
            filename_pattern=self.values["samples_filename_pattern"],
            add_number=self.values["save_images_add_number"],
            save_to_dirs=self.values["save_to_dirs"],
            directories_pattern=self.values["directories_filename_pattern"],
            extension=self.values["samples_format"],
            images_folder=self.root / Path(images).expanduser(),
            grids_folder=self.root / Path(grids).expanduser(),
            grid_extension=self.values["grid_format"],
            jpeg_quality=int(self.values["jpeg_quality"]),
            write_infotext=bool(self.values["enable_pnginfo"]),
            save_txt=bool(self.values["save_txt"]),
            keep_images=bool(self.values["samples_save"]),
            keep_grids=bool(self.values["grid_save"]),
            init_images_folder=(
                self.root / Path(self.values["outdir_init_images"]).expanduser()
                if self.values["save_init_img"]
                else None
            ),
        )


def _sync_folder(folder: Path) -> None:
    """Make the rename durable where the platform allows it."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
