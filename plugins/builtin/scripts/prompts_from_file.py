"""A1111's Prompts from file or textbox (`scripts/prompts_from_file.py`).

    sdtui generate --script "Prompts from file" --script-arg file=prompts.txt
    sdtui generate --script prompts_from_file --script-arg 'prompt_txt=a cat
    --prompt "a dog" --steps 10 --seed 5 --sampler_name "Euler a"'

One job per non-empty line: a plain line is the prompt; a line starting with `--` is
A1111's `--tag value` arguments (shell quoting; `--prompt` and `--negative_prompt` take
every word up to the next `--tag`). The tags are A1111's: sd_model, outpath_samples,
outpath_grids, prompt_for_display, prompt, negative_prompt, styles, seed,
subseed_strength, subseed, seed_resize_from_h, seed_resize_from_w, sampler_index,
sampler_name, batch_size, n_iter, steps, cfg_scale, width, height, restore_faces, tiling,
do_not_save_samples, do_not_save_grid. A line's prompts are joined to the request's (in
front with prompt position "start", after it with "end"). outpath_grids,
prompt_for_display and do_not_save_grid change nothing (this script writes no grid);
restore_faces sets "Restore faces" for that line. Unlike A1111, which falls back to
using a line it cannot parse as its prompt, an unknown tag or a bad value is an error naming
the line, raised before anything runs.
"""

from __future__ import annotations

import dataclasses
import shlex
from pathlib import Path
from typing import Any

from sdtui.services.script_options import MODES, ScriptError, ScriptOption

INT_TAGS = {
    "seed": "seed",
    "subseed": "variation_seed",
    "seed_resize_from_h": "seed_resize_from_height",
    "seed_resize_from_w": "seed_resize_from_width",
    "batch_size": "batch_size",
    "n_iter": "batch_count",
    "steps": "steps",
    "width": "width",
    "height": "height",
}
FLOAT_TAGS = {"subseed_strength": "variation_strength", "cfg_scale": "cfg_scale"}
BOOL_TAGS = ("restore_faces", "tiling", "do_not_save_samples", "do_not_save_grid")
PROMPT_TAGS = ("prompt", "negative_prompt")
TAGS = (  # A1111's prompt_tags, in its order
    "sd_model", "outpath_samples", "outpath_grids", "prompt_for_display", "prompt",
    "negative_prompt", "styles", "seed", "subseed_strength", "subseed", "seed_resize_from_h",
    "seed_resize_from_w", "sampler_index", "sampler_name", "batch_size", "n_iter", "steps",
    "cfg_scale", "width", "height", "restore_faces", "tiling", "do_not_save_samples",
    "do_not_save_grid",
)  # fmt: skip


def parse_line(line: str) -> dict[str, Any]:
    """A1111's `cmdargs`: `--tag value ...` -> {tag: typed value}; a plain line is the
    prompt. ValueError says what is wrong (without the line number)."""
    if not line.startswith("--"):
        return {"prompt": line}
    try:
        words = shlex.split(line)
    except ValueError as error:
        raise ValueError(f"cannot split it into arguments: {error}") from None
    found: dict[str, Any] = {}
    position = 0
    while position < len(words):
        word = words[position]
        if not word.startswith("--"):
            raise ValueError(f"{word!r} should be a --tag")
        tag = word[2:]
        if tag not in TAGS:
            raise ValueError(f"unknown tag {word}; known: {', '.join(TAGS)}")
        if position + 1 >= len(words):
            raise ValueError(f"{word} needs a value")
        position += 1
        if tag in PROMPT_TAGS:
            prompt = [words[position]]
            position += 1
            while position < len(words) and not words[position].startswith("--"):
                prompt.append(words[position])
                position += 1
            found[tag] = " ".join(prompt)
            continue
        found[tag] = _typed(tag, words[position])
        position += 1
    return found


def _typed(tag: str, text: str) -> Any:
    try:
        if tag in INT_TAGS or tag == "sampler_index":
            return int(text)
        if tag in FLOAT_TAGS:
            return float(text)
    except ValueError:
        kind = "a whole number" if tag in INT_TAGS or tag == "sampler_index" else "a number"
        raise ValueError(f"--{tag} needs {kind}, got {text!r}") from None
    if tag in BOOL_TAGS:
        if text.casefold() not in ("true", "false"):
            raise ValueError(f"--{tag} needs true or false, got {text!r}")
        return text.casefold() == "true"
    return text


@dataclasses.dataclass(frozen=True)
class Line:
    number: int  # 1-based, among the text's lines
    params: Any  # GenerationParams before the seed rules
    out_dir: Path | None = None
    save: bool = True
    seeded: bool = False  # the line gave --seed


