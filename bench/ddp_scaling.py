"""Data-parallel training against one process, side by side, with the same cores and the same
global batch: `mpirun -np N gradscope bench --threads T/N --batch B/N` against
`gradscope bench --threads T --batch B` (same model, Fashion-MNIST batches or synthetic ones,
AdamW: `gradscope bench`'s defaults). Runs alternate (one process first, then data-parallel first);
the ratio is taken per round and its median reported, so a busy machine moves both sides.

  python3 bench/ddp_scaling.py --model fashionnet --batch 64 --threads 2 --processes 2
  python3 bench/ddp_scaling.py --torch      # also torch's DistributedDataParallel (gloo) against one torch process
  python3 bench/ddp_scaling.py --sync-bn    # also data-parallel with synchronised batch norm (train --sync-bn)

--torch runs the same pair with PyTorch (this Python's torch; the torch twins of the zoo in
tests/interop/gs_interop.py), so the two engines' scaling can be compared: the ratio of ratios.
Prints one JSON object: per side the median images/s over rounds, the share of a data-parallel
step spent in gradscope's collectives (buffer broadcast and gradient all-reduce), and the ratios. --out FILE also writes it there.
--sync-bn adds a third side to gradscope's rounds, the data-parallel run with `--sync-bn`, and its
ratio to the plain data-parallel run (torch 1.13 runs SyncBatchNorm on GPUs only: no torch twin)."""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MEAN, STD = 0.2860, 0.3530  # gradscope's default Fashion-MNIST normalisation


def mpirun_prefix(n):
    launcher = shutil.which("mpirun")
    if not launcher:
        sys.exit("ddp_scaling: mpirun is missing (bash scripts/setup.sh installs openmpi-bin)")
    prefix = [launcher, "-np", str(n), "--oversubscribe", "--bind-to", "none"]
    if os.geteuid() == 0:
        prefix.insert(1, "--allow-run-as-root")
    return prefix


def run_json(cmd, threads):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    if r.returncode != 0:
        sys.exit(f"ddp_scaling: {' '.join(cmd)} failed ({r.returncode}):\n{r.stderr[-3000:]}")
    lines = [line for line in r.stdout.strip().splitlines() if line.startswith("{")]
    if len(lines) != 1:
        sys.exit(f"ddp_scaling: {' '.join(cmd)} printed {len(lines)} JSON lines, not 1:\n{r.stdout[-3000:]}")
    return json.loads(lines[0])


def gradscope_run(args, processes, sync_bn=False):
    threads = args.threads // processes
    cmd = [args.gradscope, "bench", "--model", args.model, "--batch", str(args.batch // processes), "--threads",
           str(threads), "--steps", str(args.steps), "--warmup", str(args.warmup), "--seed", str(args.seed)]
    if args.synthetic:
        cmd.append("--synthetic")
    if sync_bn:
        cmd.append("--sync-bn")
    return run_json(mpirun_prefix(processes) + cmd if processes > 1 else cmd, threads)


def torch_run(args, processes):
    threads = args.threads // processes
    cmd = [sys.executable, os.path.abspath(__file__), "--torch-worker", "--model", args.model, "--batch",
           str(args.batch // processes), "--threads", str(threads), "--steps", str(args.steps), "--warmup",
           str(args.warmup), "--seed", str(args.seed), "--processes", str(processes)]
    if args.synthetic:
        cmd.append("--synthetic")
    return run_json(cmd, threads)


# ---------------------------------------------------------------- torch worker

def torch_worker(args):
    """Rank 0 starts the other ranks; each trains its shard with DDP (gloo); rank 0 prints the JSON."""
    rank = int(os.environ.get("RANK", "0"))
    if rank == 0 and args.processes > 1 and "RANK" not in os.environ:
        import socket
        with socket.socket() as s:  # a free port for the rendezvous
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        base = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(args.processes))
        others = [subprocess.Popen([sys.executable, *sys.argv], env=dict(base, RANK=str(r)),
                                   stdout=subprocess.DEVNULL) for r in range(1, args.processes)]
        os.environ.update(base, RANK="0")
        torch_train(args, 0)
        if any(p.wait() != 0 for p in others):
            sys.exit("ddp_scaling: a torch worker failed")
        return
    torch_train(args, rank)


def torch_train(args, rank):
    import numpy as np
    import torch
    sys.path.insert(0, os.path.join(ROOT, "tests", "interop"))
    import gs_interop

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    world = args.processes
    if world > 1:
        torch.distributed.init_process_group("gloo", rank=rank, world_size=world)
    channels, size = (3, 32) if args.model == "resnet8" else (1, 28)
    model = getattr(gs_interop, args.model)(channels, 10, size)
    count = min(16, args.steps + args.warmup)
    if args.synthetic:
        gen = torch.Generator().manual_seed(args.seed + rank)
        batches = [(torch.randn(args.batch, channels, size, size, generator=gen),
                    torch.randint(0, 10, (args.batch,), generator=gen)) for _ in range(count)]
    else:  # every world-th image of one shuffled epoch, as gradscope's shards
        images = torch.from_numpy(gs_interop.load_idx("train-images-idx3-ubyte.gz").astype(np.float32))
        images.div_(255).sub_(MEAN).div_(STD)  # in place: no full-size temporaries
        labels = torch.from_numpy(gs_interop.load_idx("train-labels-idx1-ubyte.gz"))
        order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(args.seed))[rank::world]
        batches = [(images[idx].contiguous(), labels[idx])
                   for idx in order[:count * args.batch].split(args.batch) if len(idx) == args.batch]
        del images
    net = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=5e-4)
    times = []
    for i in range(args.warmup + args.steps):
        x, y = batches[i % len(batches)]
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(x), y)
        loss.backward()  # DDP all-reduces gradient buckets during backward
        opt.step()
        loss.item()
        if i >= args.warmup:
            times.append((time.perf_counter() - t0) * 1000)
    if world > 1:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    if rank == 0:
        print(json.dumps({"engine": "pytorch", "torch": torch.__version__, "processes": world, "batch": args.batch,
                          "threads": torch.get_num_threads(),
                          "images_per_s": args.batch * world * len(times) / (sum(times) / 1000),
                          "ms_per_step": {"median": statistics.median(times)}}), flush=True)


