"""Train the two tiny CNNs of `tinycam.models` on the shapes world: `python -m tinycam train [options]`.

Both models see the same freshly generated training images (seed `--seed`), randomly flipped and turned by quarter
turns (every shape stays in its class). GapNet is trained first. FcNet then starts from GapNet's trained shared layers
(`features.0` to `features.8`: transfer learning, as from scratch its fully connected head learns too slowly for this
one-minute budget) and trains for half as many epochs. Both are trained with BatchNorm, folded into the convs before
saving, and scored on a held-out set generated with another seed. The weights go to `<out>/gap_model.pt` and
`<out>/fc_model.pt`, the scores to `<out>/models.json`; `<out>` is `trained/` in the working directory unless given
(load them with `tinycam.load_model(name, folder=<out>)`). Files that exist are only overwritten with `--replace`, so
replacing the shipped models in `data/` takes `--out data --replace`.

`--shuffle-labels` trains GapNet alone, with the same recipe on the same images but with their label vectors randomly
permuted among the images (a permutation seeded by `--seed`), into `<out>/gap_shuffled_model.pt` (load it with
`load_model("gap_shuffled")`) and its own entry of `models.json` (the other entries are kept): the data
randomization test of Adebayo et al. (NeurIPS 2018, "Sanity Checks for Saliency Maps", section 4). A network trained
on labels that have no relation to the images cannot know where the objects are, so a map that still finds them
explains the image, not the model.
"""

import argparse
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from tinycam.models import MODELS, VARIANTS, fold_batchnorm, weights_path
from tinycam.shapes import make_images

BATCH_SIZE = 32
TEST_SEED_OFFSET = 10_000  # the held-out images use seed + TEST_SEED_OFFSET
DEFAULT_OUT = Path("trained")  # relative to the working directory: a retrained model never lands in data/ by default


def evaluate(model, images, labels, batch_size=500):
    """Per-label accuracy (each of the 3 yes/no answers at threshold 0.5) and exact-match accuracy (all 3 right)."""
    model.eval()
    batches = []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            x = torch.as_tensor(images[start : start + batch_size])
            y = torch.as_tensor(labels[start : start + batch_size]) > 0.5
            batches.append((model(x) > 0) == y)  # logit > 0  <=>  sigmoid > 0.5
    correct = torch.cat(batches)
    return {"label_accuracy": correct.float().mean().item(), "exact_match": correct.all(dim=1).float().mean().item()}


def _augment(x, generator):
    """Random flips and quarter turns of a batch (the same one for the whole batch, which is cheap)."""
    k = int(torch.randint(4, (1,), generator=generator))
    if torch.rand(1, generator=generator).item() < 0.5:
        x = x.flip(-1)
    return torch.rot90(x, k, dims=(-2, -1))


def train_model(model, images, labels, epochs, seed, lr, batch_size=BATCH_SIZE, desc="train"):
    """Train `model` in place with Adam and a one-cycle learning-rate schedule; returns it in eval mode.

    `seed` fixes the order of the batches and their flips and turns (set `torch.manual_seed` before building the
    model to fix its initial weights)."""
    generator = torch.Generator().manual_seed(seed)
    x_all, y_all = torch.as_tensor(images), torch.as_tensor(labels)
    steps_per_epoch = len(images) // batch_size
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=lr, total_steps=epochs * steps_per_epoch, pct_start=0.15
    )
    loss_fn = nn.BCEWithLogitsLoss()
    model.train()
    with tqdm(total=epochs * steps_per_epoch, desc=desc, unit="batch") as bar:
        for _ in range(epochs):
            order = torch.randperm(len(images), generator=generator)
            for step in range(steps_per_epoch):
                idx = order[step * batch_size : (step + 1) * batch_size]
                loss = loss_fn(model(_augment(x_all[idx], generator)), y_all[idx])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                schedule.step()
                bar.update()
                if step % 10 == 0:
                    bar.set_postfix(loss=f"{loss.item():.3f}")
    return model.eval()


