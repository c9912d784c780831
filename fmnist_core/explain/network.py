"""The network that `fmnist_core.explain.inside` explains, wired for explanation, and the checks on what it is given.

What is explained is always the trained network itself: for a mirror-averaged model (`fmnist_core.models.mirror`)
that is the network inside the wrapper, looking at the picture alone, so its answer can differ from the saved
model's (which also looks at the mirror image and averages the two answers).

A model is explained only if it is one of ours: the layers `fmnist_core.models.registry` builds, in that order, for a
one-channel 28×28 picture and ten classes. Anything else, and any image or class that does not fit, is refused
with an `ExplainError` that says what to do; TensorFlow never gets to raise. The wiring and its compiled
functions are kept per model object (cached models never change), so every view after the first is one
compiled call.
"""

from __future__ import annotations

import functools
import threading
import weakref
from dataclasses import dataclass

import numpy as np

from fmnist_core.data.fashion_mnist import CLASS_NAMES, IMAGE_SIZE, NUM_CLASSES
from fmnist_core.errors import ExplainError
from fmnist_core.machine import import_tensorflow
from fmnist_core.models.mirror import backbone_of, is_mirror_averaged
from fmnist_core.models.registry import MODEL_SPECS, ModelSpec, build_from_spec
from fmnist_core.pixels import to_unit_range

tf = import_tensorflow()
import keras  # noqa: E402  (after TensorFlow's quiet import)

EMBEDDING_LAYER = "dense"  # The penultimate layer: the features the classifier reads.
GRADIENT_BATCH = 256  # Images per gradient call: bounds memory for Model 3 (28×28×256 maps per image).


@dataclass(frozen=True)
class Block:
    """One conv block as the page and the CLI present it."""

    layer: str  # The Keras layer whose output is the block's maps (after batch norm and ReLU).
    title: str
    description: str  # "{filters}", "{block2}", "{block3}": the widths of the network explained.


BLOCKS = (
    Block(
        "block1_relu",
        "Block 1",
        "The first layer's {filters} filters, each a 3×3 pattern slid over the picture, then max-pooled to 14×14. "
        "A map is bright where its pattern occurs: an edge, a bright-to-dark step, a flat bright patch.",
    ),
    Block(
        "block2a_relu",
        "Block 2a",
        "{block2} filters, each reading all {filters} block 1 maps at once (3×3×{filters} weights): corners, "
        "stripes and textures built from the first layer's edges.",
    ),
    Block(
        "block2b_relu",
        "Block 2b",
        "{block2} more filters over block 2a's maps; their output is then pooled to 7×7. Each pixel now depends on a "
        "good part of the garment.",
    ),
    Block(
        "block3_relu",
        "Block 3",
        "{block3} filters on the 7×7 grid: the last maps before the classifier, parts such as collars, sleeves, soles "
        "or handles. Grad-CAM reads these maps.",
    ),
)


# Checking inputs -------------------------------------------------------------------------------------------


def unit_images(images, what: str = "images") -> np.ndarray:
    """(N, 28, 28) uint8 0–255 or float in [0, 1] → float32 (N, 28, 28) in [0, 1]; anything else is refused."""
    values = np.asarray(images)
    if values.ndim == 4 and values.shape[-1] == 1:
        values = values[..., 0]
    if values.ndim != 3 or values.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise ExplainError(
            f"Expected {what} of {IMAGE_SIZE}×{IMAGE_SIZE} pixels, shaped (N, {IMAGE_SIZE}, {IMAGE_SIZE}); "
            f"got an array of shape {values.shape}. Prepare photos and drawings with fmnist_core.evaluate.sketch first."
        )
    if not len(values):
        raise ExplainError(f"Expected at least one image; got {what} of shape {values.shape}.")
    if values.dtype == np.uint8:
        return to_unit_range(values)
    if not np.issubdtype(values.dtype, np.floating):
        raise ExplainError(
            f"Expected uint8 pixels (0–255) or floats in [0, 1]; got {values.dtype}. "
            "Convert with .astype('uint8') or divide by 255."
        )
    finite = np.isfinite(values)
    if not finite.all() or values.min() < 0.0 or values.max() > 1.0:
        shown = values[finite] if finite.any() else np.zeros(1)
        raise ExplainError(
            f"Float pixels must lie in [0, 1]; these run from {shown.min():g} to {shown.max():g}"
            + ("" if finite.all() else " and include NaN or infinity")
            + ". Divide 0–255 pictures by 255."
        )
    return to_unit_range(values)


def as_batch(images) -> np.ndarray:
    """Checked images as the network's input, float32 (N, 28, 28, 1)."""
    return unit_images(images)[..., None]


