"""The three mission CNNs, registered by name, and one factory that builds them.

Only the first convolution's width differs between Model 1, 2 and 3 (64, 128, 256 filters); every later
layer is identical. That makes the comparison a controlled experiment: any change in accuracy, speed or
size is caused by the first layer's width alone. The first block pools straight away, so a wide first
layer costs its 28×28 activations once and the next convolution sees 14×14 maps: Model 3 stays
trainable on a 2-core CPU.

Keras is imported inside functions, so importing this module (e.g. for the home page) stays instant.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass

from fmnist_core.data.fashion_mnist import IMAGE_SIZE, NUM_CLASSES
from fmnist_core.errors import ConfigError


@dataclass(frozen=True)
class ModelSpec:
    """What defines one registry model. Everything except `first_filters` is shared by design."""

    name: str  # Registry key, e.g. "model1".
    title: str  # Human name, e.g. "Model 1".
    first_filters: int  # Filters in the first conv layer: the variable under study.
    block2_filters: int = 64  # Two 3×3 convs at 14×14.
    block3_filters: int = 128  # One 3×3 conv at 7×7.
    dense_units: int = 256  # Hidden dense layer before the softmax.
    dropout: float = 0.4  # Dropout before the classifier; fights over-fitting on 60k images.
    # Bump when the layers change, so old cache entries stop matching. 3: a model trained on mirrored pictures
    # (augmentation on) is saved mirror-averaged (fmnist_core.models.mirror).
    architecture_version: int = 3

    def to_dict(self) -> dict:
        return asdict(self)


MODEL_SPECS: dict[str, ModelSpec] = {
    "model1": ModelSpec("model1", "Model 1", 64),
    "model2": ModelSpec("model2", "Model 2", 128),
    "model3": ModelSpec("model3", "Model 3", 256),
}
MODEL_NAMES: tuple[str, ...] = tuple(MODEL_SPECS)


def get_spec(name: str) -> ModelSpec:
    """Look a model up by registry key; the error lists the valid keys."""
    try:
        return MODEL_SPECS[name]
    except KeyError:
        raise ConfigError(f"Unknown model {name!r}. Valid models: {', '.join(MODEL_NAMES)}.") from None


def build_from_spec(spec: ModelSpec, seed: int | None = None, precision: str = "float32", fused_norm: bool = True):
    """Build an uncompiled Functional `keras.Model` for `spec`.

    precision: a Keras dtype policy name ("float32", "mixed_bfloat16", ...), set per layer rather than
    globally so a background training thread never changes the policy under another session's model.
    fused_norm: batch norm through TensorFlow's fused kernel (`fmnist_core.models.fused_norm`, same weights and
    maths, 2–4× faster here); False gives Keras' stock layer, as the benchmark's plain tutorial loop uses.
    Under another Keras backend (JAX, PyTorch: race lanes) the kernel does not exist and Keras' layer is used;
    `batch_norm_kind(model)` says which one a model has.
    """
    from fmnist_core.machine import import_keras

    keras = import_keras()
    from keras import layers

    from fmnist_core.models.fused_norm import FusedBatchNormalization, fused_kernel_available

    batch_norm = FusedBatchNormalization if fused_norm and fused_kernel_available() else layers.BatchNormalization

    if seed is not None:
        keras.utils.set_random_seed(seed)

    def conv_block(x, filters: int, name: str, pool_first: bool = False):
        # Batch norm lets the same learning rate work for all three widths. Momentum 0.9 (not Keras'
        # 0.99) lets the inference statistics settle within the ~200 steps of a quick run.
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, dtype=precision, name=f"{name}_conv")(x)
        if pool_first:
            x = layers.MaxPooling2D(dtype=precision, name=f"{name}_pool")(x)
        x = batch_norm(momentum=0.9, dtype=precision, name=f"{name}_bn")(x)
        return layers.Activation("relu", dtype=precision, name=f"{name}_relu")(x)

    inputs = keras.Input(shape=(IMAGE_SIZE, IMAGE_SIZE, 1), name="image")
    # Block 1 (28×28): the layer whose width the three models vary. It pools straight after the convolution,
    # before batch norm and ReLU: the wide 28×28 maps then pass through one op instead of three, which made
    # Model 3's first block 1.9× faster here (python benchmarks/levers.py). Max-pooling commutes with ReLU,
    # so the only change in what the block computes is that batch norm sees the pooled maps.
    x = conv_block(inputs, spec.first_filters, "block1", pool_first=True)
    # Block 2 (14×14): two convs of fixed width; the first reads all `first_filters` channels.
    x = conv_block(x, spec.block2_filters, "block2a")
    x = conv_block(x, spec.block2_filters, "block2b")
    x = layers.MaxPooling2D(dtype=precision, name="block2_pool")(x)
    # Block 3 (7×7 → 3×3).
    x = conv_block(x, spec.block3_filters, "block3")
    x = layers.MaxPooling2D(dtype=precision, name="block3_pool")(x)
    x = layers.Flatten(dtype=precision, name="flatten")(x)
    x = layers.Dense(spec.dense_units, activation="relu", dtype=precision, name="dense")(x)
    x = layers.Dropout(spec.dropout, dtype=precision, name="dropout")(x)
    # The softmax is kept in float32 under mixed precision so probabilities sum to 1 exactly enough.
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=spec.name)


def batch_norm_kind(model) -> str:
    """ "tensorflow-fused" when the model's batch norm runs TensorFlow's fused kernel, else "keras"."""
    from fmnist_core.models.fused_norm import FusedBatchNormalization, fused_kernel_available

    fused = any(isinstance(layer, FusedBatchNormalization) for layer in model.layers)
    return "tensorflow-fused" if fused and fused_kernel_available() else "keras"


def inference_copy(model):
    """`model`'s architecture and weights without its training state: what the cache saves.

    A compiled model's `.keras` file also holds the optimizer's variables (AdamW keeps two per weight: Model 1's
    file is 5.4 MB with them, 1.9 MB without), and the app never resumes training. `keras.models.clone_model`
    would compile the copy again, so it is rebuilt from its config (registered layers only, as safe mode wants).
    """
    copy = model.__class__.from_config(model.get_config())
    copy.set_weights(model.get_weights())
    return copy


def build_model(name: str, seed: int | None = None, precision: str = "float32"):
    """Build the registry model `name` ("model1", "model2", "model3"); unknown names raise ConfigError."""
    return build_from_spec(get_spec(name), seed=seed, precision=precision)


def forward_flops(model) -> int:
    """Forward FLOPs per image (a multiply-add counts as 2), summed over conv and dense layers."""
    from keras import layers

    total = 0
    for layer in model.layers:
        if isinstance(layer, layers.Conv2D):
            kernel_height, kernel_width, in_channels, out_channels = layer.kernel.shape
            _, out_height, out_width, _ = layer.output.shape
            total += 2 * out_height * out_width * kernel_height * kernel_width * in_channels * out_channels
        elif isinstance(layer, layers.Dense):
            in_features, out_features = layer.kernel.shape
            total += 2 * in_features * out_features
    return int(total)


@dataclass(frozen=True)
class ModelSize:
    """Size figures computed from a built model."""

    parameters: int  # Trainable + non-trainable weights.
    trainable_parameters: int
    forward_flops: int  # Per image, multiply-add = 2 FLOPs.
    layers: tuple[tuple[str, str, str, int], ...]  # (name, type, output shape, parameters) per layer.


@functools.cache
def model_size(name: str) -> ModelSize:
    """Parameter count, forward FLOPs and a layer table for a registry model (built once, then cached)."""
    model = build_model(name)
    trainable = sum(int(w.numpy().size) for w in model.trainable_weights)
    rows = tuple(
        (layer.name, type(layer).__name__, str(tuple(layer.output.shape[1:])), int(layer.count_params()))
        for layer in model.layers
    )
    return ModelSize(int(model.count_params()), trainable, forward_flops(model), rows)
