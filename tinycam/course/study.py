"""The multi-instance study of notebook 05: does a map find *every* object of the class, the small ones too?

`python -m tinycam study [--n N] [--seed S] [--out data/study.md]` prints the table and writes it as markdown.

Images: `n` images of the shapes world, a third per class; each holds three objects of one class c whose sizes are
spread (in log scale) from 10 % to 45 % of the image side, so every image has a small, a medium and a large instance
(`make_images(n_c, seed + c, classes=(c,), n_objects=3, scale=(0.1, 0.45), spread_sizes=True)`). Every mask is known.

Methods, all on the last conv block of each model and for the target class c, upsampled to 64×64 and min-max
normalized as `tinycam.explain` returns them:

- "cam":              Zhou et al. (CVPR 2016), the classifier's weights; only for the GAP model.
- "gradcam":          Selvaraju et al. (ICCV 2017), w_k = mean_ij ∂S/∂A^k_ij.
- "gradcam++":        Chattopadhay et al. (WACV 2018), w_k = Σ_ij α^k_ij ReLU(∂S/∂A^k_ij), closed-form α.
- "positive-gradcam": w_k = mean_ij ReLU(∂S/∂A^k_ij), what Grad-CAM++ becomes when α is normalized by its spatial
                      sum on a network ending in global average pooling (notebook 05, section 5; Lerma and Lucas,
                      "Grad-CAM++ is equivalent to Grad-CAM with positive gradients", 2022).

Metrics (`tinycam.metrics`): pointing game, energy pointing game, per-instance mass share and local peaks by size
bucket, Average Drop and Increase in Confidence with the class confidence sigmoid(S^c) on the image and on the image
multiplied by its map.
"""

import math
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from tinycam import metrics
from tinycam.course.reports import report_parser, write_report
from tinycam.explaining import explain
from tinycam.models import load_model
from tinycam.shapes import CLASSES, make_images

__all__ = [
    "METHODS",
    "METHOD_NAMES",
    "MODEL_METHODS",
    "SIZE_BUCKETS",
    "MIN_SHARE",
    "study_images",
    "StudyRow",
    "Study",
    "run_study",
    "main",
]

METHODS = ("cam", "gradcam", "gradcam++", "positive-gradcam")
METHOD_NAMES = {
    "cam": "CAM",
    "gradcam": "Grad-CAM",
    "gradcam++": "Grad-CAM++",
    "positive-gradcam": "positive-gradient Grad-CAM",
}
# CAM needs scores = linear layer ∘ global average pooling of the layer (Zhou et al.): the FC model is not one
MODEL_METHODS = {"gap": METHODS, "fc": tuple(m for m in METHODS if m != "cam")}
# object size = sqrt of its visible area in pixels; the three spread sizes land near 6.4, 13.6 and 28.8 px
SIZE_BUCKETS = (("small", 0.0, 10.0), ("medium", 10.0, 20.0), ("large", 20.0, math.inf))
# an instance is "covered" when it holds at least this share of the map's mass: twice what a uniform map would give
# a small instance (about 1 % of the image)
MIN_SHARE = 0.02
DEFAULT_N = 1200
DEFAULT_SEED = 20000  # training used seed 0, the held-out accuracy seed 10000
WORLD = dict(n_objects=3, scale=(0.1, 0.45), spread_sizes=True)


# ---------------------------------------------------------------------------------------------------------------
# images and maps


