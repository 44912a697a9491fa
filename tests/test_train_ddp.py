"""Two CPU ranks on gloo: identical weights on both ranks, equal to one process with the same global batch.

BatchNorm: with plain BN each rank normalises with its own half-batch statistics, so two ranks
would legitimately differ from one process. SyncBatchNorm would fix that but PyTorch only runs it
on GPUs, so here BN runs in eval mode (``freeze_bn``: running statistics, learnable scale/shift
still trained). Every sample's output then depends on that sample only, so the averaged gradient
of two half-batches equals the gradient of the global batch in one process. Dropout and drop-connect are off because
their random masks are drawn per rank. Augmentation is seeded per sample, so it matches.
"""

import os
import socket
import warnings
from pathlib import Path

import torch
import torch.multiprocessing as mp

from _train_utils import tiny_kwargs, write_digits
from effnet.training import TrainConfig, train
from effnet.training.distributed import DistInfo
from effnet.training.loop import TrainingRun


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_main(rank, world, port, kw, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = train(TrainConfig(**kw))
    torch.save({k: v.clone() for k, v in result.model.state_dict().items()}, Path(out) / f"rank{rank}.pt")
    (Path(out) / f"warnings{rank}.txt").write_text("\n".join(str(w.message) for w in caught))


def test_two_gloo_ranks_match_each_other_and_one_process(tmp_path):
    data = write_digits(tmp_path / "data")
    kw = tiny_kwargs(data, tmp_path / "ddp", epochs=1, max_steps=4, batch_size=8, freeze_bn=True, device="cpu",
                    lr=0.05, warmup_epochs=0)
    mp.spawn(_rank_main, args=(2, _free_port(), kw, str(tmp_path)), nprocs=2, join=True)
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    for key in r0:
        assert torch.equal(r0[key], r1[key]), key
    for rank in (0, 1):  # the depthwise weights' gradients fit DDP's buckets: no extra copy per step
        assert "Grad strides do not match" not in (tmp_path / f"warnings{rank}.txt").read_text()

    single = train(TrainConfig(**dict(kw, out_dir=str(tmp_path / "single"))))
    one = single.model.state_dict()
    # The weights the run starts from: the trainer's own setup (seeding, model), without a step.
    start = TrainingRun(TrainConfig(**kw), DistInfo(device=torch.device("cpu"))).model.state_dict()
    moved = 0
    for key in one:
        if one[key].is_floating_point():
            err = (r0[key] - one[key]).abs().max().item()
            move = (one[key] - start[key]).abs().max().item()
            assert err <= 1e-3 * move + 1e-7, (key, err, move)  # float-summation-order noise only
            moved += int(move > 1e-6)
    assert moved > 30  # the comparison is not between untrained models
    assert (tmp_path / "ddp" / "checkpoints").is_dir()
