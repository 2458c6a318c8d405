"""Summarize step: gathers every analyzer's result.json (mounted read-only under /in/<step>/) into one report."""
import glob
import json
import os
import sys

inputs = sys.argv[1]
results = [json.load(open(p, encoding="utf-8")) for p in sorted(glob.glob(os.path.join(inputs, "*", "result.json")))]
print(json.dumps({"analyses": len(results), "results": {r["kind"]: r for r in results}}, indent=2))
