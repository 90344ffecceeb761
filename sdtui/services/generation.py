"""txt2img as a runtime job: pick the checkpoint, load it through the model cache, generate,
and save every image as soon as it exists (an interrupted run keeps what it finished).

The CLI and the TUI both submit `Txt2ImgJob(...)` to the runtime's job queue.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdtui import __version__
from sdtui.models.discovery import (
    CheckpointInfo,
    ModelNotFoundError,
    discover_checkpoints,
    find_checkpoint,
    resolve_vae,
)
from sdtui.models.hashes import HashCache, short_hash
from sdtui.params.schema import GenerationParams
from sdtui.paths import DataDirs
from sdtui.services.outputs import NameContext, OutputNaming

VERSION = f"sdtui {__version__}"


@dataclass(frozen=True)
class ModelChoice:
    path: Path
    name: str  # A1111's "Model" value
    checkpoint: CheckpointInfo | None = None


def choose_checkpoint(dirs: DataDirs, query: str | None) -> ModelChoice:
    """A checkpoint by path, by any name A1111 accepts, or the first one in the data dir."""
    if query and Path(query).expanduser().is_file():
        path = Path(query).expanduser().resolve()
        return ModelChoice(path, path.stem)
    checkpoints = discover_checkpoints(dirs)
    if query:
        info = find_checkpoint(dirs, query, checkpoints)
    elif checkpoints:
        info = checkpoints[0]
    else:
        raise ModelNotFoundError(
            f"no checkpoints in {dirs.checkpoints}: put Stable Diffusion checkpoints "
            "(.safetensors or .ckpt) there, or pass --model PATH"
        )
    return ModelChoice(info.path, info.model_name, info)


def apply_styles(params: GenerationParams, dirs: DataDirs) -> GenerationParams:
    """Fold the chosen styles from styles.csv into the prompts (what the infotext shows)."""
    if not params.styles:
        return params
    from sdtui.services.styles import StyleLibrary

    prompt, negative = StyleLibrary.load(dirs.styles).apply(
        params.styles, params.prompt, params.negative_prompt
    )
    return dataclasses.replace(params, prompt=prompt, negative_prompt=negative, styles=())


@dataclass
class SavedImage:
    path: Path
    infotext: str
    seed: int


@dataclass
class Txt2ImgJob:
    """Callable job: `runtime.jobs.submit(job, name="txt2img")`."""

    runtime: Any
    plugin_host: Any
    dirs: DataDirs
    params: GenerationParams  # resolved
    model: ModelChoice
    out_dir: Path | None = None
    naming: OutputNaming = field(default_factory=OutputNaming)
    saved: list[SavedImage] = field(default_factory=list)

    def __call__(self, context: Any) -> list[SavedImage]:
        from sdtui.engine.images import image_grid
        from sdtui.engine.txt2img import txt2img
        from sdtui.models.loader import load_checkpoint

        self.params = apply_styles(self.params, self.dirs)
        vae_path = resolve_vae(self.model.path, self.params.vae or "Automatic", self.dirs)
        context.progress(0, self.params.steps, text=f"loading {self.model.name}")
        loaded = self.runtime.models.get(
            f"{self.model.path}|{vae_path}",
            lambda: load_checkpoint(
                self.model.path,
                dtype=self.runtime.dtype,
                vae=vae_path,
                plugin_host=self.plugin_host,
            ),
        )
        facts = self._facts(vae_path)
        results = txt2img(
            loaded,
            self.params,
            samplers=self.plugin_host.samplers,
            schedules=self.plugin_host.schedules,
            context=context,
            model_facts=facts,
            version=VERSION,
            on_image=lambda result: self._save(result, facts, context),
        )
        if len(results) > 1:
            grid = image_grid([r.image for r in results], self.params.batch_size)
            self._write(grid, results[0], facts, grid=True)
        (self.dirs.own / "last-params.txt").write_text(results[-1].infotext, encoding="utf-8")
        return self.saved

    def _facts(self, vae_path: Path | None) -> Any:
        from sdtui.engine.txt2img import ModelFacts

        cache = HashCache.for_dirs(self.dirs)
        model_hash = (
            self.model.checkpoint.short_hash
            if self.model.checkpoint
            else short_hash(cache.sha256(self.model.path))
        )
        vae_hash = short_hash(cache.sha256(vae_path)) if vae_path else None
        return ModelFacts(
            name=self.model.name,
            short_hash=model_hash,
            vae_name=vae_path.name if vae_path else None,
            vae_hash=vae_hash,
        )

    def _save(self, result: Any, facts: Any, context: Any) -> None:
        path = self._write(result.image, result, facts, grid=False)
        saved = SavedImage(path, result.infotext, result.params.seed)
        self.saved.append(saved)
        context.add_result(saved)

    def _write(self, image: Any, result: Any, facts: Any, *, grid: bool) -> Path:
        from sdtui.params.image_metadata import save_image

        params = result.params
        name_context = NameContext(
            seed=params.seed,
            prompt=params.prompt,
            negative_prompt=params.negative_prompt,
            steps=params.steps,
            cfg_scale=params.cfg_scale,
            sampler=params.sampler,
            schedule=params.schedule,
            width=image.width,
            height=image.height,
            model_name=facts.name or "",
            model_hash=facts.short_hash or "",
            batch_index=result.index % params.batch_size,
            batch_size=params.batch_size,
            iteration=result.index // params.batch_size,
            batch_count=params.batch_count,
        )
        folder = self.out_dir or self.naming.folder(self.dirs, "txt2img", name_context, grid=grid)
        folder.mkdir(parents=True, exist_ok=True)
        basename = "grid" if grid else ""
        target = self.naming.path(folder, name_context, basename=basename, short=grid)
        json_params = {k: v for k, v in dataclasses.asdict(params).items() if v is not None}
        return save_image(image, target, infotext=result.infotext, params=json_params)
