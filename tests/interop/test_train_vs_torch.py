"""`gradscope train` against a torch training loop on the same data, initial weights and
settings: the trainer end to end (data loading, normalisation, forward, the weighted smoothed
cross-entropy, backward, SGD with weight decay, the one-cycle schedule with its momentum
cycling, batch-norm running statistics), not one op at a time.

The batch is the whole training set (256 images), so the DataLoader's shuffled order does not
matter; each epoch is one optimizer step."""
import json
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from gs_interop import FASHION, fashionnet, gradscope, load_idx


def write_idx(path, array):
    """Uncompressed IDX of uint8 images (N, 28, 28) or labels (N,)."""
    dims = array.shape
    magic = bytes([0, 0, 0x08, len(dims)])
    header = magic + b"".join(int(d).to_bytes(4, "big") for d in dims)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def small_fashion(tmp_path):
    """The first 256 training and 64 test images of Fashion-MNIST as an mnist:<dir> data set."""
    images = load_idx("train-images-idx3-ubyte.gz")[:256, 0]
    labels = load_idx("train-labels-idx1-ubyte.gz")[:256]
    data = tmp_path / "data"
    data.mkdir()
    write_idx(data / "train-images-idx3-ubyte", images)
    write_idx(data / "train-labels-idx1-ubyte", labels)
    write_idx(data / "t10k-images-idx3-ubyte", load_idx("t10k-images-idx3-ubyte.gz")[:64, 0])
    write_idx(data / "t10k-labels-idx1-ubyte", load_idx("t10k-labels-idx1-ubyte.gz")[:64])
    return data, images, labels


def normalised(images):
    """The images as train normalises them: the training images' mean and standard deviation, as
    train::default_normalization computes them for a data set other than the default."""
    x = torch.from_numpy(images.astype(np.float64) / 255.0)
    mean = x.mean().item()
    std = np.sqrt(max(1e-12, (x * x).mean().item() - mean * mean))
    return ((x.float() - mean) / std).reshape(len(images), 1, 28, 28)


