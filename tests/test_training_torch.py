"""`check --training` against PyTorch itself (issue 12): on the torch twin of a spec
(tests/torch_twin.py), one train-mode step measures

- backward MACs: FlopCounterMode's count of loss.backward() / 2, with torch 2.14's grouped
  convolution weight-gradient formula corrected (it counts groups g as if g were 1: the
  correction is shown failing the uncorrected count on MobileNetV2 below);
- saved bytes: every storage saved_tensors_hooks sees in the forward, once, parameters and
  buffers excluded;
- gradient bytes: the .grad tensors; optimizer bytes: optimizer.state_dict() after a step.
"""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

import convcalc  # noqa: E402
from torch_twin import measure, twin  # noqa: E402

SPECS = Path(__file__).resolve().parents[1] / "specs"
KEYS = ("backward_macs", "saved_bytes", "gradient_bytes", "optimizer_bytes")


def agree(report, optimizer="adam"):
    measured = measure(twin(report), report.input_shape, report.options.batch, optimizer)
    ours = report.training.totals_dict()
    for key in KEYS:
        if key == "saved_bytes":
            assert ours[key] == pytest.approx(measured[key], rel=0.01), key
        else:
            assert ours[key] == measured[key], key
    return measured


FAST = [("lenet5", None), ("resnet18", "3x32x32"), ("dcgan_generator", None),
        ("yolov3_tiny", "3x64x64")]

DEPTHWISE = """
name: depthwise
input: [3, 32, 32]
layers:
  - {type: conv2d, name: stem, out_channels: 16, kernel_size: 3, stride: 2, padding: 1, bias: false}
  - {type: batchnorm2d, name: bn1}
  - {type: relu6, name: act1}
  - {type: conv2d, name: dw, out_channels: 16, kernel_size: 3, padding: 1, groups: 16, bias: false}
  - {type: batchnorm2d, name: bn2}
  - {type: relu6, name: act2, inplace: true}
  - {type: conv2d, name: grouped, out_channels: 32, kernel_size: 3, padding: 1, groups: 4}
  - {type: conv_transpose2d, name: up, out_channels: 8, kernel_size: 2, stride: 2, groups: 2}
  - {type: global_avgpool, name: pool}
  - {type: dropout, name: drop, p: 0.2}
  - {type: linear, name: fc, out_features: 10}
"""


@pytest.mark.parametrize("spec,size", FAST)
def test_training_agrees_with_torch(spec, size):
    report = convcalc.check(SPECS / f"{spec}.yaml", input=size, batch=2, training=True)
    assert report.ok and report.training is not None
    agree(report)


def test_depthwise_grouped_and_transposed_convolutions():
    report = convcalc.check(DEPTHWISE, batch=2, training=True)
    assert report.ok
    agree(report)


@pytest.mark.slow
@pytest.mark.parametrize("spec", sorted(p.stem for p in SPECS.glob("*.yaml")))
def test_training_agrees_with_torch_zoo(spec):
    report = convcalc.check(SPECS / f"{spec}.yaml", batch=2, training=True)
    try:
        model = twin(report)
    except NotImplementedError as err:
        pytest.skip(str(err))
    measured = measure(model, report.input_shape, 2)
    ours = report.training.totals_dict()
    assert ours["backward_macs"] == measured["backward_macs"]
    assert ours["saved_bytes"] == pytest.approx(measured["saved_bytes"], rel=0.01)
    assert ours["gradient_bytes"] == measured["gradient_bytes"]
    assert ours["optimizer_bytes"] == measured["optimizer_bytes"]


def test_torch_counts_grouped_weight_gradients_as_ungrouped():
    """Why the oracle carries a correction: uncorrected, torch 2.14 counts a depthwise
    conv's weight gradient 16 times over here (groups 16), and convcalc would disagree."""
    from torch.utils.flop_counter import FlopCounterMode
    report = convcalc.check(DEPTHWISE, batch=2, training=True)
    model = twin(report).train()
    loss = sum(o.sum() for o in model(torch.randn(2, 3, 32, 32)))
    with FlopCounterMode(display=False) as counter:
        loss.backward()
    dw = report.layer("dw").macs * 2  # its weight gradient, the batch of 2
    grouped = report.layer("grouped").macs * 2
    up = report.layer("up").macs * 2
    extra = dw * 15 + grouped * 3 + up * 1
    assert counter.get_total_flops() // 2 == report.training.backward_macs + extra


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam", "adamw"])
def test_optimizers(optimizer):
    report = convcalc.check(SPECS / "lenet5.yaml", batch=3, training=True, optimizer=optimizer)
    agree(report, optimizer)


@pytest.mark.slow
def test_inplace_activations_share_their_input():
    text = SPECS.joinpath("resnet18.yaml").read_text().replace(
        "type: relu,", "type: relu, inplace: true,")
    assert "inplace: true" in text
    report = convcalc.check(text, input="3x32x32", batch=2, training=True)
    plain = convcalc.check(SPECS / "resnet18.yaml", input="3x32x32", batch=2, training=True)
    agree(report)
    # the same bytes are saved (relu_ keeps its output, the batchnorm's storage, instead of
    # a storage of its own), so the step's peak does not change: in-place saves memory in
    # the forward only
    assert report.training.saved_bytes == plain.training.saved_bytes


def test_frozen_layers_train_nothing_and_save_less():
    text = SPECS.joinpath("resnet18.yaml").read_text() + "\nfrozen: [conv1, bn1, layer1]\n"
    report = convcalc.check(text, input="3x32x32", batch=2, training=True)
    plain = convcalc.check(SPECS / "resnet18.yaml", input="3x32x32", batch=2, training=True)
    frozen = sum(x.params for x in report.layers if x.name in ("conv1", "bn1")
                 or x.name.startswith("layer1."))
    assert report.totals.trainable_params == report.totals.params - frozen > 0
    measured = agree(report)
    assert measured["saved_bytes"] < plain.training.saved_bytes
    assert report.training.backward_macs < plain.training.backward_macs


def test_json_totals_training_keys_are_pinned():
    report = convcalc.check(SPECS / "lenet5.yaml", training=True)
    totals = report.to_dict()["totals"]["training"]
    assert {"backward_macs", "saved_bytes", "gradient_bytes", "optimizer_bytes",
            "peak_bytes"} <= set(totals)
    t = report.training
    assert totals["peak_bytes"] >= (report.totals.params * 4 + t.gradient_bytes
                                    + t.optimizer_bytes + t.saved_bytes)
    layers = report.to_dict()["layers"]
    assert sum(x["training"]["backward_macs"] for x in layers) == totals["backward_macs"]
    assert sum(x["training"]["saved_bytes"] for x in layers) == totals["saved_bytes"]


def test_first_conv_computes_no_input_gradient():
    """conv1 on the image: only its weight gradient (one forward's MACs), as torch's
    output_mask says; the next conv needs both."""
    report = convcalc.check(SPECS / "lenet5.yaml", training=True)
    convs = [(x, t) for x, t in zip(report.layers, report.training.layers) if x.macs]
    (first, first_cost), (second, second_cost) = convs[:2]
    assert first_cost.backward_macs == first.macs
    assert second_cost.backward_macs == 2 * second.macs
