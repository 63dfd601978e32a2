"""Machine-readable events on stdout (one JSON object per line) and human logs on stderr.

Event types: param, metric, progress, shard, artifact, bench, summary, error. The Deno launcher
parses stdout line by line; anything a person should read goes to stderr.
"""

import json
import math
import sys
import time

_rank = 0


def set_rank(rank):
    global _rank
    _rank = rank


def _clean(v):
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)  # JSON has no NaN/Infinity; MLflow wants the string "NaN" anyway
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    return v


def emit(event, all_ranks=False):
    """Writes one event line; only rank 0 speaks unless all_ranks (e.g. per-rank shard lines)."""
    if _rank != 0 and not all_ranks:
        return
    sys.stdout.write(json.dumps(_clean(event), separators=(",", ":")) + "\n")
    sys.stdout.flush()


def log(msg):
    sys.stderr.write(f"{time.strftime('%H:%M:%S')} [train rank {_rank}] {msg}\n")
    sys.stderr.flush()
