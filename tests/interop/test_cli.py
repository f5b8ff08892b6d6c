"""The gradscope command end to end: exit codes, the overfit check, and a PyTorch state_dict
(saved with safetensors) scored by `gradscope eval` exactly as PyTorch scores it."""
import json
import os
import subprocess

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from gs_interop import FASHION, built, fashionnet, gradscope, load_idx



def test_help_and_exit_codes(tmp_path):
    r = gradscope("--help")
    assert r.returncode == 0 and "train" in r.stdout and "eval" in r.stdout
    r = gradscope("train", "--help")
    assert r.returncode == 0
    for flag in ["--model", "--epochs", "--batch", "--optimizer", "--lr", "--schedule", "--clip-norm", "--seed",
                 "--threads", "--out", "--limit-train", "--val-fraction", "--resume", "--weights"]:
        assert flag in r.stdout, flag
    r = gradscope("train", "--bogus")
    assert r.returncode == 2 and "--bogus" in r.stderr
    r = gradscope("train", "--data", f"idx:{tmp_path}/nope-images,{tmp_path}/nope-labels", "--out", str(tmp_path / "x"))
    assert r.returncode == 2 and "nope-images" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    r = gradscope("train", "--model", "alexnet", "--limit-train", "64", "--out", str(tmp_path / "y"))
    assert r.returncode == 2 and "alexnet" in r.stderr and "fashionnet" in r.stderr, r.stderr
    r = gradscope("eval", "--model", "fashionnet", "--weights", str(tmp_path / "missing.safetensors"))
    assert r.returncode == 2 and "missing.safetensors" in r.stderr, r.stderr


