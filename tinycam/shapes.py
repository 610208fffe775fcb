"""A tiny offline image world: coloured circles, squares and triangles on grass.

Pure NumPy, fully vectorized and deterministic: `make_images(n, seed)` returns the same arrays, bit for bit, every
time it is called with the same arguments. Every object comes with its ground-truth mask, so explanation maps can be
scored against where the objects really are.

Colours are drawn from one distribution for all classes, so a network can only tell the classes apart by their
*shape*. Objects are placed so that they touch or overlap only a little; a later object is painted over an earlier
one, and the masks hold what is visible.
"""

from dataclasses import dataclass

import numpy as np

CLASSES = ("circle", "square", "triangle")

# Every shape of "size" s (in pixels) has the same area s * s, so sizes are comparable across classes: a circle has
# radius s / sqrt(pi), a square has side s, an equilateral triangle has circumradius s / sqrt(3 sqrt(3) / 4).
_CIRCLE_RADIUS = 1.0 / np.sqrt(np.pi)
_TRIANGLE_CIRCUMRADIUS = 1.0 / np.sqrt(3.0 * np.sqrt(3.0) / 4.0)
# distance from the centre to the farthest point, in units of the size: circle, square (half diagonal), triangle
_OUTER_RADIUS = np.array([_CIRCLE_RADIUS, np.sqrt(0.5), _TRIANGLE_CIRCUMRADIUS])
# two objects are placed at least this fraction of the sum of their outer radii apart (1.0 would forbid any overlap)
_MIN_GAP = 0.8
_CANDIDATES = 24  # random positions tried per object before giving up on it
_SQUARE_MAX_TILT = np.deg2rad(15.0)


@dataclass(frozen=True)
class ShapeWorld:
    """A batch of generated images with their labels and per-object ground truth.

    images:         float32 (N, 3, H, W), RGB in [0, 1]
    labels:         float32 (N, 3), multi-hot: 1 where at least one object of that class is visible
    masks:          bool (N, M, H, W), the visible pixels of each object slot; all False for an empty slot
    object_classes: int64 (N, M), class index of each slot, -1 for an empty slot
    object_sizes:   float32 (N, M), sqrt of the visible area in pixels, 0 for an empty slot

    M is the largest number of objects an image may hold. Filled slots come first, in painting order.
    `world[idx]` takes a subset (an int keeps the batch axis, so `world[0]` holds one image).
    """

    images: np.ndarray
    labels: np.ndarray
    masks: np.ndarray
    object_classes: np.ndarray
    object_sizes: np.ndarray

    def __len__(self):
        return len(self.images)

    def class_masks(self, classes):
        """The union of the visible masks of every object of class `classes[i]` in image i: bool (N, H, W).
        `classes` is one class index for all images or one per image."""
        classes = np.broadcast_to(np.asarray(classes), (len(self),))
        of_class = self.object_classes == classes[:, None]  # (N, M)
        return (self.masks & of_class[:, :, None, None]).any(axis=1)

    def __getitem__(self, idx):
        if isinstance(idx, (int, np.integer)):
            idx = slice(idx, idx + 1) if idx != -1 else slice(-1, None)
        return ShapeWorld(
            self.images[idx], self.labels[idx], self.masks[idx], self.object_classes[idx], self.object_sizes[idx]
        )


