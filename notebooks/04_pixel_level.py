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
# # 04 · Pixel-level explanations: saliency, guided backprop, Guided Grad-CAM, occlusion, class models
#
# Grad-CAM's heatmap lives on the grid of the last convolutional layer: 16×16 cells for our GAP model, each cell
# standing for a 4×4 block of the 64×64 image. It tells you *which region* holds the evidence for a class, but it
# cannot draw an edge or a corner. An older family of methods works directly on the **pixels**. They ask how the
# class score reacts to each input pixel, either through a gradient (one backward pass to the image) or through an
# experiment (hide a patch and measure the score again). Their maps are sharp, but, as we will measure, they say
# much less clearly *which class* the pixels speak for.
#
# This notebook puts the two families side by side on the course's shapes world and its trained GAP model, and
# puts a number on the trade-off the Grad-CAM paper states in one line: Grad-CAM is class-discriminative but coarse;
# guided backprop is fine-grained but barely class-discriminative; their product, **Guided Grad-CAM**, is both.
#
# **What you will do**
#
# | § | topic | you will |
# |---|---|---|
# | 1 | gradient saliency | read the class score as a linear function of the pixels, and turn its gradient into a map (**Exercise 1**) |
# | 2 | guided backprop | compare three rules for sending a gradient back through a ReLU (**Exercise 2**) |
# | 3 | Guided Grad-CAM | multiply a fine map by a class-discriminative one |
# | 4 | the Grad-CAM paper's figure | explain two classes of one image with every method |
# | 5 | a measurement | score each method for class discrimination and for fine detail on 48 held-out images |
# | 6 | occlusion | hide patches and watch the probability (**Exercise 3**), and count what each method costs |
# | 7 | class model visualization | ask the network to paint its idea of a circle, a square and a triangle |
#
# **Graded exercises.** As in the earlier notebooks, an exercise cell holds the signature and docstring of your
# function; your answer goes between `### BEGIN SOLUTION` and `### END SOLUTION` (your copy has
# `raise NotImplementedError()` there: replace it). The check cell below it runs your function on the notebook's
# example and on random arrays and prints `✓`, or `✗` with what was expected, what came back and a hint. The cells
# after a check use `tinycam`'s own implementations, so an unfinished exercise never breaks the rest of the
# notebook. Points: 1 + 2 + 2 = 5.
#
# **Papers.** Simonyan, Vedaldi & Zisserman, *Deep Inside Convolutional Networks*, ICLR workshop 2014 (gradient
# saliency, class model visualization); Zeiler & Fergus, *Visualizing and Understanding Convolutional Networks*,
# ECCV 2014 (deconvnet, occlusion); Springenberg et al., *Striving for Simplicity: The All Convolutional Net*, ICLR
# workshop 2015 (guided backprop); Selvaraju et al., *Grad-CAM*, ICCV 2017 (Guided Grad-CAM); Zhou et al., CVPR
# 2016 (CAM) and Chattopadhay et al., WACV 2018 (Grad-CAM++) for the CAM family.

# %%
import copy
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

import tinycam
from tinycam import metrics, pixels, torch_reference
from tinycam.course import checks
from tinycam.models import IMAGE_MEAN
from tinycam.course.plotting import overlay, show_grid, to_numpy
from tinycam.shapes import CLASSES, make_images

torch.manual_seed(0)
torch.set_num_threads(1)  # tiny models and batches: one thread is as fast, and immune to a busy machine
model = tinycam.load_model("gap")  # trained multi-label CNN: 3 sigmoid outputs, last conv block "features.10"
layer = model.last_conv
test = make_images(300, seed=10000)  # held-out images (the seed the shipped accuracy was measured on)
images = torch.from_numpy(test.images)
with torch.no_grad():
    scores = model(images)
probabilities = torch.sigmoid(scores)


def describe(n):
    """The objects of test image n, e.g. 'square (22 px), circle (15 px)'."""
    objects = [(c, s) for c, s in zip(test.object_classes[n], test.object_sizes[n]) if c >= 0]
    return ", ".join(f"{CLASSES[c]} ({s:.0f} px)" for c, s in objects)


def has_exactly(n, wanted):
    """True when test image n holds exactly one object of each class in `wanted` and nothing else."""
    return sorted(c for c in test.object_classes[n] if c >= 0) == sorted(wanted)


# the image of the paper-style figure: the first with exactly one circle and one square, both large and detected
pair = next(n for n in range(len(test)) if has_exactly(n, [0, 1]) and test.object_sizes[n][:2].min() >= 12
            and bool((probabilities[n, :2] > 0.9).all()))
print(f"{len(test)} held-out images of {tuple(images.shape[1:])}; model {type(model).__name__}, layer {layer!r}")
print(f"image {pair}: {describe(pair)}")
print("  P(class): " + ", ".join(f"{c} {p:.3f}" for c, p in zip(CLASSES, probabilities[pair].tolist())))


# %% [markdown]
# A few display helpers. Maps are drawn in [0, 1]. Per-colour-channel maps (gradients with respect to the R, G and B
# value of each pixel) are collapsed for display and for measurement the way gradient saliency does it: the largest
# absolute value over the three channels. Pixel-level maps are dominated by a few very large values, so for display
# each is divided by its own 99th percentile and clipped at 1 (`percentile_scaled`): the top 1 % of its pixels
# saturate and the rest stay visible. The measurements never use the scaled maps.

# %%
def per_pixel(maps):
    """(B, 3, H, W) per-channel values -> (B, H, W): the largest absolute value over the colour channels."""
    return maps.abs().amax(dim=1)


def scaled(maps):
    """Divide each map (B, H, W) by its maximum, so it spans [0, 1] for display."""
    top = maps.flatten(1).amax(dim=1).clamp(min=torch.finfo(maps.dtype).tiny)
    return maps / top[:, None, None]


def percentile_scaled(maps, q=0.99):
    """Divide each map (B, H, W) by its own q-quantile and clip at 1: for display, with the top 1 − q saturated."""
    top = maps.flatten(1).double().quantile(q, dim=1).to(maps.dtype).clamp(min=torch.finfo(maps.dtype).tiny)
    return (maps / top[:, None, None]).clamp(max=1.0)


