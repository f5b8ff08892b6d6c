"""`gradscope doctor` end to end on Fashion-MNIST with small check sizes (the mlp, a few hundred
images per run): doctor.json's checks, the exit code, a planted bug (a final ReLU) named as such, and
the HTML report rendered by a real headless Chromium whose screenshot must be the asked size and
not blank (the verdict pills' colours must be on it)."""
import json
import os
import re
import shutil
import struct
import subprocess
import zlib

import numpy as np
import pytest

from gs_interop import FASHION, gradscope

SMALL = ["--model", "mlp", "--threads", "2", "--sample", "256", "--overfit-steps", "150", "--grad-steps", "5",
         "--fit-images", "1000", "--val-images", "300", "--fit-epochs", "3", "--no-progress"]
CHECKS = ["data", "final_layer", "loss_at_init", "overfit_batch", "gradients", "learning_rate", "fit", "dead_units"]
OK_GREEN = (0x2E, 0x7D, 0x32)
PROBLEM_RED = (0xC6, 0x28, 0x28)


@pytest.fixture(autouse=True)
def need_data():
    if not os.path.exists(f"{FASHION}/train-images-idx3-ubyte.gz"):
        pytest.skip("SKIPPED LOUDLY: Fashion-MNIST not installed (bash scripts/setup.sh)")


@pytest.fixture(scope="module")
def healthy(tmp_path_factory):
    out = tmp_path_factory.mktemp("doctor_ok")
    r = gradscope("doctor", *SMALL, "--out", out)
    return r, out


@pytest.fixture(scope="module")
def final_relu(tmp_path_factory):
    out = tmp_path_factory.mktemp("doctor_relu")
    spec = out / "mlp_final_relu.json"
    spec.write_text(json.dumps({"layers": [
        {"type": "flatten"}, {"type": "linear", "in": 784, "out": 256}, {"type": "relu"},
        {"type": "linear", "in": 256, "out": 128}, {"type": "relu"}, {"type": "linear", "in": 128, "out": 10},
        {"type": "relu"}]}))
    r = gradscope("doctor", *SMALL, "--model-spec", spec, "--out", out)
    return r, out


def checks_of(out):
    report = json.load(open(out / "doctor.json"))
    return report, {c["name"]: c for c in report["checks"]}


def test_healthy_mlp_is_all_ok(healthy):
    r, out = healthy
    assert r.returncode == 0, r.stdout + r.stderr
    report, checks = checks_of(out)
    assert [c["name"] for c in report["checks"]] == CHECKS
    bad = {n: (c["verdict"], c["summary"]) for n, c in checks.items() if c["verdict"] != "ok"}
    assert not bad, bad
    assert report["verdict"] == "ok"
    assert report["device"] == "cpu"
    data = checks["data"]["evidence"]
    # Fashion-MNIST as shipped: 60000/10000 images, 6000 per class, normalised to mean 0 / std 1.
    assert data["train_images"] == 60000 and data["test_images"] == 10000
    assert data["class_counts"] == [6000] * 10
    assert abs(data["input_mean"]) < 0.1 and abs(data["input_std"] - 1) < 0.1
    assert checks["loss_at_init"]["evidence"]["expected_ln_num_classes"] == pytest.approx(np.log(10))
    assert checks["fit"]["evidence"]["final_val_acc"] > 0.6
    grads = report["plots"]["gradients"]
    assert grads["layers"] == ["1.weight", "3.weight", "5.weight"]
    assert all(v > 0 for v in grads["at_init"])
    # The console report has one line per check and the overall verdict.
    assert r.stdout.count("\nok ") + r.stdout.startswith("ok ") == len(CHECKS)
    assert "doctor: ok (0 problems" in r.stdout


