"""tinycam: class activation maps, taught twice — a NumPy reference and a batched torch implementation.

`tinycam.reference`, `tinycam.conv` and `tinycam.checks` are pure NumPy. The torch parts (`capture`, `explain`,
`load_model`, ...) are imported on first use, so the NumPy lessons never pay for importing torch.
"""

from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent.parent / "data"

# name -> module that defines it; resolved lazily by __getattr__ below.
_LAZY = {
    "capture": "tinycam.methods",
    "explain": "tinycam.methods",
    "Capture": "tinycam.methods",
    "load_model": "tinycam.models",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tinycam' has no attribute {name!r}")
