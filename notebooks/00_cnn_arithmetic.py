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
# # 00 · CNN arithmetic: sizes, padding, receptive fields, costs and the transposed convolution
#
# A class activation map is built from the feature maps of a CNN's last convolutional layer. Before we weigh and
# add those maps (notebook 01), we need to be fluent in the arithmetic that produced them: how large a feature map
# is, what happens at the image border, how much of the image one feature-map cell can see, what a layer costs, and
# how a network grows a small map back into a large one. The examples are the slides' own, small enough to check
# with a pencil.
#
# **What you will do**
#
# | § | topic | you will |
# |---|---|---|
# | 1 | convolution as deep learning means it | reproduce the slide's stride-2 example, by hand and with code |
# | 2 | output size | derive $W_o$ and write it (**Exercise 1**) |
# | 3 | the convolution loop | write a strided, padded 2-D convolution (**Exercise 2**) |
# | 4 | padding modes | compare five border rules and catch a trap in the slides (**Exercise 3**) |
# | 5 | dilation | see how spreading the taps widens the view for free |
# | 6 | receptive field | compute what a deep unit sees (**Exercise 4**) |
# | 7 | channels, depthwise separable convolution | sum over input channels; count multiply-accumulates |
# | 8 | transposed convolution | write a convolution as a matrix $C$ and upsample with $C^\top$ |
#
# **How the graded exercises work.** Each exercise is a code cell in which the signature and docstring of your
# function (or the name of the value you must give) are already written. Put your answer between the lines
# `### BEGIN SOLUTION` and `### END SOLUTION` (in your copy that region holds `raise NotImplementedError()`:
# delete it). Run the cell, then run the cell below it: it calls a check from `tinycam.course.checks`, which tries your
# answer on the slide's example and on many random cases and prints
#
# - `✓ name: ...` when every case is right;
# - `✗ name: ...` with what was expected, what your code returned and a **hint** aimed at the usual mistake.
#
# The checks compare against `tinycam.conv`, the package's tested implementation; the rest of the notebook uses
# that module, so a wrong answer in one exercise never breaks the cells after it. Points: 2 + 3 + 1 + 2 = 8.
#
# **Notation** (one letter per quantity, used throughout the course)
#
# | symbol | meaning |
# |---|---|
# | $W_i$, $W_o$ | width (or height) of the input and of the output feature map |
# | $K$ | kernel size (the kernel is $K \times K$) |
# | $S$ | stride: how many pixels the kernel moves between two outputs |
# | $P$ | padding: pixels added on *each* side of the input |
# | $d$ | dilation: distance between two neighbouring kernel taps |
# | $R$ | receptive field: the width of the input region one output value depends on |
# | $C_{in}$, $C_{out}$ | number of input and output channels |

# %%
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

from tinycam import conv
from tinycam.course import checks, lecture

examples = lecture.conv_examples()  # every slide number below comes from data/conv_arithmetic.json


def verdict(same):
    """A fixed word for a comparison, so printed results never depend on how NumPy spells a boolean."""
    return "same" if same else "DIFFERENT"


def draw_grid(ax, values, title="", cmap="Blues", vmin=None, vmax=None, boxes=(), fontsize=9):
    """Draw a 2-D array as coloured cells with each value written in its cell.

    boxes: (row, col, height, width, colour, linestyle) rectangles drawn on top, in cell units.
    """
    values = np.asarray(values, dtype=np.float64)
    image = ax.imshow(values, cmap=cmap, vmin=vmin, vmax=vmax)
    for (i, j), value in np.ndenumerate(values):
        red, green, blue, _ = image.cmap(image.norm(value))
        dark_cell = 0.299 * red + 0.587 * green + 0.114 * blue < 0.5
        ax.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=fontsize,
                color="white" if dark_cell else "black")
    for row, col, height, width, colour, style in boxes:
        ax.add_patch(Rectangle((col - 0.5, row - 0.5), width, height, fill=False, edgecolor=colour,
                               linewidth=2.5, linestyle=style))
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=10)


# %% [markdown]
# ## 1. Convolution as deep learning means it
#
# A convolutional layer slides a small $K \times K$ kernel $w$ over the (padded) input $x$. At each stop it
# multiplies the kernel with the patch under it, element by element, and adds the products:
#
# $$y(i, j) \;=\; \sum_{m=0}^{K-1} \sum_{n=0}^{K-1} x_{\text{pad}}(i S + m,\; j S + n)\; w(m, n).$$
#
# Moving one step in the output, $i \to i + 1$, moves the kernel $S$ pixels in the input. Notice that the kernel
# is **not flipped**. Signal processing would call this formula a *cross-correlation*; the mathematical
# convolution first turns the kernel by 180° (it pairs $x(i - m)$ with $w(m)$ rather than $x(i + m)$). Deep learning libraries compute the unflipped version and still call it
# convolution. Since the kernel is learned, the distinction does not change what a network can do, but it does
# change the numbers when you work through an example with a kernel given on a slide.
#
# The slide's example: a $6 \times 6$ input, zero-padded by $P = 1$ to $8 \times 8$, a vertical-edge kernel whose
# rows are $[1, 0, -1]$, and stride $S = 2$. The slide works out the first two outputs.

# %%
stride_example = examples["stride_example"]
x = stride_example["input"]
kernel = stride_example["kernel"]
S, P = stride_example["stride"], stride_example["padding"]

print(f"input {x.shape[0]}x{x.shape[1]}, kernel {kernel.shape[0]}x{kernel.shape[1]}, stride S = {S}, padding P = {P}")
print("input x:")
print(lecture.format_matrix(x, width=4, digits=0))
print("kernel w:")
print(lecture.format_matrix(kernel, width=4, digits=0))

# %% [markdown]
# First by hand. Pad with one ring of zeros, take the top-left $3 \times 3$ window, multiply by the kernel and add.
# For the second output the window moves $S = 2$ columns to the right.

