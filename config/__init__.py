"""Shipped defaults: settings, keymap, styles and model architecture configs (data only)."""

from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent
