# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 02 · CAM: class activation maps, and how Grad-CAM grows out of them
#
# Notebook 01 built a Grad-CAM map from numbers written on paper. This notebook goes back one step in history, to
# the method Grad-CAM was designed to generalize: the **class activation map** (CAM) of Zhou et al. (CVPR 2016).
# CAM needs no gradients at all. It works for one family of networks only, those whose last convolutional layer
# is followed by **global average pooling** (GAP) and a single linear layer. For such a network the class score
# can be taken apart, location by location, and the parts form a heatmap.
#
# This time the network is real: a small CNN trained by `tinycam` to recognize circles, squares and triangles on
# grass. We open it up, read its class weights, rebuild its score by hand, and draw its maps. Then you derive, step by
# step with the chain rule, how CAM's classifier weights are related to the gradients Grad-CAM averages, and check
# the result with autograd. That relation is what lets Grad-CAM work on networks CAM cannot read.
#
# **What you will do**
#
# | § | topic | you will |
# |---|---|---|
# | 1 | the setting | meet the shapes world and a CNN that ends in global average pooling |
# | 2 | the score | write a class score as weighted, pooled feature maps (**Exercise 1**) |
# | 3 | class weights | read the 64 weights that link the feature maps to each class |
# | 4 | the map | weight and add the feature maps, one step at a time (**Exercise 2**) |
# | 5 | back to the image | upsample the 16×16 map and lay it over the picture |
# | 6 | CAM → Grad-CAM | derive, step by step, how CAM's weights and Grad-CAM's are related (**Exercises 3–6**, one written question), check it with autograd, and sum gradient maps on arrays (**Exercise 7**) |
# | 7 | two maps compared | see where the normalized CAM and Grad-CAM maps differ, and why (one written question) |
# | 8 | pros and cons | test the slides' claims: class-discriminative, forward-only, tied to one architecture |
#
# **Graded exercises** work as in notebooks 00 and 01: write your answer between `### BEGIN SOLUTION` and
# `### END SOLUTION`, then run the check cell below it. The check tries your function on a small example and on
# random cases and prints `✓`, or `✗` with what it expected and a hint. The cells after a check use `tinycam`'s
# tested functions, never your answer, so an unfinished exercise does not break the rest. Points: 1 + 2 + 1 + 2 + 1
# + 1 + 2 = 10.
#
# **Written questions** are markdown cells that start with a question in bold: write your answer in place of
# "_Your answer here._". They are not checked here; the grader collects them for your teacher to read.

# %% [markdown]
# ## 1. The setting: the shapes world and a GAP network
#
# `tinycam.shapes.make_images` draws coloured circles, squares and triangles on a grass texture, from a seed, so
# every run sees the same pictures. We draw 64 held-out test images with seed 10000, the seed of the held-out
# evaluation recorded in `data/models.json` (the models were trained on images drawn with seed 0).
#
# `tinycam.load_model("gap")` returns a trained CNN whose last layers are exactly the ones CAM needs:
#
# $$\text{image}\ (3 \times 64 \times 64) \;\xrightarrow{\ \text{conv blocks}\ }\; A\ (64 \times 16 \times 16)
# \;\xrightarrow{\ \text{GAP}\ }\; F\ (64) \;\xrightarrow{\ \text{linear}\ }\; Y\ (3).$$
#
# It is a multi-label classifier: an image may contain several classes, so each class score $Y^c$ goes through
# its own sigmoid, and $\sigma(Y^c)$ is the probability that class $c$ is present. Every map below is computed from
# the score $Y^c$ itself (the *logit*), not from the probability.

# %%
import json
import textwrap

import matplotlib.pyplot as plt
import numpy as np
import torch

import tinycam
from tinycam import DATA_DIR, conv, metrics, reference, torch_reference
from tinycam.course import checks, lecture
from tinycam.course.plotting import HEATMAP_CMAP, overlay, to_numpy
from tinycam.shapes import CLASSES, make_images

plt.rcParams["image.interpolation"] = "nearest"  # show the 64x64 images as they are: crisp pixels, no smoothing
torch.manual_seed(0)  # nothing below draws random numbers, but a seeded notebook stays reproducible if one is added
test = make_images(64, seed=10000)  # always 64: the images drawn depend on n as well as on the seed
images = torch.from_numpy(test.images)  # (64, 3, 64, 64), float32 RGB in [0, 1]
model = tinycam.load_model("gap")
layer = model.last_conv  # "features.10", the ReLU after the last convolution: the feature maps A

with torch.no_grad():
    logits = model(images)  # (64, 3): the class scores Y^c, before the sigmoid
probs = torch.sigmoid(logits)

acts_shape = tinycam.capture(model, images[:1], layer).acts.shape
print(f"images: {tuple(images.shape)}; classes: {', '.join(CLASSES)}")
print(f"feature maps A at {layer!r}: K = {acts_shape[1]} maps of {acts_shape[2]} x {acts_shape[3]} pixels, "
      f"so Z = {acts_shape[2] * acts_shape[3]}")
print(f"classifier: Linear({model.classifier.in_features}, {model.classifier.out_features}), "
      f"weight {tuple(model.classifier.weight.shape)}, bias {tuple(model.classifier.bias.shape)}")


# %% [markdown]
# Eight of the test images, with the classes that are really in them and the model's probability for each class:

# %%
def short_labels(i):
    """The classes present in test image i, as initials (c = circle, s = square, t = triangle)."""
    present = [name[0] for name, flag in zip(CLASSES, test.labels[i]) if flag]
    return "+".join(present)


def probabilities(i):
    return " ".join(f"{name[0]}:{p:.2f}" for name, p in zip(CLASSES, probs[i].tolist()))


fig, axes = plt.subplots(2, 4, figsize=(10, 6), layout="constrained")  # two rows of four: titles stay legible
for ax, i in zip(axes.ravel(), range(8)):
    ax.imshow(to_numpy(images[i]))
    ax.set_title(f"#{i}  true: {short_labels(i)}\n{probabilities(i)}", fontsize=10)
    ax.axis("off")
fig.suptitle("Test images, the classes in them, and the GAP model's probabilities (c = circle, s = square, "
             "t = triangle)")
plt.show()

# %% [markdown]
# The model was trained with image-level labels only ("a triangle is somewhere in this picture"). It never saw
# where an object is. Whether it nevertheless knows *where* it found the triangle is what CAM can show.

# %% [markdown]
# ## 2. The score of a GAP network
#
# Write the last conv layer's output as $K = 64$ feature maps $A^k$ of $16 \times 16$ pixels, $Z = 256$ pixels each.
# Global average pooling turns each map into one number,
#
# $$F^k = \frac{1}{Z} \sum_i \sum_j A^k_{ij},$$
#
# and the linear layer mixes the 64 numbers with one weight $w_k^c$ per map and class, plus a bias $b^c$:
#
# $$Y^c \;=\; \sum_k w_k^c\, F^k + b^c \;=\; \sum_k \underbrace{w_k^c}_{\text{class weight}}
# \;\underbrace{\frac{1}{Z}\sum_i \sum_j}_{\text{GAP}}\; \underbrace{A^k_{ij}}_{\text{feature map}} \;+\; b^c .$$
#
# The slides (003) write the same equation without $b^c$. The bias does not depend on the image, so it changes
# neither the maps nor the gradients below; the model's real score includes it.
#
# In `model`, $w^c$ is row $c$ of `model.classifier.weight` (shape $3 \times 64$) and $b^c$ is
# `model.classifier.bias[c]`. To check the equation we need $A$: `tinycam.capture` runs the model and returns the
# activations of the layer we name (and gradients, which we use in section 6). The running example is test image
# #10, a large triangle.

# %%
example = 10
triangle = CLASSES.index("triangle")
captured = tinycam.capture(model, images[example : example + 1], layer, target=triangle)

