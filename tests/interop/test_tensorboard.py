"""TensorBoard interop: event files gradscope writes are read by the `tensorboard` package's
EventAccumulator, and every tag, step and value comes back: scalars, a histogram with the fixed
bucket edges of inspect/stats.h (NaN/Inf kept out), a PNG image; and a `gradscope train
--probe-every` run leaves the per-layer tags its probes.jsonl describes."""
import glob
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import time
import zlib

import numpy as np
import pytest

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def build_dir():
    build = os.environ.get("GS_BUILD_DIR")
    if not build:
        pytest.skip("GS_BUILD_DIR is not set: point it at a gradscope build dir (ctest sets it)")
    return build


def load(directory):
    acc = EventAccumulator(directory, size_guidance={"scalars": 0, "histograms": 0, "images": 0, "tensors": 0})
    acc.Reload()
    return acc


def bucket_of(x):
    """The bucket index of inspect::histogram_bucket (stats.h)."""
    a = abs(x)
    if a < 2.0**-24:
        return 41
    _, ex = math.frexp(a)
    k = ex - 1 + 24
    if k >= 40:
        return 0 if x < 0 else 82
    return 41 - 1 - k if x < 0 else 41 + 1 + k


def decode_png(data):
    """Minimal PNG decoder (8-bit, no interlace) for the test: returns an HxWxC uint8 array."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
            assert depth == 8
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[color]
    raw = zlib.decompress(idat)
    stride = width * channels
    out = np.zeros((height, stride), dtype=np.int32)
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = np.frombuffer(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)], dtype=np.uint8).astype(np.int32)
        prev = out[y - 1] if y > 0 else np.zeros(stride, dtype=np.int32)
        cur = np.zeros(stride, dtype=np.int32)
        for i in range(stride):
            a = cur[i - channels] if i >= channels else 0
            b = prev[i]
            c = prev[i - channels] if i >= channels else 0
            if f == 0:
                pred = 0
            elif f == 1:
                pred = a
            elif f == 2:
                pred = b
            elif f == 3:
                pred = (a + b) // 2
            else:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            cur[i] = (line[i] + pred) & 0xFF
        out[y] = cur
    return out.reshape(height, width, channels).astype(np.uint8)


def test_known_event_file_reads_back(tmp_path):
    tool = os.path.join(build_dir(), "tests", "interop", "tools_inspect", "gs_tensorboard_tool")
    assert os.path.exists(tool), f"{tool} missing: build the gs_tensorboard_tool target"
    proc = subprocess.run([tool, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    acc = load(str(tmp_path))
    tags = acc.Tags()
    assert sorted(tags["scalars"]) == ["test/other", "test/scalar"]
    assert tags["histograms"] == ["test/histogram"]
    assert tags["images"] == ["test/image"]

    scalars = acc.Scalars("test/scalar")
    assert [s.step for s in scalars] == [0, 1, 2, 3, 4]
    assert [s.value for s in scalars] == [0.25 * k - 1 for k in range(5)]
    other = acc.Scalars("test/other")
    assert [(s.step, s.value) for s in other] == [(7, 1234.5)]

    (hist_event,) = acc.Histograms("test/histogram")
    assert hist_event.step == 3
    h = hist_event.histogram_value
    finite = [-3, -0.5, 0, 0, 0.75, 1, 1.5, 100000]
    assert h.min == -3 and h.max == 100000 and h.num == len(finite)
    assert h.sum == pytest.approx(sum(finite))
    assert h.sum_squares == pytest.approx(sum(v * v for v in finite))
    # The 83 fixed buckets, with each run of empty ones written as one bucket (as TensorFlow does).
    counts = [0] * 83
    for v in finite:
        counts[bucket_of(v)] += 1
    edges = [-(2.0**16)] + [-(2.0**(k - 24)) for k in reversed(range(40))] + [2.0**-24] + \
            [2.0**(k - 23) for k in range(40)] + [sys.float_info.max]
    assert len(edges) == 83
    want_limits, want_counts, i = [], [], 0
    while i < 83:
        limit, count = edges[i], counts[i]
        i += 1
        while count == 0 and i < 83 and counts[i] == 0:
            limit = edges[i]
            i += 1
        want_limits.append(limit)
        want_counts.append(count)
    assert list(h.bucket) == want_counts
    assert list(h.bucket_limit) == want_limits
    assert h.bucket_limit[-1] == sys.float_info.max
    assert 2.0**-24 in list(h.bucket_limit) and 2.0 in list(h.bucket_limit)  # zeros; 1 and 1.5 in [1, 2)
    for v in finite:  # each value lies in (limit[b-1], limit[b]] of an occupied bucket
        b = next(j for j, lim in enumerate(h.bucket_limit) if v <= lim and h.bucket[j] > 0)
        assert b == 0 or v >= h.bucket_limit[b - 1]

    (image,) = acc.Images("test/image")
    assert image.step == 4 and image.width == 3 and image.height == 2
    pixels = decode_png(image.encoded_image_string)
    assert pixels.shape == (2, 3, 3)
    assert pixels.reshape(-1).tolist() == [i * 10 for i in range(18)]


FASHION = "/usr/share/datasets/fashion-mnist"


def train(*args):
    binary = os.path.join(build_dir(), "gradscope")
    assert os.path.exists(binary), f"{binary} missing: build the gradscope target"
    return subprocess.run([binary, "train", *args], capture_output=True, text=True, timeout=600)


def f32(x):
    return float(np.float32(x))


@pytest.mark.skipif(not os.path.exists(FASHION), reason="Fashion-MNIST not installed (bash scripts/setup.sh)")
def test_probed_training_run_matches_probes_jsonl(tmp_path):
    out = tmp_path / "run"
    r = train("--model", "mlp", "--epochs", "1", "--batch", "64", "--limit-train", "256", "--limit-test", "64",
              "--probe-every", "2", "--clip-norm", "0.5", "--no-progress", "--threads", "1", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "probes, epoch 1" in r.stderr and "upd/weight" in r.stderr, r.stderr
    lines = [json.loads(l) for l in (out / "probes.jsonl").read_text().splitlines()]
    assert [l["step"] for l in lines] == [0, 2]  # 256 / 64 = 4 steps, every 2nd sampled
    with open(out / "metrics.jsonl") as f:
        assert "probe" not in f.read()  # probe records stay out of metrics.jsonl
    acc = load(str(out))
    tags = acc.Tags()
    expected = {"train/loss", "train/lr", "train/grad_norm", "train/grad_norm_clipped"}
    for m, rec in lines[0]["modules"].items():
        expected |= {f"act/{m}/{k}" for k in ["mean", "std", "min", "max", "zero_fraction", "nonfinite"]}
        if "grad" in rec:
            expected |= {f"actgrad/{m}/{k}" for k in ["norm", "mean", "std", "max_abs", "nonfinite"]}
    for p in lines[0]["params"]:
        expected |= {f"grad/{p}/{k}" for k in ["norm", "mean", "std", "max_abs", "nonfinite"]}
        expected |= {f"param/{p}/{k}" for k in ["weight_norm", "update_norm", "update_ratio", "distance_from_init"]}
    epoch_tags = {t for t in tags["scalars"] if t.startswith("epoch/")}
    assert set(tags["scalars"]) - epoch_tags == expected
    assert {"epoch/train_loss", "epoch/train_acc", "epoch/test_loss", "epoch/test_acc"} <= epoch_tags
    assert "act/2" in tags["histograms"] and "grad/1.weight" in tags["histograms"]
    assert sorted(tags["images"]) == ["first_batch", "predictions"]

    def value(line, tag):
        kind, rest = tag.split("/", 1)
        if kind == "train":
            return line[rest]
        name, stat = rest.rsplit("/", 1)
        if kind == "act":
            return line["modules"][name]["act"][stat.replace("nonfinite", "nan")]
        if kind == "actgrad":
            return line["modules"][name]["grad"][stat.replace("nonfinite", "nan")]
        if kind == "grad":
            return line["params"][name]["grad"][stat.replace("nonfinite", "nan")]
        return line["params"][name][stat]

    for tag in expected:
        events = acc.Scalars(tag)
        assert [e.step for e in events] == [0, 2], tag
        for e, line in zip(events, lines):
            want = value(line, tag)
            assert e.value == pytest.approx(f32(want), rel=1e-6, abs=1e-30), (tag, e.step, e.value, want)
    # Histogram counts add up to the finite elements of the tensor they describe.
    (h0, h2) = acc.Histograms("act/2")
    assert [h0.step, h2.step] == [0, 2]
    assert sum(h0.histogram_value.bucket) == h0.histogram_value.num == 64 * 256
    (batch_image,) = acc.Images("first_batch")
    assert batch_image.step == 0 and batch_image.width > 28 and batch_image.height > 28


@pytest.mark.skipif(not os.path.exists(FASHION), reason="Fashion-MNIST not installed (bash scripts/setup.sh)")
def test_plain_training_run_logs_curves_and_images(tmp_path):
    # No --probe-every: the event file still has the epoch curves (the values of metrics.jsonl),
    # the first batch and the predictions; --no-tensorboard leaves no event file at all.
    out = tmp_path / "plain"
    r = train("--model", "mlp", "--epochs", "2", "--batch", "64", "--limit-train", "256", "--limit-test", "64",
              "--val-fraction", "0.005", "--no-progress", "--threads", "1", "--out", str(out))
    assert r.returncode == 0, r.stderr
    acc = load(str(out))
    tags = acc.Tags()
    keys = ["train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc"]  # val: found by an audit
    assert set(tags["scalars"]) == {f"epoch/{k}" for k in keys}
    assert tags["histograms"] == []
    assert sorted(tags["images"]) == ["first_batch", "predictions"]
    metrics = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    for key in keys:
        events = acc.Scalars(f"epoch/{key}")
        assert [e.step for e in events] == [1, 2], key
        assert [e.value for e in events] == pytest.approx([f32(m[key]) for m in metrics], rel=1e-6), key
    assert [e.step for e in acc.Images("predictions")] == [1, 2]
    # A fresh run into the same directory: the earlier run's event file goes with its checkpoints,
    # or TensorBoard would draw both runs' curves as one, each step twice.
    time.sleep(1.1)  # event file names carry the second they were made
    r = train("--model", "mlp", "--epochs", "1", "--batch", "64", "--limit-train", "256", "--limit-test", "64",
              "--no-progress", "--threads", "1", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert len(glob.glob(str(out / "events.out.tfevents.*"))) == 1
    assert [e.step for e in load(str(out)).Scalars("epoch/train_loss")] == [1]
    quiet = tmp_path / "quiet"
    r = train("--model", "mlp", "--epochs", "1", "--limit-train", "128", "--limit-test", "64", "--no-progress",
              "--no-tensorboard", "--out", str(quiet))
    assert r.returncode == 0, r.stderr
    assert not [f for f in os.listdir(quiet) if f.startswith("events.out.tfevents")]


@pytest.mark.skipif(not os.path.exists(FASHION), reason="Fashion-MNIST not installed (bash scripts/setup.sh)")
def test_blow_up_stops_at_the_first_non_finite_op(tmp_path):
    r = train("--model", "mlp", "--epochs", "1", "--batch", "64", "--limit-train", "512", "--limit-test", "64",
              "--optimizer", "sgd", "--lr", "1e30", "--schedule", "none", "--detect-anomaly", "--no-progress",
              "--threads", "1", "--out", str(tmp_path / "boom"))
    assert r.returncode != 0
    assert "non-finite" in r.stderr and "tape entry #" in r.stderr, r.stderr
    assert "at step 1:" in r.stderr, r.stderr  # step 0 is finite; its update of 1e30 overflows the next forward


@pytest.mark.skipif(not os.path.exists(FASHION), reason="Fashion-MNIST not installed (bash scripts/setup.sh)")
def test_a_resumed_run_has_each_step_once(tmp_path):
    """Found by an audit: a run resumed from a checkpoint older than what it had logged (a kill
    mid-epoch) left TensorBoard both copies of the later steps, drawn as a zigzag. The resumed event
    file starts with a SessionLog START at its first step, so TensorBoard drops the older copies."""
    out = tmp_path / "run"
    common = ["--model", "mlp", "--batch", "64", "--limit-train", "256", "--limit-test", "64", "--probe-every", "1",
              "--no-progress", "--threads", "1"]
    r = train(*common, "--epochs", "1", "--out", str(out))
    assert r.returncode == 0, r.stderr
    shutil.copy(out / "last.safetensors", tmp_path / "epoch1.safetensors")
    time.sleep(1.1)  # event file names carry the second they were made
    r = train("--resume", str(out / "last.safetensors"), "--epochs", "2", "--lr", "0.01")
    assert r.returncode == 0, r.stderr
    first = {e.step: e.value for e in load(str(out)).Scalars("train/loss")}
    assert sorted(first) == list(range(8))
    time.sleep(1.1)
    # Back to epoch 1, on with another lr: steps 4..7 are logged again, and only the new ones count.
    r = train("--resume", str(tmp_path / "epoch1.safetensors"), "--epochs", "2", "--lr", "0.5", "--out", str(out))
    assert r.returncode == 0, r.stderr
    acc = load(str(out))
    steps = [e.step for e in acc.Scalars("train/loss")]
    assert steps == list(range(8)), steps
    probes = [json.loads(l) for l in (out / "probes.jsonl").read_text().splitlines()]
    assert [p["step"] for p in probes] == list(range(8))
    for e, p in zip(acc.Scalars("train/loss"), probes):
        assert e.value == pytest.approx(f32(p["loss"]), rel=1e-6)
    assert [e.value for e in acc.Scalars("train/loss")][4:] != pytest.approx([first[s] for s in range(4, 8)])
    # The epoch curves and prediction images (step = epoch) of the abandoned epoch 2 are gone too
    # (found by a review): each epoch once, epoch 2 from this run.
    metrics = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    assert [e.step for e in acc.Scalars("epoch/train_loss")] == [1, 2]
    assert [e.value for e in acc.Scalars("epoch/train_loss")] == pytest.approx([f32(m["train_loss"]) for m in metrics])
    assert [e.step for e in acc.Images("predictions")] == [1, 2]
    assert [e.step for e in acc.Images("first_batch")] == [0]
