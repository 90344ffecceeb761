"""`--script NAME --script-arg KEY=VALUE ... [--help-script]` for `sdtui generate` and
`sdtui img2img`: A1111's Script dropdown from the command line.

    sdtui generate --prompt "a cat" --script xyz --script-arg x_type=Steps \
        --script-arg "x_values=1-3" --steps 2
    sdtui generate --script "Prompt matrix" --help-script     # the script's options

A script is named by its A1111 title or an alias, in any case ("X/Y/Z plot", "xyz");
options by name or A1111 label ("x_type", "X type"). An unknown script, an unknown option,
a bad value, or a request the script cannot run (an unknown sampler among the axis values)
is an error with exit code 2 before any model is loaded or anything written.
"""

from __future__ import annotations

import argparse
from typing import Any


def add_script_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("scripts (A1111's Script dropdown)")
    group.add_argument(
        "--script",
        metavar="NAME",
        help="run a script: 'X/Y/Z plot' (xyz), 'Prompt matrix', 'Prompts from file or "
        "textbox' (prompts_from_file), or a plugin's; any case. An --infotext / --from-image "
        "whose infotext names a script (an X/Y/Z grid's) runs that one unless --script says "
        "otherwise ('none': no script)",
    )
    group.add_argument(
        "--script-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set an option of the script (repeatable); --help-script lists them",
    )
    group.add_argument(
        "--help-script",
        action="store_true",
        help="print the options of --script NAME (without --script: the scripts) and exit",
    )


def script_help(args: argparse.Namespace, mode: str) -> int:
    """`--help-script`: the script's options, or every script of this mode."""
    from sdtui.plugins import get_host
    from sdtui.services.script_options import describe_script, script_modes
    from sdtui.services.scripts import find_script

    host = get_host()
    if args.script:
        print(describe_script(find_script(host, args.script, mode)))
        return 0
    for script in host.scripts:
        if mode in script_modes(script):
            aliases = ", ".join(getattr(script, "aliases", ()) or ())
            print(f"{script.name}" + (f" (also: {aliases})" if aliases else ""))
    return 0


def script_from_arguments(args: argparse.Namespace, mode: str) -> tuple[Any, dict[str, Any]]:
    """(script, option values) for `--script`, else for the script an `--infotext` /
    `--from-image` infotext names (A1111's paste: an X/Y/Z grid's infotext runs the plot
    again; `--script-arg` may change its options); (None, {}) for neither. Errors raise."""
    from sdtui.plugins import get_host
    from sdtui.services.script_options import parse_script_args, resolve_options
    from sdtui.services.scripts import ScriptError, prepare_script

    if args.script and args.script.strip().casefold() != "none":
        return prepare_script(get_host(), args.script, mode, args.script_arg)
    pasted = _pasted_script(args, mode) if not args.script else None
    if pasted is None:
        if args.script_arg:
            raise ScriptError("--script-arg needs --script NAME")
        return None, {}
    script, options = pasted
    given = parse_script_args(script, args.script_arg)
    return script, resolve_options(script, {**options, **given})


def _pasted_script(args: argparse.Namespace, mode: str) -> tuple[Any, dict[str, Any]] | None:
    from sdtui.cli.generate import infotext_argument
    from sdtui.params.codec import params_from_infotext
    from sdtui.plugins import get_host
    from sdtui.services.scripts import pasted_script

    infotext = infotext_argument(args)
    if not infotext:
        return None
    return pasted_script(get_host(), mode, params_from_infotext(infotext).unknown)


def checked_script_inputs(
    script: Any, options: dict[str, Any], requested: Any, params: Any, dirs: Any, mode: str
) -> dict[str, Any]:
    """The job's script fields (`script`, `script_args`, `random_seed`: the request said
    seed -1), after the script's own checks of the prepared `params` (before the model
    loads)."""
    from sdtui.plugins import get_host
    from sdtui.services.scripts import ScriptRequest, check_request

    random_seed = requested.seed == -1
    if script is not None:
        request = ScriptRequest(params, options, mode, get_host(), dirs, random_seed)
        check_request(script, request)
    return {"script": script, "script_args": options, "random_seed": random_seed}
