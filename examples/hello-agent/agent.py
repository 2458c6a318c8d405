"""A tiny "agent" step: reads a task from stdin, works on it in its scratch space, reports JSON.

It also shows what the sandbox allows and refuses, so the first run explains the product.
"""
import json
import os
import socket
import sys
import time

task = sys.stdin.read().strip() or "count words"
started = time.time()
with open("/tmp/scratch.txt", "w") as f:  # the sandbox's own writable layer, gone afterwards
    f.write(task * 100)
words = len(open("/tmp/scratch.txt").read().split())

try:
    socket.create_connection(("1.1.1.1", 80), timeout=1)
    network = "reachable"
except OSError as e:
    network = f"blocked ({e.strerror or e})"

print(json.dumps({
    "task": task,
    "words": words,
    "hostname": socket.gethostname(),
    "uid": os.getuid(),
    "visible_pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
    "network": network,
    "can_read_shadow": os.path.exists("/etc/shadow"),
    "ms": round((time.time() - started) * 1000, 1),
}, indent=2))
