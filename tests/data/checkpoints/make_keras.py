"""Make the small Keras files under tests/data/checkpoints/ (CI does not install Keras).

Run from the repository root with keras and one backend installed (torch here; JAX for
``KERAS_BACKEND=numpy``):

    KERAS_BACKEND=torch python tests/data/checkpoints/make_keras.py

``model.keras`` is Keras 3's format (a zip of config.json and model.weights.h5); ``model.h5`` is
the legacy HDF5 format that ``model.save('x.h5')`` still writes. The seed fixes the weights.
"""

from __future__ import annotations

from pathlib import Path

import keras

HERE = Path(__file__).parent


def model() -> keras.Model:
    """Conv, grouped conv, depthwise conv, dense, embedding and norms at Keras' defaults."""
    keras.utils.set_random_seed(0)
    image = keras.Input((10, 10, 8))
    x = keras.layers.Conv2D(16, 3, name="conv")(image)
    x = keras.layers.Conv2D(16, 3, groups=4, name="grouped")(x)
    x = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, name="depthwise")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(64, name="dense")(x)
    x = keras.layers.LayerNormalization(name="norm")(x)
    tokens = keras.Input((5,), dtype="int32")
    e = keras.layers.Embedding(300, 64, name="embed")(tokens)
    e = keras.layers.GlobalAveragePooling1D()(e)
    out = keras.layers.Dense(10, name="head")(keras.layers.Concatenate()([x, e]))
    return keras.Model([image, tokens], out)


def main() -> None:
    built = model()
    built.save(HERE / "model.keras")
    built.save(HERE / "model.h5")


if __name__ == "__main__":
    main()
