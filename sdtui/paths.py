"""The data directory, in AUTOMATIC1111's layout.

    <data-dir>/models/Stable-diffusion   checkpoints (.safetensors, .ckpt), with name.yaml
    <data-dir>/models/VAE                VAEs
    <data-dir>/models/Lora               LoRA networks
    <data-dir>/models/<Kind>             ESRGAN, RealESRGAN, GFPGAN, Codeformer, ...
    <data-dir>/embeddings                textual inversion embeddings
    <data-dir>/outputs/...               txt2img-images, img2img-images, extras-images, ...
    <data-dir>/log                       "Save" button output
    <data-dir>/styles.csv                prompt styles
    <data-dir>/sdtui                     sdtui's own settings and caches; temp/: results
                                         the samples_save / grid_save settings do not keep

`--data-dir ~/stable-diffusion-webui` uses an A1111 install as it is: sdtui reads its
folders and never writes A1111's own files (config.json, ui-config.json, cache.json);
its settings and caches live in the `sdtui` folder beside them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DATA_DIR_ENV = "SDTUI_DATA_DIR"

# Files that belong to A1111 and that sdtui must never write.
A1111_OWN_FILES = ("config.json", "ui-config.json", "cache.json", "params.txt")


def default_data_dir() -> Path:
    """$SDTUI_DATA_DIR, else $XDG_DATA_HOME/sdtui, else ~/.local/share/sdtui."""
    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV]).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg).expanduser() / "sdtui"


@dataclass(frozen=True)
class DataDirs:
    root: Path
    checkpoints: Path
    vae: Path
    lora: Path
    embeddings: Path

    @classmethod
    def resolve(
        cls,
        data_dir: str | os.PathLike[str] | None = None,
        *,
        ckpt_dir: str | os.PathLike[str] | None = None,
        vae_dir: str | os.PathLike[str] | None = None,
        lora_dir: str | os.PathLike[str] | None = None,
        embeddings_dir: str | os.PathLike[str] | None = None,
    ) -> DataDirs:
        """The layout for a data dir, with A1111's per-kind overrides."""
        root = (Path(data_dir).expanduser() if data_dir else default_data_dir()).resolve()

        def pick(override: str | os.PathLike[str] | None, default: Path) -> Path:
            return Path(override).expanduser().resolve() if override else default

        return cls(
            root=root,
            checkpoints=pick(ckpt_dir, root / "models" / "Stable-diffusion"),
            vae=pick(vae_dir, root / "models" / "VAE"),
            lora=pick(lora_dir, root / "models" / "Lora"),
            embeddings=pick(embeddings_dir, root / "embeddings"),
        )

    def models(self, kind: str) -> Path:
        """`models/<kind>`, e.g. models("ESRGAN")."""
        return self.root / "models" / kind

    @property
    def outputs(self) -> Path:
        return self.root / "outputs"

    @property
    def log(self) -> Path:
        return self.root / "log"

    @property
    def styles(self) -> Path:
        return self.root / "styles.csv"

    @property
    def own(self) -> Path:
        """sdtui's own settings and caches."""
        return self.root / "sdtui"

    def create(self) -> None:
        """Create the folders a user puts models into (never touches existing files)."""
        for path in (self.checkpoints, self.vae, self.lora, self.embeddings, self.own):
            path.mkdir(parents=True, exist_ok=True)
