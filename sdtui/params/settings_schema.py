"""sdtui's settings, declared once: A1111's key, label, section, default, type, range, help.

The Settings screen, the settings file's validation and the generation parameters' defaults
are derived from `SETTINGS`. Where A1111 has a setting, its key and default are A1111's
(`randn_source` is the one deliberate difference: CPU noise gives the same image on every
machine). A setting that supplies a generation parameter's default when the request leaves
it unset (clip skip, eta, RNG source, ...) takes its type, range, choices and help from the
parameter schema and its default from `validate.SETTING_DEFAULTS`, so they cannot disagree.

`choices` is a tuple of fixed values, or the name of a list only known at run time
("checkpoints", "vaes", "upscalers", "face_restorers", "themes"): those values are checked
where the list is known (the screen offers only them), the file only requires a string.
Settings that nothing reads yet say so in their help text (`used=False`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sdtui.params.schema import spec, value_type
from sdtui.params.validate import SETTING_DEFAULTS

SAVING = "Saving images"
PATHS = "Paths for saving"
STABLE_DIFFUSION = "Stable Diffusion"
VAE = "VAE"
IMG2IMG = "img2img"
SAMPLER = "Sampler parameters"
PREVIEWS = "Live previews"
UPSCALING = "Upscaling"
FACES = "Face restoration"
UI = "User interface"
SECTIONS = (
    SAVING, PATHS, STABLE_DIFFUSION, VAE, IMG2IMG, SAMPLER, PREVIEWS, UPSCALING, FACES, UI
)  # fmt: skip

IMAGE_FORMATS = ("png", "jpg", "webp")
# sdtui.engine.refiner.HIRES_REFINER_PASSES (not imported: this module loads at start-up)
HIRES_REFINER_PASSES = ("first pass", "second pass", "both passes")
GRAPHICS_MODES = ("auto", "kitty", "sixel", "halfblock")  # sdtui.widgets.graphics's
NOT_USED = "Not used yet."


class SettingValueError(ValueError):
    """A value a setting does not accept; the message names the setting and what it takes."""


@dataclass(frozen=True)
class SettingSpec:
    name: str  # A1111's key where A1111 has the setting
    label: str
    section: str
    default: Any
    kind: type  # bool, int, float or str
    help: str = ""
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    choices: str | tuple[str, ...] | None = None  # fixed values, or a run-time list's name
    optional: bool = False  # None (unset) is a value
    used: bool = True  # False: nothing reads it yet (the help says so)
    a1111: bool = True  # A1111 has a setting of this name
    restart: bool = False  # read when sdtui starts: a change takes effect at the next start

    @property
    def description(self) -> str:
        text = self.help.rstrip()
        if not self.used:
            return f"{text} ({NOT_USED})" if text else NOT_USED
        return f"{text} (Applies at the next start.)" if self.restart else text

    @property
    def title(self) -> str:
        """ "Clip skip (CLIP_stop_at_last_layers)": how messages name the setting."""
        return f"{self.label} ({self.name})"


def _param(
    param_name: str, section: str, label: str | None = None, help: str | None = None
) -> SettingSpec:
    """The setting that supplies a generation parameter's default."""
    field_spec = spec(param_name)
    assert field_spec.setting is not None, param_name
    default = SETTING_DEFAULTS[field_spec.setting]
    return SettingSpec(
        field_spec.setting,
        label or field_spec.label,
        section,
        default,
        value_type(param_name),
        help or field_spec.help,
        field_spec.minimum,
        field_spec.maximum,
        field_spec.step,
        field_spec.choices,
        optional=default is None,
    )


def _setting(
    name: str, label: str, section: str, default: Any, help: str, **kw: Any
) -> SettingSpec:
    kind = kw.pop("kind", type(default))
    return SettingSpec(name, label, section, default, kind, help, **kw)


