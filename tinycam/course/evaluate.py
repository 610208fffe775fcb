"""Is the explanation right? Every method of `tinycam.explaining.METHODS` on the same held-out images, in one table:
faithfulness (deletion and insertion), localization (ground-truth masks) and the sanity checks (randomization).

`python -m tinycam evaluate [--n N] [--seed S] [--steps K] [--out data/evaluation.md]` prints the table and writes it
as markdown.

Images: `make_images(n, seed)` (the training world: 1 to 4 objects of any classes), never seen in training (seed 0)
nor in the accuracy split (10000) nor the study (20000). Model: the GAP network (`load_model("gap")`), maps of its last
conv block for CAM-family methods. Target: for each image, the class present in it (ground truth) with the highest
score. Maps: `tinycam.explain(..., normalize=False)`, per-colour-channel maps reduced to one value per pixel by their
largest absolute value over the channels (as gradient saliency does), then min-max normalized per image.

Columns (`tinycam.faithfulness`, `tinycam.metrics`, `tinycam.sanity`), means over the images:
- deletion / insertion AUC: Petsiuk et al. (BMVC 2018, section 4.1), `steps` steps, deletion to black, insertion from
  the blurred image; the class probability sigmoid(S^c).
- pointing game, energy inside the mask, instance mass (mean share of the map's mass on one object of the class).
- randomization: Spearman's ρ of the raw maps, of their absolute values, and SSIM, between the map on the trained
  model and on (a) the model with every layer re-initialized (the end of the cascade, Adebayo et al., NeurIPS 2018,
  section 3) and (b) the GAP network trained on shuffled labels (section 4); and a second table with ρ of |map| and
  SSIM after each step of the cascade.
"""

import json
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from tinycam import DATA_DIR, faithfulness, metrics, sanity
from tinycam import torch_reference as T
from tinycam.course.reports import report_parser, write_report
from tinycam.explaining import METHODS, explain
from tinycam.models import load_model
from tinycam.shapes import make_images

__all__ = ["DEFAULT_N", "DEFAULT_SEED", "DEFAULT_STEPS", "OPTIONS", "EvaluationRow", "Evaluation", "run_evaluation",
           "main"]

DEFAULT_N = 16
DEFAULT_SEED = 30000  # training used seed 0, the held-out accuracy 10000, the study 20000
DEFAULT_STEPS = 16  # deletion / insertion steps: 256 of the 4096 pixels at a time
RANDOMIZATION_SEED = 0
# occlusion with non-overlapping 8×8 patches: 64 windows instead of the default 225, to fit the time budget
OPTIONS = {"occlusion": {"patch": 8, "stride": 8, "progress": False}}


@dataclass(frozen=True)
class EvaluationRow:
    """One method; AUCs in [0, 1], localization in %, similarities in [−1, 1] (SSIM in about [0, 1])."""

    method: str
    deletion_auc: float  # lower is better
    insertion_auc: float  # higher is better
    pointing_game: float  # % of images whose map peaks on an object of the class
    energy: float  # mean % of the map's mass inside the class's masks
    instance_mass: float  # mean % of the map's mass on one object of the class
    cascade: tuple  # (ρ, ρ of |map|, SSIM) against the fully randomized model: near 1 = the map did not change
    shuffled: tuple  # the same against the model trained on shuffled labels
    cascade_steps: tuple  # ((ρ of |map|, SSIM) after each step of the cascade, top layer first)


