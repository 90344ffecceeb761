"""Helpers for plugin tests: isolated hosts and plugins made from source text."""

from __future__ import annotations

import types

from sdtui.plugins import PluginHost


def empty_host() -> PluginHost:
    """A host with no built-ins and no entry points."""
    return PluginHost(builtins=(), load_entry_points=False)


def module_from_source(name: str, source: str) -> types.ModuleType:
    module = types.ModuleType(name)
    exec(compile(source, f"<{name}>", "exec"), module.__dict__)
    return module
