"""RetinaNet as a trainable detector: ``uint8`` images and padded ground truth in, loss and detections out.

:class:`Detector` wraps a :class:`retinanet.RetinaNet` for Keras' ``fit()`` and ``predict()`` on any
backend. Everything per image that can be a tensor operation runs inside the compiled step, on the
accelerator when there is one:

- the ResNet preprocessing of the ``uint8`` images (:func:`retinanet.backbone.preprocess_images`);
- target assignment from the padded ground truth (:func:`retinanet.matching.assign_targets`: IoU ≥ 0.5
  foreground, < 0.4 background, ignored between, and each box's best anchors; Sec. 4, "Anchors");
- the loss (:func:`retinanet.losses.detection_loss_terms`: focal loss over all non-ignored anchors plus
  smooth L1 on the positive ones, each normalised by the image's number of positive anchors; Sec. 4.1);
- at inference, decoding (score > 0.05, top 1,000 per level, class-wise NMS at 0.5, 100 detections;
  Sec. 4.1, "Inference") with :func:`retinanet.postprocess.decode_detections`.

Ground truth travels as ``{"boxes": (B, M, 4) float32, "classes": (B, M) int32}``, rows with class < 0
being padding (see :mod:`retinanet.data.loader`).
"""

import numpy as np

from retinanet._keras import BACKEND, keras, ops
from retinanet.anchors import generate_anchors
from retinanet.backbone import preprocess_images
from retinanet.losses import detection_loss_terms
from retinanet.matching import assign_targets
from retinanet.postprocess import decode_detections


def _replicas_in_sync():
    """Replicas that each compute a share of the batch's loss (``tf.distribute`` on TensorFlow; 1 otherwise:
    on JAX a data-parallel batch is one global array, so its mean is already the global mean)."""
    if BACKEND != "tensorflow":
        return 1
    import tensorflow as tf

    return tf.distribute.get_strategy().num_replicas_in_sync


class Detector(keras.Model):
    """Train and run a RetinaNet on square ``image_size`` inputs.

    Args:
        retinanet: a :class:`retinanet.RetinaNet` (its ``num_classes`` is the detector's).
        image_size: side of the square input, a multiple of 32; fixes the anchors.

    ``detector(images)`` returns the RetinaNet's raw ``(B, N, 4 + K)`` output;
    ``InferenceModel(detector).detect(images)`` returns decoded detections.
    """

    def __init__(self, retinanet, image_size, **kwargs):
        kwargs.setdefault("name", "detector")
        super().__init__(**kwargs)
        self.retinanet = retinanet
        self.image_size = int(image_size)
        self.num_classes = retinanet.num_classes
        self.anchors = generate_anchors(self.image_size, self.image_size)
        self.classification_loss = keras.metrics.Mean(name="classification")
        self.box_loss = keras.metrics.Mean(name="box")

    def call(self, images, training=False):
        return self.retinanet(preprocess_images(images), training=training)

    def loss_terms(self, ground_truth, predictions):
        """Per-image ``(classification, box)`` losses ``(B,)`` from padded ground truth and raw outputs."""
        classes = ops.convert_to_tensor(ground_truth["classes"])
        targets = assign_targets(self.anchors, ground_truth["boxes"], classes, gt_valid=classes >= 0)
        return detection_loss_terms(targets, predictions, self.num_classes)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        classification, box = self.loss_terms(y, y_pred)
        classification, box = ops.mean(classification), ops.mean(box)
        self.classification_loss.update_state(classification)
        self.box_loss.update_state(box)
        return (classification + box) / _replicas_in_sync()

    def build_for_input(self):
        """Create the weights by running one blank image through the network."""
        self(np.zeros((1, self.image_size, self.image_size, 3), np.uint8))


class InferenceModel(keras.Model):
    """A :class:`Detector` followed by decoding, compiled together (traced once per batch size).

    On JAX, :meth:`detect` calls one jitted pure function of the weights and the images
    (``stateless_call``): the weights stay where they are (on the accelerator), nothing is donated or
    assigned back, and the detections come back in one transfer. ``predict_on_batch`` would gather,
    donate and re-assign every variable on each call and fetch each output on its own
    (``benchmarks/inference-overhead.json``). On TensorFlow it is ``predict_on_batch``.
    """

    def __init__(self, detector, **kwargs):
        kwargs.setdefault("name", "inference")
        super().__init__(**kwargs)
        self.detector = detector
        # TensorFlow's NMS op has no XLA kernel; on JAX the whole decoding is jitted.
        self.compile(jit_compile=BACKEND == "jax")
        self._pure_detect = None

    def call(self, images):
        size = self.detector.image_size
        return decode_detections(self.detector(images, training=False), size, size)._asdict()

    def detect(self, images):
        """Detections for a batch of ``uint8`` images ``(B, S, S, 3)``: a dict of NumPy arrays ``boxes``,
        ``scores``, ``classes``, ``num_detections`` (see :class:`retinanet.postprocess.Detections`)."""
        if BACKEND != "jax" or keras.distribution.distribution() is not None:
            return self.predict_on_batch(images)  # (a distribution shards the batch: Keras's predict step does)
        import jax

        if self._pure_detect is None:
            if not self.detector.built:
                self.detector.build_for_input()
            self.built = True  # its variables are the detector's, all created

            def pure_detect(trainable, non_trainable, images):
                outputs, _ = self.stateless_call(trainable, non_trainable, images)
                return outputs

            self._pure_detect = jax.jit(pure_detect)
        trainable = [variable.value for variable in self.trainable_variables]
        non_trainable = [variable.value for variable in self.non_trainable_variables]
        if any(len(value.sharding.device_set) > 1 for value in trainable[:1]):  # weights laid over several devices
            return self.predict_on_batch(images)
        return jax.device_get(self._pure_detect(trainable, non_trainable, images))
