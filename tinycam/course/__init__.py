"""The course around the library: the lecture's numbers, the graded checks, release and grading of notebooks,
plots, the interactive explorer, the multi-instance study and the benchmark.

The library (`tinycam.*` outside this subpackage) never imports from here; the notebooks and the command line do.
"""
