"""A1111's X/Y/Z plot (`scripts/xyz_grid.py`): one image per combination of up to three
axes of values, and a grid of them with the values as legends.

    sdtui generate --prompt "a cat" --script xyz --script-arg "x_type=Steps" \
        --script-arg "x_values=10-30 (+10)" --script-arg "y_type=Sampler" \
        --script-arg "y_values=Euler a, DPM++ 2M"

Every value of every axis is read and checked (types, ranges, sampler and checkpoint names,
the schema's limits) before the first image. Cells run with the costliest axis outermost
(checkpoints, then VAEs), otherwise Z, then Y, then X. Unless "Keep -1 for seeds", one seed
serves every cell (-1 values on a Seed axis are drawn once); "Vary seeds for X/Y/Z" add the
cell's index along that axis. Each cell's images are saved as usual; the grid (first image
of each cell, X labels on top, Y labels on the left, one sub grid per Z value side by side
under the Z labels) goes to the grids folder as `xyz_grid-NNNN.png` with the first cell's
infotext plus `Script`, `X Type`, `X Values` (and `Fixed X Values` for seeds), likewise for
Y and Z; with "Include Sub Grids" each Z value's grid is saved too. A skipped cell is black.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from sdtui_plugins.builtin.scripts.xyz_axes import AXIS_LABELS, Axis, find_axis

from sdtui.services.script_options import MODES, ScriptError, ScriptOption

AXIS_NAMES = ("x", "y", "z")


@dataclass(frozen=True)
class Cell:
    index: tuple[int, int, int]  # (ix, iy, iz)
    params: Any  # GenerationParams


@dataclass(frozen=True)
class Plan:
    axes: tuple[Axis, Axis, Axis]
    values: tuple[list[Any], list[Any], list[Any]]
    cells: list[Cell]  # in the order they run

    def labels(self, axis: int) -> list[str]:
        return [self.axes[axis].label_of(value) for value in self.values[axis]]


def _options() -> tuple[ScriptOption, ...]:
    options = []
    for name, default in zip(AXIS_NAMES, ("Seed", "Nothing", "Nothing"), strict=True):
        upper = name.upper()
        options += [
            ScriptOption(f"{name}_type", f"{upper} type", str, default, choices=AXIS_LABELS),
            ScriptOption(
                f"{name}_values",
                f"{upper} values",
                str,
                "",
                help="comma list (CSV quotes), ranges 1-5, 1-10 (+2), 1-10 [5]",
            ),
        ]
    return (
        *options,
        ScriptOption("draw_legend", "Draw legend", bool, True),
        ScriptOption("no_fixed_seeds", "Keep -1 for seeds", bool, False),
        ScriptOption("vary_seeds_x", "Vary seeds for X", bool, False),
        ScriptOption("vary_seeds_y", "Vary seeds for Y", bool, False),
        ScriptOption("vary_seeds_z", "Vary seeds for Z", bool, False),
        ScriptOption(
            "include_lone_images",
            "Include Sub Images",
            bool,
            False,
            help="A1111 adds the cells to its gallery; sdtui saves and lists them always",
        ),
        ScriptOption("include_sub_grids", "Include Sub Grids", bool, False),
        ScriptOption("margin_size", "Grid margins (px)", int, 0, minimum=0, maximum=500),
    )


def run_order(axes: tuple[Axis, Axis, Axis], counts: tuple[int, int, int]) -> list[tuple]:
    """A1111's loop order: the costliest axis outermost, then the next; default z, y, x."""
    costs = [axis.cost for axis in axes]
    first, second = 2, 1
    for a in range(3):
        others = [b for b in range(3) if b != a]
        if all(costs[a] > costs[b] for b in others):
            first = a
            second = others[0] if costs[others[0]] > costs[others[1]] else others[1]
    third = 3 - first - second
    order = []
    for i in range(counts[first]):
        for j in range(counts[second]):
            for k in range(counts[third]):
                index = [0, 0, 0]
                index[first], index[second], index[third] = i, j, k
                order.append(tuple(index))
    return order


