"""The lecture's numbers, read from data/ (typed once there), and `python -m tinycam lecture`.

`worked_example()` gives the handwritten Grad-CAM example (001), `conv_examples()` the convolution-arithmetic
examples of the CNN slides (004), and `three_dogs()` the lecture's three-dogs picture as feature maps, all as float64
arrays. Tests, notebooks and the command line all read them from here.
"""

import argparse
import json

import numpy as np

from tinycam import DATA_DIR, reference


def _arrays(obj):
    """JSON lists -> float64 arrays, recursively; strings and scalars stay as they are."""
    if isinstance(obj, dict):
        return {key: _arrays(value) for key, value in obj.items() if not key.startswith("_")}
    if isinstance(obj, list):
        return np.asarray(obj, dtype=np.float64)
    return obj


def worked_example():
    """The handwritten example: acts (3, 2, 2), grads (3, 2, 2) and the expected alphas (3,), L and relu_L (2, 2)."""
    return _arrays(json.loads((DATA_DIR / "lecture_example.json").read_text()))


def conv_examples():
    """The CNN slides' examples: stride_example, transposed_example and padding_example (see data/README.md)."""
    return _arrays(json.loads((DATA_DIR / "conv_arithmetic.json").read_text()))


def three_dogs(size=12):
    """The lecture's three dogs (000, 003: Grad-CAM++'s motivation) as three feature maps (3, size, size): map k is 1 on
    the footprint of dog k and 0 elsewhere, one dog per map, footprints of 36, 9 and 1 pixels (6×6, 3×3, 1×1), apart."""
    if size < 12:
        raise ValueError(f"three_dogs needs size >= 12 to place the 6x6, 3x3 and 1x1 footprints apart, got {size}")
    acts = np.zeros((3, size, size))
    acts[0, 1:7, 1:7] = 1.0  # the large dog: 36 px
    acts[1, 2:5, 8:11] = 1.0  # the medium dog: 9 px
    acts[2, 9, 3] = 1.0  # the small dog: 1 px
    return acts


def format_matrix(m, indent="    ", width=8, digits=3):
    """A 2-D array as aligned rows with a fixed number of decimals (stable across NumPy versions)."""
    rows = np.asarray(m, dtype=np.float64) + 0.0  # + 0.0 turns -0.0 into 0.0, so no "-0.000" is printed
    return "\n".join(indent + " ".join(f"{value:{width}.{digits}f}" for value in row) for row in rows)


def walk_through(example=None):
    """The worked example as text, step by step: A^k, ∂y^c/∂A^k, each α_k^c = GAP, L = Σ α A, ReLU(L)."""
    ex = worked_example() if example is None else example
    acts, grads = ex["acts"], ex["grads"]
    alphas = reference.gradcam_weights(grads)
    L = reference.weighted_combination(alphas, acts)
    lines = ["Grad-CAM by hand: three 2x2 feature maps of the last conv layer (handwritten example, 001)", ""]
    lines.append("Step 1. The feature maps A^k (forward pass)")
    for k, a in enumerate(acts, 1):
        lines += [f"  A^{k}" + ("   <- the 'background kernel'" if k == 3 else ""), format_matrix(a)]
    lines += ["", "Step 2. The gradient maps dy^c/dA^k (backward pass): how fast y^c changes per unit of A^k_ij"]
    for k, g in enumerate(grads, 1):
        lines += [f"  dy^c/dA^{k}", format_matrix(g)]
    lines += ["", "Step 3. Global average pooling of each gradient map: alpha_k^c = (1/Z) sum_ij dy^c/dA^k_ij, Z = 4"]
    for k, (g, alpha) in enumerate(zip(grads, alphas), 1):
        terms = " + ".join(f"{v:g}" for v in g.ravel()).replace("+ -", "- ")
        lines.append(f"  alpha_{k}^c = ({terms}) / 4 = {alpha:.3f}")
    lines += ["", "Step 4. Weighted combination L = sum_k alpha_k^c A^k"]
    for k, (a, alpha) in enumerate(zip(acts, alphas), 1):
        lines += [f"  alpha_{k}^c A^{k} = {alpha:.3f} x A^{k}", format_matrix(alpha * a)]
    lines += ["  L (sum of the three)", format_matrix(L)]
    lines += ["", "Step 5. ReLU(L): keep what speaks for the class, drop the negative evidence", format_matrix(np.maximum(L, 0))]
    small = np.abs(alphas[2] * acts[2]).max()
    lines += [
        "",
        f"A^3 has the most varied values, but alpha_3^c = {alphas[2]:.3f} is tiny, so alpha_3^c A^3 changes L by at "
        f"most {small:.3f}: the score hardly depends on the background kernel.",
    ]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tinycam lecture", description=walk_through.__doc__)
    parser.parse_args(argv)
    print(walk_through())
    return 0
