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
# # 01 · Grad-CAM by hand: the handwritten worked example
#
# A classifier looks at a photo and says "cat". Grad-CAM answers the obvious next question: **where in the image
# is the evidence for "cat"?** The answer is a coarse heatmap, and it is built from two things the network produces
# anyway in one forward and one backward pass: the feature maps of its last convolutional layer, and the gradient of
# the class score with respect to those maps.
#
# This notebook does the whole computation on the lecture's handwritten example, which is small enough to check
# with pencil and paper: three feature maps of 2×2 pixels. On the way you write the three functions at the core of
# Grad-CAM, and check them against the lecture, against `tinycam`'s NumPy reference and against PyTorch's autograd.
#
# **What you will do**
#
# | § | topic | you will |
# |---|---|---|
# | 1 | the setting | meet three feature maps and their gradient maps |
# | 2 | gradients | read a gradient as a rate of change, and measure one |
# | 3 | channel weights | average each gradient map into one weight (**Exercise 1**) |
# | 4 | the map | weight, add and clip the feature maps (**Exercise 2**) |
# | 5 | the "background kernel" | see why the map with the largest values hardly counts |
# | 6 | counterfactuals | find the evidence *against* the class (**Exercise 3**) |
# | 7 | notation | reconcile the lecture notes' two names for the same weight |
# | 8 | autograd | let PyTorch compute the gradient maps |
# | 9 | the whole method | call it in one line, and grow the 2×2 map to image size |
#
# **Graded exercises.** An exercise cell already holds the signature and docstring of your function. Your answer goes
# between `### BEGIN SOLUTION` and `### END SOLUTION` (in your copy that region holds `raise NotImplementedError()`:
# replace it). Then run the check cell below it. The check tries your function on the lecture's example and on
# random arrays, and prints `✓` if every case is right, or `✗` with the expected value, your output and a hint. The
# cells after a check use `tinycam.reference`, the tested implementation the checks compare against, so an
# unfinished exercise never breaks the rest of the notebook. Points: 2 + 2 + 1 = 5.

# %% [markdown]
# ## 1. The setting: three feature maps and their gradients
#
# An image of a cat goes into a CNN. We stop at the **last convolutional layer**, which outputs $K = 3$ feature maps
# $A^1, A^2, A^3$ of $H \times W = 2 \times 2$ pixels each. The number $A^k_{ij}$ says how strongly filter $k$
# responded at row $i$, column $j$. Grad-CAM usually looks at this layer because its maps are already about object
# parts rather than edges and textures, yet they still keep a spatial layout: each pixel stands for a region of the
# input image.
#
# The rest of the network turns these maps into a score $y^c$ for the class $c$ = "cat" (the raw score, taken
# before any softmax). Backpropagation then gives the derivative of $y^c$ with respect to every single activation:
# one **gradient map** $\partial y^c / \partial A^k$ per feature map, with the same 2×2 shape.
#
# The lecture's numbers are stored once, in `data/lecture_example.json`; `lecture.worked_example()` returns them as
# float64 arrays. Throughout, `acts` holds the feature maps and `grads` the gradient maps, both of shape $(K, H, W)$.

# %%
import matplotlib.pyplot as plt
import numpy as np

from tinycam import reference
from tinycam.course import checks, lecture

example = lecture.worked_example()
acts, grads = example["acts"], example["grads"]
K, H, W = acts.shape

print(f"acts,  the feature maps A^k:         shape {acts.shape}")
print(f"grads, the gradient maps dy^c/dA^k:  shape {grads.shape}")
print(f"K = {K} maps of H x W = {H} x {W} pixels, so Z = H*W = {H * W} pixels per map")

# %% [markdown]
# Two remarks before the picture.
#
# - **Indices.** The lecture counts from 1 and NumPy from 0. The lecture's $A^1_{11}$ (map 1, row 1, column 1) is
#   `acts[0, 0, 0]`; its $A^3_{12}$ (map 3, row 1, column 2) is `acts[2, 0, 1]`.
# - **Negative activations.** A real last conv layer usually ends in a ReLU, so its maps contain no negative
#   numbers. The handwritten example has a few (−1 in $A^1$, −2 in $A^3$) to make the arithmetic more
#   interesting. Nothing below depends on it.
#
# The helper below draws maps as heatmaps with the value written in each cell. Red is positive, blue negative, and
# white zero; every map in one row shares the same colour scale, so colours can be compared across a row.

