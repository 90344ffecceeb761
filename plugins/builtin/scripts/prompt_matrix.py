"""A1111's Prompt matrix (`scripts/prompt_matrix.py`).

    sdtui generate --prompt "a house|at night|in snow" --script "Prompt matrix"

The prompt (or the negative prompt) is split at `|`: the first part is always used, and
every combination of the other parts is appended (or put in front) joined by ", " or " ":
n parts give 2^(n-1) images, combination k taking part i + 1 when bit i of k is set. All
images share one seed unless "Use different seed for each picture" adds the image's index
(the variation seed always does, as A1111's per-image subseeds). Each is saved as usual;
the grid (2^((n-1)//2) rows, the first half of the parts over the columns and the rest down
the rows, grey and struck through where a part is off) goes to the grids folder as
`prompt_matrix-NNNN.png` with the first image's infotext. A skipped image is black.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sdtui.services.script_options import MODES, ScriptOption


def prompt_combinations(prompt: str, *, at_start: bool = False, delimiter: str = ", ") -> list[str]:
    """A1111's combinations of `a|b|c`: the parts after the first are stripped of spaces and
    commas, the first is kept as written."""
    parts = prompt.split("|")
    combinations = []
    for number in range(2 ** (len(parts) - 1)):
        chosen = [text.strip().strip(",") for n, text in enumerate(parts[1:]) if number & (1 << n)]
        chosen = [*chosen, parts[0]] if at_start else [parts[0], *chosen]
        combinations.append(delimiter.join(chosen))
    return combinations


class PromptMatrix:
    """Every combination of the |-separated parts of the prompt, and a grid with legends."""

    name = "Prompt matrix"
    aliases = ("prompt_matrix",)
    modes = MODES
    options = (
        ScriptOption("put_at_start", "Put variable parts at start of prompt", bool, False),
        ScriptOption("different_seeds", "Use different seed for each picture", bool, False),
        ScriptOption(
            "prompt_type", "Select prompt", str, "positive", choices=("positive", "negative")
        ),
        ScriptOption(
            "variations_delimiter",
            "Select joining char",
            str,
            "comma",
            choices=("comma", "space"),
        ),
        ScriptOption("margin_size", "Grid margins (px)", int, 0, minimum=0, maximum=500),
    )

    def runs(self, request: Any) -> tuple[list[str], list[Any]]:
        """The prompt's parts and the parameters of each image."""
        options, params = request.options, request.params
        positive = options["prompt_type"] == "positive"
        prompt = params.prompt if positive else params.negative_prompt
        delimiter = ", " if options["variations_delimiter"] == "comma" else " "
        prompts = prompt_combinations(prompt, at_start=options["put_at_start"], delimiter=delimiter)
        runs = []
        for index, text in enumerate(prompts):
            changes: dict[str, Any] = {
                "prompt" if positive else "negative_prompt": text,
                "seed": params.seed + (index if options["different_seeds"] else 0),
                "variation_seed": params.variation_seed + index,
                "batch_size": 1,
                "batch_count": 1,
            }
            runs.append(dataclasses.replace(params, **changes))
        return prompt.split("|"), runs

    def run(self, context: Any, request: Any) -> None:
        from PIL import Image

        from sdtui.engine.grid_annotations import draw_prompt_matrix
        from sdtui.engine.images import image_grid

        parts, runs = self.runs(request)
        context.plan(runs)
        made = [next(iter(context.process(params)), None) for params in runs]
        done = [result for result in made if result is not None]
        if not done:
            return
        size = done[0].image.size
        images = [r.image if r is not None else Image.new("RGB", size) for r in made]
        grid = image_grid(images, 1, rows=1 << ((len(parts) - 1) // 2))
        margin = request.options["margin_size"]
        grid = draw_prompt_matrix(grid, size[0], size[1], parts, margin)
        context.save_grid(grid, done[0], basename="prompt_matrix")
