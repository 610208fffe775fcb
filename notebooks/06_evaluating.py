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
# # 06 · Is the explanation right? Sanity checks, faithfulness, and the methods after the lecture
#
# The lecture ends at Grad-CAM++ and judges a map by eye: "it looks at the dog". Since then the field has learned that
# a map can look right and be wrong. Three results frame this notebook:
#
# - **Adebayo et al.** (NeurIPS 2018, "Sanity Checks for Saliency Maps") destroyed a trained network's weights, layer
#   by layer, and found that some maps barely change. Guided backprop and Guided Grad-CAM, whose sharp maps the
#   lecture praised, are among them. A map that stays the same when the model is destroyed cannot be explaining the
#   model.
# - **Draelos & Carin** (2020, "HiResCAM") showed that Grad-CAM's averaging of the gradients can light up locations
#   that a network with a flatten-then-fully-connected head did not use. Our FC network is exactly that architecture.
# - **Petsiuk et al.** (BMVC 2018, "RISE") measure whether a map is *faithful* to the model: delete the pixels in the
#   map's order and watch how fast the class probability falls.
#
# This notebook is about **testing** an explanation, not only drawing one.
#
# **What you will do**
#
# | § | topic | you will |
# |---|---|---|
# | 1 | the methods after the lecture | write them as weight rows, compute the HiResCAM map (**Exercise 1**), measure what HiResCAM guarantees on the FC network, compare every method's map |
# | 2 | sanity checks | destroy the network layer by layer, rank-correlate maps (**Exercise 2**), find the methods that survive, and test with a network trained on shuffled labels |
# | 3 | faithfulness | compute the area under a deletion curve (**Exercise 3**), draw deletion and insertion curves, read the course's evaluation table, and see what it cannot tell |
#
# **Graded exercises.** As before, your answer goes between `### BEGIN SOLUTION` and `### END SOLUTION` (in your
# copy that region holds `raise NotImplementedError()`), and the check cell below prints `✓`, or `✗` with a hint.
# The exercises take NumPy arrays. The cells after a check use `tinycam`'s own functions, so an unfinished exercise
# never breaks the rest of the notebook. Points: 2 + 3 + 2 = 7.
#
# **Notation.** As in notebooks 01–05: $A^k$ is feature map $k$ of the chosen layer, $y^c$ the class score (the logit),
# $g^k_{ij} = \partial y^c / \partial A^k_{ij}$ its gradient, $Z$ the number of pixels of a map.
#
# **Sources.** Adebayo, Gilmer, Muelly, Goodfellow, Hardt & Kim, NeurIPS 2018; Draelos & Carin, "Use HiResCAM instead
# of Grad-CAM for faithful explanations of convolutional neural networks", arXiv 2011.08891, 2020; Jiang, Zhang, Hou,
# Cheng & Wei, "LayerCAM", IEEE Transactions on Image Processing 30, 2021; Fu, Hu, Zhang, Chen, Zhang & Jiang,
# "Axiom-based Grad-CAM" (XGrad-CAM), BMVC 2020; Wang, Wang, Du, Yang, Zhang, Ding, Mardziel & Hu, "Score-CAM", CVPR
# Workshops 2020; Petsiuk, Das & Saenko, "RISE", BMVC 2018; Rong, Leemann, Borisov, Kasneci & Kasneci, "A Consistent
# and Efficient Evaluation Strategy for Attribution Methods" (ROAD), ICML 2022.

# %%

import matplotlib.pyplot as plt
import numpy as np
import torch

import tinycam
from tinycam import DATA_DIR, faithfulness, metrics, sanity
from tinycam import torch_reference as T
from tinycam.cams import CAM_METHODS
from tinycam.course import checks
from tinycam.course.plotting import HEATMAP_CMAP, show_grid
from tinycam.shapes import CLASSES, make_images

torch.manual_seed(0)
torch.set_num_threads(1)  # small models, small batches: one thread is as fast, and does not stall on a busy machine
models = {name: tinycam.load_model(name) for name in ("gap", "fc", "gap_shuffled")}
gap_model, fc_model = models["gap"], models["fc"]

world = make_images(4, seed=600)  # four held-out images (training used seed 0, the accuracy split 10000)
images = torch.from_numpy(world.images)
with torch.no_grad():
    predicted = gap_model(images).argmax(dim=1)
print("classes present:  " + ", ".join("+".join(c for c, on in zip(CLASSES, row) if on) for row in world.labels))
print("GAP predicts:     " + ", ".join(CLASSES[c] for c in predicted))
# every map below explains each image's predicted class, which here is the class the image holds

