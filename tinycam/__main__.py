"""Command line: `python -m tinycam COMMAND [options]`. Run without a command to list them."""

import importlib
import sys

# command -> (module with a `main(argv)` function, one-line help)
COMMANDS = {
    "lecture": ("tinycam.course.lecture", "print the handwritten Grad-CAM worked example step by step"),
    "train": ("tinycam.train", "train the two tiny CNNs on the shapes world; weights to trained/ (see --replace)"),
    "bench": ("tinycam.course.bench", "time and memory of an explanation, as ratios to one inference pass"),
    "release": ("tinycam.course.release", "write the student copies of the notebooks (solutions removed) to notebooks/student/"),
    "grade": ("tinycam.course.grading", "grade notebooks on hidden cases: points per exercise, as text, JSON or CSV"),
    "study": ("tinycam.course.study", "the multi-instance study of notebook 05: CAM, Grad-CAM, Grad-CAM++ by object size"),
    "evaluate": ("tinycam.course.evaluate", "every method's faithfulness, localization and sanity checks; writes data/evaluation.md"),
}


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        if argv and argv[0] not in ("-h", "--help"):
            print(f"unknown command {argv[0]!r}\n", file=sys.stderr)
        print("usage: python -m tinycam COMMAND [options]\n\ncommands:")
        for name, (_, text) in COMMANDS.items():
            print(f"  {name:<10} {text}")
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    module, _ = COMMANDS[argv[0]]
    return importlib.import_module(module).main(argv[1:]) or 0


if __name__ == "__main__":
    sys.exit(main())
