"""`mpirun -np 2 gradscope train`, data-parallel, against two truths:
- one process with twice the batch: averaged over equal shards, the gradients are those of the
  whole batch, and the shards' augmentation is the one process's, so the weights agree to f32
  rounding (plain, with a validation split and augmentation, with the balanced sampler, and
  with gradient accumulation and clipping);
- torch's DistributedDataParallel (gloo, 2 processes) on a batch-norm net: each rank normalises
  with its own batch's statistics, the gradients are averaged, and every forward takes rank 0's
  running statistics; the weights, the running statistics and the losses agree.
With --sync-bn the batch norms take the statistics of every process's batch, as
torch.nn.SyncBatchNorm (which torch 1.13 runs on GPUs only): then one process with twice the batch
is the truth again, on that batch-norm net.
And the errors: a command other than train, and a bad flag, end every rank with exit code 2."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from gs_interop import FASHION, gradscope, load_idx, mpirun

pytestmark = pytest.mark.skipif(not os.path.exists(FASHION),
                                reason="Fashion-MNIST not installed (bash scripts/setup.sh)")
HERE = os.path.dirname(os.path.abspath(__file__))


def metrics(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


COMMON = ["--model", "mlp", "--limit-train", "512", "--limit-test", "300", "--epochs", "2", "--optimizer", "sgd",
          "--lr", "0.05", "--momentum", "0.9", "--schedule", "cosine", "--threads", "1", "--no-progress",
          "--no-tensorboard", "--seed", "3"]


def train_two_and_one(tmp_path, args):
    """The run on 2 processes at batch 32 (tmp_path/two) and on one at batch 64 (tmp_path/one)."""
    two = mpirun(2, "train", *args, "--batch", "32", "--out", tmp_path / "two")
    assert two.returncode == 0, two.stderr
    one = gradscope("train", *args, "--batch", "64", "--out", tmp_path / "one")
    assert one.returncode == 0, one.stderr
    return two, one


@pytest.mark.parametrize("extra", [
    ["--val-fraction", "0.1", "--augment", "crop:2,flip"],
    ["--sampler", "balanced", "--label-smoothing", "0.1"],
    ["--accumulate", "2", "--clip-norm", "0.5"],
], ids=["val-augment", "balanced", "accumulate-clip"])
def test_two_processes_train_as_one_with_twice_the_batch(tmp_path, extra):
    two, one = train_two_and_one(tmp_path, [*COMMON, *extra])
    assert "x 2 processes (data-parallel: 64 images per step)" in two.stderr
    assert two.stderr.count("done: test accuracy") == 1, "only rank 0 reports"

    a, b = metrics(tmp_path / "two"), metrics(tmp_path / "one")
    assert [m["step"] for m in a] == [m["step"] for m in b]
    for key in ["lr", "train_loss", "val_loss", "test_loss"]:
        np.testing.assert_allclose([m[key] or 0 for m in a], [m[key] or 0 for m in b], rtol=2e-5, err_msg=key)
    for key in ["train_acc", "val_acc", "test_acc"]:  # a near-tie may flip one image's argmax
        np.testing.assert_allclose([m[key] or 0 for m in a], [m[key] or 0 for m in b], atol=2.5e-3, err_msg=key)
    wa, wb = load_file(str(tmp_path / "two" / "last.safetensors")), load_file(str(tmp_path / "one" / "last.safetensors"))
    keys = [k for k in wb if k.startswith("model.")]
    assert keys and sorted(keys) == sorted(k for k in wa if k.startswith("model."))
    for k in keys:
        np.testing.assert_allclose(wa[k].numpy(), wb[k].numpy(), rtol=1e-4, atol=2e-6, err_msg=k)
    summary = json.loads((tmp_path / "two" / "summary.json").read_text())
    assert summary["processes"] == 2
    assert json.loads((tmp_path / "two" / "run.json").read_text())["processes"] == 2


# fashionnet's batch norm with tanh and average pooling: no max-pool or ReLU ties, where f32
# rounding in either engine can route one gradient element elsewhere (seen: one flipped 2x2
# max-pool window in about a million moves 0.1% of the first conv's gradient).
BN_NET = [{"type": "conv2d", "in": 1, "out": 8, "kernel": 3, "padding": 1}, {"type": "batchnorm2d", "features": 8},
          {"type": "tanh"}, {"type": "avgpool2d", "kernel": 2},
          {"type": "conv2d", "in": 8, "out": 16, "kernel": 3, "padding": 1}, {"type": "batchnorm2d", "features": 16},
          {"type": "tanh"}, {"type": "avgpool2d", "kernel": 2}, {"type": "flatten"},
          {"type": "linear", "in": 784, "out": 10}]


def bn_net():
    return torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.Tanh(),
                               torch.nn.AvgPool2d(2), torch.nn.Conv2d(8, 16, 3, padding=1), torch.nn.BatchNorm2d(16),
                               torch.nn.Tanh(), torch.nn.AvgPool2d(2), torch.nn.Flatten(), torch.nn.Linear(784, 10))


def test_two_processes_match_torch_distributed_data_parallel(tmp_path):
    n, batch, epochs, lr, momentum = 256, 32, 2, 0.05, 0.9
    images = load_idx("train-images-idx3-ubyte.gz")[:n, 0]
    labels = load_idx("train-labels-idx1-ubyte.gz")[:n]
    data = tmp_path / "data"
    data.mkdir()
    for name, array in [("train-images-idx3-ubyte", images), ("train-labels-idx1-ubyte", labels),
                        ("t10k-images-idx3-ubyte", load_idx("t10k-images-idx3-ubyte.gz")[:64, 0]),
                        ("t10k-labels-idx1-ubyte", load_idx("t10k-labels-idx1-ubyte.gz")[:64])]:
        dims = array.shape
        header = bytes([0, 0, 0x08, len(dims)]) + b"".join(int(d).to_bytes(4, "big") for d in dims)
        (data / name).write_bytes(header + array.astype(np.uint8).tobytes())
    torch.manual_seed(0)
    init = bn_net().state_dict()
    save_file({k: v.contiguous() for k, v in init.items()}, str(tmp_path / "init.safetensors"))
    (tmp_path / "net.json").write_text(json.dumps({"layers": BN_NET}))

    ours = mpirun(2, "train", "--data", f"mnist:{data}", "--model-spec", tmp_path / "net.json", "--weights",
                  tmp_path / "init.safetensors", "--optimizer", "sgd", "--lr", lr, "--momentum", momentum,
                  "--weight-decay", "0", "--schedule", "none", "--sampler", "sequential", "--batch", batch,
                  "--epochs", epochs, "--threads", "1", "--no-progress", "--no-tensorboard",
                  "--out", tmp_path / "ours")
    assert ours.returncode == 0, ours.stderr

    # torch on the same images, normalised as train::default_normalization does for a data set
    # other than the default: the training images' mean and standard deviation.
    x = images.astype(np.float64) / 255.0
    mean = x.mean()
    std = np.sqrt(max(1e-12, (x * x).mean() - mean * mean))
    x = ((x.astype(np.float32) - np.float32(mean)) / np.float32(std)).reshape(n, 1, 28, 28)
    np.savez(tmp_path / "data.npz", x=x.astype(np.float32), y=labels)
    (tmp_path / "torch").mkdir()
    ddp = subprocess.run([sys.executable, os.path.join(HERE, "torch_ddp_train.py"), tmp_path / "data.npz",
                          tmp_path / "init.safetensors", tmp_path / "torch", str(epochs), str(batch), str(lr),
                          str(momentum)], capture_output=True, text=True, timeout=600)
    assert ddp.returncode == 0, ddp.stderr

    torch_losses = json.loads((tmp_path / "torch" / "losses.json").read_text())
    np.testing.assert_allclose([m["train_loss"] for m in metrics(tmp_path / "ours")], torch_losses, rtol=1e-4)
    want = load_file(str(tmp_path / "torch" / "state.safetensors"))
    got = load_file(str(tmp_path / "ours" / "last.safetensors"))
    for key, value in want.items():
        if value.dtype == torch.int64:  # num_batches_tracked
            assert got["model." + key].item() == value.item(), key
        else:
            np.testing.assert_allclose(got["model." + key].numpy(), value.numpy(), rtol=2e-4, atol=2e-5, err_msg=key)


def test_sync_bn_trains_as_one_process_with_twice_the_batch(tmp_path):
    (tmp_path / "net.json").write_text(json.dumps({"layers": BN_NET}))
    args = ["--model-spec", tmp_path / "net.json", "--limit-train", "512", "--limit-test", "256", "--epochs", "2",
            "--optimizer", "sgd", "--lr", "0.05", "--momentum", "0.9", "--schedule", "cosine", "--threads", "1",
            "--no-progress", "--no-tensorboard", "--seed", "3", "--val-fraction", "0.1"]
    runs = {"synced": mpirun(2, "train", *args, "--sync-bn", "--batch", "32", "--out", tmp_path / "synced"),
            "plain": mpirun(2, "train", *args, "--batch", "32", "--out", tmp_path / "plain"),
            "one": gradscope("train", *args, "--batch", "64", "--out", tmp_path / "one")}
    for name, r in runs.items():
        assert r.returncode == 0, (name, r.stderr)
    assert json.loads((tmp_path / "synced" / "config.json").read_text())["sync_bn"] is True
    assert "(data-parallel: 64 images per step, synchronised batch norm)" in runs["synced"].stderr

    a, b = metrics(tmp_path / "synced"), metrics(tmp_path / "one")
    for key in ["lr", "train_loss", "val_loss", "test_loss"]:
        np.testing.assert_allclose([m[key] for m in a], [m[key] for m in b], rtol=5e-5, err_msg=key)
    one = load_file(str(tmp_path / "one" / "last.safetensors"))
    synced = load_file(str(tmp_path / "synced" / "last.safetensors"))
    plain = load_file(str(tmp_path / "plain" / "last.safetensors"))
    keys = [k for k in one if k.startswith("model.")]
    assert "model.1.running_var" in keys and "model.5.running_mean" in keys
    for k in keys:
        np.testing.assert_allclose(synced[k].numpy(), one[k].numpy(), rtol=1e-4, atol=2e-6, err_msg=k)
    # Without it, each rank normalises its own 32 images (DDP's default): visibly another run.
    for k in ["model.1.running_var", "model.0.weight"]:
        off = np.abs(plain[k].numpy() - one[k].numpy()).max() / np.abs(one[k].numpy()).max()
        assert off > 1e-3, (k, off)


def test_sync_bn_needs_a_batch_norm(tmp_path):
    r = mpirun(2, "train", *COMMON, "--sync-bn", "--out", tmp_path / "mlp")
    assert r.returncode == 2
    assert "--sync-bn: model 'mlp' has no batch norm" in r.stderr


def test_errors_end_every_rank(tmp_path):
    r = mpirun(2, "models")
    assert r.returncode == 2
    assert "only `train` (and `bench`, which times it) run data-parallel under mpirun" in r.stderr
    r = mpirun(2, "train", "--epochs", "0", "--no-progress", "--out", tmp_path / "bad")
    assert r.returncode == 2, r.stderr
    assert "--epochs must be positive" in r.stderr and "of 2): error" in r.stderr


DROPOUT_NET = [{"type": "flatten"}, {"type": "linear", "in": 784, "out": 64}, {"type": "relu"},
               {"type": "dropout", "p": 0.3}, {"type": "linear", "in": 64, "out": 10}]


@pytest.mark.parametrize("net", ["mlp", "dropout"])
def test_resumed_run_continues_exactly(tmp_path, net):
    # With dropout each rank draws its own masks while the generator stays in step on every rank,
    # so rank 0's saved generator state resumes them all.
    drop = {"--epochs", "--schedule"}
    args = [a for i, a in enumerate(COMMON) if a not in drop and COMMON[i - 1] not in drop] + ["--batch", "32"]
    if net == "dropout":
        (tmp_path / "net.json").write_text(json.dumps({"layers": DROPOUT_NET}))
        args += ["--model-spec", tmp_path / "net.json"]
    # without a schedule, a one-epoch run resumed to two is the two-epoch run
    one = mpirun(2, "train", *args, "--epochs", "1", "--schedule", "none", "--out", tmp_path / "one")
    assert one.returncode == 0, one.stderr
    resumed = mpirun(2, "train", *args, "--epochs", "2", "--schedule", "none", "--resume",
                     tmp_path / "one" / "last.safetensors", "--out", tmp_path / "one")
    assert resumed.returncode == 0, resumed.stderr
    whole = mpirun(2, "train", *args, "--epochs", "2", "--schedule", "none", "--out", tmp_path / "whole")
    assert whole.returncode == 0, whole.stderr
    a, b = load_file(str(tmp_path / "one" / "last.safetensors")), load_file(str(tmp_path / "whole" / "last.safetensors"))
    for k in b:
        if k.startswith("model."):
            np.testing.assert_array_equal(a[k].numpy(), b[k].numpy(), err_msg=k)
    assert [m["train_loss"] for m in metrics(tmp_path / "one")] == [m["train_loss"] for m in metrics(tmp_path / "whole")]


def test_ema_averages_the_same_weights_as_one_process(tmp_path):
    # --ema: every rank updates its average from the same stepped weights; rank 0's checkpoint holds
    # the average as model.* and the stepped weights as train_model.*, both as one process has them.
    train_two_and_one(tmp_path, [*COMMON, "--ema", "0.9"])
    wa, wb = load_file(str(tmp_path / "two" / "last.safetensors")), load_file(str(tmp_path / "one" / "last.safetensors"))
    keys = [k for k in wb if k.startswith(("model.", "train_model."))]
    assert any(k.startswith("train_model.") for k in keys) and sorted(keys) == sorted(
        k for k in wa if k.startswith(("model.", "train_model.")))
    for k in keys:
        np.testing.assert_allclose(wa[k].numpy(), wb[k].numpy(), rtol=1e-4, atol=2e-6, err_msg=k)
    a, b = metrics(tmp_path / "two"), metrics(tmp_path / "one")
    np.testing.assert_allclose([m["test_loss"] for m in a], [m["test_loss"] for m in b], rtol=2e-5)


def test_probes_see_the_averaged_gradients(tmp_path):
    # Rank 0 alone writes probes.jsonl. Its parameters' gradients are the averaged ones, so their
    # statistics, the gradient norm and the updates are the one process's at twice the batch; the
    # loss, activations and module gradients are those of rank 0's half of the step.
    train_two_and_one(tmp_path, [*COMMON, "--probe-every", "4"])
    pa = [json.loads(line) for line in (tmp_path / "two" / "probes.jsonl").read_text().splitlines()]
    pb = [json.loads(line) for line in (tmp_path / "one" / "probes.jsonl").read_text().splitlines()]
    assert len(pa) == len(pb) > 2 and [r["step"] for r in pa] == [r["step"] for r in pb]
    for ra, rb in zip(pa, pb):
        np.testing.assert_allclose(ra["grad_norm"], rb["grad_norm"], rtol=1e-4)
        assert ra["params"].keys() == rb["params"].keys()
        for name in rb["params"]:
            qa, qb = ra["params"][name], rb["params"][name]
            for key in ["weight_norm", "update_norm"]:
                np.testing.assert_allclose(qa[key], qb[key], rtol=1e-4, err_msg=f"{name} {key}")
            for key in ["mean", "std", "norm"]:
                if key in qb["grad"]:
                    np.testing.assert_allclose(qa["grad"][key], qb["grad"][key], rtol=1e-3, atol=1e-7,
                                               err_msg=f"{name} grad {key}")
        assert ra["loss"] != pytest.approx(rb["loss"], rel=1e-6), "rank 0's loss is over its half of the batch"


def lr_find_curve(run):
    lines = (run / "lr_find" / "lr_find.csv").read_text().splitlines()[1:]
    return np.array([[float(v) for v in line.split(",")] for line in lines])


def test_lr_auto_sweeps_as_one_process_and_every_rank_takes_its_suggestion(tmp_path):
    # Each rank sweeps on its shard with the gradients and losses averaged: the curve, and so the
    # suggestion, is one process's at twice the batch. Were a rank to step with its own lr, the
    # averaged gradients and so rank 0's weights would differ from a run given that lr explicitly.
    args = [a for i, a in enumerate(COMMON) if a != "--lr" and COMMON[i - 1] != "--lr"]
    auto = mpirun(2, "train", *args, "--batch", "32", "--lr", "auto", "--out", tmp_path / "auto")
    assert auto.returncode == 0, auto.stderr
    assert auto.stderr.count("lr-find: valley") == 1
    lr = json.loads((tmp_path / "auto" / "config.json").read_text())["lr"]
    run = json.loads((tmp_path / "auto" / "run.json").read_text())
    assert run["lr_find"]["suggested_lr"] == lr and lr > 0
    one = gradscope("train", *args, "--batch", "64", "--lr", "auto", "--out", tmp_path / "one")
    assert one.returncode == 0, one.stderr
    a, b = lr_find_curve(tmp_path / "auto"), lr_find_curve(tmp_path / "one")
    assert a.shape == b.shape and len(a) > 20  # both stopped at the same step
    # step, lr, loss, smoothed loss; not the last 5 (the blow-up, where rounding grows; the
    # suggestions leave them out too)
    np.testing.assert_allclose(a[:-5], b[:-5], rtol=1e-5)
    assert json.loads((tmp_path / "one" / "config.json").read_text())["lr"] == pytest.approx(lr, rel=1e-12)
    given = mpirun(2, "train", *args, "--batch", "32", "--lr", repr(lr), "--out", tmp_path / "given")
    assert given.returncode == 0, given.stderr
    wa, wb = load_file(str(tmp_path / "auto" / "last.safetensors")), load_file(str(tmp_path / "given" / "last.safetensors"))
    for k in wb:
        if k.startswith("model."):
            np.testing.assert_array_equal(wa[k].numpy(), wb[k].numpy(), err_msg=k)


def test_padding_trains_but_is_counted_once(tmp_path):
    # 10 images on 3 processes: each shard takes 4, the last two repeat the epoch's start (as torch's
    # DistributedSampler pads). With lr 0 every batch sees the same weights, so the epoch's train
    # loss and accuracy must be those of the 10 images, as one process at batch 12 has them.
    spec = tmp_path / "linear.json"
    spec.write_text(json.dumps({"layers": [{"type": "flatten"}, {"type": "linear", "in": 784, "out": 10}]}))
    base = ["--model-spec", spec, "--limit-test", "50", "--epochs", "1", "--optimizer", "sgd", "--schedule", "none",
            "--threads", "1", "--no-progress", "--no-tensorboard"]
    fit = gradscope("train", *base, "--limit-train", "300", "--lr", "0.1", "--batch", "16", "--out", tmp_path / "fit")
    assert fit.returncode == 0, fit.stderr
    frozen = [*base, "--limit-train", "10", "--lr", "0", "--weights", tmp_path / "fit" / "last.safetensors"]
    three = mpirun(3, "train", *frozen, "--batch", "4", "--out", tmp_path / "three")
    assert three.returncode == 0, three.stderr
    one = gradscope("train", *frozen, "--batch", "12", "--out", tmp_path / "one")
    assert one.returncode == 0, one.stderr
    a, b = metrics(tmp_path / "three")[0], metrics(tmp_path / "one")[0]
    assert 0 < b["train_acc"] < 1, b  # a score that counting 12 images would change
    assert a["train_acc"] == b["train_acc"]
    assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-6)
