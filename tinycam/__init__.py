"""tinycam: class activation maps, taught twice — a NumPy reference and a batched torch implementation.

`tinycam.reference`, `tinycam.conv` and `tinycam.course.checks` are pure NumPy. The torch parts (`capture`, `explain`,
`load_model`, ...) are imported on first use, so the NumPy lessons never pay for importing torch.
"""

from importlib.resources import files
from pathlib import Path


def _data_dir() -> Path:
    """data/, installed as the package tinycam.data (a wheel or an editable install), else beside the package in a
    source checkout that was not installed (`PYTHONPATH=.`)."""
    try:
        return Path(str(files("tinycam.data")))
    except ModuleNotFoundError:
        return Path(__file__).resolve().parent.parent / "data"


DATA_DIR = _data_dir()

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