def test_a_kernel_selection_that_names_nothing_is_an_error_before_any_work(tmp_path):
    """--kernel and GS_KERNELS are checked against every variant table when a command starts: a
    misspelt op (once silently ignored) or an unknown variant (once found at the op's first use,
    after the run directory was written) is exit 2 naming it, and no run directory is made."""
    r = gradscope("train", "--kernel", "conv2d=nope", "--out", tmp_path / "a")
    assert r.returncode == 2 and "op 'conv2d' has no variant 'nope'" in r.stderr and "direct" in r.stderr, r.stderr
    assert not (tmp_path / "a").exists()
    env = dict(os.environ, GS_KERNELS="conv2d_bwd=direct")
    r = subprocess.run([built("gradscope"), "train", "--out", str(tmp_path / "b")], capture_output=True, text=True,
                       env=env, timeout=600)
    assert r.returncode == 2 and "no kernel op 'conv2d_bwd'" in r.stderr and "conv2d_backward_data" in r.stderr, r.stderr
    assert not (tmp_path / "b").exists()
    r = gradscope("doctor", "--kernel", "matmul=blas", "--out", tmp_path / "c")
    assert r.returncode == 2 and "op 'matmul' has no variant 'blas'" in r.stderr, r.stderr
    # `kernels` listed the variants as if a bad GS_KERNELS were fine.
    r = subprocess.run([built("gradscope"), "kernels"], capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 2 and "no kernel op 'conv2d_bwd'" in r.stderr and r.stdout == "", (r.stdout, r.stderr)


def test_bad_class_weights_are_an_error_before_any_work(tmp_path):
    """--class-weights is checked against the training set's classes before a run directory is
    made, by train, lr-find and doctor alike."""
    for command, message in [("train", "--class-weights: 3 weights for 10 classes in '1,2,3'"),
                             ("lr-find", "--class-weights: 3 weights for 10 classes in '1,2,3'"),
                             ("doctor", "--class-weights: 3 weights for 10 classes in '1,2,3'")]:
        out = tmp_path / command
        r = gradscope(command, "--class-weights", "1,2,3", "--out", out)
        assert r.returncode == 2 and message in r.stderr, (command, r.stderr)
        assert not out.exists(), command
    # --batch and --lr too: the doctor found a bad one only after minutes of checks, by a loader's or
    # scheduler's error that did not name the flag.
    for flags, message in [(["--batch", "0"], "doctor: --batch must be positive, got 0"),
                           (["--lr", "-1"], "doctor: --lr must be a finite number >= 0, got -1"),
                           (["--lr", "0"], "doctor: --lr must be > 0")]:
        r = gradscope("doctor", *flags, "--out", tmp_path / "doc")
        assert r.returncode == 2 and message in r.stderr and "[1/" not in r.stderr, (flags, r.stderr)
        assert not (tmp_path / "doc").exists()
    r = gradscope("train", "--class-weights", "inverse", "--out", tmp_path / "x")
    assert r.returncode == 2 and "'inverse' is not a weight >= 0 (give none, balanced, or 10" in r.stderr, r.stderr
    assert "--class-weights" in gradscope("train", "--help").stdout


@pytest.mark.skipif(not os.path.exists(FASHION), reason="Fashion-MNIST not installed (bash scripts/setup.sh)")
def test_pytorch_state_dict_scores_the_same(tmp_path):
    torch.manual_seed(0)
    torch.set_num_threads(2)
    model = fashionnet()
    norm = lambda x: (torch.from_numpy(x.astype(np.float32)) / 255 - 0.2860) / 0.3530
    train_x, train_y = load_idx("train-images-idx3-ubyte.gz")[:3200], load_idx("train-labels-idx1-ubyte.gz")[:3200]
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    for i in range(0, 3200, 64):  # a short training run, so accuracy and BN statistics are non-trivial
        loss = torch.nn.functional.cross_entropy(model(norm(train_x[i:i + 64])), torch.from_numpy(train_y[i:i + 64]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    test_x, test_y = load_idx("t10k-images-idx3-ubyte.gz"), torch.from_numpy(load_idx("t10k-labels-idx1-ubyte.gz"))
    with torch.no_grad():
        logits = torch.cat([model(norm(test_x[i:i + 1000])) for i in range(0, 10000, 1000)])
    torch_loss = torch.nn.functional.cross_entropy(logits, test_y).item()
    torch_acc = (logits.argmax(1) == test_y).float().mean().item()
    weights = tmp_path / "torch_fashionnet.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))

    r = gradscope("eval", "--model", "fashionnet", "--weights", str(weights), "--threads", "2")
    assert r.returncode == 0, r.stderr
    ours = json.loads(r.stdout)
    assert ours["images"] == 10000
    assert torch_acc > 0.5  # the check means something only if the model learned
    assert abs(ours["accuracy"] - torch_acc) <= 2e-4, (ours, torch_acc)  # at most 2 argmax near-ties flip
    assert abs(ours["loss"] - torch_loss) <= 1e-4, (ours, torch_loss)


@pytest.mark.skipif(not os.path.exists(FASHION), reason="Fashion-MNIST not installed (bash scripts/setup.sh)")
def test_overfit_one_small_batch(tmp_path):
    out = tmp_path / "overfit"
    r = gradscope("train", "--model", "fashionnet", "--limit-train", "64", "--epochs", "200", "--augment", "none",
            "--limit-test", "100", "--no-progress", "--out", str(out), "--threads", "2")
    assert r.returncode == 0, r.stderr
    lines = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) == 200
    assert lines[-1]["train_loss"] < 0.01, lines[-1]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["epochs"] == 200 and 0 <= summary["test_accuracy"] <= 1


def first_lr_find_loss(tmp_path, name, *flags):
    out = tmp_path / name
    r = gradscope("lr-find", "--model", "mlp", "--steps", 2, "--limit-train", 256, "--threads", 1, "--out", out, *flags)
    assert r.returncode == 0, r.stderr
    return float((out / "lr_find.csv").read_text().splitlines()[1].split(",")[2])  # step 0: the initial weights


@pytest.mark.skipif(not os.path.exists(FASHION), reason="Fashion-MNIST not installed (bash scripts/setup.sh)")
def test_lr_find_sweeps_the_objective_train_minimises_with_grad_penalty(tmp_path):
    """The sweep's first point is at the initial weights on the first batch, so the penalised
    objective exceeds the plain loss by a penalty linear in --grad-penalty; a run's config.json
    brings its penalty along."""
    plain = first_lr_find_loss(tmp_path, "plain")
    five = first_lr_find_loss(tmp_path, "five", "--grad-penalty", 5)
    ten = first_lr_find_loss(tmp_path, "ten", "--grad-penalty", 10)
    assert five > plain + 1e-4
    assert ten - plain == pytest.approx(2 * (five - plain), rel=1e-3)
    r = gradscope("train", "--model", "mlp", "--epochs", 1, "--limit-train", 64, "--limit-test", 64, "--threads", 1,
                  "--grad-penalty", 5, "--out", tmp_path / "run")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "run" / "config.json").read_text())["grad_penalty"] == 5
    assert first_lr_find_loss(tmp_path, "from_config", "--config", tmp_path / "run" / "config.json") == five
    r = gradscope("lr-find", "--grad-penalty", "-1", "--out", tmp_path / "bad")
    assert r.returncode == 2 and "lr-find: --grad-penalty must be a finite number >= 0, got -1" in r.stderr, r.stderr