def make_images(n, seed, size=64, n_objects=(1, 4), scale=(0.12, 0.45), classes=None, spread_sizes=False):
    """Generate `n` images of shapes on grass; returns a `ShapeWorld`.

    The arrays depend on (n, seed, options) together: the first 32 images of n=64 are not those of n=32, so to
    reuse a split, generate it with the same n and seed (as the held-out test set: n=1000, seed=10000).

    n_objects:    (min, max) number of objects per image, both included; an int means exactly that many.
                  Above the minimum an object is left out when no free spot is found for it; up to the minimum it is
                  squeezed in anyway (and dropped only if later objects hide it entirely).
    scale:        (min, max) object size as a fraction of the image side, drawn log-uniformly.
                  The size of an object is the square root of its area (a square's side).
    Squares are tilted by at most 15 degrees, triangles (equilateral) are turned at random.
    classes:      class indices (or names) to draw objects from; None means all of `CLASSES`.
    spread_sizes: if True, the objects of one image get sizes spread evenly (in log scale) from the smallest to the
                  largest of `scale`, e.g. `classes=(0,), n_objects=3, spread_sizes=True` gives a small, a medium and
                  a large circle in every image.
    """
    lo_count, hi_count = (n_objects, n_objects) if np.isscalar(n_objects) else n_objects
    lo_count, hi_count = int(lo_count), int(hi_count)  # type: ignore[arg-type]  # numbers, checked just below
    if not 1 <= lo_count <= hi_count <= 100:
        raise ValueError(f"n_objects must satisfy 1 <= min <= max <= 100, got {n_objects}")
    lo_scale, hi_scale = float(scale[0]), float(scale[1])
    if not 0 < lo_scale <= hi_scale <= 0.6:
        raise ValueError(f"scale must satisfy 0 < min <= max <= 0.6, got {scale}")
    if classes is None:
        classes = range(len(CLASSES))
    classes = np.array([CLASSES.index(c) if isinstance(c, str) else int(c) for c in classes], dtype=np.int64)
    if classes.size == 0 or classes.min() < 0 or classes.max() >= len(CLASSES):
        raise ValueError(f"classes must be indices into {CLASSES}")

    rng = np.random.default_rng(seed)
    n, m = int(n), hi_count

    # --- what each slot holds -----------------------------------------------------------------------------------
    count = rng.integers(lo_count, hi_count + 1, size=n)
    wanted = np.arange(m)[None, :] < count[:, None]  # (n, m)
    cls = classes[rng.integers(0, classes.size, size=(n, m))]
    if spread_sizes:
        step = np.arange(m)[None, :] / np.maximum(count[:, None] - 1, 1)  # 0 .. 1 across the filled slots
        step = np.where(count[:, None] == 1, rng.random((n, 1)), step)
        log_frac = np.log(lo_scale) + step * (np.log(hi_scale) - np.log(lo_scale))
        log_frac = log_frac + rng.uniform(-0.03, 0.03, size=(n, m))
    else:
        log_frac = rng.uniform(np.log(lo_scale), np.log(hi_scale), size=(n, m))
    px = np.clip(np.exp(log_frac), lo_scale, hi_scale) * size  # size in pixels
    px = np.where(wanted, px, 0.0)
    # biggest first: big objects find room more easily, and small ones are then painted on top, never hidden
    order = np.argsort(-px, axis=1, kind="stable")
    px = np.take_along_axis(px, order, axis=1)
    cls = np.take_along_axis(cls, order, axis=1)
    outer = _OUTER_RADIUS[cls] * px

    # --- placement: try random centres, keep the first that is far enough from the objects already placed -------
    cand = rng.random((n, m, _CANDIDATES, 2))
    centre = np.zeros((n, m, 2))
    placed = np.zeros((n, m), dtype=bool)
    for j in range(m):
        margin = outer[:, j, None, None]
        xy = margin + cand[:, j] * (size - 2 * margin)  # (n, C, 2), object fully inside the image
        d = np.linalg.norm(xy[:, :, None, :] - centre[:, None, :j, :], axis=-1)  # (n, C, j)
        need = _MIN_GAP * (outer[:, None, j, None] + outer[:, None, :j])
        clearance = np.where(placed[:, None, :j], d / np.maximum(need, 1e-9), np.inf).min(axis=2, initial=np.inf)
        ok = clearance >= 1.0
        # below the minimum count we never give up: take the candidate with the most room
        best = np.where(ok.any(axis=1), ok.argmax(axis=1), clearance.argmax(axis=1))
        centre[:, j] = xy[np.arange(n), best]
        placed[:, j] = wanted[:, j] & (ok.any(axis=1) | (j < lo_count))
    # move the placed objects to the front, keeping their order
    order = np.argsort(~placed, axis=1, kind="stable")
    placed = np.take_along_axis(placed, order, axis=1)
    px = np.where(placed, np.take_along_axis(px, order, axis=1), 0.0)
    cls = np.where(placed, np.take_along_axis(cls, order, axis=1), -1)
    centre = np.take_along_axis(centre, order[..., None], axis=1)

    # --- appearance of each object ------------------------------------------------------------------------------
    tilt = rng.uniform(-_SQUARE_MAX_TILT, _SQUARE_MAX_TILT, (n, m))
    angle = np.where(cls == 1, tilt, rng.uniform(0, 2 * np.pi, (n, m)))  # squares stand upright, triangles turn freely
    hue = (0.45 + 0.75 * rng.random((n, m))) % 1.0  # any hue but grass green
    sat = rng.uniform(0.45, 1.0, (n, m))
    val = rng.uniform(0.55, 1.0, (n, m))
    colour = _hsv_to_rgb(hue, sat, val)  # (n, m, 3)
    shade_dir = rng.normal(size=(n, m, 2))
    shade_dir *= rng.uniform(0.0, 0.25, (n, m, 1)) / np.linalg.norm(shade_dir, axis=-1, keepdims=True)

    owner = np.full((n, size, size), -1, dtype=np.int8)  # which slot is visible at each pixel
    grid = (np.arange(size, dtype=np.float32) + 0.5)[None, :]
    for j in range(m):
        dx = grid[:, None, :] - centre[:, j, 0, None, None].astype(np.float32)  # (n, 1, size)
        dy = grid[:, :, None] - centre[:, j, 1, None, None].astype(np.float32)  # (n, size, 1)
        inside = _inside(dx, dy, cls[:, j], px[:, j], angle[:, j]) & placed[:, j, None, None]
        np.putmask(owner, inside, j)  # later objects cover earlier ones

    # paint the visible object pixels, with a soft linear shading across each object so it is not a flat sticker:
    # brightness 1 + g . (p - centre) / reach at pixel centre p, i.e. 1 + gx * x + gy * y + offset
    image = _grass(rng, n, size)  # (n, 3, size, size), float32
    reach = np.maximum(_OUTER_RADIUS[np.maximum(cls, 0)] * px, 1.0)
    gx, gy = shade_dir[..., 0] / reach, shade_dir[..., 1] / reach
    offset = 1.0 - gx * (centre[..., 0] - 0.5) - gy * (centre[..., 1] - 0.5)
    table = np.concatenate([colour, np.stack([gx, gy, offset], axis=-1)], axis=-1)
    table = table.astype(np.float32).reshape(n * m, 6)
    b, y, x = np.nonzero(owner >= 0)
    obj = table[b * m + owner[b, y, x]]  # (pixels, 6): r, g, b, gx, gy, offset of the object seen there
    light = obj[:, 3] * x + obj[:, 4] * y + obj[:, 5]
    image[b, :, y, x] = np.clip(obj[:, :3] * light[:, None], 0.0, 1.0)

    masks = owner[:, None] == np.arange(m, dtype=np.int8)[None, :, None, None]
    area = np.count_nonzero(masks, axis=(2, 3))
    # an object hidden entirely by later ones (possible only when a high minimum count forces crowding) is dropped
    cls = np.where(area > 0, cls, -1)
    if np.any((cls < 0) & placed):
        order = np.argsort(cls < 0, axis=1, kind="stable")
        cls, area = np.take_along_axis(cls, order, axis=1), np.take_along_axis(area, order, axis=1)
        masks = np.take_along_axis(masks, order[:, :, None, None], axis=1)
    labels = np.zeros((n, len(CLASSES)), dtype=np.float32)
    rows, slots = np.nonzero(cls >= 0)
    labels[rows, cls[rows, slots]] = 1.0
    return ShapeWorld(
        images=np.ascontiguousarray(image, dtype=np.float32),
        labels=labels,
        masks=masks,
        object_classes=cls.astype(np.int64),
        object_sizes=np.sqrt(area).astype(np.float32),
    )


