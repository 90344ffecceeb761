"""A third-party plugin package, pip-installed, shows up everywhere it should."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).parent / "example_plugin"


def sdtui(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sdtui", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def pip(*args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", *args, "--disable-pip-version-check", "-q"],
        check=True,
        capture_output=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    source = tmp_path_factory.mktemp("plugin") / "example_plugin"
    shutil.copytree(EXAMPLE, source)  # builds write into the source tree; keep ours clean
    pip("install", "--no-deps", "--no-build-isolation", str(source))
    yield
    pip("uninstall", "-y", "sdtui-example-plugin")


def test_listed_with_version_and_hooks(installed) -> None:
    result = sdtui("plugins", "--json")
    assert result.returncode == 0, result.stderr
    listing = json.loads(result.stdout)
    (row,) = [p for p in listing["plugins"] if p["name"] == "example"]
    assert row["version"] == "1.2.3"
    assert row["distribution"] == "sdtui-example-plugin"
    assert row["hooks"] == ["register_commands", "register_upscalers"]
    assert not row["builtin"]
    assert listing["failures"] == []


def test_table_lists_it(installed) -> None:
    result = sdtui("plugins")
    assert "example" in result.stdout and "1.2.3" in result.stdout


def test_its_objects_are_in_the_registries(installed) -> None:
    from sdtui.plugins import PluginHost

    host = PluginHost()
    assert host.upscalers.owner("example_nearest") == "example"
    assert "example-greet" in host.commands


def test_its_command_runs(installed) -> None:
    result = sdtui("example-greet", "tester")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "greetings, tester"


def test_load_env_can_leave_it_out(installed) -> None:
    result = sdtui("plugins", "--json", env={"SDTUI_LOAD_PLUGINS": ""})
    assert json.loads(result.stdout)["plugins"] == []
    named = sdtui("plugins", "--json", env={"SDTUI_LOAD_PLUGINS": "sdtui-example-plugin"})
    assert [p["name"] for p in json.loads(named.stdout)["plugins"]] == ["example"]
