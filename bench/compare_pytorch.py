"""gradscope against the latest PyTorch on the CPU, side by side: the identical model (the torch
twins of layers/zoo.h in tests/interop/gs_interop.py), cached batches of the same size from the
same Fashion-MNIST training set (each engine shuffles with its own generator; or synthetic ones), optimizer (AdamW lr 2e-3, weight decay 5e-4: `gradscope train`'s defaults, no
schedule) and thread count. Runs alternate (gradscope via `gradscope bench`, PyTorch in a worker
process of this script), each in a fresh process so peak RSS is per engine; medians over rounds.

  python3 bench/compare_pytorch.py --model fashionnet --batch 64 --threads 2     # prints the ratio
  python3 bench/compare_pytorch.py --model fashionnet,lenet5,mlp --sweep --write-readme
  python3 bench/compare_pytorch.py --grad-penalty 1     # train's input-gradient penalty (a double backward)

--sweep adds a batch-size sweep (1..256) and a 1-vs-2-thread sweep (markdown table + PNG in --out);
--write-readme puts the tables between <!-- perf:begin --> and <!-- perf:end --> in README.md.
Runs in .venv-bench (PyTorch 2.x from PyPI): made by bench/setup_bench_venv.sh on first use, and
this script re-runs itself there when started from another Python."""
import argparse
import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_PYTHON = os.path.join(ROOT, ".venv-bench", "bin", "python")
MEAN, STD = 0.2860, 0.3530  # gradscope's default Fashion-MNIST normalisation
SWEEP_BATCHES = [1, 8, 64, 256]


def ensure_bench_venv():
    """Re-executes this script under .venv-bench's Python (making the venv first if needed)."""
    if os.path.realpath(sys.prefix) == os.path.realpath(os.path.join(ROOT, ".venv-bench")):
        return
    if not os.path.exists(VENV_PYTHON):
        print("compare_pytorch: making .venv-bench (PyTorch 2.x from PyPI) with bench/setup_bench_venv.sh ...",
              file=sys.stderr, flush=True)
        subprocess.run(["bash", os.path.join(ROOT, "bench", "setup_bench_venv.sh")], check=True)
    os.execv(VENV_PYTHON, [VENV_PYTHON, os.path.abspath(__file__), *sys.argv[1:]])


def default_steps(batch):
    """Timed steps: about 3,000 images, at least 20 and at most 200 steps."""
    return max(20, min(200, round(3000 / batch)))


# ---------------------------------------------------------------- PyTorch worker (one run)

