"""TensorBoard interop: event files gradscope writes are read by the `tensorboard` package's
EventAccumulator, and every tag, step and value comes back: scalars, a histogram with the fixed
bucket edges of inspect/stats.h (NaN/Inf kept out), a PNG image; and a `gradscope train
--probe-every` run leaves the per-layer tags its probes.jsonl describes."""
import glob
import json
import math
import os
import struct
import subprocess
import sys
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
    assert len(h.bucket_limit) == 83 and len(h.bucket) == 83
    expected = [0] * 83
    for v in finite:
        expected[bucket_of(v)] += 1
    assert list(h.bucket) == expected
    assert h.bucket_limit[41] == 2.0**-24 and h.bucket_limit[42 + 24] == 2.0
    assert h.bucket_limit[-1] == sys.float_info.max
    for v in finite:  # each value lies in (limit[b-1], limit[b]]
        b = bucket_of(v)
        assert v <= h.bucket_limit[b] and (b == 0 or v >= h.bucket_limit[b - 1])

    (image,) = acc.Images("test/image")
    assert image.step == 4 and image.width == 3 and image.height == 2
    pixels = decode_png(image.encoded_image_string)
    assert pixels.shape == (2, 3, 3)
    assert pixels.reshape(-1).tolist() == [i * 10 for i in range(18)]
