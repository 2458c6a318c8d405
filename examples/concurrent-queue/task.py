"""A queue task: works for a moment, then prints its name and when it started, to show the queue's order."""
import json
import sys
import time

name, seconds = sys.argv[1], float(sys.argv[2])
started = time.time()
time.sleep(seconds)
print(json.dumps({"task": name, "started": round(started, 3), "ms": round((time.time() - started) * 1000)}))
