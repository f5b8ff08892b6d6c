"""`gradscope bench`: its JSON has every field, the numbers agree with each other (images/s with
ms/step, median within min..max, peak RSS at least the current RSS), training lowers the loss on
a repeated batch, and bad flags fail with a message. No timing thresholds: the machine is shared."""
import json
import os
import statistics
import subprocess
import sys

import pytest

from gs_interop import FASHION, build_dir, gradscope, mpirun

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


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


def test_grad_penalty_times_the_input_gradient_as_a_phase():
    common = ("--model", "fashionnet", "--batch", 8, "--steps", 3, "--warmup", 1, "--synthetic")
    plain, penalised = bench(*common), bench(*common, "--grad-penalty", 2)
    assert plain["grad_penalty"] == 0 and "input_grad" not in plain["phase_ms_mean"]
    assert penalised["grad_penalty"] == 2
    phases = penalised["phase_ms_mean"]
    assert phases["input_grad"] > 0
    assert sum(phases.values()) == pytest.approx(penalised["ms_per_step"]["mean"], rel=1e-6)
    # The same weights and batch: the first step's loss is the plain one; the steps then differ.
    assert penalised["first_loss"] == pytest.approx(plain["first_loss"], rel=1e-6)
    assert penalised["last_loss"] != pytest.approx(plain["last_loss"], rel=1e-6)


@pytest.mark.parametrize("model", ["fashionnet", "resnet8"])
def test_recompute_segments_trade_memory_and_keep_every_loss(model):
    # Activation checkpointing recomputes each segment's forward in backward: the same losses
    # bit for bit, a lower allocator peak, and the flag echoed in the JSON.
    common = ("--model", model, "--batch", 16, "--steps", 3, "--warmup", 1, "--synthetic")
    plain, recomputed = bench(*common), bench(*common, "--recompute-segments", 3)
    assert plain["recompute_segments"] == 1 and recomputed["recompute_segments"] == 3
    assert recomputed["first_loss"] == plain["first_loss"] and recomputed["last_loss"] == plain["last_loss"]
    assert recomputed["allocator"]["peak_bytes_in_use"] < plain["allocator"]["peak_bytes_in_use"]
    check_memory(recomputed)


def test_recompute_memory_script(tmp_path):
    # bench/recompute_memory.py: its JSON is consistent with the runs it made (tiny, two rounds).
    out_file = tmp_path / "recompute.json"
    r = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "recompute_memory.py"), "--model", "fashionnet",
                        "--segments", "2", "--batch", "8", "--threads", "1", "--steps", "2", "--warmup", "1",
                        "--rounds", "2", "--synthetic", "--gradscope", os.path.join(build_dir(), "gradscope"),
                        "--out", str(out_file)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    out = json.loads(out_file.read_text())
    assert out == json.loads(r.stdout)
    assert out["model"] == "fashionnet" and out["batch"] == 8 and out["rounds"] == 2
    assert set(out["segments"]) == {"1", "2"}
    one, two = out["segments"]["1"], out["segments"]["2"]
    assert one["peak_ratio"] == 1 and one["speed_ratio"] == 1 and one["same_losses_as_1"]
    assert two["same_losses_as_1"] and 0 < two["peak_ratio"] < 1
    assert len(two["round_speed_ratios"]) == 2
    assert two["speed_ratio"] == pytest.approx(statistics.median(two["round_speed_ratios"]))
    r = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "recompute_memory.py"), "--segments", "2,x"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "--segments must be comma-separated integers, got '2,x'" in r.stderr


def test_inference_latency():
    out = bench("--model", "lenet5", "--batch", 1, "--steps", 20, "--warmup", 3, "--inference", "--synthetic")
    assert out["mode"] == "inference" and out["batch"] == 1
    check_summary(out["latency_ms"])
    assert out["images_per_s"] == pytest.approx(1000 / out["latency_ms"]["mean"], rel=1e-6)
    assert "ms_per_step" not in out and "optimizer" not in out
    check_memory(out)
    # The peak is the timed forwards', not loading the data: Fashion-MNIST as f32 is 188 MB, an mlp
    # forward of one image a few KB (found by an audit: it reported the load's 188 MB).
    out = bench("--model", "mlp", "--batch", 1, "--steps", 5, "--warmup", 2, "--inference")
    assert out["allocator"]["peak_bytes_in_use"] < 16 << 20, out["allocator"]


@pytest.mark.parametrize("flags,message", [
    (["--steps", "0"], "--steps must be positive"),
    (["--batch", "0"], "--batch must be positive"),
    (["--model", "nosuchnet"], "nosuchnet"),
    (["--kernel", "conv2d=nosuch"], "nosuch"),
    (["--grad-penalty", "-1"], "--grad-penalty must be a finite number >= 0, got -1"),
    (["--grad-penalty", "1", "--inference"], "--grad-penalty times training steps"),
    (["--recompute-segments", "0"], "--recompute-segments: the model fashionnet has 12 top-level layers, so 1 to 12"),
    (["--recompute-segments", "13"], "got 13"),
])
def test_bad_flags(flags, message):
    steps = [] if "--steps" in flags else ["--steps", 2]
    r = gradscope("bench", "--synthetic", *steps, *flags)
    assert r.returncode != 0
    assert message in r.stderr


