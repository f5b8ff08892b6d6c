"""`gradscope inspect data | errors | outliers` and `train --exclude-list` end to end on small
Fashion-MNIST subsets: every PNG is decoded (a small pure-Python PNG reader below) and must have a
plausible size and not be blank; the CSV/JSON numbers are recomputed independently (numpy, and the
checkpoint run through the PyTorch fashionnet)."""
import csv
import gzip
import json
import os
import struct
import zlib

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from gs_interop import FASHION, fashionnet, gradscope, load_idx

pytestmark = pytest.mark.skipif(not os.path.exists(f"{FASHION}/train-images-idx3-ubyte.gz"),
                                reason="SKIPPED LOUDLY: Fashion-MNIST not installed (bash scripts/setup.sh)")


def read_png(path):
    """(H, W, C) uint8 pixels of an 8-bit non-interlaced grey/RGB/RGBA PNG."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path}: not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        assert zlib.crc32(kind + body) == struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])[0], path
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, color, _, _, interlace = header
    assert depth == 8 and interlace == 0 and color in (0, 2, 6), header
    bpp = {0: 1, 2: 3, 6: 4}[color]
    raw = zlib.decompress(idat)
    stride = width * bpp
    out = np.zeros((height, stride), np.uint8)
    prev = bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if kind == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 255
        elif kind == 2:
            line = bytearray((np.frombuffer(line, np.uint8) + np.frombuffer(prev, np.uint8)).astype(np.uint8))
        elif kind == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 255
        elif kind == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b, c = prev[i], (prev[i - bpp] if i >= bpp else 0)
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        else:
            assert kind == 0, f"{path}: filter {kind}"
        out[y] = np.frombuffer(bytes(line), np.uint8)
        prev = line
    return out.reshape(height, width, bpp)


def check_png(path, min_h=40, min_w=40):
    assert os.path.exists(path), f"{path} was not written"
    img = read_png(path)
    assert img.shape[0] >= min_h and img.shape[1] >= min_w, (path, img.shape)
    assert img.shape[0] <= 4000 and img.shape[1] <= 4000, (path, img.shape)
    assert img.astype(np.float64).var() > 100, f"{path} is (nearly) blank"
    assert len(np.unique(img.reshape(-1, img.shape[2]), axis=0)) >= 3, f"{path} has almost no distinct colours"
    return img


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A fashionnet trained one short epoch: enough to be well above chance, with real confusions."""
    out = tmp_path_factory.mktemp("inspect") / "run"
    r = gradscope("train", "--model", "fashionnet", "--limit-train", "2000", "--limit-test", "200", "--epochs", "1",
                  "--threads", "2", "--no-progress", "--seed", "3", "--out", out)
    assert r.returncode == 0, r.stderr
    return out


def torch_model(checkpoint):
    state = {k[len("model."):]: v for k, v in load_file(str(checkpoint)).items() if k.startswith("model.")}
    model = fashionnet()
    model.load_state_dict(state)
    return model.eval()


def normalised(images):
    return (torch.from_numpy(images.astype(np.float32)) / 255 - 0.2860) / 0.3530


def test_inspect_data(tmp_path):
    out = tmp_path / "data"
    r = gradscope("inspect", "data", "--limit", "1500", "--augment", "crop:2,flip", "--per-class", "6", "--views", "4",
                  "--zoom", "1", "--threads", "2", "--out", out)
    assert r.returncode == 0, r.stderr
    assert "brightness" in r.stdout
    samples = check_png(out / "samples.png", 10 * 28, 6 * 28)
    check_png(out / "augmentations.png", 10 * 28, 5 * 28)
    assert samples.shape[0] > 10 * 28  # a row per class
    for metric in ["height", "width", "aspect", "brightness", "contrast"]:
        check_png(out / f"hist_{metric}.png", 100, 200)

    images = load_idx("train-images-idx3-ubyte.gz")[:1500].astype(np.float64) / 255
    labels = load_idx("train-labels-idx1-ubyte.gz")[:1500]
    rows = read_csv(out / "metadata.csv")
    assert len(rows) == 1500
    brightness = np.array([float(r["brightness"]) for r in rows])
    contrast = np.array([float(r["contrast"]) for r in rows])
    np.testing.assert_allclose(brightness, images.mean(axis=(1, 2, 3)), atol=1e-7)
    np.testing.assert_allclose(contrast, images.std(axis=(1, 2, 3)), atol=1e-6)
    assert [int(r["label"]) for r in rows] == labels.tolist()
    summary = json.loads((out / "metadata_summary.json").read_text())
    b = summary["metrics"]["brightness"]
    assert b["mean"] == pytest.approx(brightness.mean(), rel=1e-9)
    assert b["std"] == pytest.approx(brightness.std(), rel=1e-9)
    assert b["p50"] == pytest.approx(np.quantile(brightness, 0.5), rel=1e-9)
    assert sum(b["histogram"]["counts"]) == 1500
    counts, _ = np.histogram(brightness, bins=np.array(b["histogram"]["edges"]))
    assert np.abs(counts - np.array(b["histogram"]["counts"])).sum() <= 2  # values exactly on an edge may differ
    assert summary["class_counts"] == np.bincount(labels, minlength=10).tolist()
    assert summary["per_class"]["Trouser"]["count"] == int((labels == 1).sum())


