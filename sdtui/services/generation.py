"""txt2img as a runtime job: pick the checkpoint, load it through the model cache, generate,
and save every image as soon as it exists (an interrupted run keeps what it finished).

The CLI and the TUI both submit `Txt2ImgJob(...)` to the runtime's job queue. With a
`script` (A1111's Script dropdown) the job runs the script instead, which generates through
`process` as often as it needs (`sdtui.services.scripts`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from sdtui import __version__
from sdtui.engine.upscalers import DEFAULT_OVERLAP, DEFAULT_TILE
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
from sdtui.services.outputs import NameContext, OutputNaming, temporary_folder, write_output

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


# A1111's "save a copy of image before ..." and "save the mask" settings, by the engine's
# stage names (sdtui.engine.options.COPY_SUFFIXES)
COPY_SETTINGS = {
    "highres fix": "save_images_before_highres_fix",
    "face restoration": "save_images_before_face_restoration",
    "color correction": "save_images_before_color_correction",
    "mask": "save_mask",
    "mask composite": "save_mask_composite",
}
# A1111's return_mask / return_mask_composite: the inpainting copies listed with the results
# (written to the temporary folder, not kept in the outputs)
RETURN_SETTINGS = {"mask": "return_mask", "mask composite": "return_mask_composite"}


@dataclass(frozen=True)
class RunSettings:
    """What a job takes from the settings besides the parameters' defaults, made once by
    `from_settings` and handed to the engine whole: the upscalers' tiling (A1111's
    ESRGAN_tile and ESRGAN_tile_overlap), how "Restore faces" runs its restorer
    (code_former_weight, face_restoration_unload; which restorer runs is the parameter
    `face_restoration_model`), the save_images_before_* and save_mask* copies, SDXL's crop
    and refiner aesthetic scores, hires_fix_refiner_pass, show_progress_type (the live
    previews' method), and comma_padding_backtrack (how prompts longer than 75 tokens are
    split: it changes pixels, but A1111 writes no infotext key for it, so it is a setting
    here too)."""

    upscaler_tile: int = DEFAULT_TILE
    upscaler_tile_overlap: int = DEFAULT_OVERLAP
    code_former_weight: float = 0.5
    face_restoration_unload: bool = False  # the restorer's network back to RAM after each image
    keep_copies: frozenset[str] = frozenset()  # stages of COPY_SETTINGS that save a copy
    shown_copies: frozenset[str] = frozenset()  # stages of RETURN_SETTINGS listed as results
    sdxl_crop: tuple[int, int] = (0, 0)  # sdxl_crop_top / sdxl_crop_left
    refiner_aesthetic: tuple[float, float] = (2.5, 6.0)  # sdxl_refiner_low / high_aesthetic_score
    # sdtui.engine.refiner's DEFAULT_HIRES_REFINER_PASS (that module imports torch)
    hires_refiner_pass: str = "second pass"
    comma_backtrack: int = 20  # sdtui.engine.prompt_chunks' DEFAULT_COMMA_BACKTRACK
    preview_method: str = "Approx NN"  # show_progress_type: anything but "Full" draws cheap

    @classmethod
    def from_settings(cls, settings: Any) -> RunSettings:
        """From `Settings` (or any mapping of setting names to values)."""
        return cls(
            upscaler_tile=int(settings["ESRGAN_tile"]),
            upscaler_tile_overlap=int(settings["ESRGAN_tile_overlap"]),
            code_former_weight=float(settings["code_former_weight"]),
            face_restoration_unload=bool(settings["face_restoration_unload"]),
            keep_copies=frozenset(stage for stage, key in COPY_SETTINGS.items() if settings[key]),
            shown_copies=frozenset(
                stage for stage, key in RETURN_SETTINGS.items() if settings[key]
            ),
            sdxl_crop=(int(settings["sdxl_crop_top"]), int(settings["sdxl_crop_left"])),
            refiner_aesthetic=(
                float(settings["sdxl_refiner_low_aesthetic_score"]),
                float(settings["sdxl_refiner_high_aesthetic_score"]),
            ),
            hires_refiner_pass=str(settings["hires_fix_refiner_pass"]),
            comma_backtrack=int(settings["comma_padding_backtrack"]),
            preview_method=str(settings["show_progress_type"]),
        )

    def engine_options(self, copies: frozenset[str]) -> dict[str, Any]:
        """`EngineOptions` fields; `copies`: the stages whose copies the run wants."""
        return {
            "upscaler_tile": self.upscaler_tile,
            "upscaler_tile_overlap": self.upscaler_tile_overlap,
            "keep_copies": copies,
            "sdxl_crop": self.sdxl_crop,
            "refiner_aesthetic": self.refiner_aesthetic,
            "hires_refiner_pass": self.hires_refiner_pass,
            "comma_backtrack": self.comma_backtrack,
            "preview_method": self.preview_method,
        }


def model_key(model: ModelChoice, vae_path: Path | None) -> str:
    """The model cache's key of a checkpoint loaded with a VAE."""
    return f"{model.path}|{vae_path}"