# %%
x_pad = conv.pad(x, P)  # zeros on every side
for j in range(2):
    window = x_pad[0:3, j * S : j * S + 3]
    products = window * kernel + 0.0  # adding 0.0 turns the -0 of 0 x (-1) into a plain 0
    print(f"output (0, {j}): window x_pad[0:3, {j * S}:{j * S + 3}]")
    print(lecture.format_matrix(window, width=4, digits=0))
    print("  times the kernel, element by element:")
    print(lecture.format_matrix(products, width=4, digits=0))
    print(f"  sum = {products.sum():.0f}\n")

# %% [markdown]
# With the rows $[1, 0, -1]$ the kernel computes *(sum of the left column) minus (sum of the right column)* of
# each window: $0 - (0 + 9 + 6) = -15$ and $(0 + 9 + 6) - (0 + 5 + 4) = 6$. It responds to a change of brightness
# from left to right, which is why it is called a vertical-edge detector.
#
# Now the whole output with `conv.conv2d`, compared with the slide's first row and with the full $3 \times 3$
# result (the slide stops after two values; the data file stores all nine).

# %%
y = conv.conv2d(x, kernel, stride=S, padding=P)
print(f"conv.conv2d(x, w, stride={S}, padding={P}):")
print(lecture.format_matrix(y, width=4, digits=0))
print(f"first row vs the slide's {stride_example['slide_output_first_row'][0]:.0f}, "
      f"{stride_example['slide_output_first_row'][1]:.0f}: "
      f"{verdict(np.array_equal(y[0, :2], stride_example['slide_output_first_row']))}")
print(f"full {y.shape[0]}x{y.shape[1]} output vs the data file: {verdict(np.array_equal(y, stride_example['output']))}")

flipped = conv.conv2d(x, kernel[::-1, ::-1], stride=S, padding=P)
print(f"with a flipped kernel (true convolution) the first row would start "
      f"{flipped[0, 0]:.0f}, {flipped[0, 1]:.0f}: every sign changes for this kernel")

# %% [markdown]
# The picture below shows where the two worked outputs come from. The dashed grey square is the original
# $6 \times 6$ input inside its ring of zeros; the red and orange squares are the kernel windows for outputs
# $(0, 0)$ and $(0, 1)$, two columns apart because $S = 2$.

# %%
cell = 0.5  # inches per grid cell, the same in the three panels so that their cells line up
fig_w, fig_h = 17.0, 9.8  # figure size in cells: input (8) + gap + kernel (3) + gap + output (3), plus margins
fig = plt.figure(figsize=(fig_w * cell, fig_h * cell))


def panel(left, bottom, size):
    """An axes of size x size cells whose lower-left corner is (left, bottom), in cells."""
    return fig.add_axes((left / fig_w, bottom / fig_h, size / fig_w, size / fig_h))


draw_grid(panel(0.3, 0.4, 8), x_pad, f"padded input ({x_pad.shape[0]}x{x_pad.shape[1]}, P = {P})", cmap="Blues",
          boxes=[(P, P, x.shape[0], x.shape[1], "grey", "--"),
                 (0, 0, 3, 3, "crimson", "-"), (0, S, 3, 3, "darkorange", "-")])
draw_grid(panel(9.7, 2.9, 3), kernel, "kernel w", cmap="coolwarm", vmin=-1.5, vmax=1.5)
limit = np.abs(y).max()
draw_grid(panel(14.1, 2.9, 3), y, f"output ({y.shape[0]}x{y.shape[1]}, S = {S})", cmap="coolwarm",
          vmin=-limit, vmax=limit, boxes=[(0, 0, 1, 1, "crimson", "-"), (0, 1, 1, 1, "darkorange", "-")])
fig.text(9.0 / fig_w, 4.4 / fig_h, "∗", fontsize=24, ha="center", va="center")
fig.text(13.4 / fig_w, 4.4 / fig_h, "=", fontsize=24, ha="center", va="center")
fig.suptitle("Stride 2: each output reads one 3x3 window of the padded input; windows start 2 columns apart")
plt.show()

# %% [markdown]
# ## 2. How big is the output?
#
# Count the positions the kernel can take along one axis. The padded input is $W_i + 2P$ pixels wide (padding is
# added on **both** sides). A kernel of size $K$ fits at the first $W_i + 2P - K + 1$ positions if it moves one
# pixel at a time; with stride $S$ it only stops at every $S$-th of them:
#
# $$W_o \;=\; \left\lfloor \frac{W_i + 2P - K}{S} \right\rfloor + 1.$$
#
# The slide writes the formula without the floor $\lfloor\cdot\rfloor$. When $S$ does not divide
# $W_i + 2P - K$, the last window would hang over the edge; every framework simply drops it, which is what the
# floor says. In the slide's example $W_i = 6, K = 3, S = 2, P = 1$ gives $\lfloor 5/2 \rfloor + 1 = 3$.
#
# Two special cases are worth remembering:
#
# - **"same" padding**: with $S = 1$ and an odd $K$, choosing $P = (K - 1)/2$ gives $W_o = W_i$ (a $3 \times 3$
#   kernel needs $P = 1$, a $5 \times 5$ kernel $P = 2$);
# - **downsampling**: with $S = 2$ and "same" padding, $W_o = \lceil W_i / 2 \rceil$; this is how networks halve
#   their feature maps.
#
# **Dilation** (§5) spreads the $K$ taps of the kernel $d$ pixels apart, so the kernel covers
# $K_{\text{eff}} = K + (K - 1)(d - 1)$ pixels while keeping its $K$ taps per axis. It enters the size formula through
# $K_{\text{eff}}$:
#
# $$W_o \;=\; \left\lfloor \frac{W_i + 2P - K - (K - 1)(d - 1)}{S} \right\rfloor + 1.$$
#
# The table checks the formula against the shape that `conv.conv2d` actually produces.

