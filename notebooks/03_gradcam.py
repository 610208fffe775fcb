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
# # 03 · Grad-CAM on trained networks: class-discriminative maps, counterfactuals and the choice of layer
#
# Notebook 01 did Grad-CAM with pencil and paper on three 2×2 feature maps. Notebook 02 showed that CAM needs a
# network that ends in global average pooling and a single linear layer. This notebook runs **Grad-CAM** (Selvaraju
# et al., ICCV 2017) on two small CNNs that were really trained. One ends in global average pooling, so CAM would
# work too. The other ends in fully connected layers, where CAM does not apply and Grad-CAM does. Each image shows
# circles, squares and triangles on grass, and each object comes with a pixel mask. That lets us go beyond looking
# at heatmaps and **measure** where a map puts its mass.
#
# > **Reading the sources.** The lecture material cites the three papers in different ways; here is what was
# > published.
# > - **CAM**: Zhou, Khosla, Lapedriza, Oliva and Torralba, "Learning Deep Features for Discriminative
# >   Localization", CVPR 2016.
# > - **Grad-CAM**: Selvaraju, Cogswell, Das, Vedantam, Parikh and Batra, "Grad-CAM: Visual Explanations from Deep
# >   Networks via Gradient-based Localization", ICCV 2017, pp. 618–626. An extended version with the same title is
# >   in the *International Journal of Computer Vision* 128, pp. 336–359, in the February **2020** issue (online
# >   since October 2019). The Grad-CAM slides (002) cite it as "IJCV, 2021", a year in which no version appeared,
# >   and as IJCV 2019 in their reference list (the online date); the attribution slides (003) cite ICCV 2017.
# > - **Grad-CAM++**: Chattopadhay, Sarkar, Howlader and Balasubramanian, WACV **2018**, pp. 839–847; 002 says
# >   "WACV, 2021". The paper has two titles: "Grad-CAM++: Improved Visual Explanations for Deep Convolutional
# >   Networks" on arXiv (1710.11063, where the first author is spelled Chattopadhyay), the title the slides use, and
# >   "Grad-CAM++: Generalized Gradient-Based Visual Explanations for Deep Convolutional Networks" in the WACV
# >   proceedings. Both name the same method.
#
# **What you will do**
#
# | § | topic | you will |
# |---|---|---|
# | 1 | the setting | load two trained networks and a test image with a circle and a square |
# | 2 | Grad-CAM step by step | capture $A$ and $\partial y^c/\partial A$, average, weight, clip, upsample |
# | 3 | which score | see why $y^c$ is the logit and not the probability |
# | 4 | any architecture | run the same steps on the fully connected network |
# | 5 | Grad-CAM in torch | write the weights and the map for batched tensors (**Exercises 1 and 2**) |
# | 6 | class-discriminative | one map per class, measured against the object masks, also under occlusion |
# | 7 | counterfactuals | map the evidence *against* a class (**Exercise 3**) and test it |
# | 8 | the layer | compare an early, a middle and the last layer |
# | 9 | two implementations | check NumPy against torch, and the CPU against a GPU if one is present |
# | 10 | explore | try any image, class, layer and method in an interactive explorer |
#
# **Graded exercises.** As in the earlier notebooks, your answer goes between `### BEGIN SOLUTION` and
# `### END SOLUTION` (in your copy that region holds `raise NotImplementedError()`), and the check cell below it
# prints `✓`, or `✗` with a hint. The checks use float64 tensors, so keep the dtype you are given. The cells after a
# check use `tinycam.torch_reference`, the tested torch implementation, so an unfinished exercise never breaks the rest of the
# notebook. Points: 2 + 2 + 1 = 5.

# %% [markdown]
# ## 1. Two trained networks and a test image
#
# `tinycam.load_model` returns two small multi-label CNNs with their trained weights. Each returns three **logits**
# per image, one per class (circle, square, triangle). A class is predicted present when its sigmoid is above 0.5,
# that is, when its logit is positive. Both networks have the same first nine modules, `features.0` to `features.8`
# (the input normalization, then three 3×3 convs with their ReLUs and two max pools between them). They share this
# *architecture*, not its weights: the FC network started from the GAP network's trained trunk and then trained
# all of its layers further (the first cell below measures how far they moved). After that:
#
# | | `"gap"` (GapNet) | `"fc"` (FcNet) |
# |---|---|---|
# | last conv block | `features.10`: 64 maps of 16×16 | `features.11`: 16 maps of 8×8 |
# | head | global average pooling, then `Linear(64, 3)` | flatten, `Linear(1024, 32)`, ReLU, `Linear(32, 3)` |
# | CAM applies? | yes | no |
#
# `model.last_conv` holds the name of the last conv block, the layer Grad-CAM usually explains. The test images are
# made with seed 10000, the seed on which both networks' accuracy was measured (98.6 % and 99.2 % of the labels
# right), so the networks have never seen them.

# %%
import warnings

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import tinycam
from tinycam import metrics, reference, torch_reference
from tinycam.course import checks, lecture
from tinycam.course.plotting import HEATMAP_CMAP, overlay, show_grid, to_numpy
from tinycam.shapes import CLASSES, make_images

torch.manual_seed(0)
models = {name: tinycam.load_model(name) for name in ("gap", "fc")}
CIRCLE, SQUARE, TRIANGLE = range(3)

test = make_images(400, seed=10000)
both = np.flatnonzero((test.labels[:, CIRCLE] == 1) & (test.labels[:, SQUARE] == 1))
print(f"{len(both)} of the first {len(test)} test images hold at least one circle and one square")

EXAMPLE = 33  # a test image with one circle and one square
image = torch.from_numpy(test.images[EXAMPLE : EXAMPLE + 1])  # (1, 3, 64, 64): a batch of one
objects = ", ".join(f"a {CLASSES[c]} of size {s:.0f} px" for c, s in
                    zip(test.object_classes[EXAMPLE], test.object_sizes[EXAMPLE]) if c >= 0)
print(f"test image {EXAMPLE}: {objects}")
for i in range(9):  # the shared architecture: same module types; the weights differ
    gap_module, fc_module = models["gap"].features[i], models["fc"].features[i]
    assert type(gap_module) is type(fc_module)
    if isinstance(gap_module, nn.Conv2d):
        moved = (gap_module.weight - fc_module.weight).abs().max() / gap_module.weight.abs().max()
        print(f"features.{i} ({type(gap_module).__name__}): largest weight difference between the networks "
              f"{moved:.0%} of the GAP network's largest weight")
