"""Analyzer step, run three times at once (one per matrix value): words, links or headings."""
import collections
import json
import sys

kind, path = sys.argv[1], sys.argv[2]
doc = json.load(open(path, encoding="utf-8"))

if kind == "words":
    words = [w.lower().strip(".,;:!?") for w in doc["text"].split()]
    result = {"count": len(words), "top": collections.Counter(w for w in words if len(w) > 3).most_common(5)}
elif kind == "links":
    result = {"count": len(doc["links"]), "external": [l for l in doc["links"] if l.startswith("http")]}
elif kind == "headings":
    result = {"count": len(doc["headings"]), "outline": doc["headings"]}
else:
    sys.exit(f"unknown analysis {kind!r}")

with open("result.json", "w", encoding="utf-8") as out:
    json.dump({"kind": kind, **result}, out)
print(json.dumps({"kind": kind, "count": result["count"]}))