# %%
def show_maps(axes, maps, titles, limit):
    """Draw each 2-D map on its axis with its values written in the cells; colours span -limit (blue) to +limit (red)."""
    for ax, values, title in zip(axes, maps, titles):
        image = ax.imshow(values, cmap="RdBu_r", vmin=-limit, vmax=limit)
        for (i, j), value in np.ndenumerate(values):
            text = f"{value + 0.0:.3f}".rstrip("0").rstrip(".")  # 16.125, 2.6, 0 (and never "-0")
            ax.text(j, i, text, ha="center", va="center", fontsize=12,
                    color="white" if abs(value) > 0.6 * limit else "black")
        ax.set_title(title)
        ax.set_xticks(range(values.shape[1]), [f"j={j + 1}" for j in range(values.shape[1])])
        ax.set_yticks(range(values.shape[0]), [f"i={i + 1}" for i in range(values.shape[0])])
    return image


fig, axes = plt.subplots(2, K, figsize=(10, 6.5), layout="constrained")
image = show_maps(axes[0], acts, [f"feature map $A^{k}$" for k in range(1, K + 1)], np.abs(acts).max())
fig.colorbar(image, ax=axes[0], shrink=0.85, label="activation")
image = show_maps(axes[1], grads, [rf"gradient map $\partial y^c / \partial A^{k}$" for k in range(1, K + 1)],
                  np.abs(grads).max())
fig.colorbar(image, ax=axes[1], shrink=0.85, label="gradient")
fig.suptitle('The handwritten "cat" example: feature maps (top) and their gradient maps (bottom)')
plt.show()

# %% [markdown]
# **Predict first.** Look at the two rows. $A^3$ has the strongest colours of the top row: its values run from −2 to
# 3. But its gradient map is almost white. Before computing anything, which map do you expect the final heatmap to
# follow most closely? Write your guess down. Section 5 returns to it.

# %% [markdown]
# ## 2. A gradient is a rate of change
#
# The top-left entry of the first gradient map is
#
# $$\frac{\partial y^c}{\partial A^1_{11}} = 2 .$$
#
# In words: hold every other activation fixed and move $A^1_{11}$ from its current value 1 to $1 + \varepsilon$. The
# score then changes by about $2\varepsilon$, so one unit of change in $A^1_{11}$ is worth two units of $y^c$. A
# gradient map is twelve such exchange rates, one for each activation.
#
# Mind the direction. The handwritten notes say that the GAP of the gradients gives "the rate of change of
# individual feature map $A^k$ wrt $y^c$". It is the other way round: $\partial y^c / \partial A^k_{ij}$ is the rate
# of change of the **score** with respect to the **activation**, the score's response when the activation moves.
# The cell below moves an activation and watches the score.
#
# We cannot run the lecture's network, because only its numbers were written down. We can still watch this
# happen with the simplest score that has exactly these gradients, a **linear** score whose coefficients are the
# gradient maps $G^k = \partial y^c / \partial A^k$:
#
# $$y^c(A) = \sum_k \sum_{i,j} G^k_{ij}\, A^k_{ij}, \qquad\text{so that}\qquad
# \frac{\partial y^c}{\partial A^k_{ij}} = G^k_{ij}\ \text{ for every } A .$$

# %%
def linear_score(acts_now):
    """The stand-in score y^c = Σ_k Σ_ij G^k_ij A^k_ij, with G the lecture's gradient maps."""
    return float(np.sum(grads * acts_now))


def nudged(acts_now, index, eps):
    """A copy of acts_now with the one activation at `index` = (k, i, j), counted from 0, increased by eps."""
    changed = acts_now.copy()
    changed[index] += eps
    return changed


eps = 0.01
y_before = linear_score(acts)
y_after = linear_score(nudged(acts, (0, 0, 0), eps))
print(f"y^c at the lecture's activations (stand-in score): {y_before:.4f}")
print(f"after A^1_11 += {eps}:                             {y_after:.4f}")
print(f"change of y^c:        {y_after - y_before:.6f}")
print(f"gradient x epsilon:   {grads[0, 0, 0]:.0f} x {eps} = {grads[0, 0, 0] * eps:.6f}")

# %% [markdown]
# Do the same experiment for all twelve activations, one at a time, and divide each change by $\varepsilon$. The
# twelve measured rates rebuild the three gradient maps. This is the *finite-difference* way to get a gradient. It
# costs one extra forward pass per activation: twelve here, millions in a real network. Backpropagation delivers all
# of them from a single backward pass, which is why Grad-CAM can afford to use gradients at all.