def load_model(runtime: Any, plugin_host: Any, model: ModelChoice, vae_path: Path | None) -> Any:
    """The loaded checkpoint (with that VAE) from the runtime's model cache, loading it on a
    miss. Call on the runtime's worker."""
    from sdtui.models.loader import load_checkpoint

    return runtime.models.get(
        model_key(model, vae_path),
        lambda: load_checkpoint(
            model.path, dtype=runtime.dtype, vae=vae_path, plugin_host=plugin_host
        ),
    )


def switch_model(runtime: Any, plugin_host: Any, model: ModelChoice, vae_path: Path | None) -> Any:
    """`load_model` in the middle of a run (hires checkpoint, refiner, back to the run's
    own model). A cache that keeps no model besides the active one drops the outgoing model,
    but the run still references it until it ends: it is moved off the device first, so the
    device never holds two models (A1111 also unloads the old weights before loading)."""
    from sdtui.runtime.model_cache import OFFLOAD_DEVICE, move

    cache = runtime.models
    outgoing = cache.active
    keeps_none = getattr(cache, "max_in_ram", 1) == 0
    if outgoing is None or not keeps_none or cache.active_key == model_key(model, vae_path):
        return load_model(runtime, plugin_host, model, vae_path)
    move(outgoing, OFFLOAD_DEVICE)
    try:
        return load_model(runtime, plugin_host, model, vae_path)
    except BaseException:
        if cache.active is outgoing:  # the load failed before the switch: put it back
            move(outgoing, cache.device)
        raise


@dataclass
class LoadModelJob:
    """Load a checkpoint into the model cache ahead of the first generation."""

    runtime: Any
    plugin_host: Any
    dirs: DataDirs
    model: ModelChoice
    vae: str = "Automatic"

    def __call__(self, context: Any) -> ModelChoice:
        vae_path = resolve_vae(self.model.path, self.vae, self.dirs)
        context.progress(0, 1, text=f"loading {self.model.name}")
        load_model(self.runtime, self.plugin_host, self.model, vae_path)
        context.progress(1, 1, text=f"loaded {self.model.name}")
        return self.model


@dataclass
class SavedImage:
    path: Path
    infotext: str
    seed: int
    grid: bool = False