def study_images(n_images, seed):
    """[(c, world_c)] for c = 0, 1, 2: the images of class c (n_images split as evenly as possible)."""
    if n_images < len(CLASSES):
        raise ValueError(f"n_images must be at least {len(CLASSES)} (one image per class), got {n_images}")
    counts = [n_images // len(CLASSES) + (c < n_images % len(CLASSES)) for c in range(len(CLASSES))]
    return [(c, make_images(count, seed + c, classes=(c,), **WORLD)) for c, count in enumerate(counts)]


# ---------------------------------------------------------------------------------------------------------------
# the table


@dataclass(frozen=True)
class StudyRow:
    """One (model, method) line; every figure is a percentage, per-bucket ones in SIZE_BUCKETS order."""

    model: str
    method: str
    pointing_game: float  # % of images whose map peaks on an object of the class
    energy_pointing_game: float  # mean % of the map's mass inside the class's masks
    mean_share: tuple  # mean % of the map's mass on one instance
    mass_coverage: tuple  # % of instances holding at least MIN_SHARE of the mass
    peak_coverage: tuple  # % of instances containing a local peak of the map (metrics.instance_peaks)
    average_drop: float  # Average Drop %, lower is better
    increase_in_confidence: float  # Increase in Confidence %, higher is better


@dataclass(frozen=True)
class Study:
    n_images: int
    seed: int
    instances: tuple  # number of instances per size bucket
    uniform_share: tuple  # mean % of the image an instance covers: the share a uniform map would give it
    rows: tuple  # of StudyRow

    def row(self, model, method):
        return next(r for r in self.rows if r.model == model and r.method == method)

    def table(self):
        """The results as a markdown table."""
        buckets = [name for name, _, _ in SIZE_BUCKETS]
        head = (["model", "method", "pointing game", "energy pointing game"]
                + [f"mean share, {b}" for b in buckets]
                + [f"≥ {100 * MIN_SHARE:g} % of mass, {b}" for b in buckets]
                + [f"peak on it, {b}" for b in buckets]
                + ["Average Drop ↓", "Increase in Confidence ↑"])
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + "|"]
        for r in self.rows:
            cells = [r.model, METHOD_NAMES[r.method], r.pointing_game, r.energy_pointing_game, *r.mean_share,
                     *r.mass_coverage, *r.peak_coverage, r.average_drop, r.increase_in_confidence]
            lines.append("| " + " | ".join(c if isinstance(c, str) else f"{c:.1f}" for c in cells) + " |")
        return "\n".join(lines)

    def markdown(self, command=None):
        """The whole report: how it was made, the sizes, the table (all figures in %)."""
        command = command or f"python -m tinycam study --n {self.n_images} --seed {self.seed}"
        per_class = ", ".join(f"{len(range(c, self.n_images, len(CLASSES)))} {name}s" for c, name in enumerate(CLASSES))
        buckets = ", ".join(f"{n} {name} ({_bucket_text(lo, hi)})"
                            for (name, lo, hi), n in zip(SIZE_BUCKETS, self.instances))
        uniform = ", ".join(f"{name} {u:.1f} %" for (name, _, _), u in zip(SIZE_BUCKETS, self.uniform_share))
        return "\n".join([
            "# The multi-instance study (notebook 05)",
            "",
            f"Written by `{command}` (`tinycam/study.py`); the same command gives the same numbers (on another "
            "CPU, float32 rounding may move a figure by a tenth).",
            "",
            f"- **Images**: {self.n_images} ({per_class}), seed {self.seed}. Each image holds three objects of one "
            "class with sizes spread from 10 % to 45 % of the 64-pixel side: "
            "`make_images(n_c, seed + c, classes=(c,), n_objects=3, scale=(0.1, 0.45), spread_sizes=True)`.",
            f"- **Instances** by size (the square root of the visible area): {buckets}. An instance covers on "
            f"average {uniform} of its image: the share of mass a uniform map would give it.",
            "- **Maps**: target class = the objects' class; last conv block (`gap`: features.10, 16×16; `fc`: "
            "features.11, 8×8), upsampled to 64×64 and min-max normalized, as `tinycam.explain` returns them. "
            "CAM applies to the GAP model only.",
            "- **Metrics** (all in %): pointing game = the map's maximum lies on an object of the class; energy "
            "pointing game = share of the map's mass inside the class's masks; mean share = share of the mass on "
            f"one instance; ≥ {100 * MIN_SHARE:g} % of mass = instances holding at least that share; peak on it = "
            "instances containing a local maximum of the map (3×3 neighbourhood, at least 10 % of the image's "
            "maximum); Average Drop and Increase in Confidence compare the class confidence sigmoid(S^c) on the "
            "image and on the image multiplied by its map (Chattopadhay et al., WACV 2018).",
            "",
            self.table(),
            "",
        ])