class XYZPlot:
    """One image per combination of X, Y and Z axis values, and a grid with legends."""

    name = "X/Y/Z plot"
    aliases = ("xyz", "xyz_grid", "xyz plot", "X/Y plot")
    modes = MODES
    options = _options()

    def check(self, request: Any) -> None:
        self.plan(request, fix_seeds=False)

    def plan(self, request: Any, *, fix_seeds: bool) -> Plan:
        """The axes, their values and every cell's parameters; ScriptError names the axis of
        a bad value, ParameterError the cell parameter out of the schema's limits."""
        from sdtui.params.validate import ParameterError, resolve_seed
        from sdtui.services.scripts import validate_params

        options, params = request.options, request.params
        keep_random = options["no_fixed_seeds"]
        axes, values = [], []
        for name in AXIS_NAMES:
            upper = name.upper()
            try:
                axis = find_axis(options[f"{name}_type"], request.mode)
                axis_values = axis.values(options[f"{name}_values"], request)
                if fix_seeds and not keep_random and axis.label in ("Seed", "Var. seed"):
                    axis_values = [resolve_seed(v) if v == -1 else v for v in axis_values]
                for value in axis_values:
                    validate_params(axis.apply(params, value, axis_values), request.host)
            except (ScriptError, ParameterError) as error:
                raise ScriptError(f"X/Y/Z plot, {upper} values: {error}") from None
            axes.append(axis)
            values.append(axis_values)
        base = params
        if keep_random and request.random_seed:
            base = dataclasses.replace(params, seed=-1)  # each cell draws its own
        counts = (len(values[0]), len(values[1]), len(values[2]))
        cells = []
        for index in run_order(tuple(axes), counts):  # type: ignore[arg-type]
            cell = base
            for axis, axis_values, i in zip(axes, values, index, strict=True):
                cell = axis.apply(cell, axis_values[i], axis_values)
            cell = self._varied(cell, index, counts, options)
            try:
                validate_params(cell, request.host)
            except ParameterError as error:
                raise ScriptError(f"X/Y/Z plot, cell {index}: {error}") from None
            cells.append(Cell(index, cell))
        return Plan(tuple(axes), tuple(values), cells)  # type: ignore[arg-type]

    @staticmethod
    def _varied(params: Any, index: tuple, counts: tuple, options: Any) -> Any:
        if params.seed < 0:
            return params
        x_dim = counts[0] if options["vary_seeds_x"] else 1
        y_dim = counts[1] if options["vary_seeds_y"] else 1
        offset = index[0] if options["vary_seeds_x"] else 0
        offset += index[1] * x_dim if options["vary_seeds_y"] else 0
        offset += index[2] * x_dim * y_dim if options["vary_seeds_z"] else 0
        return dataclasses.replace(params, seed=params.seed + offset)

    def run(self, context: Any, request: Any) -> None:
        plan = self.plan(request, fix_seeds=True)
        context.plan([cell.params for cell in plan.cells])
        made: dict[tuple, Any] = {}
        for cell in plan.cells:
            results = context.process(cell.params)
            if results:
                made[cell.index] = results[0]
        if made:
            self._save_grids(context, request, plan, made)

    def _save_grids(self, context: Any, request: Any, plan: Plan, made: dict) -> None:
        from PIL import Image

        from sdtui.engine.grid_annotations import GridAnnotation, draw_grid_annotations
        from sdtui.engine.images import image_grid

        options = request.options
        nx, ny, nz = (len(values) for values in plan.values)
        some = next(iter(made.values()))
        width, height = some.image.size
        hor = [[GridAnnotation(text)] for text in plan.labels(0)]
        ver = [[GridAnnotation(text)] for text in plan.labels(1)]
        margin = options["margin_size"]
        sub_grids = []
        for iz in range(nz):
            cells = [
                made[(ix, iy, iz)].image
                if (ix, iy, iz) in made
                else Image.new("RGB", some.image.size)
                for iy in range(ny)
                for ix in range(nx)
            ]
            grid = image_grid(cells, 1, rows=ny)
            if options["draw_legend"]:
                grid = draw_grid_annotations(grid, width, height, hor, ver, margin)
            sub_grids.append(grid)
        main = image_grid(sub_grids, 1, rows=1)
        if options["draw_legend"]:
            titles = [[GridAnnotation(text)] for text in plan.labels(2)]
            sub_width = max(grid.width for grid in sub_grids)
            sub_height = max(grid.height for grid in sub_grids)
            main = draw_grid_annotations(main, sub_width, sub_height, titles, [[GridAnnotation()]])
        first = made.get((0, 0, 0), some)
        context.save_grid(
            main, first, infotext=self._infotext(first, plan, options, z=True), basename="xyz_grid"
        )
        if options["include_sub_grids"] and nz > 1:
            for iz, grid in enumerate(sub_grids):
                sub_first = made.get((0, 0, iz), some)
                text = self._infotext(sub_first, plan, options, z=False)
                context.save_grid(grid, sub_first, infotext=text, basename="xyz_grid")

    def _infotext(self, first: Any, plan: Plan, options: Any, *, z: bool) -> str:
        """The cell's infotext plus A1111's Script, X/Y(/Z) Type and Values keys."""
        from sdtui.services.scripts import infotext_with

        values: dict[str, Any] = {"Script": self.name}
        for number, name in enumerate(AXIS_NAMES[: 3 if z else 2]):
            axis, upper = plan.axes[number], name.upper()
            if axis.label == "Nothing":
                continue
            values[f"{upper} Type"] = axis.label
            values[f"{upper} Values"] = options[f"{name}_values"]
            if axis.label in ("Seed", "Var. seed") and not options["no_fixed_seeds"]:
                values[f"Fixed {upper} Values"] = ", ".join(str(v) for v in plan.values[number])
        return infotext_with(first.infotext, values)
