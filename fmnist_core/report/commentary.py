"""What a trained model's figures mean, in plain sentences: its learning curves and its mirror averaging.

Shared by the Train, Evaluate and Compare pages and the report, so they all say the same thing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from fmnist_core.display import format_accuracy
from fmnist_core.store.record import ModelRecord

OVERFITTING_GAP = 0.03  # Training accuracy this far above validation accuracy counts as over-fitting.


def learning_curve_summary(history: Mapping[str, Sequence[float]] | None) -> str:
    """The learning curves in two or three plain sentences (rise, over-fitting, whether to train longer)."""
    history = history or {}
    accuracy, validation = list(history.get("accuracy") or []), list(history.get("val_accuracy") or [])
    validation_loss = list(history.get("val_loss") or [])
    if not accuracy:
        return "No learning curves were recorded."
    epochs = len(accuracy)
    if not validation:
        return (
            f"Training accuracy went from {format_accuracy(accuracy[0])} to {format_accuracy(accuracy[-1])} "
            f"in {epochs} epoch(s); "
            "no validation images were held out, so over-fitting cannot be judged."
        )
    sentences = [
        f"Validation accuracy went from {format_accuracy(validation[0])} after epoch 1 to "
        f"{format_accuracy(validation[-1])} "
        f"after epoch {len(validation)} (training accuracy {format_accuracy(accuracy[-1])})."
    ]
    gap = accuracy[-1] - validation[-1]
    if gap > OVERFITTING_GAP:
        sentences.append(
            f"Training accuracy ends {gap * 100:.1f} points above validation: the model has "
            "started to memorise its training images (over-fitting)."
        )
    elif gap < -0.01:
        sentences.append(
            "Validation accuracy is above training accuracy: dropout (and augmentation, if on) "
            "make training harder than testing, so there is no sign of over-fitting."
        )
    else:
        sentences.append("Training and validation accuracy stay close: no sign of over-fitting yet.")
    best_epoch = int(np.argmax(validation)) + 1
    lowest_loss_epoch = int(np.argmin(validation_loss)) + 1 if validation_loss else best_epoch
    if epochs == 1:
        sentences.append("With a single epoch there is no curve yet; train for more epochs to see one.")
    elif best_epoch == epochs and lowest_loss_epoch == epochs:
        sentences.append("Validation accuracy was still improving at the last epoch: more epochs would probably help.")
    else:
        sentences.append(
            f"Validation accuracy peaked at epoch {best_epoch} ({format_accuracy(max(validation))}) and "
            f"validation loss was lowest at epoch {lowest_loss_epoch}: more epochs alone would "
            "not help much."
        )
    return " ".join(sentences)


def picture_alone_note(record: ModelRecord) -> str | None:
    """For a mirror-averaged model: why an explanation's confidence (the picture alone) differs from Predict's."""
    if record.single_view_accuracy is None:
        return None
    return (
        "Predict shows this model's answer as saved: the average of its answers for the picture and for its "
        "mirror image. Explanations need one network and one picture, so here it sees the picture alone, and its "
        "confidence can differ from Predict's by a few points."
    )


def mirror_note(record: ModelRecord) -> str | None:
    """For a model trained on mirrored pictures (saved mirror-averaged): what that means and its single-view score."""
    if record.single_view_accuracy is None:
        return None
    return (
        "Trained on mirrored pictures too, it answers with the average of its answers for each picture and for "
        f"its mirror image; from the picture alone it scores {format_accuracy(record.single_view_accuracy)}."
    )