# %%
eps = 1e-3
measured = np.zeros_like(acts)
for index in np.ndindex(acts.shape):
    measured[index] = (linear_score(nudged(acts, index, eps)) - y_before) / eps

for k in range(K):
    print(f"measured (change of y^c) / eps for A^{k + 1}:")
    print(lecture.format_matrix(measured[k]))
print(f"equal to the handwritten gradient maps (to 1e-9): {np.allclose(measured, grads, rtol=0, atol=1e-9)}")

# %% [markdown]
# A real network is not linear, so its gradient is the slope *at the current activations*, and "change ≈ gradient ×
# ε" holds only for small ε. To see this, bend the stand-in score with an extra term $(A^1_{11} - 1)^2$. At the
# lecture's activations this term is zero and so is its slope, so the gradient is still 2, but large nudges now
# overshoot:

# %%
a11 = acts[0, 0, 0]


def curved_score(acts_now):
    """linear_score plus (A^1_11 - 1)^2: the same gradient at the lecture's activations, but not a straight line."""
    return linear_score(acts_now) + (acts_now[0, 0, 0] - a11) ** 2


print(f"{'eps':>7}  {'linear: change/eps':>19}  {'curved: change/eps':>19}")
for eps in [1.0, 0.1, 0.01, 0.001]:
    moved = nudged(acts, (0, 0, 0), eps)
    linear_rate = (linear_score(moved) - linear_score(acts)) / eps
    curved_rate = (curved_score(moved) - curved_score(acts)) / eps
    print(f"{eps:7.3f}  {linear_rate:19.4f}  {curved_rate:19.4f}")

# %% [markdown]
# The linear score's rate is 2 for every ε. The curved score's rate approaches 2 as ε shrinks, and that limit is
# what "the derivative is 2" means. Grad-CAM uses only these local rates: it explains the score *at this image*, not
# what would happen after large changes.

# %% [markdown]
# ## 3. One weight per feature map: the average gradient
#
# A gradient map holds one number per pixel. Grad-CAM summarises each map with a single number, the **average of its
# gradients** (global average pooling, GAP, applied to the gradients):
#
# $$\alpha_k^c \;=\; \frac{1}{Z}\sum_{i}\sum_{j} \frac{\partial y^c}{\partial A^k_{ij}}, \qquad Z = H \cdot W .$$
#
# $\alpha_k^c$ says how much the class score depends on feature map $k$ as a whole. If every pixel of $A^k$ goes up
# by the same small $\delta$, then $y^c$ changes by about $Z\,\alpha_k^c\,\delta$. A map with large gradients of one
# sign gets a large weight. A map whose gradients are small, or cancel each other, gets a weight near zero.
#
# ### Exercise 1 (2 points): Grad-CAM weights
#
# Write `gradcam_weights(grads)`, returning $\alpha_k^c$ for every map.
#
# - `grads` has shape $(\dots, K, H, W)$: the last three axes are map, row and column, and there **may be leading
#   batch axes**. The gradient maps of $B$ images form an array of shape $(B, K, H, W)$. The result has shape
#   $(\dots, K)$.
# - Average over the two spatial axes, counted from the end (`axis=(-2, -1)`), so the same code works with and
#   without batch axes.
#
# The next cell runs `checks.gradcam_weights` on the lecture example and on random maps with and without batch axes.

# %% tags=["exercise"]
def gradcam_weights(grads):
    """α_k^c = (1/Z) Σ_ij ∂y^c/∂A^k_ij: the mean of each gradient map.

    grads: array of shape (..., K, H, W). Returns an array of shape (..., K).
    """
    ### BEGIN SOLUTION
    return np.asarray(grads, dtype=np.float64).mean(axis=(-2, -1))
    ### END SOLUTION


# %% tags=["check"]
checks.gradcam_weights(gradcam_weights)

# %%
alphas = reference.gradcam_weights(grads)  # what your function returns for the lecture example
for k in range(K):
    pixels = ", ".join(f"{value:g}" for value in grads[k].ravel())
    print(f"alpha_{k + 1}^c = mean({pixels}) = {alphas[k]:.3f}   (handwritten: {example['alphas'][k]:.3f})")