def test_final_relu_is_named_and_exits_3(final_relu):
    r, out = final_relu
    assert r.returncode == 3, r.stdout + r.stderr
    report, checks = checks_of(out)
    assert report["verdict"] == "problem"
    fl = checks["final_layer"]
    assert fl["verdict"] == "problem"
    assert "ReLU" in fl["summary"] and fl["evidence"]["layers_after_it"] == ["ReLU"]
    assert fl["evidence"]["negative_output_fraction"] == 0
    assert any("Remove the final ReLU" in s for s in fl["suggestions"])
    assert "problem" in r.stdout and "Final layer" in r.stdout


def test_bad_flag_is_a_usage_error(tmp_path):
    r = gradscope("doctor", "--model", "mlp", "--fit-images", "0", "--out", tmp_path)
    assert r.returncode == 2
    assert "--fit-images" in r.stderr


def test_device_without_a_gpu_fails_before_loading(tmp_path):
    r = gradscope("doctor", *SMALL, "--device", "cuda", "--out", tmp_path)
    if re.search(r"devices: [1-9]", gradscope("cuda").stdout):
        assert r.returncode in (0, 3), r.stderr  # a GPU: the doctor runs there (tests/cuda compares it with the cpu)
        assert json.load(open(tmp_path / "doctor.json"))["device"] == "cuda:0"
    else:  # the error names the flag and the reason, and no report is written
        assert r.returncode == 2 and "--device cuda" in r.stderr and "no CUDA device" in r.stderr, r.stderr
        assert not (tmp_path / "doctor.json").exists()


def read_png(path):
    """8-bit RGB/RGBA PNG -> uint8 array (H, W, C), decoded with zlib and the five PNG filters."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    assert depth == 8 and colour in (2, 6), (depth, colour)
    channels = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * channels
    img = np.zeros((height, stride), dtype=np.int32)
    prev = np.zeros(stride, dtype=np.int32)
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = np.frombuffer(raw, dtype=np.uint8, count=stride, offset=y * (stride + 1) + 1).astype(np.int32)
        if f == 0:
            cur = line
        elif f == 1:  # sub: a running sum along the row, per channel
            cur = (np.cumsum(line.reshape(width, channels), axis=0) & 255).reshape(stride)
        elif f == 2:  # up
            cur = (line + prev) & 255
        else:  # 3 (average) and 4 (Paeth) depend on the left pixel: byte by byte
            out, up, src = [0] * stride, prev.tolist(), line.tolist()
            for i in range(stride):
                a = out[i - channels] if i >= channels else 0
                b = up[i]
                if f == 3:
                    pred = (a + b) >> 1
                else:
                    c = up[i - channels] if i >= channels else 0
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                out[i] = (src[i] + pred) & 255
            cur = np.array(out, dtype=np.int32)
        img[y] = cur
        prev = cur
    return img.reshape(height, width, channels).astype(np.uint8)


def screenshot(html, png, width, height):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.skip("SKIPPED LOUDLY: chromium not installed (bash scripts/setup.sh)")
    home = png.parent / "chromium-home"  # chromium wants a writable profile/cache
    home.mkdir(exist_ok=True)
    r = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--user-data-dir={home}", f"--screenshot={png}", f"--window-size={width},{height}",
                        f"file://{html}"], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "HOME": str(home)})
    assert r.returncode == 0 and png.exists(), r.stderr[-2000:]
    return read_png(png)


def has_colour(img, rgb, tol=6, min_pixels=50):
    diff = np.abs(img[:, :, :3].astype(int) - np.array(rgb)).max(axis=2)
    return int((diff <= tol).sum()) >= min_pixels


def test_report_renders_in_headless_chromium(healthy, final_relu):
    for (_, out), pill in [(healthy, OK_GREEN), (final_relu, PROBLEM_RED)]:
        html = out / "doctor.html"
        assert html.stat().st_size > 10000
        img = screenshot(html, out / "shot.png", 1200, 1600)
        assert img.shape[:2] == (1600, 1200)
        grey = img[:, :, :3].mean(axis=2)
        assert grey.std() > 10, "screenshot is blank"
        assert len(np.unique(img[:, :, :3].reshape(-1, 3), axis=0)) > 50
        assert has_colour(img, pill), "the verdict pills are not on the screenshot"