_OUTDIR_HELP = "Relative paths are inside the data dir."
_SPECS: tuple[SettingSpec, ...] = (
    # -- saving images ---------------------------------------------------------------------
    _setting(
        "samples_save", "Always save all generated images", SAVING, True,
        "Off: txt2img and img2img images go to <data-dir>/sdtui/temp (still shown; Save keeps "
        "one in log/images) and no before-* or mask copies are written; an output folder "
        "you name (--out, img2img Batch) still gets them.",
    ),
    _setting(
        "samples_format", "File format for images", SAVING, "png",
        "png keeps the infotext in a text chunk; jpg and webp in EXIF (grids: grid_format).",
        choices=IMAGE_FORMATS,
    ),
    _setting(
        "samples_filename_pattern", "Images filename pattern", SAVING, "",
        "[seed], [prompt_words], [model_name], [date], ...; empty: [seed] when saving to "
        "subdirectories, else [seed]-[prompt_spaces].",
    ),
    _setting(
        "save_images_add_number", "Add number to filename when saving", SAVING, True,
        "NNNNN- before the pattern, one more than the highest in the folder.",
    ),
    _setting(
        "grid_save", "Always save all generated image grids", SAVING, True,
        "Off: grids (batches, scripts) go to <data-dir>/sdtui/temp, still shown.",
    ),
    _setting(
        "grid_format", "File format for grids", SAVING, "png",
        "Grids (batch grids, X/Y/Z plots) are written in this format.", choices=IMAGE_FORMATS,
    ),
    _setting(
        "jpeg_quality", "Quality for saved jpeg and webp images", SAVING, 80,
        "1-100, for generated images, grids and Extras.", minimum=1, maximum=100, step=1,
    ),
    _setting(
        "enable_pnginfo", "Save generation parameters into image files", SAVING, True,
        "The infotext in PNG chunks / EXIF (off: files without parameters; save_txt still "
        "writes them beside).",
    ),
    _setting(
        "save_txt", "Create a text file with infotext next to every image", SAVING, False,
        "name.txt beside name.png.",
    ),
    _setting(
        "use_original_name_batch", "Use original name for output filename during batch "
        "process in extras tab", SAVING, True,
        "Extras batches write photo.png for photo.jpg instead of 00000.png.",
    ),
    _setting(
        "use_upscaler_name_as_suffix", "Use upscaler name as filename suffix in the extras "
        "tab", SAVING, False, "00000-R-ESRGAN 4x+.png.",
    ),
    _setting(
        "save_images_before_face_restoration", "Save a copy of image before doing face "
        "restoration.", SAVING, False,
        "NNNNN-<seed>-before-face-restoration.png beside the restored image, same infotext.",
    ),
    _setting(
        "save_images_before_highres_fix", "Save a copy of image before applying highres fix.",
        SAVING, False,
        "The first pass's image as NNNNN-<seed>-before-highres-fix.png, same infotext.",
    ),
    _setting(
        "save_images_before_color_correction", "Save a copy of image before applying color "
        "correction to img2img results", SAVING, False,
        "NNNNN-<seed>-before-color-correction.png (img2img with color correction on).",
    ),
    _setting(
        "save_mask", "For inpainting, save a copy of the greyscale mask", SAVING, False,
        "NNNNN-<seed>-mask.png after each inpainted image: the mask the overlay used "
        "(white = repainted), same infotext.",
    ),
    _setting(
        "save_mask_composite", "For inpainting, save a masked composite", SAVING, False,
        "NNNNN-<seed>-mask-composite.png: the result before the overlay, transparent where "
        "the mask is black.",
    ),
    _setting(
        "save_init_img", "Save init images when using img2img", SAVING, False,
        "Each init image as <md5 of its pixels>.png in the init images folder; the "
        "infotext gets \"Init image hash\".",
    ),
    # -- paths -----------------------------------------------------------------------------
    _setting(
        "outdir_samples", "Output directory for images", PATHS, "",
        "If set, every kind of image goes here instead of the folders below. " + _OUTDIR_HELP,
    ),
    _setting(
        "outdir_txt2img_samples", "Output directory for txt2img images", PATHS,
        "outputs/txt2img-images", _OUTDIR_HELP,
    ),
    _setting(
        "outdir_img2img_samples", "Output directory for img2img images", PATHS,
        "outputs/img2img-images", _OUTDIR_HELP,
    ),
    _setting(
        "outdir_extras_samples", "Output directory for images from extras tab", PATHS,
        "outputs/extras-images", _OUTDIR_HELP,
    ),
    _setting(
        "outdir_grids", "Output directory for grids", PATHS, "",
        "If set, every grid goes here instead of the folders below. " + _OUTDIR_HELP,
    ),
    _setting(
        "outdir_txt2img_grids", "Output directory for txt2img grids", PATHS,
        "outputs/txt2img-grids", _OUTDIR_HELP,
    ),
    _setting(
        "outdir_img2img_grids", "Output directory for img2img grids", PATHS,
        "outputs/img2img-grids", _OUTDIR_HELP,
    ),
    _setting(
        "outdir_init_images", "Directory for saving init images when using img2img", PATHS,
        "outputs/init-images", _OUTDIR_HELP,
    ),
    _setting(
        "outdir_save", "Directory for saving images using the Save button", PATHS, "log/images",
        _OUTDIR_HELP,
    ),
    _setting(
        "save_to_dirs", "Save images to a subdirectory", PATHS, True,
        "A subfolder per directory name pattern (per day by default).",
    ),
    _setting(
        "directories_filename_pattern", "Directory name pattern", PATHS, "[date]",
        "The subfolder's name: [date], [model_name], [prompt_words], ...",
    ),
    # -- Stable Diffusion ------------------------------------------------------------------
    _param(
        "model", STABLE_DIFFUSION, "Stable Diffusion checkpoint",
        "Loaded at start and used when a request names none; unset: the first one found.",
    ),
    _setting(
        "sd_checkpoints_limit", "Maximum number of checkpoints loaded at the same time",
        STABLE_DIFFUSION, 1, "The active one included; the others wait in RAM.",
        minimum=1, maximum=10, step=1, restart=True,
    ),
    _param("clip_skip", STABLE_DIFFUSION),
    _param("emphasis", STABLE_DIFFUSION),
    _setting(
        "comma_padding_backtrack", "Prompt word wrap length limit", STABLE_DIFFUSION, 20,
        "A chunk of 75 tokens ends at its last comma when that is at most this many tokens "
        "back; 0 turns it off. Not in the infotext (as in A1111).",
        minimum=0, maximum=74, step=1,
    ),
    _param("rng", STABLE_DIFFUSION),
    _param("tiling", STABLE_DIFFUSION),
    _setting(
        "hires_fix_refiner_pass", "Hires fix: which pass to enable refiner for",
        STABLE_DIFFUSION, "second pass",
        "With hires fix and a refiner: the pass the refiner may take over in (the infotext "
        "says so when it is not the second).",
        choices=HIRES_REFINER_PASSES,
    ),
    _setting(
        "sdxl_crop_top", "crop top coordinate", STABLE_DIFFUSION, 0,
        "SDXL's crop conditioning (0: an uncropped picture).", minimum=0, maximum=4096, step=1,
    ),
    _setting(
        "sdxl_crop_left", "crop left coordinate", STABLE_DIFFUSION, 0,
        "SDXL's crop conditioning (0: an uncropped picture).", minimum=0, maximum=4096, step=1,
    ),
    _setting(
        "sdxl_refiner_low_aesthetic_score", "SDXL low aesthetic score", STABLE_DIFFUSION, 2.5,
        "Used for the refiner model's negative prompt.", minimum=0.0, maximum=10.0, step=0.1,
    ),
    _setting(
        "sdxl_refiner_high_aesthetic_score", "SDXL high aesthetic score", STABLE_DIFFUSION, 6.0,
        "Used for the refiner model's prompt.", minimum=0.0, maximum=10.0, step=0.1,
    ),
    # -- VAE -------------------------------------------------------------------------------
    _param(
        "vae", VAE, "SD VAE",
        "Automatic: the checkpoint's own name.vae.* if there is one, else the baked-in VAE; "
        "None: the baked-in VAE.",
    ),
    # -- img2img ---------------------------------------------------------------------------
    _param(
        "inpainting_mask_weight", IMG2IMG, None,
        "How much of the masked image an inpainting model is shown (1: the masked area is "
        "blanked out; 0: the whole image).",
    ),
    _param("initial_noise_multiplier", IMG2IMG),
    _param(
        "img2img_fix_steps", IMG2IMG,
        "With img2img, do exactly the amount of steps the slider specifies",
        "Normally fewer steps run at low denoising strength.",
    ),
    _param("img2img_extra_noise", IMG2IMG),
    _param("img2img_color_correction", IMG2IMG),
    _setting(
        "return_mask", "For inpainting, include the greyscale mask in results", IMG2IMG, False,
        "Listed after each inpainted image (from <data-dir>/sdtui/temp): the mask the overlay "
        "used, as save_mask writes it.",
    ),
    _setting(
        "return_mask_composite", "For inpainting, include masked composite in results", IMG2IMG,
        False, "Listed after each inpainted image: the result before the overlay, transparent "
        "where the mask is black.",
    ),
    # -- sampler parameters ----------------------------------------------------------------
    _param("eta_ddim", SAMPLER),
    _param("eta", SAMPLER, "Eta for ancestral samplers"),
    _param("s_churn", SAMPLER),
    _param("s_tmin", SAMPLER),
    _param("s_tmax", SAMPLER),
    _param("s_noise", SAMPLER),
    _param("sigma_min", SAMPLER),
    _param("sigma_max", SAMPLER),
    _param("rho", SAMPLER),
    _param("ensd", SAMPLER),
    # -- live previews ---------------------------------------------------------------------
    _setting(
        "live_previews_enable", "Show live previews of the created image", PREVIEWS, True, "",
    ),
    _setting(
        "show_progress_every_n_steps", "Live preview display period", PREVIEWS, 10,
        "In sampling steps; 0 or -1: no previews while sampling (the finished images show "
        "at the end of each batch).",
        minimum=-1, maximum=32, step=1,
    ),
    _setting(
        "show_progress_type", "Live preview method", PREVIEWS, "Approx NN",
        "Full: the VAE (slow: a whole decode per preview). The others draw sdtui's \"Approx "
        "cheap\", a linear map fitted to the model's VAE (A1111's Approx NN and TAESD need "
        "weights sdtui does not have).",
        choices=("Full", "Approx NN", "Approx cheap", "TAESD"),
    ),
    # -- upscaling -------------------------------------------------------------------------
    _setting(
        "ESRGAN_tile", "Tile size for ESRGAN upscalers", UPSCALING, 192,
        "In pixels; 0: no tiling.", minimum=0, maximum=512, step=16,
    ),
    _setting(
        "ESRGAN_tile_overlap", "Tile overlap for ESRGAN upscalers", UPSCALING, 8,
        "In pixels; more hides seams.", minimum=0, maximum=48, step=1,
    ),
    _setting(
        "upscaling_max_images_in_cache", "Maximum number of images in upscaling cache",
        UPSCALING, 5, "Extras keeps this many upscaled images, so changing only Upscaler 2's "
        "visibility or the face settings does not upscale again.",
        minimum=0, maximum=10, step=1,
    ),
    _setting(
        "upscaler_for_img2img", "Upscaler for img2img", UPSCALING, None,
        "Resizes the init image when img2img enlarges it; unset: Lanczos.",
        kind=str, optional=True, choices="upscalers",
    ),
    # -- face restoration ------------------------------------------------------------------
    _param("restore_faces", FACES),
    _setting(
        "face_restoration_model", "Face restoration model", FACES, "CodeFormer",
        "What \"Restore faces\" uses in txt2img and img2img (the infotext names it).",
        choices="face_restorers",
    ),
    _setting(
        "code_former_weight", "CodeFormer weight", FACES, 0.5,
        "0: maximum effect; 1: minimum effect (\"Restore faces\" with CodeFormer).",
        minimum=0.0, maximum=1.0, step=0.001,
    ),
    _setting(
        "face_restoration_unload", "Move face restoration model from VRAM into RAM after "
        "processing", FACES, False,
        "After each image, the restorer's network goes back to RAM (frees VRAM between jobs; "
        "slower when restoring many images).",
    ),
    # -- user interface (sdtui's own, except the keyedit ones) -----------------------------
    _setting(
        "graphics", "Image drawing", UI, "auto",
        "auto: ask the terminal; kitty, sixel, or coloured half-blocks. --graphics wins.",
        choices=GRAPHICS_MODES, a1111=False, restart=True,
    ),
    _setting(
        "theme", "Theme", UI, "textual-dark", "The colours of the app (Textual's themes).",
        choices="themes", a1111=False,
    ),
    _setting(
        "keyedit_precision_attention", "Precision for (attention:1.1) when editing the prompt "
        "with Ctrl+up/down", UI, 0.1, "", minimum=0.01, maximum=0.2, step=0.001,
    ),
    _setting(
        "keyedit_precision_extra", "Precision for <extra networks:0.9> when editing the prompt "
        "with Ctrl+up/down", UI, 0.05, "", minimum=0.01, maximum=0.2, step=0.001,
    ),
    _setting(
        "keyedit_delimiters", "Word delimiters when editing the prompt with Ctrl+up/down", UI,
        ".,\\/!?%^*;:{}=`~() ", "Tab and line breaks always count as delimiters too.",
    ),
)  # fmt: skip

