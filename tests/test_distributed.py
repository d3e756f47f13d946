"""A 2-process DDP run (gloo, CPU) of a resfam backbone: a few training steps, replicas agree.

SyncBatchNorm's training forward needs CUDA (torch raises 'SyncBatchNorm expected input tensor
to be on GPU' on CPU), so on CPU the replicas train with BatchNorm and the SyncBatchNorm
conversion is checked structurally and in eval mode; on a machine with 2 GPUs the same test
trains with SyncBatchNorm (nccl)."""
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel as DDP

import resfam


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out_dir: str, cuda: bool) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("nccl" if cuda else "gloo", rank=rank, world_size=world)
    torch.manual_seed(0)  # same initial weights on both replicas (DDP also broadcasts them)
    device = torch.device(f"cuda:{rank}" if cuda else "cpu")
    model = resfam.build("res2net50_26w_4s", num_classes=5, drop_path_rate=0.0)
    if cuda:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model = DDP(model.to(device), device_ids=[rank] if cuda else None)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    torch.manual_seed(100 + rank)  # each replica sees its own data
    for _ in range(3):
        x, y = torch.randn(2, 3, 64, 64, device=device), torch.randint(0, 5, (2,), device=device)
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    params = {k: v.detach().cpu() for k, v in model.module.named_parameters()}
    torch.save(params, os.path.join(out_dir, f"rank{rank}.pt"))
    dist.destroy_process_group()


@pytest.mark.slow
def test_ddp_two_processes_keep_replicas_equal(tmp_path):
    cuda = torch.cuda.device_count() >= 2
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path), cuda), nprocs=2, join=True)
    a = torch.load(tmp_path / "rank0.pt", weights_only=True)
    b = torch.load(tmp_path / "rank1.pt", weights_only=True)
    initial = dict(resfam.build("res2net50_26w_4s", num_classes=5).named_parameters())
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], msg=k)
    assert not torch.equal(a["fc.weight"], initial["fc.weight"].detach())  # it did train
