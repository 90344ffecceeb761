"""Registries of plugin-provided objects (samplers, upscalers, commands, ...).

The host owns one `Registry` per kind. `add` validates an object against its kind's
contract and rejects a second object with the same name (or alias), naming both plugins.
Lookups are by name or alias, case-insensitively, and an unknown name is an error that
lists the known ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any


class RegistrationError(ValueError):
    """An object a plugin tried to register does not fit its registry."""


class UnknownNameError(KeyError):
    """A name that no registered object answers to."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


@dataclass(frozen=True)
class Kind:
    """What a registry accepts: every object needs a `name`, plus these callables, plus
    whatever `problem` (the reason an object does not fit, or None) checks."""

    name: str  # plural, e.g. "samplers"
    singular: str
    methods: tuple[str, ...]
    problem: Callable[[Any], str | None] | None = None


def upscaler_problem(obj: Any) -> str | None:
    """An upscaler has `upscale(image, scale)`, or `upscale_tile(tile)` with its native
    factor `scale` (a number >= 1); see sdtui.engine.upscalers."""
    tiled = callable(getattr(obj, "upscale_tile", None))
    if not tiled and not callable(getattr(obj, "upscale", None)):
        return "lacks callable `upscale` (or `upscale_tile` with a native `scale`)"
    scale = getattr(obj, "scale", None)
    if tiled and (isinstance(scale, bool) or not isinstance(scale, int | float) or scale < 1):
        return f"has `upscale_tile` but its native `scale` is {scale!r}, not a number >= 1"
    return None


SCRIPT_MODES = ("txt2img", "img2img")


def script_problem(obj: Any) -> str | None:
    """A script's optional `modes` are some of txt2img / img2img, its optional `options`
    have names; see sdtui.services.scripts."""
    modes = getattr(obj, "modes", SCRIPT_MODES)
    if isinstance(modes, str) or not set(modes or ()) <= set(SCRIPT_MODES) or not modes:
        return f"has `modes` {modes!r}, not a non-empty collection of {', '.join(SCRIPT_MODES)}"
    for option in getattr(obj, "options", ()) or ():
        if not isinstance(getattr(option, "name", None), str):
            return f"has an option without a `name`: {option!r}"
    return None


KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind("samplers", "sampler", ("sample",)),
        Kind("schedules", "schedule", ("sigmas",)),
        Kind("upscalers", "upscaler", (), upscaler_problem),
        Kind("face_restorers", "face restorer", ("restore",)),
        Kind("interrogators", "interrogator", ("interrogate",)),
        Kind("trainers", "trainer", ("train",)),
        Kind("scripts", "script", ("run",), script_problem),
        Kind("commands", "command", ("add_arguments", "run")),
    )
}


def _fold(name: str) -> str:
    return name.strip().casefold()


@dataclass
class Registry:
    kind: Kind
    _objects: dict[str, Any] = field(default_factory=dict)  # name -> object, in order
    _owners: dict[str, str] = field(default_factory=dict)  # name -> plugin name
    _lookup: dict[str, str] = field(default_factory=dict)  # folded name/alias -> name

    def add(self, obj: Any, plugin: str) -> None:
        name = self._validate(obj, plugin)
        aliases = [str(alias) for alias in getattr(obj, "aliases", ()) or ()]
        for key in [name, *aliases]:
            taken = self._lookup.get(_fold(key))
            if taken is not None:
                raise RegistrationError(
                    f"plugin {plugin!r} registers {self.kind.singular} {key!r}, but plugin "
                    f"{self._owners[taken]!r} already registered {self.kind.singular} "
                    f"{taken!r} under that name"
                )
        self._objects[name] = obj
        self._owners[name] = plugin
        for key in [name, *aliases]:
            self._lookup[_fold(key)] = name

    def _validate(self, obj: Any, plugin: str) -> str:
        name = getattr(obj, "name", None)
        what = f"{self.kind.singular} from plugin {plugin!r}"
        if not isinstance(name, str) or not name.strip():
            raise RegistrationError(f"{what} has no `name` (a non-empty string): {obj!r}")
        missing = [m for m in self.kind.methods if not callable(getattr(obj, m, None))]
        if missing:
            raise RegistrationError(
                f"{what} {name!r} lacks callable {', '.join(f'`{m}`' for m in missing)}"
            )
        problem = self.kind.problem(obj) if self.kind.problem is not None else None
        if problem:
            raise RegistrationError(f"{what} {name!r} {problem}")
        return name

    def get(self, name: str) -> Any:
        key = self._lookup.get(_fold(name))
        if key is None:
            known = ", ".join(self._objects) or "none"
            raise UnknownNameError(f"unknown {self.kind.singular} {name!r}; known: {known}")
        return self._objects[key]

    def resolve_name(self, name: str) -> str:
        """The canonical name for a name or alias."""
        return self.get(name).name

    def owner(self, name: str) -> str:
        return self._owners[self.resolve_name(name)]

    def remove_plugin(self, plugin: str) -> None:
        for name in [n for n, owner in self._owners.items() if owner == plugin]:
            del self._objects[name], self._owners[name]
        self._lookup = {k: v for k, v in self._lookup.items() if v in self._objects}

    def names(self) -> list[str]:
        return list(self._objects)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and _fold(name) in self._lookup

    def __iter__(self) -> Iterator[Any]:
        return iter(list(self._objects.values()))

    def __len__(self) -> int:
        return len(self._objects)
