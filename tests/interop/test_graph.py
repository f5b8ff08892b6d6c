"""`gradscope graph`: the printed tape of one forward/backward on fashionnet, checked against
`gradscope grads --activations` (itself checked against PyTorch in test_grads.py): the gradient
norm shown for the last entry of each module is the norm of that module's output gradient, the
loss is the same, every parameter is a leaf of the Graphviz file and every entry input an edge."""
import os
import re

import numpy as np
import pytest
from safetensors.numpy import load_file

from gs_interop import FASHION, gradscope

pytestmark = pytest.mark.skipif(not os.path.exists(FASHION), reason="Fashion-MNIST not installed (bash scripts/setup.sh)")

LINE = re.compile(r"^#(\d+) (\w+)(?: \(([^)]*)\))? (.*?) <- (.*?)(?:\s+\|dL/dy\| (\S+))?$")


def test_graph_shows_the_tape_and_its_gradients(tmp_path):
    dot = tmp_path / "fn.dot"
    r = gradscope("graph", "--model", "fashionnet", "--batch", "4", "--seed", "3", "--backward", "--dot", str(dot))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    header = re.match(r"tape of one forward pass: (\d+) entries, loss (\S+)", lines[0])
    assert header, lines[0]
    entries = [LINE.match(line) for line in lines[1:] if line.startswith("#")]
    assert all(entries) and len(entries) == int(header.group(1)), r.stdout
    ops = [m.group(2) for m in entries]
    assert ops.count("conv2d") == 2 and ops.count("batch_norm") == 2 and ops.count("max_pool2d") == 2, ops
    assert ops[-1] == "cross_entropy" and float(entries[-1].group(6)) == 1.0

    grads = tmp_path / "g.safetensors"
    r2 = gradscope("grads", "--model", "fashionnet", "--batch", "4", "--seed", "3", "--activations", "--out", str(grads))
    assert r2.returncode == 0, r2.stderr
    ref = load_file(str(grads))
    assert float(header.group(2)) == pytest.approx(float(ref["loss"]), rel=1e-6)
    last_of_scope = {m.group(3): m for m in entries if m.group(3)}
    checked = 0
    for key, g in ref.items():
        if not key.startswith("actgrad."):
            continue
        path = key[len("actgrad."):]
        m = last_of_scope[path]
        assert float(m.group(6)) == pytest.approx(float(np.linalg.norm(g.astype(np.float64))), rel=1e-4), path
        assert m.group(4) == "[" + ",".join(str(d) for d in g.shape) + "]", path
        checked += 1
    assert checked == 12  # every module of fashionnet

    text = dot.read_text()
    for name in [k for k in ref if not k.startswith(("act", "loss"))]:
        assert f'label="{name}\\n' in text, name
    inputs = sum(len(m.group(5).split("], ")) for m in entries)
    assert text.count(" -> ") == inputs


def test_graph_rejects_a_bad_batch_and_a_device():
    r = gradscope("graph", "--model", "mlp", "--batch", "0")
    assert r.returncode == 2 and "--batch" in r.stderr, r.stderr
    r = gradscope("graph", "--model", "mlp", "--device", "cuda")
    if not re.search(r"devices: [1-9]", gradscope("cuda").stdout):  # no GPU: the error names flag and reason
        assert r.returncode == 2 and "--device cuda" in r.stderr and "no CUDA device" in r.stderr, r.stderr
    else:
        assert r.returncode == 0, r.stderr
    r = gradscope("graph", "--model", "mlp", "--device", "tpu")
    assert r.returncode == 2 and "tpu" in r.stderr, r.stderr


