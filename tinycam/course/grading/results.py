"""What grading found: points and a message per exercise, and per notebook its exercises, error, notes and flags."""

from dataclasses import dataclass, field


@dataclass
class ExerciseResult:
    """One exercise's points (all or nothing) and why."""

    name: str
    points: int
    max_points: int
    passed: bool
    message: str

    def as_dict(self):
        return {"name": self.name, "points": self.points, "max_points": self.max_points, "passed": self.passed,
                "message": self.message}


@dataclass
class NotebookResult:
    """One notebook file's exercises, or the reason it could not be graded, and what happened while it ran."""

    notebook: str  # the path as given on the command line
    exercises: list = field(default_factory=list)
    error: str | None = None  # set when the notebook could not be graded (missing file, not a notebook, ...)
    notes: list = field(default_factory=list)  # what happened while the notebook ran (cells that raised, timeouts)
    flags: list = field(default_factory=list)  # `flags.Flag`s for the instructor: pointers, not verdicts (no points)
    answers: list = field(default_factory=list)  # written answers ({"question", "answer"}), graded by hand
    seconds: float = 0.0

    @property
    def score(self):
        return sum(e.points for e in self.exercises)

    @property
    def max_score(self):
        return sum(e.max_points for e in self.exercises)

    def as_dict(self):
        return {"notebook": self.notebook, "score": self.score, "max_score": self.max_score,
                "exercises": [e.as_dict() for e in self.exercises], "error": self.error, "notes": list(self.notes),
                "flags": [f.as_dict() for f in self.flags], "answers": list(self.answers)}


def passed(exercise):
    """Full marks for `exercise` (a `checks.Exercise`)."""
    return ExerciseResult(exercise.name, exercise.points, exercise.points, True, "correct on every hidden case")


def failed(exercise, message):
    """No marks for `exercise`, and why."""
    return ExerciseResult(exercise.name, 0, exercise.points, False, message)
