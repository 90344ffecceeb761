"""Shared fixtures. No test reaches the network: hubs are forced offline here."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"

import asyncio
import inspect

import pytest

from sdtui.paths import DataDirs


@pytest.fixture
def data_dirs(tmp_path, monkeypatch) -> DataDirs:
    """An empty data dir in A1111's layout; SDTUI_DATA_DIR points at it."""
    monkeypatch.setenv("SDTUI_DATA_DIR", str(tmp_path / "data"))
    dirs = DataDirs.resolve(tmp_path / "data")
    dirs.create()
    return dirs


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run `async def` tests (Textual Pilot tests) in a fresh event loop, without a plugin."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    asyncio.run(pyfuncitem.obj(**{name: pyfuncitem.funcargs[name] for name in names}))
    return True