# %% [markdown]
# ## 1. The methods after the lecture, as weight rows
#
# Every CAM-family method draws the same picture,
#
# $$L^c = \mathrm{ReLU}\Big(\sum_k w^k \odot A^k\Big),$$
#
# and differs only in its weights $w^k$: one number per feature map (a *channel* weight, as in Grad-CAM), or one per
# activation (a *pixel* weight, a whole map $w^k_{ij}$). Here are the lecture's Grad-CAM and the four methods that came
# after it:
#
# | method | weight | per | needs |
# |---|---|---|---|
# | Grad-CAM (Selvaraju et al., ICCV 2017) | $w_k = \frac{1}{Z} \sum_{ij} g^k_{ij}$ | channel | gradients |
# | HiResCAM (Draelos & Carin, 2020) | $w^k_{ij} = g^k_{ij}$ | pixel | gradients |
# | LayerCAM (Jiang et al., IEEE TIP 2021, section III) | $w^k_{ij} = \mathrm{ReLU}(g^k_{ij})$ | pixel | gradients |
# | XGrad-CAM (Fu et al., BMVC 2020, section 3) | $w_k = \sum_{ij} \frac{A^k_{ij}}{\sum_{ab} A^k_{ab}}\, g^k_{ij}$ | channel | gradients |
# | Score-CAM (Wang et al., CVPR Workshops 2020, section 4) | $w_k = \mathrm{softmax}_k\big(y^c(X \circ H^k) - y^c(X_b)\big)$ | channel | $K$ forward passes |
#
# - **HiResCAM** keeps every gradient where it is: no averaging, so a location counts with its own gradient.
# - **LayerCAM** does the same with the positive gradients only. The authors use it at shallow layers, where the
#   per-pixel weights keep the fine detail that one weight per channel would blur.
# - **XGrad-CAM** averages the gradients too, but with the activations' own proportions $A^k_{ij} / \sum_{ab} A^k_{ab}$
#   instead of $1/Z$. Fu et al. derive these weights from two axioms, sensitivity and conservation.
# - **Score-CAM** uses no gradient at all. $H^k$ is feature map $k$ upsampled to the image and min-max normalized to
#   $[0, 1]$; the image is multiplied by it, $X \circ H^k$, and run through the network again. The weight is how much
#   the class score rises over a black image $X_b$, made positive and summing to 1 by a softmax over $k$. That is one
#   forward pass per feature map and image.
#
# In `tinycam` each method is one row of `tinycam.cams.CAM_METHODS`, and `tinycam.explain(..., method=name)` reaches
# all of them. The shape of the weights says per channel or per pixel:

# %%
fc_capture = tinycam.capture(fc_model, images, fc_model.last_conv, target=predicted)
print(f"FC network, layer {fc_model.last_conv}: acts {tuple(fc_capture.acts.shape)}")
print("method            weights shape       per      needs gradients   ReLU")
for name in ("gradcam", "hirescam", "layercam", "xgradcam", "scorecam"):
    row = CAM_METHODS[name]
    options = {"progress": False} if "progress" in row.options else {}
    weights = row.weights(fc_model, images, fc_capture, **options)
    per = "pixel" if weights.shape == fc_capture.acts.shape else "channel"
    print(f"{name:17s} {str(tuple(weights.shape)):19s} {per:8s} {str(row.needs_gradients):17s} {row.relu}")

# %% [markdown]
# ### Exercise 1 (2 points): the HiResCAM map
#
# Write `hirescam_map(acts, grads)`: the HiResCAM map $\mathrm{ReLU}\big(\sum_k g^k \odot A^k\big)$ for arrays of
# shape $(\dots, K, H, W)$, leading batch axes included. It returns one map per image, $(\dots, H, W)$, at the
# feature maps' resolution (no upsampling, no normalization). The first case of the check is notebook 01's handwritten
# example.

# %% tags=["exercise"]
def hirescam_map(acts, grads):
    """The HiResCAM map of feature maps `acts` and their gradients `grads`.

    acts, grads: arrays of shape (..., K, H, W). Returns an array of shape (..., H, W).
    """
    ### BEGIN SOLUTION
    acts, grads = np.asarray(acts, dtype=np.float64), np.asarray(grads, dtype=np.float64)
    return np.maximum((grads * acts).sum(axis=-3), 0.0)
    ### END SOLUTION


# %% tags=["check"]
checks.hirescam_map(hirescam_map)

# %% [markdown]
# ### What HiResCAM guarantees, measured on the FC network
#
# Our FC network ends in a head that sees the flattened feature maps, $y^c = W_2\, \mathrm{ReLU}(W_1\,
# \mathrm{vec}(A) + b_1) + b_2$. Around one image the ReLUs that are on stay on, so the head is linear there:
#
# $$y^c = \sum_{k,i,j} g^k_{ij} A^k_{ij} + b^c_{\text{eff}}, \qquad b_{\text{eff}} = b_2 + W_2 D\, b_1,$$
#
# with $D$ the diagonal of the hidden units that are on. So the HiResCAM map *before its ReLU*, $\sum_k g^k \odot A^k$,
# adds up over the locations to exactly $y^c - b^c_{\text{eff}}$: the score split among the locations that produced it.
# Draelos & Carin prove this for one linear layer after the flatten, where $b_{\text{eff}}$ is that layer's bias; our
# head has a hidden layer, and its bias enters through the units that are on. Grad-CAM's map
# $\sum_k \big(\frac{1}{Z}\sum_{ij} g^k_{ij}\big) A^k$ gives each location the channel's *average* gradient, which is
# not the gradient that location has, and its sum is some other number:

# %%
acts, grads = fc_capture.acts.double(), fc_capture.grads.double()
score = fc_capture.scores.double().gather(1, predicted[:, None])[:, 0]
hires_sum = T.weighted_combination(T.hirescam_weights(grads), acts).sum(dim=(-2, -1))  # before the ReLU
gradcam_sum = T.weighted_combination(T.gradcam_weights(grads), acts).sum(dim=(-2, -1))
first, second = fc_model.classifier[0], fc_model.classifier[2]
with torch.no_grad():
    hidden_on = (acts.flatten(1) @ first.weight.double().T + first.bias.double()) > 0  # D, (B, 32)
    bias_eff = (hidden_on * first.bias.double()) @ second.weight.double().T + second.bias.double()
bias_eff = bias_eff.gather(1, predicted[:, None])[:, 0]
print("FC network  | score y | Σ HiResCAM | y − Σ HiResCAM | b_eff  | Σ Grad-CAM")
for n in range(len(images)):
    print(f"  image {n}   | {score[n]:7.3f} | {hires_sum[n]:10.3f} | {score[n] - hires_sum[n]:14.3f} | "
          f"{bias_eff[n]:6.3f} | {gradcam_sum[n]:10.3f}")
print(f"largest |y − Σ HiResCAM − b_eff| over the images: {(score - hires_sum - bias_eff).abs().max():.4f}")

# %% [markdown]
# On the **GAP network** the gradient is the same at every position, $g^k_{ij} = W_{ck}/Z$ (notebook 05, section 1), so
# the average changes nothing: HiResCAM *is* Grad-CAM, and both maps add up to $y^c - b_c$. For the same reason
# XGrad-CAM's proportions, which sum to 1, give Grad-CAM's weight again, and LayerCAM equals positive-gradient
# Grad-CAM. On the FC network all four differ.

# %%
gap_capture = tinycam.capture(gap_model, images, gap_model.last_conv, target=predicted)
gap_acts, gap_grads = gap_capture.acts.double(), gap_capture.grads.double()
gap_score = gap_capture.scores.double().gather(1, predicted[:, None])[:, 0]
gap_hires_sum = T.weighted_combination(T.hirescam_weights(gap_grads), gap_acts).sum(dim=(-2, -1))
gap_gradcam_sum = T.weighted_combination(T.gradcam_weights(gap_grads), gap_acts).sum(dim=(-2, -1))
print("GAP network: y − Σ HiResCAM = " + ", ".join(f"{v:.3f}" for v in gap_score - gap_hires_sum)
      + "; y − Σ Grad-CAM = " + ", ".join(f"{v:.3f}" for v in gap_score - gap_gradcam_sum)
      + "; the classifier's bias b_c = " + ", ".join(f"{gap_model.classifier.bias[c]:.3f}" for c in predicted))
pairs = [("hirescam", "gradcam"), ("xgradcam", "gradcam"), ("layercam", "positive-gradcam")]
for network, model in (("GAP", gap_model), ("FC ", fc_model)):
    maps = {m: tinycam.explain(model, images, model.last_conv, method=m, target=predicted, normalize=False)
            for m in ("gradcam", "positive-gradcam", "hirescam", "layercam", "xgradcam")}
    print(f"{network} network, largest difference of the raw maps (in units of the map's maximum): " + ", ".join(
        f"{a} vs {b} {((maps[a] - maps[b]).abs().amax(dim=(-2, -1)) / maps[b].amax(dim=(-2, -1))).max():.6f}"
        for a, b in pairs))

# %% [markdown]
# ### Every method, side by side
#
# The maps of the FC network, where the methods differ, for the four images. Each map is min-max normalized on its own
# (`tinycam.explain`'s default), so the colours compare places *within* a map, not one map with another.

# %%
cam_methods = ["gradcam", "gradcam++", "hirescam", "layercam", "xgradcam", "scorecam"]
method_names = {"gradcam": "Grad-CAM", "gradcam++": "Grad-CAM++", "hirescam": "HiResCAM", "layercam": "LayerCAM",
                "xgradcam": "XGrad-CAM", "scorecam": "Score-CAM", "positive-gradcam": "positive Grad-CAM",
                "saliency": "gradient saliency", "guided-backprop": "guided backprop",
                "guided-gradcam": "Guided Grad-CAM", "occlusion": "occlusion", "cam": "CAM",
                "counterfactual": "counterfactual"}
fc_maps = {m: tinycam.explain(fc_model, images, fc_model.last_conv, method=m, target=predicted,
                              **({"progress": False} if m == "scorecam" else {})) for m in cam_methods}
show_grid([[images[n]] + [fc_maps[m][n] for m in cam_methods] for n in range(len(images))],
          titles=["image"] + [method_names[m] for m in cam_methods],
          row_labels=[f"{n}: {CLASSES[c]}" for n, c in enumerate(predicted)], size=1.6, cmap=HEATMAP_CMAP,
          colorbar=True, colorbar_label="each map min-max normalized on its own")