def _inside(dx, dy, cls, px, angle):
    """Boolean (n, H, W): which pixels lie inside each image's object (offsets dx (n, 1, W), dy (n, H, 1))."""
    n = len(cls)
    # circle: distance to the centre below the radius
    radius = (_CIRCLE_RADIUS * px).astype(np.float32)[:, None, None]
    circle = dx * dx + dy * dy <= radius * radius
    # polygon: inside every edge's half-plane. A square has 4 edge normals, a triangle 3 (its 4th repeats the 1st).
    sides = np.where(cls == 2, 3, 4)[:, None]
    k = np.arange(4)[None, :] % sides
    normal = angle[:, None] + 2 * np.pi * k / sides  # (n, 4)
    apothem = np.where(cls == 2, _TRIANGLE_CIRCUMRADIUS * px / 2, px / 2).astype(np.float32)[:, None, None]
    cos, sin = np.cos(normal).astype(np.float32), np.sin(normal).astype(np.float32)
    polygon = np.ones((n, dy.shape[1], dx.shape[2]), dtype=bool)
    for i in range(4):
        polygon &= dx * cos[:, i, None, None] + dy * sin[:, i, None, None] <= apothem
    return np.where((cls == 0)[:, None, None], circle, polygon)


def _hsv_to_rgb(h, s, v):
    """Vectorized HSV -> RGB; inputs in [0, 1] of any shape, output has a trailing axis of 3."""
    i = np.floor(h * 6.0)
    f = h * 6.0 - i
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    i = i.astype(np.int64) % 6
    choices = np.stack(
        [np.stack(c, axis=-1) for c in ((v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q))]
    )  # (6, ..., 3)
    return np.take_along_axis(choices, i[None, ..., None].repeat(3, axis=-1), axis=0)[0]