def test_inspect_errors_matches_pytorch(run_dir, tmp_path):
    out = tmp_path / "errors"
    r = gradscope("inspect", "errors", "--checkpoint", run_dir / "last.safetensors", "--limit", "1000", "--top", "16",
                  "--zoom", "2", "--threads", "2", "--out", out)
    assert r.returncode == 0, r.stderr
    assert "most confused pairs" in r.stdout and "recall" in r.stdout
    check_png(out / "confusion.png", 200, 200)
    check_png(out / "worst.png", 60, 100)
    check_png(out / "confused_pairs.png", 60, 100)

    # The checkpoint through the PyTorch fashionnet on the same 1000 test images.
    x = load_idx("t10k-images-idx3-ubyte.gz")[:1000]
    y = load_idx("t10k-labels-idx1-ubyte.gz")[:1000]
    with torch.no_grad():
        logits = torch_model(run_dir / "last.safetensors")(normalised(x)).double()
    torch_pred = logits.argmax(1).numpy()
    torch_loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(y), reduction="none").numpy()

    preds = read_csv(out / "predictions.csv")
    ours_pred = np.array([int(p["predicted"]) for p in preds])
    ours_loss = np.array([float(p["loss"]) for p in preds])
    assert [int(p["label"]) for p in preds] == y.tolist()
    top2 = torch.topk(logits, 2, dim=1).values.numpy()
    for i in np.nonzero(ours_pred != torch_pred)[0]:  # only near-ties may flip
        assert top2[i, 0] - top2[i, 1] < 1e-4, (i, top2[i])
    np.testing.assert_allclose(ours_loss, torch_loss, rtol=1e-4, atol=1e-4)

    errors = json.loads((out / "errors.json").read_text())
    cm = np.zeros((10, 10), np.int64)
    np.add.at(cm, (y, ours_pred), 1)
    assert errors["confusion"] == cm.tolist()
    with open(out / "confusion.csv") as f:
        table = [line.strip().split(",") for line in f]
    assert [[int(v) for v in row[1:]] for row in table[1:]] == cm.tolist()
    assert errors["accuracy"] == pytest.approx((ours_pred == y).mean())
    assert errors["accuracy"] > 0.5  # the checks mean something only if the model learned
    # The most-confused pairs, from the matrix.
    sym = cm + cm.T
    np.fill_diagonal(sym, 0)
    best = max(errors["confused_pairs"], key=lambda p: p["total"])
    assert best["total"] == np.triu(sym).max() == errors["confused_pairs"][0]["total"]
    assert sym[best["a"], best["b"]] == best["total"]
    # As is well known for Fashion-MNIST, the upper-body garments are the ones confused with each other.
    upper_body = {0, 2, 4, 6}  # T-shirt/top, Pullover, Coat, Shirt
    for pair in errors["confused_pairs"][:3]:
        assert {pair["a"], pair["b"]} <= upper_body, errors["confused_pairs"]
    # Worst mispredictions: wrong, sorted by loss, and the highest-loss wrong ones.
    worst = read_csv(out / "worst.csv")
    assert len(worst) == 16
    idx = [int(w["index"]) for w in worst]
    assert all(ours_pred[i] != y[i] for i in idx)
    wrong_losses = np.sort(ours_loss[ours_pred != y])[::-1]
    np.testing.assert_allclose([float(w["loss"]) for w in worst], wrong_losses[:16], rtol=1e-6)
    assert worst[0]["label_name"] == errors["class_names"][int(worst[0]["label"])]