@pytest.mark.skipif(not os.path.exists(FASHION), reason="Fashion-MNIST not installed (bash scripts/setup.sh)")
def test_lr_find_sweeps_mixed_batches_with_mixup_and_cutmix(tmp_path):
    """With --mixup / --cutmix the sweep trains on mixed batches, as train does: the first point
    (the initial weights, the first batch) is the mixed batch's loss against its mixed labels,
    not the plain one; a run's config.json brings its mixing along."""
    plain = first_lr_find_loss(tmp_path, "plain")
    mixup = first_lr_find_loss(tmp_path, "mixup", "--mixup", 0.4)
    cutmix = first_lr_find_loss(tmp_path, "cutmix", "--cutmix", 1.0)
    assert mixup != plain and cutmix != plain and mixup != cutmix
    assert first_lr_find_loss(tmp_path, "mixup_again", "--mixup", 0.4) == mixup
    r = gradscope("train", "--model", "mlp", "--epochs", 1, "--limit-train", 64, "--limit-test", 64, "--threads", 1,
                  "--mixup", 0.4, "--out", tmp_path / "run")
    assert r.returncode == 0, r.stderr
    assert first_lr_find_loss(tmp_path, "from_config", "--config", tmp_path / "run" / "config.json") == mixup
    r = gradscope("lr-find", "--cutmix", "-1", "--out", tmp_path / "bad")
    assert r.returncode == 2 and "lr-find: --mixup and --cutmix must be >= 0 (got 0, -1)" in r.stderr, r.stderr


def test_user_mistakes_are_one_line_errors_with_exit_code_2(tmp_path):
    """Found by a CLI audit: these were an 'internal error' (exit 1), a crash, or silently accepted."""
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    cases = [
        (["train", "--out", str(a_file / "sub"), "--limit-train", "64"], str(a_file / "sub")),
        (["train", "--seed", "-1", "--out", str(tmp_path / "s")], "--seed: must be >= 0, got -1"),
        (["train", "--clip-value", "nan", "--out", str(tmp_path / "c")], "--clip-value must be a finite number >= 0"),
        (["train", "--limit-train", "-5", "--out", str(tmp_path / "l")], "--limit-train must be >= 0"),
        (["lr-find", "--diverge", "0", "--out", str(tmp_path / "d")], "(--diverge) must be > 1"),
    ]
    for run_dir, config in [("list", [1]), ("typed", {"model": 5})]:
        (tmp_path / "runs" / run_dir).mkdir(parents=True)
        (tmp_path / "runs" / run_dir / "config.json").write_text(json.dumps(config))
    cases += [(["runs", str(tmp_path / "runs" / "list")], "has no readable config.json"),
              (["runs", str(tmp_path / "runs" / "typed")], "has the wrong type")]
    deep = tmp_path / "deep.json"
    deep.write_text('{"layers": [' + "[" * 100000 + "]" * 100000 + "]}")
    cases.append((["graph", "--model-spec", str(deep)], "nested more than 4 deep"))
    for args, message in cases:
        r = gradscope(*args, "--threads", "1") if args[0] != "runs" else gradscope(*args)
        assert r.returncode == 2 and message in r.stderr, (args, r.returncode, r.stderr)
        lines = r.stderr.strip().splitlines()  # lr-find announces its sweep first
        assert message in lines[-1] and sum(line.startswith("gradscope:") for line in lines) == 1, (args, r.stderr)
    assert not (tmp_path / "s").exists() and not (tmp_path / "c").exists()


