"""Runs the compiled JAX loop on JAX's CPU backend and writes what tests/test_jaxloop.py checks.

Keras picks its backend once per process, and the test suite runs on TensorFlow, so this runs in
a child process: ``KERAS_BACKEND=jax python tests/jax_cases.py OUT.json``.
"""

import json
import os
import sys

assert os.environ.get("KERAS_BACKEND") == "jax", "run with KERAS_BACKEND=jax"

import keras  # noqa: E402
import numpy as np  # noqa: E402

from mnistlab import networks, training  # noqa: E402
from mnistlab.data import load_dataset  # noqa: E402

N_FIT, N_TEST, EPOCHS, BATCH = 1024, 500, 3, 64
ds = load_dataset("mnist-sample", "smoke", 0)
x, y = networks.images(ds.x_train[:N_FIT]), ds.y_train[:N_FIT]
x_test, y_test = networks.images(ds.x_test[:N_TEST]), ds.y_test[:N_TEST]
everything = np.arange(N_FIT)


def members(seeds, augment=True, epochs=EPOCHS, steps_per_call=None):
    models = [networks.build("bn_cnn", seed=s, filters=(8, 16, 32)) for s in seeds]
    histories = training.train_together(
        models,
        x,
        y,
        [(everything, None)] * len(seeds),
        epochs,
        BATCH,
        list(seeds),
        "one-cycle",
        augment,
        test=(x_test, y_test),
        steps_per_call=steps_per_call,
    )
    return models, histories


def probabilities(model):
    return networks.predict_proba(model, x_test)


out = {"backend": keras.backend.backend()}

pair, pair_histories = members((1, 2))
alone = [members((s,))[0][0] for s in (1, 2)]
again, _ = members((1, 2))
out["pair_test_accuracy"] = [h.history["test_accuracy"] for h in pair_histories]
out["pair_ensemble_accuracy"] = pair_histories[0].history["ensemble_test_accuracy"]
out["pair_keras_accuracy"] = [float((probabilities(m).argmax(1) == y_test).mean()) for m in pair]
out["together_vs_alone_max_diff"] = max(
    float(np.abs(probabilities(a) - probabilities(b)).max()) for a, b in zip(pair, alone)
)
out["rerun_max_diff"] = max(float(np.abs(probabilities(a) - probabilities(b)).max()) for a, b in zip(pair, again))
whole_epochs, _ = members((1, 2), steps_per_call=0)  # an epoch per device call, as on a GPU
out["epoch_per_call_max_diff"] = max(
    float(np.abs(probabilities(a) - probabilities(b)).max()) for a, b in zip(pair, whole_epochs)
)
_, elastic_histories = members((5,), augment="elastic", epochs=2)  # elastic distortions on the device
out["elastic_test_accuracy"] = elastic_histories[0].history["test_accuracy"]
out["members_differ"] = float(np.abs(probabilities(pair[0]) - probabilities(pair[1])).max())
out["compile_seconds"] = pair_histories[0].compile_seconds
out["seconds"] = pair_histories[0].history["seconds"]

path = os.path.join(os.path.dirname(sys.argv[1]), "member.keras")
pair[0].save(path)
out["reload_max_diff"] = float(np.abs(probabilities(keras.models.load_model(path)) - probabilities(pair[0])).max())

# The chapters' own entry points on this backend: fit() with early stopping and plateaus, and
# the grid search's estimator.
model = networks.build("bn_cnn", seed=3, filters=(8, 16, 32))
history, _ = training.train(model, x, y, epochs=2, batch_size=BATCH, seed=3, schedule="plateau")
out["plateau_val_accuracy"] = history.history["val_accuracy"]
estimator = training.CNNClassifier(epochs=1, batch_size=BATCH, seed=1).fit(x.reshape(len(x), -1), y)
out["classifier_accuracy"] = float((estimator.predict(x_test.reshape(len(x_test), -1)) == y_test).mean())

# The learning rate the host changes (plateaus, cosine) is the one the updates use, also under
# mixed float16, where Keras wraps the optimizer in a LossScaleOptimizer: at rate 0 nothing moves.
from mnistlab import jaxloop  # noqa: E402

out["frozen_at_rate_0"] = {}
for policy in ("float32", "mixed_float16"):
    keras.mixed_precision.set_global_policy(policy)
    model = networks.build("bn_cnn", seed=4, filters=(4, 8, 8), learning_rate=0.01)
    optimizer = model.optimizer.__class__.from_config(model.optimizer.get_config())
    trainer = jaxloop.MemberTrainer([model], [optimizer], keras.losses.get(model.loss), x, y, BATCH, False, [4])
    before = [np.asarray(v) for v in trainer.state[0]]
    trainer.set_learning_rates([0.0])
    trainer.run_epoch(everything[None], 0, np.ones(1, bool))
    moved = max(float(np.abs(np.asarray(v) - b).max()) for v, b in zip(trainer.state[0], before))
    out["frozen_at_rate_0"][policy] = {"optimizer": type(optimizer).__name__, "moved": moved}
keras.mixed_precision.set_global_policy("float32")

# The bench's time-to-accuracy on this backend: members trained together, test-time shifts.
from mnistlab import bench  # noqa: E402

recipes = {
    "one": bench.Recipe("bn_cnn-16", 1, batch_size=BATCH),
    "pair": bench.Recipe("bn_cnn-16", 2, batch_size=BATCH, members=2, all_images=True, shifts=True),
    "fit": bench.Recipe("bn_cnn-16", 1, batch_size=BATCH, loop=False),  # Keras' own fit, for comparison
}
rows = bench.time_to_accuracy(recipes, dataset="mnist-sample", seed=0, max_train=N_FIT)["recipes"]
out["bench"] = [
    {k: row[k] for k in ("final_accuracy", "compile_seconds", "training_images", "curve", "member_seconds_to")}
    for row in rows
]

out["loop_throughput"] = bench.loop_throughput("dense", x[:256], y[:256], 0, batch_size=BATCH, epochs=3)

with open(sys.argv[1], "w") as f:
    json.dump(out, f)
