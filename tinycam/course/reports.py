"""What the report commands (`study`, `evaluate`) share: the options --n, --seed and --out, and writing the report."""

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import torch

from tinycam import DATA_DIR


def report_parser(command: str, description: str, n: int, seed: int, file_name: str) -> argparse.ArgumentParser:
    """The command's parser with --n (images), --seed and --out (default data/FILE_NAME)."""
    parser = argparse.ArgumentParser(prog=f"python -m tinycam {command}", description=description)
    parser.add_argument("--n", type=int, default=n, help=f"number of images (default {n})")
    parser.add_argument("--seed", type=int, default=seed, help=f"seed of the images (default {seed})")
    parser.add_argument("--out", default=str(DATA_DIR / file_name),
                        help=f"markdown file to write (default data/{file_name})")
    return parser


def write_report(parser: argparse.ArgumentParser, out: str, markdown: Callable[[], str]) -> int:
    """Check --out's folder, compute `markdown()` on one thread, print it and write it to `out`."""
    folder = Path(out).resolve().parent
    if not folder.is_dir():
        parser.error(f"--out: the folder {folder} does not exist")
    torch.set_num_threads(1)  # small models and batches: one thread is as fast, and does not stall on a busy machine
    start = time.perf_counter()
    text = markdown()
    print(text)
    with open(out, "w", encoding="utf-8") as file:
        file.write(text)
    print(f"written to {out} in {time.perf_counter() - start:.0f} s")
    return 0