def torch_worker(args):
    import numpy as np
    import torch
    sys.path.insert(0, os.path.join(ROOT, "tests", "interop"))
    import gs_interop

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    channels, size = (3, 32) if args.model == "resnet8" else (1, 28)
    model = getattr(gs_interop, args.model)(channels, 10, size)
    count = min(args.cached_batches, args.steps + args.warmup)
    t0 = time.perf_counter()
    if args.synthetic:
        gen = torch.Generator().manual_seed(args.seed)
        batches = [(torch.randn(args.batch, channels, size, size, generator=gen),
                    torch.randint(0, 10, (args.batch,), generator=gen)) for _ in range(count)]
    else:  # as `gradscope bench`: the whole training set as f32, normalised, first batches of a shuffle
        images = torch.from_numpy(gs_interop.load_idx("train-images-idx3-ubyte.gz").astype(np.float32))
        images.div_(255).sub_(MEAN).div_(STD)  # in place: temporaries would count in the peak RSS
        labels = torch.from_numpy(gs_interop.load_idx("train-labels-idx1-ubyte.gz"))
        order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(args.seed))
        batches = [(images[idx].contiguous(), labels[idx])
                   for idx in order[:count * args.batch].split(args.batch) if len(idx) == args.batch]
        del images
    data_ms = (time.perf_counter() - t0) * 1000
    out = {"command": "compare_pytorch worker", "engine": "pytorch", "torch": torch.__version__,
           "mode": "inference" if args.inference else "train", "model": args.model,
           "parameters": sum(p.numel() for p in model.parameters()), "batch": args.batch, "steps": args.steps,
           "warmup": args.warmup, "threads": torch.get_num_threads(), "data": "synthetic" if args.synthetic
           else "fashion-mnist", "cached_batches": len(batches), "data_load_ms": data_ms}
    times = []
    if args.inference:
        model.eval()
        with torch.no_grad():
            for i in range(args.warmup + args.steps):
                x, _ = batches[i % len(batches)]
                t0 = time.perf_counter()
                model(x)
                if i >= args.warmup:
                    times.append((time.perf_counter() - t0) * 1000)
        out["latency_ms"] = summarize(times)
        out["images_per_s"] = args.batch * 1000 / out["latency_ms"]["mean"]
    else:
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=5e-4)
        losses = []
        for i in range(args.warmup + args.steps):
            x, y = batches[i % len(batches)]
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            if args.grad_penalty > 0:  # as `gradscope train --grad-penalty`: lambda/n |d(n loss)/dx|^2
                x = x.detach().requires_grad_(True)
            loss = torch.nn.functional.cross_entropy(model(x), y)
            objective = loss
            if args.grad_penalty > 0:
                (dx,) = torch.autograd.grad(loss * len(y), x, create_graph=True)
                objective = loss + (dx * dx).sum() * (args.grad_penalty / len(y))
            objective.backward()
            opt.step()
            losses.append(loss.item())
            if i >= args.warmup:
                times.append((time.perf_counter() - t0) * 1000)
        out["images_per_s"] = args.batch * len(times) / (sum(times) / 1000)
        out["ms_per_step"] = summarize(times)
        out["first_loss"], out["last_loss"] = losses[0], losses[-1]
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))


