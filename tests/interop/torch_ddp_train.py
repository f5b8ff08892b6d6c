"""A torch DistributedDataParallel run (gloo, 2 processes on this machine), the truth that
test_distributed.py holds `mpirun -np 2 gradscope train` to:

    python torch_ddp_train.py DATA.npz INIT.safetensors OUT_DIR EPOCHS BATCH LR MOMENTUM

DATA.npz holds x (N,1,28,28) f32, normalised, and y (N,) i64. Each process trains
test_distributed.bn_net() from INIT on DistributedSampler(shuffle=False) batches of BATCH with SGD; rank 0 writes
OUT_DIR/state.safetensors (its state_dict at the end) and OUT_DIR/losses.json (each epoch's
mean training loss over all images of all ranks)."""
import json
import os
import socket
import sys

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_distributed import bn_net  # noqa: E402

WORLD = 2


def work(rank, port, args):
    data, init, out, epochs, batch, lr, momentum = args
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    arrays = np.load(data)
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(arrays["x"]), torch.from_numpy(arrays["y"]))
    sampler = torch.utils.data.distributed.DistributedSampler(dataset, num_replicas=WORLD, rank=rank, shuffle=False)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch, sampler=sampler)
    model = bn_net()
    model.load_state_dict(load_file(init))
    ddp = torch.nn.parallel.DistributedDataParallel(model)  # broadcast_buffers=True: rank 0's BN statistics
    opt = torch.optim.SGD(ddp.parameters(), lr=lr, momentum=momentum)
    losses = []
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        ddp.train()
        total = torch.zeros(2, dtype=torch.float64)
        for x, y in loader:
            loss = F.cross_entropy(ddp(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += torch.tensor([loss.item() * len(y), len(y)], dtype=torch.float64)
        dist.all_reduce(total)
        losses.append((total[0] / total[1]).item())
    if rank == 0:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, os.path.join(out, "state.safetensors"))
        with open(os.path.join(out, "losses.json"), "w") as f:
            json.dump(losses, f)
    dist.destroy_process_group()


def main():
    data, init, out = sys.argv[1:4]
    epochs, batch = int(sys.argv[4]), int(sys.argv[5])
    lr, momentum = float(sys.argv[6]), float(sys.argv[7])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(work, args=(port, (data, init, out, epochs, batch, lr, momentum)), nprocs=WORLD)


if __name__ == "__main__":
    main()