acts = captured.acts[0].double().numpy()  # A, (64, 16, 16), in float64 for the arithmetic by hand
class_weights = model.classifier.weight.detach().double().numpy()  # w, (3, 64): row c holds w^c
bias = model.classifier.bias.detach().double().numpy()  # b, (3,)
K, h, w = acts.shape
Z = h * w

pooled = reference.gap(acts)  # F^k, (64,)
print(f"image #{example}: K = {K} feature maps of {h} x {w}, Z = {Z}")
print(f"{'class':>9}  {'model Y^c':>9}  {'sum_k w_k^c F^k + b^c':>21}")
for c, name in enumerate(CLASSES):
    by_hand = class_weights[c] @ pooled + bias[c]
    print(f"{name:>9}  {captured.scores[0, c].item():9.3f}  {by_hand:21.3f}")

# %% [markdown]
# The triangle's score is large and positive (probability close to 1), the other two are negative.
#
# ### Exercise 1 (1 point): the class score of a GAP network
#
# Write `cam_class_score(acts, class_weights, bias)`, returning $Y^c = \sum_k w_k^c \frac{1}{Z}\sum_{ij} A^k_{ij} +
# b^c$.
#
# - `acts` has shape $(\dots, K, H, W)$ and `class_weights` has shape $(\dots, K)$, with the same leading batch axes
#   (if any): one weight vector per image. `bias` is one number, or one per image. The result has shape $(\dots)$.
# - Pool first (average over `axis=(-2, -1)`), then weight, sum over $k$ and add the bias.
#
# The check's first case is small: notebook 01's three $2 \times 2$ feature maps with the class weights
# $w = (11, 17, 0.4)$ and the bias $b = -1$ (the pooled values are 0.525, 1.15 and 0.75).

# %% tags=["exercise"]
def cam_class_score(acts, class_weights, bias):
    """The class score Y^c of a network ending in GAP and one linear layer, for every image.

    acts: (..., K, H, W); class_weights: (..., K); bias: a number or an array of shape (...). Returns shape (...).
    """
    ### BEGIN SOLUTION
    acts = np.asarray(acts, dtype=np.float64)
    pooled = acts.mean(axis=(-2, -1))  # F^k, shape (..., K)
    return np.sum(np.asarray(class_weights, dtype=np.float64) * pooled, axis=-1) + bias
    ### END SOLUTION


# %% tags=["check"]
checks.cam_class_score(cam_class_score)

# %% [markdown]
# The same equation holds for every image and every class, up to float32 rounding (the model computes in float32,
# the check below in float64):

# %%
everything = tinycam.capture(model, images, layer)  # all 64 images at once; A does not depend on the class
all_acts = everything.acts.double().numpy()  # (64, 64, 16, 16)
scores_by_hand = reference.gap(all_acts) @ class_weights.T + bias  # (64 images, 3 classes)
largest = np.abs(scores_by_hand - logits.double().numpy()).max()
print(f"64 images x 3 classes: model's scores ranging from {logits.min().item():.2f} to {logits.max().item():.2f}")
print(f"sum_k w_k^c GAP(A^k) + b^c reproduces every one of them to within 1e-4: {'yes' if largest < 1e-4 else 'NO'}")

# %% [markdown]
# ## 3. The class weights: one vector of 64 numbers per class
#
# All three classes read the *same* 64 feature maps. What makes a score a "circle" score rather than a "square"
# score is only its row of weights. A large positive $w_k^c$ means "feature map $k$ lighting up is evidence for
# class $c$", a negative one means evidence against it.

# %%
top_for = {c: np.argsort(class_weights[c])[::-1][:3] for c in range(len(CLASSES))}

fig, axes = plt.subplots(3, 1, figsize=(11, 6.5), sharex=True, sharey=True, layout="constrained")
for c, ax in enumerate(axes):
    positive = class_weights[c] > 0  # Okabe-Ito orange and blue, negative bars hatched: no colour vision needed
    ax.bar(np.flatnonzero(positive), class_weights[c][positive], color="#E69F00", label="for the class")
    ax.bar(np.flatnonzero(~positive), class_weights[c][~positive], color="#0072B2", hatch="//", edgecolor="white",
           label="against it")
    ax.axhline(0, color="black", linewidth=0.8)
    for k in top_for[c]:
        ax.annotate(f"k={k}", (k, class_weights[c, k]), textcoords="offset points", xytext=(0, 3), ha="center",
                    fontsize=9)
    ax.set_ylabel(f"$w_k^c$, c = {CLASSES[c]}")
axes[-1].set_xlabel("feature map k")
axes[-1].set_xticks(range(0, K, 4))
axes[0].legend(loc="upper right", fontsize=9, ncols=2)
fig.suptitle("The classifier's weights: orange = evidence for the class, hatched blue = evidence against it")
plt.show()

for c, name in enumerate(CLASSES):
    top = ", ".join(f"k={k} ({class_weights[c, k]:+.2f})" for k in top_for[c])
    print(f"{name:>8}: {int((class_weights[c] > 0).sum())} positive weights of {K}; largest: {top}")
correlation = np.corrcoef(class_weights)
print("correlation between the weight rows: "
      + ", ".join(f"{CLASSES[a]}/{CLASSES[b]} {correlation[a, b]:+.2f}" for a, b in [(0, 1), (0, 2), (1, 2)]))
print(f"maps with a positive weight for exactly one class: {int(((class_weights > 0).sum(axis=0) == 1).sum())}; "
      f"for none of the three: {int((class_weights < 0).all(axis=0).sum())}")

# %% [markdown]
# Each class relies on a minority of the maps (22 to 27 positive weights out of 64), and the three rows are
# negatively correlated: a map that argues for one shape tends to argue against the others. Most maps count for one
# class only, and a dozen count against all three; we will meet some of those in the next section. One set of
# feature maps read with three different weightings is what makes the maps *class-discriminative* (section 8).

# %% [markdown]
# ## 4. The map: $M_c = \sum_k w_k^c A^k$
#
# Here is the idea of Zhou et al. In the score, exchange the order of the two sums, over maps $k$ and over pixels
# $(i, j)$:
#
# $$Y^c \;=\; \sum_k w_k^c\, \frac{1}{Z}\sum_{i,j} A^k_{ij} + b^c
# \;=\; \frac{1}{Z}\sum_{i,j} \underbrace{\sum_k w_k^c A^k_{ij}}_{M_c(i,j)} + b^c .$$
#
# The inner sum is a map of its own, the **class activation map**
#
# $$M_c(i, j) \;=\; \sum_k w_k^c A^k_{ij} ,$$
#
# and the score is its average plus the bias: $Y^c = \operatorname{mean}_{ij} M_c(i,j) + b^c$. So $M_c(i, j) / Z$
# is exactly how much location $(i, j)$ adds to the score of class $c$. Nothing is approximated: for a GAP network,
# CAM splits the score over the locations of the feature map. Zhou et al. define $M_c$ without a ReLU, so locations
# that lower the score keep their negative values.
#
# First, the ingredients: some of the 64 feature maps of image #10. Below are the six maps that add the most to the
# triangle score ($w_k^c F^k$ largest) and the six that subtract the most.

# %%
contributions = class_weights[triangle] * pooled  # w_k^c F^k: what each map adds to Y^c
order = np.argsort(contributions)[::-1]
shown = [*order[:6], *order[-6:]]
print(f"Y^c for the triangle = sum_k w_k^c F^k + b^c = {contributions.sum():.3f} + ({bias[triangle]:.3f}) "
      f"= {contributions.sum() + bias[triangle]:.3f}")
print("weights (circle, square, triangle) of the top two maps:   "
      + ";  ".join(f"k={k}: " + ", ".join(f"{v:+.2f}" for v in class_weights[:, k]) for k in order[:2]))