# %% [markdown]
# ## 1. Gradient saliency: the class score as a linear function of the pixels
#
# Let $S_c(I)$ be the score of class $c$ (before the sigmoid or softmax) for an image $I$, flattened into one long
# vector of $3 \cdot 64 \cdot 64$ numbers. Near a given image $I_0$, the first-order Taylor expansion replaces the
# network by a linear function (Simonyan et al., 2014):
#
# $$S_c(I) \;\approx\; w^\top I + b, \qquad w \;=\; \left.\frac{\partial S_c}{\partial I}\right|_{I = I_0}.$$
#
# Each entry of $w$ is the exchange rate between one input value and the score: a large $|w|$ marks a value that
# has to change only a little to move the score a lot. One backward pass gives all of $w$. To draw it as a picture,
# $w$ is put back into the image's layout: $h(i, j, c)$ is the position in the vector of row $i$, column $j$,
# colour channel $c$. The colour channels are merged by keeping the largest magnitude:
#
# $$M_{ij} \;=\; \max_c \,\big|w_{h(i, j, c)}\big| .$$
#
# PyTorch's gradient already has the image's shape $(C, H, W)$, so the rearrangement $h$ is free. Here is $w$ for
# the circle of our image, by plain autograd:

# %%
circle, square, triangle = 0, 1, 2
image = images[pair : pair + 1]  # (1, 3, 64, 64)
pixels_in = image.clone().requires_grad_(True)
(w,) = torch.autograd.grad(model(pixels_in)[0, circle], pixels_in)  # dS_circle / dI, shape (1, 3, 64, 64)
M = w.abs().amax(dim=1)  # max over colour channels of |w|
print(f"w = dS_circle/dI has shape {tuple(w.shape)}; the saliency map M has shape {tuple(M.shape)}")
print(f"same as tinycam.pixels.saliency: {torch.equal(M, pixels.saliency(model, image, target=circle))}")
print(f"largest |w|: {w.abs().max().item():.3f} per unit of pixel value; median |w|: {w.abs().median().item():.4f}")

# %% [markdown]
# How far does the linear view carry? Our network is made of convolutions, ReLUs, max-pooling and one linear
# layer, so the score is *piecewise linear* in the pixels: exactly linear as long as no ReLU switches on or off and
# no max-pool changes its winner. We step away from the image, $\Delta = \varepsilon u$, and compare the actual
# change of the score with the linear prediction $w^\top \Delta$, in float64 (a copy of the model), for two
# directions $u$: along the gradient itself ($u = w / \max|w|$, so that the largest pixel change is $\varepsilon$),
# and a random direction (every value in $[-1, 1]$).

