"""`gradscope bench`: its JSON has every field, the numbers agree with each other (images/s with
ms/step, median within min..max, peak RSS at least the current RSS), training lowers the loss on
a repeated batch, and bad flags fail with a message. No timing thresholds: the machine is shared."""
import json

import pytest

from gs_interop import gradscope


def bench(*args):
    r = gradscope("bench", "--threads", 1, *args)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1, r.stdout  # one JSON line on stdout; logs go to stderr
    return json.loads(lines[0])


def check_summary(s):
    assert set(s) == {"mean", "median", "min", "max", "p90"}
    assert 0 < s["min"] <= s["median"] <= s["max"]
    assert s["min"] <= s["mean"] <= s["max"]
    assert s["min"] <= s["p90"] <= s["max"]


def check_memory(out):
    assert out["peak_rss_mib"] >= out["rss_mib"] > 1
    a = out["allocator"]
    for key in ("bytes_in_use", "peak_bytes_in_use", "bytes_cached", "system_allocs_total", "system_allocs_timed",
                "cache_hits_timed"):
        assert isinstance(a[key], int) and a[key] >= 0, key
    assert a["system_allocs_timed"] <= a["system_allocs_total"]
    assert a["peak_bytes_in_use"] >= a["bytes_in_use"]


@pytest.mark.parametrize("model,input", [("mlp", [1, 28, 28]), ("resnet8", [3, 32, 32])])
def test_train_synthetic(model, input):
    out = bench("--model", model, "--batch", 4, "--steps", 6, "--warmup", 2, "--synthetic")
    assert out["mode"] == "train" and out["model"] == model and out["data"] == "synthetic"
    assert out["input"] == input and out["batch"] == 4 and out["steps"] == 6 and out["threads"] == 1
    assert out["device"] == "cpu"
    assert out["optimizer"] == "adamw" and out["lr"] == pytest.approx(2e-3)
    assert out["parameters"] == {"mlp": 235146, "resnet8": 78042}[model]
    check_summary(out["ms_per_step"])
    # images/s is batch * steps over the summed step times: batch * 1000 / mean ms.
    assert out["images_per_s"] == pytest.approx(4 * 1000 / out["ms_per_step"]["mean"], rel=1e-6)
    phases = out["phase_ms_mean"]
    assert sum(phases.values()) == pytest.approx(out["ms_per_step"]["mean"], rel=1e-6)
    assert all(v >= 0 for v in phases.values())
    check_memory(out)


def test_train_fashion_mnist_lowers_loss_on_repeated_batches():
    # Two cached batches cycled for 30 steps: AdamW must fit them.
    out = bench("--model", "fashionnet", "--batch", 16, "--steps", 30, "--warmup", 0, "--cached-batches", 2)
    assert out["data"] == "fashion-mnist" and out["input"] == [1, 28, 28] and out["cached_batches"] == 2
    assert out["last_loss"] < 0.5 * out["first_loss"]
    assert out["parameters"] == 421834


def test_inference_latency():
    out = bench("--model", "lenet5", "--batch", 1, "--steps", 20, "--warmup", 3, "--inference", "--synthetic")
    assert out["mode"] == "inference" and out["batch"] == 1
    check_summary(out["latency_ms"])
    assert out["images_per_s"] == pytest.approx(1000 / out["latency_ms"]["mean"], rel=1e-6)
    assert "ms_per_step" not in out and "optimizer" not in out
    check_memory(out)


@pytest.mark.parametrize("flags,message", [
    (["--steps", "0"], "--steps must be positive"),
    (["--batch", "0"], "--batch must be positive"),
    (["--model", "nosuchnet"], "nosuchnet"),
    (["--kernel", "conv2d=nosuch"], "nosuch"),
])
def test_bad_flags(flags, message):
    steps = [] if "--steps" in flags else ["--steps", 2]
    r = gradscope("bench", "--synthetic", *steps, *flags)
    assert r.returncode != 0
    assert message in r.stderr
