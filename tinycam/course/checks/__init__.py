"""Immediate-feedback checks for the notebooks' graded exercises, one module per notebook.

Each exercise asks the student to write a small function (or give a value); the next cell calls the check of the
same name, e.g. ``checks.gradcam_weights(gradcam_weights)``, which prints ✓, or raises with ✗ and a hint, or with
"not done yet" (see `framework`: IPython shows those lines alone, no traceback). An exercise is data (`Exercise`):
its cases for a seed, the expected answer, its known mistakes (`Mistake`, tried in order) and a generic hint.
`EXERCISES` lists them all, in course order; the grader (`tinycam.course.grading`) draws hidden cases and judges
answers with them.

NumPy only: importing the checks does not import torch (notebook 03's exercises import it when their cases are drawn).
"""

from tinycam.course.checks import (
    nb00_cnn_arithmetic,
    nb01_gradcam_by_hand,
    nb02_cam,
    nb03_gradcam,
    nb04_pixel_level,
    nb05_gradcampp,
    nb06_evaluating,
)
from tinycam.course.checks.framework import CheckFailed, Exercise, Mistake, NotDoneYet, registry

NOTEBOOKS = (nb00_cnn_arithmetic, nb01_gradcam_by_hand, nb02_cam, nb03_gradcam, nb04_pixel_level, nb05_gradcampp,
             nb06_evaluating)

EXERCISES: dict = registry(exercise for notebook in NOTEBOOKS for exercise in notebook.EXERCISES)


def _check_function(exercise):
    """`checks.<name>(answer)`, the notebook's check cell for one exercise."""

    def check(answer, seed=0):
        return exercise.check(answer, seed)

    check.__name__ = check.__qualname__ = exercise.name
    check.__doc__ = f"Check exercise {exercise.name!r} of notebook {exercise.notebook} ({exercise.points} points)."
    return check


_taken = sorted(set(EXERCISES) & set(globals()))
if _taken:
    raise ValueError(f"exercise names {_taken} are taken by attributes of {__name__}: rename the exercises")

_CHECKS = {name: _check_function(exercise) for name, exercise in EXERCISES.items()}

__all__ = ["EXERCISES", "CheckFailed", "Exercise", "Mistake", "NotDoneYet", *_CHECKS]


def __getattr__(name):
    """`checks.<exercise name>`: the check function of that exercise (PEP 562)."""
    try:
        return _CHECKS[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}; the exercises' checks are: "
                             f"{', '.join(_CHECKS)}") from None


def __dir__():
    return sorted({*globals(), *_CHECKS})
