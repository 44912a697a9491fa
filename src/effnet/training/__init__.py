"""Training and evaluation with the paper's recipe (spec section 6).

Stable API::

    from effnet.training import TrainConfig, train, TrainResult
    result = train(TrainConfig(data="demo", model="b0", epochs=5, batch_size=64, image_size=32, out_dir="runs/x"))
    result.final_top1, result.best_top1, result.history, result.run_dir, result.images_per_sec, result.checkpoint
"""

from effnet.training.config import TrainConfig, TrainResult
from effnet.training.loop import TrainingDiverged, train
from effnet.training.signals import TrainingInterrupted

__all__ = ["TrainConfig", "TrainResult", "TrainingDiverged", "TrainingInterrupted", "train"]
