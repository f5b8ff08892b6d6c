"""safetensors interop: files gs writes load in Python's safetensors (numpy and torch) with equal values
and metadata, and files written by safetensors.numpy / safetensors.torch load in gs, through
tests/interop/tools_io/gs_safetensors_tool (dump / copy / write)."""
import json
import os
import subprocess

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.numpy import load_file as np_load
from safetensors.numpy import save_file as np_save
from safetensors.torch import load_file as torch_load
from safetensors.torch import save_file as torch_save


def tool_path():
    build = os.environ.get("GS_BUILD_DIR")
    if not build:
        pytest.skip("GS_BUILD_DIR is not set: point it at a gradscope build dir (ctest sets it)")
    path = os.path.join(build, "tests", "interop", "tools_io", "gs_safetensors_tool")
    assert os.path.exists(path), f"{path} missing: build the gs_safetensors_tool target"
    return path


def run_tool(*args, check=True):
    proc = subprocess.run([tool_path(), *args], capture_output=True, text=True, timeout=60)
    if check:
        assert proc.returncode == 0, f"gs_safetensors_tool {' '.join(args)} failed:\n{proc.stderr}"
    return proc


def gs_dump(path, *extra):
    out = json.loads(run_tool("dump", str(path), *extra).stdout)
    return {t["name"]: t for t in out["tensors"]}, out["metadata"], [t["name"] for t in out["tensors"]]


GS_DTYPES = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64", np.dtype(np.int64): "i64"}


def expect_gs_equals(entry, array):
    assert entry["dtype"] == GS_DTYPES[array.dtype]
    assert entry["shape"] == list(array.shape)
    got = np.array(entry["values"], dtype=array.dtype).reshape(array.shape)
    np.testing.assert_array_equal(got, array)  # exact: f32 travels widened to double and back


def test_gs_written_file_loads_in_python(tmp_path):
    path = tmp_path / "gs.safetensors"
    run_tool("write", str(path))
    arrays = np_load(str(path))
    with safe_open(str(path), framework="np") as f:
        metadata = f.metadata()
        keys = list(f.keys())
    assert metadata == {"epoch": "12", "format": "pt", "model": "fashionnet"}
    assert sorted(keys) == sorted(["conv.weight", "bn.num_batches_tracked", "precise", "empty", "steps"])
    expected_w = (np.arange(24, dtype=np.float32) * np.float32(0.25) - np.float32(3)).reshape(2, 3, 2, 2)
    np.testing.assert_array_equal(arrays["conv.weight"], expected_w)
    assert arrays["conv.weight"].dtype == np.float32
    assert arrays["bn.num_batches_tracked"].shape == () and arrays["bn.num_batches_tracked"] == 7
    assert arrays["bn.num_batches_tracked"].dtype == np.int64
    np.testing.assert_array_equal(arrays["precise"], np.array([0.1, -1e-300, 1e300]))
    assert arrays["empty"].shape == (0, 5) and arrays["empty"].dtype == np.float32
    np.testing.assert_array_equal(arrays["steps"], np.array([[-1], [0], [2**53]], dtype=np.int64))
    tensors = torch_load(str(path))  # and through torch
    assert tensors["conv.weight"].dtype == torch.float32
    assert torch.equal(tensors["conv.weight"], torch.from_numpy(expected_w))


def test_numpy_written_file_loads_in_gs_and_copies_back(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {
        "a.weight": rng.standard_normal((3, 4)).astype(np.float32),
        "a.bias": rng.standard_normal(4).astype(np.float32),
        "scale": np.array(2.5, dtype=np.float64),
        "counts": np.array([1, -2, 2**40], dtype=np.int64),
        "nothing": np.zeros((0, 3), dtype=np.float32),
    }
    src = tmp_path / "np.safetensors"
    np_save(arrays, str(src), metadata={"source": "numpy", "lr": "0.001"})
    tensors, metadata, _ = gs_dump(src)
    assert metadata == {"source": "numpy", "lr": "0.001"}
    assert set(tensors) == set(arrays)
    for name, array in arrays.items():
        expect_gs_equals(tensors[name], array)
    # gs writes it again; Python reads the copy back unchanged.
    dst = tmp_path / "copy.safetensors"
    run_tool("copy", str(src), str(dst))
    back = np_load(str(dst))
    for name, array in arrays.items():
        assert back[name].dtype == array.dtype
        np.testing.assert_array_equal(back[name], array)
    with safe_open(str(dst), framework="np") as f:
        assert f.metadata() == {"source": "numpy", "lr": "0.001"}


def test_torch_written_state_dict_loads_in_gs(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                                torch.nn.Flatten(), torch.nn.Linear(4 * 5 * 5, 3))
    model(torch.randn(2, 1, 5, 5))  # moves the running stats and num_batches_tracked
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    state["extra.f64"] = torch.randn(2, 2, dtype=torch.float64)
    path = tmp_path / "torch.safetensors"
    torch_save(state, str(path), metadata={"format": "pt"})
    tensors, metadata, _ = gs_dump(path)
    assert metadata == {"format": "pt"}
    assert set(tensors) == set(state)
    for name, t in state.items():
        expect_gs_equals(tensors[name], t.numpy())
    assert tensors["1.num_batches_tracked"]["shape"] == [] and tensors["1.num_batches_tracked"]["values"] == [1]


def test_file_is_byte_identical_to_the_reference_writer(tmp_path):
    # The reference orders tensors by dtype (I64, F64, F32) then name; given that order, gs must
    # produce the same bytes: same compact header JSON, same space padding, same data layout.
    arrays = {
        "step": np.array([3], dtype=np.int64),
        "d": np.array([[1.0, 2.0]], dtype=np.float64),
        "w": np.arange(6, dtype=np.float32).reshape(2, 3),
    }
    ref = tmp_path / "ref.safetensors"
    np_save(arrays, str(ref), metadata={"k": "v"})
    _, _, order = gs_dump(ref)
    assert order == ["step", "d", "w"], "the reference writer's order changed; update the test"
    ours = tmp_path / "ours.safetensors"
    run_tool("copy", str(ref), str(ours))
    assert ours.read_bytes() == ref.read_bytes()


def test_bf16_and_u8_are_named_in_the_error_and_convert_on_request(tmp_path):
    path = tmp_path / "bf16.safetensors"
    torch_save({"half": torch.tensor([1.5, -2.0, 0.09375], dtype=torch.bfloat16),
                "bytes": torch.tensor([0, 7, 255], dtype=torch.uint8)}, str(path))
    proc = run_tool("dump", str(path), check=False)
    assert proc.returncode == 1
    assert str(path) in proc.stderr
    assert "BF16" in proc.stderr or "U8" in proc.stderr, proc.stderr
    tensors, _, _ = gs_dump(path, "--convert")
    assert tensors["half"]["dtype"] == "f32" and tensors["half"]["values"] == [1.5, -2.0, 0.09375]
    assert tensors["bytes"]["dtype"] == "i64" and tensors["bytes"]["values"] == [0, 7, 255]


def test_truncated_file_error_names_the_file(tmp_path):
    path = tmp_path / "cut.safetensors"
    np_save({"w": np.ones((8, 8), dtype=np.float32)}, str(path))
    data = path.read_bytes()
    path.write_bytes(data[:-20])
    proc = run_tool("dump", str(path), check=False)
    assert proc.returncode == 1
    assert str(path) in proc.stderr and "truncated" in proc.stderr, proc.stderr