# %% [markdown]
# $\alpha_2^c = 4.25$ is the largest weight: of the three maps, $A^2$ is the one the "cat" score responds to most.
# $\alpha_3^c = 0.1$ is tiny. The gradients of $A^3$ are small to begin with, and the 0.1 and −0.1 in its top row
# cancel.
#
# <details><summary><b>Think:</b> a map has gradients [[5, −5], [5, −5]]. What is its weight, and is that fair?</summary>
#
# Its weight is 0: on average, raising the whole map changes nothing. Yet each single pixel matters a lot, two of them
# for the class and two against it. Averaging cannot tell "irrelevant" apart from "relevant, with evidence pointing both
# ways". The average also favours maps that cover a large area. Grad-CAM++ (a later notebook) addresses this by
# keeping only the positive gradients and weighting them pixel by pixel.
# </details>

# %% [markdown]
# ## 4. Weighting the maps and keeping the positive evidence
#
# With one weight per map, Grad-CAM scales each feature map by its weight, adds the results pixel by pixel, and
# keeps only the positive part:
#
# $$L^c_{\text{Grad-CAM}} \;=\; \mathrm{ReLU}\Big(\underbrace{\sum_k \alpha_k^c A^k}_{L}\Big),
# \qquad \mathrm{ReLU}(x) = \max(x, 0) .$$
#
# The sum $L$ has the shape of a single feature map, $H \times W$. A positive pixel of $L$ is a location whose
# features raise the class score, weighted by how much the score cares about each feature. The ReLU keeps those and
# sets the rest to zero, because we want the evidence *for* "cat". The negative part returns in section 6.
#
# ### Exercise 2 (2 points): the Grad-CAM map
#
# Write `gradcam_map(weights, acts)`, returning $\mathrm{ReLU}\big(\sum_k w_k A^k\big)$.
#
# - `weights` has shape $(\dots, K)$ and `acts` has shape $(\dots, K, H, W)$, with the same leading batch axes (if
#   any). The result has shape $(\dots, H, W)$.
# - Hint: give the weights two extra axes at the end so that each weight spreads over the pixels of its own map,
#   multiply, then sum over the map axis (`axis=-3`). The ReLU comes **after** the sum.

# %% tags=["exercise"]
def gradcam_map(weights, acts):
    """ReLU(Σ_k w_k A^k): the feature maps weighted, summed over k, and clipped at zero.

    weights: array of shape (..., K); acts: array of shape (..., K, H, W). Returns an array of shape (..., H, W).
    """
    ### BEGIN SOLUTION
    weights = np.asarray(weights, dtype=np.float64)
    acts = np.asarray(acts, dtype=np.float64)
    combination = (weights[..., :, None, None] * acts).sum(axis=-3)
    return np.maximum(combination, 0.0)
    ### END SOLUTION


# %% tags=["check"]
checks.gradcam_map(gradcam_map)

# %%
L = reference.weighted_combination(alphas, acts)  # Σ_k α_k^c A^k, before the ReLU
gradcam_L = np.maximum(L, 0.0)  # what your gradcam_map(alphas, acts) returns

print("L = sum_k alpha_k^c A^k (before the ReLU):")
print(lecture.format_matrix(L))
print("ReLU(L), the Grad-CAM map:")
print(lecture.format_matrix(gradcam_L))
print(f"L matches the handwritten L: {np.allclose(L, example['L'])}; "
      f"ReLU(L) matches the handwritten ReLU(L): {np.allclose(gradcam_L, example['relu_L'])}")

# %% [markdown]
# The picture of the same sum: the three weighted maps $\alpha_k^c A^k$ (top), their sum $L$ and
# $\mathrm{ReLU}(L)$ (bottom), all on one colour scale.

# %%
terms = alphas[:, None, None] * acts  # term k is α_k^c A^k
titles = [f"{alphas[k]:.3f} × $A^{k + 1}$" for k in range(K)] + ["$L$ = sum of the three", "ReLU($L$)"]
fig, axes = plt.subplots(2, K, figsize=(10, 6.5), layout="constrained")  # two rows: the numbers stay legible
image = show_maps([*axes[0], *axes[1, :2]], [*terms, L, gradcam_L], titles, np.abs(L).max())
axes[1, 2].axis("off")
fig.colorbar(image, ax=axes, shrink=0.85)
fig.suptitle(r"Grad-CAM: $\mathrm{ReLU}(\alpha_1^c A^1 + \alpha_2^c A^2 + \alpha_3^c A^3)$")
plt.show()

