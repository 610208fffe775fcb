"""CAM-family maps through explain: batch independence, the NumPy reference pipeline, CAM's classifier weights,
normalize=False, CPU and GPU."""

import numpy as np
import pytest
import torch

import tinycam
from tinycam import reference as R
from tinycam import torch_reference
from tinycam.explaining import METHODS

from toy_models import LAST, images, small_cnn


@pytest.mark.parametrize("method", sorted(METHODS))
def test_explain_is_batch_independent(method):
    model = small_cnn("gap", batchnorm=True).train()  # train mode: BatchNorm would mix images if left so
    x = images(batch=5)
    together = tinycam.explain(model, x, LAST, method=method, target=[0, 1, 2, 3, 0])
    for i, c in enumerate([0, 1, 2, 3, 0]):
        alone = tinycam.explain(model, x[i : i + 1], LAST, method=method, target=c)
        torch.testing.assert_close(together[i : i + 1], alone, rtol=1e-9, atol=1e-9)
    per_channel = method in ("guided-backprop", "guided-gradcam")
    assert together.shape == ((5, 3, 10, 10) if per_channel else (5, 10, 10))
    assert float(together.min()) >= 0 and float(together.max()) <= 1

@pytest.mark.parametrize("method", ["gradcam", "counterfactual", "gradcam++"])
def test_explain_equals_the_reference_pipeline(method):
    model, x = small_cnn("fc").eval(), images()
    got = tinycam.capture(model, x, LAST, target=1)
    acts, grads = got.acts.numpy(), got.grads.numpy()
    raw = {"gradcam": R.gradcam, "counterfactual": R.counterfactual, "gradcam++": R.gradcampp}[method](acts, grads)
    expected = R.normalize(R.upsample(raw, (10, 10)))
    np.testing.assert_allclose(tinycam.explain(model, x, LAST, method, target=1).numpy(), expected, rtol=0, atol=1e-10)

def test_cam_uses_the_classifier_weights_and_equals_the_gradient_derivation():
    model, x = small_cnn("gap").eval(), images()
    linear = model[1][2]
    got = tinycam.capture(model, x, LAST, target=2)
    # the derivation: Σ_ij ∂Y^c/∂A^k_ij = w_k^c, and Grad-CAM's α = w / Z
    torch.testing.assert_close(torch_reference.cam_weights_from_gradients(got.grads), linear.weight[2].detach().expand(4, 5),
                               rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(torch_reference.gradcam_weights(got.grads), linear.weight[2].detach().expand(4, 5) / 25,
                               rtol=1e-10, atol=1e-12)
    expected = R.normalize(R.upsample(R.cam(got.acts.numpy(), np.tile(linear.weight[2].detach().numpy(), (4, 1))), (10, 10)))
    np.testing.assert_allclose(tinycam.explain(model, x, LAST, "cam", target=2).numpy(), expected, atol=1e-10)

def test_cam_on_a_fully_connected_head_is_a_clear_error():
    with pytest.raises(ValueError, match="CAM needs .* global average pooling.*use method='gradcam'"):
        tinycam.explain(small_cnn("fc").eval(), images(), LAST, "cam")

@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine; the CPU path is tested above")
@pytest.mark.parametrize("method", METHODS)
def test_cpu_and_gpu_agree(method):
    model, x = small_cnn("gap").eval(), images()
    on_cpu = tinycam.explain(model, x, LAST, method, target=1)
    on_gpu = tinycam.explain(model.cuda(), x.cuda(), LAST, method, target=1)
    assert on_gpu.device.type == "cuda"
    torch.testing.assert_close(on_gpu.cpu(), on_cpu, rtol=1e-9, atol=1e-9)

def test_normalize_false_keeps_the_maps_scale():
    model, x = small_cnn("fc").eval(), images()
    got = tinycam.capture(model, x, LAST, target=1)
    raw = torch_reference.upsample(torch_reference.gradcam(got.acts, got.grads), (10, 10))
    torch.testing.assert_close(tinycam.explain(model, x, LAST, "gradcam", target=1, normalize=False), raw)
    torch.testing.assert_close(tinycam.explain(model, x, LAST, "gradcam", target=1), torch_reference.normalize(raw))