def _bucket_text(lo, hi):
    return f"< {hi:g} px" if lo == 0 else (f"≥ {lo:g} px" if math.isinf(hi) else f"{lo:g}–{hi:g} px")


def _percent(values):
    return 100.0 * float(values.double().mean()) if values.numel() else float("nan")


def run_study(n_images=DEFAULT_N, seed=DEFAULT_SEED, models=("gap", "fc"), progress=False):
    """Run every method of MODEL_METHODS on every model over the study's images; returns a `Study`.
    progress=True shows a progress bar on stderr (one step per model, class and method)."""
    worlds = study_images(n_images, seed)
    bar = tqdm(total=sum(len(MODEL_METHODS[m]) for m in models) * len(worlds), desc="study", unit="map batch",
               disable=not progress)
    sizes = torch.cat([torch.from_numpy(w.object_sizes) for _, w in worlds]).double()
    present = torch.cat([torch.from_numpy(w.object_classes >= 0) for _, w in worlds])
    area = sizes**2 / (worlds[0][1].images.shape[-1] * worlds[0][1].images.shape[-2])
    in_bucket = [present & (sizes >= lo) & (sizes < hi) for _, lo, hi in SIZE_BUCKETS]
    rows = []
    for model_name in models:
        model = load_model(model_name)
        methods = MODEL_METHODS[model_name]
        per_image: dict[str, list] = {method: [] for method in methods}
        per_instance: dict[str, list] = {method: [] for method in methods}
        for c, world in worlds:
            images, instances = torch.from_numpy(world.images), torch.from_numpy(world.masks)
            union = instances.any(dim=1)  # every object of the image is of class c
            with torch.no_grad():
                confidence = torch.sigmoid(model(images)[:, c].double())
            for method in methods:
                heatmaps = explain(model, images, model.last_conv, method=method, target=c)
                bar.update()
                with torch.no_grad():
                    masked_confidence = torch.sigmoid(model(images * heatmaps[:, None])[:, c].double())
                per_image[method].append(dict(
                    pointing=metrics.pointing_game(heatmaps, union),
                    energy=metrics.energy_pointing_game(heatmaps, union),
                    confidence=confidence,
                    masked_confidence=masked_confidence,
                ))
                per_instance[method].append(dict(share=metrics.instance_mass(heatmaps, instances).double(),
                                                 peak=metrics.instance_peaks(heatmaps, instances)))
        for method in methods:
            image_values = {k: torch.cat([d[k] for d in per_image[method]]) for k in per_image[method][0]}
            share = torch.cat([d["share"] for d in per_instance[method]])
            peak = torch.cat([d["peak"] for d in per_instance[method]])
            before, after = image_values["confidence"], image_values["masked_confidence"]
            rows.append(StudyRow(
                model=model_name,
                method=method,
                pointing_game=_percent(image_values["pointing"]),
                energy_pointing_game=_percent(image_values["energy"]),
                mean_share=tuple(_percent(share[b]) for b in in_bucket),
                mass_coverage=tuple(_percent(share[b] >= MIN_SHARE) for b in in_bucket),
                peak_coverage=tuple(_percent(peak[b]) for b in in_bucket),
                average_drop=float(metrics.average_drop(before, after)),
                increase_in_confidence=float(metrics.increase_in_confidence(before, after)),
            ))
    bar.close()
    return Study(
        n_images=n_images,
        seed=seed,
        instances=tuple(int(b.sum()) for b in in_bucket),
        uniform_share=tuple(_percent(area[b]) for b in in_bucket),
        rows=tuple(rows),
    )


def main(argv=None):
    parser = report_parser("study", __doc__.split("\n\n")[0], DEFAULT_N, DEFAULT_SEED, "study.md")
    args = parser.parse_args(argv)
    if args.n < len(CLASSES):
        parser.error(f"--n must be at least {len(CLASSES)} (one image per class), got {args.n}")
    return write_report(parser, args.out, lambda: run_study(args.n, args.seed, progress=True).markdown(
        f"python -m tinycam study --n {args.n} --seed {args.seed}"))