for name, model in models.items():
    with torch.no_grad():
        logits = model(image)[0]
    text = "   ".join(f"{c} {y:+6.2f} (p = {p:.3f})" for c, y, p in zip(CLASSES, logits, torch.sigmoid(logits)))
    print(f"{name:>3} logits: {text}")

# %% [markdown]
# Both networks are confident that there is a circle and a square, and that there is no triangle. The masks tell us
# where the objects really are. `class_masks` merges the masks of all objects of one class into one mask per class.

# %%
def class_masks(world):
    """One boolean mask per class: the union of that class's object masks, a tensor (N, 3, H, W)."""
    return torch.from_numpy(np.stack([world.class_masks(c) for c in range(len(CLASSES))], axis=1))


example_masks = class_masks(test[EXAMPLE])[0]
titles = [f"test image {EXAMPLE}", *[f"ground truth: {c} mask" for c in CLASSES]]
fig = show_grid([[image[0], *example_masks.float()]], titles=titles, cmap="gray", size=2.2)
plt.show()

# %% [markdown]
# ## 2. Grad-CAM on the GAP network, step by step
#
# The recipe is the one from notebook 01. Only the source of the numbers changes:
#
# 1. run the image forward and keep the feature maps $A^k$ ($k = 1 \dots K$) of the chosen layer;
# 2. backpropagate the class score $y^c$ to that layer, which gives the gradient maps $\partial y^c / \partial A^k$;
# 3. average each gradient map into one weight,
#    $\displaystyle \alpha_k^c = \frac{1}{Z}\sum_i\sum_j \frac{\partial y^c}{\partial A^k_{ij}}$ with $Z = h \cdot w$;
# 4. weight, add and clip: $L^c_{\text{Grad-CAM}} = \mathrm{ReLU}\big(\sum_k \alpha_k^c A^k\big)$, an
#    $h \times w$ map (a weighted **sum**: the CNN slides (004) call it "a weighted average", but the weights are
#    neither normalized to add up to 1 nor all positive);
# 5. upsample it to the image's size and lay it over the image.
#
# `tinycam.capture(model, images, layer, target)` does steps 1 and 2 for a whole batch. It returns the feature maps
# `acts`, the gradient maps `grads` (both of shape $(B, K, h, w)$), the logits `scores`, and the class explained for
# each image. `target` is one class for all images, one per image, or `None` for each image's top class.

# %%
gap_model = models["gap"]
captured = tinycam.capture(gap_model, image, gap_model.last_conv, target=CIRCLE)
acts, grads = captured.acts, captured.grads
print(f"layer {gap_model.last_conv}: acts {tuple(acts.shape)}, grads {tuple(grads.shape)}, "
      f"logits {tuple(captured.scores.shape)}, target {CLASSES[int(captured.targets[0])]}")

weights = torch_reference.gradcam_weights(grads)[0]  # α_k^c, (K,)
order = torch.argsort(weights, descending=True)
top, bottom = int(order[0]), int(order[-1])
print(f"alpha_k^circle: {int((weights > 0).sum())} positive, {int((weights < 0).sum())} negative; "
      f"largest {weights[top]:+.4f} (map {top}), smallest {weights[bottom]:+.4f} (map {bottom})")

# %% [markdown]
# Each of the 64 feature maps gets one weight. Positive weights belong to features whose presence raises the circle
# logit, and negative weights to features that lower it. The numbers are small because $Z = 16 \cdot 16 = 256$: the
# score averages each map over 256 positions, so one activation on its own moves it very little.

# %%
def draw_weights(ax, weights, title):
    """Bar chart of one weight per feature map: orange for positive, hatched blue for negative (Okabe-Ito colours,
    told apart without colour vision too)."""
    weights = to_numpy(weights)
    positive = weights > 0
    ax.bar(np.flatnonzero(positive), weights[positive], color="#E69F00", width=0.8, label="positive")
    ax.bar(np.flatnonzero(~positive), weights[~positive], color="#0072B2", hatch="//", edgecolor="white", width=0.8,
           label="negative")
    ax.legend(loc="upper right", fontsize=9, ncols=2)
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_xlabel("feature map k")
    ax.set_ylabel(r"$\alpha_k^c$")
    ax.set_xlim(-1, len(weights))
    ax.set_title(title, fontsize=10)


fig, axes = plt.subplots(1, 2, figsize=(11, 2.9), width_ratios=[1, 4], layout="constrained")
axes[0].imshow(to_numpy(image[0]))
axes[0].axis("off")
axes[0].set_title(f"test image {EXAMPLE}", fontsize=10)
draw_weights(axes[1], weights, r"GAP network, class circle: $\alpha_k^c$ = mean of gradient map $k$")
plt.show()

# %% [markdown]
# Which maps matter most for *this* image? A map's share in $L$ is its weight times its activations. The figure
# shows the four maps with the largest positive contribution $\alpha_k^c \sum_{ij} A^k_{ij}$, and the one with the
# most negative contribution. Under each feature map is its gradient map.

# %%
def draw_top_maps(acts, grads, weights, n_top=4):
    """The feature maps with the largest positive contributions α_k Σ A^k and the most negative one, with their
    gradient maps below; one colour scale per row."""
    contribution = weights * acts.sum(dim=(-2, -1))
    ranked = torch.argsort(contribution, descending=True)
    chosen = [*ranked[:n_top].tolist(), int(ranked[-1])]
    fig, axes = plt.subplots(2, len(chosen), figsize=(2.2 * len(chosen), 4.6), layout="constrained")
    act_top = float(acts[chosen].max())
    grad_top = float(grads[chosen].abs().max())
    for col, k in enumerate(chosen):
        axes[0, col].imshow(to_numpy(acts[k]), cmap="viridis", vmin=0, vmax=act_top)
        axes[0, col].set_title(f"$A^{{{k}}}$, " + rf"$\alpha$ = {weights[k]:+.4f}", fontsize=9)
        image_g = axes[1, col].imshow(to_numpy(grads[k]), cmap="RdBu_r", vmin=-grad_top, vmax=grad_top)
        axes[1, col].set_title(rf"$\partial y^c/\partial A^{{{k}}}$", fontsize=9)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(image_g, ax=axes[1], shrink=0.8, label="gradient")
    return fig


fig = draw_top_maps(acts[0], grads[0], weights)
fig.suptitle("GAP network, class circle: the four largest positive contributions and the most negative one")
plt.show()