# %% [markdown]
# Reading the map: the bottom-left pixel, $L_{21} = 16.125$, carries most of the evidence for "cat", the top-left
# pixel a good share of it, and the bottom-right pixel a little. The top-right pixel, $L_{12} = -2.025$, argues
# *against* "cat"; the ReLU sets it to 0.
#
# <details><summary><b>Think:</b> multiply all three weights by 10. What happens to the map, before and after
# scaling it to [0, 1] for display?</summary>
#
# Every pixel of $L$ is multiplied by 10 and the ReLU keeps the same pixels, so the map is 10 times larger. After
# scaling to [0, 1] (as in section 9) it is exactly the same picture. Only the weights' *ratios* and signs matter for
# the displayed map. The next notebook uses this fact: CAM *sums* where Grad-CAM *averages*, a factor of $Z$ apart.
# The two pictures are still not the same: CAM has no ReLU and keeps its negative cells, which changes the
# normalized picture (notebook 02, §7, measures by how much).
# </details>

# %% [markdown]
# ## 5. Why $A^3$ is the "background kernel"
#
# The lecture built $A^3$ on purpose to have the most varied values. Think of a filter that fires on grass or
# carpet: it responds strongly somewhere in most images, but that says nothing about whether the image shows a cat.
# What matters is the weight, not how loud the map is:

# %%
spread = acts.max(axis=(-2, -1)) - acts.min(axis=(-2, -1))
largest_term = np.abs(terms).max(axis=(-2, -1))
for k in range(K):
    print(f"A^{k + 1}: values from {acts[k].min():4.1f} to {acts[k].max():3.1f} (spread {spread[k]:.1f})   "
          f"alpha_{k + 1}^c = {alphas[k]:.3f}   largest |alpha_{k + 1}^c A^{k + 1}| = {largest_term[k]:.3f}")

# %% [markdown]
# $A^3$ has the largest spread (5.0) and the smallest weight (0.1), so its term moves no pixel of $L$ by more than
# 0.3. Drop it altogether and compare:

# %%
L_without_A3 = reference.weighted_combination(alphas[:2], acts[:2])  # α_1 A^1 + α_2 A^2 only
change = np.abs(L - L_without_A3).max()
print("L without the A^3 term:")
print(lecture.format_matrix(L_without_A3))
print(f"largest change of any pixel: {change:.3f}, which is {change / np.abs(L).max():.1%} of the largest |L|")
print(f"the same pixels are positive with and without A^3: {np.array_equal(L > 0, L_without_A3 > 0)}")

# %% [markdown]
# The small weight is doing the work here. Suppose the network had cared about $A^3$ as much as about $A^1$, so that
# $\alpha_3^c$ were equal to $\alpha_1^c$:

# %%
weights_what_if = alphas.copy()
weights_what_if[2] = alphas[0]
L_what_if = reference.weighted_combination(weights_what_if, acts)
print(f"weights {weights_what_if[0]:.3f}, {weights_what_if[1]:.3f}, {weights_what_if[2]:.3f} give L =")
print(lecture.format_matrix(L_what_if))

# %% [markdown]
# The top-right pixel, where the background map is strongest, would now count as evidence for "cat". In the real
# example this does not happen because the class score barely responds to $A^3$, and the gradient measures exactly
# that response. This is the answer to the "predict first" question: the map follows $A^2$ and $A^1$, the maps the
# score is sensitive to, and not the map with the largest values.

# %% [markdown]
# ## 6. The counterfactual map: evidence against the class
#
# The Grad-CAM paper also asks the opposite question: *which regions lower the score for "cat"?* Negate the
# gradients before averaging them (003 writes this weight as $w_k^c$):
#
# $$w_k^c \;=\; \frac{1}{Z}\sum_i\sum_j \left(-\frac{\partial y^c}{\partial A^k_{ij}}\right),
# \qquad \text{counterfactual map} \;=\; \mathrm{ReLU}\Big(\sum_k w_k^c A^k\Big).$$
#
# The paper reports that removing or suppressing what such regions show can make the model *more* confident in
# the class.
#
# ### Exercise 3 (1 point): counterfactual weights
#
# Write `counterfactual_weights(grads)`: shape $(\dots, K, H, W) \to (\dots, K)$ as in Exercise 1, leading batch
# axes included. Write it on its own, without calling your Exercise 1 function: each exercise is graded alone, so a
# slip in one should not cost you the other.

