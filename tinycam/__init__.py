"""tinycam: class activation maps, taught twice — a NumPy reference and a batched torch implementation.

`tinycam.reference`, `tinycam.conv` and `tinycam.course.checks` are pure NumPy. The torch parts (`capture`, `explain`,
`load_model`, ...) are imported on first use, so the NumPy lessons never pay for importing torch.
"""

from importlib.resources import files
from pathlib import Path

# The data/ folder, installed as the package tinycam.data: the same files from a checkout, an editable or a wheel install.
DATA_DIR = Path(str(files("tinycam.data")))

# name -> module that defines it; resolved lazily by __getattr__ below.
_LAZY = {
    "capture": "tinycam.capturing",
    "Capture": "tinycam.capturing",
    "explain": "tinycam.explaining",
    "METHODS": "tinycam.explaining",
    "load_model": "tinycam.models",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tinycam' has no attribute {name!r}")