def _join(line_text: str, base: str, position: str) -> str:
    if not line_text or not base:
        return line_text or base
    return f"{line_text} {base}" if position == "start" else f"{base} {line_text}"


def line_params(tags: dict[str, Any], request: Any, position: str) -> tuple[Any, Path | None]:
    """A line's tags applied to the request's parameters (names resolved and checked)."""
    params = request.params
    changes: dict[str, Any] = {}
    for tag, value in tags.items():
        if tag in INT_TAGS:
            changes[INT_TAGS[tag]] = value
        elif tag in FLOAT_TAGS:
            changes[FLOAT_TAGS[tag]] = value
    for tag in PROMPT_TAGS:
        if tag in tags:
            changes[tag] = _join(tags[tag], getattr(params, tag), position)
    if "sampler_name" in tags:
        changes["sampler"] = request.host.samplers.resolve_name(tags["sampler_name"])
    if "sampler_index" in tags:
        names = request.host.samplers.names()
        if not 0 <= tags["sampler_index"] < len(names):
            raise ValueError(f"--sampler_index must be 0..{len(names) - 1}")
        changes["sampler"] = names[tags["sampler_index"]]
    if "sd_model" in tags:
        from sdtui.services.generation import choose_checkpoint

        choose_checkpoint(request.dirs, tags["sd_model"])  # ModelNotFoundError lists them
        changes["model"] = tags["sd_model"]
    if "styles" in tags:
        changes["styles"] = tuple(s.strip() for s in tags["styles"].split(",") if s.strip())
    if "tiling" in tags:
        changes["tiling"] = tags["tiling"]
    if "restore_faces" in tags:
        changes["restore_faces"] = tags["restore_faces"]
    out_dir = Path(tags["outpath_samples"]).expanduser() if "outpath_samples" in tags else None
    return dataclasses.replace(params, **changes), out_dir


class PromptsFromFile:
    """One generation per line of a text (or file): prompts or A1111 --tag value lines."""

    name = "Prompts from file or textbox"
    aliases = ("prompts_from_file", "prompts from file")
    modes = MODES
    options = (
        ScriptOption("checkbox_iterate", "Iterate seed every line", bool, False),
        ScriptOption("checkbox_iterate_batch", "Use same random seed for all lines", bool, False),
        ScriptOption(
            "prompt_position", "Insert prompts at the", str, "start", choices=("start", "end")
        ),
        ScriptOption("prompt_txt", "List of prompt inputs", str, "", multiline=True),
        ScriptOption(
            "file", "Upload prompt inputs", str, "", help="a text file; its lines replace the text"
        ),
    )

    def lines(self, request: Any) -> list[Line]:
        """Every line's parameters; ScriptError names the line of an unknown tag, a bad
        value or a request the schema refuses."""
        from sdtui.models.discovery import ModelNotFoundError
        from sdtui.registry import UnknownNameError
        from sdtui.services.scripts import validate_params

        text = request.options["prompt_txt"]
        if request.options["file"]:
            path = Path(request.options["file"]).expanduser()
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as error:
                raise ScriptError(f"{self.name}: cannot read {path}: {error}") from None
        lines = []
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line:
                continue
            try:
                tags = parse_line(line)
                params, out_dir = line_params(tags, request, request.options["prompt_position"])
                validate_params(params, request.host)
            except (ValueError, UnknownNameError, ModelNotFoundError) as error:
                raise ScriptError(f"{self.name}, line {number} ({line!r}): {error}") from None
            save = not tags.get("do_not_save_samples", False)
            lines.append(Line(number, params, out_dir, save, "seed" in tags))
        if not lines:
            raise ScriptError(f"{self.name}: no prompts given (prompt_txt=... or file=...)")
        return lines

    def check(self, request: Any) -> None:
        self.lines(request)

    def run(self, context: Any, request: Any) -> None:
        options, base = request.options, request.params
        lines = self.lines(request)
        fixed = options["checkbox_iterate"] or options["checkbox_iterate_batch"]
        seed = base.seed if fixed or not request.random_seed else -1  # -1: each line draws
        runs = []
        for line in lines:
            runs.append(line.params if line.seeded else dataclasses.replace(line.params, seed=seed))
            if options["checkbox_iterate"] and seed >= 0:
                seed += base.batch_size * base.batch_count
        context.plan(runs)
        for line, params in zip(lines, runs, strict=True):
            context.process(params, save=line.save, out_dir=line.out_dir)