def test_resume_continues_with_the_runs_own_config(tmp_path):
    """Found by a CLI audit: --resume took the default config (fashionnet, no validation set), so an mlp
    run could not be resumed and a run with --val-fraction lost its validation set on resuming."""
    out = tmp_path / "run"
    r = gradscope("train", "--model", "mlp", "--limit-train", "256", "--limit-test", "128", "--val-fraction", "0.1",
                  "--epochs", "1", "--threads", "1", "--no-progress", "--out", str(out))
    assert r.returncode == 0, r.stderr
    r = gradscope("train", "--resume", str(out / "last.safetensors"), "--epochs", "2", "--threads", "1")
    assert r.returncode == 0, r.stderr
    assert f"resuming with {out / 'config.json'}" in r.stderr, r.stderr
    lines = [json.loads(line) for line in open(out / "metrics.jsonl")]
    assert [m["epoch"] for m in lines] == [1, 2]
    assert all(m["val_acc"] is not None for m in lines), lines
    config = json.load(open(out / "config.json"))
    assert config["model"] == "mlp" and config["epochs"] == 2 and config["limit_train"] == 256


def test_resume_goes_on_in_the_checkpoints_folder_and_a_failed_resume_changes_nothing(tmp_path):
    """Found by an io audit: a run trained with a relative --out and resumed from a copy of its folder
    (or from another directory) wrote into the original run; a failed resume had already rewritten
    config.json (so every later resume failed); timing.jsonl lost the epochs before the checkpoint;
    a cut line in metrics.jsonl was an internal error; config.json kept --resume, so
    `train --config config.json` continued the old checkpoint instead of repeating the run."""
    exe = os.path.abspath(built("gradscope"))

    def run(*args, cwd):
        return subprocess.run([exe, *map(str, args)], capture_output=True, text=True, timeout=600, cwd=cwd)

    r = run("train", "--model", "mlp", "--limit-train", "256", "--limit-test", "128", "--epochs", "1", "--threads",
            "1", "--no-progress", "--out", "orig", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    original = (tmp_path / "orig" / "last.safetensors").read_bytes()
    subprocess.run(["cp", "-r", str(tmp_path / "orig"), str(tmp_path / "copy")], check=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    config_before = (tmp_path / "copy" / "config.json").read_text()
    # A resume that fails (another model) leaves the run's files as they were.
    r = run("train", "--resume", tmp_path / "copy" / "last.safetensors", "--model", "lenet5", "--epochs", "2",
            cwd=elsewhere)
    assert r.returncode == 2 and "checkpoint " in r.stderr and len(r.stderr.strip().splitlines()) == 2, r.stderr
    assert (tmp_path / "copy" / "config.json").read_text() == config_before
    # A line cut short by a crash ends the kept log; it is not an error.
    with open(tmp_path / "copy" / "metrics.jsonl", "a") as f:
        f.write('{"epoch": 2, "train_lo')
    r = run("train", "--resume", tmp_path / "copy" / "last.safetensors", "--epochs", "2", "--threads", "1",
            "--no-progress", cwd=elsewhere)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "orig" / "last.safetensors").read_bytes() == original
    assert not (elsewhere / "orig").exists() and list(elsewhere.iterdir()) == []
    for log in ("metrics.jsonl", "timing.jsonl"):
        epochs = [json.loads(line)["epoch"] for line in open(tmp_path / "copy" / log)]
        assert epochs == [1, 2], (log, epochs)
    config = json.load(open(tmp_path / "copy" / "config.json"))
    assert config["epochs"] == 2 and config["resume"] == "", config


def test_a_lone_checkpoint_resumes_with_the_config_it_keeps_and_a_non_utf8_path_is_an_error(tmp_path):
    """Found by an io audit: a checkpoint copied away from its run's config.json resumed as the default
    fashionnet (a wall of missing keys); a non-UTF-8 --out was an internal error (a JSON exception)."""
    r = gradscope("train", "--model", "mlp", "--limit-train", "256", "--limit-test", "128", "--epochs", "1",
                  "--threads", "1", "--no-progress", "--out", tmp_path / "run")
    assert r.returncode == 0, r.stderr
    lone = tmp_path / "lone"
    lone.mkdir()
    (lone / "ck.safetensors").write_bytes((tmp_path / "run" / "last.safetensors").read_bytes())
    r = gradscope("train", "--resume", lone / "ck.safetensors", "--epochs", "2", "--threads", "1", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "resuming with the config kept in" in r.stderr, r.stderr
    assert json.load(open(lone / "config.json"))["model"] == "mlp"
    assert [json.loads(line)["epoch"] for line in open(lone / "metrics.jsonl")] == [2]
    bad = os.fsencode(str(tmp_path)) + b"/run\xe9"
    r = subprocess.run([built("gradscope"), b"train", b"--model", b"mlp", b"--limit-train", b"64", b"--epochs", b"1",
                        b"--out", bad], capture_output=True, timeout=600)
    err = r.stderr.decode(errors="replace")
    assert r.returncode == 2 and "not valid UTF-8" in err and len(err.strip().splitlines()) == 1, err


def test_doctor_says_a_model_that_does_not_take_the_data_before_any_check(tmp_path):
    spec = tmp_path / "small.json"
    spec.write_text(json.dumps({"layers": [{"type": "flatten"}, {"type": "linear", "in": 100, "out": 10}]}))
    r = gradscope("doctor", "--model-spec", spec, "--out", tmp_path / "d")
    assert r.returncode == 2 and "does not take the data's images [1,1,28,28]" in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()  # the doctor's banner, then the error
    assert lines[-1].startswith("gradscope: error: ") and len(lines) <= 2, r.stderr
    assert not (tmp_path / "d").exists(), r.stderr


def test_classes_without_a_training_image_are_a_warning(tmp_path):
    """Found by an io audit: one corrupt label (200 among 0..9) made a 201-class model silently."""
    import struct
    n = 40
    labels = [i % 10 for i in range(n)]
    labels[7] = 200
    (tmp_path / "img").write_bytes(struct.pack(">IIII", 0x0803, n, 28, 28) + bytes(n * 28 * 28))
    (tmp_path / "lab").write_bytes(struct.pack(">II", 0x0801, n) + bytes(labels))
    r = gradscope("train", "--model", "mlp", "--data", f"idx:{tmp_path / 'img'},{tmp_path / 'lab'}", "--epochs", "1",
                  "--threads", "1", "--no-progress", "--out", tmp_path / "run")
    assert r.returncode == 0, r.stderr
    assert "warning: 190 of the 201 classes have no training image (10, 11, 12, 13, 14, ...)" in r.stderr, r.stderr
    r = gradscope("train", "--model", "mlp", "--limit-train", "256", "--limit-test", "64", "--epochs", "1",
                  "--threads", "1", "--no-progress", "--out", tmp_path / "fine")
    assert r.returncode == 0 and "warning" not in r.stderr, r.stderr


def test_data_without_a_test_set_says_its_test_scores_are_training_scores(tmp_path):
    """idx:<images>,<labels> (and a folder without train/) give the training images as the test set:
    train, eval and the doctor said nothing, and the doctor called it a 100% train/test leak."""
    import struct
    n = 40
    (tmp_path / "img").write_bytes(struct.pack(">IIII", 0x0803, n, 28, 28) + bytes(range(n)) * (28 * 28))
    (tmp_path / "lab").write_bytes(struct.pack(">II", 0x0801, n) + bytes(i % 10 for i in range(n)))
    data = f"idx:{tmp_path / 'img'},{tmp_path / 'lab'}"
    r = gradscope("train", "--model", "mlp", "--data", data, "--epochs", "1", "--threads", "1", "--no-progress",
                  "--out", tmp_path / "run")
    assert r.returncode == 0, r.stderr
    assert f"warning: {data} has no test set of its own" in r.stderr, r.stderr
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["test_is_train"] is True
    r = gradscope("eval", "--model", "mlp", "--data", data, "--weights", tmp_path / "run" / "last.safetensors",
                  "--threads", "1")
    assert r.returncode == 0, r.stderr
    assert "warning: eval: " in r.stderr and json.loads(r.stdout)["test_is_train"] is True, r.stdout + r.stderr
    r = gradscope("eval", "--model", "mlp", "--data", data, "--weights", tmp_path / "run" / "last.safetensors",
                  "--threads", "1", "--split", "train")
    assert r.returncode == 0 and "warning" not in r.stderr and json.loads(r.stdout)["test_is_train"] is False, r.stderr
    r = gradscope("train", "--model", "mlp", "--limit-train", "256", "--limit-test", "64", "--epochs", "1",
                  "--threads", "1", "--no-progress", "--out", tmp_path / "fine")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "fine" / "summary.json").read_text())["test_is_train"] is False


