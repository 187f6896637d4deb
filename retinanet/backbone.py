"""The bottom-up pathway: ResNet50 features C3, C4, C5.

RetinaNet builds its pyramid on a ResNet (Lin et al., Sec. 4, "Feature Pyramid Network Backbone"). The
last residual block of stages 3, 4 and 5 gives C3, C4 and C5, with strides 8, 16 and 32 relative to the
input image. The paper starts from ImageNet-1k weights (Sec. 4.1, "Initialization"); this module uses them
when they are on disk and otherwise trains from scratch, because nothing may download at run time.
"""

import os
import warnings

from retinanet._keras import keras, ops

BACKBONE_OUTPUT_LAYERS = ("conv3_block4_out", "conv4_block6_out", "conv5_block3_out")
"""ResNet50 layers that give C3 (stride 8), C4 (stride 16) and C5 (stride 32)."""

DEFAULT_INPUT_SHAPE = (128, 128, 3)
"""The course's default image size; ``(None, None, 3)`` accepts any multiple of 32."""

IMAGENET_WEIGHTS_FILE = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
"""The file name under which Keras caches ResNet50's ImageNet weights (without the classifier)."""


class ImageNetWeightsUnavailable(UserWarning):
    """Warned once when ImageNet weights are not on disk and the backbone starts from random weights."""


_warned_about_weights = False


def imagenet_weights_path():
    """Where Keras keeps ResNet50's ImageNet weights: ``$KERAS_HOME/models`` or ``~/.keras/models``."""
    keras_home = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
    return os.path.join(keras_home, "models", IMAGENET_WEIGHTS_FILE)


def resolve_weights(weights="auto"):
    """Turn the ``weights`` argument of :func:`get_backbone` into what ``keras.applications`` expects.

    ``"auto"`` means ImageNet weights if the cached file exists, else ``None`` with one warning per
    process. ``"imagenet"`` insists on them (a missing file raises ``FileNotFoundError`` instead of
    downloading). ``None`` or a path to an ``.h5``/``.weights.h5`` file is passed through.
    """
    global _warned_about_weights
    if weights is None:
        return None
    if weights in ("auto", "imagenet"):
        path = imagenet_weights_path()
        if os.path.isfile(path):
            return path
        if weights == "imagenet":
            raise FileNotFoundError(
                f"ImageNet weights for ResNet50 are not on disk (looked for {path}). Copy the file there, "
                "or call get_backbone(weights=None) to start from random weights."
            )
        if not _warned_about_weights:
            warnings.warn(
                f"ImageNet weights for ResNet50 not found at {path}; the backbone starts from random "
                "weights (weights=None). Put the file there to fine-tune from ImageNet as the paper does.",
                ImageNetWeightsUnavailable,
                stacklevel=3,
            )
            _warned_about_weights = True
        return None
    if not os.path.isfile(weights):
        raise FileNotFoundError(f"Backbone weights file not found: {weights}")
    return weights


def get_backbone(input_shape=DEFAULT_INPUT_SHAPE, weights="auto"):
    """ResNet50 as a Keras ``Model`` with three outputs, C3, C4 and C5.

    Args:
        input_shape: ``(height, width, 3)``; ``None`` for height and width accepts any size that is a
            multiple of 32. Default 128×128×3.
        weights: ``"auto"`` (ImageNet when cached locally, else random with a warning), ``"imagenet"``,
            ``None`` or a weights file path. See :func:`resolve_weights`.

    Returns:
        ``keras.Model`` mapping images to ``[C3, C4, C5]`` with 512, 1024 and 2048 channels.
    """
    if len(input_shape) != 3 or input_shape[-1] != 3:
        raise ValueError(f"input_shape must be (height, width, 3), got {tuple(input_shape)}")
    resnet = keras.applications.ResNet50(
        include_top=False, weights=resolve_weights(weights), input_shape=tuple(input_shape)
    )
    outputs = [resnet.get_layer(name).output for name in BACKBONE_OUTPUT_LAYERS]
    # A single input tensor (not the list ``resnet.inputs``), so that calling the backbone on an image
    # batch matches its input structure and Keras does not warn on every call.
    return keras.Model(inputs=resnet.input, outputs=outputs, name="resnet50_backbone")


IMAGENET_BGR_MEAN = (103.939, 116.779, 123.68)
"""Per-channel means (blue, green, red) that ResNet50's ImageNet weights were trained with ("caffe" mode)."""


def preprocess_images(images):
    """RGB images in 0..255 (any dtype) → float BGR minus :data:`IMAGENET_BGR_MEAN`, as ResNet50's ImageNet
    weights expect; the same as ``keras.applications.resnet50.preprocess_input``, in ``keras.ops`` so that it
    runs inside a compiled step (images then travel to the accelerator as ``uint8``, a quarter of the bytes).

    Floating-point input keeps its dtype (``bfloat16`` under mixed precision); integers become float32.
    """
    images = ops.convert_to_tensor(images)
    if "float" not in str(images.dtype):
        images = ops.cast(images, "float32")
    return ops.flip(images, axis=-1) - ops.cast(ops.convert_to_tensor(IMAGENET_BGR_MEAN), images.dtype)