print("weights (circle, square, triangle) of the bottom two maps: "
      + ";  ".join(f"k={k}: " + ", ".join(f"{v:+.2f}" for v in class_weights[:, k]) for k in order[-2:]))

fig, axes = plt.subplots(2, 7, figsize=(12, 4.8), layout="constrained",
                         gridspec_kw={"width_ratios": [1.25, 1, 1, 1, 1, 1, 1]})
axes[0, 0].imshow(to_numpy(images[example]))
axes[0, 0].set_title(f"image #{example}", fontsize=9)
axes[1, 0].axis("off")
vmax = acts[shown].max()
for ax, k in zip(axes[:, 1:].ravel(), shown):
    picture = ax.imshow(acts[k], cmap="viridis", vmin=0, vmax=vmax)
    ax.set_title(f"$A^{{{k}}}$: w={class_weights[triangle, k]:+.2f}\nF={pooled[k]:.2f}, wF={contributions[k]:+.2f}",
                 fontsize=9)
for ax in axes.ravel():
    ax.set_xticks([])
    ax.set_yticks([])
fig.colorbar(picture, ax=axes[:, 1:], shrink=0.8, label="activation")
fig.suptitle("Feature maps of image #10 (16×16): top row adds most to the triangle score,\nbottom row subtracts most")
plt.show()

# %% [markdown]
# The top six maps are near copies of one another: detectors of a slanted edge, bright along the triangle's left
# side and faintly at its upper-right corner. Their weights are positive for "triangle" and negative for the other
# two classes. Squares are tilted by at most 15° in this world, so a steep diagonal edge is good evidence for a
# triangle. The bottom six are grass detectors, active everywhere *except* on the triangle. Their weights are
# negative for all three classes: grass is evidence against every object, a little at each of many locations.
#
# Now the weighted sum, step by step. Top row: the five largest terms $w_k^c A^k$. Bottom row: the sum of all terms
# with a positive weight, the sum of all terms with a negative weight, and their total $M_c$, each on its own colour
# scale. The title of each panel gives its mean, so you can watch the score being assembled: the two means and the
# bias add up to $Y^c$.

# %%
terms = class_weights[triangle][:, None, None] * acts  # term k is w_k^c A^k, (64, 16, 16)
positive_part = terms[class_weights[triangle] > 0].sum(axis=0)
negative_part = terms[class_weights[triangle] <= 0].sum(axis=0)
cam_example = reference.cam(acts, class_weights[triangle])  # M_c, (16, 16)
print(f"largest cell of the positive part: {positive_part.max():.1f}; "
      f"most negative cell of the negative part: {negative_part.min():.2f}")
print(f"cells of M_c below zero: {int((cam_example < 0).sum())} of {Z}, none below {cam_example.min():.2f}")

fig = plt.figure(figsize=(12, 6.4), layout="constrained")
top, bottom = fig.subfigures(2, 1)  # two rows laid out independently: the bottom row has one colour bar per panel
axes = np.array([top.subplots(1, 5), bottom.subplots(1, 5)])
limit = np.abs(terms[order[:5]]).max()
for ax, k in zip(axes[0], order[:5]):
    picture = ax.imshow(terms[k], cmap="RdBu_r", vmin=-limit, vmax=limit)
    ax.set_title(f"{class_weights[triangle, k]:+.2f} × $A^{{{k}}}$\nmean {terms[k].mean():+.3f}", fontsize=9)
top.colorbar(picture, ax=axes[0], shrink=0.8)
panels = [(positive_part, "sum of the terms with $w_k^c > 0$"), (negative_part, "sum of the terms with $w_k^c < 0$"),
          (cam_example, "$M_c$ = both together")]
for ax, (values, title) in zip(axes[1], panels):
    limit = np.abs(values).max()  # each panel on its own symmetric scale: the negative part is much weaker
    picture = ax.imshow(values, cmap="RdBu_r", vmin=-limit, vmax=limit)
    ax.set_title(f"{title}\nmean {values.mean():+.3f}", fontsize=9)
    bottom.colorbar(picture, ax=ax, shrink=0.8)
axes[1, 3].imshow(to_numpy(images[example]))
axes[1, 3].set_title(f"image #{example}", fontsize=9)
axes[1, 4].axis("off")
axes[1, 4].text(0, 0.5, f"mean($M_c$) + $b^c$\n= {cam_example.mean():.3f} + ({bias[triangle]:.3f})\n"
                f"= {cam_example.mean() + bias[triangle]:.3f} = $Y^c$", fontsize=11, va="center")
for ax in axes.ravel():
    ax.set_xticks([])
    ax.set_yticks([])
fig.suptitle("CAM for 'triangle' on image #10: the weighted feature maps add up to $M_c$")
plt.show()

# %% [markdown]
# The positive terms build the map's shape: the triangle's left edge, strongest near its two ends, and a weaker
# spot at the upper-right corner. The negative terms are about twenty times weaker per cell (no cell below −4.1,
# against 78.6 at the top of the positive part) but cover the whole grass, so their mean still takes 1.8 off the
# score. In $M_c$ they leave a faint negative floor on the background: more than half of the cells are (slightly)
# below zero, which will matter in section 7. Averaged, $M_c$ gives back the score.
#
# ### Exercise 2 (2 points): the class activation map
#
# Write `cam_map(acts, class_weights)`, returning $M_c = \sum_k w_k^c A^k$, **without** a ReLU.
#
# - `acts` has shape $(\dots, K, H, W)$ and `class_weights` has shape $(\dots, K)$ with the same leading axes. The
#   result has shape $(\dots, H, W)$.
# - It is notebook 01's weighted combination with the classifier's weights. The check's first case is again
#   notebook 01's three $2 \times 2$ maps with $w = (11, 17, 0.4)$.

# %% tags=["exercise"]
def cam_map(acts, class_weights):
    """The class activation map M_c of Zhou et al. (CVPR 2016), for every image.

    acts: (..., K, H, W); class_weights: (..., K). Returns an array of shape (..., H, W).
    """
    ### BEGIN SOLUTION
    acts = np.asarray(acts, dtype=np.float64)
    class_weights = np.asarray(class_weights, dtype=np.float64)
    return (class_weights[..., :, None, None] * acts).sum(axis=-3)
    ### END SOLUTION


# %% tags=["check"]
checks.cam_map(cam_map)

# %% [markdown]
# On the small example the CAM is 4 times notebook 01's $L$, and the negative pixel stays negative. The factor 4 is
# $Z$ for a $2 \times 2$ map, and it comes from how the weights were chosen: $(11, 17, 0.4)$ are the *sums* of that
# example's gradient maps, while Grad-CAM's weights $(2.75, 4.25, 0.1)$ were their *means*. In section 6 you derive
# what summing the gradients of a GAP network gives.
#
# Two things are true at once, though. The handwritten example is **not** a GAP network: its gradient maps vary
# from pixel to pixel ($[[2, 3], [4, 2]]$ for $A^1$), which a GAP + linear head cannot produce (step 3 of section 6
# asks you why). So $(11, 17, 0.4)$ are not the classifier weights of any network that could have produced that
# page; they are a choice that makes CAM's sum and Grad-CAM's mean comparable on
# numbers you already know.

# %%
small = lecture.worked_example()
small_cam = reference.cam(small["acts"], np.array([11.0, 17.0, 0.4]))
print("M_c for notebook 01's maps with w = (11, 17, 0.4):")
print(lecture.format_matrix(small_cam))
print(f"equal to 4 x notebook 01's L: {np.allclose(small_cam, 4 * small['L'])}")
print("sums of the example's gradient maps: " + ", ".join(f"{v:.1f}" for v in small["grads"].sum(axis=(-2, -1))))
spread_small = small["grads"].max(axis=(-2, -1)) - small["grads"].min(axis=(-2, -1))
print("spread (max - min) of each of its gradient maps: " + ", ".join(f"{v:.1f}" for v in spread_small)
      + "  (a GAP head would give 0 for every map)")

