"""Mirror averaging: a trained model answers with the mean of its answers for a picture and its mirror image.

Training with augmentation flips half of the pictures left–right (a mirrored shirt is still a shirt), so
such a model knows both orientations. Asking it about both and averaging the two probability vectors is a
cheap two-view ensemble. It was chosen on the 6,000 validation images, not on the test set, and it only
suits models trained on mirrored pictures: a model that never saw a mirrored picture loses 5.8–9.5 points
when also asked about mirrors (`python benchmarks/mirror_views.py --preset full`, and `--preset quick` for
the models trained without flips; figures in docs/decisions/mirror-averaging.md). It doubles the inference
work and changes nothing in training.

`mirror_averaged(backbone)` wraps a trained model in that rule; the cache saves the wrapped model, so the
evaluation, the comparison and every prediction in the app use the same rule as the reported accuracy. The
two views go through the backbone as one batch (pictures then their mirrors), so one call does both.

Importing this module registers its two layers for `keras.saving.load_model`; the cache imports it before
loading a model.
"""

from __future__ import annotations

from fmnist_core.machine import import_keras

keras = import_keras()  # keras.ops only: the rule works on any Keras backend.


@keras.saving.register_keras_serializable(package="fmnist_core")
class WithMirrors(keras.layers.Layer):
    """(N, H, W, C) pictures → (2N, H, W, C): the pictures, then the same pictures flipped left–right."""

    def call(self, inputs):
        return keras.ops.concatenate([inputs, keras.ops.flip(inputs, axis=2)], axis=0)

    def compute_output_shape(self, input_shape):
        batch = None if input_shape[0] is None else 2 * input_shape[0]
        return (batch, *input_shape[1:])


@keras.saving.register_keras_serializable(package="fmnist_core")
class MeanOfMirrorPairs(keras.layers.Layer):
    """(2N, K) answers for pictures then mirrors → (N, K): the mean of each picture's two answers."""

    def call(self, inputs):
        half = keras.ops.shape(inputs)[0] // 2
        return (inputs[:half] + inputs[half:]) / 2

    def compute_output_shape(self, input_shape):
        batch = None if input_shape[0] is None else input_shape[0] // 2
        return (batch, *input_shape[1:])


def mirror_averaged(backbone: keras.Model) -> keras.Model:
    """A model that returns the mean of `backbone`'s answers for each picture and its mirror image.

    It shares `backbone`'s weights (nothing is copied or retrained) and keeps its name, input and output.
    """
    inputs = keras.Input(shape=backbone.input_shape[1:], name="image")
    both = WithMirrors(name="with_mirrors")(inputs)
    answers = backbone(both)
    outputs = MeanOfMirrorPairs(dtype="float32", name="mirror_average")(answers)
    return keras.Model(inputs, outputs, name=backbone.name)


def is_mirror_averaged(model: keras.Model) -> bool:
    return any(isinstance(layer, WithMirrors) for layer in model.layers)


def backbone_of(model: keras.Model) -> keras.Model:
    """The trained network inside a mirror-averaged model (the model itself when it is not wrapped)."""
    if not is_mirror_averaged(model):
        return model
    return next(layer for layer in model.layers if isinstance(layer, keras.Model))
