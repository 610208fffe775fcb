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
# # 05 · Grad-CAM++: the homework derivation, checked, and a study of many objects
#
# Grad-CAM gives every pixel of a gradient map the same vote: each channel weight is the *mean* of its gradients.
# **Grad-CAM++** (Chattopadhay et al., WACV 2018) replaces the mean by a weighted sum with a separate weight
# $\alpha^{kc}_{ij}$ for every pixel. Its motivation is the lecture's picture of three dogs of different sizes: in
# Grad-CAM the small dog fades, and Grad-CAM++ is meant to bring it back. The lecture leaves the closed form of
# $\alpha$ as homework.
#
# In this notebook you do that homework one step at a time, and each step is checked, symbolically and on numbers.
# It then asks whether the
# promise holds on our own trained networks, with every object's mask known.
#
# **What you will do**
#
# | § | topic | you will |
# |---|---|---|
# | 1 | motivation, measured | watch the small object fade in Grad-CAM, in numbers |
# | 2 | the derivation | write the score Grad-CAM++ assumes (**Exercise 1**), differentiate it (**2**), solve for $\alpha$ (**3, 4**), use the exponential score (**5, 6**), reach the closed form (**7, 8**) and the channel weights (**9**); one written answer |
# | 3 | autograd | compute exact 2nd and 3rd derivatives and confirm the closed form, then break its assumption |
# | 4 | the worked example | run Grad-CAM++ on notebook 01's three 2×2 maps and follow the "background kernel" |
# | 5 | three slips | measure what an epsilon, a normalization and $\exp(S)$ do to public implementations |
# | 6 | the study | compare CAM, Grad-CAM, Grad-CAM++ and positive-gradient Grad-CAM by object size |
#
# **Graded exercises.** As before, your answer goes between `### BEGIN SOLUTION` and `### END SOLUTION` (in your
# copy that region holds `raise NotImplementedError()`), and the check cell below prints `✓`, or `✗` with a hint.
# The derivation's steps (Exercises 1, 2, 3, 5, 7) are small functions of the step's symbols that the check also runs
# on SymPy symbols; the others take NumPy arrays of shape $(\dots, K, H, W)$, leading batch axes included. The cells
# after a check use `tinycam.reference` and `tinycam.torch_reference`, so an unfinished exercise never breaks the
# rest of the notebook. Points: 1 + 1 + 1 + 2 + 1 + 2 + 1 + 3 + 2 = 14. The written answers (cells that start with
# a question in bold) are read by your instructor.
#
# **Notation.** $S^c$ is the class score that the network outputs (the logit, before the sigmoid), and
# $g^k_{ij} = \partial S^c / \partial A^k_{ij}$ is its gradient: what notebooks 01–03 called $\partial y^c/\partial
# A^k_{ij}$. Grad-CAM++ works with a second score, $Y^c = \exp(S^c)$. The slides (003) write the $\alpha$ formula
# with the derivatives of $Y^c$, and the difference between $Y^c$ and $S^c$ matters in section 2.
#
# **Reading the sources.** The lecture decks cite these papers inconsistently; the right references are:
#
# - Grad-CAM: Selvaraju et al., *Grad-CAM: Visual Explanations from Deep Networks via Gradient-based Localization*,
#   ICCV 2017; the extended journal version has the same title, in IJCV vol. 128, pp. 336–359, February 2020. One
#   deck cites "IJCV, 2021", which is wrong, and another "IJCV, 2019", probably the year it appeared online (not
#   verified here).
# - Grad-CAM++: Chattopadhay, Sarkar, Howlader & Balasubramanian, WACV 2018, pp. 839–847 (the author spelled his
#   name Chattopadhay there; the decks also write Chattopadhyay and Chattopadhyaya). One deck cites "WACV, 2021",
#   which is wrong. The paper has two titles: the arXiv preprint (1710.11063) is *Grad-CAM++: Improved Visual
#   Explanations for Deep Convolutional Networks*, the WACV version *Grad-CAM++: Generalized Gradient-Based Visual
#   Explanations for Deep Convolutional Networks*.
# - Two phrases in the slides need care. "A weighted average of pixel-wise gradients": formula (2) below is a weighted
#   **sum**, and its weights $\alpha$ do not sum to 1. "It considers only the positive weights of the gradients":
#   it is the **gradients** that are kept only where positive (the ReLU in (2)); the weights $\alpha$ of those
#   pixels are positive too, but that is a consequence (section 2, step 5), not a choice.

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

import tinycam
from tinycam import conv, metrics, reference, torch_reference
from tinycam.course import checks, lecture, study
from tinycam.derivatives import diagonal_derivatives, exp_score
from tinycam.course.plotting import HEATMAP_CMAP, annotate, overlay, show_grid
from tinycam.shapes import make_images

torch.manual_seed(0)
torch.set_num_threads(1)  # small models, small batches: one thread is as fast, and does not stall on a busy machine
models = {name: tinycam.load_model(name) for name in ("gap", "fc")}
SIZE_NAMES = ("large", "medium", "small")
# bar colours from the Okabe-Ito palette, told apart by colour-blind readers too, and a hatch per method as well
STYLE = {"cam": ("#999999", ""), "gradcam": ("#0072B2", ""), "gradcam++": ("#E69F00", "//"),
         "positive-gradcam": ("#009E73", ".."), "image": ("#DDDDDD", "xx")}

# %% [markdown]
# ## 1. Motivation, measured: the small object fades
#
# The lecture's picture: one image with three dogs, one large, one medium and one small. Suppose each dog lights up
# a different feature map, and the score depends on each map only where its dog is, so the gradient map is non-zero
# on the dog's pixels only. Grad-CAM averages each gradient map over all $Z$ pixels. The map of the small dog has
# few pixels with a gradient, so its average is small, its weight is small, and in the final heatmap the small
# dog fades next to the other two. That is a statement about the **weights**; we build it exactly at the end of
# this section. First, what our trained networks do.
#
# Our image world can draw the picture. `make_images(..., classes=(0,), n_objects=3, spread_sizes=True)`
# draws three circles per image, with sizes spread from 10 % to 45 % of the image side: a small one (about 6 px
# across, in the sense of $\sqrt{\text{area}}$), a medium one (about 14 px) and a large one (about 29 px). We ask
# the GAP network for Grad-CAM's map of the class "circle" and measure, with the masks, **how much of the map's
# mass falls on each circle**: $\sum_{ij \in \text{object}} L_{ij} / \sum_{ij} L_{ij}$
# (`metrics.instance_mass`). For comparison, a map that is the same everywhere would give each circle the share of
# the image it covers.

# %%
world = make_images(6, seed=500, classes=(0,), n_objects=3, scale=(0.1, 0.45), spread_sizes=True)
images = torch.from_numpy(world.images)
instances = torch.from_numpy(world.masks)  # (6, 3, 64, 64); slots are filled largest first
assert (np.diff(world.object_sizes, axis=1) < 0).all()  # so slot 0, 1, 2 = large, medium, small

gap_model = models["gap"]
gradcam_maps = tinycam.explain(gap_model, images, gap_model.last_conv, method="gradcam", target=0)
mass_share = metrics.instance_mass(gradcam_maps, instances)  # (6, 3)
area_share = instances.flatten(2).double().mean(dim=2)  # the share a uniform map would give
has_peak = metrics.instance_peaks(gradcam_maps, instances)  # a local maximum of the map on the object

print("image | size in px (L, M, S)  | share of the image     | share of Grad-CAM's mass | peak on it")
for n in range(len(world)):
    sizes = " ".join(f"{s:4.1f}" for s in world.object_sizes[n])
    areas = " ".join(f"{100 * a:5.1f}%" for a in area_share[n])
    shares = " ".join(f"{100 * s:5.1f}%" for s in mass_share[n])
    peaks = " ".join("yes" if p else " no" for p in has_peak[n])
    print(f"  {n}   | {sizes}        | {areas}  | {shares}    | {peaks}")
mean_share = mass_share.double().mean(dim=0)
print("mean  |                       | " + " ".join(f"{100 * a:5.1f}%" for a in area_share.mean(dim=0))
      + "  | " + " ".join(f"{100 * s:5.1f}%" for s in mean_share))

# %%
overlays = [overlay(images[n], gradcam_maps[n]) for n in range(len(world))]
show_grid([list(images), overlays], titles=[f"image {n}" for n in range(len(world))],
          row_labels=["three circles", "Grad-CAM (GAP)"], size=2.0)
plt.show()

# %%
fig, ax = plt.subplots(figsize=(6.5, 3.2), layout="constrained")
positions = np.arange(3)
ax.bar(positions - 0.2, 100 * area_share.mean(dim=0), width=0.4, color=STYLE["image"][0], hatch=STYLE["image"][1],
       edgecolor="black", linewidth=0.5, label="share of the image")
ax.bar(positions + 0.2, 100 * mean_share, width=0.4, color=STYLE["gradcam"][0], edgecolor="black", linewidth=0.5,
       label="share of Grad-CAM's mass")
ax.set_xticks(positions, [f"{name} circle" for name in SIZE_NAMES])
ax.set_ylabel("% (mean over the 6 images)")
ax.set_title("Where Grad-CAM's mass goes, by object size")
ax.legend()
plt.show()