@dataclass
class Txt2ImgJob:
    """Callable job: `runtime.jobs.submit(job, name="txt2img")`."""

    kind: ClassVar[str] = "txt2img"  # the outputs folders (txt2img-images, txt2img-grids)
    runtime: Any
    plugin_host: Any
    dirs: DataDirs
    params: GenerationParams  # resolved
    model: ModelChoice
    out_dir: Path | None = None
    naming: OutputNaming = field(default_factory=OutputNaming)
    saved: list[SavedImage] = field(default_factory=list)
    # an EmbeddingDatabase the app keeps between jobs; None: read dirs.embeddings for this job
    embeddings: Any = None
    preview_every: int = 0  # a live preview every N steps (A1111's show_progress_every_n_steps)
    # A1111's Script dropdown: a registered script (sdtui.services.scripts) runs the job,
    # with its option values by name (parsed, or strings as `--script-arg` gives them)
    script: Any = None
    script_args: Mapping[str, Any] = field(default_factory=dict)
    random_seed: bool = False  # the request said seed -1 (scripts' "Keep -1 for seeds")
    run_settings: RunSettings = RunSettings()  # RunSettings.from_settings(user settings)
    _facts_used: Any = field(default=None, init=False, repr=False)
    _loras: dict[frozenset[str], dict[str, Any]] = field(
        default_factory=dict, init=False, repr=False
    )

    def __call__(self, context: Any) -> list[SavedImage]:
        from sdtui.engine.images import image_grid

        if self.script is not None:
            from sdtui.services.scripts import run_script

            return run_script(self, context)
        self.params = apply_styles(self.params, self.dirs)
        results = self.process(self.params, context)
        if len(results) > 1:
            grid = image_grid([r.image for r in results], self.params.batch_size)
            self.save_grid(grid, results[0], context)
        if results:
            self.remember(results[-1])
        return self.saved

    def process(
        self,
        params: GenerationParams,
        context: Any,
        *,
        model: ModelChoice | None = None,
        save: bool = True,
        out_dir: Path | None = None,
        **inputs: Any,
    ) -> list[Any]:
        """One engine run of `params` (resolved) on `model` (default: the job's), each
        image saved as soon as it exists unless `save` is False (into `out_dir` if given).
        `inputs`: the mode's inputs (img2img: `init_images`, `mask`; default the job's)."""
        model = model or self.model
        params = apply_styles(params, self.dirs)
        vae_path = resolve_vae(model.path, params.vae or "Automatic", self.dirs)
        restore = None  # before the model too: missing face weights fail at once
        restorer_name = params.face_restoration_model or "CodeFormer"
        if params.restore_faces:
            from sdtui.services.face_restoration import face_restorer

            restore = face_restorer(
                self.plugin_host,
                restorer_name,
                self.run_settings.code_former_weight,
                self.run_settings.face_restoration_unload,
            )
        networks = self._networks(params)  # before the model: a misspelt LoRA fails at once
        others = self._other_models(params, model)  # a misspelt hires checkpoint, too
        context.progress(0, params.steps, text=f"loading {model.name}")
        load = switch_model if self.script is not None else load_model  # scripts may switch
        loaded = load(self.runtime, self.plugin_host, model, vae_path)
        facts = self._facts_used = self._facts(vae_path, model)

        def on_image(result: Any) -> None:
            if save:
                self._save(result, facts, context, out_dir)

        # A1111 writes the before-* and mask copies only when it saves the images themselves;
        # the masks it returns (return_mask*) are listed whenever the run lists its images
        saving = save and bool(out_dir or self.out_dir or self.naming.keep_images)
        kept = self.run_settings.keep_copies if saving else frozenset()
        shown = self.run_settings.shown_copies if save else frozenset()

        from sdtui.engine.options import COPY_SUFFIXES, EngineOptions

        def on_intermediate(result: Any, suffix: str) -> None:
            stage = next(name for name, known in COPY_SUFFIXES.items() if known == suffix)
            if stage in kept:
                self._write(result.image, result, facts, grid=False, out_dir=out_dir, suffix=suffix)
            if stage in shown:
                folder = temporary_folder(self.dirs) / f"{self.kind}-images"
                path = self._write(
                    result.image, result, facts, grid=False, out_dir=folder, suffix=suffix
                )
                listed = SavedImage(path, result.infotext, result.params.seed)
                self.saved.append(listed)
                context.add_result(listed)

        options = EngineOptions(
            samplers=self.plugin_host.samplers,
            schedules=self.plugin_host.schedules,
            upscalers=self.plugin_host.upscalers,
            context=context,
            model_facts=facts,
            version=VERSION,
            on_image=on_image,
            embeddings=self._embeddings(loaded),
            networks=networks,
            preview_every=self.preview_every,
            other_models=others,
            face_restorer=restore,
            face_restoration_model=restorer_name if restore else None,
            on_intermediate=on_intermediate if kept | shown else None,
            **self.run_settings.engine_options(kept | shown),
        )
        return self._generate(loaded, params, options, **inputs)

    def save_grid(
        self,
        image: Any,
        first: Any,
        context: Any,
        *,
        infotext: str | None = None,
        basename: str = "grid",
    ) -> SavedImage:
        """Write a grid into the grids folder with the infotext of `first` (a generated
        image: A1111's grids carry their first image's) or `infotext`."""
        text = first.infotext if infotext is None else infotext
        described = dataclasses.replace(first, image=image, infotext=text)
        path = self._write(image, described, self._facts_used, grid=True, basename=basename)
        saved = SavedImage(path, text, first.params.seed, True)
        context.add_result(saved)
        return saved

    def remember(self, last: Any) -> None:
        """A1111's params.txt: the last image's infotext, what the ↙ button reads back."""
        (self.dirs.own / "last-params.txt").write_text(last.infotext, encoding="utf-8")

    def _generate(
        self, loaded: Any, params: GenerationParams, options: Any, **inputs: Any
    ) -> list[Any]:
        """The engine call: `options` (an `EngineOptions`) is what every mode takes."""
        from sdtui.engine.txt2img import txt2img

        if inputs:
            raise TypeError(f"txt2img takes no inputs, got {', '.join(inputs)}")
        return txt2img(loaded, params, options)

    def _other_models(self, params: GenerationParams, model: ModelChoice) -> Any:
        """Loaders for the hires checkpoint and the refiner the request names (resolved
        now, loaded when the run needs them), and for the run's own model."""
        from sdtui.engine.model_switch import OtherModels, named_checkpoint

        hires = named_checkpoint(params.hires_checkpoint) if params.enable_hires else None
        refiner = named_checkpoint(params.refiner_checkpoint)
        vae = params.vae or "Automatic"
        return OtherModels(
            hires=self._checkpoint(hires, vae) if hires else None,
            refiner=self._checkpoint(refiner, vae) if refiner else None,
            reload=self._loader(model, vae),
            embeddings_for=self._embeddings,
        )

    def _checkpoint(self, query: str, vae: str) -> Any:
        """A checkpoint by any name A1111 accepts, titled as A1111's infotext names it."""
        from sdtui.engine.model_switch import Checkpoint

        choice = choose_checkpoint(self.dirs, query)
        if choice.checkpoint is not None:
            digest = choice.checkpoint.short_hash
        else:
            digest = short_hash(HashCache.for_dirs(self.dirs).sha256(choice.path))
        return Checkpoint(f"{choice.path.stem} [{digest}]", self._loader(choice, vae))

    def _loader(self, choice: ModelChoice, vae: str) -> Any:
        vae_path = resolve_vae(choice.path, vae, self.dirs)
        return lambda: switch_model(self.runtime, self.plugin_host, choice, vae_path)

    def _networks(self, params: GenerationParams) -> dict[str, Any]:
        """The LoRA files the prompts' `<lora:name:...>` tags name, read and hashed (the
        12-hex addnet hash goes into "Lora hashes"); LoraNotFoundError lists close names."""
        from sdtui.engine.networks import requested_names
        from sdtui.models.networks import load_loras

        names = frozenset(requested_names(params))
        if names and names not in self._loras:
            self._loras[names] = load_loras(self.dirs, names, HashCache.for_dirs(self.dirs))
        return self._loras[names] if names else {}

    def _embeddings(self, loaded: Any) -> Any:
        """The textual-inversion embeddings that fit the loaded model."""
        from sdtui.models.embedding_db import EmbeddingDatabase

        if self.embeddings is None:
            cache = HashCache.for_dirs(self.dirs)
            self.embeddings = EmbeddingDatabase(self.dirs.embeddings, hashes=cache)
        return self.embeddings.for_model(loaded)

    def _facts(self, vae_path: Path | None, model: ModelChoice | None = None) -> Any:
        from sdtui.engine.txt2img import ModelFacts

        model = model or self.model
        cache = HashCache.for_dirs(self.dirs)
        model_hash = (
            model.checkpoint.short_hash
            if model.checkpoint
            else short_hash(cache.sha256(model.path))
        )
        vae_hash = short_hash(cache.sha256(vae_path)) if vae_path else None
        return ModelFacts(
            name=model.name,
            short_hash=model_hash,
            vae_name=vae_path.name if vae_path else None,
            vae_hash=vae_hash,
        )

    def _save(self, result: Any, facts: Any, context: Any, out_dir: Path | None = None) -> None:
        path = self._write(result.image, result, facts, grid=False, out_dir=out_dir)
        saved = SavedImage(path, result.infotext, result.params.seed)
        self.saved.append(saved)
        context.add_result(saved)

    def _write(
        self,
        image: Any,
        result: Any,
        facts: Any,
        *,
        grid: bool,
        basename: str = "grid",
        out_dir: Path | None = None,
        suffix: str = "",
    ) -> Path:
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
        folder = (
            out_dir
            or self.out_dir
            or self.naming.folder(self.dirs, self.kind, name_context, grid=grid)
        )
        folder.mkdir(parents=True, exist_ok=True)
        target = self.naming.path(
            folder,
            name_context,
            basename=basename if grid else "",
            suffix=suffix,
            short=grid,
            grid=grid,
        )
        json_params = {k: v for k, v in dataclasses.asdict(params).items() if v is not None}
        return write_output(image, target, self.naming, result.infotext, json_params)
