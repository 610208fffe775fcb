"""Tests of the shapes world generator (`tinycam.shapes`)."""

import numpy as np
import pytest

from tinycam.shapes import CLASSES, ShapeWorld, make_images

FIELDS = ("images", "labels", "masks", "object_classes", "object_sizes")


@pytest.fixture(scope="module")
def world():
    return make_images(300, seed=7)


def test_same_seed_gives_identical_arrays():
    a, b = make_images(40, seed=3), make_images(40, seed=3)
    for field in FIELDS:
        x, y = getattr(a, field), getattr(b, field)
        assert x.dtype == y.dtype and x.shape == y.shape
        assert x.tobytes() == y.tobytes(), field


def test_different_seed_gives_different_images():
    a, b = make_images(40, seed=3), make_images(40, seed=4)
    assert not np.array_equal(a.images, b.images)
    assert not np.array_equal(a.object_classes, b.object_classes)


def test_shapes_dtypes_and_ranges(world):
    n, m, size = 300, 4, 64
    assert len(world) == n
    assert world.images.shape == (n, 3, size, size) and world.images.dtype == np.float32
    assert world.labels.shape == (n, len(CLASSES)) and world.labels.dtype == np.float32
    assert world.masks.shape == (n, m, size, size) and world.masks.dtype == np.bool_
    assert world.object_classes.shape == (n, m) and world.object_classes.dtype == np.int64
    assert world.object_sizes.shape == (n, m) and world.object_sizes.dtype == np.float32
    assert world.images.min() >= 0.0 and world.images.max() <= 1.0
    assert set(np.unique(world.labels)) <= {0.0, 1.0}
    assert set(np.unique(world.object_classes)) <= {-1, 0, 1, 2}


def test_other_image_size():
    w = make_images(5, seed=0, size=40)
    assert w.images.shape == (5, 3, 40, 40) and w.masks.shape[-2:] == (40, 40)


def test_filled_slots_have_masks_and_empty_slots_are_empty(world):
    filled = world.object_classes >= 0
    area = world.masks.sum(axis=(2, 3))
    assert np.all(area[filled] > 0)
    assert np.all(area[~filled] == 0)
    assert np.all(world.object_sizes[~filled] == 0)
    # filled slots come first
    assert np.all(np.diff(filled.astype(int), axis=1) <= 0)
    # every image has at least one object, and every object count of the default range occurs
    counts = filled.sum(axis=1)
    assert counts.min() >= 1 and counts.max() <= 4
    assert set(np.unique(counts)) == {1, 2, 3, 4}


def test_labels_agree_with_object_classes(world):
    for c in range(len(CLASSES)):
        present = (world.object_classes == c).any(axis=1)
        np.testing.assert_array_equal(world.labels[:, c], present.astype(np.float32))
    # every class occurs, and is absent somewhere
    assert np.all(world.labels.mean(axis=0) > 0.2) and np.all(world.labels.mean(axis=0) < 0.9)


def test_masks_do_not_overlap(world):
    assert world.masks.sum(axis=1).max() <= 1


def test_objects_are_painted_where_their_masks_are(world):
    # object colours are never grass-green: inside masks, green does not dominate as it does on the background
    inside = world.masks.any(axis=1)
    r, g, b = world.images[:, 0], world.images[:, 1], world.images[:, 2]
    background_green = (g > np.maximum(r, b))[~inside].mean()
    object_green = (g > np.maximum(r, b) + 0.05)[inside].mean()
    assert background_green > 0.95
    assert object_green < 0.2


def test_object_sizes_match_mask_areas(world):
    np.testing.assert_allclose(world.object_sizes, np.sqrt(world.masks.sum(axis=(2, 3))), rtol=1e-6)


def test_scale_option_is_respected():
    size, (lo, hi) = 64, (0.2, 0.3)
    w = make_images(200, seed=1, n_objects=1, scale=(lo, hi))  # one object: never occluded
    sizes = w.object_sizes[:, 0]
    assert sizes.min() >= lo * size - 1.5 and sizes.max() <= hi * size + 1.5
    assert sizes.min() < (lo + 0.02) * size and sizes.max() > (hi - 0.02) * size  # the whole range is used
    small = make_images(200, seed=1, scale=(0.1, 0.12))
    assert small.object_sizes[small.object_classes >= 0].max() <= 0.12 * size + 1.5