# %% [markdown]
# And on the real model, the torch twin `tinycam.torch_reference.cam` (float32, batched) gives the same map as the NumPy
# reference:

# %%
cam_torch = torch_reference.cam(captured.acts, model.classifier.weight.detach()[[triangle]])[0]  # float32 (16, 16)
difference = np.abs(cam_torch.double().numpy() - cam_example).max()
print(f"M_c of image #{example}: values from {cam_example.min():.2f} to {cam_example.max():.2f}; "
      f"{int((cam_example < 0).sum())} of {Z} cells negative")
print(f"tinycam.torch_reference.cam (float32) agrees with reference.cam (float64) to within 1e-4: "
      f"{'yes' if difference < 1e-4 else 'NO'}")

# %% [markdown]
# ## 5. Back to the image: upsampling and overlay
#
# $M_c$ has 16×16 cells, the image 64×64 pixels. Cell $(i, j)$ sits over a 4×4 block of pixels, but it was
# computed from a much wider window: with notebook 00's receptive-field formula, the layers of this model (3×3 conv,
# 2×2 pool, 3×3 conv, 2×2 pool, 3×3 conv, 3×3 conv) give each cell a view of 26×26 pixels.

# %%
kernels, strides = [3, 2, 3, 2, 3, 3], [1, 2, 1, 2, 1, 1]
print(f"receptive fields after each layer: {conv.receptive_field(kernels, strides)} pixels; "
      f"distance between two cells: {int(np.prod(strides))} pixels")

# %% [markdown]
# To lay the map over the image it is enlarged 4 times. The crude way repeats each cell as a 4×4 block ("nearest
# neighbour"). The usual way is **bilinear interpolation**: each cell's value sits at the centre of its block, and
# pixels in between get a weighted mean of the four nearest centres (torch's `F.interpolate(...,
# mode="bilinear", align_corners=False)`, which `torch_reference.upsample` and `reference.upsample` implement). Zhou et al. and
# the CNN slides (004) both end this way: upsample to the input size, then overlay. For display the map is also
# rescaled to $[0, 1]$ (`normalize`: subtract the minimum, divide by the range).

# %%
cam_tensor = torch.from_numpy(cam_example)
nearest = torch.nn.functional.interpolate(cam_tensor[None, None], size=(64, 64), mode="nearest")[0, 0]
bilinear = torch_reference.upsample(cam_tensor, (64, 64))
heatmap = torch_reference.normalize(bilinear)

fig, axes = plt.subplots(2, 3, figsize=(10, 6.6), layout="constrained")  # two rows: legible at notebook width
limit = np.abs(cam_example).max()
for ax, values, title in [(axes[0, 0], cam_tensor, "$M_c$, 16×16"), (axes[0, 1], nearest, "nearest, 64×64"),
                          (axes[0, 2], bilinear, "bilinear, 64×64")]:
    picture = ax.imshow(to_numpy(values), cmap="RdBu_r", vmin=-limit, vmax=limit)
    ax.set_title(title)
fig.colorbar(picture, ax=axes[0], shrink=0.8, label="$M_c$ (signed)")
picture = axes[1, 0].imshow(to_numpy(heatmap), cmap=HEATMAP_CMAP, vmin=0, vmax=1)
axes[1, 0].set_title("bilinear, normalized to [0, 1]")
axes[1, 1].imshow(to_numpy(overlay(images[example], heatmap)))
axes[1, 1].set_title("overlay on image #10")
axes[1, 2].imshow(to_numpy(images[example]))
axes[1, 2].set_title("image #10")
fig.colorbar(picture, ax=axes[1], shrink=0.8, label="normalized map")
for ax in axes.ravel():
    ax.set_xticks([])
    ax.set_yticks([])
fig.suptitle("From the 16×16 class activation map to a heatmap over the image")
plt.show()

# %% [markdown]
# Bilinear interpolation only averages neighbouring cells, so it never leaves the map's range; normalizing maps
# the most negative cell to 0 and the largest to 1. `tinycam.explain(model, images, layer, "cam", target)` does all
# of this in one call: it reads the classifier's weights, builds $M_c$, upsamples and normalizes each image's map.

# %%
in_range = cam_example.min() - 1e-9 <= bilinear.min().item() and bilinear.max().item() <= cam_example.max() + 1e-9
print(f"bilinear values stay within [min M_c, max M_c] = [{cam_example.min():.2f}, {cam_example.max():.2f}]: "
      f"{'yes' if in_range else 'NO'}")
explained = tinycam.explain(model, images[example : example + 1], layer, "cam", target=triangle)[0]
difference = (explained.double() - heatmap).abs().max().item()
print(f"tinycam.explain(..., 'cam') gives the same heatmap (to within 1e-6): {'yes' if difference < 1e-6 else 'NO'}")

# %% [markdown]
# ## 6. From CAM to Grad-CAM: what are the gradients of a GAP network?
#
# Grad-CAM (Selvaraju et al., ICCV 2017) never reads the classifier's weights. It asks autograd for the gradient
# maps $\partial Y^c / \partial A^k$ and averages each one, as in notebook 01:
#
# $$\alpha_k^c \;=\; \frac{1}{Z}\sum_{i,j} \frac{\partial Y^c}{\partial A^k_{ij}} .$$
#
# For a GAP network these gradients can be worked out by hand and compared with the weights $w_k^c$ that CAM reads.
# That is the lecture's homework, and you do it here, in five steps: four exercises and one written question.
#
# **What the derivation assumes.** It is a recipe for one family of networks, not a theorem about all of them:
#
# - the score is *one linear layer on the global average pool* of the layer we explain, with nothing in between
#   (GAP + one linear layer, as in our `GapNet` and in ResNet); what comes before the layer does not matter;
# - global average pooling *averages*: $F^k = \frac{1}{Z}\sum_{i,j} A^k_{ij}$, with the factor $1/Z$ (Zhou et al.'s
#   GAP). A head that pools with a plain sum moves the factors $Z$ between the steps below; the maps then differ by a
#   constant factor, which normalization hides;
# - Grad-CAM's ReLU, applied after the weighted sum, is not part of it: the derivation is about the weights.
#
# For any other network the steps do not apply, and Grad-CAM simply *defines* the weight as the mean gradient.
#
# **How the exercises work.** Each step is a small Python function of the step's symbols:
#
# - `maps`: the $K$ feature maps, each given as the list of its $Z$ activations (pixel $(i, j)$ flattened to one index
#   `p`: global average pooling does not care where a pixel is), so `maps[k][p]` is $A^k_{ij}$;
# - `weights`: the $K$ class weights, `weights[k]` is $w_k^c$; `bias` is $b^c$;
# - `k` and `pixel`: the activation $A^k_{ij}$ a step is about, `maps[k][pixel]`.
#
# Use only arithmetic (`+`, `-`, `*`, `/`) and Python's `sum(...)` and `len(...)` of what you are given: no NumPy
# functions, and no numbers written in (count $K$ and $Z$ from the arguments). The check calls your function twice:
# with **SymPy symbols** ($w_0, w_1, \dots$, $A^0_0, A^0_1, \dots$, $b$), proving your expression equal to the step
# (`sympy.simplify(yours - right) == 0`), and with **numbers** (random maps, and the trained GAP model's own maps),
# compared with what autograd computes. A wrong step gets a hint about the idea it missed; the ✗ line shows your own
# expression, simplified, never the right one.
#
# ### Step 1 (Exercise 3, 1 point): the score, with the activations in it
#
# Write the class score $Y^c$ of a GAP + linear head from `maps`, `weights` and `bias`. Section 2 has the equation;
# what is new is that the pooled values must be computed from the activations themselves, so that the next step can
# differentiate with respect to one of them.