plt.suptitle("FC network, each map normalized to [0, 1] on its own (inferno)", y=1.03, fontsize=10)
plt.show()
for m in cam_methods[1:]:
    rho = metrics.spearman(fc_maps["gradcam"], fc_maps[m])
    print(f"Spearman's ρ with Grad-CAM's map, mean over the 4 images: {method_names[m]:10s} {rho.mean():5.2f}")

# %% [markdown]
# On these images the methods agree closely: the rank correlation of each map with Grad-CAM's is 0.94 or more, and
# by eye they all "look at the object". They still differ in detail (HiResCAM's raw map departs from Grad-CAM's by up
# to 16 % of its maximum, printed above), and only HiResCAM's adds up to the score. Looking alike is not being
# right; sections 2 and 3 test the maps instead of looking at them.
#
# Score-CAM pays for having no gradient with one forward pass per feature map: $K + 1$ passes per image (the $+1$ is
# the black baseline), against one forward and one backward pass for the whole batch for Grad-CAM.

# %%
# NBVAL_IGNORE_OUTPUT
from tinycam.course.bench import seconds  # the median of a few runs, after a warm-up

for network, model in (("GAP", gap_model), ("FC", fc_model)):
    gradcam_s = seconds(lambda m=model: tinycam.explain(m, images, m.last_conv, method="gradcam"))
    scorecam_s = seconds(lambda m=model: tinycam.explain(m, images, m.last_conv, method="scorecam", progress=False))
    n_maps = tinycam.capture(model, images[:1], model.last_conv).acts.shape[1]
    print(f"{network} network, 4 images: Grad-CAM {1000 * gradcam_s:.0f} ms, Score-CAM {1000 * scorecam_s:.0f} ms "
          f"({scorecam_s / gradcam_s:.0f}×; {n_maps + 1} forward passes per image)")

# %% [markdown]
# ## 2. Sanity checks: does the map depend on the model?
#
# Adebayo et al. (NeurIPS 2018) ask a simple question: if we destroy what the network learned, does the map change?
# A map that does not change shows the image (its edges and colours), not the model.
#
# - **Model parameter randomization** (their section 3): re-initialize the layers from the top (the output) down, one
#   more at each step, the *cascading randomization*, and compare each map with the map of the trained network.
#   `tinycam.sanity.cascading_randomization` makes these copies (the model itself is never changed). Each weight tensor
#   is redrawn from a normal distribution with the same standard deviation as its trained values, seeded.
# - **Data randomization** (their section 4): compare with a network trained on labels that were shuffled among the
#   images. That network learned nothing true about the images.
#
# How alike are two maps? The paper uses **Spearman's rank correlation** $\rho$ (the correlation of the pixels' ranks,
# with and without absolute values, since some maps are signed) and **SSIM**, the structural similarity (Wang et al.,
# IEEE TIP 2004), of the maps scaled to $[0, 1]$. Both are 1 for maps that agree; near 0 means the map changed.
#
# First, the picture: the map of one image after each step of the cascade, for Grad-CAM and for guided backprop (the
# lecture's sharp map; notebook 04).

# %%
strip_image = images[:1]
strip_target = predicted[:1]
cascade = [("trained", gap_model), *sanity.cascading_randomization(gap_model, seed=0)]
print("randomized from the top down: " + " → ".join(name for name, _ in cascade[1:]))
strip = {"gradcam": [], "guided-backprop": []}
for _, model in cascade:
    for method in strip:
        raw = tinycam.explain(model, strip_image, gap_model.last_conv, method=method, target=strip_target,
                              normalize=False)
        strip[method].append(sanity.comparable_maps(raw)[0])  # |map| / max |map|, one value per pixel
show_grid([[strip_image[0]] + strip[m] for m in strip],
          titles=["image", "trained"] + [f"+ {name}" for name, _ in cascade[1:]],
          row_labels=[method_names[m] for m in strip], size=1.7, colorbar=True, colorbar_label="|map| / max |map|")
plt.suptitle("Cascading randomization of the GAP network: |map| / max |map| of each map (inferno)", y=1.07,
             fontsize=10)
plt.show()

# %% [markdown]
# Grad-CAM's map changes as soon as the classifier is redrawn: the class weights are what Grad-CAM reads. Guided
# backprop's map keeps the outlines of both triangles while the classifier and then every conv layer but the first are
# destroyed; only when the first layer is redrawn too does it change. To put numbers on this we need a rank
# correlation.
#
# ### Exercise 2 (3 points): Spearman's rank correlation of two maps
#
# Write `spearman_rho(a, b)`: Spearman's $\rho$ of two maps of the same shape, every value counted as one pixel. Replace
# each map's values by their ranks (the smallest value gets the lowest rank), then take Pearson's correlation
# coefficient of the two rank arrays. Maps after a ReLU hold many **equal** values (a plateau of zeros): tied values get
# the *average* of the ranks they occupy, so the three equal smallest values of $(0, 0, 0, 5)$ get ranks $(1, 1, 1, 3)$
# counting from 0 (the average of 0, 1 and 2). The maps are never constant. Return one number.
#
# The check's first case is this pair of 3×3 maps (work out its answer by hand first: $\rho = 44.5 / 54.5$):