def test_inspect_outliers_and_exclude_list(run_dir, tmp_path):
    out = tmp_path / "outliers"
    r = gradscope("inspect", "outliers", "--checkpoint", run_dir / "last.safetensors", "--limit", "1200", "--top", "20",
                  "--k", "5", "--zoom", "1", "--threads", "2", "--out", out)
    assert r.returncode == 0, r.stderr
    for name in ["outliers", "outliers_metadata", "outliers_centroid", "outliers_knn", "outliers_confidence"]:
        check_png(out / f"{name}.png", 60, 100)
    scores = read_csv(out / "scores.csv")
    assert [int(s["index"]) for s in scores] == list(range(1200))

    # Embeddings from PyTorch: the input of the last Linear (the ReLU at index 10).
    x = load_idx("train-images-idx3-ubyte.gz")[:1200]
    y = load_idx("train-labels-idx1-ubyte.gz")[:1200]
    model = torch_model(run_dir / "last.safetensors")
    with torch.no_grad():
        emb = model[:11](normalised(x)).double().numpy()
    centroid = np.zeros(1200)
    knn = np.zeros(1200)
    for c in range(10):
        members = np.nonzero(y == c)[0]
        e = emb[members]
        centroid[members] = np.linalg.norm(e - e.mean(0), axis=1)
        d = np.linalg.norm(e[:, None, :] - e[None, :, :], axis=2)
        np.fill_diagonal(d, np.inf)
        knn[members] = np.sort(d, axis=1)[:, :5].mean(1)
    np.testing.assert_allclose([float(s["centroid_distance"]) for s in scores], centroid, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose([float(s["knn_distance"]) for s in scores], knn, rtol=1e-3, atol=1e-3)

    # The combined score is the mean of the four criteria's percentile ranks (ties share their mean rank).
    def ranks(v):
        order = np.argsort(v, kind="stable")
        r = np.empty(len(v))
        r[order] = np.arange(len(v))
        for value in np.unique(v):  # ties
            same = v == value
            r[same] = r[same].mean()
        return r / (len(v) - 1)

    cols = ["metadata_max_abs_z", "centroid_relative", "knn_relative", "loss"]
    combined = np.mean([ranks(np.array([float(s[c]) for s in scores])) for c in cols], axis=0)
    np.testing.assert_allclose([float(s["combined"]) for s in scores], combined, atol=1e-6)
    top = read_csv(out / "outliers.csv")
    assert len(top) == 20
    top_idx = [int(t["index"]) for t in top]
    assert sorted(combined[top_idx], reverse=True) == pytest.approx(list(combined[top_idx]))
    assert min(combined[top_idx]) >= np.sort(combined)[-20] - 1e-9

    # train --exclude-list takes outliers.csv: on a 1200-image IDX copy, exactly 20 fewer images train.
    data = tmp_path / "idx"
    data.mkdir()
    with open(data / "images", "wb") as f:
        f.write(struct.pack(">IIII", 0x803, 1200, 28, 28) + x.tobytes())
    with open(data / "labels", "wb") as f:
        f.write(struct.pack(">II", 0x801, 1200) + y.astype(np.uint8).tobytes())
    spec = f"idx:{data}/images,{data}/labels"
    common = ["--model", "mlp", "--data", spec, "--epochs", "1", "--threads", "2", "--no-progress"]
    r = gradscope("train", *common, "--exclude-list", out / "outliers.csv", "--out", tmp_path / "excluded")
    assert r.returncode == 0, r.stderr
    assert "(1180 train /" in r.stderr, r.stderr
    config = json.loads((tmp_path / "excluded" / "config.json").read_text())
    assert config["exclude_list"] == str(out / "outliers.csv")

    bad = tmp_path / "bad.txt"
    bad.write_text("3\n5\n1200\n")
    r = gradscope("train", *common, "--exclude-list", bad, "--out", tmp_path / "bad")
    assert r.returncode == 2 and "bad.txt line 3" in r.stderr and "out of range" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def write_png(path, pixels):
    """A grey (H, W) uint8 array as a PNG (filter 0 rows)."""
    h, w = pixels.shape
    rows = b"".join(b"\x00" + pixels[y].tobytes() for y in range(h))

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def test_inspect_data_on_an_image_folder_reports_file_sizes(tmp_path):
    rng = np.random.default_rng(0)
    sizes = {"cats": [(20, 30), (24, 24), (16, 40)], "dogs": [(32, 16), (28, 28)]}
    want = []
    for label, (name, shapes) in enumerate(sorted(sizes.items())):
        (tmp_path / "img" / name).mkdir(parents=True)
        for i, (h, w) in enumerate(shapes):
            pixels = rng.integers(0, 256, (h, w), dtype=np.uint8)
            write_png(tmp_path / "img" / name / f"{i}.png", pixels)
            want.append((label, h, w, pixels.astype(np.float64) / 255))
    assert read_png(tmp_path / "img" / "cats" / "0.png").shape == (20, 30, 1)  # the reader reads what we wrote
    out = tmp_path / "data"
    r = gradscope("inspect", "data", "--data", f"folder:{tmp_path / 'img'}:16x16x1", "--per-class", "3",
                  "--threads", "1", "--out", out)
    assert r.returncode == 0, r.stderr
    rows = read_csv(out / "metadata.csv")
    assert [(int(r["label"]), int(float(r["height"])), int(float(r["width"]))) for r in rows] == \
        [(label, h, w) for label, h, w, _ in want]
    for r, (_, h, w, _) in zip(rows, want):
        assert float(r["aspect"]) == pytest.approx(w / h)
    check_png(out / "samples.png", 2 * 16, 3 * 16)
    check_png(out / "hist_aspect.png", 100, 200)
