"""Activation checkpointing's trade, side by side: `gradscope bench --recompute-segments N` for each N
against N = 1 (no checkpointing) on the same model, batches and threads. Memory is the caching
allocator's peak bytes in use over the timed steps (gradscope bench's allocator.peak_bytes_in_use:
every tensor the step makes, weights and optimizer state included); speed is images/s. Each round
runs every N once, the order rotating between rounds; the ratios to N = 1 are taken per round and
their medians reported, so a busy machine moves both sides.

  python3 bench/recompute_memory.py --model fashionnet --segments 1,2,3 --batch 64
  python3 bench/recompute_memory.py --model-spec bench/models/deep_resnet28.json --segments 1,2,4,6 --batch 16

Prints one JSON object (per N: median peak MiB, images/s, and both ratios to N = 1); --out FILE
also writes it there. Without --synthetic the batches are Fashion-MNIST's (needed for --model-spec)."""
import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def bench(args, segments):
    cmd = [args.gradscope, "bench", "--batch", str(args.batch), "--threads", str(args.threads), "--steps",
           str(args.steps), "--warmup", str(args.warmup), "--seed", str(args.seed), "--recompute-segments",
           str(segments)]
    cmd += ["--model-spec", args.model_spec] if args.model_spec else ["--model", args.model]
    if args.synthetic:
        cmd.append("--synthetic")
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    if r.returncode != 0:
        sys.exit(f"recompute_memory: {' '.join(cmd)} failed ({r.returncode}):\n{r.stderr[-3000:]}")
    out = json.loads(r.stdout.strip().splitlines()[-1])
    return {"peak_mib": out["allocator"]["peak_bytes_in_use"] / 2**20, "images_per_s": out["images_per_s"],
            "first_loss": out["first_loss"], "last_loss": out["last_loss"]}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="fashionnet")
    p.add_argument("--model-spec", default="", help="a model spec file instead of --model")
    p.add_argument("--segments", default="1,2,3", help="comma-separated N; 1 is added when missing")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--synthetic", action="store_true", help="random images (zoo models only)")
    p.add_argument("--gradscope", default=os.path.join(ROOT, "build", "gradscope"))
    p.add_argument("--out", default="")
    args = p.parse_args()
    try:
        segments = sorted({1} | {int(s) for s in args.segments.split(",") if s.strip()})
    except ValueError:
        p.error(f"--segments must be comma-separated integers, got '{args.segments}'")
    if segments[0] < 1 or args.rounds < 1:
        p.error("--segments must be >= 1 and --rounds positive")

    runs = {n: [] for n in segments}
    for r in range(args.rounds):
        order = segments[r % len(segments):] + segments[:r % len(segments)]
        for n in order:
            runs[n].append(bench(args, n))
    result = {"model": args.model_spec or args.model, "batch": args.batch, "threads": args.threads,
              "steps": args.steps, "rounds": args.rounds, "synthetic": args.synthetic, "segments": {}}
    for n in segments:
        peak_ratios = [a["peak_mib"] / b["peak_mib"] for a, b in zip(runs[n], runs[1])]
        speed_ratios = [a["images_per_s"] / b["images_per_s"] for a, b in zip(runs[n], runs[1])]
        result["segments"][str(n)] = {
            "peak_mib": statistics.median(x["peak_mib"] for x in runs[n]),
            "images_per_s": statistics.median(x["images_per_s"] for x in runs[n]),
            "peak_ratio": statistics.median(peak_ratios), "speed_ratio": statistics.median(speed_ratios),
            "round_speed_ratios": speed_ratios,
            # The same weights and batches: checkpointing must not change a number.
            "same_losses_as_1": all(a["first_loss"] == b["first_loss"] and a["last_loss"] == b["last_loss"]
                                    for a, b in zip(runs[n], runs[1])),
        }
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
