"""Every key binding of the app, with an id, in one table; users remap them by id.

`<data-dir>/sdtui/keymap.yaml` maps binding ids to keys (posting's keymap pattern):

    txt2img.generate: f5,ctrl+g
    app.help: f1

Keys are Textual key names, several separated by commas. Generate has keys that every
terminal sends (F5, Ctrl+G); Ctrl+Enter only works where the terminal reports it. Keys that
the text fields use themselves (TextArea's F6/F7, Ctrl+X/C/V/W/U/K/Z/Y/A/E/D) are avoided
for screen actions, so they work while typing; `tests/test_keymap.py` checks for clashes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from textual.binding import Binding


@dataclass(frozen=True)
class KeySpec:
    id: str
    keys: str
    action: str
    description: str
    show: bool = True
    priority: bool = False


def _tab(tab_id: str, number: int, macos_key: str, label: str) -> KeySpec:
    return KeySpec(
        f"app.tab.{tab_id}",
        f"alt+{number},{macos_key}",
        f"switch_tab('{tab_id}')",
        f"{label} tab",
        show=False,
        priority=True,
    )


APP_KEYS: tuple[KeySpec, ...] = (
    KeySpec("app.help", "f1,question_mark", "help", "Help"),
    KeySpec("app.quit", "ctrl+q", "quit", "Quit", show=False, priority=True),
    # Alt+N arrives as ESC N from most terminals (tmux, xterm, SSH), which Textual reads as
    # the character macOS types for Option+N ("¢" for Alt+4): both mean the tab, and take
    # priority over text fields so they work while typing a prompt.
    _tab("txt2img", 1, "inverted_exclamation_mark", "txt2img"),
    _tab("img2img", 2, "trade_mark_sign", "img2img"),
    _tab("extras", 3, "pound_sign", "Extras"),
    _tab("pnginfo", 4, "cent_sign", "PNG Info"),
    _tab("merger", 5, "infinity", "Checkpoint Merger"),
    _tab("train", 6, "section_sign", "Train"),
    _tab("settings", 7, "pilcrow_sign", "Settings"),
)

TXT2IMG_KEYS: tuple[KeySpec, ...] = (
    KeySpec("txt2img.generate", "f5,ctrl+g,ctrl+enter", "generate", "Generate"),
    KeySpec("txt2img.interrupt", "escape,f4", "interrupt", "Interrupt"),
    KeySpec("txt2img.skip", "f3", "skip", "Skip"),
    KeySpec("txt2img.forever", "f2", "toggle_forever", "Forever"),
    KeySpec("txt2img.random_seed", "ctrl+r", "random_seed", "Random seed"),
    KeySpec("txt2img.reuse_seed", "ctrl+l", "reuse_seed", "Last seed"),
    KeySpec("txt2img.swap_size", "ctrl+s", "swap_size", "Swap W/H", show=False),
    KeySpec("txt2img.read_params", "alt+v", "read_params", "Read params", show=False),
    KeySpec("txt2img.copy_infotext", "alt+c", "copy_infotext", "Copy infotext", show=False),
    KeySpec("txt2img.open_folder", "alt+o", "open_folder", "Folder", show=False),
    KeySpec("txt2img.next_image", "alt+right", "select_image(1)", "Next image", show=False),
    KeySpec("txt2img.previous_image", "alt+left", "select_image(-1)", "Prev image", show=False),
    KeySpec("txt2img.extra_networks", "ctrl+n", "extra_networks", "Networks"),
    KeySpec("txt2img.styles", "ctrl+t", "styles", "Styles"),
    KeySpec("txt2img.apply_styles", "alt+a", "apply_styles", "Apply styles", show=False),
    KeySpec("txt2img.save_style", "alt+y", "save_style", "Save as style", show=False),
    KeySpec("txt2img.save_image", "alt+s", "save_image", "Save image", show=False),
    KeySpec("txt2img.zip_images", "alt+z", "zip_images", "Zip batch", show=False),
    KeySpec("txt2img.send_img2img", "alt+i", "send_to('img2img')", "→ img2img", show=False),
    KeySpec("txt2img.send_inpaint", "alt+n", "send_to('inpaint')", "→ inpaint", show=False),
    KeySpec("txt2img.send_extras", "alt+e", "send_to('extras')", "→ extras", show=False),
)

PROMPT_KEYS: tuple[KeySpec, ...] = (
    KeySpec("prompt.weight_up", "ctrl+up", "weight(1)", "Weight +", show=False),
    KeySpec("prompt.weight_down", "ctrl+down", "weight(-1)", "Weight -", show=False),
)

PNGINFO_KEYS: tuple[KeySpec, ...] = (
    KeySpec("pnginfo.send_txt2img", "alt+t", "send_to('txt2img')", "→ txt2img"),
    KeySpec("pnginfo.send_img2img", "alt+i", "send_to('img2img')", "→ img2img", show=False),
    KeySpec("pnginfo.send_inpaint", "alt+n", "send_to('inpaint')", "→ inpaint", show=False),
    KeySpec("pnginfo.send_extras", "alt+e", "send_to('extras')", "→ extras", show=False),
    KeySpec("pnginfo.copy_infotext", "alt+c", "copy_infotext", "Copy infotext"),
    KeySpec("pnginfo.open_path", "ctrl+o", "open_path", "Path"),
    KeySpec("pnginfo.refresh", "ctrl+r", "refresh", "Refresh", show=False),
)

SETTINGS_KEYS: tuple[KeySpec, ...] = (
    KeySpec("settings.apply", "ctrl+s", "apply", "Apply"),
    KeySpec("settings.reload", "ctrl+r", "reload", "Reload"),
    KeySpec("settings.section_defaults", "alt+d", "section_defaults", "Section defaults"),
    KeySpec("settings.filter", "ctrl+f", "focus_filter", "Filter"),
)

ALL_KEYS = APP_KEYS + TXT2IMG_KEYS + PROMPT_KEYS + PNGINFO_KEYS + SETTINGS_KEYS
KEYMAP_FILE = "keymap.yaml"


def bindings(specs: tuple[KeySpec, ...]) -> list[Binding]:
    return [
        Binding(
            spec.keys,
            spec.action,
            spec.description,
            show=spec.show,
            priority=spec.priority,
            id=spec.id,
        )
        for spec in specs
    ]


def split_keys(keys: str) -> list[str]:
    return [key.strip() for key in keys.split(",") if key.strip()]


class KeymapError(ValueError):
    pass


def load_keymap(path: Path) -> dict[str, str]:
    """The user's remappings (id -> keys). A missing file is no remapping; a file that does
    not parse or names unknown ids raises KeymapError with what is wrong."""
    import yaml

    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise KeymapError(f"{path}: not a readable YAML mapping: {error}") from error
    if not isinstance(data, dict):
        raise KeymapError(f"{path}: expected `binding.id: keys` lines")
    known = {spec.id for spec in ALL_KEYS}
    unknown = sorted(str(key) for key in data if key not in known)
    if unknown:
        raise KeymapError(
            f"{path}: unknown binding ids {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    return {str(key): str(value) for key, value in data.items()}


def clashes(keymap: dict[str, str] | None = None) -> list[str]:
    """Keys bound twice where both bindings are active at once (app + one screen)."""
    effective = {spec.id: (keymap or {}).get(spec.id, spec.keys) for spec in ALL_KEYS}
    problems = []
    for group in (
        APP_KEYS + TXT2IMG_KEYS,
        PROMPT_KEYS + TXT2IMG_KEYS + APP_KEYS,
        APP_KEYS + PNGINFO_KEYS,
        APP_KEYS + SETTINGS_KEYS,
        APP_KEYS + IMG2IMG_KEYS,
        PROMPT_KEYS + IMG2IMG_KEYS + APP_KEYS,
        PAINT_KEYS + IMG2IMG_KEYS + APP_KEYS,
        APP_KEYS + EXTRAS_KEYS,
    ):
        seen: dict[str, str] = {}
        for spec in group:
            for key in split_keys(effective[spec.id]):
                other = seen.setdefault(key, spec.id)
                if other != spec.id:
                    problems.append(f"{key}: {other} and {spec.id}")
    return sorted(set(problems))


def _paint_colour(number: int) -> KeySpec:
    key = str(number % 10)
    return KeySpec(f"paint.colour_{key}", key, f"palette({number - 1})", f"Colour {key}", False)


# The painting canvas (img2img sketch / inpaint), active while it has focus: printable keys are
# safe there because it is not a text field.
PAINT_KEYS: tuple[KeySpec, ...] = (
    KeySpec("paint.left", "left", "move(-1, 0)", "Cursor left", show=False),
    KeySpec("paint.right", "right", "move(1, 0)", "Cursor right", show=False),
    KeySpec("paint.up", "up", "move(0, -1)", "Cursor up", show=False),
    KeySpec("paint.down", "down", "move(0, 1)", "Cursor down", show=False),
    KeySpec("paint.left_far", "shift+left", "move(-8, 0)", "Cursor left x8", show=False),
    KeySpec("paint.right_far", "shift+right", "move(8, 0)", "Cursor right x8", show=False),
    KeySpec("paint.up_far", "shift+up", "move(0, -8)", "Cursor up x8", show=False),
    KeySpec("paint.down_far", "shift+down", "move(0, 8)", "Cursor down x8", show=False),
    KeySpec("paint.pen", "space", "toggle_pen", "Pen"),
    KeySpec("paint.smaller", "left_square_bracket", "brush(-1)", "Brush -"),
    KeySpec("paint.bigger", "right_square_bracket", "brush(1)", "Brush +"),
    KeySpec("paint.undo", "u,ctrl+z", "undo", "Undo"),
    KeySpec("paint.redo", "U,ctrl+y", "redo", "Redo"),
    KeySpec("paint.eyedropper", "e", "eyedropper", "Eyedropper", show=False),
    KeySpec("paint.rectangle", "r", "rectangle", "Rectangle"),
    KeySpec("paint.clear", "c", "clear", "Clear", show=False),
    KeySpec("paint.eraser", "x", "toggle_eraser", "Eraser", show=False),
    KeySpec("paint.colour_entry", "number_sign", "colour_entry", "Colour #", show=False),
    *(_paint_colour(number) for number in range(1, 11)),
)


def _for_tab(specs: tuple[KeySpec, ...], tab_id: str) -> tuple[KeySpec, ...]:
    """txt2img's keys under another tab's ids (remappable apart from txt2img's)."""
    return tuple(replace(spec, id=f"{tab_id}.{spec.id.split('.', 1)[1]}") for spec in specs)


# The img2img tab: txt2img's keys, plus the sub-tabs (img2img, sketch, inpaint, ...), the input
# image, A1111's "auto detect size" and the painting canvas.
IMG2IMG_KEYS: tuple[KeySpec, ...] = (
    *_for_tab(TXT2IMG_KEYS, "img2img"),
    KeySpec("img2img.next_mode", "alt+m", "next_mode", "Sub-tab"),
    KeySpec("img2img.open_image", "ctrl+o", "open_image", "Open image"),
    KeySpec("img2img.auto_size", "alt+d", "auto_size", "Size from image", show=False),
    KeySpec("img2img.paint", "alt+p", "paint", "Paint", show=False),
)
ALL_KEYS = ALL_KEYS + PAINT_KEYS + IMG2IMG_KEYS  # known to `load_keymap`: users remap them

RESULT_KEY_IDS = (
    "copy_infotext", "open_folder", "next_image", "previous_image", "save_image",
    "zip_images", "send_img2img", "send_inpaint",
)  # fmt: skip

# The Extras tab: run and interrupt as in txt2img, the input sub-tabs (single image, batch,
# batch from directory), the before/after view and the result actions of a generation tab.
EXTRAS_KEYS: tuple[KeySpec, ...] = (
    KeySpec("extras.generate", "f5,ctrl+g,ctrl+enter", "generate", "Generate"),
    KeySpec("extras.interrupt", "escape,f4", "interrupt", "Interrupt"),
    KeySpec("extras.next_mode", "alt+m", "next_mode", "Input"),
    KeySpec("extras.open_image", "ctrl+o", "open_image", "Open image"),
    KeySpec("extras.compare", "alt+b", "toggle_before", "Before/after"),
    KeySpec("extras.refresh", "ctrl+r", "refresh_upscalers", "Refresh upscalers", show=False),
    *_for_tab(
        tuple(spec for spec in TXT2IMG_KEYS if spec.id.split(".", 1)[1] in RESULT_KEY_IDS),
        "extras",
    ),
)
ALL_KEYS = ALL_KEYS + EXTRAS_KEYS