# %%
configurations = [  # (what, W_i, K, S, P, d)
    ("the slide's example", x.shape[0], kernel.shape[0], S, P, 1),
    ("'same' padding, 3x3", 7, 3, 1, 1, 1),
    ("stride 2, no padding", 7, 3, 2, 0, 1),
    ("ResNet's 7x7 stem", 224, 7, 2, 3, 1),
    ("dilated 3x3, d = 2", 32, 3, 1, 0, 2),
]
print(f"{'layer':<22} {'W_i':>4} {'K':>2} {'S':>2} {'P':>2} {'d':>2}  {'(W_i+2P-K_eff)/S+1':>19}  {'W_o':>4}  conv2d")
for what, w_in, k, s, p, d in configurations:
    exact = (w_in + 2 * p - (k + (k - 1) * (d - 1))) / s + 1
    w_out = conv.output_size(w_in, k, s, p, d)
    measured = conv.conv2d(np.zeros((w_in, w_in)), np.ones((k, k)), s, p, d).shape[0]
    print(f"{what:<22} {w_in:>4} {k:>2} {s:>2} {p:>2} {d:>2}  {exact:>19.1f}  {w_out:>4}  {measured:>6}")

# %% [markdown]
# ### Exercise 1 (2 points): output size
#
# Write `output_size(w_in, k, stride, padding, dilation)`, returning $W_o$ as a Python `int`. Remember the floor
# (integer division `//`), the $2P$, and the dilated kernel size. The check tries the slide's example and 24 random
# layers.

# %% tags=["exercise"]
def output_size(w_in, k, stride=1, padding=0, dilation=1):
    """W_o = floor((W_i + 2P - K_eff) / S) + 1, with K_eff = K + (K - 1)(d - 1).

    w_in: input width W_i; k: kernel size K; stride: S; padding: P (on each side); dilation: d.
    Returns the output width as an int.
    """
    ### BEGIN SOLUTION
    k_eff = k + (k - 1) * (dilation - 1)
    return (w_in + 2 * padding - k_eff) // stride + 1
    ### END SOLUTION


# %% tags=["check"]
checks.output_size(output_size)

# %% [markdown]
# ## 3. The convolution loop
#
# The formula of §1 translates almost word for word into code: pad, work out $W_o$ for each axis, and for every
# output position $(i, j)$ take the window `x_pad[i*S : i*S + K, j*S : j*S + K]`, multiply it by the kernel and
# add. Two loops over the output and one NumPy product per window are all you need.
#
# ### Exercise 2 (3 points): a strided, zero-padded 2-D convolution
#
# Write `conv2d(x, kernel, stride, padding)` for a single-channel input: zero padding on every side, stride $S$,
# no dilation, **no kernel flip**. The kernel may be rectangular ($K_h \times K_w$), so read both of its sizes.
# `np.pad(x, padding)` pads with zeros. The check runs the slide's stride-2 example, the $4 \times 4$ example of
# §8 and six random inputs, and recognises a flipped kernel, a forgotten padding and a forgotten stride.

# %% tags=["exercise"]
def conv2d(x, kernel, stride=1, padding=0):
    """y(i, j) = sum_mn x_pad(i*S + m, j*S + n) * w(m, n): cross-correlation with zero padding and a stride.

    x: (H, W) input; kernel: (K_h, K_w); stride: S; padding: P zeros added on every side.
    Returns the (H_o, W_o) output as a float array.
    """
    ### BEGIN SOLUTION
    x_pad = np.pad(np.asarray(x, dtype=np.float64), padding)
    kernel = np.asarray(kernel, dtype=np.float64)
    k_h, k_w = kernel.shape
    out_h = (x_pad.shape[0] - k_h) // stride + 1
    out_w = (x_pad.shape[1] - k_w) // stride + 1
    y = np.zeros((out_h, out_w))
    for i in range(out_h):
        for j in range(out_w):
            window = x_pad[i * stride : i * stride + k_h, j * stride : j * stride + k_w]
            y[i, j] = np.sum(window * kernel)
    return y
    ### END SOLUTION


# %% tags=["check"]
checks.conv2d(conv2d)

# %% [markdown]
# *Going further.* Your loop visits each of the $W_o^2$ outputs once. `conv.conv2d` turns the loops around: it
# visits each of the $K^2$ kernel taps once and adds `w[m, n]` times a strided slice of the whole padded input.
# Same sums, far fewer Python iterations when the output is larger than the kernel, which it almost always is.
# Read it in `tinycam/conv.py`; it also handles dilation and the padding modes of the next section.

# %% [markdown]
# ## 4. Padding modes: what lies beyond the border?
#
# Padding decides what the kernel sees when it hangs over the edge of the image. Zeros are the default, but
# zeros are a claim about the image ("it is black out there") that is usually false. The other modes invent the
# missing pixels from the image itself. Take one row $a\,b\,c\,d\,e$ padded by 2 on each side:
#
# | torch `padding_mode` | `np.pad` mode | the padded row | rule |
# |---|---|---|---|
# | `zeros` | `constant` | $0\;0 \;\vert\; a\;b\;c\;d\;e \;\vert\; 0\;0$ | a constant (zero) outside |
# | `replicate` | `edge` | $a\;a \;\vert\; a\;b\;c\;d\;e \;\vert\; e\;e$ | copy the edge pixel outwards |
# | `reflect` | `reflect` | $c\;b \;\vert\; a\;b\;c\;d\;e \;\vert\; d\;c$ | mirror about the **centre of the edge pixel**: the edge is *not* repeated |
# | `circular` | `wrap` | $d\;e \;\vert\; a\;b\;c\;d\;e \;\vert\; a\;b$ | the image repeats periodically |
# | (none) | `symmetric` | $b\;a \;\vert\; a\;b\;c\;d\;e \;\vert\; e\;d$ | mirror about the **outer side of the edge pixel**: the edge *is* repeated |
#
# `reflect` and `symmetric` are both "mirror" paddings and easy to confuse: look at the two pixels on either side
# of the border. `reflect` needs $P < W_i$ (there must be something to mirror). PyTorch's convolutions offer the
# first four modes; `symmetric` exists in NumPy but not in torch.
#
# Here are the five modes applied to the slide's $5 \times 5$ input with $P = 2$, which gives
# $5 + 2 \cdot 2 = 9$ rows and columns. The dashed square marks the original input.

# %%
padding_example = examples["padding_example"]
x5 = padding_example["input"]
p5 = padding_example["padding"]

