# Recorded the references of tests/test_port.py: run from the repository root at commit efaa238,
#   python tests/data/make_port_reference.py > tests/data/port_reference.json
# (this script uses that commit's API: jaxnets.config.smoke_config, restore_latest, ...).
"""Records the bit-for-bit port references (run on the pre-driver code, commit efaa238)."""
import hashlib, json, sys, tempfile, pathlib
import jax, numpy as np
from jaxnets.config import load_config, smoke_config
from jaxnets.train import train_and_evaluate, read_metrics, restore_latest, create_train_state, make_optimizer
from jaxnets.models import build_model

CASES = {
    "cnn_sample_cpu+augment": ("experiments/mnist/cnn_sample_cpu.py", {"data.augment.hflip": True, "data.augment.max_shift": 1}),
    "ffn_sample_cpu": ("experiments/mnist/ffn_sample_cpu.py", {}),
    "pmnist_single_cpu": ("experiments/tcn/pmnist_single_cpu.py", {}),
}
out = {}
for name, (path, sets) in CASES.items():
    c = smoke_config(load_config(path))
    for k, v in sets.items():
        node = c
        *parents, leaf = k.split(".")
        for p in parents: node = node[p]
        node[leaf] = v
    wd = tempfile.mkdtemp()
    s = train_and_evaluate(c, wd, progress=False)
    recs = [{k: r[k] for k in ("step", "split", "loss", "accuracy") if k in r} for r in read_metrics(pathlib.Path(wd) / "metrics.jsonl")]
    model = build_model(c.model)
    tx, _ = make_optimizer(c)
    shape = (1, 28, 28) if not c.data.get("sequence") else (1, c.data.image_size, c.data.image_size)
    target = create_train_state(model, tx, c.seed, shape)
    state, meta = restore_latest(wd, target)
    leaves = jax.tree_util.tree_leaves(state.params)
    h = hashlib.sha256(b"".join(np.asarray(l).tobytes() for l in leaves)).hexdigest()
    out[name] = {"records": recs, "params_sha256": h, "step": int(meta["step"])}
    print(name, h, recs[-1], file=sys.stderr)
print(json.dumps(out, indent=1))