def _smooth_noise(rng, n, size, cells):
    """Random values on a coarse (cells x cells) grid, bilinearly stretched to (n, size, size)."""
    coarse = rng.standard_normal((n, cells, cells), dtype=np.float32)
    pos = (np.arange(size) + 0.5) / size * (cells - 1)
    left = np.minimum(np.floor(pos).astype(np.int64), cells - 2)
    frac = (pos - left).astype(np.float32)
    interp = np.zeros((size, cells), dtype=np.float32)  # interpolation matrix: row i mixes two coarse cells
    interp[np.arange(size), left] = 1 - frac
    interp[np.arange(size), left + 1] = frac
    return np.einsum("ia,nab,jb->nij", interp, coarse, interp, optimize=True)


def _grass(rng, n, size):
    """Textured green backgrounds (n, 3, size, size): two greens mixed by smooth noise, with slanted blades."""
    f32 = np.float32
    hues = rng.uniform(0.22, 0.36, (n, 2))
    green = _hsv_to_rgb(hues, rng.uniform(0.45, 0.85, (n, 2)), rng.uniform(0.30, 0.60, (n, 2))).astype(f32)
    mix = 1.0 / (1.0 + np.exp(f32(-1.5) * _smooth_noise(rng, n, size, 5)))  # (n, size, size) in (0, 1)
    # blades: one random brightness per column, sheared so the blades lean, and fading along their length
    column = rng.standard_normal((n, size), dtype=f32)
    column = np.concatenate([column, column], axis=1)  # wrap around: blades leaving one side come back on the other
    slant = rng.uniform(-0.5, 0.5, (n, 1))
    y, x = np.arange(size)[None, :, None], np.arange(size)[None, None, :]
    shift = (np.floor(slant * np.arange(size)).astype(np.intp) % size)[:, :, None]  # (n, size, 1)
    blades = column[np.arange(n)[:, None, None], x + shift]  # (n, size, size)
    period, phase = rng.uniform(10, 30, (n, 1, 1)), rng.random((n, 1, 1))
    blades *= (0.5 + 0.5 * np.cos(2 * np.pi * (y / period + phase))).astype(f32)
    fine = rng.random((n, size, size), dtype=f32)
    light = 1 + f32(0.12) * blades + f32(0.1) * (fine - f32(0.5)) + f32(0.10) * _smooth_noise(rng, n, size, 4)
    image = np.empty((n, 3, size, size), dtype=f32)
    for c in range(3):
        g0, g1 = green[:, 0, c, None, None], green[:, 1, c, None, None]
        image[:, c] = (g0 + (g1 - g0) * mix) * light
    return np.clip(image, 0.0, 1.0, out=image)