def summarize(ms):
    ms = sorted(ms)
    return {"mean": statistics.fmean(ms), "median": statistics.median(ms), "min": ms[0], "max": ms[-1],
            "p90": ms[min(len(ms) - 1, -(-9 * len(ms) // 10) - 1)]}


# ---------------------------------------------------------------- driver

def run_json(cmd, threads):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1200)
    if r.returncode != 0:
        sys.exit(f"compare_pytorch: {' '.join(cmd)} failed ({r.returncode}):\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def one_run(engine, args, model, batch, threads, inference):
    steps = (args.steps or default_steps(batch)) if not inference else args.inference_steps
    warmup = args.warmup if not inference else max(args.warmup, 10)
    common = ["--model", model, "--batch", str(batch), "--threads", str(threads), "--steps", str(steps),
              "--warmup", str(warmup), "--seed", str(args.seed)]
    flags = (["--inference"] if inference else ["--grad-penalty", str(args.grad_penalty)]) + (
        ["--synthetic"] if args.synthetic else [])
    if engine == "gradscope":
        return run_json([args.gradscope, "bench", *common, *flags], threads)
    return run_json([sys.executable, os.path.abspath(__file__), "--worker", *common, *flags], threads)


def compare(args, model, batch, threads, rounds, with_latency=True):
    """Alternating rounds (gs, torch), (torch, gs), ...; returns the medians and the per-round ratios."""
    runs = {"gradscope": [], "pytorch": []}
    latency = {"gradscope": [], "pytorch": []}
    latency1 = {"gradscope": [], "pytorch": []}  # batch-1 latency on one thread
    for r in range(rounds):
        order = ["gradscope", "pytorch"] if r % 2 == 0 else ["pytorch", "gradscope"]
        for engine in order:
            runs[engine].append(one_run(engine, args, model, batch, threads, False))
            if with_latency:
                latency[engine].append(one_run(engine, args, model, 1, threads, True))
                latency1[engine].append(one_run(engine, args, model, 1, 1, True))
    row = {"model": model, "batch": batch, "threads": threads, "rounds": rounds}
    for engine in runs:
        row[engine] = {
            "images_per_s": statistics.median(x["images_per_s"] for x in runs[engine]),
            "ms_per_step": statistics.median(x["ms_per_step"]["median"] for x in runs[engine]),
            "peak_rss_mib": statistics.median(x["peak_rss_mib"] for x in runs[engine]),
        }
        if with_latency:
            row[engine]["latency_b1_ms"] = statistics.median(x["latency_ms"]["median"] for x in latency[engine])
            row[engine]["latency_b1_1t_ms"] = statistics.median(x["latency_ms"]["median"] for x in latency1[engine])
    gs_alloc = runs["gradscope"][-1].get("allocator", {})
    row["gradscope"]["system_allocs_timed"] = gs_alloc.get("system_allocs_timed")
    row["pytorch"]["version"] = runs["pytorch"][-1]["torch"]
    row["ratio"] = row["gradscope"]["images_per_s"] / row["pytorch"]["images_per_s"]
    row["round_ratios"] = [g["images_per_s"] / t["images_per_s"] for g, t in zip(runs["gradscope"], runs["pytorch"])]
    if with_latency:
        row["latency_ratio"] = row["gradscope"]["latency_b1_ms"] / row["pytorch"]["latency_b1_ms"]
    return row


def machine_info():
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
    except OSError:
        commit = "unknown"
    return {"cpu": cpu, "cores": os.cpu_count(), "commit": commit}


def kernel_variants(args):
    r = subprocess.run([args.gradscope, "kernels"], capture_output=True, text=True)
    return [line.split() for line in r.stdout.splitlines() if line.strip()]


def fmt_row(row, latency=True):
    g, t = row["gradscope"], row["pytorch"]
    lo, hi = min(row["round_ratios"]), max(row["round_ratios"])
    cells = [row["model"], str(row["batch"]), str(row["threads"]), f"{g['images_per_s']:.0f}",
             f"{t['images_per_s']:.0f}", f"**{row['ratio']:.2f}x** ({lo:.2f}-{hi:.2f})",
             f"{g['peak_rss_mib']:.0f} / {t['peak_rss_mib']:.0f}"]
    if latency:
        cells.append(f"{g['latency_b1_ms']:.3g} / {t['latency_b1_ms']:.3g} ({row['latency_ratio']:.3g}x)")
        cells.append(f"{g['latency_b1_1t_ms']:.3g} / {t['latency_b1_1t_ms']:.3g}")
    return "| " + " | ".join(cells) + " |"


MAIN_HEADER = ("| model | batch | threads | gradscope img/s | PyTorch img/s | ratio (per-round range) "
               "| peak RSS MiB gs / torch | batch-1 inference ms gs / torch | same, 1 thread |\n|---|---|---|---|---|---|---|---|---|")
SWEEP_HEADER = ("| model | batch | threads | gradscope img/s | PyTorch img/s | ratio (per-round range) "
                "| peak RSS MiB gs / torch |\n|---|---|---|---|---|---|---|")


def sweep(args, model):
    batch_rows = [compare(args, model, b, args.threads, args.sweep_rounds, False) for b in SWEEP_BATCHES]
    thread_rows = []
    for t in (1, 2):  # at --batch; reuses the batch sweep's row where it has this point
        same = [r for r in batch_rows if r["batch"] == args.batch and r["threads"] == t]
        thread_rows.append(same[0] if same else compare(args, model, args.batch, t, args.sweep_rounds, False))
    extra = [r for r in thread_rows if r not in batch_rows]
    table = "\n".join([SWEEP_HEADER, *(fmt_row(r, False) for r in batch_rows + extra)])
    os.makedirs(args.out, exist_ok=True)
    png = os.path.join(args.out, f"sweep_{model}.png")
    plot(model, batch_rows, thread_rows, png)
    with open(os.path.join(args.out, f"sweep_{model}.md"), "w") as f:
        f.write(table + "\n")
    return table, png, batch_rows + extra


def plot(model, batch_rows, thread_rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    batches = [r["batch"] for r in batch_rows]
    for engine, style in (("gradscope", "o-"), ("pytorch", "s--")):
        ax1.plot(batches, [r[engine]["images_per_s"] for r in batch_rows], style, label=engine)
    ax1.set_xscale("log", base=2)
    ax1.set_yscale("log")
    ax1.set_xlabel("batch size")
    ax1.set_ylabel("training images/s")
    ax1.set_title(f"{model}: batch sweep, {batch_rows[0]['threads']} threads")
    ax1.legend()
    ax1.grid(alpha=0.3)
    width = 0.35
    for i, engine in enumerate(("gradscope", "pytorch")):
        xs = [j + (i - 0.5) * width for j in range(len(thread_rows))]
        ax2.bar(xs, [r[engine]["images_per_s"] for r in thread_rows], width, label=engine)
    ax2.set_xticks(range(len(thread_rows)), [f"{r['threads']} thread(s)" for r in thread_rows])
    ax2.set_ylabel("training images/s")
    ax2.set_title(f"{model}: threads, batch {thread_rows[0]['batch']}")
    ax2.legend()
    fig.tight_layout()
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=90)
    os.replace(tmp, path)


def write_readme(text):
    path = os.path.join(ROOT, "README.md")
    with open(path) as f:
        readme = f.read()
    begin, end = "<!-- perf:begin -->", "<!-- perf:end -->"
    if begin not in readme or end not in readme:
        sys.exit(f"compare_pytorch: README.md has no {begin} ... {end} markers")
    head, rest = readme.split(begin, 1)
    tail = rest.split(end, 1)[1]
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(head + begin + "\n" + text + "\n" + end + tail)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="fashionnet", help="zoo model, or a comma list (fashionnet,lenet5,mlp)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=0, help="timed training steps (0: about 3,000 images' worth)")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--inference-steps", type=int, default=200, help="timed batch-1 forward passes")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds; medians are reported")
    ap.add_argument("--sweep", action="store_true", help="also batch 1..256 and 1-vs-2-thread sweeps (table + PNG)")
    ap.add_argument("--sweep-rounds", type=int, default=2)
    ap.add_argument("--synthetic", action="store_true", help="random images instead of Fashion-MNIST")
    ap.add_argument("--grad-penalty", type=float, default=0.0,
                    help="train with this input-gradient penalty (gradscope train --grad-penalty; a create_graph "
                         "backward, then a second one, in both engines; 0: off)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cached-batches", type=int, default=16, help=argparse.SUPPRESS)
    ap.add_argument("--gradscope", default=os.path.join(ROOT, "build", "gradscope"), help="the gradscope binary")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"), help="where sweep tables and plots go")
    ap.add_argument("--json", help="also write all results to this JSON file")
    ap.add_argument("--write-readme", action="store_true", help="replace README.md's performance section")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--inference", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        if not args.steps:
            args.steps = default_steps(args.batch)
        return torch_worker(args)
    ensure_bench_venv()
    if not os.path.exists(args.gradscope):
        sys.exit(f"compare_pytorch: {args.gradscope} is missing: build it (ninja -C build gradscope) or pass --gradscope")

    info = machine_info()
    load_start = os.getloadavg()
    started = datetime.datetime.now(datetime.timezone.utc)
    rows = []
    for model in args.model.split(","):
        row = compare(args, model, args.batch, args.threads, args.rounds)
        rows.append(row)
        g, t = row["gradscope"], row["pytorch"]
        penalty = f", --grad-penalty {args.grad_penalty:g}" if args.grad_penalty > 0 else ""
        print(f"{model} batch {args.batch}, {args.threads} threads{penalty} ({args.rounds} alternating rounds, medians):\n"
              f"  gradscope  {g['images_per_s']:8.1f} images/s  peak RSS {g['peak_rss_mib']:6.0f} MiB  "
              f"batch-1 inference {g['latency_b1_ms']:.3f} ms\n"
              f"  PyTorch {t['version']:<8} {t['images_per_s']:8.1f} images/s  peak RSS {t['peak_rss_mib']:6.0f} MiB  "
              f"batch-1 inference {t['latency_b1_ms']:.3f} ms\n"
              f"  ratio (gradscope / PyTorch images/s): {row['ratio']:.2f}x  (rounds: "
              f"{', '.join(f'{x:.2f}' for x in row['round_ratios'])}); "
              f"batch-1 latency ratio {row['latency_ratio']:.3g}x (1 thread: gradscope {g['latency_b1_1t_ms']:.3f} ms, "
              f"PyTorch {t['latency_b1_1t_ms']:.3f} ms)", flush=True)
    sweeps = []
    if args.sweep:
        table, png, sweep_rows = sweep(args, args.model.split(",")[0])
        sweeps.append((table, png))
        rows += [r for r in sweep_rows if r not in rows]
        print(table, flush=True)
    load_end = os.getloadavg()
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "load_start": load_start, "load_end": load_end, "rows": rows}, f, indent=1)

    shown, skip = [], False  # the command line without machine-local paths
    for a in sys.argv[1:]:
        if skip or a.startswith(("--gradscope=", "--json=", "--out=")):
            skip = False
            continue
        if a in ("--gradscope", "--json", "--out"):
            skip = True
            continue
        shown.append(a)
    cmd = "python3 bench/compare_pytorch.py " + " ".join(shown)
    caption = (f"_Generated by `{cmd}` on {started:%Y-%m-%d %H:%M} UTC (gradscope {info['commit']}, "
               f"PyTorch {rows[0]['pytorch']['version']} from PyPI); do not edit by hand._\n\n"
               f"Machine: {info['cpu']}, {info['cores']} cores, shared with other jobs: load average "
               f"{load_start[0]:.1f} at the start and {load_end[0]:.1f} at the end, so expect noise of tens of per "
               f"cent (the per-round ranges show it). Each engine trains the same model on cached batches of the "
               f"same size ({'synthetic' if args.synthetic else 'from the Fashion-MNIST training set, each engine shuffling with its own generator'}; "
               f"data loading is not timed) with AdamW (lr 2e-3, weight decay 5e-4)"
               f"{f' and an input-gradient penalty of {args.grad_penalty:g}' if args.grad_penalty > 0 else ''}"
               f" at the given threads; runs alternate in fresh "
               f"processes; images/s is the median of {args.rounds} rounds. Ratio = gradscope / PyTorch images/s "
               f"(> 1: gradscope faster). Peak RSS is the whole process"
               f"{'' if args.synthetic else ' (both load the f32 training set)'}; "
               f"batch-1 inference is the median eval-mode forward latency, at the given threads and on one thread "
               f"(on a busy machine a 2-thread library that opens a parallel region for every small op waits "
               f"for its second thread to be scheduled).")
    text = caption + "\n\n" + MAIN_HEADER + "\n" + "\n".join(fmt_row(r) for r in rows[:len(args.model.split(","))])
    main_rows = rows[:len(args.model.split(","))]
    text += ("\n\nAllocations that reached the system allocator during gradscope's timed training steps "
             "(0 = the caching allocator served every buffer): " +
             ", ".join(f"{r['model']} {r['gradscope']['system_allocs_timed']}" for r in main_rows) + ".")
    for table, png in sweeps:
        rel = os.path.relpath(png, ROOT)
        text += f"\n\nSweeps ({rel.rsplit('/', 1)[-1][6:-4]}, median of {args.sweep_rounds} rounds):\n\n{table}\n\n![sweep]({rel})"
    variants = kernel_variants(args)
    if variants:
        text += "\n\nKernel variants in this build (`gradscope kernels`; these runs use each op's default): " + "; ".join(
            f"{v[0]}: {', '.join(v[1:])}" for v in variants) + "."
    if args.write_readme:
        write_readme(text)
        print("compare_pytorch: README.md performance section updated", flush=True)


if __name__ == "__main__":
    main()