# %% tags=["exercise"]
def gap_score(maps, weights, bias):
    """The class score Y^c of a network ending in GAP and one linear layer.

    maps: K lists of Z activations each (maps[k][p] is map k at pixel p); weights: K class weights; bias: one number.
    Returns one number (one SymPy expression when the arguments are symbols).
    """
    ### BEGIN SOLUTION
    return sum(weights[k] * sum(maps[k]) / len(maps[k]) for k in range(len(maps))) + bias
    ### END SOLUTION


# %% tags=["check"]
checks.gap_score(gap_score)

# %% [markdown]
# ### Step 2 (Exercise 4, 2 points): the chain rule
#
# Differentiate: write $\partial Y^c / \partial A^k_{ij}$, the derivative of the score with respect to the one
# activation `maps[k][pixel]`, as a function of the same symbols. Questions to ask yourself on the way:
#
# - Through which of the pooled values $F^1, \dots, F^K$ does $A^k_{ij}$ reach the score? Which terms of $Y^c$ do
#   not contain it at all, and what is their derivative?
# - By how much does $F^k$, an average of $Z$ numbers, move when one of them grows by 1?
# - By how much does $Y^c$ move when $F^k$ grows by 1?
# - Does your result still contain the activation itself, or the bias?

# %% tags=["exercise"]
def gap_score_gradient(maps, weights, bias, k, pixel):
    """The derivative of the class score with respect to one activation, maps[k][pixel].

    maps: K lists of Z activations each; weights: K class weights; bias: one number; k: which map; pixel: which of
    its Z pixels. Returns one number (one SymPy expression when the arguments are symbols).
    """
    ### BEGIN SOLUTION
    return weights[k] / len(maps[k])  # ∂Y^c/∂F^k = w_k^c, times ∂F^k/∂A^k_ij = 1/Z
    ### END SOLUTION


# %% tags=["check"]
checks.gap_score_gradient(gap_score_gradient)

# %% [markdown]
# **Steps 1 and 2 on paper** (your working, in words and formulas; not graded):
#
# ### BEGIN SOLUTION
# Write the pooling with its own pixel indices $p, q$, so that $i, j$ stay free for the activation we differentiate
# with respect to, and $k'$ for the maps:
#
# $$Y^c = \sum_{k'} w_{k'}^c F^{k'} + b^c, \qquad F^{k'} = \frac{1}{Z}\sum_{p,q} A^{k'}_{pq}.$$
#
# The activation $A^k_{ij}$ reaches the score through one path only, the pooled value $F^k$ of its own map: the
# other maps' $F^{k'}$ do not contain it, and the bias is a constant, so their derivatives are 0. By the chain rule,
#
# $$\frac{\partial Y^c}{\partial A^k_{ij}} \;=\; \frac{\partial Y^c}{\partial F^k}\cdot
# \frac{\partial F^k}{\partial A^k_{ij}} \;=\; w_k^c \cdot \frac{1}{Z}.$$
#
# The score is linear in every activation, so the activation itself drops out.
# ### END SOLUTION

# %% [markdown] tags=["answer"]
# **Step 3: which of the step's symbols does your gradient of step 2 leave out, what does that say about the gradient maps of a GAP network, and could notebook 01's gradient maps have come from one?**
#
# ### BEGIN SOLUTION
# The gradient $w_k^c / Z$ contains neither the pixel $(i, j)$ nor any activation (nor the bias). So every pixel of
# gradient map $k$ holds the same number, $w_k^c / Z$, for every image: a GAP + linear head has flat gradient maps,
# one constant per map, fixed by the classifier alone. Notebook 01's gradient maps vary from pixel to pixel
# ($[[2, 3], [4, 2]]$ for $A^1$), so no GAP + linear head can have produced them; their sums $(11, 17, 0.4)$ were
# chosen to make CAM's sum and Grad-CAM's mean comparable on numbers we know, not read off a real GAP network.
# ### END SOLUTION

# %% [markdown]
# ### Step 4 (Exercise 5, 1 point): sum the gradient map
#
# Write $\sum_{i,j} \partial Y^c / \partial A^k_{ij}$, gradient map $k$ added up over its $Z$ pixels, as a function of
# the symbols. Use what step 3 says about how the terms depend on the pixel, then compare the result with the weight
# that CAM reads for map $k$.

# %% tags=["exercise"]
def gap_gradient_sum(maps, weights, bias, k):
    """The gradient map of map k (the derivatives of the class score with respect to its Z activations), added up.

    maps: K lists of Z activations each; weights: K class weights; bias: one number; k: which map.
    Returns one number (one SymPy expression when the arguments are symbols).
    """
    ### BEGIN SOLUTION
    return len(maps[k]) * (weights[k] / len(maps[k]))  # Z equal terms w_k^c / Z
    ### END SOLUTION


# %% tags=["check"]
checks.gap_gradient_sum(gap_gradient_sum)

# %% [markdown]
# **Step 4 on paper** (your working; not graded):
#
# ### BEGIN SOLUTION
# Adding $Z$ equal numbers $w_k^c / Z$ gives
#
# $$\sum_{i,j} \frac{\partial Y^c}{\partial A^k_{ij}} \;=\; Z \cdot \frac{w_k^c}{Z} \;=\; w_k^c .$$
#
# The class weight that CAM reads is the sum of the gradient map.
#
# <details><summary><b>About the slide's version of this derivation (003)</b></summary>
#
# The slide writes $\partial Y^c/\partial F^k$ as the ratio $(\partial Y^c/\partial A^k_{ij}) / (\partial F^k /
# \partial A^k_{ij})$, then sums "both sides" over $i, j$ to get $Z w_k^c = Z \sum_{ij} \partial Y^c / \partial
# A^k_{ij}$. The end result is right, but partial derivatives are not fractions in general. The division is valid
# here only because $A^k_{ij}$ reaches $Y^c$ through the single variable $F^k$ and $\partial F^k/\partial A^k_{ij}
# = 1/Z$ is not zero, which is step 2 rearranged. Summing a constant over $Z$ pixels is what produces the extra
# $Z$ on both sides. The chain rule of step 2 needs neither. The slide also writes $w^k_c$ for the weight that
# the rest of the deck calls $w_k^c$; it is the same number.
# </details>
# ### END SOLUTION

# %% [markdown]
# ### Step 5 (Exercise 6, 1 point): Grad-CAM's weight
#
# Grad-CAM *averages* the gradient map instead of adding it up. Write its weight $\alpha_k^c$ (the equation at the top
# of this section) for a GAP network, as a function of the symbols. Then think about the map: how is Grad-CAM's
# weighted sum $\sum_k \alpha_k^c A^k$ related to CAM's $M_c = \sum_k w_k^c A^k$, and what does Grad-CAM's ReLU add?

# %% tags=["exercise"]
def gap_gradcam_weight(maps, weights, bias, k):
    """Grad-CAM's weight α_k^c of map k for a network ending in GAP and one linear layer.

    maps: K lists of Z activations each; weights: K class weights; bias: one number; k: which map.
    Returns one number (one SymPy expression when the arguments are symbols).
    """
    ### BEGIN SOLUTION
    return weights[k] / len(maps[k])  # the mean of Z equal terms w_k^c / Z
    ### END SOLUTION


# %% tags=["check"]
checks.gap_gradcam_weight(gap_gradcam_weight)

# %% [markdown]
# **Step 5 on paper** (your working, the map included; not graded):
#
# ### BEGIN SOLUTION
# $$\alpha_k^c \;=\; \frac{1}{Z}\sum_{i,j} \frac{\partial Y^c}{\partial A^k_{ij}} \;=\; \frac{w_k^c}{Z},
# \qquad\text{so}\qquad \sum_k \alpha_k^c A^k = \frac{1}{Z}\, M_c
# \quad\text{and}\quad L^c_{\text{Grad-CAM}} = \mathrm{ReLU}\Big(\frac{M_c}{Z}\Big) = \frac{\mathrm{ReLU}(M_c)}{Z}.$$
#
# For a GAP network, Grad-CAM is CAM with a ReLU, divided by the positive constant $Z$, which no normalized picture
# can show.
# ### END SOLUTION

