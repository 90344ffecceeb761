"""The one object the TUI talks to: data dirs, plugins, the runtime and what it is doing.

    backend = Backend(dirs)
    backend.add_listener(on_event)       # job events and BackendStatus changes, any thread
    backend.start()                      # blocking (imports torch): call it off the UI thread
    handle = backend.submit_txt2img(params)
    handle = backend.submit_img2img(params, [init_image], mask)
    handle = backend.submit_img2img_batch(params, BatchSpec(Path("in"), Path("out")))

Constructing a Backend is cheap and torch-free, so the app paints its first frame before
`start()` loads the plugins, starts the runtime and queues the default model's load.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sdtui.paths import DataDirs
from sdtui.services.settings import Settings


@dataclass(frozen=True)
class BackendStatus:
    """What the status bar shows."""

    phase: str = "starting"  # starting, ready, failed
    message: str = "starting sdtui"
    checkpoint: str | None = None
    checkpoint_hash: str | None = None
    native_size: int | None = None  # the checkpoint's training resolution, where it says
    vae: str | None = None
    device: str | None = None
    queue_length: int = 0
    error: str | None = None


Listener = Callable[[Any], None]


class Backend:
    def __init__(
        self,
        dirs: DataDirs,
        *,
        device: str | None = None,
        precision: str | None = None,
        settings: Mapping[str, Any] | None = None,
        host_factory: Callable[[], Any] | None = None,
        preload: bool = True,
    ) -> None:
        self.dirs = dirs
        self.device = device
        self.precision = precision
        # the settings file (torch-free to read); `settings` overrides its generation defaults
        self.user_settings = Settings.load(dirs)
        self.settings = {**self.user_settings.generation_defaults(), **(settings or {})}
        self.preload = preload
        self._host_factory = host_factory
        self.host: Any = None
        self.unusable_upscalers: list[Any] = []  # (path, reason) of upscaler files
        self.upscale_cache: Any = None  # the Extras tab's UpscaleCache, made on first use
        self.runtime: Any = None
        self.status = BackendStatus()
        self._listeners: list[Listener] = []
        self._lock = threading.RLock()
        self._ready = threading.Event()
        self.embeddings: Any = None  # EmbeddingDatabase, kept between jobs (cheap reloads)
        # jobs that load the checkpoint the status names before it is loaded: if one ends
        # without loading it, the status goes back to the checkpoint that is loaded
        self._switches: dict[int, tuple[Any, str]] = {}  # job id: (ModelChoice, job kind)
        self._load_failure: str | None = None  # the status message saying a load failed

    # -- events ----------------------------------------------------------------------------

    def add_listener(self, listener: Listener) -> None:
        """`listener(event)` receives job events and `BackendStatus` values, on any thread."""
        with self._lock:
            self._listeners.append(listener)

    def _emit(self, event: Any) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener(event)

    def _update(self, **changes: Any) -> None:
        # emitted under the lock: snapshots from different threads arrive in order, so an
        # older one (say, without the hash) never lands after a newer one
        with self._lock:
            self.status = replace(self.status, **changes)
            self._emit(self.status)

    # -- start-up --------------------------------------------------------------------------

    def start(self) -> None:
        """Load plugins, start the runtime, queue the default model's load. Errors end in
        the `failed` phase with a message; they are not raised."""
        try:
            self._start()
        except Exception as error:  # shown to the user; the app keeps running
            self._update(phase="failed", message=f"start-up failed: {error}", error=str(error))
        finally:
            self._ready.set()

    def _start(self) -> None:
        from sdtui.plugins import get_host
        from sdtui.runtime import Runtime

        self.dirs.create()
        self._update(message="loading plugins")
        self.host = (self._host_factory or get_host)()
        from sdtui_plugins.builtin.model_upscalers import register_folder_upscalers

        self.unusable_upscalers = register_folder_upscalers(self.host, self.dirs)
        from sdtui_plugins.builtin.face_restorers import configure_face_restorers

        configure_face_restorers(self.dirs)
        self._update(message="starting the runtime")
        self.runtime = Runtime.start(
            device=self.device,
            precision=self.precision,
            plugin_host=self.host,
            max_models_in_ram=self.user_settings["sd_checkpoints_limit"] - 1,
        )
        self.runtime.jobs.add_listener(self._on_job_event)
        self._update(device=self.runtime.describe())
        model = self.default_model()
        if model is None:
            self._update(
                phase="ready",
                message=f"no checkpoints: put .safetensors/.ckpt files in {self.dirs.checkpoints}",
            )
            return
        self._update(
            phase="ready", message="ready", checkpoint=model.name, native_size=_size_of(model)
        )
        if self.preload:
            self.load_model(model, self.settings.get("sd_vae") or "Automatic")

    def wait_ready(self, timeout: float | None = None) -> bool:
        return self._ready.wait(timeout)

    @property
    def ready(self) -> bool:
        return self.status.phase == "ready"

    def _on_job_event(self, event: Any) -> None:
        from sdtui.runtime.job_events import FINAL_EVENTS, Queued

        if isinstance(event, (Queued, *FINAL_EVENTS)):
            with self._lock:  # after `_track_switch`: a job's id is registered before it ends
                self._update(queue_length=len(self.runtime.jobs.queued()))
                if isinstance(event, FINAL_EVENTS) and event.job_id in self._switches:
                    self._switch_ended(*self._switches.pop(event.job_id), event)
        self._emit(event)

    def _track_switch(self, model: Any, vae: str, submit: Callable[[], Any]) -> Any:
        """Name `model` in the status and submit the job that loads it (`submit()`)."""
        with self._lock:
            self._update(
                checkpoint=model.name, checkpoint_hash=None, vae=None, native_size=_size_of(model)
            )
            handle = submit()
            self._switches[handle.id] = (model, handle.kind)
        threading.Thread(target=self._describe_model, args=(model, vae), daemon=True).start()
        return handle

    def _switch_ended(self, model: Any, kind: str, event: Any) -> None:
        """A job that was to load `model` ended: if `model` is not what the runtime holds
        now (the load failed, or the job ended before it), name the checkpoint that is."""
        from sdtui.runtime.job_events import Failed, Finished

        loaded, vae_path = self._loaded_model()
        if isinstance(event, Finished) or (loaded is not None and loaded.path == model.path):
            if self.status.message == self._load_failure:
                self._update(message="ready")
            return
        if self.status.checkpoint != model.name:
            return  # the status already names a later choice
        changes: dict[str, Any] = {"checkpoint": None, "checkpoint_hash": None, "vae": None}
        changes["native_size"] = _size_of(loaded) if loaded is not None else None
        if loaded is not None:
            changes["checkpoint"] = loaded.name
        if kind == "load" and isinstance(event, Failed):
            self._load_failure = changes["message"] = f"loading {model.name} failed"
        self._update(**changes)
        if loaded is not None:
            vae = str(vae_path) if vae_path is not None else "None"
            threading.Thread(target=self._describe_model, args=(loaded, vae), daemon=True).start()

    def _loaded_model(self) -> tuple[Any, Any]:
        """(ModelChoice, VAE path or None) of the runtime's active model; (None, None)."""
        from pathlib import Path

        from sdtui.services.generation import ModelChoice

        key = self.runtime.models.active_key if self.runtime is not None else None
        if not isinstance(key, str) or "|" not in key:
            return None, None
        path_text, vae_text = key.rsplit("|", 1)
        path = Path(path_text)
        vae_path = None if vae_text == "None" else Path(vae_text)
        for info in self.checkpoints():
            if info.path == path:
                return ModelChoice(info.path, info.model_name, info), vae_path
        return ModelChoice(path, path.stem), vae_path

    # -- models ----------------------------------------------------------------------------

    def checkpoints(self) -> list[Any]:
        from sdtui.models.discovery import discover_checkpoints

        return discover_checkpoints(self.dirs)

    def default_model(self) -> Any:
        from sdtui.models.discovery import ModelNotFoundError
        from sdtui.services.generation import choose_checkpoint

        wanted = self.status.checkpoint or self.settings.get("sd_model_checkpoint")
        for query in (wanted, None):  # a setting naming a missing file: the first one found
            try:
                return choose_checkpoint(self.dirs, query)
            except ModelNotFoundError:
                continue
        return None

    def choose_model(self, query: str | None) -> Any:
        from sdtui.services.generation import choose_checkpoint

        return choose_checkpoint(self.dirs, query or self.status.checkpoint)

    def load_model(self, model: Any, vae: str = "Automatic") -> Any:
        from sdtui.services.generation import LoadModelJob

        self._require_runtime()
        job = LoadModelJob(self.runtime, self.host, self.dirs, model, vae)
        name = f"load {model.name}"
        return self._track_switch(
            model, vae, lambda: self.runtime.jobs.submit(job, name=name, kind="load")
        )

    def _describe_model(self, model: Any, vae: str) -> None:
        """Hash and VAE name for the status bar (hashing a big file takes a while)."""
        from sdtui.models.discovery import resolve_vae
        from sdtui.models.hashes import HashCache, short_hash

        try:
            vae_path = resolve_vae(model.path, vae, self.dirs)
            digest = short_hash(HashCache.for_dirs(self.dirs).sha256(model.path))
        except (OSError, ValueError):
            return
        with self._lock:  # checked and set at once: a failed load may name another model
            if self.status.checkpoint == model.name:
                self._update(checkpoint_hash=digest, vae=vae_path.name if vae_path else "None")

    # -- jobs ------------------------------------------------------------------------------

    def choices(self) -> dict[str, list[str]]:
        """Registry-backed choices for the forms ({} until the plugins are loaded)."""
        from sdtui.models.discovery import vae_choices
        from sdtui.services.requests import registry_choices

        if self.host is None:
            return {}
        choices = registry_choices(self.host)
        # names, not titles: a title carries the hash, and hashing every file takes minutes
        choices["model"] = [info.name for info in self.checkpoints()]
        choices["vae"] = ["Automatic", "None", *vae_choices(self.dirs)]
        return choices

    def prepare(self, params: Any) -> Any:
        """Checked and resolved parameters (raises ParameterError / UnknownNameError)."""
        from sdtui.services.requests import prepare_txt2img

        self._require_runtime()
        return prepare_txt2img(params, self.host, settings=self.settings)

    def prepare_img2img(self, params: Any) -> Any:
        """`prepare` for img2img (hires fix off)."""
        from sdtui.services.requests import prepare_img2img

        self._require_runtime()
        return prepare_img2img(params, self.host, settings=self.settings)

    def submit_txt2img(self, params: Any, **script: Any) -> tuple[Any, Any]:
        """Queue a txt2img job for resolved `params`; returns (handle, job). `script`:
        the job's `script`, `script_args` and `random_seed` (A1111's Script dropdown)."""
        from sdtui.services.generation import Txt2ImgJob

        return self._submit_generation(Txt2ImgJob, params, **_script_inputs(script))

    def submit_img2img(
        self, params: Any, init_images: Sequence[Any], mask: Any = None, **script: Any
    ) -> tuple[Any, Any]:
        """Queue an img2img job (inpainting with `mask`, white = repaint) for resolved
        `params` and PIL `init_images`; returns (handle, job). `script`: as for txt2img."""
        from sdtui.services.img2img_job import Img2ImgJob

        upscaler = self.user_settings["upscaler_for_img2img"]
        return self._submit_generation(
            Img2ImgJob,
            params,
            init_images=list(init_images),
            mask=mask,
            resize_upscaler=upscaler,
            **_script_inputs(script),
        )

    def submit_img2img_batch(self, params: Any, batch: Any, **script: Any) -> tuple[Any, Any]:
        """Queue img2img over a folder (`batch`, a checked `BatchSpec` of
        `sdtui.services.img2img_batch`) for resolved `params`; returns (handle, job), and
        the job's `report` says what became of each image. `script`: as for txt2img, run on
        each input (A1111's process_batch)."""
        from sdtui.services.img2img_batch import Img2ImgBatchJob

        upscaler = self.user_settings["upscaler_for_img2img"]
        return self._submit_generation(
            Img2ImgBatchJob, params, batch=batch, resize_upscaler=upscaler,
            **_script_inputs(script),
        )  # fmt: skip

    def refresh_upscalers(self) -> list[Any]:
        """Scan the upscaler folders again (files added or removed since start-up) and
        return the unusable files with the reason. Call off the UI thread (it probes every
        file); a BackendStatus event tells the screens to list the new choices."""
        from sdtui_plugins.builtin.model_upscalers import register_folder_upscalers

        self._require_runtime()
        with self._lock:
            self.unusable_upscalers = register_folder_upscalers(self.host, self.dirs)
        self._emit(self.status)
        return self.unusable_upscalers

    def prepare_extras(self, params: Any) -> Any:
        """Checked Extras parameters, the upscaler names spelled as registered (raises
        ParameterError listing every problem)."""
        from sdtui.services.extras_job import check_extras_request

        self._require_runtime()
        return check_extras_request(params, self.host)

    def submit_extras(
        self, params: Any, inputs: Sequence[Any], out_dir: Path | None = None
    ) -> tuple[Any, Any]:
        """Queue the Extras tab's job for checked `params` over `inputs` (ExtrasInput of
        `sdtui.services.extras_job`); returns (handle, job). Upscaled images are cached
        between jobs (A1111's upscaling_max_images_in_cache)."""
        from sdtui.services.extras import UpscaleCache
        from sdtui.services.extras_job import ExtrasJob, ExtrasOptions

        self._require_runtime()
        size = int(self.user_settings["upscaling_max_images_in_cache"])
        if self.upscale_cache is None or self.upscale_cache.size != size:
            self.upscale_cache = UpscaleCache(size)
        options = ExtrasOptions.from_settings(self.user_settings)
        job = ExtrasJob(
            self.host, self.dirs, params, list(inputs), options, out_dir, self.upscale_cache
        )
        return self.runtime.jobs.submit(job, name="extras", kind="extras"), job

    def _submit_generation(self, job_class: Any, params: Any, **inputs: Any) -> tuple[Any, Any]:
        """Queue a `Txt2ImgJob` (or subclass) job; the status names its checkpoint."""
        from sdtui.services.generation import RunSettings

        self._require_runtime()
        model = self.choose_model(params.model)
        settings = self.user_settings
        previews = settings["live_previews_enable"] and settings["show_progress_every_n_steps"]
        kind = job_class.kind
        job = job_class(
            self.runtime,
            self.host,
            self.dirs,
            params,
            model,
            naming=settings.output_naming(kind),
            embeddings=self._embeddings(),
            preview_every=max(0, int(previews or 0)),
            run_settings=RunSettings.from_settings(settings),
            **inputs,
        )

        def submit() -> Any:
            return self.runtime.jobs.submit(job, name=kind, kind=kind)

        if model.name == self.status.checkpoint:
            return submit(), job
        return self._track_switch(model, params.vae or "Automatic", submit), job

    def apply_settings(self, settings: Settings) -> None:
        """Use `settings` from the next request on (defaults of unset fields, file names)."""
        self.user_settings = settings
        self.settings = settings.generation_defaults()

    def _embeddings(self) -> Any:
        if self.embeddings is None:
            from sdtui.models.embedding_db import EmbeddingDatabase
            from sdtui.models.hashes import HashCache

            self.embeddings = EmbeddingDatabase(
                self.dirs.embeddings, hashes=HashCache.for_dirs(self.dirs)
            )
        return self.embeddings

    def interrupt(self) -> bool:
        return bool(self.runtime and self.runtime.jobs.interrupt())

    def skip(self) -> bool:
        return bool(self.runtime and self.runtime.jobs.skip())

    def memory(self) -> str | None:
        """Text like "cpu · fp32 · 12.1 GiB free"; None before the runtime exists."""
        return self.runtime.describe(memory=True) if self.runtime else None

    def _require_runtime(self) -> None:
        if self.runtime is None:
            raise RuntimeError(self.status.error or "sdtui is still starting; try again shortly")

    def shutdown(self) -> None:
        if self.runtime is not None:
            self.runtime.shutdown(wait=True, timeout=10)


SCRIPT_INPUTS = ("script", "script_args", "random_seed")


def _script_inputs(script: Mapping[str, Any]) -> dict[str, Any]:
    """The job arguments of a script request; anything else is a mistake."""
    unknown = set(script) - set(SCRIPT_INPUTS)
    if unknown:
        raise TypeError(f"unexpected arguments: {', '.join(sorted(unknown))}")
    return dict(script)


def _size_of(model: Any) -> int | None:
    from sdtui.models.default_model import native_size

    return native_size(model.path)