# %%
print(checks.EXERCISES["spearman_rho"].cases(0)[0][1][0])
print(checks.EXERCISES["spearman_rho"].cases(0)[0][1][1])

# %% tags=["exercise"]
def spearman_rho(a, b):
    """Spearman's rank correlation of two maps `a` and `b` of the same shape (ties share their average rank).

    a, b: arrays of the same shape, not constant. Returns a float.
    """
    ### BEGIN SOLUTION
    def average_ranks(values):
        values = np.asarray(values, dtype=np.float64).ravel()
        order = np.argsort(values, kind="stable")
        ranks = np.empty(values.size)
        ranks[order] = np.arange(values.size)
        for value in np.unique(values):  # tied values share the mean of their ranks
            tied = values == value
            ranks[tied] = ranks[tied].mean()
        return ranks

    ranks_a, ranks_b = average_ranks(a), average_ranks(b)
    ranks_a, ranks_b = ranks_a - ranks_a.mean(), ranks_b - ranks_b.mean()
    return float((ranks_a * ranks_b).sum() / np.sqrt((ranks_a**2).sum() * (ranks_b**2).sum()))
    ### END SOLUTION


# %% tags=["check"]
checks.spearman_rho(spearman_rho)

# %% [markdown]
# `tinycam.metrics.spearman` computes the same number for a whole batch of maps, and with `absolute=True` it ranks
# $|{\rm map}|$. `tinycam.sanity.randomization_similarity` runs each method on the trained network and on each
# randomized copy and measures the three similarities. Here it is on our four images, for the gradient methods of the
# lecture and the pixel-level ones of notebook 04 (`python -m tinycam evaluate` runs every method on 16 images; section
# 3 reads its table):

# %%
sanity_methods = ["gradcam", "gradcam++", "saliency", "guided-backprop", "guided-gradcam"]
cascade_similarity = sanity.randomization_similarity(gap_model, images, sanity_methods, gap_model.last_conv,
                                                     target=predicted, seed=0)
steps = cascade_similarity.steps
print("mean over the 4 images of ρ / ρ of |map| / SSIM, after randomizing the layers from the top down to ...")
print(f"{'method':18s}" + "".join(f"| {step:^18s}" for step in steps))
for number, method in enumerate(cascade_similarity.methods):
    print(f"{method_names[method]:18s}" + "".join(
        f"| {cascade_similarity.spearman[number, s].mean():4.2f} {cascade_similarity.spearman_abs[number, s].mean():4.2f}"
        f" {cascade_similarity.ssim[number, s].mean():4.2f}     " for s in range(len(steps))))

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), layout="constrained", sharey=True)
styles = {"gradcam": ("#0072B2", "-", "o"), "gradcam++": ("#E69F00", "-.", "s"), "saliency": ("#009E73", ":", "^"),
          "guided-backprop": ("#D55E00", "--", "D"), "guided-gradcam": ("#CC79A7", "--", "v")}
for ax, (measure, title) in zip(axes, [(cascade_similarity.spearman_abs, "Spearman's ρ of |map|"),
                                       (cascade_similarity.ssim, "SSIM")]):
    for number, method in enumerate(cascade_similarity.methods):
        colour, line, marker = styles[method]
        ax.plot(range(len(steps)), measure[number].mean(dim=1), color=colour, linestyle=line, marker=marker,
                label=method_names[method])
    ax.set_xticks(range(len(steps)), [f"+ {step}" for step in steps], rotation=20, fontsize=8)
    ax.axhline(0, color="gray", linewidth=0.5)
    ax.set_title(f"{title}, trained vs randomized (mean of 4 images)", fontsize=10)
axes[0].set_ylabel("similarity to the trained map")
axes[1].legend(fontsize=8)
plt.show()

# %% [markdown]
# Read the SSIM panel first, as the paper does. **Guided backprop and Guided Grad-CAM fail the test**: with the
# classifier and the top conv layer redrawn, when the network no longer knows any class, their maps keep an SSIM of
# about 0.7–0.8 with the trained ones, and they lose their structure only as the lowest layers go (Guided Grad-CAM
# still 0.4 with every layer random). Adebayo et al. explain it: guided backprop's rule (pass only positive gradients
# through each ReLU) turns the backward pass into a reconstruction of the image's edges, nearly whatever the weights
# above are. Guided Grad-CAM inherits it, because it multiplies that sharp map by Grad-CAM's coarse one.
#
# **Grad-CAM and gradient saliency pass**: they are already less alike than the guided methods after the classifier
# (SSIM about 0.65 against 0.85), and by the second step their SSIM is down to about 0.4 and 0.2.
#
# The rank correlation tells one more thing: **Grad-CAM++** keeps $\rho \approx 0.6$ even when every layer is
# random. Its weights are all positive (notebook 05), so its map is a positive mix of the feature maps, and even a
# random network's ReLU features light up where the image has structure. The map then ranks the pixels in roughly
# the same order whatever the weights are, while its detail (SSIM) changes. A high $\rho$ for a random network is a
# warning that the map shows the image more than the model. The course's table (section 3) finds the same for the
# other positive-weight methods, Score-CAM and LayerCAM.
#
# ### The data randomization test: a network trained on shuffled labels
#
# `tinycam.load_model("gap_shuffled")` is the GAP network trained with the same recipe, on the same images, with the
# label vectors permuted among the images (data/README.md). What did it learn? Compare its output with the label
# frequencies, on 300 held-out images:

# %%
held_out = make_images(300, seed=10000)  # the accuracy split
held_images = torch.from_numpy(held_out.images)
with torch.no_grad():
    shuffled_p = torch.sigmoid(models["gap_shuffled"](held_images))
    trained_p = torch.sigmoid(gap_model(held_images))
print("class       | share of images holding it | shuffled-label net: mean p, spread (std) over images | "
      "trained net: spread")
for c, name in enumerate(CLASSES):
    print(f"{name:11s} | {held_out.labels[:, c].mean():26.2f} | {shuffled_p[:, c].mean():23.2f}, "
          f"{shuffled_p[:, c].std():.3f}{'':21s} | {trained_p[:, c].std():.3f}")

# %% [markdown]
# It learned the **label frequencies** and nothing about the images: its probability for each class sits near the
# share of images holding that class and hardly moves from image to image (a spread of about 0.01, against about
# 0.45 for the trained network). Its per-label accuracy on its own shuffled training labels is 58.2 %, what always
# answering each class's more frequent label gives.
#
# That changes what the test means. Adebayo et al.'s networks *memorized* their random labels: they had learned
# something, just not the truth, and a map should explain that something. Ours knows nothing, so the test here asks
# the simplest question: does the map differ from the map of a network that knows nothing? A map that still outlines
# the objects on this network is drawing the image.

# %%
shuffled_similarity = sanity.randomization_similarity(
    gap_model, images, [*sanity_methods, "scorecam"], gap_model.last_conv, target=predicted,
    randomized=[("shuffled labels", models["gap_shuffled"])], options={"scorecam": {"progress": False}})
print("trained vs shuffled labels, mean over the 4 images:   ρ     ρ of |map|   SSIM")
for number, method in enumerate(shuffled_similarity.methods):
    print(f"{method_names[method]:18s}{'':34s} {shuffled_similarity.spearman[number, 0].mean():5.2f} "
          f"{shuffled_similarity.spearman_abs[number, 0].mean():9.2f} {shuffled_similarity.ssim[number, 0].mean():9.2f}")
show_grid([[images[0]] + [sanity.comparable_maps(tinycam.explain(model, images[:1], gap_model.last_conv, method=m,
                                                                  target=predicted[:1], normalize=False))[0]
                          for model in (gap_model, models["gap_shuffled"]) for m in ("gradcam", "guided-backprop")]],
          titles=["image", "Grad-CAM, trained", "guided bp, trained", "Grad-CAM, shuffled", "guided bp, shuffled"],
          size=1.8, colorbar=True, colorbar_label="|map| / max |map|")
plt.suptitle("Trained vs shuffled-label GAP network: |map| / max |map| (inferno)", y=1.12, fontsize=10)
plt.show()

# %% [markdown]
# Against a network that knows nothing every method changes a lot (SSIM 0.34 at most), which is the least a map
# should do. The guided methods keep the most structure: on the shuffled-label network guided backprop still draws
# the two triangles, filled in now, while Grad-CAM's map is a different picture.

# %% [markdown]
# ## 3. Faithfulness: delete the evidence and watch the score
#
# A sanity check says whether a map depends on the model; it does not say whether the map points at what the model
# *uses*. RISE (Petsiuk et al., BMVC 2018, section 4.1) measures that:
#
# - **Deletion**: remove the pixels in the map's order, most important first (here: set them to black), in $n$ equal
#   steps, and record the class probability $p_k$ after deleting the fraction $k/n$ of the pixels. A faithful map
#   makes $p$ fall fast. The score is the **area under the curve** (AUC), between 0 and 1: lower is better.
# - **Insertion**: start from a blurred copy of the image and put the pixels back in the map's order. A faithful map
#   makes $p$ rise fast: higher is better.
#
# ### Exercise 3 (2 points): the area under a deletion curve
#
# Write `deletion_auc(probabilities)`: the area under one or more curves, each given by its $n + 1$ probabilities
# $p_0, \dots, p_n$ at the fractions $0, 1/n, 2/n, \dots, 1$ of the pixels deleted. Use the trapezoid rule, as
# `tinycam.faithfulness` does: between two neighbouring points the curve is a straight line. The array has shape
# $(\dots, n + 1)$, a curve along its last axis; return one area per curve, shape $(\dots)$.
#
# The check's first case is a curve of 4 steps, $p = (0.9, 0.6, 0.3, 0.2, 0.1)$; its area is $0.4$ (work it out).

