"""Switching checkpoints back and forth must not grow memory.

    .venv/bin/python bench/model_switch.py [--switches 10] [--in-ram 0]

Loads two full-size SD1.5-shaped random checkpoints (written by bench/load.py's writer,
different seeds) alternately through the runtime's model cache on the CPU, and prints the
RSS after each switch. With `--in-ram 0` every switch evicts and reloads, the worst case for
leaks. Goal: the RSS after the last switch is within 5% of the RSS after the second.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from load import rss_bytes, write_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--switches", type=int, default=10)
    parser.add_argument(
        "--in-ram", type=int, default=0, help="models kept in RAM besides the active"
    )
    args = parser.parse_args()

    import torch

    from sdtui.models.loader import load_checkpoint
    from sdtui.runtime.model_cache import ModelCache

    first = write_checkpoint("sd1")
    second = first.with_name("random-sd1-fp16-copy.safetensors")
    if not second.exists():
        second.write_bytes(first.read_bytes())  # same weights, a different file and cache key
    cache = ModelCache(torch.device("cpu"), max_in_ram=args.in_ram)
    gib = 1024**3
    readings = []
    for switch in range(1, args.switches + 1):
        path = first if switch % 2 else second
        start = time.perf_counter()
        cache.get(str(path), lambda p=path: load_checkpoint(p, dtype=torch.float32))
        readings.append(rss_bytes())
        print(
            f"switch {switch:2}: {path.name:38} {time.perf_counter() - start:6.2f} s  "
            f"RSS {readings[-1] / gib:6.2f} GiB"
        )
    growth = readings[-1] / readings[1] - 1 if len(readings) > 1 else 0.0
    print(f"RSS growth from switch 2 to {args.switches}: {growth:+.1%}  (goal within +5%)")


if __name__ == "__main__":
    main()