# %% [markdown]
# Per pixel, the map is generous with the small circle: it covers about 1 % of the image and gets about 3 % of the
# mass. In absolute terms it still fades. Its share is a few percent against 15–21 % for each of the others, and in
# half of the images the map has **no peak** on it: shown as a heatmap, the small circle looks like nothing, even
# though it is as much a circle as the others.
#
# **But not for the lecture's reason.** On the GAP network the score is $S^c = \sum_k W_{ck} \frac{1}{Z}
# \sum_{ij} A^k_{ij} + b_c$, so the gradient is $g^k_{ij} = W_{ck}/Z$ at every pixel of every image (section 5
# checks it). Grad-CAM's weights are then the same 64 numbers for every image, whatever the sizes of its circles:
# the averaging has nothing to dilute. The fading above is an **activation** effect: the circle channels respond
# less, in total, to a small circle than to a large one, and the same weights carry that into the map.
#
# Look at the large circle too: its middle stays dark, and the mass sits on its rim. This is not a Grad-CAM effect.
# A unit of the last layer sees a window of 26×26 pixels of the input (notebook 00's receptive field, computed
# below), less than the large circle's diameter of about 32 px. In the middle of the disc that window holds flat
# colour and no outline, so nothing there looks like a circle.

# %%
receptive = conv.receptive_field([3, 2, 3, 2, 3, 3], [1, 2, 1, 2, 1, 1])  # conv, pool, conv, pool, conv, conv
print(f"receptive field of features.10 (GAP network): {receptive[-1]} px; "
      f"large circle's diameter: {2 * world.object_sizes[:, 0].mean() / np.sqrt(np.pi):.1f} px on average")

# %% [markdown]
# ### The mechanism where it acts: a toy, and the FC network
#
# Where can the averaging act? Only where the gradient differs from pixel to pixel. The lecture's picture, built
# exactly: `lecture.three_dogs()` gives three 12×12 feature maps, map $k$ equal to 1 on the footprint of dog $k$
# (36, 9 and 1 pixels) and 0 elsewhere. The score $S = \sum_k \sum_{ij} \mathrm{ReLU}(A^k_{ij} - \tfrac12)$ counts
# each map only where it fires, so autograd gives a gradient of 1 on each dog and 0 elsewhere: confined to the
# object. Grad-CAM's weights are the footprints divided by $Z = 144$, in the ratio 36 : 9 : 1. Grad-CAM++, whose
# weights you derive in section 2, gives (computed here with the library):

# %%
dogs = torch.from_numpy(lecture.three_dogs()).requires_grad_(True)  # (3, 12, 12): one dog per map


def dog_score(acts):
    """S = Σ_k Σ_ij ReLU(A^k_ij − 1/2): each map counts only where it fires, so its gradient is 1 on its dog."""
    return torch.relu(acts - 0.5).sum()


(dog_grads,) = torch.autograd.grad(dog_score(dogs), dogs)
dogs = dogs.detach()
print("footprints (px): " + " : ".join(f"{n:.0f}" for n in dogs.sum(dim=(1, 2)))
      + f"; gradient confined to the dogs: {bool(torch.equal(dog_grads, dogs))}")
dog_maps = {}
for name, weights in [("Grad-CAM", torch_reference.gradcam_weights(dog_grads)),
                      ("Grad-CAM++", torch_reference.gradcampp_weights(dogs, dog_grads))]:
    dog_maps[name] = torch_reference.normalize(torch.relu(torch_reference.weighted_combination(weights, dogs)))
    print(f"{name:10s}: weights " + " ".join(f"{w:.4f}" for w in weights) + ";  large : medium : small = "
          + " : ".join(f"{r:.2f}" for r in weights / weights[2]) + f";  small dog in the normalized map: "
          f"{(dog_maps[name] * dogs[2]).max():.3f}")

# %%
fig, axes = plt.subplots(1, 3, figsize=(9, 3.2), layout="constrained")
axes[0].imshow(dogs.sum(dim=0), cmap="gray", interpolation="nearest")
axes[0].set_title("the three dogs (one map each)", fontsize=10)
for ax, (name, values) in zip(axes[1:], dog_maps.items()):
    shown = ax.imshow(values, cmap=HEATMAP_CMAP, vmin=0, vmax=1, interpolation="nearest")
    ax.set_title(f"{name}, normalized", fontsize=10)
for ax in axes:
    ax.set_xticks([])
    ax.set_yticks([])
fig.colorbar(shown, ax=axes[1:], shrink=0.85, label="map value (same scale)")
plt.show()

# %% [markdown]
# In Grad-CAM the small dog gets 1/36 of the large dog's value and vanishes; Grad-CAM++ brings the ratio down from
# 36 : 9 : 1 to 2.84 : 2.45 : 1, and the small dog is back at about a third of the peak. That is the paper's
# mechanism, and it needs the two assumptions of the picture: one map per object, and a gradient confined to it.
#
# The **FC network** (notebook 02) has a fully connected layer after the last conv block, so its gradient does vary
# from pixel to pixel and from image to image, and the averaging can act there. Does its gradient sit on the
# circles? We compare, for the six images of the table above, how the positive gradient of each channel is spread
# over the three circles with how much of the image each circle covers:

# %%
small_circle = torch.nn.functional.avg_pool2d(instances.double(), 8)[:, 2]  # share of each 8x8 cell on the circle
print("Grad-CAM weights the same for all 6 images: "
      + ", ".join(f"{name.upper()} {bool(torch.equal(w, w[:1].expand_as(w)))}" for name, w in
                  ((name, torch_reference.gradcam_weights(tinycam.capture(m, images, m.last_conv, target=0).grads))
                   for name, m in models.items())))
fc_capture = tinycam.capture(models["fc"], images, models["fc"].last_conv, target=0)
positive_grads = fc_capture.grads.double().relu()  # (6, K, 8, 8)
per_channel = positive_grads.sum(dim=(-2, -1))
on_small = (positive_grads * small_circle[:, None]).sum(dim=(-2, -1))[per_channel > 0] / per_channel[per_channel > 0]
print(f"FC network, share of a channel's positive gradient on the small circle (which covers "
      f"{100 * small_circle.mean():.1f}% of the image): median {on_small.median():.1%}, "
      f"90th percentile {on_small.quantile(0.9):.1%}, max {on_small.max():.1%}")
for name, method in [("Grad-CAM", "gradcam"), ("Grad-CAM++", "gradcam++")]:
    fc_maps = tinycam.explain(models["fc"], images, models["fc"].last_conv, method=method, target=0)
    print(f"FC network, {name:10s}: mean share of the map's mass on the small circle "
          f"{metrics.instance_mass(fc_maps, instances)[:, 2].double().mean():.1%}, "
          f"a peak on it in {int(metrics.instance_peaks(fc_maps, instances)[:, 2].sum())} of 6 images")

# %% [markdown]
# On the FC network the weights change from image to image, but the positive gradient of a typical channel is
# spread like the image itself: about 1 % of it on the small circle, which covers about 1 % of the image. Only a few
# channels concentrate on it. The averaging dilutes every circle alike, and Grad-CAM++ moves little mass (section 6
# measures it on 90 images): the three-dogs mechanism needs feature maps that see one object each, which these
# small networks do not learn.
#
# Grad-CAM++ claims to fix the fading. Before testing that claim (section 6), we derive the method.

# %% [markdown]
# ## 2. The derivation, as homework
#
# The lecture's homework: find the closed form of the pixel weights $\alpha$. You will do it in five steps, each an
# exercise, and then turn the result into the array functions the method needs.
#
# **What the derivation assumes.** It is a recipe, not a proof. It starts from the shape the class score has in CAM,
# a network that ends in global average pooling and **one linear layer**, and pretends that this shape holds with
# the unknown weights of Grad-CAM++; it treats the $\alpha$'s as constants and drops every mixed derivative
# $\partial^2 Y / \partial A^k_{ab}\, \partial A^k_{ij}$. And if the weights $w_k^c$ of (1) below really were
# constants, $Y^c$ would be linear in $A$, every second and third derivative would be 0, and the formula you will
# find would read $0/0$: the derivation only makes sense for a score that agrees with (1) at the point but is curved
# around it (step 4 supplies one). What we *can* check exactly is everything that follows from its result.
#
# **How the step exercises work.** Each step is a small function of the step's symbols: one pixel's $\alpha$, the
# sum $\sum_{ab} A^k_{ab}$ of its map (called `total`), the derivatives $\partial^2 Y$ and $\partial^3 Y$ (called
# `d2`, `d3`), and so on. Write it with arithmetic only (`+ - * / **`, sums over axes, and `np.maximum(x, 0)` for a
# ReLU): then the same function runs on NumPy arrays of numbers *and* on SymPy symbols. The check calls it on
# symbols and **proves** it equal to the step (SymPy simplifies the difference to 0), recognises the usual wrong
# steps, and then runs it on random numbers as every check does. Points: 1 per step.
#
# ### Step 1: what Grad-CAM++ assumes
#
# Grad-CAM++ starts from the shape CAM gave the class score: a weighted sum of the pixels of the feature maps,
#
# $$Y^c = \sum_k w_k^c \sum_{i,j} A^k_{ij} , \tag{1}$$
#
# and replaces Grad-CAM's *mean* of the gradients with a weighted sum of the **positive** gradients,
#
# $$w_k^c = \sum_{a,b} \alpha^{kc}_{ab}\, \mathrm{ReLU}\!\left(\frac{\partial Y^c}{\partial A^k_{ab}}\right).
# \tag{2}$$
#
# The pixel weights $\alpha^{kc}_{ab}$ are the unknowns. As the slide notes, $(a, b)$ and $(i, j)$ both run over the
# pixels of the same map, and two letters keep the sums apart.
#
# **The $1/Z$ convention.** CAM's score (notebook 02) is $\sum_k w_k^c \frac{1}{Z} \sum_{ij} A^k_{ij}$: in (1) the
# $1/Z$ is absorbed into $w_k^c$, which is CAM's weight divided by $Z$. It changes nothing below, but it is not CAM's
# $w$.
#
# ### Exercise 1 (1 point): the score of (1) and (2)
#
# Write `gradcampp_score_model(acts, alphas, grads)`: the score $Y^c$ that (1) and (2) give, for feature maps `acts`,
# pixel weights `alphas` and gradients `grads` $= \partial Y^c / \partial A$, all of shape $(\dots, K, H, W)$; it
# returns one number per image. (The check's symbols declare each gradient's sign, so a ReLU of one is known.)