# %% tags=["exercise"]
def counterfactual_weights(grads):
    """w_k^c = (1/Z) Σ_ij −∂y^c/∂A^k_ij: the mean of each negated gradient map.

    grads: array of shape (..., K, H, W). Returns an array of shape (..., K).
    """
    ### BEGIN SOLUTION
    return np.mean(-np.asarray(grads, dtype=np.float64), axis=(-2, -1))
    ### END SOLUTION


# %% tags=["check"]
checks.counterfactual_weights(counterfactual_weights)

# %%
weights_against = reference.counterfactual_weights(grads)
counterfactual_L = reference.counterfactual(acts, grads)  # ReLU(Σ_k w_k^c A^k) with the negated-gradient weights
print("counterfactual weights: " + ", ".join(f"{w:.3f}" for w in weights_against))
print("counterfactual map ReLU(sum_k w_k^c A^k):")
print(lecture.format_matrix(counterfactual_L))
print(f"equal to ReLU(-L): {np.allclose(counterfactual_L, np.maximum(-L, 0.0))}; "
      f"Grad-CAM map - counterfactual map = L: {np.allclose(gradcam_L - counterfactual_L, L)}")

# %% [markdown]
# Negating every weight negates $L$, so the counterfactual map is $\mathrm{ReLU}(-L)$: the negative part of $L$ that
# Grad-CAM's ReLU threw away. The two maps split $L$ by sign, and no pixel can appear in both. Here only the top-right
# pixel survives, with 2.025.
#
# Does removing that region really help the "cat" score? With the linear stand-in score of section 2 we can test it:
# blank one location in all three maps (set $A^k_{ij} = 0$ for every $k$), a tiny version of occluding a patch of
# the image, and see how $y^c$ changes.

# %%
occlusion_change = np.zeros((H, W))
for i, j in np.ndindex(H, W):
    blanked = acts.copy()
    blanked[:, i, j] = 0.0  # remove every feature at location (i, j)
    occlusion_change[i, j] = linear_score(blanked) - y_before
print(f"change of the stand-in score y^c = {y_before:.3f} when one location is blanked in every map:")
print(lecture.format_matrix(occlusion_change))

# %% [markdown]
# Blanking the top-right location *raises* the score (by 2.8); blanking any other location lowers it, and blanking
# the bottom-left one lowers it the most. The two maps agree with this. The numbers differ because Grad-CAM weights
# each map by its *average* gradient $\alpha_k^c$, not by the gradient at each pixel, so $L_{12} = -2.025$ while the
# blanking costs exactly $-\sum_k G^k_{12} A^k_{12} = 2.8$. On this example the signs agree everywhere.
#
# This also corrects a sentence of the handwritten notes, "negative values may indicate regions not related to
# $y^c$". The negative cell is related to $y^c$, negatively: removing it raised the score by 2.8, more than removing
# the bottom-right location lowered it (2.1). Negative values mark evidence **against** the class. A region
# unrelated to the class would have $L_{ij} \approx 0$, and blanking it would leave the score alone.

# %%
fig, axes = plt.subplots(1, 3, figsize=(11, 3.6), layout="constrained")
image = show_maps(axes, [L, gradcam_L, counterfactual_L],
                  ["$L$", "Grad-CAM: ReLU($L$)", "counterfactual: ReLU($-L$)"], np.abs(L).max())
fig.colorbar(image, ax=axes, shrink=0.85)
fig.suptitle('Evidence for "cat" (middle) and against it (right): the positive and negative parts of $L$')
plt.show()

