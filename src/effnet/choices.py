"""The names and limits the command line offers, in one place, as plain constants.

Building `effnet`'s parser imports this module and nothing heavier, so `effnet --help` answers at
once (no torch). The library imports these lists from here too, so a backend or a format is named
in one place. Constants only: this module imports nothing.
"""

#: Inference backends of predict / eval: name -> what it runs (fp32 unless named otherwise).
BACKENDS = {
    "eager": "the PyTorch model as it is (BatchNorm folded on the fly in eval mode)",
    "channels_last": "optimize_for_inference: BatchNorm folded for good, NHWC",
    "bf16": "optimize_for_inference in bfloat16 (CPUs with AVX512-BF16 or AMX)",
    "compile": "optimize_for_inference + torch.compile (the first batch compiles)",
    "onnxruntime": "an ONNX export run by ONNX Runtime (needs effnet[onnx])",
    "executorch": "an ExecuTorch program (XNNPACK delegate, batch 1) in ExecuTorch's runtime (needs effnet[edge])",
    "openvino": "an ONNX export compiled by OpenVINO's CPU plugin, fp32 (needs effnet[openvino])",
}

#: What each training backend of `effnet bench --mode train` switches on (all but eager run channels_last).
TRAIN_BACKENDS = {
    "eager": "NCHW input, fp32",
    "channels_last": "NHWC input, fp32",
    "bf16": "NHWC, bf16 autocast (as `effnet train --amp bf16`)",
    "checkpoint": "NHWC, fp32, per-block activation checkpointing (whole blocks recomputed)",
    "checkpoint_early": "NHWC, fp32, full checkpointing of the high-resolution stages only (effnet.arch.memory_saving.early_stages)",
    "checkpoint_selective": "NHWC, fp32, selective checkpointing (conv outputs kept, the rest recomputed)",
    "bf16_checkpoint": "NHWC, bf16 autocast and per-block checkpointing",
    "plain_autograd": "NHWC, fp32, effnet's memory-efficient Swish/SE switched off (effnet only)",
    "compile": "NHWC, torch.compile",
}
#: `effnet bench --backend` per mode.
BENCH_BACKENDS = {
    "infer": ("eager", "channels_last", "bf16", "compile", "onnxruntime", "onnxruntime_int8", "executorch",
              "executorch_int8", "openvino"),
    "train": tuple(TRAIN_BACKENDS),
}
#: How `effnet scale --target-latency-ms` runs the model it times.
LATENCY_BACKENDS = ("eager", "channels_last", "compile")

#: Weight-file formats `effnet convert --from` names (otherwise read from the file).
SOURCE_FORMATS = ("effnet", "torchvision", "timm", "timm_tf", "lukemelas", "keras")
#: `effnet export --format`.
EXPORT_FORMATS = ("onnx", "torchscript", "executorch")
DEFAULT_OPSET = 18
#: torch's exporter writes opset 18 and up; asked for less it tries onnx's down-converter, which fails on
#: EfficientNet (no Mul adapter below 14) and then silently keeps 18, so lower opsets are refused.
MIN_OPSET = 18

#: Larger images are skipped unread (a 48 KB PNG can claim 20000x20000 pixels and decode to 400 MB).
#: PIL's own default (about 9459 x 9459); `effnet predict --max-pixels N` changes it.
MAX_PIXELS = 89_478_485

#: Training recipe choices.
RECIPES = ("paper", "finetune")
#: How `effnet train` starts a new classifier on pretrained weights: fitted by a linear probe first (LP-FT), or not.
HEAD_INITS = ("probe", "random")
OPTIMIZERS = ("rmsprop_tf", "rmsprop", "sgd", "adamw")
SCHEDULES = ("step", "cosine", "constant")  # step: 0.97 every 2.4 epochs (the paper)
AUGMENTS = ("randaugment", "autoaugment", "none")
AMP_MODES = ("auto", "off", "bf16", "fp16")
CHECKPOINT_MODES = ("full", "selective")

#: Budgets of `effnet scale`: metric -> unit.
BUDGET_UNITS = {"macs": "MACs", "params": "params", "latency_ms": "ms"}
DEFAULT_PRECISION = 1e-3
DEFAULT_PHI_MAX = 12.0
