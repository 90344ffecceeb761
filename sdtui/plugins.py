"""The plugin host: loads plugins, collects their registrations, isolates their failures.

Built-in plugins are listed explicitly in `DEFAULT_PLUGINS`; third-party plugins come from
the `sdtui` entry-point group. `SDTUI_LOAD_PLUGINS` limits what is loaded: unset loads
everything, "" loads built-ins only, "a,b" loads built-ins plus the named third-party
plugins (entry-point or distribution names). A plugin that fails to import, or raises in a
hook, is recorded in `failures` by name with its error; the host carries on without it.
"""

from __future__ import annotations

import importlib
import os
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType
from typing import Any

import pluggy

from sdtui import PROJECT_NAME, __version__, hookspecs
from sdtui.registry import KINDS, Registry

ENTRY_POINT_GROUP = PROJECT_NAME
LOAD_ENV = "SDTUI_LOAD_PLUGINS"

# Modules registered as plugins before any third-party plugin, in this order.
DEFAULT_PLUGINS: tuple[str, ...] = (
    "sdtui.cli.start",
    "sdtui.cli.plugins",
    "sdtui.cli.install",
    "sdtui.cli.uninstall",
    "sdtui.cli.models",
    "sdtui.cli.pnginfo",
    "sdtui.cli.generate",
    "sdtui.cli.img2img",
    "sdtui.cli.upscale",
    "sdtui_plugins.builtin.model_families",
    "sdtui_plugins.builtin.schedules",
    "sdtui_plugins.builtin.upscalers",
    "sdtui_plugins.builtin.model_upscalers",
    "sdtui_plugins.builtin.face_restorers",
    "sdtui_plugins.builtin.samplers",
    "sdtui_plugins.builtin.scripts",
)


@dataclass(frozen=True)
class PluginFailure:
    plugin: str
    stage: str  # "import", "register", or the hook that raised
    error: str
    details: str = ""

    def __str__(self) -> str:
        return f"plugin {self.plugin!r} failed in {self.stage}: {self.error}"


@dataclass(frozen=True)
class PluginInfo:
    name: str
    version: str
    hooks: tuple[str, ...]
    builtin: bool
    module: str
    distribution: str | None = None


def allowed_third_party() -> set[str] | None:
    """Names allowed by SDTUI_LOAD_PLUGINS; None means all."""
    value = os.environ.get(LOAD_ENV)
    if value is None:
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