def test_a_spec_edited_since_the_checkpoint_stops_resume_and_warns_eval(tmp_path):
    """Weights that fit do not make the same model: a spec whose ReLU became Tanh resumed as the same run."""
    layers = [{"type": "flatten"}, {"type": "linear", "in": 784, "out": 16}, {"type": "relu"},
              {"type": "linear", "in": 16, "out": 10}]
    spec = tmp_path / "net.json"
    spec.write_text(json.dumps({"layers": layers}))
    run = tmp_path / "run"
    common = ["--limit-train", "128", "--limit-test", "64", "--threads", "1", "--no-progress"]
    r = gradscope("train", "--model-spec", spec, "--epochs", "1", *common, "--out", run)
    assert r.returncode == 0, r.stderr
    r = gradscope("eval", "--model-spec", spec, "--weights", run / "last.safetensors",
                  "--threads", "1")
    assert r.returncode == 0 and "warning" not in r.stderr, r.stderr
    layers[2] = {"type": "tanh"}
    spec.write_text(json.dumps({"layers": layers}))
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    r = gradscope("train", "--resume", run / "last.safetensors", "--epochs", "2", *common)
    assert r.returncode == 2, r.stderr
    assert "was written for another model than" in r.stderr and "'(2): ReLU()' in the checkpoint, '(2): Tanh()' here" \
        in r.stderr, r.stderr
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before  # nothing written
    r = gradscope("eval", "--model-spec", spec, "--weights", run / "last.safetensors",
                  "--threads", "1")
    assert r.returncode == 0, r.stderr
    assert "were trained in another model (line 4 of the model's layers: '(2): ReLU()'" in r.stderr, r.stderr