# %% [markdown]
# **Why it matters.** Step 4's left side, "add up (or average) the gradient map", is defined for *any* network
# whose score is differentiable with respect to $A$, with or without GAP. Grad-CAM takes it as the definition of
# the channel weight. For GAP networks your steps 4 and 5 relate it to CAM's weight; for other networks it still
# works, and nothing has to be retrained. This is the sense in which Grad-CAM generalizes CAM, and the reason it
# is a recipe rather than a theorem: outside the GAP family, the derivation above says nothing about what the
# averaged gradients mean.

# %% [markdown]
# ### Checking the derivation with autograd
#
# `tinycam.capture` returned the gradient maps along with the activations: autograd's $\partial Y^c / \partial A$,
# for the predicted class $c$ of each image. Steps 3 and 4 make two predictions about them, one about the shape of
# each gradient map and one about its sum. Here is what autograd says:

# %%
targets = everything.targets  # the predicted class of each of the 64 images
grads = everything.grads.double()  # dY^c/dA, (64, 64, 16, 16)
weights_of_targets = model.classifier.weight.detach().double()[targets]  # w^c for each image's class, (64, 64)

spread = (grads.amax(dim=(-2, -1)) - grads.amin(dim=(-2, -1))).max().item()
summed = grads.sum(dim=(-2, -1))  # Σ_ij dY^c/dA^k_ij, (64, 64)
print(f"gradient maps: {grads.shape[0]} images x {grads.shape[1]} maps of {grads.shape[2]} x {grads.shape[3]}")
print(f"largest spread (max - min) of one gradient map over its pixels:  {spread:.1e}")
print(f"max |sum_ij dY^c/dA^k_ij - w_k^c| over all images and maps:      "
      f"{(summed - weights_of_targets).abs().max().item():.1e}")
print(f"one example: image #{example}, map k={order[0]}: every pixel holds {grads[example, order[0], 0, 0].item():.6f}"
      f" = w/Z = {class_weights[triangle, order[0]]:.4f}/{Z}")

# %% [markdown]
# Both differences are exactly zero, not merely small. The backward pass of the average divides by $Z = 256 =
# 2^8$, which is exact in binary floating point, and the sum of 256 equal float32 numbers is exact in float64.
#
# ### Exercise 7 (2 points): CAM weights from gradients, on arrays
#
# Step 4 on arrays, as autograd returns them: write `cam_weights_from_grads(grads)`, returning the sum of each gradient
# map over its pixels, $\sum_{i,j} \partial Y^c / \partial A^k_{ij}$ for every map: shape $(\dots, K, H, W) \to
# (\dots, K)$, leading batch axes included. NumPy is welcome here.
#
# The check tries it on notebook 01's gradient maps (the answer is $Z = 4$ times that notebook's
# $\alpha = 2.75, 4.25, 0.1$), on random gradients, and on the gradients of a GAP + linear head like this model's.

# %% tags=["exercise"]
def cam_weights_from_grads(grads):
    """Each gradient map added up over its pixels.

    grads: array of shape (..., K, H, W), the gradient maps. Returns an array of shape (..., K), one number per map.
    """
    ### BEGIN SOLUTION
    return np.asarray(grads, dtype=np.float64).sum(axis=(-2, -1))
    ### END SOLUTION


# %% tags=["check"]
checks.cam_weights_from_grads(cam_weights_from_grads)

# %% [markdown]
# Step 5 on the real model: Grad-CAM's $\alpha$ times $Z$ gives back the classifier's weights, and the map before
# the ReLU is CAM's map divided by $Z$ (computed here with `reference`, the functions the checks compare against).

# %%
grads_np, weights_np = grads.numpy(), weights_of_targets.numpy()
alphas = reference.gradcam_weights(grads_np)  # α_k^c = mean of each gradient map, (64, 64)
cam_all = reference.cam(all_acts, weights_np)  # M_c for every image, (64, 16, 16)
gradcam_before_relu = reference.weighted_combination(alphas, all_acts)  # Σ_k α_k^c A^k
print(f"max |Z * alpha - w|:                         {np.abs(Z * alphas - weights_np).max():.1e}")
print(f"max |reference.cam_weights_from_gradients - w|: "
      f"{np.abs(reference.cam_weights_from_gradients(grads_np) - weights_np).max():.1e}")
print(f"max |M_c - Z * sum_k alpha_k^c A^k|:          {np.abs(cam_all - Z * gradcam_before_relu).max():.1e}")

# %% [markdown]
# ## 7. CAM and Grad-CAM, side by side
#
# Step 5 related the two weighted sums before any ReLU. Are the two heatmaps the same? `tinycam.explain` produces
#
# $$\text{CAM: } \operatorname{normalize}\big(\operatorname{upsample}(M_c)\big), \qquad
# \text{Grad-CAM: } \operatorname{normalize}\big(\operatorname{upsample}(\mathrm{ReLU}(\textstyle\sum_k \alpha_k^c A^k))
# \big).$$
#
# Normalizing removes the constant factor between the two sums. The ReLU is the only real difference. Where $M_c \ge 0$ everywhere, the two
# heatmaps are identical. Where $M_c$ has negative cells, CAM's normalization sends its *minimum* to 0, so a cell
# with $M_c = 0$ lands at the level $m_0 = -\min M_c / (\max M_c - \min M_c) > 0$, while Grad-CAM sends it to 0.
# The positive part of CAM's map is Grad-CAM's map squeezed into $[m_0, 1]$. How often does this happen with our
# model?

# %%
cam_heatmaps = tinycam.explain(model, images, layer, "cam", target=targets)
gradcam_heatmaps = tinycam.explain(model, images, layer, "gradcam", target=targets)
heatmap_difference = (cam_heatmaps - gradcam_heatmaps).abs().amax(dim=(-2, -1))  # per image

negative_cells = (cam_all < 0).mean(axis=(-2, -1))  # share of the 256 cells below zero, per image
zero_level = -cam_all.min(axis=(-2, -1)) / (cam_all.max(axis=(-2, -1)) - cam_all.min(axis=(-2, -1)))
print(f"images whose M_c has negative cells: {int((negative_cells > 0).sum())} of {len(images)}; "
      f"median share of negative cells {np.median(negative_cells):.0%}")
print(f"zero level m0 of CAM's normalized map: median {np.median(zero_level):.3f}, "
      f"from {zero_level.min():.3f} to {zero_level.max():.3f}")
print(f"max |CAM heatmap - Grad-CAM heatmap| per image: median {heatmap_difference.median().item():.3f}, "
      f"largest {heatmap_difference.max().item():.3f}")

# the ReLU explains the whole difference: CAM with a ReLU is Grad-CAM
cam_relu = torch_reference.normalize(torch_reference.upsample(torch.relu(torch.from_numpy(cam_all)), (64, 64)))
print(f"normalize(upsample(ReLU(M_c))) equals the Grad-CAM heatmaps to within 1e-6: "
      f"{'yes' if (cam_relu - gradcam_heatmaps.double()).abs().max().item() < 1e-6 else 'NO'}")
# on the 16x16 maps, where M_c >= 0, CAM's normalized map is m0 + (1 - m0) * Grad-CAM's normalized map
squeezed = zero_level[:, None, None] + (1 - zero_level[:, None, None]) * reference.normalize(np.maximum(cam_all, 0))
where_positive = cam_all >= 0
print(f"where M_c >= 0: normalize(M_c) = m0 + (1 - m0) * normalize(ReLU(M_c)) to within 1e-12: "
      f"{'yes' if np.abs(reference.normalize(cam_all) - squeezed)[where_positive].max() < 1e-12 else 'NO'}")