fig, axes = plt.subplots(2, 3, figsize=(11, 7.6), layout="constrained")  # two rows: cell values stay legible
for ax, (mode, np_mode) in zip(axes.ravel(), conv.PADDING_MODES.items()):
    padded = conv.pad(x5, p5, mode)
    draw_grid(ax, padded, f"{mode}\nnp.pad mode='{np_mode}'", cmap="YlGnBu", vmin=0, vmax=12, fontsize=10,
              boxes=[(p5, p5, x5.shape[0], x5.shape[1], "crimson", "--")])
axes[-1, -1].axis("off")
fig.suptitle(f"The slide's {x5.shape[0]}x{x5.shape[1]} input padded by P = {p5} in five ways")
plt.show()

# %% [markdown]
# The slide shows four of these pictures, labelled *Zero/Constant*, *Replicate/Edge*, *Reflective* and
# *Circular*. Here is its *Reflective Padding* table, exactly as it is stored in the data file:

# %%
slide_label = "Reflective Padding"
slide_reflective = padding_example["padded"][padding_example["slide_label_to_mode"][slide_label]]
print(f"the slide's '{slide_label}' ({slide_reflective.shape[0]}x{slide_reflective.shape[1]}):")
print(lecture.format_matrix(slide_reflective, width=3, digits=0))

# %% [markdown]
# ### Exercise 3 (1 point): which mirror is the slide's?
#
# Compare the first two columns and the first two rows of the slide's table with the figure above. Set
# `reflective_mode` to the **`np.pad` mode name** (a string) that reproduces the slide's *Reflective Padding*
# table. The check pads the slide's input with `np.pad(x, 2, mode=reflective_mode)` and compares.

# %% tags=["exercise"]
reflective_mode = None  # your answer: one of "constant", "edge", "reflect", "symmetric", "wrap"
### BEGIN SOLUTION
reflective_mode = "symmetric"
### END SOLUTION

# %% tags=["check"]
checks.reflective_mode(reflective_mode)

# %% [markdown]
# **The trap.** Look at the third row of the slide's table, the first row of the image with its padding:
# `3 5 | 5 3 8 1 6 | 6 1`. The edge values 5 and 6 appear twice, next to themselves: the mirror sits on the outer
# side of the edge pixel. That is NumPy's `symmetric`. If you rebuild the slide's layer in PyTorch with `padding_mode="reflect"` you get
# `8 3 | 5 3 8 1 6 | 1 8` instead: the mirror passes through the edge pixel, which is not repeated. Different
# border pixels mean different convolution outputs near the border, so "reflective padding" in a paper or a slide
# is ambiguous until you check which of the two is meant.
#
# The cell below compares every table on the slide with `conv.pad`, and then the slide's "reflective" table with
# torch's `reflect`.

# %%
label_to_mode = padding_example["slide_label_to_mode"]
comparisons = list(label_to_mode.items()) + [(slide_label, "reflect")]  # the last one: torch's "reflect"
for label, mode in comparisons:
    same = np.array_equal(conv.pad(x5, p5, mode), padding_example["padded"][label_to_mode[label]])
    call = f"conv.pad(x, {p5}, '{mode}')"
    print(f"{'slide ' + repr(label):<32} vs {call:<28} -> {verdict(same)}")
print()
row = p5  # the first row of the original image, inside the padding
for mode in ("symmetric", "reflect"):
    values = " ".join(f"{v:.0f}" for v in conv.pad(x5, p5, mode)[row])
    print(f"row {row} with {mode:<9}: {values}")

# %% [markdown]
# Why care about the border at all? A kernel that detects edges finds one wherever the padding disagrees with the
# image. On a perfectly flat image there is no edge anywhere, yet zero padding creates one along the whole border;
# the modes that build the border from the image itself (and `circular`, on a flat image) do not.

# %%
flat = np.full((5, 5), 5.0)
for mode in conv.PADDING_MODES:
    response = conv.conv2d(flat, kernel, stride=1, padding=1, mode=mode)
    print(f"{mode:<9}  largest |response| to a flat image: {np.abs(response).max():5.1f}")

# %% [markdown]
# ## 5. Dilation: a wider view with the same weights
#
# A dilated (or *atrous*) convolution keeps $K \times K$ weights but places them $d$ pixels apart, leaving $d - 1$
# skipped pixels between neighbouring taps:
#
# $$y(i, j) = \sum_{m=0}^{K-1} \sum_{n=0}^{K-1} x_{\text{pad}}(i S + m d,\; j S + n d)\; w(m, n).$$
#
# The span of the kernel, its receptive field, grows linearly with $d$:
#
# $$R = K + (K - 1)(d - 1).$$
#
# The number of weights and of multiply-accumulates stays $K^2$ per output. The price: the kernel reads only every
# $d$-th pixel. A stack of layers with the same $d$ only ever combines pixels that lie on a sparse grid $d$ apart,
# so neighbouring outputs are computed from disjoint sets of pixels and the result can show a checkerboard-like
# pattern ("gridding" artefacts).

# %%
k_demo = 3
grid = 9
dilations = (1, 2, 3)
fig, axes = plt.subplots(1, len(dilations), figsize=(11, 4.2), layout="constrained")
for ax, d in zip(axes, dilations):
    span = conv.dilated_receptive_field(k_demo, d)
    start = (grid - span) // 2
    taps = np.zeros((grid, grid))
    for m in range(k_demo):
        for n in range(k_demo):
            taps[start + m * d, start + n * d] = 1
    ax.imshow(taps, cmap="Oranges", vmin=0, vmax=1.6)
    for m in range(k_demo):
        for n in range(k_demo):
            ax.text(start + n * d, start + m * d, f"w{m}{n}", ha="center", va="center", fontsize=8)
    ax.add_patch(Rectangle((start - 0.5, start - 0.5), span, span, fill=False, edgecolor="crimson", linewidth=2))
    ax.set_xticks(np.arange(-0.5, grid, 1), minor=True)
    ax.set_yticks(np.arange(-0.5, grid, 1), minor=True)
    ax.grid(which="minor", color="lightgrey", linewidth=0.8)
    ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
    ax.set_title(f"K = {k_demo}, d = {d}: R = {span}")
fig.suptitle("The same 9 weights, spread out: the red square is the span R = K + (K - 1)(d - 1)")
plt.show()