# %% tags=["exercise"]
def gradcampp_score_model(acts, alphas, grads):
    """The score Y^c of formulas (1) and (2) (Chattopadhay et al., WACV 2018, section 3.1).

    acts, alphas, grads: arrays of shape (..., K, H, W) (numbers or SymPy symbols). Returns an array of shape (...).
    """
    ### BEGIN SOLUTION
    weights = (alphas * np.maximum(grads, 0)).sum(axis=(-2, -1))
    return (weights * acts.sum(axis=(-2, -1))).sum(axis=-1)
    ### END SOLUTION


# %% tags=["check"]
checks.gradcampp_score_model(gradcampp_score_model)

# %% [markdown]
# ### Step 2: differentiate twice
#
# Substitute (2) into (1), take one map $k$ and one pixel $(i, j)$, and write $\partial^n Y$ for $\partial^n Y^c /
# (\partial A^k_{ij})^n$. Suppose the gradients that matter are positive, so the ReLU lets them through, and treat
# the $\alpha$'s as constants. Differentiate both sides with respect to $A^k_{ij}$, then once more. Conceptual hints:
# the product rule acts on "bracket times $\sum_{ij} A^k_{ij}$"; of the derivatives of the bracket, keep only the
# term in which the pixel's own gradient appears.
#
# ### Exercise 2 (1 point): the twice-differentiated equation
#
# The left-hand side is $\partial^2 Y$. Write `twice_differentiated(alpha, total, d2, d3)`, the **right-hand side**,
# in the pixel's own weight `alpha` $= \alpha^{kc}_{ij}$, `total` $= \sum_{ab} A^k_{ab}$, `d2` $= \partial^2 Y$ and
# `d3` $= \partial^3 Y$.

# %% [markdown]
# ### BEGIN SOLUTION
# **The derivation.** With (2) substituted, (1) reads
#
# $$Y^c = \sum_k \sum_{i,j} \Big[ \sum_{a,b} \alpha^{kc}_{ab}\, \mathrm{ReLU}\Big(\frac{\partial Y^c}{\partial
# A^k_{ab}}\Big) \Big] A^k_{ij} .$$
#
# The product rule gives two terms: the bracket times $\partial A^k_{ij}/\partial A^k_{ij} = 1$, and
# $\sum_{ab} A^k_{ab}$ times the derivative of the bracket, of which we keep the term of the pixel's own gradient:
#
# $$\partial Y = \sum_{a,b} \alpha^{kc}_{ab} \frac{\partial Y^c}{\partial A^k_{ab}} + \Big(\sum_{a,b}
# A^k_{ab}\Big)\, \alpha^{kc}_{ij}\, \partial^2 Y .$$
#
# Differentiate again. The first sum contributes $\alpha^{kc}_{ij}\, \partial^2 Y$, and the second term
# $\alpha^{kc}_{ij}\, \partial^2 Y + \big(\sum_{ab} A^k_{ab}\big)\, \alpha^{kc}_{ij}\, \partial^3 Y$:
#
# $$\partial^2 Y = 2\, \alpha^{kc}_{ij}\, \partial^2 Y + \Big(\sum_{a,b} A^k_{ab}\Big)\, \alpha^{kc}_{ij}\,
# \partial^3 Y .$$
# ### END SOLUTION

# %% tags=["exercise"]
def twice_differentiated(alpha, total, d2, d3):
    """The right-hand side of the equation that step 2 gives for the second derivative (Chattopadhay et al., 3.2).

    alpha, total, d2, d3: numbers, arrays of one shape, or SymPy symbols. Returns the same kind.
    """
    ### BEGIN SOLUTION
    return 2 * alpha * d2 + total * alpha * d3
    ### END SOLUTION


# %% tags=["check"]
checks.twice_differentiated(twice_differentiated)

# %% [markdown]
# ### Step 3: solve for $\alpha$
#
# $\alpha^{kc}_{ij}$ is now the only unknown in the equation of step 2.
#
# ### Exercise 3 (1 point): $\alpha$ from the derivatives
#
# Write `alpha_solved(total, d2, d3)`: the pixel weight $\alpha^{kc}_{ij}$ that solves the equation, in `total`
# $= \sum_{ab} A^k_{ab}$, `d2` and `d3`. Call the result formula (3).

# %% [markdown]
# ### BEGIN SOLUTION
# **The solution.** $\alpha^{kc}_{ij}$ appears in both terms on the right; factor it out and divide:
#
# $$\boxed{\;\alpha^{kc}_{ij} = \frac{\partial^2 Y}{2\,\partial^2 Y + \sum_{a,b} A^k_{ab}\, \partial^3 Y}\;}
# \tag{3}$$
#
# This is the formula on the slide (003); sections 3.1–3.4 of the paper derive it.
# ### END SOLUTION

# %% tags=["exercise"]
def alpha_solved(total, d2, d3):
    """The pixel weight α^kc_ij that solves the equation of step 2: formula (3) (Chattopadhay et al., section 3.2).

    total, d2, d3: numbers, arrays of one shape, or SymPy symbols. Returns the same kind.
    """
    ### BEGIN SOLUTION
    return d2 / (2 * d2 + total * d3)
    ### END SOLUTION


# %% tags=["check"]
checks.alpha_solved(alpha_solved)

# %% [markdown]
# ### Exercise 4 (2 points): the general formula, on feature maps
#
# Write `gradcampp_alphas_general(acts, d2, d3)`, formula (3) for every pixel of every map and any score: `d2` and
# `d3` hold $\partial^2 Y / (\partial A^k_{ij})^2$ and $\partial^3 Y / (\partial A^k_{ij})^3$ for every pixel of every
# map, with the same shape as `acts`. The sum $\sum_{ab} A^k_{ab}$ runs over the pixels of map $k$ only. Where the
# denominator is exactly 0 (for example where both derivatives are 0), set $\alpha = 0$: a formula that returns NaN
# there would wipe out a whole channel weight. `np.divide(x, y, out=np.zeros_like(x), where=y != 0)` divides only
# where it may.

# %% tags=["exercise"]
def gradcampp_alphas_general(acts, d2, d3):
    """The Grad-CAM++ pixel weights of formula (3) for every pixel of every map, 0 where the formula's denominator
    is 0 (Chattopadhay et al., WACV 2018, section 3.2).

    acts, d2, d3: arrays of shape (..., K, H, W). Returns an array of the same shape.
    """
    ### BEGIN SOLUTION
    acts, d2, d3 = (np.asarray(x, dtype=np.float64) for x in (acts, d2, d3))
    denominator = 2.0 * d2 + acts.sum(axis=(-2, -1), keepdims=True) * d3
    return np.divide(d2, denominator, out=np.zeros_like(d2), where=denominator != 0)
    ### END SOLUTION


# %% tags=["check"]
checks.gradcampp_alphas_general(gradcampp_alphas_general)

# %% [markdown]
# ### Step 4: why the exponential
#
# Formula (3) needs second and third derivatives, and here is the catch. In a ReLU network everything after $A$
# (ReLUs, max-pooling, linear layers, and the sums of the GAP head) is **piecewise linear**. Within each linear
# piece, $\partial^2 S^c / (\partial A^k_{ij})^2 = 0$ and $\partial^3 S^c = 0$, so with $Y^c = S^c$ formula (3)
# reads $0/0$.
#
# Grad-CAM++ therefore uses the score $Y^c = \exp(S^c)$. It is a monotone function of $S^c$, so it ranks the
# classes the same way, and its higher derivatives do not vanish.
#
# ### Exercise 5 (1 point): the chain rule
#
# Differentiate $Y = e^{S}$ along $A^k_{ij}$ once, twice and three times. Write `exp_chain_rule(exp_s, g, s2, s3)`,
# returning the tuple $(\partial Y, \partial^2 Y, \partial^3 Y)$ in `exp_s` $= e^{S}$, `g` $= \partial S^c/\partial
# A^k_{ij}$, `s2` $= \partial^2 S^c / (\partial A^k_{ij})^2$ and `s3` $= \partial^3 S^c / (\partial A^k_{ij})^3$.
# Keep `s2` and `s3`: the assumption that $S$ is piecewise linear comes after. (`exp_s` is passed in, so that your
# function needs no `exp`.)

# %% [markdown]
# ### BEGIN SOLUTION
# **The derivation.** Writing $g = \partial S^c/\partial A^k_{ij}$, the chain rule and the product rule give
#
# $$\partial Y = e^{S} g, \qquad
# \partial^2 Y = e^{S}\big(g^2 + \partial^2 S\big), \qquad
# \partial^3 Y = e^{S}\big(g^3 + 3\, g\, \partial^2 S + \partial^3 S\big).$$
#
# With $S^c$ piecewise linear in $A$, the terms with $\partial^2 S$ and $\partial^3 S$ are 0:
#
# $$\partial^2 Y = e^{S} g^2, \qquad \partial^3 Y = e^{S} g^3 . \tag{4}$$
# ### END SOLUTION

# %% tags=["exercise"]
def exp_chain_rule(exp_s, g, s2, s3):
    """The first three derivatives of the exponential score exp(S) along one activation, through e^S and those of S.

    exp_s, g, s2, s3: numbers, arrays of one shape, or SymPy symbols. Returns the tuple (d1, d2, d3).
    """
    ### BEGIN SOLUTION
    return exp_s * g, exp_s * (g**2 + s2), exp_s * (g**3 + 3 * g * s2 + s3)
    ### END SOLUTION


# %% tags=["check"]
checks.exp_chain_rule(exp_chain_rule)

