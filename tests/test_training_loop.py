"""The float training loop keeps its best epoch's weights however the run ends."""

from __future__ import annotations

import numpy as np


def test_the_best_epochs_weights_are_kept_when_the_epoch_limit_ends_the_run():
    """Random labels: the validation loss is lowest early and rises as the model memorises its 200
    training events. Patience never runs out in 12 epochs, so Keras 2 alone would keep the last
    epoch's weights; the model must hold the best epoch's (its validation loss the minimum)."""
    import tensorflow as tf

    from trigger.config import TrainSection
    from trigger.models.training import _fit

    tf.keras.utils.set_random_seed(3)
    rng = np.random.default_rng(3)
    x_train, x_val = rng.normal(size=(200, 16)), rng.normal(size=(200, 16))
    y_train, y_val = rng.integers(0, 2, 200), rng.integers(0, 2, 200)
    model = tf.keras.Sequential([tf.keras.Input((16,)), tf.keras.layers.Dense(64, activation="relu"),
                                 tf.keras.layers.Dense(2)])
    model.compile(optimizer=tf.keras.optimizers.Adam(0.01),
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = _fit(model, x_train, y_train, x_val, y_val,
                   TrainSection(epochs=12, batch_size=20, learning_rate=0.01, patience=50), "test")
    assert len(history["val_loss"]) == 12 and history["best_epoch"] < 12  # the last epoch is not the best
    kept = model.evaluate(x_val, y_val, verbose=0, batch_size=200)
    assert abs(kept - min(history["val_loss"])) < 1e-5