# ---------------------------------------------------------------- driver

def compare(args, run, sync_bn=False):
    """Alternating rounds; the medians of each side and of the per-round ratios. With sync_bn, a
    third side (data-parallel with --sync-bn) takes its turn in the rotation."""
    one, many, synced = [], [], []
    sides = [lambda: one.append(run(args, 1)), lambda: many.append(run(args, args.processes))]
    if sync_bn:
        sides.append(lambda: synced.append(run(args, args.processes, sync_bn=True)))
    for r in range(args.rounds):
        for k in range(len(sides)):  # round r starts with side r (mod the sides)
            sides[(r + k) % len(sides)]()
    ratios = [m["images_per_s"] / o["images_per_s"] for o, m in zip(one, many)]
    out = {"one_process": {"threads": args.threads, "batch": args.batch,
                           "images_per_s": statistics.median(x["images_per_s"] for x in one)},
           "data_parallel": {"processes": args.processes, "threads_each": args.threads // args.processes,
                             "batch_each": args.batch // args.processes,
                             "images_per_s": statistics.median(x["images_per_s"] for x in many)},
           "ratio": statistics.median(ratios), "round_ratios": ratios}
    phases = [m.get("phase_ms_mean") for m in many]
    if all(phases):  # gradscope's: the collectives' share of a data-parallel step
        shares = [(p["all_reduce"] + p["broadcast_buffers"]) / sum(p.values()) for p in phases]
        out["data_parallel"]["communication_share"] = statistics.median(shares)
    if "torch" in many[0]:
        out["torch"] = many[0]["torch"]
    if sync_bn:
        sync_ratios = [s["images_per_s"] / m["images_per_s"] for m, s in zip(many, synced)]
        out["sync_bn"] = {"images_per_s": statistics.median(x["images_per_s"] for x in synced),
                          "ratio_to_data_parallel": statistics.median(sync_ratios), "round_ratios": sync_ratios}
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="fashionnet")
    p.add_argument("--batch", type=int, default=64, help="global batch: each of --processes takes batch/processes")
    p.add_argument("--threads", type=int, default=2, help="threads in all: each process takes threads/processes")
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--synthetic", action="store_true", help="random images instead of Fashion-MNIST")
    p.add_argument("--torch", action="store_true", help="also PyTorch's DDP against one torch process")
    p.add_argument("--sync-bn", action="store_true", help="also gradscope's data-parallel run with --sync-bn")
    p.add_argument("--gradscope", default=os.path.join(os.environ.get("GS_BUILD_DIR", os.path.join(ROOT, "build")),
                                                       "gradscope"))
    p.add_argument("--out", help="also write the JSON to this file")
    p.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.torch_worker:
        return torch_worker(args)
    for name in ("batch", "threads"):
        if getattr(args, name) % args.processes or getattr(args, name) < args.processes:
            p.error(f"--{name} {getattr(args, name)} must be a positive multiple of --processes {args.processes}")
    if args.processes < 2 or args.rounds < 1 or args.steps < 1 or args.warmup < 0:
        p.error("--processes must be at least 2, --rounds and --steps at least 1, --warmup at least 0")
    if not os.path.exists(args.gradscope):
        p.error(f"--gradscope {args.gradscope} does not exist (build first, or set GS_BUILD_DIR)")
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from compare_pytorch import machine_info  # cpu model, cores, commit

    result = {**machine_info(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "load_average": os.getloadavg()[0], "model": args.model, "global_batch": args.batch, "threads": args.threads, "steps": args.steps,
              "warmup": args.warmup, "rounds": args.rounds, "data": "synthetic" if args.synthetic else "fashion-mnist",
              "gradscope": compare(args, gradscope_run, args.sync_bn)}
    if args.torch:
        result["pytorch"] = compare(args, torch_run)
        result["scaling_vs_pytorch"] = result["gradscope"]["ratio"] / result["pytorch"]["ratio"]
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        with open(args.out + ".tmp", "w") as f:
            f.write(text + "\n")
        os.replace(args.out + ".tmp", args.out)


if __name__ == "__main__":
    main()