# %% [markdown]
# Call the second and third derivatives that remain when $S$ is piecewise linear ($\partial^2 S = \partial^3 S =
# 0$) formula (4).
#
# ### Exercise 6 (2 points): the derivatives of the exponential score, on feature maps
#
# Write `exp_score_derivatives(grads, score)`: given $g$ (an array of shape $(\dots, K, H, W)$) and the score $S$
# (one number), return the pair `(d2, d3)` of formula (4), each shaped like `grads`.

# %% tags=["exercise"]
def exp_score_derivatives(grads, score):
    """The second and third derivatives of the exponential score along each activation, S piecewise linear: formula (4).

    grads: array (..., K, H, W) of g = ∂S/∂A; score: the number S. Returns a tuple (d2, d3) of arrays like grads.
    """
    ### BEGIN SOLUTION
    grads = np.asarray(grads, dtype=np.float64)
    return np.exp(score) * grads**2, np.exp(score) * grads**3
    ### END SOLUTION


# %% tags=["check"]
checks.exp_score_derivatives(exp_score_derivatives)

# %% [markdown]
# ### Step 5: the closed form
#
# Put (4) into (3).
#
# ### Exercise 7 (1 point): the closed form at one pixel
#
# Write `alpha_exp_closed_form(g, total)`: $\alpha^{kc}_{ij}$ in `g` $= \partial S^c/\partial A^k_{ij}$ (not zero)
# and `total` $= \sum_{ab} A^k_{ab}$, simplified as far as it goes. Call it formula (5).

# %% [markdown]
# ### BEGIN SOLUTION
# **The solution.** Every term carries the same factor $e^{S}$, and it cancels:
#
# $$\alpha^{kc}_{ij} = \frac{e^{S} g^2}{2 e^{S} g^2 + \sum_{ab} A^k_{ab}\, e^{S} g^3}
# = \boxed{\;\frac{g^2}{2 g^2 + \sum_{a,b} A^k_{ab}\; g^3}\;}, \qquad g = \frac{\partial S^c}{\partial A^k_{ij}} .
# \tag{5}$$
#
# This is the answer to the lecture's homework. It needs nothing beyond what Grad-CAM already has, the activations
# and one gradient map, and the exponential has disappeared. Where $g \neq 0$ you may cancel $g^2$:
# $\alpha = 1 / (2 + g \sum_{ab} A^k_{ab})$. Where $g = 0$ (a unit that a ReLU or a max-pool switched off, which
# happens a lot), (5) is $0/0$, and $\alpha = 0$ is the only sensible value: the pixel has no gradient to weight,
# and in (2) it is multiplied by $\mathrm{ReLU}(0) = 0$ anyway. The lecture's formula (3) is written with the
# derivatives of $Y$; the closed form (5) equals it **only** when the score is $\exp(S)$ and $S$ is piecewise linear
# in $A$. Section 3 measures what happens otherwise.
# ### END SOLUTION

# %% tags=["exercise"]
def alpha_exp_closed_form(g, total):
    """The Grad-CAM++ pixel weight for the exponential score, S piecewise linear: formula (5) (Chattopadhay et al.).

    g, total: numbers, arrays of one shape, or SymPy symbols, g non-zero. Returns the same kind.
    """
    ### BEGIN SOLUTION
    return g**2 / (2 * g**2 + total * g**3)
    ### END SOLUTION


# %% tags=["check"]
checks.alpha_exp_closed_form(alpha_exp_closed_form)

# %% [markdown]
# Where the gradient is not 0, (5) depends on $g$ and $\sum_{ab} A^k_{ab}$ only through their product. Here it is
# on a one-pixel map with $g = 1$, for a range of values of that product (`reference.gradcampp_alphas`; where the
# denominator of (5) is exactly 0, our convention returns 0):

# %%
for g_sum_a in [-3.0, -2.0, -1.5, -1.0, 0.0, 1.0, 10.0]:
    one_pixel = reference.gradcampp_alphas(np.array([[[g_sum_a]]]), np.array([[[1.0]]]))[0, 0, 0]
    print(f"g * sum(A) = {g_sum_a:5.1f}:  alpha = {one_pixel:+.4f}")

# %% [markdown] tags=["answer"]
# **Written answer: cancel $g^2$ in (5). For which values of $g \sum_{ab} A^k_{ab}$ is $\alpha$ positive, where is it at most ½, and which pixels of a ReLU network lie there? What about $g = 0$?**
#
# ### BEGIN SOLUTION
# Where $g \neq 0$, $\alpha = 1/(2 + c)$ with $c = g \sum_{ab} A^k_{ab}$. It has a **pole** at $c = -2$: positive
# for $c > -2$, negative below. It is at most ½ exactly when $c \geq 0$, and between the pole and 0 it exceeds ½.
# The pixels that count in (2) have $g > 0$, and after a ReLU layer $\sum_{ab} A^k_{ab} \geq 0$: there
# $\alpha \in (0, \tfrac12]$. With signed activations, as in the handwritten example of notebook 01 ($A^1$ and $A^3$
# have negative entries), a map with $\sum_{ab} A^k_{ab} < 0$ can reach the pole, and a channel weight built from
# such pixels can change sign. At $g = 0$, (5) is $0/0$; the cancelled form would say ½, but $\alpha = 0$ is the
# sensible value (the pixel is multiplied by $\mathrm{ReLU}(0) = 0$ in (2) anyway). Section 4 meets a pixel with
# $c \in (-2, 0)$: $A^3$, $g = -0.1$, $\alpha = 0.588$, harmless there because (2) multiplies it by
# $\mathrm{ReLU}(g) = 0$.
# ### END SOLUTION

# %% [markdown]
# ### Exercise 8 (3 points): the closed form, on feature maps
#
# Write `gradcampp_alpha_closed_form(acts, grads)`, formula (5) for every pixel of every map, with $\alpha = 0$
# wherever its denominator is 0 (the gradient 0 included). Do not add a small constant to the denominator to avoid
# the division by zero; section 5 shows what it costs.

# %% tags=["exercise"]
def gradcampp_alpha_closed_form(acts, grads):
    """The Grad-CAM++ pixel weights of formula (5) for every pixel of every map, and 0 where the formula's
    denominator is 0 (Chattopadhay et al., WACV 2018, section 3.3).

    acts, grads: arrays of shape (..., K, H, W). Returns an array of the same shape.
    """
    ### BEGIN SOLUTION
    grads = np.asarray(grads, dtype=np.float64)
    return gradcampp_alphas_general(acts, grads**2, grads**3)
    ### END SOLUTION


# %% tags=["check"]
checks.gradcampp_alpha_closed_form(gradcampp_alpha_closed_form)

# %% [markdown]
# ### Step 6: the channel weights and the map
#
# Back to (2). With $Y = e^S$, $\mathrm{ReLU}(\partial Y / \partial A^k_{ab}) = e^{S}\, \mathrm{ReLU}(g^k_{ab})$. The
# factor $e^{S}$ is the same for every channel $k$, so it scales the whole map by one positive number and leaves the
# normalized map unchanged. We drop it:
#
# $$w_k^c = \sum_{i,j} \alpha^{kc}_{ij}\, \mathrm{ReLU}\big(g^k_{ij}\big), \qquad
# L^c_{\text{Grad-CAM++}} = \mathrm{ReLU}\Big(\sum_k w_k^c A^k\Big). \tag{6}$$
#
# ### Exercise 9 (2 points): the channel weights
#
# Write `gradcampp_weights_from_alphas(alphas, grads)`: shape $(\dots, K, H, W) \to (\dots, K)$.

# %% tags=["exercise"]
def gradcampp_weights_from_alphas(alphas, grads):
    """The Grad-CAM++ channel weights of formula (6) (Chattopadhay et al.'s, without the factor exp(S)).

    alphas, grads: arrays of shape (..., K, H, W). Returns an array of shape (..., K).
    """
    ### BEGIN SOLUTION
    alphas, grads = np.asarray(alphas, dtype=np.float64), np.asarray(grads, dtype=np.float64)
    return (alphas * np.maximum(grads, 0.0)).sum(axis=(-2, -1))
    ### END SOLUTION


# %% tags=["check"]
checks.gradcampp_weights_from_alphas(gradcampp_weights_from_alphas)

# %% [markdown]
# `tinycam.reference` holds the same steps as tested functions: `gradcampp_alphas_from_derivatives` (formula 3),
# `gradcampp_alphas` (formula 5), `gradcampp_weights` and `gradcampp` (formula 6). `tinycam.torch_reference` has their torch
# twins, and `tinycam.explain(..., method="gradcam++")` runs the whole method on a network.

# %% [markdown]
# ## 3. Checked with autograd: exact higher derivatives
#
# Formula (5) rests on (4). Let us test (4) directly, on a network, with no algebra in between. Take a small head
# that maps three 4×4 feature maps to two class scores: a 3×3 convolution, ReLU, 2×2 max-pooling, a linear layer,
# ReLU, a linear layer. That is piecewise linear, like the end of a real CNN. Everything is float64.
#
# `tinycam.derivatives.diagonal_derivatives(fn, acts, order=3)` returns $\partial^n \text{fn} / (\partial
# A^k_{ij})^n$ for $n = 1, 2, 3$ and every pixel of every map. It is exact, without finite differences: each entry
# is an $n$-th derivative along one basis direction $e_{kij}$, obtained by nesting forward-mode autograd
# (`torch.func.jvp`) $n$ times, for all 48 directions at once (`torch.func.vmap`).
#
# For fn we use `exp_score(score, acts)`, which is $Y(A) = \exp(S(A) - S(A_0))$ with $A_0$ the activations we study.
# The constant shift divides every derivative by the same $e^{S(A_0)}$. That cancels in $\alpha$ just as $e^S$ did
# in (5), and it keeps $Y$ from overflowing for large scores. At $A_0$ itself $Y = 1$, so the first derivative is
# $g$ itself, and (4) predicts the second and third derivatives exactly.