# %% [markdown]
# ## 7. One notation for four sets of notes
#
# The lecture material uses two notations for the same weight. The handwritten example (001) and the Grad-CAM slides
# (002) call the Grad-CAM channel weight $\alpha_k^c$. The attribution slides (003) and the CNN slides (004) call it
# $w_k^c$, and 003 keeps $\alpha$ for Grad-CAM++'s *per-pixel* weights $\alpha^{kc}_{ij}$. This notebook follows 001.
# The code follows 003: any per-map weight is called `weights`, and `alphas` always means Grad-CAM++'s per-pixel
# weights.
#
# | symbol | meaning | where it appears | in `tinycam.reference` |
# |---|---|---|---|
# | $A^k_{ij}$ | activation of feature map $k$ at row $i$, column $j$ (001 writes $A_1, A_2, A_3$ for the maps) | all | `acts`, shape $(\dots, K, H, W)$ |
# | $Z$ | number of pixels of one feature map, $H \cdot W$ | 002, 003, 004 | the mean over `axis=(-2, -1)` |
# | $y^c$, $Y^c$ | score of class $c$ before the softmax ($y^c$ in 001, 002, 004; $Y^c$ in 003) | all | the number `grads` is the gradient of |
# | $S_c(I)$ | also the pre-softmax class score (class-model visualisation in 003 and 004); careful: 004 writes $S^c$ for the *Grad-CAM map* | 003, 004 | — |
# | $\partial y^c / \partial A^k_{ij}$ | gradient map: rate of change of the score per unit of $A^k_{ij}$ | all | `grads`, same shape as `acts` |
# | $\alpha_k^c$ (001, 002) $= w_k^c$ (003, 004) | Grad-CAM channel weight, the mean of gradient map $k$ | all | `gradcam_weights(grads)` (Exercise 1) |
# | $w_k^c$ with $-\partial y^c/\partial A$ | counterfactual weight | 003 | `counterfactual_weights(grads)` (Exercise 3), map: `counterfactual(acts, grads)` |
# | $\sum_k \alpha_k^c A^k$ | localization map before the ReLU ($L$ in 001) | 001 | `weighted_combination(weights, acts)` |
# | $L^c_{\text{Grad-CAM}}$ | $\mathrm{ReLU}$ of that sum, the Grad-CAM map | 001, 002, 003 ($S^c$ in 004) | `gradcam(acts, grads)`, or Exercise 2 |
# | $F^k$ | global average pool of feature map $k$ | 003 | `gap(acts)` |
# | $w_k^c$ in CAM | the classifier's weight from pooled map $k$ to class $c$ | 003, 004 | `cam(acts, class_weights)`, `cam_weights_from_gradients(grads)` (next notebook) |
# | $\alpha^{kc}_{ij}$ | Grad-CAM++'s per-pixel weight | 003 | `gradcampp_alphas(acts, grads)` |
# | $w_k^c = \sum_{ij} \alpha^{kc}_{ij}\,\mathrm{ReLU}(\partial Y^c/\partial A^k_{ij})$ | Grad-CAM++ channel weight | 003 | `gradcampp_weights(acts, grads)`; map: `gradcampp(acts, grads)` |
#
# $w_k^c$ therefore means three different things in 003: the CAM classifier weight, the Grad-CAM weight, and the
# Grad-CAM++ weight. In each formula, check which method it belongs to. The CAM and Grad-CAM weights differ only by
# the factor $Z$, which is the subject of the next notebook.

# %% [markdown]
# ## 8. Autograd computes the gradient maps for us
#
# Nobody types gradient maps by hand in practice: a framework's automatic differentiation computes them. As a check
# that "gradient map" means the same thing to PyTorch as to the lecture, write the linear stand-in score in torch.
# Make the activations a **leaf tensor** that requires gradients, and ask `torch.autograd.grad` for
# $\partial Y / \partial A$. Everything is float64, like the NumPy reference, so the comparison can be exact.

# %%
import torch

acts_torch = torch.tensor(acts, dtype=torch.float64, requires_grad=True)  # a leaf: autograd differentiates w.r.t. it
grads_lecture = torch.tensor(grads, dtype=torch.float64)  # the handwritten gradient maps G, as constants
score = (grads_lecture * acts_torch).sum()  # Y = Σ_k Σ_ij G^k_ij A^k_ij
(grads_autograd,) = torch.autograd.grad(score, acts_torch)

difference = (grads_autograd - grads_lecture).abs().max().item()
print(f"Y = {score.item():.3f}; autograd's dY/dA has shape {tuple(grads_autograd.shape)}")
print(f"max |autograd - handwritten| = {difference:.1e}: "
      + ("autograd returns exactly the lecture's gradient maps" if difference == 0 else "they differ"))

# %% [markdown]
# From autograd's gradients, the reference functions give the same weights and the same $L$ as the handwritten page:

# %%
alphas_autograd = reference.gradcam_weights(grads_autograd.numpy())
L_autograd = reference.weighted_combination(alphas_autograd, acts)
print("alphas from autograd's gradients: " + ", ".join(f"{alpha:.3f}" for alpha in alphas_autograd))
print("L from autograd's gradients:")
print(lecture.format_matrix(L_autograd))
print(f"equal to the lecture's L (to 1e-12): {np.allclose(L_autograd, example['L'], rtol=0, atol=1e-12)}")