SETTINGS: dict[str, SettingSpec] = {setting.name: setting for setting in _SPECS}


def setting(name: str) -> SettingSpec:
    return SETTINGS[name]


def in_section(section: str) -> list[SettingSpec]:
    return [spec for spec in _SPECS if spec.section == section]


def defaults() -> dict[str, Any]:
    return {name: spec.default for name, spec in SETTINGS.items()}


def _number(spec: SettingSpec, value: Any) -> int | float:
    if isinstance(value, str):
        text = value.strip()
        try:
            value = int(text) if spec.kind is int else float(text)
        except ValueError:
            kind = "a whole number" if spec.kind is int else "a number"
            raise SettingValueError(f"{spec.title} must be {kind}, got {text!r}") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SettingValueError(f"{spec.title} must be a number, got {value!r}")
    if spec.kind is int:
        if isinstance(value, float) and not value.is_integer():
            raise SettingValueError(f"{spec.title} must be a whole number, got {value!r}")
        value = int(value)
    else:
        value = float(value)
        if not math.isfinite(value):
            raise SettingValueError(f"{spec.title} must be a finite number, got {value!r}")
    low, high = spec.minimum, spec.maximum
    if (low is not None and value < low) or (high is not None and value > high):
        raise SettingValueError(f"{spec.title} must be between {low:g} and {high:g}, got {value!r}")
    return value


def convert(spec: SettingSpec, value: Any) -> Any:
    """`value` as the setting's type (numbers may be given as text), or SettingValueError
    naming the setting and the range or choices it accepts."""
    if value is None or (spec.optional and value == ""):
        if spec.optional:
            return None
        raise SettingValueError(f"{spec.title} needs a value")
    if spec.kind is bool:
        if not isinstance(value, bool):
            raise SettingValueError(f"{spec.title} must be true or false, got {value!r}")
        return value
    if spec.kind in (int, float):
        return _number(spec, value)
    if not isinstance(value, str):
        raise SettingValueError(f"{spec.title} must be text, got {value!r}")
    if isinstance(spec.choices, tuple) and value not in spec.choices:
        raise SettingValueError(f"{spec.title} {value!r} is not one of: {', '.join(spec.choices)}")
    return value