# %% [markdown]
# Every one of our 64 maps has negative cells (more than half of the 256, typically), so the two heatmaps are
# never quite identical. The difference is the raised floor $m_0$: under a tenth of the colour scale for most
# images (median 0.077), a third of it for the worst. The pictures show our running example, with a small floor,
# and the image with the highest one:

# %%
picked = [example, int(np.argmax(zero_level))]
fig, axes = plt.subplots(len(picked), 4, figsize=(11, 5.6), layout="constrained")
for row, i in zip(axes, picked):
    row[0].imshow(to_numpy(images[i]))
    row[0].set_title(f"image #{i}, class {CLASSES[int(targets[i])]}", fontsize=9)
    row[1].imshow(to_numpy(cam_heatmaps[i]), cmap=HEATMAP_CMAP, vmin=0, vmax=1)
    row[1].set_title(f"CAM (floor $m_0$ = {zero_level[i]:.2f})", fontsize=9)
    picture = row[2].imshow(to_numpy(gradcam_heatmaps[i]), cmap=HEATMAP_CMAP, vmin=0, vmax=1)
    row[2].set_title("Grad-CAM", fontsize=9)
    fig.colorbar(picture, ax=row[2], shrink=0.8)
    picture = row[3].imshow(to_numpy(cam_heatmaps[i] - gradcam_heatmaps[i]), cmap="Greys", vmin=0, vmax=0.4)
    row[3].set_title("CAM − Grad-CAM", fontsize=9)
    fig.colorbar(picture, ax=row[3], shrink=0.8)
for ax in axes.ravel():
    ax.set_xticks([])
    ax.set_yticks([])
fig.suptitle("The same evidence, two normalizations: CAM keeps the negative cells, Grad-CAM clips them at zero")
plt.show()

# %% [markdown]
# Both methods find the same peak, since neither the ReLU nor a rescaling moves the maximum. How much of the
# heatmap lies on the objects does change. Two measures from `tinycam.metrics`, over every (image, class present)
# pair of the 64 images, with the ground-truth masks of that class's objects: the **pointing game** (is the
# heatmap's maximum on an object of the class?) and the **energy** share (how much of the heatmap's total lies on
# those objects).

# %%
pair_image, pair_class = np.nonzero(test.labels)  # every (image, present class) pair
class_masks = torch.from_numpy(test[pair_image].class_masks(pair_class))  # each pair's class objects, (P, H, W)
pair_targets = torch.from_numpy(pair_class)
for method in ["cam", "gradcam"]:
    heatmaps = tinycam.explain(model, images[pair_image], layer, method, target=pair_targets)
    hits = metrics.pointing_game(heatmaps, class_masks)
    energy = metrics.energy_pointing_game(heatmaps, class_masks)
    print(f"{method:>8}: pointing game {int(hits.sum())} of {len(hits)} pairs; mean energy on the objects "
          f"{energy.mean().item():.2f}")
print(f"the objects of the class cover {class_masks.double().mean().item():.1%} of the image on average "
      f"(the pointing game's chance level)")

# %% [markdown]
# The peaks agree (the same hits). The energy share differs because CAM's raised floor spreads some of the heatmap
# over the grass. Zhou et al.'s map has no ReLU; Grad-CAM adds one on purpose, to show only the evidence *for* the
# class. Keep that in mind when you compare published CAM and Grad-CAM figures.

# %% [markdown] tags=["answer"]
# **What does Grad-CAM's ReLU remove from the map, what do those cells mean for the score, and why can CAM show them?**
#
# ### BEGIN SOLUTION
# The ReLU removes the cells where the weighted sum of the feature maps is negative: the locations whose features,
# weighted by the class, *lower* the score (evidence against the class). On our model they are mostly grass, read by
# the grass detectors whose weights are negative for every class, and they cover more than half of the 256 cells.
#
# CAM can show them because its map is an exact decomposition of the score: for a GAP + linear head,
# $Y^c = \frac{1}{Z}\sum_{i,j} M_c(i, j) + b^c$, so $M_c(i, j)/Z$ is what location $(i, j)$ adds to the score, with
# its sign, and Zhou et al. define $M_c$ without a ReLU. The price is visible after normalization: CAM's minimum
# becomes 0, so the zero level rises to $m_0$ and part of the heatmap spreads over the background (the energy share
# above), while the peak stays where it was. Grad-CAM clips on purpose, to show only the features with a positive
# influence on the class; the evidence against it is what the counterfactual map (notebook 01, negated gradients)
# shows.
# ### END SOLUTION

# %% [markdown]
# ## 8. CAM's pros and cons (slides 003), tested
#
# ### Pro: class-discriminative
#
# The same feature maps, weighted by three different rows of $w$, give three different maps. Two test images with a
# circle and a square, and the CAM of each class:

# %%
two_shapes = [2, 33]
fig, axes = plt.subplots(len(two_shapes), 4, figsize=(10, 5.4), layout="constrained")
for row, i in zip(axes, two_shapes):
    per_class = tinycam.explain(model, images[[i, i, i]], layer, "cam", target=[0, 1, 2])  # one map per class
    row[0].imshow(to_numpy(images[i]))
    row[0].set_title(f"image #{i} (true: {short_labels(i)})", fontsize=9)
    for c, ax in enumerate(row[1:]):
        ax.imshow(to_numpy(overlay(images[i], per_class[c])))
        ax.set_title(f"CAM '{CLASSES[c]}', p = {probs[i, c].item():.3f}", fontsize=9)
for ax in axes.ravel():
    ax.axis("off")
fig.suptitle("The same feature maps, three class weightings: CAM separates the circle from the square")
plt.show()

# %% [markdown]
# The circle's map sits on the circle and the square's map on the square, from one forward pass and the same 64
# feature maps. The model was never told where the objects are, yet the pointing game of section 7 put the peak on
# the right object in most pairs: localization without positional supervision, as the slide says.
#
# Look at the third column too. There is no triangle in either image ($p$ = 0.031 and 0.014), yet its map still
# spans the full colour scale, because normalization stretches *every* map to $[0, 1]$. Here $M_c$ is strongly
# negative on the circle and the square (evidence against "triangle"), mildly negative on the grass, and positive
# on only a handful of cells along some edges. Min-max scaling turns that into a mid-level background with the
# objects darkest and a "peak" on one of those edges. A heatmap never says how confident the model is: read it
# together with the score.
#
# ### Pro: no backward pass
#
# CAM reads $A$ and the classifier's weights, both available after the forward pass. Grad-CAM also needs
# $\partial Y^c/\partial A$, so it runs a backward pass through the head. We count the passes with two hooks, one
# on the feature extractor (forward) and one on the classifier (backward):

# %%
passes = {"forward": 0, "backward": 0}


def count(kind):
    def hook(*_):
        passes[kind] += 1

    return hook


hooks = [model.features.register_forward_hook(count("forward")),
         model.classifier.register_full_backward_hook(count("backward"))]
for method in ["cam", "gradcam"]:
    passes.update(forward=0, backward=0)
    tinycam.explain(model, images[:8], layer, method)  # a batch of 8 images: one pass serves the whole batch
    print(f"explain(..., {method!r:>9}): forward passes {passes['forward']}, backward passes {passes['backward']}")
for handle in hooks:
    handle.remove()

# %% [markdown]
# The slide compares CAM with guided backpropagation and deconvolution, whose backward pass goes all the way down to
# the pixels ("deconvolution" here is Zeiler and Fergus's deconvnet, a backward visualisation, not the transposed
# convolution of notebook 00). Grad-CAM's backward pass here is short: `tinycam` differentiates only from the score down to the
# chosen layer, which in this model means back through the pooling and the linear layer.
#
# ### Con: CAM needs the GAP architecture
#
# `tinycam.load_model("fc")` is the GAP model's sibling: the same kind of convolutional trunk, but its last feature
# maps ($16 \times 8 \times 8$) are flattened and fed to two fully connected layers. Its score is not a weighted
# average of feature maps, there are no class weights $w_k^c$ to read, and CAM has nothing to work with:

# %%
fc_model = tinycam.load_model("fc")
try:
    tinycam.explain(fc_model, images[:4], fc_model.last_conv, "cam")
except ValueError as error:
    print("ValueError:")
    print(textwrap.fill(str(error), width=100, initial_indent="  ", subsequent_indent="  "))

# %% [markdown]
# **What is lost: the localization, or only CAM's way of reading it?** The slides (003) say that convolutional
# units behave as object localizers and that "this capability is lost if fully connected layers are used for
# classification". Zhou et al. write the same in the CAM paper's introduction: "Despite having this remarkable
# ability to localize objects in the convolutional layers, this ability is lost when fully-connected layers are used
# for classification." Our FC network lets us test the claim. Its convolutional layers still see where the objects
# are; what it lacks is the weights $w_k^c$ that CAM reads. Grad-CAM (section 6; next notebook) gets weights from
# gradients instead, so it can ask the FC network's last conv layer where the evidence is. The same (image, class)
# pairs and measures as in section 7:

# %%
fc_pairs = {}
for name, net in [("gap", model), ("fc", fc_model)]:
    heatmaps = tinycam.explain(net, images[pair_image], net.last_conv, "gradcam", target=pair_targets)
    fc_pairs[name] = (metrics.pointing_game(heatmaps, class_masks), metrics.energy_pointing_game(heatmaps, class_masks))
    hits, energy = fc_pairs[name]
    print(f"Grad-CAM, {name:>3} network at {net.last_conv}: pointing game {int(hits.sum())} of {len(hits)} pairs; "
          f"mean energy on the objects {energy.mean().item():.2f}")

# %% [markdown]
# The FC network localizes the objects almost as well as the GAP network: the peak lands on the class's objects in
# 83 of the 99 pairs (GAP: 87), with 32 % of the heatmap on them (GAP: 34 %). The fully connected head did not
# destroy the location information in the convolutional layers; it removed the direct path from those layers to
# the score, the path that CAM's weights are. What is lost is CAM's way of reading the location, not the location.
#
# **Which networks CAM can read.** CAM needs a score that is one linear layer on the global average pool of the
# explained layer. Zhou et al. built on networks that already ended that way, to have fewer parameters: Network in
# Network (Lin et al., ICLR 2014), which introduced global average pooling, and GoogLeNet (Szegedy et al., CVPR
# 2015). ResNet (He et al., CVPR 2016) ends the same way: `layer4`, average pooling, one linear layer `fc`. So CAM
# reads a ResNet at `layer4` as it is, no retraining, and Grad-CAM there is CAM with a ReLU, up to $Z$. That is why
# the README's example, Grad-CAM on a pretrained ResNet-18 at `layer4`, gives CAM's picture (with the ReLU). A check
# on a ResNet-18 of torchvision's layout with random weights (nothing is downloaded):

# %%
from tinycam.course.bench import ResNet18

torch.manual_seed(0)
resnet = ResNet18().eval()  # random weights: the architecture is what matters here
photo = torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(0))
resnet_capture = tinycam.capture(resnet, photo, "layer4", target=281)
resnet_grads = resnet_capture.grads[0]
flat = (resnet_grads.amax(dim=(-2, -1)) - resnet_grads.amin(dim=(-2, -1))).max().item()
resnet_cam = tinycam.explain(resnet, photo, "layer4", "cam", target=281)
resnet_gradcam = tinycam.explain(resnet, photo, "layer4", "gradcam", target=281)
resnet_cam_relu = torch_reference.normalize(torch_reference.upsample(
    torch.relu(torch_reference.cam(resnet_capture.acts, resnet.fc.weight.detach()[[281]])), photo.shape[-2:]))
print(f"ResNet-18 layer4: {resnet_capture.acts.shape[1]} maps of {resnet_capture.acts.shape[2]} x "
      f"{resnet_capture.acts.shape[3]}; CAM runs: {tuple(resnet_cam.shape)} heatmap")
print(f"largest spread of one gradient map over its pixels: {flat:.1e} (constant: w/Z, as in section 6)")
print(f"Grad-CAM heatmap = normalize(upsample(ReLU(M_c))) to within 1e-5: "
      f"{'yes' if (resnet_gradcam - resnet_cam_relu).abs().max().item() < 1e-5 else 'NO'}")

# %% [markdown]
# The slides list the consequences:
#
# - **A restrictive architecture.** Models whose output is not one linear layer on pooled features, such as image
#   captioning or visual question answering, cannot be explained by CAM at all.
# - **Retraining to explain a trained model.** To get a CAM for the FC model one would replace its head by GAP + a
#   linear layer and train again. The result is a different model, like `GapNet` here, and its maps explain that
#   model, not the one in use.
# - **Accuracy traded for interpretability.** Imposing GAP + linear may cost accuracy. The two models' held-out
#   results, as recorded by `python -m tinycam train`:

# %%
recorded = json.loads((DATA_DIR / "models.json").read_text())
for name in ["gap", "fc"]:
    r = recorded[name]
    print(f"{name:>3} model: label accuracy {r['label_accuracy']:.2%}, all three labels right on "
          f"{r['exact_match']:.1%} of {r['n_test']} test images ({r['epochs']} epochs)")

# %% [markdown]
# On this easy world the price is small: half a percentage point of label accuracy. Do not read the epochs as a
# race: the FC model did not start from scratch. It started from the GAP model's trained convolutional trunk
# (`features.0`–`features.8`, copied before training; `data/README.md` records this) and then trained for 2 epochs,
# after the GAP model's 4. This is one pair of models, not a controlled study. Zhou et al. measured the same kind of
# cost on ImageNet: removing the fully connected layers and adding GAP lowered classification accuracy by 1 to 2
# points for most of the networks they converted.
#
# Grad-CAM removes the first two limits: its weights come from gradients, which exist for the FC model as it is.
# The next notebook explains both models with Grad-CAM.

# %% [markdown]
# ## Summary
#
# - A **GAP network** scores class $c$ as $Y^c = \sum_k w_k^c \frac{1}{Z}\sum_{ij} A^k_{ij} + b^c$; our model
#   reproduces its 192 scores (64 images × 3 classes) from its feature maps and weights.
# - Exchanging the two sums gives the **class activation map** $M_c = \sum_k w_k^c A^k$ (no ReLU), whose average plus
#   $b^c$ is the score: CAM splits the score over the locations. The map is upsampled (bilinear, 16 → 64) and
#   normalized to lay it over the image.
# - **CAM → Grad-CAM**, derived step by step: for a GAP network you worked out the gradient of the score with respect
#   to each activation, what it sums to and what Grad-CAM's average gives, in terms of CAM's weights. Autograd
#   confirms it exactly on our model. The maps agree up to a constant factor and Grad-CAM's ReLU.
# - After normalization the ReLU matters: our CAMs all have negative cells, which lift CAM's zero level (by 0.08 in
#   the median image) and move some of the heatmap onto the background. The peaks are the same.
# - **Pros:** class-discriminative (circle and square maps separate on the same image), localization learned from
#   image labels only, a forward pass only. **Cons:** only for GAP + linear heads (the FC model raises an error),
#   retraining needed to explain other models, possibly lower accuracy.
# - Fully connected layers do not destroy localization, only CAM's way of reading it: Grad-CAM on the FC network
#   puts its peak on the class's objects in 83 of 99 pairs (GAP network: 87). Networks that end in global average
#   pooling and one linear layer (GoogLeNet, ResNet) can be read by CAM as they are.
#
# **Next: Grad-CAM on both models.** With gradients in place of classifier weights, the FC model gets its maps too,
# and the choice of layer becomes free.
