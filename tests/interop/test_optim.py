"""gradscope's optimizers and LR schedules against torch 1.13's torch.optim, step by step.

Each case is a JSON description (optimizer + hyperparameters + initial params + per-step grads, or a
schedule spec + base lr + step count). tests/interop/tools_optim/gs_optim_tool (built in
GS_BUILD_DIR) prints gradscope's trajectory; torch runs the same inputs here.
"""
import json
import os
import subprocess
import warnings

import numpy as np
import pytest
import torch
from torch.optim import lr_scheduler as S

RTOL_F64, ATOL_F64 = 1e-6, 1e-12
RTOL_F32, ATOL_F32 = 1e-5, 1e-6


def tool_path():
    build = os.environ.get("GS_BUILD_DIR")
    if not build:
        pytest.skip("GS_BUILD_DIR is not set (ctest sets it; for a manual run point it at your build dir)")
    path = os.path.join(build, "tests", "interop", "tools_optim", "gs_optim_tool")
    assert os.path.exists(path), f"{path} is missing: build the gs_optim_tool target"
    return path


def run_tool(tmp_path, case):
    path = tmp_path / "case.json"
    path.write_text(json.dumps(case))
    proc = subprocess.run([tool_path(), str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"gs_optim_tool failed: {proc.stderr}"
    return json.loads(proc.stdout)


# ---- optimizers ----

def torch_kwargs(name, hyper):
    """gradscope hyperparameter names -> torch.optim keyword arguments."""
    h = dict(hyper)
    kw = {}
    if name in ("adam", "adamw"):
        default_betas = (0.9, 0.999)
        kw["betas"] = (h.pop("beta1", default_betas[0]), h.pop("beta2", default_betas[1]))
        if "amsgrad" in h:
            kw["amsgrad"] = bool(h.pop("amsgrad"))
    if name == "rprop":
        kw["etas"] = (h.pop("eta_minus", 0.5), h.pop("eta_plus", 1.2))
        kw["step_sizes"] = (h.pop("step_min", 1e-6), h.pop("step_max", 50))
    for flag in ("nesterov", "centered"):
        if flag in h:
            kw[flag] = bool(h.pop(flag))
    kw.update(h)
    return kw


TORCH_CLASSES = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW,
                 "rprop": torch.optim.Rprop, "rmsprop": torch.optim.RMSprop}


def run_torch(case):
    dtype = torch.float64 if case.get("dtype", "f64") == "f64" else torch.float32
    params = [torch.tensor(p["data"], dtype=dtype).reshape(p["shape"]).requires_grad_() for p in case["params"]]
    name = case["name"]
    defaults = torch_kwargs(name, case.get("hyper", {}))
    if "groups" in case:
        groups = []
        for g in case["groups"]:
            group = {"params": [params[i] for i in g["params"]], "lr": g["lr"]}
            if name != "rprop":
                group["weight_decay"] = g.get("weight_decay", 0.0)
            opts = dict(g.get("options", {}))
            if name in ("adam", "adamw") and ("beta1" in opts or "beta2" in opts):
                b1, b2 = defaults.get("betas", (0.9, 0.999))
                opts["beta1"], opts["beta2"] = opts.get("beta1", b1), opts.get("beta2", b2)
            group.update(torch_kwargs(name, opts) if opts else {})
            groups.append(group)
        opt = TORCH_CLASSES[name](groups, **defaults)
    else:
        opt = TORCH_CLASSES[name](params, **defaults)
    trajectory = []
    for grads in case["grads"]:
        for p, g in zip(params, grads):
            p.grad = None if g is None else torch.tensor(g, dtype=dtype).reshape(p.shape)
        opt.step()
        trajectory.append([p.detach().reshape(-1).tolist() for p in params])
    return trajectory


def make_case(name, hyper, shapes=((3, 4), (5,)), steps=8, seed=0, dtype="f64", zero_frac=0.0, **extra):
    rng = np.random.default_rng(seed)
    params = [{"shape": list(s), "data": rng.uniform(-1, 1, size=int(np.prod(s))).tolist()} for s in shapes]
    grads = []
    for _ in range(steps):
        row = []
        for s in shapes:
            g = rng.normal(size=int(np.prod(s)))
            g[rng.uniform(size=g.size) < zero_frac] = 0.0
            row.append(g.tolist())
        grads.append(row)
    case = {"kind": "optimizer", "name": name, "hyper": hyper, "dtype": dtype, "params": params, "grads": grads}
    case.update(extra)
    return case


def check_trajectory(ours, theirs, dtype):
    rtol, atol = (RTOL_F64, ATOL_F64) if dtype == "f64" else (RTOL_F32, ATOL_F32)
    assert len(ours) == len(theirs)
    for step, (row_ours, row_theirs) in enumerate(zip(ours, theirs)):
        for i, (a, b) in enumerate(zip(row_ours, row_theirs)):
            np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=f"step {step + 1}, param {i}")


