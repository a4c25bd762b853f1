"""Losses of the student: classifier distillation on logits, and the targets of anomaly scores.

Classifier: ``alpha * CE(labels, s) + (1 - alpha) * T^2 * KL(softmax(t/T) || softmax(s/T))`` on
the teacher's logits ``t`` and the student's logits ``s`` (Hinton et al.; the T^2 keeps the
gradient scale of the soft term independent of T).

Anomaly trigger: the student outputs its score. With a teacher, a free score (e.g. the sum of
squared latent means of an encoder-only student) regresses ``log1p`` of the teacher's score (see
:func:`score_target`), as the CMS CICADA students regress a log-scaled teacher score; a score that
is itself a reconstruction error computed in the model is matched in log space,
``MSE(log1p(s), log1p(t))``, so it stays an error in the teacher's units. Without a teacher an
autoencoder whose reconstruction score is computed in the model minimises that score on
background, which is autoencoder training; an encoder-only score cannot be trained alone.
"""

from __future__ import annotations

import numpy as np

from trigger.models.graph import logits_cut


def classification_loss(alpha: float, temperature: float, distill: bool):
    """A Keras loss on ``y = [label, teacher logits...]`` (float32, shape (N, 1 + C)) and the
    student's logits; without ``distill`` it is the cross entropy on the label column alone."""
    import tensorflow as tf

    def loss(y_packed, student_logits):
        labels = tf.cast(tf.round(y_packed[:, 0]), tf.int32)
        ce = tf.keras.losses.sparse_categorical_crossentropy(labels, student_logits, from_logits=True)
        if not distill:
            return ce
        t = y_packed[:, 1:] / temperature
        s = student_logits / temperature
        p_teacher = tf.nn.softmax(t, axis=-1)
        kl = tf.reduce_sum(p_teacher * (tf.nn.log_softmax(t, axis=-1) - tf.nn.log_softmax(s, axis=-1)), axis=-1)
        return alpha * ce + (1.0 - alpha) * temperature**2 * kl

    loss.__name__ = "distillation_loss" if distill else "cross_entropy"
    return loss


def packed_accuracy(y_packed, student_logits):
    """Accuracy of the student's logits against the label column of the packed targets."""
    import tensorflow as tf

    labels = tf.cast(tf.round(y_packed[:, 0]), tf.int64)
    return tf.reduce_mean(tf.cast(tf.equal(tf.argmax(student_logits, axis=-1), labels), tf.float32))


packed_accuracy.__name__ = "accuracy"


def distillation_loss(labels: np.ndarray, teacher_logits: np.ndarray, student_logits: np.ndarray, *,
                      alpha: float, temperature: float) -> float:
    """The batch mean of the classifier distillation loss (the one used in training), in numpy terms."""
    labels = np.asarray(labels, dtype=np.float32).reshape(-1, 1)
    packed = np.concatenate([labels, np.asarray(teacher_logits, dtype=np.float32)], axis=1)
    per_event = classification_loss(alpha, temperature, True)(packed, np.asarray(student_logits, np.float32))
    return float(np.mean(np.asarray(per_event)))


def teacher_logits(teacher, x: np.ndarray, batch_size: int = 4096) -> np.ndarray:
    """The teacher's logits: its output before a final softmax; for a softmax fused into the last
    Dense, log(p) (equal to the logits up to a per-event constant, to which softmax is blind)."""
    model, is_logits = logits_cut(teacher)
    out = np.asarray(model.predict(x, batch_size=batch_size, verbose=0), dtype=np.float64)
    if not is_logits:
        out = np.log(np.clip(out, 1e-30, None))
    return out.astype(np.float32)


def score_target(teacher_score: np.ndarray) -> np.ndarray:
    """What a student regresses: sign(s) * log(1 + |s|) of the teacher's score.

    Monotonic, so the trigger ranking (and every efficiency at fixed rate) is the teacher's; it
    compresses the long tail of anomalous scores that would otherwise dominate a squared error,
    and keeps the target in the few-unit range that an 8-bit fixed-point output holds.
    """
    s = np.asarray(teacher_score, dtype=np.float64)
    return (np.sign(s) * np.log1p(np.abs(s))).astype(np.float32)


def reconstruction_score_in_model(model) -> bool:
    """True if the model computes a reconstruction error itself (its IR's
    :meth:`~trigger.ir.network.Network.computes_reconstruction_error`)."""
    from trigger.ir.keras import from_keras

    return from_keras(model).computes_reconstruction_error()