# %% tags=["exercise"]
def deletion_auc(probabilities):
    """The area under deletion curves given by their probabilities at evenly spaced fractions from 0 to 1.

    probabilities: array of shape (..., n + 1). Returns an array of shape (...), one area per curve.
    """
    ### BEGIN SOLUTION
    probabilities = np.asarray(probabilities, dtype=np.float64)
    steps = probabilities.shape[-1] - 1
    return ((probabilities[..., 1:] + probabilities[..., :-1]) / 2).sum(axis=-1) / steps
    ### END SOLUTION


# %% tags=["check"]
checks.deletion_auc(deletion_auc)

# %% [markdown]
# Now the curves of one image, for a few methods of the GAP network and, as a floor, a map of random numbers: a map
# that knows nothing deletes the pixels in a random order. Guided backprop's map has colour channels; as in the
# evaluation, each pixel gets its largest $|\cdot|$ over the channels.

# %%
curve_image, curve_target = images[1:2], predicted[1:2]
curve_methods = ["gradcam", "gradcam++", "scorecam", "guided-backprop", "occlusion"]
curve_options = {"scorecam": {"progress": False}, "occlusion": {"patch": 8, "stride": 8, "progress": False}}
curve_maps = {}
for method in curve_methods:
    raw = tinycam.explain(gap_model, curve_image, gap_model.last_conv, method=method, target=curve_target,
                          normalize=False, **curve_options.get(method, {}))
    curve_maps[method_names[method]] = raw.abs().amax(dim=1) if raw.ndim == 4 else raw
curve_maps["random map"] = torch.rand(curve_image.shape[-2:], generator=torch.Generator().manual_seed(0))[None]
curves = {name: (faithfulness.deletion_curve(gap_model, curve_image, m, curve_target, steps=32),
                 faithfulness.insertion_curve(gap_model, curve_image, m, curve_target, steps=32))
          for name, m in curve_maps.items()}
print(f"image 1 ({CLASSES[curve_target[0]]}), 32 steps of 128 pixels:")
for name, (deletion, insertion) in curves.items():
    print(f"  {name:16s} deletion AUC {deletion.auc[0]:.3f}   insertion AUC {insertion.auc[0]:.3f}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained", sharey=True)
colours = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#999999"]
lines = ["-", "-.", "--", ":", "-", "--"]
for ax, which, title in [(axes[0], 0, "deletion (lower area is better)"), (axes[1], 1, "insertion (higher is better)")]:
    for (name, pair), colour, line in zip(curves.items(), colours, lines):
        curve = pair[which]
        ax.plot(curve.fractions, curve.probabilities[0], color=colour, linestyle=line,
                label=f"{name} (AUC {curve.auc[0]:.3f})")
    ax.set_xlabel("fraction of the pixels " + ("deleted" if which == 0 else "inserted"))
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
axes[0].set_ylabel(f"p({CLASSES[curve_target[0]]})")
plt.show()

# %% [markdown]
# The deletion curves are not monotone. Score-CAM's and occlusion's go back up, to 0.8 and more, after a third of
# the image is gone, and guided backprop's jumps to 1.0 at once. What does the network see? The image after deleting
# the first 1/16, 1/8, 1/4 and 1/2 of its pixels in Grad-CAM's and in guided backprop's order:

# %%
fractions = [0, 1 / 16, 1 / 8, 1 / 4, 1 / 2]
deletion_rows, deletion_titles = [], []
for name in ("Grad-CAM", "guided backprop"):
    ranks = faithfulness.deletion_order(curve_maps[name])[0]
    deleted = [torch.where(ranks < int(f * ranks.numel()), 0.0, curve_image[0]) for f in fractions]
    with torch.no_grad():
        p_deleted = torch.sigmoid(gap_model(torch.stack(deleted)))[:, curve_target[0]]
    deletion_rows.append(deleted)
    print(f"{name:16s} p({CLASSES[curve_target[0]]}) after deleting " + ", ".join(
        f"{f:.3g}: {p:.2f}" for f, p in zip(fractions, p_deleted)))
show_grid(deletion_rows, titles=[f"{f:.3g} deleted" for f in fractions], row_labels=["Grad-CAM order",
                                                                                     "guided bp order"], size=1.9)
plt.show()

# %% [markdown]
# Grad-CAM's order removes a black blob over the square, and the probability falls at once. Guided backprop's order
# removes the square's edges and scattered grass, but leaves the flat inside of the square, where guided backprop's
# map is near zero: a cyan square in a black frame is still a square, and the probability even rises to 1. Score-CAM's
# and occlusion's curves climb back up as their black regions grow: a black region has a shape too, and a network
# that never saw one may read it as an object. The curve measures the network's reaction to images it never saw in
# training, not only whether the map found the evidence. Keep that in mind when reading the table.
#
# ### The course's table
#
# `python -m tinycam evaluate` runs every method of the course on 16 held-out images and writes `data/evaluation.md`
# (about two minutes; the notebook reads it rather than recomputing it). A few columns of it:

# %%
evaluation = (DATA_DIR / "evaluation.md").read_text(encoding="utf-8")
print(evaluation.splitlines()[2])  # the command that wrote the file
table = evaluation.split("| method | deletion AUC")[1].split("\n\n")[0].splitlines()[2:]  # the rows of the first table
rows = {cells[0]: cells[1:] for cells in ([c.strip() for c in line.strip("|").split("|")] for line in table)}
print()
print("method             | deletion ↓ | insertion ↑ | pointing % | energy % | ρ |map|, randomized | SSIM, randomized "
      "| ρ |map|, shuffled")
for method, cells in rows.items():
    deletion, insertion, pointing, energy, _, _, rho_abs, ssim_random, _, rho_abs_shuffled, _ = cells
    print(f"{method_names[method]:18s} | {deletion:>10s} | {insertion:>11s} | {pointing:>10s} | {energy:>8s} | "
          f"{rho_abs:>18s} | {ssim_random:>16s} | {rho_abs_shuffled:>17s}")

# %% [markdown]
# How to read it:
#
# - **Deletion separates the methods; insertion hardly does.** Every insertion AUC but the counterfactual's lies
#   between 0.94 and 0.96: on these small images the first inserted pixels give back nearly the whole probability,
#   whatever their order. Deletion ranks
#   occlusion first (it measures exactly what deletion does: the drop when a patch goes) and Grad-CAM, HiResCAM and
#   XGrad-CAM next. Guided backprop and gradient saliency, which point at every edge of the image, delete slowly.
# - **On the GAP network HiResCAM, XGrad-CAM and Grad-CAM share one row**, and LayerCAM shares positive-gradient
#   Grad-CAM's (section 1). The evaluation cannot tell them apart on this network.
# - **The counterfactual map** explains the *opposite* of the class, so it scores worst on every faithfulness and
#   localization column, as it should: a useful control.
# - **Randomization**: at the end of the cascade (every layer redrawn) all SSIMs are low (0.32 at most), but the rank
#   correlations of Grad-CAM++, positive-gradient Grad-CAM, LayerCAM and Score-CAM stay around 0.6–0.7, the
#   positive-weight effect of section 2. The file's second table shows the cascade step by step, where guided
#   backprop and Guided Grad-CAM hold their SSIM longest.
#
# ### What the numbers cannot tell
#
# - **Deletion creates images the network never saw.** The black shapes above are out of distribution: the probability
#   may fall because the image became strange, not because the evidence went, or stay up because what is left still
#   has the object's shape. **ROAD** (Rong et al., ICML 2022) is one answer. Rong et al. show that the shape of the
#   removed pixels itself leaks information about the class, so that removing the most important pixels first and the
#   least important first can rank the methods in contradicting orders. ROAD fills the removed pixels by *noisy linear
#   imputation* from their neighbours, so a removed region looks like its surroundings and carries no outline, and
#   with it the two orders agree. (`tinycam` does not implement it.)
# - **Only the map's order counts** for the curves. Two maps with the same ranking get the same curves, however
#   differently they spread their mass.
# - **Localization columns score agreement with the masks, not with the model.** A map can land on the object because
#   the object is where the edges are; the sanity checks are what tell these apart.
# - **16 images** give means that a few images can move; the shuffled-label network knows nothing (section 2), which
#   makes its test weaker than the paper's.

# %% [markdown]
# ## Summary
#
# - **Methods are weight rows.** HiResCAM ($w^k_{ij} = g^k_{ij}$), LayerCAM ($\mathrm{ReLU}(g^k_{ij})$), XGrad-CAM
#   ($\sum_{ij} \frac{A^k_{ij}}{\sum_{ab} A^k_{ab}} g^k_{ij}$) and Score-CAM (softmax of the score increases, $K + 1$
#   forward passes per image) all feed $\mathrm{ReLU}(\sum_k w^k \odot A^k)$.
# - **HiResCAM's guarantee, measured.** On the FC network its map (before the ReLU) adds up to $y^c - b_{\text{eff}}$ to
#   four decimals, and Grad-CAM's does not; on the GAP network the two maps are the same.
# - **Sanity checks.** Guided backprop and Guided Grad-CAM keep their structure while the top of the network is
#   destroyed: they fail the cascading randomization, as Adebayo et al. found. Grad-CAM and gradient saliency change
#   from the first step and lose most of their structure by the second. Positive-weight methods (Grad-CAM++,
#   LayerCAM, Score-CAM) keep a rank correlation of about 0.6 with a fully random network. The shuffled-label
#   network learned only the label frequencies, so its test asks only whether a map differs from that of a network
#   that knows nothing.
# - **Faithfulness.** Deletion ranks occlusion and Grad-CAM best and the edge maps worst; insertion barely separates
#   anything here. Deleting to black can leave something with the object's shape, which the network reads as the
#   object: the reason ROAD imputes instead.
#
# **To go further.** `python -m tinycam evaluate --n 64 --seed 1` reruns the table on other images;
# `tinycam.sanity.independent_randomization` redraws one layer at a time instead of the cascade.