# %% [markdown]
# Two things stand out.
#
# - **The gradient maps are flat.** In the GAP network the score is
#   $y^c = \sum_k w_k^c \frac{1}{Z}\sum_{ij} A^k_{ij} + b^c$, so every pixel of map $k$ has the same gradient
#   $w_k^c / Z$. Grad-CAM's average therefore returns the classifier's weight divided by $Z$: on this network
#   Grad-CAM is CAM up to the constant $Z$ *and the ReLU*. CAM keeps its negative cells, Grad-CAM clips them, and
#   after normalization the two heatmaps differ on all 64 images of notebook 02 (by 0.075 in the median image,
#   0.323 at most; notebook 02, §7).
# - **Features come in near-copies.** The four strongest contributions come from maps that look almost the same:
#   a trained network often spreads one feature over several channels. The most negative contribution comes from a
#   map that fires on the grass away from the circle.
#
# Now steps 4 and 5: the weighted sum $L$ (signed), its ReLU, the bilinear upsampling to 64×64, and the overlay.

# %%
def draw_steps(image, acts, weights, title):
    """L (signed), ReLU(L), the map upsampled and normalized to [0, 1], and the overlay, in one row."""
    L = torch_reference.weighted_combination(weights, acts)  # (h, w)
    heatmap = torch_reference.normalize(torch_reference.upsample(torch.relu(L), image.shape[-2:]))
    limit = float(L.abs().max())
    fig, axes = plt.subplots(1, 4, figsize=(12, 3.4), layout="constrained")
    signed = axes[0].imshow(to_numpy(L), cmap="RdBu_r", vmin=-limit, vmax=limit)
    fig.colorbar(signed, ax=axes[0], shrink=0.8)
    raw = axes[1].imshow(to_numpy(torch.relu(L)), cmap=HEATMAP_CMAP, vmin=0, vmax=limit)
    fig.colorbar(raw, ax=axes[1], shrink=0.8)  # the same scale as L: ReLU only removes the blue part
    scaled = axes[2].imshow(to_numpy(heatmap), cmap=HEATMAP_CMAP, vmin=0, vmax=1)
    fig.colorbar(scaled, ax=axes[2], shrink=0.8)
    axes[3].imshow(to_numpy(overlay(image, heatmap)))
    h, w = L.shape
    titles = [rf"$L = \sum_k \alpha_k^c A^k$ ({h}×{w})", r"ReLU($L$)", "upsampled, normalized", "overlay"]
    for ax, text in zip(axes, titles):
        ax.set_title(text, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title)
    return fig


draw_steps(image[0], acts[0], weights, "GAP network, class circle")
plt.show()

# %% [markdown]
# The positive part of $L$ sits on the circle, a little brighter near its rim than in its middle. The square is
# light blue: its features argue
# *against* "circle", and the ReLU removes them. Upsampling turns each of the 16×16 cells (4×4 image pixels each)
# into a smooth patch. `tinycam.explain` runs all five steps in one call, and its result is this very map:

# %%
one_call = tinycam.explain(gap_model, image, gap_model.last_conv, method="gradcam", target=CIRCLE)
step_by_step = torch_reference.normalize(torch_reference.upsample(torch_reference.gradcam(acts, grads), image.shape[-2:]))
print(f"explain: shape {tuple(one_call.shape)}, values in [{one_call.min():.1f}, {one_call.max():.1f}]; "
      f"equal to the step-by-step map: {torch.allclose(one_call, step_by_step, atol=1e-6)}")

# %% [markdown]
# ## 3. Why $y^c$ is the logit, not the probability
#
# Grad-CAM differentiates the **score before the output non-linearity**: the logit $y^c$, not the probability
# $p^c = \sigma(y^c)$. What would change if we used the probability? For a sigmoid output the chain rule gives
#
# $$\frac{\partial p^c}{\partial A^k_{ij}} = \sigma'(y^c)\,\frac{\partial y^c}{\partial A^k_{ij}},
# \qquad \sigma'(y) = \sigma(y)\,\big(1 - \sigma(y)\big) > 0 .$$
#
# Every gradient is multiplied by the same positive number $\sigma'(y^c)$. So are the weights, $\alpha_k^c \to
# \sigma'(y^c)\,\alpha_k^c$, and the map $\mathrm{ReLU}(\sum_k \alpha_k^c A^k)$, since a positive factor passes
# through the ReLU. Only the **normalized** map is unchanged. The factor can be tiny, though. A confident network
# has large logits, where the sigmoid is flat: $\sigma'(10) \approx 4.5\cdot10^{-5}$. In float32, $\sigma(y)$ rounds
# to exactly 1 once $y$ is above about 16.6, and from there on the gradient of the probability is exactly zero and
# the map is blank. To see this, put a sigmoid on top of each network and capture the gradients of the probability.
# The same layer module is passed, since the wrapped model's layers have new names.

# %%
def probability_gradients(model, images, target):
    """∂p^c/∂A at the last conv block, with p = sigmoid(y): the same model with a sigmoid on top."""
    with_sigmoid = nn.Sequential(model, nn.Sigmoid())
    layer = model.get_submodule(model.last_conv)  # the same module, reached through the wrapper
    return tinycam.capture(with_sigmoid, images, layer, target=target).grads


pair = torch.from_numpy(test.images[both[:50]])  # the first 50 test images with a circle and a square
for name, model in models.items():
    captured_y = tinycam.capture(model, image, model.last_conv, target=CIRCLE)
    grads_p = probability_gradients(model, image, CIRCLE)
    y, g = captured_y.scores[0, CIRCLE].double(), captured_y.grads.flatten().double()
    slope = torch.sigmoid(y) * (1 - torch.sigmoid(y))  # σ'(y), in float64
    factor = (grads_p.flatten().double() @ g) / (g @ g)  # the number that turns dy/dA into dp/dA
    map_y = torch_reference.normalize(torch_reference.gradcam(captured_y.acts, captured_y.grads))
    map_p = torch_reference.normalize(torch_reference.gradcam(captured_y.acts, grads_p))
    print(f"{name:>3}, image {EXAMPLE}: circle logit {y:.2f}, sigma'(y) = {slope:.2e}; "
          f"dp/dA = sigma'(y) x dy/dA (to 5 %): {bool(abs(factor / slope - 1) < 0.05)}; "
          f"same normalized map: {torch.allclose(map_p, map_y, atol=1e-4)}")
    with torch.no_grad():
        logits = model(pair)
    for c in (CIRCLE, SQUARE):
        with warnings.catch_warnings(record=True) as caught:  # the warning is what this loop counts; print it short
            warnings.simplefilter("always")
            blank = probability_gradients(model, pair, c).flatten(1).abs().amax(dim=1) == 0
        warned = any("gradient is zero everywhere" in str(w.message) for w in caught)
        print(f"     {CLASSES[c]:>6} on 50 images: gradient of p exactly zero (a blank map) on {int(blank.sum()):2d}; "
              f"largest logit {logits[:, c].max():.1f}; capture warned: {'yes' if warned else 'no'}")
