"""The served app settles its heap once built (app.asgi.settle_heap): start-up's objects are
left out of later collections, and the youngest generation is collected less often, while
cycles made afterwards are still collected. Checked in a new interpreter, as a worker
process imports the module."""

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import sqlite_url
from tests.server import clean_env

PROBE = """
import gc, json, weakref
import app.asgi

class Node:
    pass

frozen = gc.get_freeze_count()
threshold = gc.get_threshold()
# A cycle made after start-up, unreachable once its names go.
a, b = Node(), Node()
a.other, b.other = b, a
gone = weakref.ref(a)
del a, b
gc.collect()
print(json.dumps({"frozen": frozen, "threshold": threshold, "cycle_collected": gone() is None,
                  "routes": len(app.asgi.app.routes),
                  "young": app.asgi.YOUNG_GENERATION_THRESHOLD}))
"""


def test_importing_the_served_app_settles_its_heap(tmp_path: Path) -> None:
    env = clean_env(HANDOFF_DATABASE_URL=sqlite_url(tmp_path / "heap.db"))
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["routes"] > 0
    # Most of start-up's objects are frozen: far more than any one request makes.
    assert seen["frozen"] > 100_000
    # Not imported here: importing app.asgi would settle this test process's heap too.
    assert seen["threshold"][0] == seen["young"] > 700
    assert seen["cycle_collected"] is True