OPTIMIZER_CASES = {
    "sgd_plain": ("sgd", {"lr": 0.1}),
    "sgd_momentum": ("sgd", {"lr": 0.05, "momentum": 0.9}),
    "sgd_dampening": ("sgd", {"lr": 0.05, "momentum": 0.8, "dampening": 0.3}),
    "sgd_nesterov": ("sgd", {"lr": 0.05, "momentum": 0.9, "nesterov": 1}),
    "sgd_weight_decay": ("sgd", {"lr": 0.1, "weight_decay": 0.01}),
    "sgd_all": ("sgd", {"lr": 0.02, "momentum": 0.7, "weight_decay": 0.05, "nesterov": 1}),
    "adam_plain": ("adam", {"lr": 0.01}),
    "adam_betas_eps": ("adam", {"lr": 0.02, "beta1": 0.8, "beta2": 0.99, "eps": 1e-6}),
    "adam_amsgrad": ("adam", {"lr": 0.01, "amsgrad": 1}),
    "adam_weight_decay": ("adam", {"lr": 0.01, "weight_decay": 0.1}),
    "adam_amsgrad_weight_decay": ("adam", {"lr": 0.01, "weight_decay": 0.1, "amsgrad": 1}),
    "adamw_default_decay": ("adamw", {"lr": 0.01}),
    "adamw_decay_amsgrad": ("adamw", {"lr": 0.01, "weight_decay": 0.3, "amsgrad": 1}),
    "rprop_default": ("rprop", {"lr": 0.01}),
    "rprop_clamped": ("rprop", {"lr": 0.05, "eta_minus": 0.3, "eta_plus": 1.5, "step_min": 0.02, "step_max": 0.1}),
    "rmsprop_plain": ("rmsprop", {"lr": 0.01}),
    "rmsprop_centered": ("rmsprop", {"lr": 0.01, "centered": 1, "alpha": 0.9}),
    "rmsprop_momentum": ("rmsprop", {"lr": 0.01, "momentum": 0.9}),
    "rmsprop_all": ("rmsprop", {"lr": 0.01, "centered": 1, "momentum": 0.5, "weight_decay": 0.1, "eps": 1e-4}),
}


@pytest.mark.parametrize("case_name", sorted(OPTIMIZER_CASES))
def test_optimizer_matches_torch(tmp_path, case_name):
    name, hyper = OPTIMIZER_CASES[case_name]
    # Rprop's branches need sign flips and zeros; a few exact zero grads test those for all.
    case = make_case(name, hyper, steps=12, seed=len(case_name), zero_frac=0.15)
    check_trajectory(run_tool(tmp_path, case)["params"], run_torch(case), "f64")


@pytest.mark.parametrize("name,hyper", [("sgd", {"lr": 0.05, "momentum": 0.9}),
                                        ("adam", {"lr": 0.01, "amsgrad": 1, "weight_decay": 0.1}),
                                        ("adamw", {"lr": 0.01}),
                                        ("rprop", {"lr": 0.01}),
                                        ("rmsprop", {"lr": 0.01, "centered": 1, "momentum": 0.5})])
