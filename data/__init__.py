"""The course's data as the package `tinycam.data` (pyproject.toml maps this folder to it): the lecture's numbers,
the trained models' weights and their records. Read through `tinycam.DATA_DIR`, from a checkout or an install."""