# %%
model64 = copy.deepcopy(model).double()
image64 = image.double().requires_grad_(True)
score64 = model64(image64)[0, circle]
(w64,) = torch.autograd.grad(score64, image64)
directions = {
    "along w": w64 / w64.abs().max(),
    "random": torch.rand(image64.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2 - 1,
}
print(f"{'':>7}  {'along the gradient':^42}  {'random direction':>18}")
print(f"{'eps':>7}  {'predicted w.Delta':>17} {'actual change':>14} {'ratio':>9}  {'actual / predicted':>18}")
for eps in [1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6]:
    ratios = {}
    with torch.no_grad():
        for name, u in directions.items():
            predicted = (w64 * eps * u).sum().item()
            actual = (model64(image64 + eps * u)[0, circle] - score64).item()
            ratios[name] = (predicted, actual, actual / predicted)
    along, rand = ratios["along w"], ratios["random"]
    print(f"{eps:7.0e}  {along[0]:17.3e} {along[1]:14.3e} {along[2]:9.3f}  {rand[2]:18.3f}")

# %% [markdown]
# The linear view is exact (ratio 1.000) only for steps of $10^{-6}$ to $10^{-5}$ per pixel value, far below one
# grey level of an 8-bit image ($1/255 \approx 0.004$). Along the gradient, where the linear term is as large as it
# can be, the prediction stays right in sign and roughly in size for larger steps (at $10^{-3}$ the actual change is
# 85 % of the predicted one). In a random direction the positive and negative terms of $w^\top \Delta$ nearly
# cancel, and the nonlinear remainder takes over already at $10^{-4}$: the ratio is then meaningless. The saliency map is
# therefore a statement about *infinitesimal* changes of the image: which pixels the score is most sensitive to
# right here, not which pixels the decision needs.
#
# ### Exercise 1 (1 point): the saliency map from a gradient
#
# Write `saliency_from_gradient(grads)`: from the input gradients of a batch, $(B, C, H, W)$, return the saliency
# maps $M_{ij} = \max_c |w_{cij}|$, shape $(B, H, W)$. The colour channel is axis 1. The check uses NumPy float64
# arrays; the notebook's example is the tiny gradient below, one image of 3 channels and 2×2 pixels. Work out its
# answer by hand before you run the check.

# %%
example_grads = np.array([[[[0.5, -2.0], [-0.25, 1.0]],
                           [[-1.5, 1.0], [-1.0, -0.5]],
                           [[1.0, 0.5], [-0.75, 3.0]]]])
for c, name in enumerate("RGB"):
    print(f"dS/dI, channel {name}: " + "  ".join(f"[{row[0]:5.2f} {row[1]:5.2f}]" for row in example_grads[0, c]))


# %% tags=["exercise"]
def saliency_from_gradient(grads):
    """M_ij = max_c |∂S/∂I_(c,i,j)|: the largest absolute input gradient over the colour channels.

    grads: array of shape (B, C, H, W). Returns an array of shape (B, H, W).
    """
    ### BEGIN SOLUTION
    return np.abs(np.asarray(grads, dtype=np.float64)).max(axis=1)
    ### END SOLUTION


# %% tags=["check"]
checks.saliency_from_gradient(saliency_from_gradient)

# %% [markdown]
# Two choices hide in the formula. The **absolute value**: a large negative gradient matters as much as a large
# positive one (darkening that pixel would raise the score). Simonyan et al. and the slides of 003 write it; the
# slides of 004 say "the maximum of $w$ across the channels" and drop it, which would rank a pixel with gradients
# $(-5, 0.1, 0)$ below one with $(0.2, 0.2, 0.2)$. The **max over channels** rather than the sum: a pixel
# counts if any one of its colour values is sensitive. The check knows what the other choices give.
#
# Saliency maps of six held-out images, each for its most probable class:

# %%
gallery = [pair, 0, 3, 4, 7, 11]
gallery_targets = scores[gallery].argmax(dim=1)
gallery_saliency = percentile_scaled(pixels.saliency(model, images[gallery], target=gallery_targets))
titles = [f"{n}: {CLASSES[c]}" for n, c in zip(gallery, gallery_targets.tolist())]
show_grid([list(images[gallery]), list(gallery_saliency)], titles=titles, row_labels=["image", "saliency"], size=1.8)
plt.show()

# %% [markdown]
# (Each map divided by its own 99th percentile, so the brightest 1 % of its pixels saturate.) The maps are at full
# resolution: single pixels light up. But they are speckled, they light up the grass texture
# around the objects, and they are often *dark inside* a flat-coloured object (the large disc of image 3): changing
# one pixel in the middle of a uniform region hardly changes what the filters see, while pixels near the outline
# and in the textured grass do. The gradient answers "which pixels is the score sensitive to", which is not the same
# question as "where is the circle".

# %% [markdown]
# ## 2. Guided backprop: what to do with a gradient at a ReLU
#
# Backpropagation through a ReLU $a = \max(x, 0)$ multiplies the incoming gradient $R = \partial S / \partial a$ by
# the derivative of the ReLU, which is 1 where the input was positive and 0 elsewhere. Zeiler & Fergus's
# *deconvnet* and Springenberg et al.'s *guided backpropagation* change this one step of the backward pass, and
# nothing else. (A word that means two things: in the slides of 004 and in notebook 00, "deconvolution" is the
# *transposed convolution*, a layer that enlarges a feature map; in the slides of 003, "unlike guided backprop or
# deconvolution", it is Zeiler & Fergus's deconvnet, the backward rule in this table. Here it is the second.)
#
# | rule | gradient passed to $x$ | keeps |
# |---|---|---|
# | forward pass | $a = \max(x, 0)$, remember the mask $[x > 0]$ | |
# | plain backprop (the true gradient) | $[x > 0] \cdot R$ | where the unit was active |
# | deconvnet (Zeiler & Fergus) | $[R > 0] \cdot R = \max(R, 0)$ | where the signal from above is positive |
# | guided backprop (Springenberg et al.) | $[x > 0] \cdot [R > 0] \cdot R$ | both |
#
# At each ReLU, guided backprop passes a gradient only where the unit was active **and** the gradient arriving from
# above is positive. That is a rule about the ReLUs only. Between two ReLUs the backward pass multiplies by the
# weights of a convolution or linear layer, which have both signs, so a positive gradient at one ReLU becomes
# positive and negative values below it, and between the first convolution and the pixels there is no ReLU left to
# cut the negative ones. Guided backprop's pixel map is therefore **signed**, and it is not the gradient of the
# score, nor of any other function: it is what the modified backward pass produces. Six ReLU inputs and six incoming
# gradients, by hand:

# %%
relu_in = np.array([1.5, -0.5, 2.0, -1.0, 0.0, 0.8])  # x, the input of a ReLU in the forward pass
grad_out = np.array([0.6, 0.9, -1.2, -0.4, 0.7, 2.0])  # R = dS/da, arriving from the layer above
rules = {
    "x (forward input)": relu_in,
    "a = max(x, 0)": np.maximum(relu_in, 0),
    "R (from above)": grad_out,
    "plain:   [x>0] R": (relu_in > 0) * grad_out,
    "deconv:  max(R,0)": np.maximum(grad_out, 0),
    "guided:  [x>0] max(R,0)": (relu_in > 0) * np.maximum(grad_out, 0),
}
for name, values in rules.items():
    print(f"{name:>24}: " + " ".join(f"{v + 0.0:5.1f}" for v in values))

# %% [markdown]
# Read it column by column. Unit 1 is active and receives a positive gradient: every rule passes 0.6. Unit 2 is
# off, so the true gradient is 0, but the deconvnet passes its 0.9 anyway: it ignores the forward pass at the ReLU.
# Unit 3 is active with a negative gradient: the true gradient passes −1.2, the other two rules stop it. Unit 5
# sits exactly at $x = 0$: the ReLU's derivative there is taken as 0 (PyTorch does the same), so only the deconvnet
# lets it through.
#
# ### Exercise 2 (2 points): the guided ReLU backward rule
#
# Write `guided_relu_backward(x, grad_out)`: given the ReLU's forward input `x` and the gradient `grad_out` arriving
# at its output (same shape, any shape), return the gradient guided backprop passes to `x`. Note the strict
# inequality: at $x = 0$ nothing passes.

# %% tags=["exercise"]
def guided_relu_backward(x, grad_out):
    """R_in = [x > 0] · max(R_out, 0): the guided-backprop rule at a ReLU (Springenberg et al., 2015).

    x: the ReLU's forward input; grad_out: the gradient at its output (same shape). Returns an array of that shape.
    """
    ### BEGIN SOLUTION
    x = np.asarray(x, dtype=np.float64)
    grad_out = np.asarray(grad_out, dtype=np.float64)
    return np.where(x > 0, np.maximum(grad_out, 0.0), 0.0)
    ### END SOLUTION


# %% tags=["check"]
checks.guided_relu_backward(guided_relu_backward)

# %% [markdown]
# `tinycam.pixels.guided_backprop` applies this rule at every `nn.ReLU` of a network. To see that it is exactly the
# rule above, build a network whose single ReLU receives our six numbers: the input is the row $x$, a ReLU, and a
# linear layer whose weights are $R$, so that $S = \sum_k R_k \max(x_k, 0)$ and the gradient arriving at the ReLU's
# output is $R$.

# %%
one_relu = nn.Sequential(nn.Flatten(), nn.ReLU(), nn.Linear(6, 1, bias=False)).double()
with torch.no_grad():
    one_relu[2].weight.copy_(torch.from_numpy(grad_out)[None])
x_image = torch.from_numpy(relu_in).reshape(1, 1, 1, 6)  # a 1 x 6 "image" with one channel
x_leaf = x_image.clone().requires_grad_(True)
(plain,) = torch.autograd.grad(one_relu(x_leaf).sum(), x_leaf)
guided = pixels.guided_backprop(one_relu, x_image, target=0)
print("autograd (plain):               " + " ".join(f"{v + 0.0:5.1f}" for v in plain.flatten().tolist()))
print("tinycam.pixels.guided_backprop: " + " ".join(f"{v + 0.0:5.1f}" for v in guided.flatten().tolist()))

# %% [markdown]
# In a deep network the rule acts at *every* ReLU, so a negative gradient is cut at every ReLU it reaches; but, as
# said above, the layers in between create new negative values, and the first convolution passes them to the
# pixels. How many of the values guided backprop returns are negative, on the first 64 held-out images, each for
# its most probable class?

# %%
first_images = images[:64]
first_guided = pixels.guided_backprop(model, first_images, target=scores[:64].argmax(dim=1))  # (64, 3, 64, 64)
nonzero_values = first_guided[first_guided != 0]
print(f"guided backprop on 64 held-out images: {100 * (nonzero_values < 0).double().mean():.1f}% of its "
      f"non-zero values are negative, {100 * (nonzero_values > 0).double().mean():.1f}% positive; "
      f"the most negative is {first_guided.min():.3f}, the most positive {first_guided.max():.3f}")

# %% [markdown]
# So the pixel map has both signs, in comparable amounts. Like gradient saliency, the figures below show its
# magnitude, $\max_c |\cdot|$ (and divide each map by its own 99th percentile); the sign is dropped there, not by
# the method. Guided backprop for the same six images, next to gradient saliency:

# %%
gallery_guided = percentile_scaled(per_pixel(pixels.guided_backprop(model, images[gallery], target=gallery_targets)))
show_grid([list(images[gallery]), list(gallery_saliency), list(gallery_guided)], titles=titles,
          row_labels=["image", "saliency |w|", "guided |.|"], size=1.8)
plt.show()

# %% [markdown]
# Guided backprop is much cleaner: the grass noise is gone and the outlines of the objects appear, drawn at the
# resolution of single pixels. Cutting the negative gradients at every ReLU removes many of the small positive and
# negative contributions that cancel in the true gradient and look like noise. Mostly the outlines are those of the class
# explained, but look closely: the other objects are often drawn too, more faintly (the circle in images 33 and 4).
# Section 5 measures how much.

# %% [markdown]
# ## 3. Guided Grad-CAM: fine detail, restricted to the class's region
#
# Grad-CAM (notebook 03) is class-discriminative but lives on the 16×16 grid; guided backprop is sharp but hardly
# cares about the class. Selvaraju et al. (ICCV 2017) simply multiply the two, pixel by pixel (a Hadamard product),
# after upsampling the Grad-CAM map $L^c$ bilinearly to the image's size:
#
# $$G^c_{\text{Guided Grad-CAM}} \;=\; G^c_{\text{guided backprop}} \odot \operatorname{upsample}(L^c_{\text{Grad-CAM}}) .$$
#
# Wherever Grad-CAM is zero, the fine detail of guided backprop is erased; where Grad-CAM is high, it is kept.
# The factor is the Grad-CAM map itself, at its own scale (`normalize=False`): a min-max normalized one would zero
# the map's weakest pixels even where Grad-CAM is positive. Only the product is normalized, for display.
# `tinycam.pixels.guided_gradcam` is that product; here it is rebuilt from its two parts:

# %%
pair_images = images[[pair, pair]]  # the same image twice: one row per class
pair_targets = torch.tensor([circle, square])
guided_part = pixels.guided_backprop(model, pair_images, target=pair_targets)  # (2, 3, 64, 64)
gradcam_part = tinycam.explain(model, pair_images, layer, method="gradcam", target=pair_targets,
                               normalize=False)  # (2, 64, 64), the upsampled ReLU map itself
product = guided_part * gradcam_part[:, None]  # the Grad-CAM map multiplies each colour channel
packaged = pixels.guided_gradcam(model, pair_images, layer, target=pair_targets)
print(f"guided backprop {tuple(guided_part.shape)} x Grad-CAM {tuple(gradcam_part.shape)} -> {tuple(product.shape)}")
print(f"max |product - tinycam.pixels.guided_gradcam| = {(product - packaged).abs().max().item():.1e}")

# %% [markdown]
# ## 4. The Grad-CAM paper's figure, in the shapes world
#
# The Grad-CAM paper explains one photo twice, once for "cat" and once for "dog", with each method. Our image holds a
# circle and a square, and the model detects both. Rows are the two classes; columns are the image, gradient
# saliency, guided backprop, Grad-CAM (laid over the image) and Guided Grad-CAM. The three pixel-level maps show
# magnitudes ($\max_c |\cdot|$), each divided by its own 99th percentile; Grad-CAM is min-max normalized.

# %%
pair_saliency = percentile_scaled(pixels.saliency(model, pair_images, target=pair_targets))
pair_guided = percentile_scaled(per_pixel(guided_part))
pair_guided_gradcam = percentile_scaled(per_pixel(packaged))
gradcam_shown = torch_reference.normalize(gradcam_part)  # [0, 1] for the overlay
rows = [[pair_images[r], pair_saliency[r], pair_guided[r], overlay(pair_images[r], gradcam_shown[r]),
         pair_guided_gradcam[r]] for r in range(2)]
figure = show_grid(rows, titles=["image", "gradient saliency", "guided backprop", "Grad-CAM", "Guided Grad-CAM"],
                   row_labels=[f"'{CLASSES[c]}'" for c in pair_targets.tolist()], size=2.4)
figure.suptitle(f"Test image {pair}: the evidence for 'circle' (top) and for 'square' (bottom)", y=1.02)
plt.show()

# %% [markdown]
# Compare the two rows column by column. The saliency maps lean towards the right object, but both are speckled
# over both objects and the grass. Guided backprop draws sharp outlines; its "circle" row is brightest on the
# circle, but the square's outline is there too, more faintly. Grad-CAM swaps cleanly from one object to the other,
# as a blob. Guided Grad-CAM keeps the sharp outline of the right object only. One image proves nothing, though: the next section measures the same
# thing on 48.

# %% [markdown]
# ## 5. Measured: which maps are class-discriminative, which are high-resolution?
#
# The slides summarise the comparison with check marks: Grad-CAM "class-discriminative ✓, high-resolution ✗",
# guided backprop the reverse, Guided Grad-CAM both. Our images come with the true mask of every object, so we can
# turn the check marks into numbers.
#
# **The test set.** The first 48 held-out images that contain objects of exactly two classes, $A$ and $B$, both
# detected by the model ($p > 0.5$). Every image is explained twice, once for each of its two classes: 96 maps per
# method.
#
# **Class discrimination.** For the map of class $A$, let $m_A$ be the share of the map's mass on $A$'s objects and
# $m_B$ the share on $B$'s objects (`tinycam.metrics.energy_pointing_game` with the two classes' masks). We count
# how often $m_A > m_B$, and average the *own share* $m_A / (m_A + m_B)$. Because each image is explained for both
# of its classes, a method that draws the same map whatever the class scores exactly 50 % and 0.500 on both
# numbers: whichever object it favours, it is right for one of the two classes and wrong for the other. We also
# report the correlation between the two maps of one image: 1 means the class made no difference.
#
# **Resolution.** The share of a map's energy (the squared values of its 2-D Fourier transform, mean removed) at
# spatial periods shorter than 8 pixels. Grad-CAM's 16×16 grid has one value every 4 pixels, and a grid with step
# 4 cannot represent a period shorter than 8 (its Nyquist limit). So this number says how much of a map is detail
# finer than what a Grad-CAM of this layer could ever hold.

# %%
two_classes = [n for n in range(len(test))
               if test.labels[n].sum() == 2 and bool((probabilities[n][test.labels[n] == 1] > 0.5).all())][:48]
class_pairs = torch.tensor(np.array([np.flatnonzero(test.labels[n]) for n in two_classes]))  # (48, 2): A, B
table_images = images[two_classes].repeat(2, 1, 1, 1)  # each image twice: explained for A, then for B
own = torch.cat([class_pairs[:, 0], class_pairs[:, 1]])  # the class each map explains
other = torch.cat([class_pairs[:, 1], class_pairs[:, 0]])  # the image's other class
sample = torch.arange(len(two_classes)).repeat(2)
class_masks = torch.from_numpy(np.stack([(test.masks[n][:, None] & (test.object_classes[n][:, None, None, None]
                                          == np.arange(3)[None, :, None, None])).any(axis=0) for n in two_classes]))
own_masks, other_masks = class_masks[sample, own], class_masks[sample, other]  # (96, 64, 64) each
print(f"{len(two_classes)} images, {len(table_images)} maps per method; class pairs: " + ", ".join(
    f"{CLASSES[a]}+{CLASSES[b]} {int(((class_pairs[:, 0] == a) & (class_pairs[:, 1] == b)).sum())}"
    for a, b in [(0, 1), (0, 2), (1, 2)]))


# %%
def fine_detail(maps, period=8):
    """Share of each map's energy (|2-D FFT|², mean removed) at spatial periods shorter than `period` pixels."""
    maps = maps.double() - maps.double().mean(dim=(-2, -1), keepdim=True)
    energy = torch.fft.fft2(maps).abs() ** 2
    frequencies = torch.fft.fftfreq(maps.shape[-1], dtype=torch.float64)  # cycles per pixel
    radius = (frequencies[:, None] ** 2 + frequencies[None, :] ** 2).sqrt()
    high = energy[..., radius > 1 / period].sum(dim=-1)
    return high / energy.flatten(-2).sum(dim=-1).clamp(min=1e-300)


def class_discrimination(maps):
    """For 96 maps (48 images x 2 classes): A wins (share), mean own share, and the mean correlation of A vs B maps."""
    maps = maps.double()
    on_own = metrics.energy_pointing_game(maps, own_masks)
    on_other = metrics.energy_pointing_game(maps, other_masks)
    wins = (on_own > on_other).double().mean().item()
    own_share = (on_own / (on_own + on_other).clamp(min=1e-300)).mean().item()
    half = len(two_classes)
    flat_a, flat_b = maps[:half].flatten(1), maps[half:].flatten(1)
    correlation = torch.stack([torch.corrcoef(torch.stack([a, b]))[0, 1] for a, b in zip(flat_a, flat_b)])
    return wins, own_share, correlation.mean().item()


start = time.perf_counter()
table_guided = pixels.guided_backprop(model, table_images, target=own)
table_gradcam = tinycam.explain(model, table_images, layer, method="gradcam", target=own)
table_maps = {
    "gradient saliency": pixels.saliency(model, table_images, target=own),
    "guided backprop": per_pixel(table_guided),
    "Grad-CAM": table_gradcam,
    "Guided Grad-CAM": per_pixel(table_guided * tinycam.explain(model, table_images, layer, method="gradcam",
                                                                target=own, normalize=False)[:, None]),  # section 3
}
seconds_for_table = time.perf_counter() - start

print(f"{'method':<18} {'A wins':>7} {'own share':>10} {'corr(A, B)':>11} {'detail < 8 px':>14}")
for name, maps in table_maps.items():
    wins, own_share, correlation = class_discrimination(maps)
    detail = fine_detail(maps).mean().item()
    print(f"{name:<18} {100 * wins:6.1f}% {own_share:10.3f} {correlation:11.3f} {100 * detail:13.1f}%")
print(f"{'(class-blind map)':<18} {50:6.1f}% {0.5:10.3f} {1:11.3f} {'':>14}")

# %% [markdown]
# What the numbers say on this model and these images:
#
# - **Gradient saliency** is high-resolution (about 40 % of its energy is finer than Grad-CAM's grid can draw) and
#   only weakly class-discriminative: in roughly a fifth of the maps it puts more mass on the *other* class's
#   objects, and the maps of the two classes of one image stay clearly correlated.
# - **Guided backprop** is just as fine and, on this small network, more class-discriminative than the slides'
#   verdict suggests (its own share is well above the class-blind 0.500), but it still favours the wrong object in
#   a few percent of the maps and still leaves a good part of its mass on the other class's objects. Nie et al.
#   (ICML 2018) found the opposite order on ImageNet networks: guided backprop and the deconvnet "generate more
#   human-interpretable but less class-sensitive visualizations than saliency map", because they are "essentially
#   doing (partial) image recovery which is unrelated to the network decisions" (their abstract), with the backward
#   ReLU and the local connections of CNNs as the two main causes. On our small network the order is reversed
#   (guided backprop ahead of saliency on all three numbers), so their finding does not carry over to every
#   network; read it as a warning about what sharp outlines can mean, not as a property of the method.
# - **Grad-CAM** is the most class-discriminative map, with the clean winner in every image, but it holds almost
#   no detail finer than 8 pixels: its correlation across the two classes is even negative, because the two
#   classes' maps sit on different objects.
# - **Guided Grad-CAM** keeps both properties: Grad-CAM's discrimination (slightly improved, since multiplying by a
#   map that is high on the right object sharpens it further) and guided backprop's fine detail.
#
# So the slide's ✓ and ✗ hold as a *ranking*: the gradient methods are sharp and less class-aware, Grad-CAM is
# class-aware and coarse, and the product of the two is both.

# %% [markdown]
# ## 6. Occlusion: an experiment instead of a gradient
#
# Zeiler & Fergus (ECCV 2014) measured importance directly: slide a grey (or mean-coloured) patch over the image,
# and at each position record how much the probability of the class drops. The drop at a pixel is averaged over the
# patches that covered it:
#
# $$\Delta_{ij} \;=\; \underset{\text{patches } P \ni (i, j)}{\operatorname{mean}}\Big( p_c(I) \;-\; p_c\big(I \text{ with } P \text{ filled}\big) \Big).$$
#
# A positive $\Delta$ means hiding that region costs the class probability: evidence for the class. A negative
# $\Delta$ means the model is *more* confident without it. No gradient is involved, so there is no linearisation
# and no backward rule to argue about; the price is one forward pass per patch position.
#
# ### Exercise 3 (2 points): occlusion of a linear model, by hand
#
# Take the simplest model whose answer you can write down: a linear score $S(I) = \sum_{c,i,j} w_{cij} I_{cij} + b$
# (score, not probability), and a 1×1 patch that replaces the value of pixel $(i, j)$ by `fill` in every colour
# channel. Write `occlusion_drop(weights, image, fill)` returning the map of score drops
# $\Delta_{ij} = S(I) - S(I \text{ with pixel } (i, j) \text{ filled})$, shape $(H, W)$, for `weights` and `image` of
# shape $(C, H, W)$. No loop over positions is needed: write the drop of one pixel as a formula first.
#
# The notebook's example has two channels of 3×3 pixels and `fill = 0.5`. Compute the centre value by hand.

# %%
example_weights = np.array([[[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]],
                            [[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]])
example_image = np.array([[[0.0, 0.5, 1.0], [0.0, 0.5, 1.0], [0.0, 0.5, 1.0]],
                          [[1.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 1.0]]])
example_fill = 0.5
for c in range(2):
    print(f"channel {c}:  weights " + " ".join(f"[{' '.join(f'{v:4.1f}' for v in row)}]" for row in example_weights[c])
          + "   image " + " ".join(f"[{' '.join(f'{v:3.1f}' for v in row)}]" for row in example_image[c]))
print(f"fill = {example_fill}")


# %% tags=["exercise"]
def occlusion_drop(weights, image, fill):
    """Δ_ij = S(I) − S(I with pixel (i, j) set to `fill` in every channel), for the linear score S(I) = Σ w·I + b.

    weights, image: arrays of shape (C, H, W); fill: a number. Returns an array of shape (H, W).
    """
    ### BEGIN SOLUTION
    weights = np.asarray(weights, dtype=np.float64)
    image = np.asarray(image, dtype=np.float64)
    return (weights * (image - fill)).sum(axis=0)
    ### END SOLUTION


# %% tags=["check"]
checks.occlusion_drop(occlusion_drop)

# %% [markdown]
# For a linear model the drop at a pixel is $\sum_c w_{cij}\,(I_{cij} - \text{fill})$: the gradient times how far the
# pixel is from the fill value. Unlike gradient saliency, which looks at $w$ alone, occlusion depends on the image
# itself: a pixel that already equals the fill value cannot be "hidden". `tinycam.pixels.occlusion` with a 1×1
# patch and stride 1 reproduces the formula on a torch version of the same linear model (`output_activation =
# "score"` tells it to compare raw scores instead of probabilities):

# %%
linear = nn.Sequential(nn.Flatten(), nn.Linear(example_weights.size, 1)).double()
with torch.no_grad():
    linear[1].weight.copy_(torch.from_numpy(example_weights).reshape(1, -1))
    linear[1].bias.fill_(0.25)
linear.output_activation = "score"
tiny_drops = pixels.occlusion(linear, torch.from_numpy(example_image)[None], target=0, patch=1, stride=1,
                              fill=example_fill)[0]
formula = (example_weights * (example_image - example_fill)).sum(axis=0)
for row, formula_row in zip(tiny_drops.tolist(), formula):
    print("pixels.occlusion " + " ".join(f"{v + 0.0:5.2f}" for v in row)
          + "    formula " + " ".join(f"{v + 0.0:5.2f}" for v in formula_row))

# %% [markdown]
# **Occlusion on the trained model.** Patches of 8×8 pixels, moved 4 pixels at a time, filled with the mean colour
# of the shapes world (the colour the model's own normalization maps to zero). We explain three (image, class)
# pairs: the circle and the square of the figure's image, and a triangle in another image. The maps are signed:
# red where hiding the patch lowers the class, blue where it raises it. Next to them, the drop of the raw score
# instead of the probability (Zeiler & Fergus used the probability), and Grad-CAM. Each occlusion column has **one
# colour scale for all three rows**, with its colourbar, so that the rows' magnitudes can be compared.

# %%
triangle_image = next(n for n in range(len(test)) if has_exactly(n, [2, 1]) and probabilities[n, triangle] > 0.99)
occlusion_images = images[[pair, pair, triangle_image]]
occlusion_targets = torch.tensor([circle, square, triangle])
mean_colour = torch.tensor(IMAGE_MEAN).reshape(3, 1, 1)  # fill each channel with its mean
patch, stride = 8, 4
drops_probability = pixels.occlusion(model, occlusion_images, occlusion_targets, patch=patch, stride=stride,
                                     fill=mean_colour, progress=False)
model.output_activation = "score"  # compare raw class scores instead of sigmoid probabilities
drops_score = pixels.occlusion(model, occlusion_images, occlusion_targets, patch=patch, stride=stride,
                               fill=mean_colour, progress=False)
model.output_activation = "sigmoid"
occlusion_gradcam = tinycam.explain(model, occlusion_images, layer, method="gradcam", target=occlusion_targets)

labels = [f"{n}: '{CLASSES[c]}'" for n, c in zip([pair, pair, triangle_image], occlusion_targets.tolist())]
fig, axes = plt.subplots(3, 4, figsize=(10, 7.6), layout="constrained")
for column, (title, drops) in enumerate([("occlusion: drop of p", drops_probability),
                                          ("occlusion: drop of score", drops_score)], start=1):
    limit = drops.abs().max().item()  # one symmetric scale for the whole column
    for r in range(3):
        shown = axes[r, column].imshow(to_numpy(drops[r]), cmap="RdBu_r", vmin=-limit, vmax=limit,
                                       interpolation="nearest")
    axes[0, column].set_title(title, fontsize=10)
    fig.colorbar(shown, ax=axes[:, column], location="bottom", shrink=0.9, label=f"{title[11:]} (same scale)")
for r in range(3):
    axes[r, 0].imshow(to_numpy(occlusion_images[r]), interpolation="nearest")
    axes[r, 3].imshow(to_numpy(overlay(occlusion_images[r], occlusion_gradcam[r])), interpolation="nearest")
    axes[r, 0].set_ylabel(labels[r], fontsize=10)
axes[0, 0].set_title("image", fontsize=10)
axes[0, 3].set_title("Grad-CAM", fontsize=10)
for ax in axes.flat:
    ax.set_xticks([])
    ax.set_yticks([])
plt.show()
for label, p_drops, s_drops, p in zip(labels, drops_probability, drops_score,
                                       probabilities[[pair, pair, triangle_image], occlusion_targets]):
    print(f"{label:<16} p = {p:.3f}; drop of p from {p_drops.min():+.3f} to {p_drops.max():+.3f}; "
          f"drop of score from {s_drops.min():+.2f} to {s_drops.max():+.2f}")

# %% [markdown]
# Three lessons, all visible in the figure and the numbers.
#
# - **Occlusion localizes.** For "circle" the red region covers the circle and nothing else; for "triangle" it runs
#   along the triangle's right-hand edge to its tip, the same region Grad-CAM picks. Its resolution is set by the
#   patch and the stride, not by a layer's grid.
# - **Probabilities saturate.** The model is sure of all three classes ($p \geq 0.99$). For the square and the
#   triangle, hiding a patch moves $p$ by less than 0.01 either way (the square's map runs from −0.001 to +0.003),
#   and on the column's shared scale, set by the circle's drop of 0.152, those two maps are nearly white. Above
#   $p = 0.993$ there is little room: hiding a patch raises the circle's $p$ by at most 0.004. The raw score is not
#   squashed by the sigmoid, and its maps reveal, for every row, the regions whose removal would make the model
#   *more* confident. An occlusion map measures the output you choose.
# - **The patch is part of the experiment.** For "square", hiding the middle of the square *raises* the score by up
#   to 4.8 (dark blue); only hiding its corners lowers it. The patch is itself a little square: pasted into the
#   middle of the yellow square it adds four inner corners and edges, more of what the square detector looks for.
#   Occlusion answers "what happens to the score after this edit", and here the edit is not neutral. Read any
#   occlusion map with its patch size, shape and fill value in mind.
#
# **What each method costs.** Counted in passes through the network, per image and per class, for our 64×64
# images. Occlusion needs one forward pass for the original image and one per patch position, and with patch size
# $p$ and stride $s$ there are $\big(\lfloor (64 - p)/s \rfloor + 1\big)^2$ positions (notebook 00's output-size
# formula). Class model visualization needs no image but one forward and one backward pass per optimization step.

# %%
def occlusion_positions(size, patch, stride):
    """Number of patch positions on a size x size image: (⌊(size − patch)/stride⌋ + 1)²."""
    return ((size - patch) // stride + 1) ** 2


costs = [
    ("CAM", "1", "0", "needs GAP + one linear layer"),
    ("Grad-CAM", "1", "1 (to the layer)", "backward stops at the explained layer"),
    ("gradient saliency", "1", "1 (to the image)", ""),
    ("guided backprop", "1", "1 (to the image)", "same cost, modified ReLU backward"),
    ("Guided Grad-CAM", "2", "2", "both of the above; one forward could be shared"),
]
for p, s in [(8, 4), (12, 4), (4, 2), (1, 1)]:
    costs.append((f"occlusion {p}x{p}, stride {s}", f"{1 + occlusion_positions(64, p, s)}", "0",
                  f"{occlusion_positions(64, p, s)} patch positions"))
costs.append(("class model, 100 steps", "100", "100", "per class, no input image"))
print(f"{'method':<26} {'forward':>8} {'backward':>17}   note")
for method, forward, backward, note in costs:
    print(f"{method:<26} {forward:>8} {backward:>17}   {note}")

# %% [markdown]
# The gradient methods cost one forward and one backward pass whatever the image size; occlusion with the figure's
# settings costs 226 forward passes per image and class, and a pixel-exact occlusion map (1×1 patches) 4097. The
# measurement of section 5 ran all four gradient methods on 96 maps (its time is the last line of the next cell);
# the same table with 8×8 occlusion would need 96 × 226 = 21,696 forward passes. The wall-clock times on this
# machine (they vary from machine to machine, so the tests do not compare this cell's output):

# %%
# NBVAL_IGNORE_OUTPUT
from tinycam.course.bench import seconds  # the median of a few runs, after a warm-up


def forward_only():
    with torch.no_grad():
        model(batch)


batch = images[:4]
timings = {  # name -> (what to run, how many images it explains)
    "one forward pass (no grad)": (forward_only, len(batch)),
    "Grad-CAM": (lambda: tinycam.explain(model, batch, layer, method="gradcam"), len(batch)),
    "gradient saliency": (lambda: pixels.saliency(model, batch), len(batch)),
    "guided backprop": (lambda: pixels.guided_backprop(model, batch), len(batch)),
    "Guided Grad-CAM": (lambda: pixels.guided_gradcam(model, batch, layer), len(batch)),
    "occlusion 8x8, stride 4": (lambda: pixels.occlusion(model, batch[:1], patch=8, stride=4, progress=False), 1),
}
per_image = {name: seconds(run, repeats=1 if "occlusion" in name else 3) / count
             for name, (run, count) in timings.items()}
forward_time = per_image["one forward pass (no grad)"]
print(f"torch threads: {torch.get_num_threads()}; time per image, and relative to one forward pass")
for name, per_image_s in per_image.items():
    print(f"{name:<28} {1000 * per_image_s:8.2f} ms   {per_image_s / forward_time:7.1f} x")
print(f"(section 5's table of 4 methods x 96 maps took {seconds_for_table:.2f} s)")

# %% [markdown]
# ## 7. Class model visualization: what does the network think a square looks like?
#
# The methods so far explain a decision about a given image. Simonyan et al. (2014) turn the question around: find
# the image the network scores highest for class $c$,
#
# $$I^* \;=\; \arg\max_I \; S_c(I) - \lambda \lVert I \rVert_2^2 ,$$
#
# by gradient *ascent on the image* with the weights frozen. The $\lambda$ term keeps the image from growing without
# bound. (The slides write it two ways: 003 as $\lambda \lVert I \rVert_2^2$, like the paper, 004 as
# $\lambda \lVert I \rVert_2$. The square matters: the gradient of $\lVert I \rVert_2^2$ is $2I$, a pull that
# weakens near 0, while that of $\lVert I \rVert_2$ is $I / \lVert I \rVert_2$, a pull of constant size.)
#
# **What "zero" means.** The lecture's loop starts "from an image of zeros". Simonyan et al. work with zero-centred
# images (004: the network was trained "on zero-centered training images", and "the training set mean image was
# added to the image obtained by gradient ascent"), so their zero image *is* the mean image, and
# $\lambda \lVert I \rVert^2$ pulls toward it. Our models centre their input themselves (`forward` subtracts the
# mean colour `IMAGE_MEAN`), so here an image of zeros is **black**, far from every training image, and
# $\lambda \lVert I \rVert^2$ would pull toward black. The faithful translation starts from the mean colour $m$ and
# penalizes the distance to it,
#
# $$I^* \;=\; \arg\max_I \; S_c(I) - \lambda \lVert I - m \rVert_2^2 ,$$
#
# which is `tinycam.pixels.class_model(..., mean=m)`. The loop:
#
# 1. start from the mean image $m$, plus a little seeded noise (at most ±0.01 per value; why, below);
# 2. run it forward, set the gradient of the output to the one-hot vector of class $c$ (so that the backward pass
#    computes $\partial S_c / \partial I$), and backpropagate to the image;
# 3. add the gradient of $-\lambda \lVert I - m \rVert^2$, which is $-2 \lambda (I - m)$;
# 4. take a small step along the sum;
# 5. go back to 2.
#
# The noise is needed here: on the flat mean image our network's input after its own centring is 0 everywhere, its
# first convolution outputs only its biases, every unit of the first ReLU layer is off, and the gradient is exactly
# 0: the ascent would never leave the start. Written out in a few lines and compared with
# `tinycam.pixels.class_model`. Both run on `model64`, the float64 copy
# of section 1 (`class_model` works in the dtype of the model's parameters): a hundred steps that carry the scores into
# the thousands amplify float32's rounding, which differs between CPUs, and the printed numbers below would change
# from one machine to the next.

# %%
steps, lr, l2 = 100, 0.1, 1e-3
mean64 = mean_colour.double()  # (3, 1, 1): the mean colour, the image the model maps to zero
one_hot = torch.eye(3, dtype=torch.float64)  # row c is the score vector [0, .., 1, .., 0] of class c
flat = mean64.expand(3, 3, 64, 64).clone().requires_grad_(True)
(at_mean,) = torch.autograd.grad(model64(flat), flat, grad_outputs=one_hot)
print(f"gradient at the flat mean image: exactly 0 for all three classes: {bool((at_mean == 0).all())}")
noise = 0.01 * (2 * torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(0), dtype=torch.float64) - 1)
by_hand = mean64 + noise  # one image per class, all optimized together
for step in range(steps):
    canvas = by_hand.clone().requires_grad_(True)
    class_scores = model64(canvas)  # (3 images, 3 classes)
    (ascent,) = torch.autograd.grad(class_scores, canvas, grad_outputs=one_hot)  # dS_c/dI for image c
    by_hand = (canvas + lr * (ascent - 2 * l2 * (canvas - mean64))).detach()
plain_models = pixels.class_model(model64, [circle, square, triangle], steps=steps, lr=lr, l2=l2, mean=mean64,
                                  noise=0.01, seed=0)
relative = ((by_hand - plain_models).abs().max() / plain_models.abs().max()).item()
print(f"loop by hand vs tinycam.pixels.class_model: max difference / max value below 1e-12: {relative < 1e-12}")

# %% [markdown]
# Left alone, the ascent finds high-frequency patterns: the score is nearly linear in the pixels (section 1), so the
# fastest way up is to add its gradient again and again, fine speckles included. The usual remedies regularize the
# image towards what natural images look like: shift the image by a few random pixels at every step (**jitter**,
# so that no single-pixel pattern pays off) and blur it now and then (**blur**, which removes the finest detail).
# Both are options of `class_model`; every run is deterministic from its `seed`.

# %%
regularizers = dict(jitter=3, blur_sigma=1.0, blur_every=5, seed=0)
regularized_models = pixels.class_model(model64, [circle, square, triangle], steps=steps, lr=lr, l2=l2,
                                        mean=mean64, noise=0.01, **regularizers)
from_black = pixels.class_model(model64, [circle, square, triangle], steps=steps, lr=lr, l2=l2, **regularizers)


def stretched(image):
    """Min-max stretch of one image (3, H, W) to [0, 1] for display: the optimized images have no natural range."""
    return (image - image.min()) / (image.max() - image.min())


show_grid([[stretched(i) for i in plain_models], [stretched(i) for i in regularized_models],
           [stretched(i) for i in from_black]], titles=[f"'{c}'" for c in CLASSES],
          row_labels=["no regularizer", "jitter 3 px + blur", "same, from black"], size=2.6)
plt.show()


# %%
def significant(value, digits=3):
    """A number rounded to `digits` significant figures, printed without an exponent (12,462.3 -> '12,500')."""
    rounded = float(f"{value:.{digits}g}")
    return f"{rounded:,.0f}" if abs(rounded) >= 10 ** (digits - 1) else f"{rounded:.{digits}g}"


real_best = scores.max(dim=0).values  # the highest score of each class over the 300 held-out images
print("class scores S_c of the optimized images (row: the class optimized for; columns: the three scores)")
for name, found in [("no regularizer", plain_models), ("jitter + blur", regularized_models),
                    ("jitter + blur, from black (zeros)", from_black)]:
    with torch.no_grad():
        found_scores = model64(found)
    print(f"  {name}  (pixel values from {significant(found.min().item(), 2)} to {significant(found.max().item(), 2)}; "
          f"distance to the mean image {significant((found - mean64).flatten(1).norm(dim=1).mean().item())})")
    for c in range(3):
        print(f"    {CLASSES[c] + ' image:':<16}" + "".join(f"  {CLASSES[k]} {significant(v):>7}"
                                                       for k, v in enumerate(found_scores[c].tolist())))
print("  best score on real held-out images: "
      + ", ".join(f"{c} {significant(v)}" for c, v in zip(CLASSES, real_best.tolist())))

# %% [markdown]
# Each optimized image is specific to its class: its own score is far higher than the two others, which mostly go
# negative. The regularized images show a structure we can read: rounded blobs for "circle", a lattice of corner-like
# spots for "square", oblique stripes for "triangle" — the local parts (curved edges, right angles, slanted edges) the
# network's filters respond to, repeated all over the canvas because a GAP model sums evidence over every position.
# None of them looks like a single object on grass, and every one of them reaches scores far above any real image:
# the network's maximum for a class is not a picture of the class, and high confidence is cheap to buy with
# patterns no real image contains. The regularizers trade some score for patterns that are easier to read.
#
# The start matters less than the pull. From black, with the same regularizers, the ascent finds the same patterns
# and nearly the same scores, but on a magenta-tinted canvas about three times as far from the mean image: the
# $\lambda \lVert I \rVert^2$ term of the black start pulls toward black, which is not the network's "nothing";
# $\lambda \lVert I - m \rVert^2$ pulls toward the grass-coloured mean, as the paper's zero-centred $\lVert I
# \rVert^2$ does.

# %% [markdown]
# ## Summary
#
# - **Gradient saliency** (Simonyan et al.): $M_{ij} = \max_c |\partial S_c / \partial I_{cij}|$, the first-order
#   Taylor view of the score. Full resolution, one backward pass, exact for small changes only, noisy, and only
#   weakly class-discriminative.
# - **Guided backprop** (Springenberg et al.): the backward pass through every ReLU keeps $[x > 0] \cdot
#   \max(R, 0)$: only active units and positive gradients at each ReLU. The plain gradient keeps $[x > 0] \cdot R$,
#   the deconvnet $\max(R, 0)$. The layers between the ReLUs bring back both signs, so its pixel map is signed
#   (about half of its values negative here) and is not the gradient of any score; the figures show $|\cdot|$.
#   Sharp outlines; on our small network partly class-discriminative, but it still draws the other class's objects.
# - **Guided Grad-CAM** (Selvaraju et al.) = guided backprop ⊙ upsampled Grad-CAM. Measured on 48 held-out images
#   with two classes: as class-discriminative as Grad-CAM (100 % of maps on the right object) and nearly as detailed
#   as guided backprop (42 % versus 45 % of the energy finer than 8 pixels).
# - **Occlusion** (Zeiler & Fergus): no gradients, just experiments, at the price of one forward pass per patch
#   position (226 for 8×8 patches with stride 4 on 64×64 images). Probabilities saturate, and the patch itself can
#   add evidence (a square patch in a world of squares).
# - **Class model visualization** (Simonyan et al.): gradient ascent on the image from the mean image (the paper's
#   zero of zero-centred data), with $\lambda \lVert I - m \rVert^2$ pulling back toward it; without
#   regularizers, speckle; with jitter and blur, readable class patterns that score far beyond any real image.
#
# **Next: Grad-CAM++.** Grad-CAM weighs every pixel of a gradient map equally, so when a class has several
# instances, the largest one takes most of the weight. Notebook 05 gives each pixel its own weight
# $\alpha^{kc}_{ij}$, derives the closed form from the second and third derivatives, and measures whether the
# small objects come back.
