"""timm's released EfficientNet weights, one keyword row each (timm 1.0.31 pretrained configs, B/Lite only).

Written once from ``timm.models.get_pretrained_cfg``; timm is not needed at run time. GitHub
release file names end with the first 8 hex digits of the file's SHA-256; the hub-only tags
(``timm/<tag>``, every file called ``model.safetensors``) are cached under the tag's name.
``tf_`` tags are TensorFlow ports (``timm_tf``: SAME padding, BN eps 1e-3).
"""

from effnet.arch.preprocessing import IMAGENET_MEAN, IMAGENET_STD, Preprocessing
from effnet.weights.weight_set import WeightSet

TIMM = [
    WeightSet(
        tag="timm/efficientnet_b0.ra_in1k", model="b0", source_format="timm",
        url="https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-weights/efficientnet_b0_ra-3dd342df.pth",
        filename="efficientnet_b0_ra-3dd342df.pth", sha256_prefix="3dd342df",
        preprocessing=Preprocessing(resolution=224, crop_pct=0.875, interpolation="bicubic", mean=IMAGENET_MEAN, std=IMAGENET_STD),
    ),
    WeightSet(
        tag="timm/efficientnet_b1.ft_in1k", model="b1", source_format="timm",
        url="https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-weights/efficientnet_b1-533bc792.pth",
        filename="efficientnet_b1-533bc792.pth", sha256_prefix="533bc792",
        preprocessing=Preprocessing(resolution=224, crop_pct=0.875, interpolation="bicubic", mean=IMAGENET_MEAN, std=IMAGENET_STD, test_resolution=256, test_crop_pct=1.0),
    ),
    WeightSet(
        tag="timm/efficientnet_b2.ra_in1k", model="b2", source_format="timm",
        url="https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-weights/efficientnet_b2_ra-bcdf34b7.pth",
        filename="efficientnet_b2_ra-bcdf34b7.pth", sha256_prefix="bcdf34b7",
        preprocessing=Preprocessing(resolution=256, crop_pct=0.875, interpolation="bicubic", mean=IMAGENET_MEAN, std=IMAGENET_STD, test_resolution=288, test_crop_pct=1.0),
    ),
    WeightSet(
        tag="timm/efficientnet_b3.ra2_in1k", model="b3", source_format="timm",
        url="https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-weights/efficientnet_b3_ra2-cf984f9c.pth",
        filename="efficientnet_b3_ra2-cf984f9c.pth", sha256_prefix="cf984f9c",
        preprocessing=Preprocessing(resolution=288, crop_pct=0.875, interpolation="bicubic", mean=IMAGENET_MEAN, std=IMAGENET_STD, test_resolution=320, test_crop_pct=1.0),
    ),
    WeightSet(
        tag="timm/efficientnet_b4.ra2_in1k", model="b4", source_format="timm",
        url="https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-weights/efficientnet_b4_ra2_320-7eb33cd5.pth",
        filename="efficientnet_b4_ra2_320-7eb33cd5.pth", sha256_prefix="7eb33cd5",
        preprocessing=Preprocessing(resolution=320, crop_pct=0.875, interpolation="bicubic", mean=IMAGENET_MEAN, std=IMAGENET_STD, test_resolution=384, test_crop_pct=1.0),
    ),
    WeightSet(
        tag="timm/efficientnet_lite0.ra_in1k", model="lite0", source_format="timm",
        url="https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-weights/efficientnet_lite0_ra-37913777.pth",
        filename="efficientnet_lite0_ra-37913777.pth", sha256_prefix="37913777",
        preprocessing=Preprocessing(resolution=224, crop_pct=0.875, interpolation="bicubic", mean=IMAGENET_MEAN, std=IMAGENET_STD),
    ),
    WeightSet(
        tag="timm/tf_efficientnet_b0.aa_in1k", model="b0", source_format="timm_tf",
        url="https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-weights/tf_efficientnet_b0_aa-827b6e33.pth",
        filename="tf_efficientnet_b0_aa-827b6e33.pth", sha256_prefix="827b6e33",
        preprocessing=Preprocessing(resolution=224, crop_pct=0.875, interpolation="bicubic", mean=IMAGENET_MEAN, std=IMAGENET_STD),
    ),
    WeightSet(
        tag="timm/tf_efficientnet_b0.ap_in1k", model="b0", source_format="timm_tf",
        url="https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-weights/tf_efficientnet_b0_ap-f262efe1.pth",
        filename="tf_efficientnet_b0_ap-f262efe1.pth", sha256_prefix="f262efe1",
        preprocessing=Preprocessing(resolution=224, crop_pct=0.875, interpolation="bicubic", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),
    ),
    WeightSet(
        tag="timm/tf_efficientnet_b0.in1k", model="b0", source_format="timm_tf",
        url="https://github.com/huggingface/pytorch-image-models/releases/download/v0.1-weights/tf_efficientnet_b0-0af12548.pth",
        filename="tf_efficientnet_b0-0af12548.pth", sha256_prefix="0af12548",
        preprocessing=Preprocessing(resolution=224, crop_pct=0.875, interpolation="bicubic", mean=IMAGENET_MEAN, std=IMAGENET_STD),
    ),
    WeightSet(
        tag="timm/tf_efficientnet_b0.ns_jft_in1k", model="b0", source_format="timm_tf",
        url="https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-weights/tf_efficientnet_b0_ns-c0e6a31c.pth",
        filename="tf_efficientnet_b0_ns-c0e6a31c.pth", sha256_prefix="c0e6a31c",
        preprocessing=Preprocessing(resolution=224, crop_pct=0.875, interpolation="bicubic", mean=IMAGENET_MEAN, std=IMAGENET_STD),
    ),
    WeightSet(
        tag="timm/tf_efficientnet_b1.aa_in1k", model="b1", source_format="timm_tf",
        url="https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-weights/tf_efficientnet_b1_aa-ea7a6ee0.pth",
        filename="tf_efficientnet_b1_aa-ea7a6ee0.pth", sha256_prefix="ea7a6ee0",
        preprocessing=Preprocessing(resolution=240, crop_pct=0.882, interpolation="bicubic", mean=IMAGENET_MEAN, std=IMAGENET_STD),
    ),
    WeightSet(
        tag="timm/tf_efficientnet_b1.ap_in1k", model="b1", source_format="timm_tf",
        url="https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-weights/tf_efficientnet_b1_ap-44ef0a3d.pth",
        filename="tf_efficientnet_b1_ap-44ef0a3d.pth", sha256_prefix="44ef0a3d",
        preprocessing=Preprocessing(resolution=240, crop_pct=0.882, interpolation="bicubic", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),
    ),
    WeightSet(
        tag="timm/tf_efficientnet_b1.in1k", model="b1", source_format="timm_tf",
        url="https://github.com/huggingface/pytorch-image-models/releases/download/v0.1-weights/tf_efficientnet_b1-5c1377c4.pth",
        filename="tf_efficientnet_b1-5c1377c4.pth", sha256_prefix="5c1377c4",
        preprocessing=Preprocessing(resolution=240, crop_pct=0.882, interpolation="bicubic", mean=IMAGENET_MEAN, std=IMAGENET_STD),
    ),
    WeightSet(
        tag="timm/tf_efficientnet_b1.ns_jft_in1k", model="b1", source_format="timm_tf",
        url="https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-weights/tf_efficientnet_b1_ns-99dd0c41.pth",
        filename="tf_efficientnet_b1_ns-99dd0c41.pth", sha256_prefix="99dd0c41",
        preprocessing=Preprocessing(resolution=240, crop_pct=0.882, interpolation="bicubic", mean=IMAGENET_MEAN, std=IMAGENET_STD),
    ),
    WeightSet(
        tag="timm/tf_efficientnet_b2.aa_in1k", model="b2", source_format="timm_tf",
        url="https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-weights/tf_efficientnet_b2_aa-60c94f97.pth",
        filename="tf_efficientnet_b2_aa-60c94f97.pth", sha256_prefix="60c94f97",
        preprocessing=Preprocessing(resolution=260, crop_pct=0.89, interpolation="bicubic", mean=IMAGENET_MEAN, std=IMAGENET_STD),
    ),
    WeightSet(
        tag="timm/tf_efficientnet_b2.ap_in1k", model="b2", source_format="timm_tf",
        url="https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-weights/tf_efficientnet_b2_ap-2f8e7636.pth",
        filename="tf_efficientnet_b2_ap-2f8e7636.pth", sha256_prefix="2f8e7636",
        preprocessing=Preprocessing(resolution=260, crop_pct=0.89, interpolation="bicubic", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),
    ),
    WeightSet(
        tag="timm/tf_efficientnet_b2.in1k", model="b2", source_format="timm_tf",
        url="https://github.com/huggingface/pytorch-image-models/releases/download/v0.1-weights/tf_efficientnet_b2-e393ef04.pth",
        filename="tf_efficientnet_b2-e393ef04.pth", sha256_prefix="e393ef04",
        preprocessing=Preprocessing(resolution=260, crop_pct=0.89, interpolation="bicubic", mean=IMAGENET_MEAN, std=IMAGENET_STD),
    ),
    WeightSet(
        tag="timm/tf_efficientnet_b2.ns_jft_in1k", model="b2", source_format="timm_tf",
        url="https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-weights/tf_efficientnet_b2_ns-00306e48.pth",
        filename="tf_efficientnet_b2_ns-00306e48.pth", sha256_prefix="00306e48",
        preprocessing=Preprocessing(resolution=260, crop_pct=0.89, interpolation="bicubic", mean=IMAGENET_MEAN, std=IMAGENET_STD),
    ),
    WeightSet(
        tag="timm/tf_efficientnet_b3.aa_in1k", model="b3", source_format="timm_tf",
        url="https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-weights/tf_efficientnet_b3_aa-84b4657e.pth",
        filename="tf_efficientnet_b3_aa-84b4657e.pth", sha256_prefix="84b4657e",
        preprocessing=Preprocessing(resolution=300, crop_pct=0.904, interpolation="bicubic", mean=IMAGENET_MEAN, std=IMAGENET_STD),
    ),
    WeightSet(
        tag="timm/tf_efficientnet_b3.ap_in1k", model="b3", source_format="timm_tf",
        url="https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-weights/tf_efficientnet_b3_ap-aad25bdd.pth",
        filename="tf_efficientnet_b3_ap-aad25bdd.pth", sha256_prefix="aad25bdd",
        preprocessing=Preprocessing(resolution=300, crop_pct=0.904, interpolation="bicubic", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),
    ),
    WeightSet(
        tag="timm/tf_efficientnet_b3.in1k", model="b3", source_format="timm_tf",
        url="https://github.com/huggingface/pytorch-image-models/releases/download/v0.1-weights/tf_efficientnet_b3-e3bd6955.pth",
        filename="tf_efficientnet_b3-e3bd6955.pth", sha256_prefix="e3bd6955",
        preprocessing=Preprocessing(resolution=300, crop_pct=0.904, interpolation="bicubic", mean=IMAGENET_MEAN, std=IMAGENET_STD),
    ),
    WeightSet(
        tag="timm/tf_efficientnet_b3.ns_jft_in1k", model="b3", source_format="timm_tf",
        url="https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-weights/tf_efficientnet_b3_ns-9d44bf68.pth",
        filename="tf_efficientnet_b3_ns-9d44bf68.pth", sha256_prefix="9d44bf68",
        preprocessing=Preprocessing(resolution=300, crop_pct=0.904, interpolation="bicubic", mean=IMAGENET_MEAN, std=IMAGENET_STD),
    ),
    WeightSet(
        tag="timm/tf_efficientnet_b4.aa_in1k", model="b4", source_format="timm_tf",
        url="https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-weights/tf_efficientnet_b4_aa-818f208c.pth",
        filename="tf_efficientnet_b4_aa-818f208c.pth", sha256_prefix="818f208c",
        preprocessing=Preprocessing(resolution=380, crop_pct=0.922, interpolation="bicubic", mean=IMAGENET_MEAN, std=IMAGENET_STD),
    ),
    WeightSet(
        tag="timm/tf_efficientnet_b4.ap_in1k", model="b4", source_format="timm_tf",
        url="https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-weights/tf_efficientnet_b4_ap-dedb23e6.pth",
        filename="tf_efficientnet_b4_ap-dedb23e6.pth", sha256_prefix="dedb23e6",
        preprocessing=Preprocessing(resolution=380, crop_pct=0.922, interpolation="bicubic", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),
    ),
    WeightSet(
        tag="timm/tf_efficientnet_b4.in1k", model="b4", source_format="timm_tf",
        url="https://github.com/huggingface/pytorch-image-models/releases/download/v0.1-weights/tf_efficientnet_b4-74ee3bed.pth",
        filename="tf_efficientnet_b4-74ee3bed.pth", sha256_prefix="74ee3bed",
        preprocessing=Preprocessing(resolution=380, crop_pct=0.922, interpolation="bicubic", mean=IMAGENET_MEAN, std=IMAGENET_STD),
    ),
    WeightSet(
        tag="timm/tf_efficientnet_b4.ns_jft_in1k", model="b4", source_format="timm_tf",
        url="https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-weights/tf_efficientnet_b4_ns-d6313a46.pth",
        filename="tf_efficientnet_b4_ns-d6313a46.pth", sha256_prefix="d6313a46",
        preprocessing=Preprocessing(resolution=380, crop_pct=0.922, interpolation="bicubic", mean=IMAGENET_MEAN, std=IMAGENET_STD),
    ),
    WeightSet(
        tag="timm/tf_efficientnet_b5.aa_in1k", model="b5", source_format="timm_tf",
        url="https://github.com/huggingface/pytorch-image-models/releases/download/v0.1-weights/tf_efficientnet_b5_aa-99018a74.pth",
        filename="tf_efficientnet_b5_aa-99018a74.pth", sha256_prefix="99018a74",
        preprocessing=Preprocessing(resolution=456, crop_pct=0.934, interpolation="bicubic", mean=IMAGENET_MEAN, std=IMAGENET_STD),
    ),
    WeightSet(
        tag="timm/tf_efficientnet_b5.ap_in1k", model="b5", source_format="timm_tf",
        url="https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-weights/tf_efficientnet_b5_ap-9e82fae8.pth",
        filename="tf_efficientnet_b5_ap-9e82fae8.pth", sha256_prefix="9e82fae8",
        preprocessing=Preprocessing(resolution=456, crop_pct=0.934, interpolation="bicubic", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),
    ),
    WeightSet(
        tag="timm/tf_efficientnet_b5.in1k", model="b5", source_format="timm_tf",
        url="https://github.com/huggingface/pytorch-image-models/releases/download/v0.1-weights/tf_efficientnet_b5-c6949ce9.pth",
        filename="tf_efficientnet_b5-c6949ce9.pth", sha256_prefix="c6949ce9",
        preprocessing=Preprocessing(resolution=456, crop_pct=0.934, interpolation="bicubic", mean=IMAGENET_MEAN, std=IMAGENET_STD),
    ),
    WeightSet(
        tag="timm/tf_efficientnet_b5.ns_jft_in1k", model="b5", source_format="timm_tf",
        url="https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-weights/tf_efficientnet_b5_ns-6f26d0cf.pth",
        filename="tf_efficientnet_b5_ns-6f26d0cf.pth", sha256_prefix="6f26d0cf",
        preprocessing=Preprocessing(resolution=456, crop_pct=0.934, interpolation="bicubic", mean=IMAGENET_MEAN, std=IMAGENET_STD),
    ),
    WeightSet(
        tag="timm/tf_efficientnet_b5.ra_in1k", model="b5", source_format="timm_tf",
        url="https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-weights/tf_efficientnet_b5_ra-9a3e5369.pth",
        filename="tf_efficientnet_b5_ra-9a3e5369.pth", sha256_prefix="9a3e5369",
        preprocessing=Preprocessing(resolution=456, crop_pct=0.934, interpolation="bicubic", mean=IMAGENET_MEAN, std=IMAGENET_STD),
    ),
    WeightSet(
        tag="timm/tf_efficientnet_b6.aa_in1k", model="b6", source_format="timm_tf",
        url="https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-weights/tf_efficientnet_b6_aa-80ba17e4.pth",
        filename="tf_efficientnet_b6_aa-80ba17e4.pth", sha256_prefix="80ba17e4",
        preprocessing=Preprocessing(resolution=528, crop_pct=0.942, interpolation="bicubic", mean=IMAGENET_MEAN, std=IMAGENET_STD),
    ),
    WeightSet(
        tag="timm/tf_efficientnet_b6.ap_in1k", model="b6", source_format="timm_tf",
        url="https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-weights/tf_efficientnet_b6_ap-4ffb161f.pth",
        filename="tf_efficientnet_b6_ap-4ffb161f.pth", sha256_prefix="4ffb161f",
        preprocessing=Preprocessing(resolution=528, crop_pct=0.942, interpolation="bicubic", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),
    ),
    WeightSet(
        tag="timm/tf_efficientnet_b6.ns_jft_in1k", model="b6", source_format="timm_tf",
        url="https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-weights/tf_efficientnet_b6_ns-51548356.pth",
        filename="tf_efficientnet_b6_ns-51548356.pth", sha256_prefix="51548356",
        preprocessing=Preprocessing(resolution=528, crop_pct=0.942, interpolation="bicubic", mean=IMAGENET_MEAN, std=IMAGENET_STD),
    ),
    WeightSet(
        tag="timm/tf_efficientnet_b7.aa_in1k", model="b7", source_format="timm_tf",
        url="https://github.com/huggingface/pytorch-image-models/releases/download/v0.1-weights/tf_efficientnet_b7_aa-076e3472.pth",
        filename="tf_efficientnet_b7_aa-076e3472.pth", sha256_prefix="076e3472",
        preprocessing=Preprocessing(resolution=600, crop_pct=0.949, interpolation="bicubic", mean=IMAGENET_MEAN, std=IMAGENET_STD),
    ),
    WeightSet(
        tag="timm/tf_efficientnet_b7.ap_in1k", model="b7", source_format="timm_tf",
        url="https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-weights/tf_efficientnet_b7_ap-ddb28fec.pth",
        filename="tf_efficientnet_b7_ap-ddb28fec.pth", sha256_prefix="ddb28fec",
        preprocessing=Preprocessing(resolution=600, crop_pct=0.949, interpolation="bicubic", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),
    ),
    WeightSet(
        tag="timm/tf_efficientnet_b7.ns_jft_in1k", model="b7", source_format="timm_tf",
        url="https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-weights/tf_efficientnet_b7_ns-1dbc32de.pth",
        filename="tf_efficientnet_b7_ns-1dbc32de.pth", sha256_prefix="1dbc32de",
        preprocessing=Preprocessing(resolution=600, crop_pct=0.949, interpolation="bicubic", mean=IMAGENET_MEAN, std=IMAGENET_STD),
    ),
    WeightSet(
        tag="timm/tf_efficientnet_b7.ra_in1k", model="b7", source_format="timm_tf",
        url="https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-weights/tf_efficientnet_b7_ra-6c08e654.pth",
        filename="tf_efficientnet_b7_ra-6c08e654.pth", sha256_prefix="6c08e654",
        preprocessing=Preprocessing(resolution=600, crop_pct=0.949, interpolation="bicubic", mean=IMAGENET_MEAN, std=IMAGENET_STD),
    ),
    WeightSet(
        tag="timm/tf_efficientnet_b8.ap_in1k", model="b8", source_format="timm_tf",
        url="https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-weights/tf_efficientnet_b8_ap-00e169fa.pth",
        filename="tf_efficientnet_b8_ap-00e169fa.pth", sha256_prefix="00e169fa",
        preprocessing=Preprocessing(resolution=672, crop_pct=0.954, interpolation="bicubic", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),
    ),
    WeightSet(
        tag="timm/tf_efficientnet_b8.ra_in1k", model="b8", source_format="timm_tf",
        url="https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-weights/tf_efficientnet_b8_ra-572d5dd9.pth",
        filename="tf_efficientnet_b8_ra-572d5dd9.pth", sha256_prefix="572d5dd9",
        preprocessing=Preprocessing(resolution=672, crop_pct=0.954, interpolation="bicubic", mean=IMAGENET_MEAN, std=IMAGENET_STD),
    ),
    WeightSet(
        tag="timm/tf_efficientnet_l2.ns_jft_in1k", model="l2", source_format="timm_tf",
        url="https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-weights/tf_efficientnet_l2_ns-df73bb44.pth",
        filename="tf_efficientnet_l2_ns-df73bb44.pth", sha256_prefix="df73bb44",
        preprocessing=Preprocessing(resolution=800, crop_pct=0.96, interpolation="bicubic", mean=IMAGENET_MEAN, std=IMAGENET_STD),
    ),
    WeightSet(
        tag="timm/tf_efficientnet_l2.ns_jft_in1k_475", model="l2", source_format="timm_tf",
        url="https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-weights/tf_efficientnet_l2_ns_475-bebbd00a.pth",
        filename="tf_efficientnet_l2_ns_475-bebbd00a.pth", sha256_prefix="bebbd00a",
        preprocessing=Preprocessing(resolution=475, crop_pct=0.936, interpolation="bicubic", mean=IMAGENET_MEAN, std=IMAGENET_STD),
    ),
    WeightSet(
        tag="timm/tf_efficientnet_lite0.in1k", model="lite0", source_format="timm_tf",
        url="https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-weights/tf_efficientnet_lite0-0aa007d2.pth",
        filename="tf_efficientnet_lite0-0aa007d2.pth", sha256_prefix="0aa007d2",
        preprocessing=Preprocessing(resolution=224, crop_pct=0.875, interpolation="bicubic", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),
    ),
    WeightSet(
        tag="timm/tf_efficientnet_lite1.in1k", model="lite1", source_format="timm_tf",
        url="https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-weights/tf_efficientnet_lite1-bde8b488.pth",
        filename="tf_efficientnet_lite1-bde8b488.pth", sha256_prefix="bde8b488",
        preprocessing=Preprocessing(resolution=240, crop_pct=0.882, interpolation="bicubic", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),
    ),
    WeightSet(
        tag="timm/tf_efficientnet_lite2.in1k", model="lite2", source_format="timm_tf",
        url="https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-weights/tf_efficientnet_lite2-dcccb7df.pth",
        filename="tf_efficientnet_lite2-dcccb7df.pth", sha256_prefix="dcccb7df",
        preprocessing=Preprocessing(resolution=260, crop_pct=0.89, interpolation="bicubic", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),
    ),
    WeightSet(
        tag="timm/tf_efficientnet_lite3.in1k", model="lite3", source_format="timm_tf",
        url="https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-weights/tf_efficientnet_lite3-b733e338.pth",
        filename="tf_efficientnet_lite3-b733e338.pth", sha256_prefix="b733e338",
        preprocessing=Preprocessing(resolution=300, crop_pct=0.904, interpolation="bilinear", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),
    ),
    WeightSet(
        tag="timm/tf_efficientnet_lite4.in1k", model="lite4", source_format="timm_tf",
        url="https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-weights/tf_efficientnet_lite4-741542c3.pth",
        filename="tf_efficientnet_lite4-741542c3.pth", sha256_prefix="741542c3",
        preprocessing=Preprocessing(resolution=380, crop_pct=0.92, interpolation="bilinear", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),
    ),
    WeightSet(
        tag="timm/efficientnet_b0.ra4_e3600_r224_in1k", model="b0", source_format="timm",
        url="https://huggingface.co/timm/efficientnet_b0.ra4_e3600_r224_in1k/resolve/main/model.safetensors",
        filename="efficientnet_b0.ra4_e3600_r224_in1k.safetensors",
        preprocessing=Preprocessing(resolution=224, crop_pct=0.9, interpolation="bicubic", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), test_resolution=256, test_crop_pct=1.0),
        notes='Hugging Face hub only (timm/efficientnet_b0.ra4_e3600_r224_in1k); no hash is published with the address',
    ),
    WeightSet(
        tag="timm/efficientnet_b1.ra4_e3600_r240_in1k", model="b1", source_format="timm",
        url="https://huggingface.co/timm/efficientnet_b1.ra4_e3600_r240_in1k/resolve/main/model.safetensors",
        filename="efficientnet_b1.ra4_e3600_r240_in1k.safetensors",
        preprocessing=Preprocessing(resolution=240, crop_pct=0.9, interpolation="bicubic", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), test_resolution=288, test_crop_pct=1.0),
        notes='Hugging Face hub only (timm/efficientnet_b1.ra4_e3600_r240_in1k); no hash is published with the address',
    ),
    WeightSet(
        tag="timm/efficientnet_b5.sw_in12k", model="b5", source_format="timm", num_classes=11821,
        url="https://huggingface.co/timm/efficientnet_b5.sw_in12k/resolve/main/model.safetensors",
        filename="efficientnet_b5.sw_in12k.safetensors",
        preprocessing=Preprocessing(resolution=416, crop_pct=0.95, interpolation="bicubic", mean=IMAGENET_MEAN, std=IMAGENET_STD),
        notes='Hugging Face hub only (timm/efficientnet_b5.sw_in12k); no hash is published with the address',
    ),
    WeightSet(
        tag="timm/efficientnet_b5.sw_in12k_ft_in1k", model="b5", source_format="timm",
        url="https://huggingface.co/timm/efficientnet_b5.sw_in12k_ft_in1k/resolve/main/model.safetensors",
        filename="efficientnet_b5.sw_in12k_ft_in1k.safetensors",
        preprocessing=Preprocessing(resolution=448, crop_pct=1.0, interpolation="bicubic", mean=IMAGENET_MEAN, std=IMAGENET_STD, crop_mode="squash"),
        notes='Hugging Face hub only (timm/efficientnet_b5.sw_in12k_ft_in1k); no hash is published with the address',
    ),
]