def as_image(image) -> np.ndarray:
    """One 28×28 image → a batch of one, float32 (1, 28, 28, 1)."""
    values = np.asarray(image)
    if values.shape not in ((IMAGE_SIZE, IMAGE_SIZE), (IMAGE_SIZE, IMAGE_SIZE, 1)):
        raise ExplainError(
            f"Expected one {IMAGE_SIZE}×{IMAGE_SIZE} image; got an array of shape {values.shape}. "
            "Prepare photos and drawings with fmnist_core.evaluate.sketch first."
        )
    return unit_images(values[None], what="an image")[..., None]


def check_class(class_index) -> int:
    if isinstance(class_index, bool) or not isinstance(class_index, int | np.integer):
        raise ExplainError(f"A class is a whole number from 0 to {NUM_CLASSES - 1}; got {class_index!r}.")
    if not 0 <= int(class_index) < NUM_CLASSES:
        classes = ", ".join(f"{index} {name}" for index, name in enumerate(CLASS_NAMES))
        raise ExplainError(f"There is no class {int(class_index)}. The classes are: {classes}.")
    return int(class_index)


# The network being explained -------------------------------------------------------------------------------


@functools.cache
def _our_layers() -> tuple[str, ...]:
    """The layer names our factory gives every model, in order (the same for all widths)."""
    return tuple(layer.name for layer in build_from_spec(MODEL_SPECS["model1"]).layers)


def spec_of(network) -> ModelSpec:
    """The registry-shaped spec of a trained network, read from its layers; refuses anything that is not ours."""
    refusal = (
        "This model is not one of the explorer's CNNs (Model 1, 2 or 3 from fmnist_core.models.registry): {}. "
        "Explain a model from the cache."
    )
    if not isinstance(network, keras.Model):
        raise ExplainError(refusal.format(f"it is a {type(network).__name__}, not a Keras model"))
    names = tuple(layer.name for layer in network.layers)
    if names != _our_layers():
        missing = [name for name in _our_layers() if name not in names]
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        difference = (
            f"it lacks the layers {', '.join(missing[:3])}{more}" if missing else "its layers are ordered otherwise"
        )
        raise ExplainError(refusal.format(difference))
    first = tuple(network.get_layer("block1_conv").kernel.shape)
    classes = int(network.get_layer("probabilities").units)
    picture = tuple(network.input_shape[1:])
    if first[:3] != (3, 3, 1) or classes != NUM_CLASSES or picture != (IMAGE_SIZE, IMAGE_SIZE, 1):
        raise ExplainError(refusal.format(f"it reads {picture} pictures with {first} kernels into {classes} classes"))
    return ModelSpec(
        network.name,
        MODEL_SPECS[network.name].title if network.name in MODEL_SPECS else network.name,
        first_filters=first[-1],
        block2_filters=int(network.get_layer("block2a_conv").filters),
        block3_filters=int(network.get_layer("block3_conv").filters),
        dense_units=int(network.get_layer(EMBEDDING_LAYER).units),
        dropout=float(network.get_layer("dropout").rate),
    )


def receptive_fields(model: keras.Model) -> dict[str, int]:
    """Each layer's receptive field in input pixels, from its convolutions' kernels and poolings' strides."""
    field, jump, fields = 1, 1, {}
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D | keras.layers.MaxPooling2D):
            size = layer.kernel_size[0] if isinstance(layer, keras.layers.Conv2D) else layer.pool_size[0]
            stride = layer.strides[0]
            field, jump = field + (size - 1) * jump, jump * stride
        fields[layer.name] = field
    return fields


def as_float32(values):
    return tf.cast(values, tf.float32)