# %%
print(f"{'K':>2} {'d':>2} {'R':>4} {'weights':>8}")
for k in (3, 5):
    for d in (1, 2, 4, 8):
        print(f"{k:>2} {d:>2} {conv.dilated_receptive_field(k, d):>4} {k * k:>8}")

# %% [markdown]
# ## 6. Receptive field: how much of the image does one unit see?
#
# The receptive field $R_l$ of layer $l$ is the width of the input region that a single value of layer $l$
# depends on. A first layer with a $K_1 \times K_1$ kernel sees $R_1 = K_1$ pixels. Each later layer looks at
# $K_l$ neighbouring units of the layer below, and two neighbouring units of that layer are
# $J_{l-1} = \prod_{i=1}^{l-1} S_i$ input pixels apart (the *jump*: every stride so far multiplies it). So layer
# $l$ adds $K_l - 1$ jumps to the field of the layer below:
#
# $$R_1 = K_1, \qquad R_l = R_{l-1} + (K_l - 1) \prod_{i=1}^{l-1} S_i .$$
#
# Pooling layers count as layers: a $2 \times 2$ pool with stride 2 has $K = 2$, $S = 2$. The stride of layer $l$
# itself does not enter $R_l$; it only widens the step for the layers *after* it.
#
# A small VGG-like network: two $3 \times 3$ convolutions, a $2 \times 2$ pool, two more convolutions, a pool,
# three convolutions.

# %%
network = [  # (name, K, S)
    ("conv1", 3, 1), ("conv2", 3, 1), ("pool1", 2, 2),
    ("conv3", 3, 1), ("conv4", 3, 1), ("pool2", 2, 2),
    ("conv5", 3, 1), ("conv6", 3, 1), ("conv7", 3, 1),
]
names = [name for name, _, _ in network]
kernels = [k for _, k, _ in network]
strides = [s for _, _, s in network]
fields = conv.receptive_field(kernels, strides)

print(f"{'layer':<6} {'K':>2} {'S':>2} {'jump before':>12} {'R':>4}")
jump = 1
for name, k, s, r in zip(names, kernels, strides, fields):
    print(f"{name:<6} {k:>2} {s:>2} {jump:>12} {r:>4}")
    jump *= s
print(f"after the last layer, neighbouring units are {jump} input pixels apart")

# %% [markdown]
# The recursion is not magic: we can *count* the receptive field. Send an impulse (a single 1 among zeros) through
# a 1-D version of the network, with all-ones kernels so that nothing cancels, and record whether it reaches the
# first unit of each layer. The input positions that do reach it form the receptive field of that unit.

# %%
n_inputs = 48
reaches = np.zeros((len(network), n_inputs), dtype=bool)  # reaches[l, p]: does an impulse at p reach unit 0 of l?
for position in range(n_inputs):
    signal = np.zeros((1, n_inputs))
    signal[0, position] = 1.0
    for layer, (k, s) in enumerate(zip(kernels, strides)):
        signal = conv.conv2d(signal, np.ones((1, k)), stride=s)
        reaches[layer, position] = signal[0, 0] != 0

print(f"{'layer':<6} {'R (recursion)':>14} {'R (impulses)':>13}")
for name, r, reached in zip(names, fields, reaches):
    positions = np.flatnonzero(reached)
    print(f"{name:<6} {r:>14} {len(positions):>13}   (input pixels {positions[0]}..{positions[-1]})")

# %% [markdown]
# For class activation maps this matters twice. Each cell of a Grad-CAM map is one unit of the last convolutional
# layer: it depends on a receptive field that is often a large part of the image. And the map's cells are one jump
# apart: a network whose strides multiply to 32 turns a $224 \times 224$ image into a $7 \times 7$ map, which has
# to be upsampled to lie over the image.
#
# **Theoretical and effective receptive field.** $R_l$ is the *theoretical* receptive field: the pixels that can
# influence the unit at all. They do not influence it equally. A pixel near the centre of the field reaches the unit
# along many more paths through the layers than a pixel at its edge, so the *effective* receptive field, the region
# that really moves the unit, is smaller and centre-weighted (Luo et al., "Understanding the Effective Receptive
# Field in Deep Convolutional Neural Networks", NeurIPS 2016, measured it with gradients and found it close to a
# Gaussian). And a unit near the border of a padded layer has part of its field in the padding, where there is no
# image: its field is clipped. Both can be counted with the impulses of the last cell. With all-ones kernels (the
# pools as sums), the value that reaches the unit is the number of paths from the impulse's pixel. For the border,
# the layers of notebook 02's GAP network (3×3 convs with $P = 1$, 2×2 pools; $R = 26$) on a 64-pixel-wide image.

# %%
paths = np.zeros(n_inputs)  # paths[p]: the number of paths from input pixel p to unit 0 of the last layer
for position in range(n_inputs):
    signal = np.zeros((1, n_inputs))
    signal[0, position] = 1.0
    for size, step in zip(kernels, strides):
        signal = conv.conv2d(signal, np.ones((1, size)), stride=step)
    paths[position] = signal[0, 0]