print("(tinycam.capture warns when a gradient is zero everywhere for an image: its Grad-CAM map would be blank)")

# %% [markdown]
# On the example image the probability's gradients are the logit's gradients times $\sigma'(y)$, as derived: the
# weights and the raw map shrink by that factor, and the normalized maps are the same. For the FC network the factor
# is already tiny, and float32 knows it only to a few per cent: $\sigma(13.02)$ lies so close to 1 that $1 - \sigma$
# spans just a few dozen float32 steps. Across 50 images, the FC network, which produces larger logits, would give a
# blank probability map for about a third of them. The logit never saturates, so its gradient always carries the
# information.
#
# For a network with a **softmax** output, as on ImageNet, there is a second reason:
# $\partial p^c / \partial A = p^c \big(\partial y^c/\partial A - \sum_{c'} p^{c'}\, \partial y^{c'}/\partial A\big)$
# mixes in the gradients of *all the other classes*, so the map would no longer explain class $c$ alone. The slides
# (004) say it directly: $y^c$ is "the logit corresponding to class $c$".

# %% [markdown]
# ## 4. Any architecture: the fully connected network
#
# CAM needs the GAP + linear head. Grad-CAM needs only gradients, so the same five steps run unchanged on the FC
# network, at its last conv block `features.11` (16 maps of 8×8).

# %%
fc_model = models["fc"]
captured_fc = tinycam.capture(fc_model, image, fc_model.last_conv, target=CIRCLE)
acts_fc, grads_fc = captured_fc.acts, captured_fc.grads
weights_fc = torch_reference.gradcam_weights(grads_fc)[0]
spread = grads_fc[0].flatten(1).std(dim=1)
print(f"layer {fc_model.last_conv}: acts {tuple(acts_fc.shape)}; "
      f"alpha_k^circle: {int((weights_fc > 0).sum())} positive, {int((weights_fc < 0).sum())} negative")
print(f"spread of the gradients within a map (std over its pixels): "
      f"GAP network {grads[0].flatten(1).std(dim=1).max():.4f}, FC network up to {spread.max():.4f}")

fig, ax = plt.subplots(figsize=(6, 2.6), layout="constrained")
draw_weights(ax, weights_fc, r"FC network, class circle: $\alpha_k^c$ for the 16 maps")
plt.show()

# %%
fig = draw_top_maps(acts_fc[0], grads_fc[0], weights_fc)
fig.suptitle("FC network, class circle: feature maps and their (no longer flat) gradient maps")
plt.show()

# %% [markdown]
# Now the gradient maps vary from pixel to pixel. Behind the flatten, every position has its own weights in the
# fully connected layers, and the ReLU in between switches some of them off. The average $\alpha_k^c$ sums up each
# map's pattern in one number. Grad-CAM's claim is that this is still a good weight for the map, and the result is a
# map of the same kind:

# %%
draw_steps(image[0], acts_fc[0], weights_fc, "FC network, class circle (8×8 before upsampling)")
plt.show()

# %% [markdown]
# The FC network's map is coarser (8×8 cells of 8×8 pixels each), but it too lands on the circle. Both networks
# agree on where the circle evidence is, although only one of them allows CAM.

# %% [markdown]
# ## 5. Grad-CAM in torch, for a batch
#
# `capture` returns tensors of shape $(B, K, h, w)$: one set of $K$ maps per image. The Grad-CAM equations are the
# ones you wrote in NumPy in notebook 01, now with the batch axis first. The check passes **float64** tensors, so keep
# the dtype (no `.float()`). The visible example is the lecture's worked example as a batch of one image, so you know
# the answer: weights $[2.75, 4.25, 0.1]$ and the map $[[8.925, 0], [16.125, 2.6]]$.

# %%
worked = lecture.worked_example()
example_acts = torch.tensor(worked["acts"])[None]  # (1, 3, 2, 2), float64
example_grads = torch.tensor(worked["grads"])[None]
print(f"example_acts: {tuple(example_acts.shape)} {example_acts.dtype}; "
      f"example_grads: {tuple(example_grads.shape)} {example_grads.dtype}")

# %% [markdown]
# ### Exercise 1 (2 points): Grad-CAM weights for a batch
#
# Write `gradcam_weights_torch(grads)`: for `grads` of shape $(B, K, h, w)$, return the tensor of weights
# $\alpha_k^c$ of shape $(B, K)$, one weight per image and feature map. Use torch operations only (no NumPy).

# %% tags=["exercise"]
def gradcam_weights_torch(grads):
    """α_k^c = (1/Z) Σ_ij ∂y^c/∂A^k_ij for each image and feature map.

    grads: tensor of shape (B, K, h, w). Returns a tensor of shape (B, K).
    """
    ### BEGIN SOLUTION
    return grads.mean(dim=(-2, -1))
    ### END SOLUTION


# %% tags=["check"]
checks.gradcam_weights_torch(gradcam_weights_torch)

# %% [markdown]
# ### Exercise 2 (2 points): the Grad-CAM map for a batch
#
# Write `gradcam_torch(acts, grads)`: for `acts` and `grads` of shape $(B, K, h, w)$, return
# $\mathrm{ReLU}\big(\sum_k \alpha_k^c A^k\big)$ for every image, a tensor of shape $(B, h, w)$. Compute the weights
# inside (you may call your `gradcam_weights_torch`). Broadcasting does the weighting: `weights[:, :, None, None]`
# has shape $(B, K, 1, 1)$.

# %% tags=["exercise"]
def gradcam_torch(acts, grads):
    """ReLU(Σ_k α_k^c A^k) for each image of a batch, with α the mean of each gradient map.

    acts, grads: tensors of shape (B, K, h, w). Returns a tensor of shape (B, h, w).
    """
    ### BEGIN SOLUTION
    weights = grads.mean(dim=(-2, -1))
    return torch.relu((weights[:, :, None, None] * acts).sum(dim=1))
    ### END SOLUTION


# %% tags=["check"]
checks.gradcam_torch(gradcam_torch)

# %% [markdown]
# `tinycam.torch_reference.gradcam` is the tested version of your function. It runs on the batch, on whatever device the
# tensors are on, with no loop over images. One call gives the circle maps of all 50 test images of section 3:

# %%
captured_pair = tinycam.capture(gap_model, pair, gap_model.last_conv, target=CIRCLE)
batch_maps = torch_reference.gradcam(captured_pair.acts, captured_pair.grads)
one_by_one = torch.stack([torch_reference.gradcam(*tinycam.capture(gap_model, pair[i : i + 1], gap_model.last_conv,
                                                         target=CIRCLE)[:2])[0] for i in range(10)])
print(f"50 images in one batch: maps {tuple(batch_maps.shape)}; the first 10 "
      f"same as one image at a time: {torch.allclose(batch_maps[:10], one_by_one, rtol=1e-5, atol=1e-6)}")

# %% [markdown]
# ## 6. Class-discriminative maps
#
# A map for "circle" should light up circles and not squares. The Grad-CAM paper calls this being
# **class-discriminative**, and it is what Grad-CAM offers over gradient images that look much the same for every
# class (notebook 04). Here is the map for each class present in the example image, on both networks:

# %%
panels, labels = [], []
for name, model in models.items():
    row = [image[0]]
    for c in (CIRCLE, SQUARE):
        heatmap = tinycam.explain(model, image, model.last_conv, method="gradcam", target=c)[0]
        row.append(overlay(image[0], heatmap))
    panels.append(row)
    labels.append(f"{name} network")
fig = show_grid(panels, titles=["image", "Grad-CAM for circle", "Grad-CAM for square"], row_labels=labels, size=2.4)
plt.show()

# %% [markdown]
# Each class's map lands on its own object. One picture proves little, so we measure. For a map $L \ge 0$ and the
# mask $M$ of all objects of a class, the **energy-based pointing game** (Wang et al., Score-CAM, CVPR workshops
# 2020) is the share of the map's mass inside the mask:
#
# $$\text{share}(L, M) = \frac{\sum_{ij} L_{ij} M_{ij}}{\sum_{ij} L_{ij}} \in [0, 1] .$$
#
# `tinycam.metrics.energy_pointing_game(maps, masks)` computes it for a batch. We compute it on the 50 test images
# that hold both a circle and a square (some hold triangles too), for the map of each class, with each class's mask.
# The last row is a **flat map**: its share is just the fraction of the image the objects cover, the score of a map
# that knows nothing.
#
# The maps of all 50 images come from one capture per network and class. The same capture also gives the
# counterfactual maps of section 7, which use the same $A$ and $\partial y^c/\partial A$.

# %%
pair_masks = class_masks(test[both[:50]])  # (50, 3, 64, 64)
object_area = pair_masks.float().mean(dim=(0, 2, 3))  # what a flat map scores

raw_maps, heatmaps = {}, {}  # keyed by (network, class, method)
for name, model in models.items():
    for c in (CIRCLE, SQUARE, TRIANGLE):
        captured_c = tinycam.capture(model, pair, model.last_conv, target=c)
        for method, combine in (("gradcam", torch_reference.gradcam), ("counterfactual", torch_reference.counterfactual)):
            raw_maps[name, c, method] = combine(captured_c.acts, captured_c.grads)  # (50, h, w)
            # as tinycam.explain returns them: upsampled to 64 x 64 and scaled to [0, 1] per image
            heatmaps[name, c, method] = torch_reference.normalize(torch_reference.upsample(raw_maps[name, c, method], pair.shape[-2:]))


def mass_table(method):
    """Mean share of the map's mass on each class's objects and on the background, per network and target class
    (the class masks do not overlap, so the background gets what the objects leave)."""
    rows = {}
    for name in models:
        for c in (CIRCLE, SQUARE):
            shares = torch.stack([metrics.energy_pointing_game(heatmaps[name, c, method], pair_masks[:, k])
                                  for k in range(3)], dim=1)
            rows[(name, c)] = torch.cat([shares.mean(dim=0), 1 - shares.sum(dim=1).mean(dim=0, keepdim=True)])
    return rows


def print_table(rows, method_name):
    print(f"{'network':>7}  {method_name + ' for':<22}" + "".join(f"{'on ' + c + 's':>13}" for c in CLASSES)
          + f"{'background':>12}")
    for (name, c), shares in rows.items():
        print(f"{name:>7}  {CLASSES[c]:<22}" + "".join(f"{s:13.3f}" for s in shares))
    flat = [*object_area.tolist(), 1 - float(object_area.sum())]
    print(f"{'':>7}  {'(flat map)':<22}" + "".join(f"{s:13.3f}" for s in flat[:3]) + f"{flat[3]:12.3f}")


gradcam_rows = mass_table("gradcam")
print_table(gradcam_rows, "Grad-CAM")

# %% [markdown]
# Read the table by rows. The circle map puts about 36 % of its mass on circles, 3.4 times the 10.6 % of a flat map,
# and only 2 to 3 % on squares, less than a third of a flat map's 8.2 %. The square map does the mirror image. Both
# networks are clearly class-discriminative.
#
# The largest entry, though, is the **background**, 61 to 67 %. Part of this is resolution: a 16×16 or 8×8 map,
# upsampled, spills over each object's border, and small objects cover only a few cells. Part is what the networks
# look at: many feature maps fire on the *outline* of a shape, half inside and half outside the mask. A map can find
# the right object without being a segmentation of it, and this metric is strict about the difference.
#
# One more caution. `explain` scales every map to [0, 1], so a map is always drawn at full strength, even for a class
# that is not in the image. The raw peak of $\mathrm{ReLU}(L)$, before the scaling, tells the two cases apart:

# %%
no_triangle = torch.from_numpy(test.labels[both[:50], TRIANGLE] == 0)
for name in models:
    peaks = {c: raw_maps[name, c, "gradcam"][no_triangle].flatten(1).amax(dim=1) for c in (CIRCLE, TRIANGLE)}
    print(f"{name:>3}: median raw peak of the map, on the {int(no_triangle.sum())} images without a triangle: "
          f"circle {peaks[CIRCLE].median():.3f}, triangle {peaks[TRIANGLE].median():.3f}")

# %% [markdown]
# Before the scaling, the triangle map of an image without triangles is 5 (GAP) to 25 (FC) times weaker than the
# circle map. After the scaling both look equally bright. Keep the raw values (or the logit) at hand when you read
# a heatmap.
#
# **Under occlusion.** The attribution slides (003), citing the Grad-CAM++ paper, list among Grad-CAM's limitations
# "unsatisfactory localization performance, especially under occlusion". The masks let us measure it. We take 50
# test images that hold a circle and no square, and paste in front of each circle a square from another test image,
# chosen so that it hides 25 to 60 % of the circle. The circle's *visible* mask is its mask minus the square's. Then
# we compare the circle map of each image with and without the square in front.