def test_graph_create_graph_prints_the_backward_as_a_graph(tmp_path):
    """--create-graph: the same gradient norms as a plain --backward (the recorded backward computes
    the same gradients), then the entries the backward recorded, with derivative entries for the
    convolutions' weight gradients and the pools, and the dot file holding both tapes."""
    args = ("graph", "--model", "fashionnet", "--batch", "3", "--seed", "5")
    plain = gradscope(*args, "--backward")
    dot = tmp_path / "both.dot"
    recorded = gradscope(*args, "--create-graph", "--dot", str(dot))
    assert plain.returncode == 0 and recorded.returncode == 0, plain.stderr + recorded.stderr
    lines = recorded.stdout.splitlines()
    split = next(i for i, line in enumerate(lines) if line.startswith("tape of the backward pass"))
    forward = [LINE.match(line) for line in lines[1:split]]
    plain_forward = [LINE.match(line) for line in plain.stdout.splitlines()[1:] if line.startswith("#")]
    assert len(forward) == len(plain_forward) and all(forward)
    for a, b in zip(forward, plain_forward):
        assert a.group(2) == b.group(2)
        assert float(a.group(6)) == pytest.approx(float(b.group(6)), rel=1e-5), a.group(0)
    header = re.match(r"tape of the backward pass \(create_graph\): (\d+) entries, (\d+) of them derivative entries",
                      lines[split])
    assert header, lines[split]
    backward = [LINE.match(line) for line in lines[split + 1:] if line.startswith("#")]
    assert all(backward) and len(backward) == int(header.group(1))
    ops = [m.group(2) for m in backward]
    # conv1 (the images need no gradient) and conv2: weight gradients; conv2 also its data gradient
    assert ops.count("conv2d_backward") == 3, ops
    assert ops.count("max_pool2d_backward") == 2, ops
    assert sum(op.endswith("_backward") for op in ops) == int(header.group(2))
    assert min(int(m.group(1)) for m in backward) > max(int(m.group(1)) for m in forward)
    text = dot.read_text()
    assert text.count("[label=\"#") == len(forward) + len(backward)


def torch_saved_bytes(model, x):
    """PyTorch's count of what forward keeps for backward: every tensor its autograd saves
    (saved_tensors_hooks), each storage once, charged to the top-level module that saved it
    first; parameters and buffers not counted."""
    import torch
    weights = {t.storage().data_ptr() for t in list(model.parameters()) + list(model.buffers())}
    seen, by_module, current = set(), {}, [None]
    for name, child in model.named_children():
        child.register_forward_pre_hook(lambda m, i, name=name: current.__setitem__(0, name))

    def pack(t):
        storage = t.storage()
        if storage.data_ptr() not in weights and storage.data_ptr() not in seen:
            seen.add(storage.data_ptr())
            by_module[current[0]] = by_module.get(current[0], 0) + storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(x)
    return by_module


@pytest.mark.parametrize("model", ["mlp", "lenet5", "fashionnet", "resnet8"])
def test_graph_memory_is_what_pytorch_saves_for_backward(model):
    """`graph --memory`: the bytes each top-level module keeps for backward equal what PyTorch's
    autograd saves for the same model on a batch of the same shape (the loss, computed outside any
    module, differs: torch keeps the logits, gradscope its softmax too). With --recompute-segments
    the checkpointed modules keep only their segments' inputs: at most as much, and for the conv
    nets less than half."""
    import torch
    import gs_interop

    r = gradscope("graph", "--model", model, "--batch", "4", "--memory")
    assert r.returncode == 0, r.stderr
    total = re.search(r"^saved for backward: .* \((\d+) bytes\) in (\d+) tensors", r.stdout, re.M)
    assert total, r.stdout
    rows = dict(re.findall(r"^  (\S+) +\S+ \S+ +(\d+) +[\d.]+%$", r.stdout, re.M))
    assert sum(int(v) for v in rows.values()) == int(total.group(1))
    ours = {k: int(v) for k, v in rows.items() if k != "(none)" and int(v) > 0}
    torch.manual_seed(0)
    twin = getattr(gs_interop, model)(1, 10, 28).train()
    theirs = {k: v for k, v in torch_saved_bytes(twin, torch.rand(4, 1, 28, 28)).items() if v > 0}
    assert ours == theirs

    r = gradscope("graph", "--model", model, "--batch", "4", "--memory", "--recompute-segments", "3")
    assert r.returncode == 0, r.stderr
    checked = re.search(r"^saved for backward: .* \((\d+) bytes\) .*, .* of them checkpoint inputs "
                        r"\(--recompute-segments 3\)", r.stdout, re.M)
    assert checked, r.stdout
    # mlp's layers keep their inputs anyway; the conv nets' batch norms and relus keep more.
    assert int(checked.group(1)) <= int(total.group(1)) / (1 if model == "mlp" else 2)
    assert "checkpoint input" in r.stdout.split("saved for backward")[0]