def test_state_dict_reload_continues_like_torch(tmp_path, name, hyper):
    # After step 5 the tool moves the state through state_dict into a fresh optimizer.
    case = make_case(name, hyper, steps=10, seed=7, zero_frac=0.1, reload_at=5)
    check_trajectory(run_tool(tmp_path, case)["params"], run_torch(case), "f64")


@pytest.mark.parametrize("name,hyper", [("sgd", {"lr": 0.05, "momentum": 0.9, "nesterov": 1}),
                                        ("adam", {"lr": 0.01}), ("adamw", {"lr": 0.01, "amsgrad": 1}),
                                        ("rprop", {"lr": 0.01}), ("rmsprop", {"lr": 0.01, "centered": 1})])
def test_f32_matches_torch(tmp_path, name, hyper):
    case = make_case(name, hyper, steps=6, seed=3, dtype="f32")
    check_trajectory(run_tool(tmp_path, case)["params"], run_torch(case), "f32")


# Parameters large enough for the flat loop's parallel path (over 2^15 elements in all: ranges
# cut across parameters, one per thread), odd sizes for the vector tails, several param groups'
# worth of constants in one loop; f64 and f32, all optimizers.
BIG_SHAPES = ((150, 131), (37,), (61, 223), (3, 1))


@pytest.mark.parametrize("dtype", ["f64", "f32"])
@pytest.mark.parametrize("name,hyper", [("sgd", {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.01}),
                                        ("adam", {"lr": 0.01, "amsgrad": 1, "weight_decay": 0.1}),
                                        ("adamw", {"lr": 0.01}),
                                        ("rprop", {"lr": 0.01}),
                                        ("rmsprop", {"lr": 0.01, "centered": 1, "momentum": 0.5})])
def test_large_parameters_match_torch(tmp_path, name, hyper, dtype):
    case = make_case(name, hyper, shapes=BIG_SHAPES, steps=4, seed=13, dtype=dtype, zero_frac=0.1)
    check_trajectory(run_tool(tmp_path, case)["params"], run_torch(case), dtype)


@pytest.mark.parametrize("name,hyper,groups", [
    ("sgd", {"lr": 0.1, "momentum": 0.9},
     [{"params": [0], "lr": 0.1, "weight_decay": 0.01}, {"params": [1], "lr": 0.02, "options": {"momentum": 0.5}}]),
    ("adam", {"lr": 0.01},
     [{"params": [1], "lr": 0.01}, {"params": [0], "lr": 0.03, "weight_decay": 0.1, "options": {"beta2": 0.9}}]),
    ("rmsprop", {"lr": 0.01},
     [{"params": [0], "lr": 0.01, "options": {"centered": 1}}, {"params": [1], "lr": 0.005}]),
])
def test_param_groups_match_torch(tmp_path, name, hyper, groups):
    case = make_case(name, hyper, steps=8, seed=11, groups=groups)
    check_trajectory(run_tool(tmp_path, case)["params"], run_torch(case), "f64")


def test_missing_grads_are_skipped_like_torch(tmp_path):
    case = make_case("adam", {"lr": 0.01}, steps=6, seed=5)
    for step in (1, 2, 4):
        case["grads"][step][0] = None
    check_trajectory(run_tool(tmp_path, case)["params"], run_torch(case), "f64")


# ---- LR schedules ----