# %%
circle_masks, square_masks = test.class_masks(CIRCLE), test.class_masks(SQUARE)
hosts = np.flatnonzero(circle_masks.any(axis=(1, 2)) & ~square_masks.any(axis=(1, 2)))  # a circle, no square
donors = np.flatnonzero(square_masks.any(axis=(1, 2)) & ~circle_masks.any(axis=(1, 2)))  # a square, no circle
occlusions = []  # (host, donor, share of the circle hidden): the first donor that hides 25-60 % of the host's circle
for host in hosts:
    hidden = [(square_masks[d] & circle_masks[host]).sum() / circle_masks[host].sum() for d in donors]
    fitting = [(d, share) for d, share in zip(donors, hidden) if 0.25 <= share <= 0.6]
    if fitting:
        occlusions.append((host, *fitting[0]))
occlusions = occlusions[:50]
host_ids = np.array([h for h, _, _ in occlusions])
donor_ids = np.array([d for _, d, _ in occlusions])
alone = torch.from_numpy(test.images[host_ids])
square_in_front = torch.from_numpy(square_masks[donor_ids])  # (50, 64, 64)
occluded = torch.where(square_in_front[:, None], torch.from_numpy(test.images[donor_ids]), alone)
full_circle = torch.from_numpy(circle_masks[host_ids])
visible_circle = full_circle & ~square_in_front
print(f"{len(occlusions)} circles, {np.median([share for _, _, share in occlusions]):.0%} of each hidden in the median; "
      f"circle area {full_circle.float().mean():.3f} of the image, visible {visible_circle.float().mean():.3f}")
print(f"{'network':>7}  {'circle':<9}{'detected':>9}{'peak on the (visible) circle':>30}{'mass on it':>12}"
      f"{'mass / area':>13}{'peak on the square':>20}")
for name, model in models.items():
    for label, pictures, mask in (("alone", alone, full_circle), ("occluded", occluded, visible_circle)):
        with torch.no_grad():
            detected = torch.sigmoid(model(pictures)[:, CIRCLE]) > 0.5
        maps = tinycam.explain(model, pictures, model.last_conv, method="gradcam", target=CIRCLE)
        peak = metrics.pointing_game(maps, mask)
        mass = metrics.energy_pointing_game(maps, mask).mean()
        on_square = int(metrics.pointing_game(maps, square_in_front).sum()) if label == "occluded" else 0
        print(f"{name:>7}  {label:<9}{int(detected.sum()):>6} of 50{int(peak.sum()):>23} of 50{mass:12.3f}"
              f"{mass / mask.float().mean():13.2f}{on_square:>14} of 50")

# %% [markdown]
# The slide's limitation shows up, in one of two senses. The **peak** of the map lands on the circle less often
# when a square hides part of it (36 → 25 of 50 images on the GAP network, 40 → 27 on the FC network), and it almost
# never jumps to the square. Part of this is the network itself: with a square in front it no longer detects the
# circle in about a fifth of the images, and a map cannot localize what the score no longer sees. The **mass** on
# the circle drops too (from 36 % to 26–27 %), but only because less of the circle is visible: per unit of visible
# area the map is *more* concentrated on the circle than before (3.7–3.8 times the area's share, against 2.9). What
# remains visible is found; the peak is what becomes unreliable.

# %% [markdown]
# ## 7. Counterfactual maps: the evidence against a class
#
# Negate the gradients and the same recipe shows the regions that **lower** the class score. Selvaraju et al. call
# these *counterfactual explanations*; slide 003 writes the weight as
#
# $$w_k^c = \frac{1}{Z}\sum_i\sum_j \left(-\frac{\partial y^c}{\partial A^k_{ij}}\right), \qquad
# \text{counterfactual map} = \mathrm{ReLU}\Big(\sum_k w_k^c A^k\Big) = \mathrm{ReLU}(-L) .$$
#
# The paper's claim: removing or suppressing what such regions show should make the network *more* confident in $c$.
#
# ### Exercise 3 (1 point): the counterfactual map for a batch
#
# Write `counterfactual_torch(acts, grads)`, shapes as in Exercise 2. For the visible example, notebook 01 gave the
# answer $[[0, 2.025], [0, 0]]$.

# %% tags=["exercise"]
def counterfactual_torch(acts, grads):
    """ReLU(Σ_k w_k^c A^k) with w_k^c the mean of each *negated* gradient map, for each image of a batch.

    acts, grads: tensors of shape (B, K, h, w). Returns a tensor of shape (B, h, w).
    """
    ### BEGIN SOLUTION
    weights = (-grads).mean(dim=(-2, -1))
    return torch.relu((weights[:, :, None, None] * acts).sum(dim=1))
    ### END SOLUTION


# %% tags=["check"]
checks.counterfactual_torch(counterfactual_torch)

# %% [markdown]
# `tinycam.explain(..., method="counterfactual")` gives the same map, upsampled and scaled. For the example image:
# the Grad-CAM map and the counterfactual map of each class.

# %%
panels, labels = [], []
for name, model in models.items():
    row = []
    for c in (CIRCLE, SQUARE):
        for method in ("gradcam", "counterfactual"):
            heatmap = tinycam.explain(model, image, model.last_conv, method=method, target=c)[0]
            row.append(overlay(image[0], heatmap))
    panels.append(row)
    labels.append(f"{name} network")
titles = ["circle: Grad-CAM", "circle: counterfactual", "square: Grad-CAM", "square: counterfactual"]
fig = show_grid(panels, titles=titles, row_labels=labels, size=2.4)
plt.show()

# %% [markdown]
# The evidence against "circle" sits on the square, and the evidence against "square" sits on the circle. The same
# measurement as in section 6, for the counterfactual maps of the 50 images:

# %%
counterfactual_rows = mass_table("counterfactual")
print_table(counterfactual_rows, "counterfactual")

# %% [markdown]
# The counterfactual map of a class puts almost nothing on that class's own objects (below 1 %). It puts about twice
# a flat map's share on the *other* shapes: 16 to 17 % on squares for "circle", 18 to 23 % on circles for "square",
# and 4 to 6 % on triangles, which cover 2 % of the image. Three quarters of its mass lies on the background, about
# as much as for a flat map. So the counterfactual map says "the other shapes, and a lot of grass". It is not a
# sharp picture of competing objects.
#
# **Testing the claim.** If the counterfactual region really argues against the class, blurring it away should
# *raise* the logit, and blurring the Grad-CAM region should lower it. We blend each image with a 9×9 box blur of
# itself, using the map as the blending weight, $x' = (1 - m)\,x + m\,\mathrm{blur}(x)$. The blur wipes out outlines
# and corners but keeps the colours, so it removes the shape information these networks rely on.