def mpirun_bench(*args):
    r = mpirun(2, "bench", "--threads", 1, *args)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1, r.stdout  # rank 0 alone prints
    return json.loads(lines[0])


@pytest.mark.skipif(not os.path.exists(FASHION), reason="Fashion-MNIST not installed (bash scripts/setup.sh)")
def test_data_parallel_train_times_the_all_reduce():
    out = mpirun_bench("--model", "mlp", "--batch", 8, "--steps", 6, "--warmup", 1)
    assert out["processes"] == 2 and out["batch"] == 8 and out["threads"] == 1
    check_summary(out["ms_per_step"])
    # each step trains 8 images on each of the 2 processes
    assert out["images_per_s"] == pytest.approx(2 * 8 * 1000 / out["ms_per_step"]["mean"], rel=1e-6)
    phases = out["phase_ms_mean"]
    assert set(phases) == {"broadcast_buffers", "forward_loss", "backward", "all_reduce", "optimizer"}
    assert sum(phases.values()) == pytest.approx(out["ms_per_step"]["mean"], rel=1e-6)
    assert phases["all_reduce"] > 0 and phases["broadcast_buffers"] >= 0
    check_memory(out)
    single = bench("--model", "mlp", "--batch", 8, "--steps", 2, "--warmup", 0)
    assert single["processes"] == 1 and "all_reduce" not in single["phase_ms_mean"]


@pytest.mark.skipif(not os.path.exists(FASHION), reason="Fashion-MNIST not installed (bash scripts/setup.sh)")
def test_data_parallel_train_lowers_the_loss():
    # each rank cycles its own 2 cached half-batches; the averaged steps must fit all 4
    out = mpirun_bench("--model", "fashionnet", "--batch", 8, "--steps", 30, "--warmup", 0, "--cached-batches", 2)
    assert out["last_loss"] < 0.5 * out["first_loss"]


def test_data_parallel_refuses_inference():
    r = mpirun(2, "bench", "--synthetic", "--inference", "--steps", 2)
    assert r.returncode == 2
    assert "--inference runs in one process" in r.stderr


@pytest.mark.skipif(not os.path.exists(FASHION), reason="Fashion-MNIST not installed (bash scripts/setup.sh)")
def test_ddp_scaling_script(tmp_path):
    # bench/ddp_scaling.py: its JSON is consistent with the runs it made (one round each, tiny).
    out_file = tmp_path / "ddp.json"
    r = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "ddp_scaling.py"), "--model", "mlp", "--batch",
                        "16", "--threads", "2", "--steps", "3", "--warmup", "1", "--rounds", "1", "--torch",
                        "--gradscope", os.path.join(build_dir(), "gradscope"), "--out", str(out_file)],
                       capture_output=True, text=True, timeout=600, env=dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1",
                                                                             OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1"))
    assert r.returncode == 0, r.stderr
    out = json.loads(out_file.read_text())
    assert out == json.loads(r.stdout)
    for engine in ("gradscope", "pytorch"):
        e = out[engine]
        assert e["one_process"]["threads"] == 2 and e["one_process"]["batch"] == 16
        assert e["one_process"]["images_per_s"] > 0 and e["data_parallel"]["images_per_s"] > 0
        assert e["data_parallel"]["processes"] == 2 and e["data_parallel"]["batch_each"] == 8
        assert e["data_parallel"]["threads_each"] == 1
        assert e["ratio"] == pytest.approx(e["data_parallel"]["images_per_s"] / e["one_process"]["images_per_s"])
        assert e["round_ratios"] == [pytest.approx(e["ratio"])]
    assert 0 < out["gradscope"]["data_parallel"]["communication_share"] < 1
    assert out["scaling_vs_pytorch"] == pytest.approx(out["gradscope"]["ratio"] / out["pytorch"]["ratio"])
    # --sync-bn: a third side, on a model with batch norm, two rounds (each side leads once).
    r = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "ddp_scaling.py"), "--model", "fashionnet",
                        "--batch", "8", "--steps", "2", "--warmup", "1", "--rounds", "2", "--sync-bn", "--synthetic",
                        "--gradscope", os.path.join(build_dir(), "gradscope")],
                       capture_output=True, text=True, timeout=600, env=dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1",
                                                                             OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1"))
    assert r.returncode == 0, r.stderr
    g = json.loads(r.stdout)["gradscope"]
    assert len(g["sync_bn"]["round_ratios"]) == 2 and g["sync_bn"]["images_per_s"] > 0
    assert g["sync_bn"]["ratio_to_data_parallel"] == pytest.approx(statistics.median(g["sync_bn"]["round_ratios"]))
    r = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "ddp_scaling.py"), "--batch", "15"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "--batch 15 must be a positive multiple of --processes 2" in r.stderr