def torch_schedule(build, lrs, steps, optimizer="sgd"):
    """Per step: every group's lr, and its momentum (SGD) or betas[0] (Adam)."""
    params = [torch.zeros(1, requires_grad=True) for _ in lrs]
    groups = [{"params": [p], "lr": lr} for p, lr in zip(params, lrs)]
    opt = torch.optim.Adam(groups, lr=lrs[0]) if optimizer == "adam" else torch.optim.SGD(groups, lr=lrs[0])
    momentum = (lambda g: g["betas"][0]) if optimizer == "adam" else (lambda g: g["momentum"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sched = build(opt)
        out = [[g["lr"] for g in opt.param_groups]]
        momenta = [[momentum(g) for g in opt.param_groups]]
        for _ in range(steps):
            opt.step()
            sched.step()
            out.append([g["lr"] for g in opt.param_groups])
            momenta.append([momentum(g) for g in opt.param_groups])
    return out, momenta


PLATEAU_METRICS = [1.0, 0.9, 0.9, 0.91, 0.9, 0.95, 0.8, 0.8, 0.8, 0.8, 0.8, 0.79999, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7,
                   float("nan"), 0.7, 0.7, 0.7, 0.7, 0.7]
PLATEAU_CASES = {
    "defaults_patience_2": ("plateau:patience=2", dict(patience=2), "min"),
    "abs_threshold_cooldown": ("plateau:patience=1,threshold=0.05,threshold_mode=abs,cooldown=2,factor=0.5",
                               dict(patience=1, threshold=0.05, threshold_mode="abs", cooldown=2, factor=0.5), "min"),
    "min_lr_and_eps": ("plateau:patience=0,factor=0.2,min_lr=0.003,eps=0.0005",
                       dict(patience=0, factor=0.2, min_lr=0.003, eps=0.0005), "min"),
    "max_mode": ("plateau:metric=val_acc,patience=1,factor=0.5", dict(mode="max", patience=1, factor=0.5), "max"),
}


@pytest.mark.parametrize("case_name", sorted(PLATEAU_CASES))
def test_plateau_matches_torch(tmp_path, case_name):
    """One observe() per step here, as one ReduceLROnPlateau.step(metric) per epoch in torch; two
    groups, and the state through state_dict halfway."""
    spec, kwargs, mode = PLATEAU_CASES[case_name]
    metrics = PLATEAU_METRICS if mode == "min" else [1 - m for m in PLATEAU_METRICS]
    case = {"kind": "scheduler", "spec": spec, "group_lrs": [0.1, 0.02], "steps": len(metrics),
            "metrics": [None if np.isnan(m) else m for m in metrics], "reload_at": 9}
    ours = run_tool(tmp_path, case)
    params = [torch.zeros(1, requires_grad=True) for _ in range(2)]
    opt = torch.optim.SGD([{"params": [params[0]], "lr": 0.1}, {"params": [params[1]], "lr": 0.02}], lr=0.1)
    sched = S.ReduceLROnPlateau(opt, **kwargs)
    theirs = [[g["lr"] for g in opt.param_groups]]
    for m in metrics:
        opt.step()
        sched.step(m)
        theirs.append([g["lr"] for g in opt.param_groups])
    check_lrs(ours["lrs"], theirs)
    assert theirs[-1][0] < 0.1, "the case never reduced the lr"


def torch_lrs(build, lrs, steps):
    return torch_schedule(build, lrs, steps)[0]


SCHEDULE_CASES = {
    "step": ("step:step_size=3,gamma=0.5", 0, 0, 20, lambda o: S.StepLR(o, 3, 0.5)),
    "multistep": ("multistep:milestones=2|5|5|9,gamma=0.3", 0, 0, 14, lambda o: S.MultiStepLR(o, [2, 5, 5, 9], 0.3)),
    "exp": ("exp:gamma=0.9", 0, 0, 15, lambda o: S.ExponentialLR(o, 0.9)),
    "cosine": ("cosine:T_max=10,eta_min=0.001", 0, 0, 25, lambda o: S.CosineAnnealingLR(o, 10, 0.001)),
    "cosine_total": ("cosine", 4, 5, 20, lambda o: S.CosineAnnealingLR(o, 20)),
    "cosine_restarts": ("cosine_restarts:T_0=3", 0, 0, 20, lambda o: S.CosineAnnealingWarmRestarts(o, 3)),
    "cosine_restarts_mult": ("cosine_restarts:T_0=2,T_mult=2,eta_min=0.01", 0, 0, 30,
                             lambda o: S.CosineAnnealingWarmRestarts(o, 2, 2, 0.01)),
    "onecycle_cos": ("onecycle:max_lr=0.5,total_steps=20", 0, 0, 20,
                     lambda o: S.OneCycleLR(o, 0.5, total_steps=20)),
    "onecycle_linear": ("onecycle:max_lr=0.5,total_steps=17,anneal=linear,pct_start=0.25,div_factor=10,"
                        "final_div_factor=100", 0, 0, 17,
                        lambda o: S.OneCycleLR(o, 0.5, total_steps=17, pct_start=0.25, anneal_strategy="linear",
                                               div_factor=10, final_div_factor=100)),
    "onecycle_three_phase": ("onecycle:max_lr=0.3,three_phase=1", 5, 6, 30,
                             lambda o: S.OneCycleLR(o, 0.3, total_steps=30, three_phase=True)),
    "cyclic_triangular": ("cyclic:base_lr=0.01,max_lr=0.1,step_size_up=4", 0, 0, 25,
                          lambda o: S.CyclicLR(o, 0.01, 0.1, step_size_up=4)),
    "cyclic_triangular2": ("cyclic:base_lr=0.01,max_lr=0.1,step_size_up=3,step_size_down=2,mode=triangular2", 0, 0,
                           25, lambda o: S.CyclicLR(o, 0.01, 0.1, step_size_up=3, step_size_down=2,
                                                    mode="triangular2")),
    "cyclic_exp_range": ("cyclic:base_lr=0.01,max_lr=0.1,step_size_up=5,mode=exp_range,gamma=0.9", 0, 0, 25,
                         lambda o: S.CyclicLR(o, 0.01, 0.1, step_size_up=5, mode="exp_range", gamma=0.9)),
    "warmup_cosine": ("warmup=5,start_factor=0.1+cosine:T_max=10", 0, 0, 20,
                      lambda o: S.SequentialLR(o, [S.LinearLR(o, start_factor=0.1, total_iters=5),
                                                   S.CosineAnnealingLR(o, 10)], milestones=[5])),
    "warmup_cosine_total": ("warmup=4+cosine", 4, 4, 16,
                            lambda o: S.SequentialLR(o, [S.LinearLR(o, start_factor=0.01, total_iters=4),
                                                         S.CosineAnnealingLR(o, 12)], milestones=[4])),
    "warmup_only": ("warmup=6,start_factor=0.25", 0, 0, 10,
                    lambda o: S.LinearLR(o, start_factor=0.25, total_iters=6)),
    "onecycle_no_momentum": ("onecycle:max_lr=0.5,total_steps=20,cycle_momentum=0", 0, 0, 20,
                             lambda o: S.OneCycleLR(o, 0.5, total_steps=20, cycle_momentum=False)),
    "onecycle_momentum_range": ("onecycle:max_lr=0.5,total_steps=15,base_momentum=0.7,max_momentum=0.9", 0, 0, 15,
                                lambda o: S.OneCycleLR(o, 0.5, total_steps=15, base_momentum=0.7, max_momentum=0.9)),
    "cyclic_momentum_range": ("cyclic:base_lr=0.01,max_lr=0.1,step_size_up=3,base_momentum=0.5,max_momentum=0.95",
                              0, 0, 20, lambda o: S.CyclicLR(o, 0.01, 0.1, step_size_up=3, base_momentum=0.5,
                                                             max_momentum=0.95)),
}


def check_momenta(ours, theirs):
    """With cycle_momentum both cycle it from step 0; without, neither touches it."""
    assert len(ours) == len(theirs)
    for step, (a, b) in enumerate(zip(ours, theirs)):
        np.testing.assert_allclose(a, b, rtol=RTOL_F64, atol=ATOL_F64, err_msg=f"momentum at step {step}")


def check_lrs(ours, theirs):
    assert len(ours) == len(theirs)
    for step, (a, b) in enumerate(zip(ours, theirs)):
        np.testing.assert_allclose(a, b, rtol=RTOL_F64, atol=ATOL_F64, err_msg=f"lr at step {step}")


@pytest.mark.parametrize("case_name", sorted(SCHEDULE_CASES))
def test_schedule_matches_torch(tmp_path, case_name):
    spec, steps_per_epoch, epochs, steps, build = SCHEDULE_CASES[case_name]
    case = {"kind": "scheduler", "spec": spec, "lr": 0.1, "steps": steps, "steps_per_epoch": steps_per_epoch,
            "epochs": epochs}
    ours = run_tool(tmp_path, case)
    lrs, momenta = torch_schedule(build, [0.1], steps)
    check_lrs(ours["lrs"], lrs)
    cycles = ("onecycle" in spec or "cyclic" in spec) and "cycle_momentum=0" not in spec
    assert ours["momentum_key"] == ("momentum" if cycles else ""), ours["momentum_key"]
    if cycles:
        check_momenta(ours["momenta"], momenta)
    else:
        assert all(m == 0 for row in momenta for m in row), "torch changed SGD's momentum"


@pytest.mark.parametrize("case_name", ["onecycle_cos", "onecycle_three_phase", "onecycle_momentum_range"])
def test_onecycle_cycles_adams_beta1_like_torch(tmp_path, case_name):
    spec, steps_per_epoch, epochs, steps, build = SCHEDULE_CASES[case_name]
    case = {"kind": "scheduler", "spec": spec, "group_lrs": [0.1, 0.02], "steps": steps,
            "steps_per_epoch": steps_per_epoch, "epochs": epochs, "optimizer": "adam", "reload_at": 6}
    ours = run_tool(tmp_path, case)
    lrs, momenta = torch_schedule(build, [0.1, 0.02], steps, optimizer="adam")
    assert ours["momentum_key"] == "beta1"
    check_lrs(ours["lrs"], lrs)
    check_momenta(ours["momenta"], momenta)


def test_warmup_then_onecycle_matches_torch(tmp_path):
    """torch's SequentialLR([LinearLR, OneCycleLR]): OneCycleLR sets betas[0] to max_momentum when
    built; LinearLR leaves it; from the milestone on, OneCycleLR's steps cycle it."""
    case = {"kind": "scheduler", "spec": "warmup=4,start_factor=0.1+onecycle:max_lr=0.5,total_steps=12", "lr": 0.1,
            "steps": 16, "optimizer": "adam"}
    ours = run_tool(tmp_path, case)
    build = lambda o: S.SequentialLR(o, [S.LinearLR(o, start_factor=0.1, total_iters=4),
                                         S.OneCycleLR(o, 0.5, total_steps=12)], milestones=[4])
    lrs, momenta = torch_schedule(build, [0.1], 16, optimizer="adam")
    assert ours["momentum_key"] == "beta1"
    check_lrs(ours["lrs"], lrs)  # the ramp ends at onecycle's initial lr, max_lr / div_factor
    check_momenta(ours["momenta"], momenta)


@pytest.mark.parametrize("case_name", ["step", "cosine", "cosine_restarts_mult", "warmup_cosine", "onecycle_cos"])
def test_schedule_groups_and_reload_match_torch(tmp_path, case_name):
    # Two groups with their own base lrs; after step 7 the schedule resumes from its state_dict.
    spec, steps_per_epoch, epochs, steps, build = SCHEDULE_CASES[case_name]
    case = {"kind": "scheduler", "spec": spec, "group_lrs": [0.1, 0.02], "steps": steps,
            "steps_per_epoch": steps_per_epoch, "epochs": epochs, "reload_at": 7}
    check_lrs(run_tool(tmp_path, case)["lrs"], torch_lrs(build, [0.1, 0.02], steps))
