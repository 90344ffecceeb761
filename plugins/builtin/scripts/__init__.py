"""A1111's built-in scripts, registered through `register_scripts`: X/Y/Z plot, Prompt
matrix, Prompts from file or textbox, and the img2img-only Loopback, Poor man's
outpainting, Outpainting mk2 and SD upscale (the framework: `sdtui.services.scripts`).

The modules import only light things at the top (no torch): `sdtui plugins` and the TUI
import this package at start-up.
"""

from __future__ import annotations

from sdtui_plugins.builtin.scripts.loopback import Loopback
from sdtui_plugins.builtin.scripts.outpainting_mk2 import OutpaintingMk2
from sdtui_plugins.builtin.scripts.poor_mans_outpainting import PoorMansOutpainting
from sdtui_plugins.builtin.scripts.prompt_matrix import PromptMatrix
from sdtui_plugins.builtin.scripts.prompts_from_file import PromptsFromFile
from sdtui_plugins.builtin.scripts.sd_upscale import SDUpscale
from sdtui_plugins.builtin.scripts.xyz_plot import XYZPlot

from sdtui import hookimpl


@hookimpl
def register_scripts(register) -> None:
    register(PromptMatrix())
    register(PromptsFromFile())
    register(XYZPlot())
    register(Loopback())
    register(PoorMansOutpainting())
    register(OutpaintingMk2())
    register(SDUpscale())
