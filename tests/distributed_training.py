"""Train the compact CRNN for a few steps under a tf.distribute strategy; print a JSON report.

    python tests/distributed_training.py mirrored       # MirroredStrategy over the CPU split in 2
    python tests/distributed_training.py cluster        # TF_CONFIG's cluster (run one per worker): the strategy
                                                        # forms it, then Keras' fit is refused with the reason

Run by tests/test_devices.py in a fresh process: splitting the CPU must come before TensorFlow's
first operation, which pytest's process is long past. The data are the 18 images of test_data/, and the
training is chapter 04's ``train_crnn``: its callbacks (error rates, checkpoint, backup) run under the strategy.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

PER_REPLICA_BATCH = 6
EPOCHS, REPEATS = 4, 4  # each epoch: the 18 images 4 times, in 6 global batches of 12


def main(mode: str) -> dict:
    from utils import devices

    names = devices.split_cpu(2) if mode == "mirrored" else None
    strategy = devices.choose_strategy(names, verbose=False)
    if mode == "cluster":
        return cluster_report(strategy)

    import keras
    import numpy as np
    import tensorflow as tf

    from utils import config
    from utils.encoding import Vocabulary
    from utils.model import build_crnn
    from utils.preprocess import load_image
    from utils.testdata import read_labels
    from utils.training import RunFolder, compile_crnn, train_crnn

    paths, texts = zip(*read_labels(config.TEST_DATA_DIR, real=False))  # the 18 rendered words
    vocabulary = Vocabulary.from_texts(texts)
    images = np.stack([load_image(str(path)).numpy() for path in paths])
    ids = vocabulary.encode_batch(list(texts)).ids
    batch = devices.global_batch_size(PER_REPLICA_BATCH, strategy)
    examples = tf.data.Dataset.from_tensor_slices((images, ids))
    train = examples.repeat(REPEATS).shuffle(64, seed=0).batch(batch, drop_remainder=True)
    validation = examples.batch(len(paths))

    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = build_crnn("compact", len(vocabulary), batch_norm=config.BATCH_NORM)
        compile_crnn(model, learning_rate=3e-3, weight_decay=0.0)
    with tempfile.TemporaryDirectory() as folder:
        run = RunFolder(Path(folder) / "run")
        history = train_crnn(model, train, validation, vocabulary, run, epochs=EPOCHS, patience=EPOCHS, verbose=False)
        saved = run.model.is_file()

    # Every variable (weights, batch-norm statistics) holds one copy per replica: they must agree.
    largest_difference, copies = 0.0, set()
    for variable in model.weights:
        values = getattr(variable.value, "values", (variable.value,))
        copies.add(len(values))
        first = values[0].numpy()
        for other in values[1:]:
            largest_difference = max(largest_difference, float(np.abs(other.numpy() - first).max()))
    return {
        "strategy": devices.strategy_name(strategy),
        "replicas": strategy.num_replicas_in_sync,
        "global_batch": batch,
        "losses": [float(v) for v in history["loss"]],
        "epochs_logged": len(history),
        "best_model_saved": saved,
        "copies_per_variable": sorted(copies),
        "largest_replica_difference": largest_difference,
    }


def cluster_report(strategy) -> dict:
    """The workers agree through the cluster (an all-reduce of their index), and fit says why it cannot run."""
    import json as json_module
    import os

    import tensorflow as tf

    from utils import devices

    index = json_module.loads(os.environ["TF_CONFIG"])["task"]["index"]
    total = tf.function(lambda: strategy.reduce("SUM", strategy.run(lambda: tf.constant(float(index + 1))), axis=None))()
    try:
        devices.check_keras_can_fit(strategy)
        refusal = None
    except RuntimeError as error:
        refusal = str(error)
    return {"strategy": devices.strategy_name(strategy), "replicas": strategy.num_replicas_in_sync,
            "all_reduced": float(total), "refusal": refusal}  # fmt: skip


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