@dataclass
class PluginHost:
    builtins: Iterable[str] = DEFAULT_PLUGINS
    load_entry_points: bool = True
    manager: pluggy.PluginManager = field(init=False)
    registries: dict[str, Registry] = field(init=False)
    failures: list[PluginFailure] = field(default_factory=list, init=False)
    _infos: dict[str, PluginInfo] = field(default_factory=dict, init=False)
    _runtime: Any = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.manager = pluggy.PluginManager(PROJECT_NAME)
        self.manager.add_hookspecs(hookspecs)
        self.registries = {name: Registry(kind) for name, kind in KINDS.items()}
        for module_name in self.builtins:
            self._load_module(module_name, builtin=True)
        if self.load_entry_points:
            self._load_entry_points()

    # -- loading -------------------------------------------------------------------------

    def _load_module(self, module_name: str, *, builtin: bool) -> None:
        try:
            module = importlib.import_module(module_name)
        except Exception as error:
            self._fail(module_name, "import", error)
            return
        self.add_plugin(module, name=module_name, builtin=builtin)

    def _load_entry_points(self) -> None:
        allowed = allowed_third_party()
        found: set[str] = set()
        for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = entry_point.dist.name if entry_point.dist else None
            names = {entry_point.name, dist} - {None}
            if allowed is not None and not names & allowed:
                continue
            found |= names  # type: ignore[arg-type]
            try:
                module = entry_point.load()
            except Exception as error:
                self._fail(entry_point.name, "import", error)
                continue
            version = entry_point.dist.version if entry_point.dist else "unknown"
            self.add_plugin(
                module, name=entry_point.name, builtin=False, version=version, distribution=dist
            )
        for missing in sorted((allowed or set()) - found):
            self._fail(missing, "import", LookupError(f"{LOAD_ENV} names it, not installed"))

    def add_plugin(
        self,
        plugin: ModuleType | object,
        *,
        name: str,
        builtin: bool = False,
        version: str | None = None,
        distribution: str | None = None,
    ) -> bool:
        """Register one plugin, collect its registrations and, if the runtime is already
        up, call its runtime_ready (historic semantics). False if it failed."""
        try:
            self.manager.register(plugin, name=name)
        except Exception as error:
            self._fail(name, "register", error)
            return False
        hooks = tuple(sorted(impl.name for impl in self.manager.get_hookcallers(plugin) or ()))
        self._infos[name] = PluginInfo(
            name=name,
            version=version or (__version__ if builtin else "unknown"),
            hooks=hooks,
            builtin=builtin,
            module=getattr(plugin, "__name__", type(plugin).__name__),
            distribution=distribution,
        )
        for kind, registry in self.registries.items():
            self._collect(kind, registry, only=name)
        if self._runtime is not None:
            self._call_each("runtime_ready", only=name, runtime=self._runtime)
        return name not in {failure.plugin for failure in self.failures}

    def _collect(self, kind: str, registry: Registry, only: str) -> None:
        for impl in self._impls(f"register_{kind}", only):

            def register(obj: Any, _plugin: str = impl.plugin_name) -> None:
                registry.add(obj, plugin=_plugin)

            try:
                impl.function(register=register)
            except Exception as error:
                registry.remove_plugin(impl.plugin_name)
                self._fail(impl.plugin_name, f"register_{kind}", error)

    # -- calling -------------------------------------------------------------------------

    def _impls(self, hook_name: str, only: str | None = None) -> list[pluggy.HookImpl]:
        caller = getattr(self.manager.hook, hook_name)
        impls = [impl for impl in caller.get_hookimpls() if not impl.hookwrapper]
        return [impl for impl in impls if only is None or impl.plugin_name == only]

    def _call_each(self, hook_name: str, only: str | None = None, **kwargs: Any) -> list[Any]:
        results = []
        for impl in reversed(self._impls(hook_name, only)):  # pluggy's order: last first
            arguments = {arg: kwargs[arg] for arg in impl.argnames}
            try:
                results.append(impl.function(**arguments))
            except Exception as error:
                self._fail(impl.plugin_name, hook_name, error)
        return results

    def first_result(self, hook_name: str, **kwargs: Any) -> Any:
        """The first non-None answer of a firstresult hook; later plugins are asked first,
        so a third-party plugin can override a built-in. A raising plugin is skipped."""
        for impl in reversed(self._impls(hook_name)):
            arguments = {arg: kwargs[arg] for arg in impl.argnames}
            try:
                result = impl.function(**arguments)
            except Exception as error:
                self._fail(impl.plugin_name, hook_name, error)
                continue
            if result is not None:
                return result
        return None

    def runtime_ready(self, runtime: Any) -> None:
        """Tell every plugin, and every plugin added later, that the runtime is up."""
        self._runtime = runtime
        self._call_each("runtime_ready", runtime=runtime)

    # -- reporting -----------------------------------------------------------------------

    def _fail(self, plugin: str, stage: str, error: BaseException) -> None:
        details = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        self.failures.append(PluginFailure(plugin, stage, _describe(error), details))

    def plugins(self) -> list[PluginInfo]:
        return list(self._infos.values())

    def __getattr__(self, kind: str) -> Registry:
        """`host.samplers`, `host.commands`, ... are the registries."""
        registries = self.__dict__.get("registries", {})
        if kind in registries:
            return registries[kind]
        raise AttributeError(kind)


_host: PluginHost | None = None


def get_host() -> PluginHost:
    """The process-wide plugin host, created on first use."""
    global _host
    if _host is None:
        _host = PluginHost()
    return _host


def reset_host(factory: Callable[[], PluginHost] | None = None) -> PluginHost | None:
    """Replace the process-wide host (tests); returns the new one if a factory is given."""
    global _host
    _host = factory() if factory else None
    return _host