@pytest.mark.skipif(not os.path.exists(FASHION), reason="Fashion-MNIST not installed (bash scripts/setup.sh)")
@pytest.mark.parametrize("optimizer,lr,schedule,torch_schedule", [
    ("sgd", 0.05, "onecycle", lambda o, steps: torch.optim.lr_scheduler.OneCycleLR(o, 0.05, total_steps=steps)),
    ("sgd", 0.05, "cosine", lambda o, steps: torch.optim.lr_scheduler.CosineAnnealingLR(o, steps)),
    # train's defaults: AdamW and onecycle, which cycles beta1
    ("adamw", 0.002, "onecycle", lambda o, steps: torch.optim.lr_scheduler.OneCycleLR(o, 0.002, total_steps=steps)),
])
def test_training_run_matches_a_torch_loop(tmp_path, optimizer, lr, schedule, torch_schedule):
    data, images, labels = small_fashion(tmp_path)

    torch.manual_seed(0)
    torch.set_num_threads(2)
    model = fashionnet()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "init.safetensors"))
    class_weights = [1, 1, 1, 1, 1, 1, 3, 1, 1, 0.5]
    epochs = 5
    r = gradscope("train", "--data", f"mnist:{data}", "--model", "fashionnet",
                  "--weights", tmp_path / "init.safetensors",
                  "--optimizer", optimizer, "--lr", str(lr), "--momentum", "0.9", "--weight-decay", "5e-4",
                  "--schedule", schedule, "--label-smoothing", "0.1",
                  "--class-weights", ",".join(map(str, class_weights)), "--batch", "256", "--epochs", str(epochs),
                  "--threads", "2", "--no-progress", "--no-tensorboard", "--out", tmp_path / "run")
    assert r.returncode == 0, r.stderr

    # The same in torch.
    x, y = normalised(images), torch.from_numpy(labels)
    if optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=5e-4)
    sched = torch_schedule(opt, epochs)
    model.train()
    losses, lrs = [], []
    for _ in range(epochs):
        loss = F.cross_entropy(model(x), y, weight=torch.tensor(class_weights, dtype=torch.float32),
                               label_smoothing=0.1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        lrs.append(opt.param_groups[0]["lr"])

    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    np.testing.assert_allclose([m["train_loss"] for m in metrics], losses, rtol=1e-4)
    np.testing.assert_allclose([m["lr"] for m in metrics], lrs, rtol=1e-9)
    ours = load_file(str(tmp_path / "run" / "last.safetensors"))
    # A conv bias right before batch norm has a gradient of zero up to rounding; Adam divides that
    # rounding noise by its own root mean square, so those steps are noise in both (and differ),
    # and so is the running mean of the conv's output that they shift.
    noise_only = {"0.bias", "4.bias", "1.running_mean", "5.running_mean"} if optimizer == "adamw" else set()
    for key, value in model.state_dict().items():
        if key in noise_only:
            continue
        got = ours["model." + key]
        if value.dtype == torch.int64:
            assert got.item() == value.item(), key
        else:
            want = value.detach().numpy()
            if optimizer != "adamw":
                np.testing.assert_allclose(got.numpy(), want, rtol=2e-4, atol=2e-5, err_msg=key)
                continue
            # The same holds for single weights: an element whose gradient is near zero in some step
            # gets an Adam step of up to lr in a direction set by rounding, which differs between
            # machines (seen: one element of 0.weight's 288 off by 4.5e-5 on an AMD EPYC, with every
            # other element within 2e-5). So: nearly all elements tight, the rest within the
            # epochs' summed step bound.
            diff = np.abs(got.numpy() - want)
            loose = diff > 2e-4 * np.abs(want) + 2e-5
            assert loose.mean() <= 0.01, f"{key}: {loose.sum()} of {loose.size} elements off, max {diff.max()}"
            assert diff.max() <= epochs * lr, f"{key}: off by {diff.max()}, more than {epochs} Adam steps"


@pytest.mark.skipif(not os.path.exists(FASHION), reason="Fashion-MNIST not installed (bash scripts/setup.sh)")
def test_grad_penalty_matches_a_torch_double_backward_loop(tmp_path):
    """--grad-penalty L: the objective loss + L / n * |d(n loss)/dx|^2, differentiated through the
    gradient (torch.autograd.grad with create_graph=True), through conv, batch norm, relu and max
    pool; the losses, the penalty and every weight after the steps against torch."""
    data, images, labels = small_fashion(tmp_path)
    torch.manual_seed(1)
    torch.set_num_threads(2)
    model = fashionnet()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "init.safetensors"))
    epochs, lr, lam = 3, 0.05, 2.0
    r = gradscope("train", "--data", f"mnist:{data}", "--model", "fashionnet", "--weights", tmp_path / "init.safetensors",
                  "--optimizer", "sgd", "--lr", str(lr), "--momentum", "0.9", "--weight-decay", "0",
                  "--schedule", "none", "--grad-penalty", str(lam), "--batch", "256", "--epochs", str(epochs),
                  "--threads", "2", "--no-progress", "--no-tensorboard", "--out", tmp_path / "run")
    assert r.returncode == 0, r.stderr

    x, y = normalised(images), torch.from_numpy(labels)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    model.train()
    losses, penalties = [], []
    for _ in range(epochs):
        xr = x.clone().requires_grad_(True)
        loss = F.cross_entropy(model(xr), y)
        dx, = torch.autograd.grad(loss * len(x), xr, create_graph=True)
        penalty = lam / len(x) * (dx * dx).sum()
        opt.zero_grad()
        (loss + penalty).backward()
        opt.step()
        losses.append(loss.item())
        penalties.append(penalty.item())

    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    np.testing.assert_allclose([m["train_loss"] for m in metrics], losses, rtol=1e-4)
    np.testing.assert_allclose([m["train_grad_penalty"] for m in metrics], penalties, rtol=1e-3)
    assert penalties[-1] < penalties[0], penalties  # the penalty is being minimised
    ours = load_file(str(tmp_path / "run" / "last.safetensors"))
    for key, value in model.state_dict().items():
        got = ours["model." + key]
        if value.dtype == torch.int64:
            assert got.item() == value.item(), key
        else:
            np.testing.assert_allclose(got.numpy(), value.detach().numpy(), rtol=2e-4, atol=2e-5, err_msg=key)

    # Without the penalty the weights come out different: the flag is not a no-op.
    r = gradscope("train", "--data", f"mnist:{data}", "--model", "fashionnet", "--weights", tmp_path / "init.safetensors",
                  "--optimizer", "sgd", "--lr", str(lr), "--momentum", "0.9", "--weight-decay", "0",
                  "--schedule", "none", "--batch", "256", "--epochs", str(epochs), "--threads", "2", "--no-progress",
                  "--no-tensorboard", "--out", tmp_path / "plain")
    assert r.returncode == 0, r.stderr
    plain = load_file(str(tmp_path / "plain" / "last.safetensors"))
    assert not np.allclose(plain["model.0.weight"].numpy(), ours["model.0.weight"].numpy(), rtol=1e-3, atol=1e-4)
    assert "train_grad_penalty" not in json.loads((tmp_path / "plain" / "metrics.jsonl").read_text().splitlines()[0])


def test_grad_penalty_rejects_bad_values():
    r = gradscope("train", "--grad-penalty", "-1", "--epochs", "1")
    assert r.returncode == 2 and "--grad-penalty" in r.stderr, r.stderr
    r = gradscope("train", "--grad-penalty", "nan", "--epochs", "1")
    assert r.returncode == 2 and "--grad-penalty" in r.stderr, r.stderr