# %%
def small_head(activation):
    """A head on 3 maps of 4×4: conv 3×3, activation, max-pool 2, linear, activation, linear -> 2 class scores.
    The same seed gives the same weights whatever the activation."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), activation(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(24, 8), activation(), nn.Linear(8, 2)).double().eval()


head_acts = torch.rand(3, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
CLASS = 1


def exact_and_closed(head):
    """α from formula (3) with the exact derivatives of Y = exp(S − S0), and from the closed form (5)."""

    def score(a):
        return head(a[None])[0, CLASS]

    d1, d2, d3 = diagonal_derivatives(exp_score(score, head_acts), head_acts, order=3)
    g = d1  # at A0, Y = 1, so ∂Y = exp(0)·g = g
    exact = torch_reference.gradcampp_alphas_from_derivatives(head_acts, d2, d3)
    closed = torch_reference.gradcampp_alphas(head_acts, g)
    # ∂²Y = g² + ∂²S at A0: what the second derivative of S itself adds, 0 for a piecewise-linear S
    return dict(g=g, s2=d2 - g**2, d2=d2, d3=d3, exact=exact, closed=closed)


relu_head = exact_and_closed(small_head(nn.ReLU))
g = relu_head["g"]
print(f"d2 Y = g^2 to 1e-12: {bool(torch.allclose(relu_head['d2'], g**2, rtol=0, atol=1e-12))}; "
      f"d3 Y = g^3 to 1e-12: {bool(torch.allclose(relu_head['d3'], g**3, rtol=0, atol=1e-12))}")
gap_between = (relu_head["exact"] - relu_head["closed"]).abs().max().item()
print(f"formula (3) with exact derivatives vs closed form (5): max |difference| below 1e-12: {gap_between < 1e-12}")

# %% [markdown]
# On a piecewise-linear head, the closed form *is* formula (3): autograd's exact third derivatives and the three
# lines of algebra agree to the last bits of float64. `tests/test_gradcampp.py` repeats this on random heads, in
# torch and in NumPy.
#
# ### Breaking the assumption
#
# Now give the same head (same weights) a smooth activation, Softplus $\log(1 + e^x)$ or the sigmoid, instead of
# the ReLU. $\partial^2 S$ and $\partial^3 S$ are no longer zero, so (4) is only approximate and the closed form
# drifts away from formula (3). How far?

# %%
heads = {"ReLU": relu_head, "Softplus": exact_and_closed(small_head(nn.Softplus)),
         "sigmoid": exact_and_closed(small_head(nn.Sigmoid))}


def weights_and_map(alphas, g):
    """Channel weights (6) and the map ReLU(Σ w A), min-max normalized, on the small head's activations."""
    weights = (alphas * g.relu()).sum(dim=(-2, -1))
    return weights, torch_reference.normalize(torch.relu(torch_reference.weighted_combination(weights, head_acts)))


print("head     | median |d2 S| / g^2 | median |alpha closed - exact| / |exact| "
      "| channel weights: exact -> closed form             | map: max |difference|")
for name, h in heads.items():
    curvature = (h["s2"].abs() / h["g"] ** 2).median().item()  # what (4) neglects, relative to what it keeps
    relative = ((h["closed"] - h["exact"]).abs() / h["exact"].abs()).nan_to_num(0.0)  # 0/0 where both are 0
    w_exact, map_exact = weights_and_map(h["exact"], h["g"])
    w_closed, map_closed = weights_and_map(h["closed"], h["g"])
    weights = "  ".join(f"{a:+.4f}->{b:+.4f}" for a, b in zip(w_exact, w_closed))
    curvature_text = f"{curvature:20.1f}" if curvature > 1e-9 else f"{'0':>20s}"
    print(f"{name:8s} | {curvature_text} | {relative.median():38.3f} | {weights} | "
          f"{(map_exact - map_closed).abs().max():.3f}")

# %%
fig, axes = plt.subplots(1, 3, figsize=(11, 3.5), layout="constrained")
for ax, (name, h) in zip(axes, heads.items()):
    ax.scatter(h["exact"].flatten(), h["closed"].flatten(), s=12)
    low = min(h["exact"].min().item(), h["closed"].min().item())
    high = max(h["exact"].max().item(), h["closed"].max().item())
    ax.plot([low, high], [low, high], color="gray", linewidth=0.8, linestyle="--")
    ax.set_title(f"{name} head")
    ax.set_xlabel(r"$\alpha$ from (3), exact derivatives")
axes[0].set_ylabel(r"$\alpha$ from the closed form (5)")
fig.suptitle("48 pixel weights: on the diagonal only when the head is piecewise linear")
plt.show()

# %% [markdown]
# With either smooth activation, the term that (4) neglects is not small: at the median pixel $|\partial^2 S|$ is
# about 12 times $g^2$, because the gradients of this little head are small ($g \approx 5 \cdot 10^{-3}$). Formula
# (3) follows $\partial^2 S$; the closed form, which assumes it is 0, stays near $\alpha = 1/2$. Pixel by pixel they
# differ by a median of 14 % (Softplus) and more than 200 % (sigmoid).
#
# - With Softplus the channel weights move by 17–35 % but keep their order, and the normalized map changes by 0.04.
# - With the sigmoid, formula (3) gives **negative** channel weights: its map is blank, while the closed form's is
#   not.
#
# So on a head that is not piecewise linear, the "closed form" is no longer the paper's formula (3). It is a
# different recipe, which still behaves well, while formula (3) itself can misbehave. The networks of this course are
# ReLU networks, where the two are the same.

# %% [markdown]
# ## 4. The worked example continued
#
# Back to notebook 01's handwritten example: three 2×2 feature maps and their gradient maps, read here as
# $g = \partial S^c/\partial A$. Grad-CAM gave the channel weights 2.75, 4.25, 0.1 and the map
# $\mathrm{ReLU}(L) = [[8.925, 0], [16.125, 2.6]]$. What does Grad-CAM++ give?

# %%
example = lecture.worked_example()
acts, grads = example["acts"], example["grads"]
alphas = reference.gradcampp_alphas(acts, grads)  # formula (5)
weights_pp = reference.gradcampp_weights(acts, grads)  # formula (6)
weights_gc = reference.gradcam_weights(grads)  # notebook 01

for k in range(3):
    print(f"A^{k + 1}: sum of activations {acts[k].sum():4.1f}   alpha (per pixel):")
    print(lecture.format_matrix(alphas[k], digits=4))
print("channel | Grad-CAM weight (mean g) | Grad-CAM++ weight | share of the total: Grad-CAM | Grad-CAM++")
for k in range(3):
    print(f"  A^{k + 1}   | {weights_gc[k]:24.3f} | {weights_pp[k]:17.4f} | "
          f"{weights_gc[k] / weights_gc.sum():27.1%} | {weights_pp[k] / weights_pp.sum():10.1%}")

# %%
fig, axes = plt.subplots(3, 4, figsize=(10, 7.2), layout="constrained")
for k in range(3):
    panels = [(acts[k], f"$A^{k + 1}$", "{:.1f}"), (grads[k], f"$g$ of $A^{k + 1}$", "{:.1f}"),
              (alphas[k], r"$\alpha$", "{:.3f}"),
              (alphas[k] * np.maximum(grads[k], 0), r"$\alpha\,$ReLU$(g)$", "{:.3f}")]
    for ax, (values, title, fmt) in zip(axes[k], panels):
        limit = 1.8 * np.abs(values).max()  # a wide colour range keeps the cells light enough to read
        annotate(ax, values, fmt=fmt, cmap="RdBu_r", vmin=-limit, vmax=limit)
        ax.set_title(title, fontsize=10)
fig.suptitle(r"Grad-CAM++ on the handwritten example: $w_k$ is the sum of the last column's four numbers")
plt.show()

# %% [markdown]
# The table shows the pixel weights, the channel weights and each channel's share of the total weight, for
# Grad-CAM and for Grad-CAM++. Look at the **background kernel** $A^3$ before you read on.

# %% [markdown] tags=["answer"]
# **Written answer: why does $A^3$ get so small a weight in Grad-CAM, and what do the $\alpha$'s of Grad-CAM++ change for it (use the cancelled form of (5))?**
#
# ### BEGIN SOLUTION
# Grad-CAM's weight is the mean gradient: $A^3$'s gradients are tiny (0.1, −0.1, 0.2, 0.2), and the negative one is
# subtracted, so its weight is 0.1 against 2.75 and 4.25, 1.4 % of the total. In the cancelled form,
# $\alpha = 1/(2 + g \sum_{ab} A^k_{ab})$, a pixel with a large gradient gets a small $\alpha$, so each product
# $\alpha\, g = g / (2 + g \sum_{ab} A^k_{ab})$ grows more slowly than $g$; for positive $g$ and $\sum_{ab} A^k_{ab}$
# it never exceeds $1/\sum_{ab} A^k_{ab}$: a map's weight is a sum of **saturating** terms. Large gradients count for
# less than in Grad-CAM, while a small gradient keeps $\alpha$ close to its ceiling of ½. $A^3$'s positive gradients
# (0.1, 0.2) get $\alpha$'s of 0.43 and 0.38, close to ½; $A^1$ and $A^2$, with gradients of 2 to 6, get 0.03 to
# 0.16. And the ReLU drops $A^3$'s negative gradient (−0.1) instead of subtracting it. The share of $A^3$ in the
# total weight rises from 1.4 % to 8.3 %, about six times as much.
# ### END SOLUTION

# %% [markdown]
# The maps, side by side:

# %%
L_gc = reference.gradcam(acts, grads)
L_pp = reference.gradcampp(acts, grads)
L_gc_without_A3 = np.maximum(reference.weighted_combination(weights_gc[:2], acts[:2]), 0.0)
L_pp_without_A3 = np.maximum(reference.weighted_combination(weights_pp[:2], acts[:2]), 0.0)
print("Grad-CAM map:                 Grad-CAM++ map:")
for row_gc, row_pp in zip(lecture.format_matrix(L_gc).splitlines(), lecture.format_matrix(L_pp).splitlines()):
    print(f"{row_gc}      {row_pp}")