# %% [markdown]
# With a real network the only change is where $Y$ comes from: the class score of a forward pass, with the
# activations of the chosen layer captured along the way. Later notebooks do exactly that. They use `tinycam.torch_reference`,
# the torch twin of `tinycam.reference`, which has the same function names and equations and works on batches of
# tensors.

# %% [markdown]
# ## 9. The whole method in one call
#
# `reference.gradcam(acts, grads)` performs Exercises 1 and 2 in one call, and it accepts leading batch axes too:

# %%
one_call = reference.gradcam(acts, grads)
print("reference.gradcam(acts, grads):")
print(lecture.format_matrix(one_call))
print(f"same as the step-by-step map of section 4: {np.allclose(one_call, gradcam_L)}; "
      f"same as the handwritten ReLU(L): {np.allclose(one_call, example['relu_L'])}")

# a batch of two "images": the lecture example, and the same activations with negated gradients
batch_maps = reference.gradcam(np.stack([acts, acts]), np.stack([grads, -grads]))
print(f"a batch: acts of shape {np.stack([acts, acts]).shape} give maps of shape {batch_maps.shape}")
print(f"map 0 is the Grad-CAM map: {np.allclose(batch_maps[0], gradcam_L)}; "
      f"map 1 (negated gradients) is the counterfactual map: {np.allclose(batch_maps[1], counterfactual_L)}")

# %% [markdown]
# The handwritten example ends by laying the map over the original image. The map has only 2×2 pixels, so two steps
# come first. `reference.normalize` rescales it to [0, 1], since only relative values matter (section 4).
# `reference.upsample` then resizes it to the image's size by bilinear interpolation, the same resize as torch's
# `F.interpolate(..., mode="bilinear", align_corners=False)`. Each of the four pixels becomes a smooth patch
# covering a quarter of the image.

# %%
heatmap = reference.normalize(one_call)
heatmap_large = reference.upsample(heatmap, (64, 64))
print("normalized Grad-CAM map:")
print(lecture.format_matrix(heatmap))
print(f"upsampled from {heatmap.shape} to {heatmap_large.shape}; values still in "
      f"[{heatmap_large.min():.3f}, {heatmap_large.max():.3f}]")

fig, axes = plt.subplots(1, 2, figsize=(8, 3.8), layout="constrained")
axes[0].imshow(heatmap, cmap="inferno", vmin=0, vmax=1)
for (i, j), value in np.ndenumerate(heatmap):
    axes[0].text(j, i, f"{value:.3f}", ha="center", va="center", fontsize=12,
                 color="black" if value > 0.6 else "white")
axes[0].set_title("normalized map, 2×2")
image = axes[1].imshow(heatmap_large, cmap="inferno", vmin=0, vmax=1)
axes[1].set_title("upsampled to 64×64, ready to overlay")
for ax in axes:
    ax.set_xticks([])
    ax.set_yticks([])
fig.colorbar(image, ax=axes, shrink=0.85)
plt.show()

# %% [markdown]
# The same walk-through, step by step as text, is printed in a terminal by
#
# ```bash
# python -m tinycam lecture
# ```

# %% [markdown]
# ## Summary
#
# - A gradient map $\partial y^c / \partial A^k$ contains rates of change: the entry 2 means one unit more of that
#   activation gives about two units more class score, for small changes.
# - **Grad-CAM** averages each gradient map into one weight, $\alpha_k^c = \frac{1}{Z}\sum_{ij} \partial y^c /
#   \partial A^k_{ij}$, adds up the feature maps with these weights, and keeps the positive part:
#   $\mathrm{ReLU}\big(\sum_k \alpha_k^c A^k\big)$. In the example: weights 2.75, 4.25, 0.1 and the map
#   [[8.925, 0], [16.125, 2.6]].
# - A map with large activations can still count for little. The "background kernel" $A^3$ varies the most but gets
#   the weight 0.1, because the score barely responds to it.
# - Negating the gradients gives the **counterfactual** map, $\mathrm{ReLU}(-L)$: where the evidence is against the
#   class.
# - Autograd gives the gradient maps; `reference.gradcam` does the rest in one call, batches included.
#
# **Next: CAM.** Grad-CAM extends an older method, the class activation map. There the network ends in global
# average pooling followed by one linear layer, and the weights of each feature map come straight from that
# classifier, with no gradients needed. The next notebook derives that CAM's classifier weights and Grad-CAM's
# average gradients differ only by the factor $Z$, so the two maps are equal up to $Z$ *and Grad-CAM's ReLU*:
# CAM keeps the negative cells that Grad-CAM clips.
