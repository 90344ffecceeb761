"""The plugin host: validation, duplicates, failure isolation, loading rules."""

from __future__ import annotations

import sys
import types

import pytest

from sdtui import hookimpl
from sdtui.plugins import DEFAULT_PLUGINS, PluginHost
from sdtui.registry import RegistrationError, UnknownNameError
from tests.plugin_helpers import empty_host


class Upscaler:
    def __init__(self, name: str, aliases: tuple[str, ...] = ()) -> None:
        self.name = name
        self.aliases = aliases

    def upscale(self, image, scale):
        return image


def plugin(**hooks) -> types.SimpleNamespace:
    """A plugin object whose attributes are hook implementations."""
    return types.SimpleNamespace(**{name: hookimpl(function) for name, function in hooks.items()})


def upscaler_plugin(*names: str) -> types.SimpleNamespace:
    def register_upscalers(register):
        for name in names:
            register(Upscaler(name))

    return plugin(register_upscalers=register_upscalers)


def test_registration_and_lookup_by_alias_case_insensitively() -> None:
    host = empty_host()
    host.add_plugin(
        plugin(register_upscalers=lambda register: register(Upscaler("R-ESRGAN 4x+", ("x4",)))),
        name="p",
    )
    assert host.upscalers.get("r-esrgan 4X+").name == "R-ESRGAN 4x+"
    assert host.upscalers.resolve_name("X4") == "R-ESRGAN 4x+"
    assert host.upscalers.owner("x4") == "p"
    assert "x4" in host.upscalers and "nope" not in host.upscalers


def test_unknown_name_lists_the_known_ones() -> None:
    host = empty_host()
    host.add_plugin(upscaler_plugin("Lanczos", "Nearest"), name="p")
    with pytest.raises(
        UnknownNameError, match="unknown upscaler 'Lanczoz'; known: Lanczos, Nearest"
    ):
        host.upscalers.get("Lanczoz")


def test_duplicate_name_is_refused_naming_both_plugins() -> None:
    host = empty_host()
    host.add_plugin(upscaler_plugin("Lanczos"), name="first")
    assert not host.add_plugin(upscaler_plugin("lanczos", "Other"), name="second")
    (failure,) = host.failures
    assert failure.plugin == "second" and failure.stage == "register_upscalers"
    assert "'second'" in failure.error and "'first'" in failure.error
    # the failing plugin's registrations are withdrawn; the first plugin keeps its own
    assert host.upscalers.names() == ["Lanczos"]
    assert host.upscalers.owner("Lanczos") == "first"


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        (types.SimpleNamespace(upscale=lambda image, scale: image), "has no `name`"),
        (types.SimpleNamespace(name="", upscale=print), "has no `name`"),
        (types.SimpleNamespace(name="x"), "lacks callable `upscale`"),
        (types.SimpleNamespace(name="x", upscale="not callable"), "lacks callable `upscale`"),
    ],
)
def test_invalid_objects_are_refused(obj, message: str) -> None:
    host = empty_host()
    host.add_plugin(plugin(register_upscalers=lambda register: register(obj)), name="bad")
    assert message in host.failures[0].error
    assert len(host.upscalers) == 0


def test_registry_add_raises_registration_error_directly() -> None:
    host = empty_host()
    with pytest.raises(RegistrationError, match="from plugin 'p'"):
        host.samplers.add(object(), plugin="p")


def test_a_plugin_raising_in_a_hook_is_reported_and_others_carry_on() -> None:
    host = empty_host()

    def broken(register):
        register(Upscaler("half"))
        raise RuntimeError("boom")

    host.add_plugin(plugin(register_upscalers=broken), name="broken")
    host.add_plugin(upscaler_plugin("Good"), name="good")
    assert host.upscalers.names() == ["Good"]
    (failure,) = host.failures
    assert str(failure) == "plugin 'broken' failed in register_upscalers: RuntimeError: boom"
    assert "Traceback" in failure.details


def test_a_builtin_that_fails_to_import_is_reported() -> None:
    host = PluginHost(builtins=("sdtui_no_such_module",), load_entry_points=False)
    (failure,) = host.failures
    assert failure.plugin == "sdtui_no_such_module" and failure.stage == "import"
    assert "ModuleNotFoundError" in failure.error


def test_runtime_ready_is_historic_and_isolated() -> None:
    host = empty_host()
    calls: list[tuple[str, object]] = []

    def raising(runtime):
        raise ValueError("not ready")

    host.add_plugin(plugin(runtime_ready=raising), name="raising")
    host.add_plugin(
        plugin(runtime_ready=lambda runtime: calls.append(("early", runtime))), name="early"
    )
    runtime = object()
    host.runtime_ready(runtime)
    host.add_plugin(
        plugin(runtime_ready=lambda runtime: calls.append(("late", runtime))), name="late"
    )
    assert calls == [("early", runtime), ("late", runtime)]
    assert [f.plugin for f in host.failures] == ["raising"]


def test_first_result_prefers_later_plugins_and_skips_raising_ones() -> None:
    host = empty_host()
    host.add_plugin(plugin(detect_model_family=lambda keys, metadata: "builtin"), name="builtin")
    host.add_plugin(plugin(detect_model_family=lambda keys, metadata: None), name="abstains")

    def raising(keys, metadata):
        raise KeyError("x")

    host.add_plugin(plugin(detect_model_family=raising), name="raising")
    assert host.first_result("detect_model_family", keys={}, metadata={}) == "builtin"
    host.add_plugin(plugin(detect_model_family=lambda keys, metadata: "custom"), name="custom")
    assert host.first_result("detect_model_family", keys={}, metadata={}) == "custom"


def test_builtins_load_without_failures_and_without_torch() -> None:
    host = PluginHost(load_entry_points=False)
    assert host.failures == []
    assert {info.name for info in host.plugins()} == set(DEFAULT_PLUGINS)
    assert all(info.builtin for info in host.plugins())
    expected = {"start", "plugins", "install", "uninstall", "models", "pnginfo"}
    assert expected <= set(host.commands.names())


def test_load_env_empty_means_builtins_only(monkeypatch) -> None:
    monkeypatch.setenv("SDTUI_LOAD_PLUGINS", "")
    host = PluginHost(builtins=())
    assert host.plugins() == [] and host.failures == []


def test_load_env_names_a_missing_plugin(monkeypatch) -> None:
    monkeypatch.setenv("SDTUI_LOAD_PLUGINS", "sdtui-not-installed")
    host = PluginHost(builtins=())
    (failure,) = host.failures
    assert failure.plugin == "sdtui-not-installed" and "not installed" in failure.error


def test_host_modules_do_not_import_torch() -> None:
    import subprocess

    code = (
        "import sys; from sdtui.plugins import PluginHost; PluginHost(); "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
