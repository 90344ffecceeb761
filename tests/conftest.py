"""Shared fixtures. No test reaches the network: hubs are forced offline here."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"

import pytest

from sdtui.paths import DataDirs


@pytest.fixture
def data_dirs(tmp_path, monkeypatch) -> DataDirs:
    """An empty data dir in A1111's layout; SDTUI_DATA_DIR points at it."""
    monkeypatch.setenv("SDTUI_DATA_DIR", str(tmp_path / "data"))
    dirs = DataDirs.resolve(tmp_path / "data")
    dirs.create()
    return dirs
