"""Fetch step: stands in for an HTTP GET (sandboxes have no network) by printing a local page to stdout."""
import sys

with open(sys.argv[1], encoding="utf-8") as page:
    sys.stdout.write(page.read())