def test_eval_and_export_take_the_checkpoints_model_and_search_refuses_bad_flags_up_front(tmp_path):
    """Found by a docs audit: eval and export built the default fashionnet for an mlp run's checkpoint
    (a wall of mismatched keys), export did not create --onnx's folder, and search started every
    trial with a --kernel each would refuse."""
    r = gradscope("train", "--model", "mlp", "--limit-train", "128", "--limit-test", "64", "--epochs", "1",
                  "--threads", "1", "--no-progress", "--no-tensorboard", "--out", tmp_path / "run")
    assert r.returncode == 0, r.stderr
    checkpoint = tmp_path / "run" / "last.safetensors"
    r = gradscope("eval", "--weights", checkpoint, "--threads", "1")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["images"] == 10000  # the mlp scored on the run's data, the whole test set
    r = gradscope("export", "--weights", checkpoint, "--onnx", tmp_path / "new" / "dir" / "m.onnx", "--threads", "1")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "new" / "dir" / "m.onnx").exists()
    r = gradscope("eval", "--weights", checkpoint, "--model", "lenet5", "--threads", "1")  # a flag given wins
    assert r.returncode == 2 and "missing key" in r.stderr, r.stderr
    space = tmp_path / "space.json"
    space.write_text(json.dumps({"lr": {"type": "loguniform", "low": 1e-3, "high": 0.3}}))
    for flags, message in [(["--kernel", "conv2d=zzz"], "zzz"), (["--model", "nope"], "unknown --model 'nope'"),
                           (["--batch", "0"], "search: --batch must be positive")]:
        r = gradscope("search", "--space", space, "--trials", "2", "--out", tmp_path / "s", *flags)
        assert r.returncode == 2 and message in r.stderr, (flags, r.stderr)
        assert not (tmp_path / "s" / "trial_000").exists() and not (tmp_path / "s" / "trial_001").exists(), flags