@dataclass(frozen=True)
class Evaluation:
    n_images: int
    seed: int
    steps: int
    rows: tuple  # of EvaluationRow
    skipped: dict  # method -> why it could not run on this model and layer
    layers: tuple  # the layers of the cascade, top first

    def row(self, method):
        return next(r for r in self.rows if r.method == method)

    def table(self):
        head = ["method", "deletion AUC ↓", "insertion AUC ↑", "pointing game %", "energy in mask %",
                "mass per instance %", "ρ, randomized", "ρ of |map|, randomized", "SSIM, randomized",
                "ρ, shuffled labels", "ρ of |map|, shuffled labels", "SSIM, shuffled labels"]
        lines = ["| " + " | ".join(head) + " |", "|---|" + "|".join(["---:"] * (len(head) - 1)) + "|"]
        for r in self.rows:
            cells = [f"{r.deletion_auc:.3f}", f"{r.insertion_auc:.3f}", f"{r.pointing_game:.1f}", f"{r.energy:.1f}",
                     f"{r.instance_mass:.1f}", *(f"{v:.2f}" for v in (*r.cascade, *r.shuffled))]
            lines.append(f"| {r.method} | " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def cascade_table(self):
        """ρ of |map| / SSIM after each step of the cascade: the step's layer and every layer above it redrawn."""
        head = ["method", *(f"{'+ ' if i else ''}{name}" for i, name in enumerate(self.layers))]
        lines = ["| " + " | ".join(head) + " |", "|---|" + "|".join(["---:"] * len(self.layers)) + "|"]
        for r in self.rows:
            lines.append(f"| {r.method} | " + " | ".join(f"{rho:.2f} / {ssim:.2f}" for rho, ssim in r.cascade_steps) + " |")
        return "\n".join(lines)

    def markdown(self, command=None):
        command = command or f"python -m tinycam evaluate --n {self.n_images} --seed {self.seed} --steps {self.steps}"
        skipped = "".join(f"\n- **Skipped** `{m}`: {why}" for m, why in self.skipped.items())
        return "\n".join([
            "# Is the explanation right? Faithfulness, localization and sanity checks (notebook 06)",
            "",
            f"Written by `{command}` (`tinycam/course/evaluate.py`); the same command gives the same numbers on the "
            "same CPU (another CPU's float32 rounding may move a last digit).",
            "",
            f"- **Images**: {self.n_images} held-out images of the shapes world, `make_images({self.n_images}, "
            f"{self.seed})` (1 to 4 objects of any classes). **Target**: in each image, the class present with the "
            "highest score.",
            "- **Model**: the GAP network (`load_model(\"gap\")`); CAM-family maps of its last conv block "
            "(features.10, 16×16), upsampled to 64×64. Every method of `tinycam.explaining.METHODS`, with "
            f"`tinycam.explain(..., normalize=False)` (options: {OPTIONS}); per-colour-channel maps (guided "
            "backprop, Guided Grad-CAM) reduced to their largest absolute value over the channels; every map "
            "min-max normalized per image. On a GAP network ∂S^c/∂A^k_ij = w^c_k / (h·w) is the same at every "
            "position, so the gradient-weighted methods collapse: HiResCAM and XGrad-CAM give Grad-CAM's map, "
            "LayerCAM gives positive-gradient Grad-CAM's (and their rows agree); on the FC network they differ.",
            f"- **Deletion / insertion** (Petsiuk et al., BMVC 2018, section 4.1): the pixels in the map's order, "
            f"most important first (ties in raster order), {self.steps} steps of {4096 // self.steps} pixels; "
            "deletion replaces them with black, insertion puts them back into the image blurred by an 11-tap Gaussian "
            "of std 5 px; the area under the class probability sigmoid(S^c) over the fraction of pixels (trapezoids). "
            "Deletion: lower is better; insertion: higher is better.",
            "- **Localization**: pointing game = the map's maximum lies on an object of the class; energy = share of "
            "the map's mass inside the class's masks; mass per instance = mean share of the mass on one object of "
            "the class.",
            "- **Randomization** (Adebayo et al., NeurIPS 2018, \"Sanity Checks for Saliency Maps\"): Spearman's "
            "rank correlation ρ of the raw maps and of their absolute values (ties by average rank; a blank map "
            "counts as 0) and SSIM (Wang et al., IEEE TIP 2004, 11×11 Gaussian window, of |map| / max |map|) "
            "between the map on the trained model and on (a) *randomized*: the same network with every layer "
            "re-initialized, the end of the cascade (`tinycam.sanity`, each weight tensor redrawn from N(0, its "
            f"own std²), seed {RANDOMIZATION_SEED}), (b) *shuffled labels*: the GAP network trained on permuted "
            "labels (`load_model(\"gap_shuffled\")`, data/README.md). A method passes when these are low: its map "
            "depends on what the model learned. A value near 1 means the map hardly changed when the model was "
            "destroyed: it shows the image (edges, colours), not the model." + skipped,
            "",
            self.table(),
            "",
            "## The cascade, step by step",
            "",
            "ρ of |map| / SSIM between the map on the trained model and on the model whose layers are re-initialized "
            "from the top down, one more at each step (Adebayo et al., section 3, cascading randomization; the last "
            "column is the *randomized* model above). A method that keeps its map while the top layers, which "
            "hold what the network learned about the classes, are destroyed is not explaining them.",
            "",
            self.cascade_table(),
            "",
            "## What these numbers cannot tell",
            "",
            "- **Deletion and insertion create images the network never saw.** A black region with the outline of "
            "what was deleted, or sharp pixels pasted into a blurred image, are out of distribution: the "
            "probability may fall because the image became strange, not because the evidence went, and in this "
            "world deleting an object to black leaves a black object of the same *shape*, which is exactly what "
            "the classes are about, so deletion can leave the class probability high however good the map is. "
            "ROAD (Rong et al., ICML 2022, \"A Consistent and Efficient Evaluation Strategy for Attribution "
            "Methods\") is one answer: it removes pixels by noisy linear imputation from their neighbours, so the "
            "removed region looks like its surroundings, and it removes them in the order *least* important first "
            "as well as most important first, so the shape of the removed set tells the model less (not "
            "implemented here).",
            "- **Only the map's order counts for the curves, and only their first steps separate methods.** With "
            f"{self.steps} steps of {4096 // self.steps} pixels, when the first step alone already gives back most of "
            "the probability (an insertion AUC near 1), insertion cannot tell those methods apart; and "
            f"{self.n_images} images give means that a few images can move.",
            "- **The localization columns score agreement with the masks, not with the model.** A map can land on "
            "the object because the object is where the image has edges and colour, whatever the network uses. "
            "That is what the randomization columns check; they say whether a map depends on the weights, not "
            "whether it depends on them correctly.",
            "- **The shuffled-label model did not memorize its labels**: "
            f"{100 * _shuffled_record()['train_label_accuracy']:.1f} % per-label accuracy on its own shuffled "
            "training labels, the majority guess (data/README.md), unlike Adebayo et al.'s networks, which memorized "
            "theirs. It learned the label frequencies and nothing about the images: its maps are compared with the "
            "trained model's as those of a network that knows nothing, not of one that learned something else.",
            "- **Similarities are between normalized maps.** A map that fades to near zero but keeps its shape "
            "scores as unchanged.",
            "",
        ])


def _shuffled_record():
    return json.loads((DATA_DIR / "models.json").read_text())["gap_shuffled"]


def _mean(values):
    return float(values.double().mean())


def _per_pixel(maps):
    """One value per pixel, min-max normalized per image: (B, H, W), or (B, C, H, W) by the largest |value|."""
    return T.normalize(maps.abs().amax(dim=1) if maps.ndim == 4 else maps)


def evaluation_images(n_images, seed, model):
    """(images, instance masks, object classes, targets): the held-out world and, per image, the class present
    in it with the highest score."""
    world = make_images(n_images, seed)
    images = torch.from_numpy(world.images)
    with torch.no_grad():
        scores = model(images)
    present = torch.from_numpy(world.labels) > 0.5
    targets = scores.masked_fill(~present, -torch.inf).argmax(dim=1)
    return images, torch.from_numpy(world.masks), torch.from_numpy(world.object_classes), targets


def run_evaluation(n_images=DEFAULT_N, seed=DEFAULT_SEED, steps=DEFAULT_STEPS, progress=False):
    """Every method of METHODS on the GAP model over the held-out images; returns an `Evaluation`."""
    model = load_model("gap")
    layer = model.last_conv
    images, instances, object_classes, targets = evaluation_images(n_images, seed, model)
    of_target = object_classes == targets[:, None]  # (B, M): the slots holding an object of the target class
    union = (instances & of_target[:, :, None, None]).any(dim=1)
    cascade = list(sanity.cascading_randomization(model, RANDOMIZATION_SEED))
    randomized = [*cascade, ("shuffled labels", load_model("gap_shuffled"))]
    rows, skipped = [], {}
    for method in tqdm(METHODS, desc="evaluate", unit="method", disable=not progress):
        try:
            raw = explain(model, images, layer, method=method, target=targets, normalize=False,
                          **OPTIONS.get(method, {}))
        except ValueError as error:
            skipped[method] = str(error)
            continue
        maps = _per_pixel(raw)
        deletion = faithfulness.deletion_curve(model, images, maps, targets, steps=steps)
        insertion = faithfulness.insertion_curve(model, images, maps, targets, steps=steps)
        similarity = sanity.randomization_similarity(model, images, [method], layer, targets, randomized,
                                                     options=OPTIONS, maps={method: raw})
        share = metrics.instance_mass(maps, instances)[of_target]
        per_model = [tuple(_mean(measure[0, step]) for measure in
                           (similarity.spearman, similarity.spearman_abs, similarity.ssim))
                     for step in range(len(randomized))]
        rows.append(EvaluationRow(
            method=method,
            deletion_auc=_mean(deletion.auc),
            insertion_auc=_mean(insertion.auc),
            pointing_game=100 * _mean(metrics.pointing_game(maps, union)),
            energy=100 * _mean(metrics.energy_pointing_game(maps, union)),
            instance_mass=100 * _mean(share),
            cascade=per_model[len(cascade) - 1],
            shuffled=per_model[-1],
            cascade_steps=tuple(values[1:] for values in per_model[: len(cascade)]),
        ))
    return Evaluation(n_images=n_images, seed=seed, steps=steps, rows=tuple(rows), skipped=skipped,
                      layers=tuple(name for name, _ in cascade))


def main(argv=None):
    parser = report_parser("evaluate", __doc__.split("\n\n")[0], DEFAULT_N, DEFAULT_SEED, "evaluation.md")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS,
                        help=f"deletion / insertion steps (default {DEFAULT_STEPS})")
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error(f"--n must be at least 1, got {args.n}")
    if not 1 <= args.steps <= 4096:
        parser.error(f"--steps must be from 1 to 4096 (the pixels of a 64×64 image), got {args.steps}")
    return write_report(parser, args.out, lambda: run_evaluation(args.n, args.seed, args.steps, progress=True).markdown(
        f"python -m tinycam evaluate --n {args.n} --seed {args.seed} --steps {args.steps}"))