field = paths[paths > 0]  # the R = 40 pixels of the theoretical field
middle = field[len(field) // 4 : len(field) - len(field) // 4]  # its central half
print(f"{names[-1]}: R = {len(field)}; paths from the field's edge pixel {field[0]:.0f}, "
      f"from its centre pixel {field.max():.0f}")
print(f"the central {len(middle)} of its {len(field)} pixels carry {middle.sum() / field.sum():.1%} of the paths")

gap_net = [(3, 1, 1), (2, 2, 0), (3, 1, 1), (2, 2, 0), (3, 1, 1), (3, 1, 1)]  # (K, S, P) of notebook 02's model
width = 64
seen = np.zeros((16, width), dtype=bool)  # seen[cell, p]: does image pixel p reach cell `cell` of the 16-wide map?
for position in range(width):
    signal = np.zeros((1, width))
    signal[0, position] = 1.0
    for k, s, p in gap_net:
        signal = conv.conv2d(np.pad(signal, ((0, 0), (p, p))), np.ones((1, k)), stride=s)  # pad the width only
    seen[:, position] = signal[0] != 0
for cell in (0, 1, 8, 15):
    pixels = np.flatnonzero(seen[cell])
    print(f"GAP network, cell {cell:2d} of 16: image pixels {pixels[0]:2d}..{pixels[-1]:2d}, "
          f"{len(pixels)} of R = {conv.receptive_field([k for k, _, _ in gap_net], [s for _, s, _ in gap_net])[-1]}")

# %% [markdown]
# The central half of the field carries almost nine tenths of the paths: the unit mostly sees the middle of its
# field. And the corner cell of the GAP network sees only 15 image pixels per axis instead of 26 (a third of the
# $26 \times 26$ square in 2-D); the rest of its field lies in the padding. A CAM cell at the border is therefore
# built from less of the image, and part of what it sees is the artificial edge that zero padding draws (§4).
#
# ### Exercise 4 (2 points): receptive field
#
# Write `receptive_field(kernels, strides)` returning the list $[R_1, \dots, R_L]$ for the listed layers. Keep a
# running product of the strides, and update it *after* using it for the current layer.

# %% tags=["exercise"]
def receptive_field(kernels, strides):
    """R_1 = K_1 and R_l = R_{l-1} + (K_l - 1) * S_1 * ... * S_{l-1}.

    kernels: [K_1, ..., K_L]; strides: [S_1, ..., S_L]. Returns the list [R_1, ..., R_L].
    """
    ### BEGIN SOLUTION
    fields = []
    jump = 1  # product of the strides of the layers before the current one
    for k, s in zip(kernels, strides):
        previous = fields[-1] if fields else 1
        fields.append(previous + (k - 1) * jump)
        jump *= s
    return fields
    ### END SOLUTION


# %% tags=["check"]
checks.receptive_field(receptive_field)

# %% [markdown]
# ## 7. Depthwise separable convolution: the same job for a fraction of the work
#
# So far every input had one channel. A real layer's input has $C_{in}$ of them (3 for an RGB image, 64 for the
# feature maps of notebook 02). Each filter then has one $K \times K$ slice per input channel, a
# $K \times K \times C_{in}$ block: slice $c$ is slid over channel $c$, and the $C_{in}$ results are **added**
# (plus one bias), giving *one* output map per filter:
#
# $$y_o(i, j) \;=\; b_o + \sum_{c=1}^{C_{in}} \sum_{m,n} x_{\text{pad}}(c,\; iS + m,\; jS + n)\; w_o(c, m, n).$$
#
# A layer with $C_{out}$ filters gives $C_{out}$ maps; its weight tensor has shape $(C_{out}, C_{in}, K, K)$, as in
# `torch.nn.Conv2d`. The cell below builds a three-channel output from the single-channel `conv.conv2d`, one
# channel at a time, and compares it with torch's `conv2d`.

# %%
import torch

rng_channels = np.random.default_rng(1)
x_rgb = rng_channels.normal(size=(3, 6, 6))  # C_in = 3 channels of 6 x 6
filters = rng_channels.normal(size=(2, 3, 3, 3))  # C_out = 2 filters of K x K x C_in = 3 x 3 x 3
biases = rng_channels.normal(size=2)
by_channel = np.stack([biases[o] + sum(conv.conv2d(x_rgb[c], filters[o, c], stride=1, padding=1) for c in range(3))
                       for o in range(2)])
by_torch = torch.nn.functional.conv2d(torch.from_numpy(x_rgb)[None], torch.from_numpy(filters),
                                      torch.from_numpy(biases), padding=1)[0].numpy()
print(f"input {x_rgb.shape}, weight {filters.shape} (C_out, C_in, K, K) -> output {by_channel.shape}")
print(f"sum over channels of conv.conv2d vs torch's conv2d (float64, to 1e-12): "
      f"{verdict(np.allclose(by_channel, by_torch, rtol=0, atol=1e-12))}")

# %% [markdown]
# Each output value mixes space and channels at once. Counting multiply-accumulates (MACs) of a regular layer
# for an $H \times W$ output:
#
# $$\text{regular:}\quad C_{out} \cdot C_{in} \cdot K^2 \cdot H W .$$
#
# A depthwise separable layer splits the job in two. A **depthwise** step filters each input channel with its own
# $K \times K$ kernel (space only, $C_{in}$ maps out), then a **pointwise** $1 \times 1$ convolution mixes the
# channels into $C_{out}$ maps:
#
# $$\text{separable:}\quad \underbrace{C_{in} \cdot K^2 \cdot H W}_{\text{depthwise}}
# \;+\; \underbrace{C_{out} \cdot C_{in} \cdot H W}_{\text{pointwise}} .$$
#
# Dividing the second by the first, $H W$ and $C_{in}$ cancel:
#
# $$\frac{\text{separable}}{\text{regular}} \;=\; \frac{1}{C_{out}} + \frac{1}{K^2}.$$
#
# The number of weights shrinks by the same ratio ($C_{out} C_{in} K^2$ against $C_{in} K^2 + C_{out} C_{in}$).
# MobileNet, Xception and EfficientNet are built on this trade.
#
# **A slip in the slides.** The CNN slides (004) describe the depthwise step as "the convolutional filter of size
# $K \times K \times C_{in}$" acting on each channel separately. Read it as $C_{in}$ separate $K \times K$ filters,
# one per channel, with **no sum over channels**: a single $K \times K \times C_{in}$ filter would add the channels
# up and give one map, not $C_{in}$. In torch the depthwise step is a `Conv2d` with `groups=C_in`, whose weight has
# shape $(C_{in}, 1, K, K)$:

# %%
torch.manual_seed(0)  # the layers' random initial weights
c_demo, k_demo_dw = 128, 3
depthwise = torch.nn.Conv2d(c_demo, c_demo, k_demo_dw, padding=1, groups=c_demo, bias=False)
pointwise = torch.nn.Conv2d(c_demo, c_demo, 1, bias=False)
regular_layer = torch.nn.Conv2d(c_demo, c_demo, k_demo_dw, padding=1, bias=False)
print(f"depthwise weight {tuple(depthwise.weight.shape)}: {depthwise.weight.numel():,d} weights "
      f"= C_in x K^2 = {c_demo * k_demo_dw**2:,d}")
print(f"pointwise weight {tuple(pointwise.weight.shape)}: {pointwise.weight.numel():,d} weights "
      f"= C_out x C_in = {c_demo * c_demo:,d}")
print(f"regular weight   {tuple(regular_layer.weight.shape)}: {regular_layer.weight.numel():,d} weights "
      f"= C_out x C_in x K^2 = {c_demo * c_demo * k_demo_dw**2:,d}")
with torch.no_grad():  # output channel c of the depthwise step depends on input channel c only
    probe = torch.zeros(1, c_demo, 8, 8)
    probe[0, 7] = 1.0  # light up input channel 7 only
    answer = depthwise(probe)[0]
print(f"depthwise: lighting up input channel 7 changes output channels "
      f"{torch.nonzero(answer.abs().amax(dim=(1, 2)) > 0).flatten().tolist()} only")

# %%
h = w = 56
c_in = c_out = 128
k = 3
regular = conv.conv_cost(h, w, c_in, c_out, k)
separable = conv.depthwise_separable_cost(h, w, c_in, c_out, k)
print(f"layer: {h}x{w} output, {c_in} -> {c_out} channels, {k}x{k} kernel")
print(f"  regular             {regular:>13,d} MACs")
print(f"  depthwise separable {separable:>13,d} MACs "
      f"(depthwise {c_in * k * k * h * w:,d} + pointwise {c_out * c_in * h * w:,d})")
print(f"  ratio               {separable / regular:13.4f}   (1/C_out + 1/K^2 = {1 / c_out + 1 / k**2:.4f})")
print(f"  fewer MACs by       {regular / separable:13.2f}x")

# %% [markdown]
# The ratio depends only on $C_{out}$ and $K$. With many output channels the $1/C_{out}$ term fades and the saving
# approaches $K^2$ (9× for $3 \times 3$ kernels); the pointwise step then does almost all of the remaining work.

# %%
print(f"{'C_out':>6}  {'K=3':>7}  {'K=5':>7}  {'K=7':>7}")
for c in (16, 64, 256, 1024):
    ratios = [conv.depthwise_separable_cost(1, 1, 1, c, kk) / conv.conv_cost(1, 1, 1, c, kk) for kk in (3, 5, 7)]
    print(f"{c:>6}  " + "  ".join(f"{ratio:7.4f}" for ratio in ratios))

# %% [markdown]
# ## 8. Transposed convolution: a convolution written as a matrix, then transposed
#
# Segmentation and localisation networks (U-Net, for example) need to make feature maps *larger* again. A
# transposed convolution is a learned upsampling layer, and the cleanest way to understand it is through a matrix.
#
# **Step 1: convolution is a matrix product.** The slide convolves a $4 \times 4$ input with a $3 \times 3$ kernel
# ($S = 1$, $P = 0$), giving a $2 \times 2$ output.

# %%
transposed_example = examples["transposed_example"]
x4 = transposed_example["input"]
kernel4 = transposed_example["kernel"]
y4 = conv.conv2d(x4, kernel4)
print("conv.conv2d(x, w):")
print(lecture.format_matrix(y4, width=4, digits=0))
print(f"vs the slide: {verdict(np.array_equal(y4, transposed_example['conv_output']))}")

# %% [markdown]
# Flatten the input row by row into a vector of 16 numbers. Each output value is a weighted sum of those 16
# numbers, so the whole convolution is $\operatorname{vec}(y) = C \operatorname{vec}(x)$ for a $4 \times 16$
# matrix $C$: one row per output pixel, holding the kernel at the positions of that output's window and zeros
# elsewhere. `conv.conv_matrix` builds it.

# %%
C = conv.conv_matrix(x4.shape, kernel4)
print(f"C ({C.shape[0]}x{C.shape[1]}):")
print(lecture.format_matrix(C, width=2, digits=0))
print(f"C vs the slide's convolution matrix: {verdict(np.array_equal(C, transposed_example['conv_matrix']))}")
print(f"C @ vec(x) = [{', '.join(f'{v:.0f}' for v in C @ x4.ravel())}]  "
      f"-> {verdict(np.array_equal((C @ x4.ravel()).reshape(y4.shape), y4))} as the convolution")

# %% [markdown]
# Top: $C$ as an image. Bottom: each row of $C$ folded back into the $4 \times 4$ input grid; it is the kernel,
# shifted to the window of one output pixel. Output $r$ is the sum of the input times panel $r$.

# %%
fig, axes = plt.subplot_mosaic([["C", "C", "C", "C"], ["0", "1", "2", "3"]], figsize=(11, 5.6),
                               height_ratios=[1, 1.6], layout="constrained")
draw_grid(axes["C"], C, "convolution matrix C (4 x 16): row r = output pixel r, column = input pixel",
          cmap="Purples", vmin=0, vmax=2.5)
axes["C"].set_yticks(range(C.shape[0]), [f"y{r}" for r in range(C.shape[0])])
axes["C"].set_xticks(range(C.shape[1]), [f"x{c}" for c in range(C.shape[1])], fontsize=9)
for r in range(C.shape[0]):
    i, j = divmod(r, y4.shape[1])
    draw_grid(axes[str(r)], C[r].reshape(x4.shape), f"row {r} as 4x4: output ({i}, {j}) = {y4[i, j]:.0f}",
              cmap="Purples", vmin=0, vmax=2.5, boxes=[(i, j, 3, 3, "crimson", "-")])
plt.show()

# %% [markdown]
# **Step 2: transpose it.** $C$ maps 16 numbers to 4. Its transpose $C^\top$ (16 × 4) goes the other way: it
# takes a $2 \times 2$ map to a $4 \times 4$ one. Column $r$ of $C^\top$ is row $r$ of $C$, so
# $C^\top \operatorname{vec}(y) = \sum_r y_r \cdot (\text{row } r \text{ of } C)$: each output value **stamps** a
# copy of the kernel, scaled by itself, onto the spot its window came from, and overlapping stamps add up. That is
# the slide's picture of four scaled kernels being summed.

# %%
stamps = [y4.ravel()[r] * C[r].reshape(x4.shape) for r in range(C.shape[0])]
for r, stamp in enumerate(stamps):
    print(f"stamp {r}: {y4.ravel()[r]:.0f} x kernel at its window")
    print(lecture.format_matrix(stamp, width=5, digits=0))
transposed = (C.T @ y4.ravel()).reshape(x4.shape)
print("sum of the stamps = reshape(C^T @ vec(y), 4x4):")
print(lecture.format_matrix(transposed, width=5, digits=0))
print(f"sum of the stamps vs C^T @ vec(y):            {verdict(np.array_equal(sum(stamps), transposed))}")
print(f"C^T @ vec(y) vs the slide's transposed output: {verdict(np.array_equal(transposed, transposed_example['transposed_output']))}")
print(f"C^T @ vec(y) vs conv.conv_transpose2d(y, w):   {verdict(np.array_equal(transposed, conv.conv_transpose2d(y4, kernel4)))}")

# %% [markdown]
# Note what the transposed convolution is **not**: it is not the inverse of the convolution. It gives back the
# input's *shape*, not its values ($4 \times 4$ again, but 55 in the corner where the input had 3). In a network
# its kernel is learned, so the layer learns *how* to upsample.
#
# **"Deconvolution" means two different things.** The CNN slides (004) call this layer "transposed convolution or
# deconvolution". The attribution slides (003) use "deconvolution" for something else: the *deconvnet* of Zeiler and
# Fergus (ECCV 2014), a rule for sending a unit's activation back down to the pixels to see what excited it, a
# backward pass akin to guided backpropagation (notebook 04). Neither is a deconvolution in the signal-processing
# sense, which undoes a convolution; the values above show that $C^\top$ does not.
#
# The same holds with a stride: the matrix of a stride-2 convolution, transposed, is a stride-2 transposed
# convolution, which is how networks double the size of a map. A check on a random (seeded) map:

# %%
rng = np.random.default_rng(0)
y_small = rng.normal(size=(2, 2))
kernel_small = rng.normal(size=(3, 3))
C2 = conv.conv_matrix((5, 5), kernel_small, stride=2)
by_matrix = (C2.T @ y_small.ravel()).reshape(5, 5)
by_stamping = conv.conv_transpose2d(y_small, kernel_small, stride=2)
print(f"stride 2: C has shape {C2.shape[0]}x{C2.shape[1]}, C^T maps 2x2 -> 5x5; "
      f"matrix vs conv_transpose2d: {verdict(np.allclose(by_matrix, by_stamping))}")

# %% [markdown]
# **Output size.** Running the size formula of §2 backwards, with $P$ now *cropped* from each side of the result,
# gives the width a transposed convolution produces:
#
# $$W_o = K + (W_i - 1)\, S - 2P .$$
#
# For the slide's example, $3 + (2 - 1) \cdot 1 - 0 = 4$. Two settings that exactly double a map are common:
# $K = 2, S = 2, P = 0$ (U-Net's up-convolution) and $K = 4, S = 2, P = 1$.

# %%
print(f"{'W_i':>4} {'K':>2} {'S':>2} {'P':>2}  {'W_o':>4}  conv_transpose2d  back through output_size")
for w_in, k, s, p in [(y4.shape[0], kernel4.shape[0], 1, 0), (2, 3, 2, 0), (28, 2, 2, 0), (28, 4, 2, 1), (7, 3, 2, 1)]:
    w_out = conv.transposed_output_size(w_in, k, s, p)
    measured = conv.conv_transpose2d(np.ones((w_in, w_in)), np.ones((k, k)), s, p).shape[0]
    back = conv.output_size(w_out, k, s, p)
    print(f"{w_in:>4} {k:>2} {s:>2} {p:>2}  {w_out:>4}  {measured:>16}  {back:>24}")

# %% [markdown]
# The last column runs each result back through the convolution's size formula and recovers $W_i$: a transposed
# convolution undoes the *shape* change of the convolution with the same $K$, $S$ and $P$. With $S > 1$ the undoing
# is not unique: because of the floor, inputs of width 13 and 14 both give 7 under $K = 3, S = 2, P = 1$.
# Frameworks therefore let you add a few pixels to one side of the transposed output (`output_padding` in
# PyTorch) to pick the size you need.
#
# ## Summary
#
# - Deep learning's "convolution" is a cross-correlation: the kernel slides over the padded input without being
#   flipped. The first row of the slide's stride-2 example is $-15, 6, 3$ (the slide shows the first two).
# - Output size: $W_o = \lfloor (W_i + 2P - K_{\text{eff}})/S \rfloor + 1$ with
#   $K_{\text{eff}} = K + (K - 1)(d - 1)$; $P = (K - 1)/2$ keeps the size when $S = 1$.
# - Padding modes invent the pixels beyond the border differently. The slide's "reflective" padding repeats the
#   edge pixel: that is NumPy's `symmetric`, **not** torch's `reflect`. Zero padding invents edges at the border.
# - Dilation widens a kernel's view to $R = K + (K - 1)(d - 1)$ at no extra cost.
# - The receptive field grows as $R_l = R_{l-1} + (K_l - 1)\prod_{i<l} S_i$; strides multiply the growth of all
#   later layers. That is the theoretical field: the effective one is centre-weighted (the central half carries 88 %
#   of the paths in our example) and, at the border of a padded layer, clipped (15 of 26 pixels per axis).
# - With $C_{in}$ input channels a filter is $K \times K \times C_{in}$ and the channels' results are summed; the
#   depthwise step of a separable layer keeps the channels apart ($C_{in}$ filters of $K \times K$).
# - A depthwise separable layer costs $1/C_{out} + 1/K^2$ of a regular one, a little more than $1/9$ for $3 \times 3$ kernels.
# - A convolution is a matrix $C$; its transpose $C^\top$ is the transposed convolution, which stamps scaled kernels
#   and sums the overlaps. It restores the shape, $W_o = K + (W_i - 1)S - 2P$, not the values. Some slides call it
#   "deconvolution", a word that in 003 means Zeiler and Fergus's backward visualisation instead.
#
# Next, notebook 01 takes the feature maps of a last convolutional layer and turns them into a Grad-CAM map by hand.