def _copy_shared_layers(source, target):
    """Copy the leading `features` layers that `source` and `target` have in common (same type and shapes)."""
    for a, b in zip(source.features, target.features):
        shapes_a = {k: v.shape for k, v in a.state_dict().items()}
        if type(a) is not type(b) or shapes_a != {k: v.shape for k, v in b.state_dict().items()}:
            break
        b.load_state_dict(a.state_dict())


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tinycam train", description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--out", type=Path, default=DEFAULT_OUT, help="folder for the weights and models.json (default: trained/)")
    add("--replace", action="store_true",
        help="overwrite weights and models.json already in --out (--out data --replace replaces the shipped models)")
    add("--epochs", type=int, default=4, help="GapNet's passes over the training images; FcNet gets half (default: 4)")
    add("--seed", type=int, default=0, help="seed of the training images and of torch (default: 0)")
    add("--n-train", type=int, default=6000, help="number of training images (default: 6000)")
    add("--n-test", type=int, default=1000, help="number of held-out images (default: 1000)")
    add("--threads", type=int, default=os.cpu_count() or 1, help="torch CPU threads (default: all cores)")
    add("--shuffle-labels", action="store_true",
        help="train GapNet alone on randomly permuted training labels (seeded by --seed) into gap_shuffled_model.pt")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"--epochs must be at least 1, got {args.epochs}")
    if args.n_train < BATCH_SIZE:
        parser.error(f"--n-train must be at least one batch ({BATCH_SIZE} images), got {args.n_train}")
    if args.n_test < 1:
        parser.error(f"--n-test must be at least 1, got {args.n_test}")
    if args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    names = tuple(VARIANTS) if args.shuffle_labels else ("gap", "fc")  # GapNet first: FcNet starts from its layers
    record_path = args.out / "models.json"
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    existing = [str(weights_path(name, args.out)) for name in names if weights_path(name, args.out).exists()]
    if not args.shuffle_labels and record_path.exists():
        existing.append(str(record_path))
    existing += [f"{record_path}'s {name!r} entry" for name in names if args.shuffle_labels and name in record]
    if existing and not args.replace:
        them = "it" if len(existing) == 1 else "them"
        parser.error(f"{', '.join(existing)} already exist{'s' if len(existing) == 1 else ''}: pass --replace to "
                     f"overwrite {them}, or choose another --out")

    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    test_seed = args.seed + TEST_SEED_OFFSET
    train = make_images(args.n_train, args.seed)
    test = make_images(args.n_test, test_seed)
    print(f"{args.n_train} training images (seed {args.seed}), {args.n_test} held-out images (seed {test_seed})")

    labels = train.labels
    if args.shuffle_labels:  # each image gets the label vector of another: the class frequencies stay the same
        labels = labels[np.random.default_rng(args.seed).permutation(len(labels))]
        print(f"training labels permuted among the images (numpy default_rng({args.seed}).permutation)")

    args.out.mkdir(parents=True, exist_ok=True)
    record = {name: entry for name, entry in record.items() if name not in names}  # the other models' entries stay
    gap = None
    for name in names:
        tic = time.perf_counter()
        torch.manual_seed(args.seed)  # the initial weights
        model = MODELS[VARIANTS.get(name, name)](batchnorm=True)
        if name != "fc":
            epochs, lr = args.epochs, 4e-3
        else:
            epochs, lr = max(1, math.ceil(args.epochs / 2)), 2e-3
            _copy_shared_layers(gap, model)
        model = train_model(model, train.images, labels, epochs, args.seed, lr, desc=f"train {name}")
        gap = model if name == "gap" else gap
        plain = fold_batchnorm(model)
        torch.save(plain.state_dict(), weights_path(name, args.out))
        scores = evaluate(plain, test.images, test.labels)
        record[name] = {
            "train_seed": args.seed,
            "n_train": args.n_train,
            "epochs": epochs,
            "test_seed": test_seed,
            "n_test": args.n_test,
            "train_seconds": round(time.perf_counter() - tic, 1),
            **{key: round(value, 4) for key, value in scores.items()},
        }
        if args.shuffle_labels:  # how much of the random labelling it fitted (on the shuffled training labels)
            fit = evaluate(plain, train.images, labels)
            record[name].update(shuffled_labels=True, permutation_seed=args.seed,
                                **{f"train_{key}": round(value, 4) for key, value in fit.items()})
            print(f"{name}: on its shuffled training labels, per-label accuracy {fit['label_accuracy']:.2%}")
        print(f"{name}: per-label accuracy {scores['label_accuracy']:.2%}, exact match {scores['exact_match']:.2%}")
    record_path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote weights and {record_path} in {time.perf_counter() - start:.1f} s")
    return 0