class Network:
    """A trained network's layers wired for explanation: compiled calls for maps, features and gradients.

    Every method takes checked float32 images (N, 28, 28, 1) and returns float32 NumPy arrays; big batches are
    cut into pieces so that Model 3's 28×28×256 first-layer maps never fill the memory.
    """

    def __init__(self, model):
        backbone = backbone_of(model) if isinstance(model, keras.Model) else model
        self.spec = spec_of(backbone)
        self.mirror_averaged = is_mirror_averaged(model)
        fields = receptive_fields(backbone)
        self.receptive_fields = tuple(fields[block.layer] for block in BLOCKS)
        kernel = np.asarray(backbone.get_layer("block1_conv").kernel.numpy(), np.float32)
        self.first_kernels = np.transpose(kernel[:, :, 0, :], (2, 0, 1))
        classifier = backbone.get_layer("probabilities")
        self._classifier = (classifier.kernel, classifier.bias)
        self._kernel, self._bias = (np.asarray(weight.numpy(), np.float32) for weight in self._classifier)
        # Sub-models over the trained layers themselves (nothing is copied): the network is explained in the
        # precision it was saved in. Float32 copies of the bfloat16 models scored the same in the deletion test
        # (area 0.253 both, 150 test images, quick Model 3) and ran 9× slower on this CPU's bfloat16 units.
        outputs = [backbone.get_layer(block.layer).output for block in BLOCKS]
        self._layers = keras.Model(backbone.input, [*outputs, backbone.get_layer(EMBEDDING_LAYER).output])
        first_block = keras.Model(backbone.input, outputs[0])
        features = keras.Model(backbone.input, backbone.get_layer(EMBEDDING_LAYER).output)
        images = tf.TensorSpec([None, IMAGE_SIZE, IMAGE_SIZE, 1], tf.float32)
        classes = tf.TensorSpec([None], tf.int32)
        # One trace per network (the batch size is left open), then each call runs the compiled graph.
        # No XLA: it runs ~2× slower on the team's CPU (as in training, fmnist_core.config).
        compiled = lambda call, *signature: tf.function(call, input_signature=list(signature), jit_compile=False)
        self._maps = compiled(
            lambda batch: [as_float32(maps) for maps in self._layers(batch, training=False)[:-1]], images
        )
        self._first_block = compiled(lambda batch: as_float32(first_block(batch, training=False)), images)
        self._features = compiled(lambda batch: as_float32(features(batch, training=False)), images)
        self._input_gradients = compiled(self._input_gradients_graph, images, classes)
        self._grad_cam = compiled(self._grad_cam_graph, images, classes)
        # Trace what the page uses now, so that its first view is as quick as the next ones.
        black = np.zeros((1, IMAGE_SIZE, IMAGE_SIZE, 1), np.float32)
        self.maps(black), self.features(black), self.input_gradients(black, np.zeros(1, np.int32))

    def _picked_logits(self, features, classes):
        # The logit, not the probability: a confident answer's probability is flat (its gradient vanishes).
        kernel, bias = self._classifier
        logits = tf.matmul(tf.cast(features, tf.float32), kernel) + bias
        return tf.reduce_sum(logits * tf.one_hot(classes, NUM_CLASSES), axis=1)

    def _input_gradients_graph(self, images, classes):
        with tf.GradientTape() as tape:
            tape.watch(images)
            *_, features = self._layers(images, training=False)
            picked = self._picked_logits(features, classes)
        return tape.gradient(picked, images)

    def _grad_cam_graph(self, images, classes):
        # Grad-CAM (Selvaraju et al. 2017): the last block's maps, each weighted by the mean gradient of the
        # class logit over it, summed, ReLU, and stretched from 7×7 to 28×28.
        with tf.GradientTape() as tape:
            *maps, features = self._layers(images, training=False)
            picked = self._picked_logits(features, classes)
        last = maps[-1]
        weights = tf.reduce_mean(as_float32(tape.gradient(picked, last)), axis=(1, 2), keepdims=True)
        cam = tf.nn.relu(tf.reduce_sum(weights * as_float32(last), axis=-1, keepdims=True))
        return tf.image.resize(cam, (IMAGE_SIZE, IMAGE_SIZE), method="bilinear")[..., 0]

    @staticmethod
    def _in_batches(call, size: int, images: np.ndarray, *per_image: np.ndarray) -> np.ndarray:
        return np.concatenate(
            [
                call(images[start : start + size], *(values[start : start + size] for values in per_image)).numpy()
                for start in range(0, len(images), size)
            ]
        )

    def maps(self, image: np.ndarray) -> list[np.ndarray]:
        """Each block's maps (1, H, W, C) for a batch of one."""
        return [values.numpy() for values in self._maps(image)]

    def first_block(self, images: np.ndarray) -> np.ndarray:
        return self._in_batches(self._first_block, 100, images)

    def features(self, images: np.ndarray) -> np.ndarray:
        """The penultimate layer's features (N, D)."""
        return self._in_batches(self._features, 1024, images)

    def classify(self, features: np.ndarray) -> np.ndarray:
        """Logits (N, 10) from penultimate features (N, D)."""
        return features @ self._kernel + self._bias

    def logits(self, images: np.ndarray) -> np.ndarray:
        return self.classify(self.features(images))

    def input_gradients(self, images: np.ndarray, classes: np.ndarray) -> np.ndarray:
        """d logit[class] / d image, (N, 28, 28, 1)."""
        return self._in_batches(self._input_gradients, GRADIENT_BATCH, images, classes)

    def grad_cam(self, images: np.ndarray, classes: np.ndarray) -> np.ndarray:
        """Grad-CAM maps (N, 28, 28), not normalised."""
        return self._in_batches(self._grad_cam, GRADIENT_BATCH, images, classes)


_networks: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_networks_lock = threading.Lock()


def network_of(model) -> Network:
    """`model` wired for explanation, built on first use and kept as long as the model lives."""
    with _networks_lock:
        try:
            network = _networks.get(model)
        except TypeError:  # Not weak-referenceable: certainly not a Keras model.
            network = None
        if network is None:
            network = Network(model)
            _networks[model] = network
        return network