# %%
blurred = F.avg_pool2d(pair, kernel_size=9, stride=1, padding=4, count_include_pad=False)
print(f"{'network':>7}  {'class':<7}{'blurring the region of':>24}{'mean change of logit':>22}{'logit went up':>15}")
for name, model in models.items():
    with torch.no_grad():
        logits = model(pair)
    for c in (CIRCLE, SQUARE):
        for method in ("gradcam", "counterfactual"):
            m = heatmaps[name, c, method][:, None]  # (50, 1, 64, 64), the blending weight
            with torch.no_grad():
                change = model((1 - m) * pair + m * blurred)[:, c] - logits[:, c]
            print(f"{name:>7}  {CLASSES[c]:<7}{method:>24}{change.mean():+22.2f}{int((change > 0).sum()):>9d} of 50")

# %% [markdown]
# The claim holds on most images, though not all. Blurring the counterfactual region raises the class logit on 40 to
# 48 of the 50 images, by about one to one and a half on average. Blurring the Grad-CAM region lowers it on every
# image, and by much more. The asymmetry makes sense: the evidence *for* a class is one object, while the evidence
# against it is spread over other objects and the background.

# %% [markdown]
# ## 8. Which layer? Resolution against class-discriminativeness
#
# Grad-CAM works at any convolutional layer; only the tensors `capture` returns change. The CNN slides (004) say
# Grad-CAM "can be computed with respect to any layer, not just the output layer". Read "output layer" as the
# *last convolutional layer*, the layer CAM is tied to; the network's output layer (the logits) has no spatial
# maps to weight. Early layers have fine feature maps (64×64 after the first conv), but their features are colours and
# edges, which say little about the class. The last layer has coarse maps whose features are parts of shapes. We
# compare the ReLU after each of the four convs, on both networks (the FC network's last one is `features.11`),
# over the same 50 images. The table gives each map's mass share on its own class and on the other class, and how
# many of the 50 maps are blank, that is, $\mathrm{ReLU}(L) = 0$ everywhere:

# %%
layers = {"gap": ["features.2", "features.5", "features.8", "features.10"],
          "fc": ["features.2", "features.5", "features.8", "features.11"]}
print(f"{'network':>7}  {'layer':<12}{'K x h x w':>10}  {'circle map on':>21}  {'square map on':>21}  "
      f"{'blank maps':>13}")
print(f"{'':>7}  {'':<12}{'':>10}  {'circles':>10}{'squares':>11}  {'squares':>10}{'circles':>11}  "
      f"{'circle':>6}{'square':>7}")
for name, model in models.items():
    for layer in layers[name]:
        shares, blank = [], []
        for c in (CIRCLE, SQUARE):
            if layer == model.last_conv:  # computed in section 6 already
                raw = raw_maps[name, c, "gradcam"]
            else:
                captured_l = tinycam.capture(model, pair, layer, target=c)
                raw = torch_reference.gradcam(captured_l.acts, captured_l.grads)
            scaled = torch_reference.normalize(torch_reference.upsample(raw, pair.shape[-2:]))  # what explain returns
            shares.append([metrics.energy_pointing_game(scaled, pair_masks[:, k]).mean() for k in (c, 1 - c)])
            blank.append(int((raw.flatten(1).amax(dim=1) == 0).sum()))
        size = "x".join(str(n) for n in tinycam.capture(model, pair[:1], layer, target=c).acts.shape[1:])
        print(f"{name:>7}  {layer:<12}{size:>10}  {shares[0][0]:10.3f}{shares[0][1]:11.3f}  "
              f"{shares[1][0]:10.3f}{shares[1][1]:11.3f}  {blank[0]:6d}{blank[1]:7d}")
print(f"{'':>7}  {'(flat map)':<12}{'':>10}  {object_area[CIRCLE]:10.3f}{object_area[SQUARE]:11.3f}  "
      f"{object_area[SQUARE]:10.3f}{object_area[CIRCLE]:11.3f}")

# %%
panels = [[image[0]], [None]]
for layer in layers["gap"]:
    for row, c in zip(panels, (CIRCLE, SQUARE)):
        row.append(overlay(image[0], tinycam.explain(gap_model, image, layer, method="gradcam", target=c)[0]))
sizes = ["64×64", "32×32", "16×16", "16×16"]
titles = ["image", *[f"{layer} ({size})" for layer, size in zip(layers["gap"], sizes)]]
fig = show_grid(panels, titles=titles, row_labels=["circle map", "square map"], size=2.3)
plt.show()

# %% [markdown]
# What the table and the figure show (the GAP network in the figure, first layer on the left):
#
# - **`features.2`** (the first conv, 8 maps of 64×64) is sharp but blind to the class. Its weighted sum is
#   negative almost everywhere, so after the ReLU most maps are nearly or completely blank: 39 of the 50 square maps
#   on the GAP network, 47 on the FC network. On average the circle maps put less mass on circles than a flat map
#   would (7 and 8 %), and at least as much on squares. Eight colour and edge filters cannot say "circle".
# - **`features.5`** (32 maps of 32×32) finds the objects, but mostly their **outlines**, and it marks the other
#   class's outlines too. Its circle map puts 10 to 14 % on squares, more than a flat map.
# - **`features.8`** (64 maps of 16×16) is already as class-discriminative as the last block, and on the square it
#   scores higher (40 and 50 % against 34 and 30 %). Its circle map traces the circle's rim. The last conv layer is
#   a good default, not a law.
# - **the last block** blends each object into one blob and keeps the other class's share at 2 to 3 %.
#
# Fine resolution and class-discriminativeness do not come from the same layer: the slides (002) sum up Grad-CAM
# as class-discriminative ✓, high-resolution ✗. Guided Grad-CAM (notebook 04) gets both at once, by multiplying the
# coarse class map with a fine, pixel-level gradient image.

# %% [markdown]
# ## 9. Two implementations, two devices: do they agree?
#
# `tinycam.reference` (NumPy) and `tinycam.torch_reference` (torch) implement the same equations under the same names. Give
# them the *same* captured tensors, in float64, and they must agree to rounding error:

# %%
acts64, grads64 = captured_pair.acts.double(), captured_pair.grads.double()
numpy_maps = reference.gradcam(acts64.numpy(), grads64.numpy())  # NumPy, float64
torch_maps = torch_reference.gradcam(acts64, grads64)  # torch, float64
difference = np.abs(numpy_maps - torch_maps.numpy()).max()
print(f"50 GAP-network circle maps of shape {numpy_maps.shape[1:]}, computed twice")
print(f"float64: max |numpy - torch| < 1e-12: {difference < 1e-12}")

# in float32, the precision the network runs in, torch agrees only to about 1e-7 relative
difference32 = np.abs(numpy_maps - torch_reference.gradcam(captured_pair.acts, captured_pair.grads).double().numpy()).max()
print(f"float32 torch vs float64 numpy: max difference < 1e-5 x largest map value: "
      f"{difference32 < 1e-5 * numpy_maps.max()}, but < 1e-12: {difference32 < 1e-12}")

# %% [markdown]
# The maths can also run on a GPU. The cell below prints which device this notebook found. Its output differs from
# machine to machine, so the tests ignore it.

# %%
# NBVAL_IGNORE_OUTPUT
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
print(f"device: {torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU only (no CUDA GPU found)'}")

# %% [markdown]
# The verdict below prints the same text on any machine. With a GPU it compares the GPU's results with the CPU's.
# Without one, the "other device" is the CPU again and the comparison is trivially true. Two comparisons, both in
# float64: `torch_reference.gradcam` on the same captured tensors, and the whole `tinycam.explain` pipeline, forward and
# backward pass included, with the network converted to float64. (In float32 a GPU may agree only to about
# $10^{-3}$: it sums in a different order, and by default PyTorch lets its convolutions use the faster, less precise
# TF32 format.)

# %%
on_device = torch_reference.gradcam(acts64.to(device), grads64.to(device)).cpu()
maths_agree = bool((on_device - torch_maps).abs().max() < 1e-12)
gap64 = tinycam.load_model("gap").double()
images64 = pair[:10].double()  # ten images are enough, and float64 is slow
pipeline_cpu = tinycam.explain(gap64, images64, gap64.last_conv, target=CIRCLE)
pipeline_device = tinycam.explain(gap64.to(device), images64.to(device), gap64.last_conv, target=CIRCLE).cpu()
pipeline_agree = bool((pipeline_device - pipeline_cpu).abs().max() < 1e-10)
print(f"CPU and the other device agree: torch_reference.gradcam to 1e-12: {maths_agree}; "
      f"the whole explain pipeline to 1e-10: {pipeline_agree}")

# %% [markdown]
# ## 10. Explore
#
# `tinycam.course.widgets.Explorer` puts everything of this notebook under a few controls. Choose
#
# - **image**: one of the 50 test images of sections 3 to 8;
# - **class**: the class to explain, whether or not it is in the image;
# - **layer**: the layer whose feature maps are combined;
# - **method**: `gradcam`, `counterfactual`, `gradcam++` (notebook 05), `cam` (notebook 02), and the methods that
#   came after the lecture, `hirescam`, `layercam`, `xgradcam` and `scorecam` (notebook 06);
# - **opacity**: how strongly the map covers the image in the overlay (each pixel's opacity follows the map, so
#   where the map is 0 the image shows as it is);
# - **normalized to [0, 1]**: untick it to see the map at its own scale, with a colourbar.
#
# Above the picture the explorer prints the class's score y and its probability p: a map is always drawn, even for
# a class the network gives p ≈ 0, so read the map together with p (section 6).
#
# Things to try: explain "triangle" on an image without a triangle and compare p and the unnormalized map's scale; step the layer from `features.10` back to
# `features.2` and watch class-discriminativeness fade; compare `gradcam` with `counterfactual` on an image with
# three kinds of shapes. For the FC network, make a second explorer,
# `Explorer(models["fc"], pair, layers=["features.11", "features.8"], class_names=CLASSES)`, and choose `cam`: the
# message explains why CAM cannot run there. The explorer needs a live Jupyter kernel; in a static view of the
# notebook it shows nothing.

# %%
# NBVAL_IGNORE_OUTPUT
from tinycam.course.widgets import Explorer

Explorer(gap_model, pair, layers=["features.10", "features.8", "features.5", "features.2"], class_names=CLASSES)

# %% [markdown]
# ## Summary
#
# - **Grad-CAM on a real network** is notebook 01's arithmetic on captured tensors. `tinycam.capture` gives $A$ and
#   $\partial y^c/\partial A$ of shape $(B, K, h, w)$; the weights are the gradient maps' means, and the map is
#   $\mathrm{ReLU}(\sum_k \alpha_k^c A^k)$, upsampled. On the GAP network the gradient maps are constant and
#   Grad-CAM equals CAM up to $Z$ and the ReLU. On the FC network they vary, and Grad-CAM still works where CAM
#   cannot.
# - **Differentiate the logit**, not the probability: a sigmoid only rescales the map, but in float32 it saturates and
#   blanks the map for confident predictions (a third of the images for the FC network); a softmax mixes the classes.
# - **Class-discriminative, measured:** over 50 images, a class's map puts about 30–37 % of its mass on that class's
#   objects (3–4 times a flat map) and 2–3 % on the other class. The other 61–67 % falls on the background,
#   because the maps are coarse and follow outlines.
# - **Under occlusion** (a square pasted over 44 % of a circle, in the median), the map's peak lands on the circle
#   less often (36 → 25 of 50 images, GAP network), partly because the network stops detecting some circles; its
#   mass per visible pixel stays on what is left of the circle.
# - **Counterfactual maps** ($\mathrm{ReLU}(-L)$) point at the *other* shapes and the background. Blurring their
#   region raised the class logit on 40–48 of 50 images; blurring the Grad-CAM region lowered it on all of them.
# - **The layer decides** between resolution and class-discriminativeness. The first conv layer is sharp, class-blind
#   and mostly blank; the middle one outlines every object; the last two are coarse and class-specific.
# - NumPy and torch agree to 1e-12 in float64 on the same tensors; on a machine with a GPU, so do the CPU and the GPU.
#
# **Next: pixel-level explanations.** A Grad-CAM map says *where*, at the resolution of the chosen layer. Notebook 04
# computes gradients all the way back to the pixels (saliency maps, Simonyan et al., 2014; guided backpropagation,
# Springenberg et al., 2015), compares them with occlusion (Zeiler & Fergus, ECCV 2014), and multiplies guided
# backpropagation with Grad-CAM: **Guided Grad-CAM**, fine *and* class-discriminative.