print("normalized to [0, 1]:")
for row_gc, row_pp in zip(lecture.format_matrix(reference.normalize(L_gc)).splitlines(),
                          lecture.format_matrix(reference.normalize(L_pp)).splitlines()):
    print(f"{row_gc}      {row_pp}")
change_pp = np.abs(reference.normalize(L_pp) - reference.normalize(L_pp_without_A3)).max()
change_gc = np.abs(reference.normalize(L_gc) - reference.normalize(L_gc_without_A3)).max()
print(f"largest change of the normalized map when A^3 is left out: "
      f"Grad-CAM++ {change_pp:.3f}, Grad-CAM {change_gc:.3f}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(7, 3.4), layout="constrained")
for ax, (values, title) in zip(axes, [(reference.normalize(L_gc), "Grad-CAM, normalized"),
                                      (reference.normalize(L_pp), "Grad-CAM++, normalized")]):
    annotate(ax, values, fmt="{:.3f}", cmap="Reds", vmin=0, vmax=1.6)
    ax.set_title(title, fontsize=10)
plt.show()

# %% [markdown]
# Both maps agree on what matters: the bottom-left pixel carries the most evidence, and the top-right pixel none.
# Grad-CAM++ is flatter. The top-left pixel drops from 0.55 to 0.46 of the peak, and the bottom-right pixel, where
# $A^3 = 2$, rises from 0.16 to 0.20. Leaving the background kernel out now changes the normalized map by 0.08,
# against 0.01 in Grad-CAM. The saturation that is meant to rescue small objects also gives more say to maps the
# score hardly depends on. Keep this in mind for section 6.

# %% [markdown]
# ## 5. What public implementations get wrong, on our numbers
#
# Grad-CAM++ code circulates in a few popular libraries and in the paper's own repository. Three slips recur. Each is
# easy to miss, and each shows on our GAP network. We take the six images of section 1 and
# capture $A$ and $g$ of the class "circle" at the last conv block.

# %%
captured = tinycam.capture(gap_model, images, gap_model.last_conv, target=0)
A, g = captured.acts, captured.grads  # (6, 64, 16, 16) each, float32
nonzero = g[g != 0].abs()
print(f"GAP network, 6 images: |g| has median {nonzero.median():.2e} and maximum {nonzero.max():.2e}")
print(f"g spatially constant in every map of every image: {bool((g == g[..., :1, :1]).all())}")

# %% [markdown]
# The second line follows from the architecture. The score is $S^c = \sum_k W_{ck} \frac{1}{Z}\sum_{ij} A^k_{ij} +
# b_c$, so $g^k_{ij} = W_{ck}/Z$ at every pixel: with $Z = 256$, gradients of about $10^{-3}$.
#
# ### Slip 1: an absolute epsilon in the denominator
#
# To avoid dividing by zero, implementations commonly add a constant $\varepsilon = 10^{-6}$ to the denominator of
# (5). That is negligible when $g \approx 1$. Here, though, $2 g^2 \approx 10^{-6}$ as well, so the
# epsilon is as large as the term it protects:

# %%
def normalized_map(weights, acts_now=A):
    """ReLU(Σ_k w_k A^k), upsampled to 64×64 and min-max normalized, like tinycam.explain."""
    return torch_reference.normalize(torch_reference.upsample(torch.relu(torch_reference.weighted_combination(weights, acts_now)), (64, 64)))


ours = torch_reference.gradcampp_weights(A, g)
total = A.sum(dim=(-2, -1), keepdim=True)
alphas_eps = g**2 / (2 * g**2 + total * g**3 + 1e-6)
with_eps = (alphas_eps * g.relu()).sum(dim=(-2, -1))
relative = ((with_eps - ours).abs() / ours)[ours > 0]
print(f"channel weights with epsilon 1e-6: {relative.median():.0%} smaller in the median channel, "
      f"up to {relative.max():.0%}")
print(f"normalized maps: largest pixel difference {(normalized_map(with_eps) - normalized_map(ours)).abs().max():.3f}")

# the same network in other units: last conv block scaled by 1/10 (A / 10), classifier by 10 (g * 10), same scores
s = 10.0
rescaled_ours = torch_reference.gradcampp_alphas(A / s, g * s)
rescaled_eps = (g * s) ** 2 / (2 * (g * s) ** 2 + (total / s) * (g * s) ** 3 + 1e-6)
rescaled_with_eps = (rescaled_eps * (g * s).relu()).sum(dim=(-2, -1)) / s  # back in the original units
change = ((rescaled_with_eps - with_eps).abs() / with_eps)[with_eps > 0]
print(f"units changed by a factor 10: our alphas unchanged (to float32 rounding): "
      f"{bool(torch.allclose(rescaled_ours, torch_reference.gradcampp_alphas(A, g), rtol=1e-5, atol=0))}; "
      f"epsilon-version channel weights change by {change.median():.0%} in the median channel")

# %% [markdown]
# The epsilon does not shrink every weight by the same factor. Channels with small gradients lose the most, which
# re-weights the channels and changes the map by up to about 5 % of its range. The result also depends on units. A
# ReLU network computes the same scores when its last conv block is scaled by 1/10 and its classifier by 10, but the
# epsilon version's $\alpha$'s change. Our closed form has no epsilon: where the denominator is exactly 0 it returns
# 0, and elsewhere it divides exactly. It is also invariant to that rescaling, $\alpha(A/s,\, s g) = \alpha(A, g)$.
#
# ### Slip 2: normalizing $\alpha$ by its spatial sum
#
# The equations of the paper use $\alpha$ as it is. Its code normalizes it first, and two normalizations are in
# circulation:
#
# - **over the whole map**, as in the authors' repository (`misc/utils.py` of `adityac94/Grad_CAM_plus_plus`):
#   $\tilde\alpha^{kc}_{ij} = \alpha^{kc}_{ij} / \sum_{ab} \alpha^{kc}_{ab}$;
# - **over the pixels with a positive gradient**, as in several ports of that code:
#   $\tilde\alpha^{kc}_{ij} = \alpha^{kc}_{ij} / \sum_{ab:\, g^k_{ab} > 0} \alpha^{kc}_{ab}$.
#
# On the handwritten example they differ only for $A^3$, the one map with a negative gradient, whose $\alpha =
# 0.588$ the first sum includes and the second leaves out. Both written out here, next to the formula without
# normalization:

# %%
def normalized_alpha_weights(acts_now, grads_now, over="map"):
    """Grad-CAM++ weights Σ α̃ ReLU(g) with α̃ = α / Σ α, the sum over the whole map (over="map", the authors' code)
    or over the pixels with g > 0 only (over="positive", some ports); a map whose sum is 0 gets weight 0."""
    alphas_now = torch_reference.gradcampp_alphas(acts_now, grads_now)
    counted = alphas_now if over == "map" else torch.where(grads_now > 0, alphas_now, 0.0)
    total_alpha = counted.sum(dim=(-2, -1), keepdim=True)
    normalized = torch.where(total_alpha != 0, alphas_now / total_alpha.where(total_alpha != 0, 1.0), 0.0)
    return (normalized * grads_now.relu()).sum(dim=(-2, -1))


example_acts, example_grads = (torch.from_numpy(example[key]) for key in ("acts", "grads"))
print("handwritten example, channel weights w_1, w_2, w_3:")
for name, weights in [("alpha as in the equations", torch_reference.gradcampp_weights(example_acts, example_grads)),
                      ("alpha / sum over the map", normalized_alpha_weights(example_acts, example_grads, "map")),
                      ("alpha / sum over g > 0", normalized_alpha_weights(example_acts, example_grads, "positive")),
                      ("mean of ReLU(g)", torch_reference.positive_gradcam_weights(example_grads))]:
    print(f"  {name:26s} " + "  ".join(f"{w:.4f}" for w in weights))

# %% [markdown]
# The two normalizations agree on $A^1$ and $A^2$, where every gradient is positive: there each gives the mean of
# $\mathrm{ReLU}(g)$ weighted by $\alpha$, with the weights summing to 1. For $A^3$ the whole-map sum is larger,
# so its weight is smaller (0.1101 against 0.1639). The pixel weights now only *redistribute* one unit of weight
# within a map; the saturating factor of the unnormalized formula, which makes its $w$ smaller for large
# gradients, is gone.
#
# On a network that ends in global average pooling, $g$ is constant over each map, so $\alpha$ is constant over each
# map. A map with $g^k > 0$ has every pixel positive, both sums are the same, and $\tilde\alpha = 1/Z$ everywhere;
# a map with $g^k \leq 0$ gets weight 0 either way. So both normalizations give
#
# $$w_k^c = \sum_{ij} \frac{1}{Z} \mathrm{ReLU}(g^k_{ij}) = \frac{1}{Z}\sum_{ij}\mathrm{ReLU}(g^k_{ij}) :$$
#
# Grad-CAM's mean, taken over the positive gradients only. The pixel weights, the whole point of the method, drop
# out. We call this **positive-gradient Grad-CAM** (`torch_reference.positive_gradcam`). Lerma and Lucas (2022, "Grad-CAM++ is
# equivalent to Grad-CAM with positive gradients") argue that the two are close in general; here they are equal.

# %%
positive = torch_reference.positive_gradcam_weights(g)
for over in ("map", "positive"):
    same = (normalized_map(normalized_alpha_weights(A, g, over)) - normalized_map(positive)).abs().max().item()
    print(f"alpha / sum over {'the map' if over == 'map' else 'g > 0':7s} vs positive-gradient Grad-CAM, GAP network: "
          f"largest map difference below 1e-5: {same < 1e-5}")
for name, weights in [("positive-gradient Grad-CAM", positive), ("Grad-CAM", torch_reference.gradcam_weights(g))]:
    differences = (normalized_map(ours) - normalized_map(weights)).abs().amax(dim=(-2, -1))
    print(f"our Grad-CAM++ vs {name:27s}: largest map difference per image "
          + " ".join(f"{d:.3f}" for d in differences))

# %% [markdown]
# Either normalized version *is* positive-gradient Grad-CAM, to float32 rounding. Our closed form is not, but it is
# close. On a GAP network $\alpha^{kc} = 1/(2 + c_k)$ is one number per channel, with
# $c_k = g_k \sum_{ab} A^k_{ab} = W_{ck}\cdot\mathrm{mean}(A^k)$, **channel $k$'s contribution to the logit**. So
#
# $$w_k^{\text{Grad-CAM++}} = \frac{Z\,\mathrm{ReLU}(g_k)}{2 + c_k}
# \qquad\text{vs}\qquad w_k^{\text{positive}} = \mathrm{ReLU}(g_k) ,$$
#
# which differ only through the damping $1/(2 + c_k)$ of the channels that contribute most:

# %%
contributions = (g * A).sum(dim=(-2, -1))[g[..., 0, 0] > 0]  # c_k for the channels with a positive gradient
print(f"c_k over the channels with g > 0: median {contributions.median():.2f}, "
      f"90th percentile {contributions.quantile(0.9):.2f}, max {contributions.max():.2f}")
print(f"so 1/(2 + c_k) ranges from {1 / (2 + contributions.max()):.2f} to {1 / (2 + contributions.min()):.2f}")

# %% [markdown]
# On the FC network the gradients vary over the map, and neither normalization reduces Grad-CAM++ to
# positive-gradient Grad-CAM any more; nor do the two agree with each other. Each changes the answer, so each is a
# different method from the one in the paper's equations:

# %%
fc_model = models["fc"]
fc = tinycam.capture(fc_model, images, fc_model.last_conv, target=0)
fc_maps = {"alpha / sum over the map": normalized_map(normalized_alpha_weights(fc.acts, fc.grads, "map"), fc.acts),
           "alpha / sum over g > 0": normalized_map(normalized_alpha_weights(fc.acts, fc.grads, "positive"), fc.acts),
           "alpha as in the equations": normalized_map(torch_reference.gradcampp_weights(fc.acts, fc.grads), fc.acts),
           "positive-gradient Grad-CAM": normalized_map(torch_reference.positive_gradcam_weights(fc.grads), fc.acts)}
print(f"FC network: |g| has median {fc.grads[fc.grads != 0].abs().median():.3f}; largest map difference between")
names = list(fc_maps)
for i, first in enumerate(names):
    for second in names[i + 1:]:
        print(f"  {first:25s} and {second:26s}: {(fc_maps[first] - fc_maps[second]).abs().max():.3f}")

# %% [markdown]
# Normalizing over the pixels with $g > 0$ lands close to positive-gradient Grad-CAM (0.027), normalizing over the
# whole map does not (0.104), and neither is the formula of the equations (0.094 and 0.129 from it). A library's
# "Grad-CAM++" can be any of the three; `tinycam` computes the equations' version.
#
# ### Slip 3: computing $\exp(S)$
#
# The paper's code forms the derivatives (4), factor $e^{S}$ included, explicitly, then divides. The
# largest float32 number is about $3.4 \times 10^{38} = e^{88.7}$, and float16 (mixed precision) stops at 65504
# $= e^{11.1}$:

# %%
print(f"float32: exp(88) = {torch.exp(torch.tensor(88.0)).item():.3e}, "
      f"exp(89) = {torch.exp(torch.tensor(89.0)).item()}")
print(f"float16: exp(11) = {torch.exp(torch.tensor(11.0, dtype=torch.float16)).item():.0f}, "
      f"exp(12) = {torch.exp(torch.tensor(12.0, dtype=torch.float16)).item()}")
print("our class logits for 'circle' on the six images: GAP "
      + ", ".join(f"{s:.1f}" for s in captured.scores[:, 0]) + "; FC " + ", ".join(f"{s:.1f}" for s in fc.scores[:, 0]))

# %% [markdown]
# Both our tiny networks have logits above 11, so in float16 the explicit route overflows. Once $e^S$ is infinite,
# $\alpha = \infty/\infty$ is NaN, and the NaN spreads to every weight. Here is the explicit route in float32 on the
# FC network's gradients, once with a moderate score and once with $S = 89$. The closed form (5) never forms $e^S$,
# so the score can be anything:

# %%
nonzero_g = fc.grads != 0  # where g = 0 the explicit quotient is 0/0 whatever S is; look at the other pixels
for score in (5.0, 89.0):
    growth = torch.exp(torch.tensor(score))  # float32, like the captured tensors
    d2, d3 = growth * fc.grads**2, growth * fc.grads**3
    explicit = d2 / (2 * d2 + fc.acts.sum(dim=(-2, -1), keepdim=True) * d3)
    print(f"float32, S = {score:4.1f}: alpha via exp(S) is NaN at {int(explicit[nonzero_g].isnan().sum())} of "
          f"{int(nonzero_g.sum())} pixels with g != 0")
closed = torch_reference.gradcampp_alphas(fc.acts, fc.grads)
print(f"closed form: finite everywhere {bool(closed.isfinite().all())}, whatever S is (it never sees S)")

# %% [markdown]
# `tests/test_gradcampp.py` pins all three down for `tinycam`: no epsilon (a test shows that a 1e-6 epsilon shifts
# the weights by several percent when $g \approx 10^{-3}$, and that ours is exactly invariant to rescaling), no NaN
# or inf for zero, tiny ($10^{-8}$) or huge scores, and no $\exp$ anywhere.

# %% [markdown]
# ## 6. The multi-instance study
#
# Now the real question: does Grad-CAM++ find the small objects better than Grad-CAM? `tinycam.course.study.run_study`
# answers it on a fixed, seeded set of images. A third show three circles, a third three squares and a third three
# triangles, always one small, one medium and one large. It compares four methods on both networks: CAM (GAP network
# only), Grad-CAM, Grad-CAM++ and positive-gradient Grad-CAM. The metrics come from `tinycam.metrics`, and all are in
# percent:
#
# - **pointing game** (Zhang et al., ECCV 2016): is the map's maximum on an object of the class?
# - **energy pointing game** (Wang et al., Score-CAM, 2020): the share of the map's mass inside the class's masks;
# - per instance, by size: the **mean share** of the mass on it, how often it gets **at least 2 %** of the mass
#   (twice what a uniform map gives a small object), and how often it contains a **local peak** of the map;
# - **Average Drop** and **Increase in Confidence** (Chattopadhay et al., section 5.1): multiply the image by the map
#   and compare the class confidence $\sigma(S^c)$ before and after. Average Drop is the mean relative loss (lower is
#   better), and Increase in Confidence is how often the confidence goes *up* (higher is better).
#
# Here it runs on 90 images (a few seconds). `python -m tinycam study` runs the same study on 1200 images and writes
# `data/study.md`. Some maps have their maximum on a plateau of values that are equal in exact arithmetic (where the
# upsampling clamps at the image border) but differ in float32's last bit, differently on different CPUs; the
# metrics treat values within rounding (1e-6 of the maximum) as equal, so the table is the same on every CPU.

# %%
small_study = study.run_study(n_images=90, seed=study.DEFAULT_SEED)
print(f"{small_study.n_images} images, instances per size: "
      + ", ".join(f"{n} {name}" for (name, _, _), n in zip(study.SIZE_BUCKETS, small_study.instances)))
print("a uniform map would give each instance: "
      + ", ".join(f"{name} {u:.1f}%" for (name, _, _), u in zip(study.SIZE_BUCKETS, small_study.uniform_share)))
print()
print("model method                      | pointing | energy | mean share S / M / L | >= 2% mass S / M / L "
      "| peak on it S / M / L | Avg Drop | Incr Conf")
for r in small_study.rows:
    print(f"{r.model:5s} {study.METHOD_NAMES[r.method]:27s} | {r.pointing_game:8.1f} | {r.energy_pointing_game:6.1f} | "
          + " ".join(f"{v:5.1f}" for v in r.mean_share) + "  | "
          + " ".join(f"{v:5.1f}" for v in r.mass_coverage) + "  | "
          + " ".join(f"{v:5.1f}" for v in r.peak_coverage)
          + f"  | {r.average_drop:8.2f} | {r.increase_in_confidence:9.1f}")

# %%
buckets = [name for name, _, _ in study.SIZE_BUCKETS]
fig, axes = plt.subplots(2, 2, figsize=(11, 6.5), layout="constrained", sharey="row")
for column, model_name in enumerate(("gap", "fc")):
    rows = [r for r in small_study.rows if r.model == model_name]
    width = 0.8 / len(rows)
    for number, r in enumerate(rows):
        offset = (number - (len(rows) - 1) / 2) * width
        label = study.METHOD_NAMES[r.method]
        colour, hatch = STYLE[r.method]
        for row, values in enumerate((r.mean_share, r.peak_coverage)):
            axes[row, column].bar(np.arange(3) + offset, values, width, color=colour, hatch=hatch, edgecolor="black",
                                  linewidth=0.5, label=label)
    axes[0, column].scatter(np.arange(3), small_study.uniform_share, marker="_", s=600, color="black",
                            label="uniform map", zorder=3)
    axes[0, column].set_title(f"{model_name.upper()} network: mean share of the map's mass per instance", fontsize=10)
    axes[1, column].set_title(f"{model_name.upper()} network: instances with a peak of the map on them", fontsize=10)
    for row in range(2):
        axes[row, column].set_xticks(np.arange(3), [f"{b} objects" for b in buckets])
axes[0, 0].set_ylabel("% of the map's mass")
axes[1, 0].set_ylabel("% of the instances")
axes[0, 0].legend(fontsize=9, loc="upper left")
plt.show()

# %% [markdown]
# ### What comes out, honestly
#
# With 90 instances per size, one instance is worth 1.1 points, so the small run above is noisy. The full-size run
# (`python -m tinycam study`: 1200 images, 1200 instances per size, table in `data/study.md`) gives these numbers,
# in %:
#
# | 1200 images | pointing game | energy pointing game | mean share, small | small with ≥ 2 % of mass | small with a peak | large with a peak |
# |---|---:|---:|---:|---:|---:|---:|
# | GAP, CAM | 79.7 | 35.1 | 2.8 | 82.7 | 62.4 | 89.2 |
# | GAP, Grad-CAM | 79.7 | 36.2 | 3.1 | 86.0 | 62.3 | 88.6 |
# | GAP, Grad-CAM++ | 79.9 | 35.7 | 3.2 | 90.1 | 65.8 | 86.8 |
# | GAP, positive-gradient Grad-CAM | 80.2 | 35.8 | 3.2 | 89.7 | 65.5 | 87.9 |
# | FC, Grad-CAM | 62.3 | 35.4 | 2.1 | 57.9 | 13.0 | 62.7 |
# | FC, Grad-CAM++ | 58.9 | 34.3 | 2.3 | 65.8 | 14.4 | 63.6 |
# | FC, positive-gradient Grad-CAM | 61.8 | 35.0 | 2.1 | 57.6 | 13.9 | 62.9 |
#
# - Grad-CAM++ moves **a little** mass to the small objects. Their mean share rises by 0.1–0.2 percentage points,
#   4 (GAP) to 8 (FC) points more of them reach 2 % of the mass, and 1.4 to 3.5 points more of them carry a peak of
#   the map. That is the direction the paper promises, but it is no rescue of the third dog: the small object still
#   has no peak in a third of the images on the GAP network, and in 86 % of them on the FC network.
# - It pays for this elsewhere. Less of its mass lies on the objects at all (energy pointing game down by 0.5 and
#   1.1 points), and on the FC network its maximum lands off every object 3.4 points more often (pointing game).
# - On the GAP network, Grad-CAM++ and positive-gradient Grad-CAM agree to within about a point everywhere: there
#   they are nearly the same method (section 5).
# - Average Drop (0.0–0.6 %) and Increase in Confidence (0.8–2.4 %) hardly separate the methods. The reason is the
#   networks. Their logits for the target class are mostly far above 5, where the sigmoid is flat, so the class
#   survives being multiplied by any of these maps (more on this below).
#
# Why so little? Grad-CAM++ only re-weights **channels**. If one channel fired on the small circle alone, the lecture's
# three-dogs picture would apply and up-weighting that channel would bring the circle back. But the channels of our
# networks are not object detectors for one instance: the same "circle" channels fire on all three circles, and
# re-weighting them moves the three shares together. We can measure this. For every channel with a positive
# gradient, take its own activation map $A^k$ (upsampled) and the share of it that lies on the small circle. With
# non-negative weights, as Grad-CAM++'s are, the raw map $\sum_k w_k A^k$ puts on the small circle a weighted
# average of these channel shares (weighted by $w_k \sum_{ij} A^k_{ij}$). So no weighting of the channels, however
# clever, can give the small circle more than the best single channel does.

# %%
circles = study.study_images(90, study.DEFAULT_SEED)[0][1]  # the 30 circle images of the study
circle_images, circle_masks = torch.from_numpy(circles.images), torch.from_numpy(circles.masks)
cap = tinycam.capture(gap_model, circle_images, gap_model.last_conv, target=0)
B, K = cap.acts.shape[:2]
channel_maps = torch_reference.upsample(cap.acts, (64, 64)).reshape(B * K, 64, 64)
channel_share = metrics.instance_mass(channel_maps, circle_masks.repeat_interleave(K, dim=0)).reshape(B, K, -1)
small_share = channel_share[..., 2]  # slot 2 = the small circle
useful = cap.grads[..., 0, 0] > 0  # channels with a positive weight
best_channel = torch.where(useful, small_share, 0.0).amax(dim=1)
share_of = {name: metrics.instance_mass(normalized_map(fn(cap.acts, cap.grads), cap.acts), circle_masks)[:, 2]
            for name, fn in [("Grad-CAM", lambda a, g: torch_reference.gradcam_weights(g)),
                             ("Grad-CAM++", torch_reference.gradcampp_weights)]}
print(f"share on the small circle, median over {B} images: the best single channel {best_channel.median():.1%}, "
      f"the median channel {small_share[useful].median():.1%}, "
      f"Grad-CAM {share_of['Grad-CAM'].median():.1%}, Grad-CAM++ {share_of['Grad-CAM++'].median():.1%}")

fig, ax = plt.subplots(figsize=(7, 3.2), layout="constrained")
ax.hist(100 * small_share[useful], bins=40, color=STYLE["image"][0], edgecolor="gray", linewidth=0.3,
        label="one channel (g > 0)")
for (name, values), method, line in zip(share_of.items(), ("gradcam", "gradcam++"), ("-", "-.")):
    ax.axvline(100 * values.median(), color=STYLE[method][0], linestyle=line, linewidth=2, label=f"{name} (median)")
ax.axvline(100 * best_channel.median(), color="black", linestyle="--", label="best channel (median)")
ax.set_xlabel("% of the activation mass on the small circle")
ax.set_ylabel("channels × images")
ax.set_title("The channels see all three circles: weighting them cannot single out the small one")
ax.legend(fontsize=9)
plt.show()

# %% [markdown]
# Most channels put a few percent of their mass on the small circle, as the whole map does, and even the best channel
# in an image puts only about 13 % of its mass there (median over the images). Any re-weighting of these channels
# stays in that band.
# Grad-CAM++'s weights are not aimed at the small circle anyway: on the GAP network they damp the channels with
# the largest contribution $c_k$, whichever circle they respond to.
#
# Average Drop needs one more look. Here are the circle images' logits before and after masking with each map:

# %%
with torch.no_grad():
    logit_before = gap_model(circle_images)[:, 0]
    for name, fn in [("Grad-CAM", lambda a, g: torch_reference.gradcam_weights(g)), ("Grad-CAM++", torch_reference.gradcampp_weights)]:
        heat = normalized_map(fn(cap.acts, cap.grads), cap.acts)
        logit_after = gap_model(circle_images * heat[:, None])[:, 0]
        print(f"{name:10s}: median logit {logit_before.median():.1f} -> {logit_after.median():.1f}; "
              f"lowest {logit_before.min():.1f} -> {logit_after.min():.1f}; "
              f"sigmoid of the lowest after: {torch.sigmoid(logit_after.min()):.3f}")

# %% [markdown]
# The masked image loses several logits, but starts so far up the sigmoid that the confidence barely moves. On
# these networks Average Drop measures the saturation of the sigmoid more than the quality of the map. A harder
# protocol (a lower-confidence model, or deleting pixels in the order of the map) would separate the methods better.
#
# The lecture's three dogs are an argument about feature maps that each cover one object. Our small networks do not
# learn such maps, and there Grad-CAM++ behaves as its closed form says it must: it is Grad-CAM with saturating,
# positive-only channel weights. It gives small objects a slightly better chance and costs some precision.

# %% [markdown]
# ## Summary
#
# - **The homework.** From the score Grad-CAM++ assumes, (1) and (2), two derivatives and one equation give $\alpha$
#   (3); with $Y = e^{S}$ and $S$ piecewise linear in $A$, the factor $e^{S}$ cancels and the closed form (5) needs
#   only the activations and one gradient map, with $\alpha = 0$ where $g = 0$. Each step was proved with SymPy and
#   checked on numbers; the derivation is a recipe (one linear layer after GAP, constant $\alpha$'s), not a proof.
# - **The motivation.** The three-dogs mechanism needs one feature map per object and a gradient confined to it:
#   then Grad-CAM weighs the dogs 36 : 9 : 1 by their footprints and Grad-CAM++ 2.84 : 2.45 : 1. On the GAP network
#   the gradient is $W_{ck}/Z$ everywhere, Grad-CAM's weights are the same for every image, and the fading of a
#   small circle is an activation effect.
# - **Checked exactly.** Autograd's exact third derivatives reproduce the closed form to float64 rounding on a
#   piecewise-linear head. On smooth heads the two drift apart, and on a sigmoid head formula (3) even gives
#   negative weights.
# - **The worked example.** $w = (1.391, 0.782, 0.197)$ instead of Grad-CAM's $(2.75, 4.25, 0.1)$: the terms
#   $\alpha g$ saturate, so the background kernel $A^3$ gets six times its Grad-CAM share of the weight.
# - **Three slips.** An absolute epsilon of $10^{-6}$ is as large as $2g^2$ when $g \approx 10^{-3}$. Normalizing
#   $\alpha$ by its spatial sum turns Grad-CAM++ into positive-gradient Grad-CAM on any GAP network. Computing
#   $e^S$ overflows float32 above 88.7 and float16 above 11.1. The closed form avoids all three.
# - **The study.** On our networks Grad-CAM++ gives small objects slightly more of the map (4–8 points more of them
#   reach 2 % of the mass, 1.4–3.5 points more carry a peak) but does not rescue them, and it puts less mass on the
#   objects overall. The channels see all instances alike, so re-weighting channels cannot single one out.
#
# **To go further.** `python -m tinycam study --n 3000 --seed 1` reruns the study on other images. The README shows
# how to explain a pretrained ResNet on your own photo; there, `method="gradcam++"` and `method="gradcam"` can be
# compared on a picture with several objects of one class, such as the lecture's three dogs.
