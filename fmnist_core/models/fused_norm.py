"""Batch normalisation through TensorFlow's fused kernel: the same layer as Keras', computed in one op.

Keras 3 normalises with separate ops (two reductions for the moments, casts to float32 under mixed
precision, then scale and shift), and its gradient is just as many ops again. Measured here on a batch of
256 maps of 14×14×256 (Model 3's first block), batch norm + ReLU forward and backward took 99 ms that way
and 34 ms through `FusedBatchNormV3` (2.9×); whole models train 1.3–1.4× faster with it
(`python benchmarks/levers.py`).

The layer keeps Keras' weights (gamma, beta, moving mean and variance), arguments and saved config, so it
is the same model; only `call` differs. Two small, documented differences in what it computes:
- the moving variance is updated with the unbiased batch variance (n/(n−1) with n = batch × height × width,
  ≥ 12 544 here, so < 0.01 %), as TensorFlow's kernel (and Keras 2's fused path) does;
- under mixed precision the normalisation runs in the kernel's own precision handling (bfloat16 in and out,
  statistics in float32) instead of casting the whole tensor to float32 and back.
Anything the kernel does not cover (masks, renorm, other axes or ranks) falls back to Keras' implementation.
The kernel is TensorFlow's: under JAX or PyTorch (race lanes) `fmnist_core.models.registry` builds Keras' own layer
instead, and this module never imports TensorFlow there.

Importing this module registers the class for `keras.saving.load_model`; `fmnist_core.models.registry` and the cache
import it before building or loading a model.
"""

from __future__ import annotations

from fmnist_core.machine import import_keras

keras = import_keras()


def fused_kernel_available() -> bool:
    """True when Keras runs on TensorFlow, the only backend with the fused kernel."""
    return keras.backend.backend() == "tensorflow"


@keras.saving.register_keras_serializable(package="fmnist_core")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` computed by TensorFlow's fused batch-norm kernel (NHWC, rank 4)."""

    def _fused_applies(self, inputs, mask) -> bool:
        return (
            fused_kernel_available()
            and mask is None
            and not self.renorm
            and self.scale
            and self.center
            and len(inputs.shape) == 4
            and self.axis in (3, -1)
            and self.compute_dtype in ("float32", "bfloat16", "float16")
        )

    def call(self, inputs, training=None, mask=None):
        if not self._fused_applies(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf  # Already imported: the fused path runs only on the TensorFlow backend.

        inputs = tf.cast(inputs, self.compute_dtype)
        gamma = tf.convert_to_tensor(self.gamma)  # Variables stay float32 (autocast is off for them).
        beta = tf.convert_to_tensor(self.beta)
        moving_mean = tf.convert_to_tensor(self.moving_mean)
        moving_variance = tf.convert_to_tensor(self.moving_variance)
        training = bool(training) and self.trainable
        # In training mode, with exponential_avg_factor, the kernel returns the updated moving statistics
        # themselves; in inference mode it normalises with the moving ones and ignores the factor.
        outputs, new_mean, new_variance = tf.compat.v1.nn.fused_batch_norm(
            inputs,
            gamma,
            beta,
            mean=moving_mean,
            variance=moving_variance,
            epsilon=self.epsilon,
            is_training=training,
            exponential_avg_factor=1.0 - self.momentum,
        )
        if training:
            self.moving_mean.assign(new_mean)
            self.moving_variance.assign(new_variance)
        return outputs