def test_default_objects_barely_overlap(world):
    # sizes of unoccluded objects lie in the default scale range (0.12, 0.45); occlusion only shaves a little
    sizes = world.object_sizes[world.object_classes >= 0]
    assert sizes.max() <= 0.45 * 64 + 1.5
    assert np.percentile(sizes, 1) >= 0.12 * 64 - 1.5
    # objects may touch, but rarely: count pixel edges where two different objects meet
    slot = (world.masks * np.arange(1, world.masks.shape[1] + 1)[None, :, None, None]).sum(axis=1)  # 0 = grass
    meet = 0
    for a, b in ((slot[:, :, :-1], slot[:, :, 1:]), (slot[:, :-1, :], slot[:, 1:, :])):
        meet = meet + ((a > 0) & (b > 0) & (a != b)).sum(axis=(1, 2))
    assert (meet > 0).mean() < 0.35  # share of images where two objects touch
    assert meet.mean() < 5  # shared boundary, in pixels per image


def test_classes_option_is_respected():
    w = make_images(100, seed=2, classes=(2,))
    assert set(np.unique(w.object_classes)) == {-1, 2}
    np.testing.assert_array_equal(w.labels[:, :2], 0)
    np.testing.assert_array_equal(w.labels[:, 2], 1)
    by_name = make_images(100, seed=2, classes=("triangle",))
    assert np.array_equal(by_name.images, w.images)
    two = make_images(100, seed=2, classes=(0, 1))
    assert set(np.unique(two.object_classes)) == {-1, 0, 1}


def test_n_objects_option_is_respected():
    w = make_images(100, seed=5, n_objects=3)
    assert w.object_classes.shape[1] == 3
    np.testing.assert_array_equal((w.object_classes >= 0).sum(axis=1), 3)
    w = make_images(100, seed=5, n_objects=(2, 6))
    counts = (w.object_classes >= 0).sum(axis=1)
    assert w.masks.shape[1] == 6 and counts.min() >= 2 and counts.max() <= 6


def test_spread_sizes_gives_one_small_and_one_large_object_per_image():
    size = 64
    w = make_images(100, seed=6, classes=(0,), n_objects=3, scale=(0.1, 0.4), spread_sizes=True)
    np.testing.assert_array_equal(w.object_classes, 0)
    sizes = np.sort(w.object_sizes, axis=1)
    assert np.all(sizes[:, 0] < 0.13 * size) and np.all(sizes[:, 2] > 0.3 * size)
    assert np.all(sizes[:, 2] / sizes[:, 0] > 3)


def test_colour_does_not_tell_the_class():
    w = make_images(1000, seed=11)
    means = []
    for c in range(len(CLASSES)):
        sel = (w.masks & (w.object_classes == c)[:, :, None, None]).astype(np.float32)
        rgb_sum = np.einsum("nchw,nmhw->nmc", w.images, sel)  # summed colour of each object's pixels
        per_object_rgb = rgb_sum / np.maximum(sel.sum(axis=(2, 3)), 1)[..., None]
        means.append(per_object_rgb[w.object_classes == c].mean(axis=0))
    means = np.array(means)
    assert np.abs(means - means.mean(axis=0)).max() < 0.04


def test_subset_indexing(world):
    sub = world[np.array([3, 5, 7])]
    assert isinstance(sub, ShapeWorld) and len(sub) == 3
    np.testing.assert_array_equal(sub.masks, world.masks[[3, 5, 7]])
    one = world[4]
    assert len(one) == 1 and np.array_equal(one.images[0], world.images[4])
    assert np.array_equal(world[-1].labels[0], world.labels[-1])
    assert len(world[:10]) == 10


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(n_objects=(0, 2)),
        dict(n_objects=(3, 2)),
        dict(scale=(0.0, 0.3)),
        dict(scale=(0.4, 0.3)),
        dict(classes=(3,)),
        dict(classes=("hexagon",)),
    ],
)
def test_invalid_options_raise(kwargs):
    with pytest.raises(ValueError):
        make_images(2, seed=0, **kwargs)


def test_class_masks_are_the_union_of_the_class_objects():
    world = make_images(6, seed=3)
    for c in range(3):
        union = world.class_masks(c)
        for i in range(len(world)):
            expected = world.masks[i][world.object_classes[i] == c].any(axis=0) if (world.object_classes[i] == c).any() \
                else np.zeros((64, 64), bool)
            assert np.array_equal(union[i], expected)
    per_image = world.class_masks([0, 1, 2, 0, 1, 2])
    assert np.array_equal(per_image[1], world.class_masks(1)[1])
