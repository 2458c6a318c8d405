"""Parse step: reads the page from stdin (piped from fetch) and writes its text, links and headings."""
import json
import re
import sys
from html.parser import HTMLParser


class Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.text, self.links, self.headings, self._tag = [], [], [], None

    def handle_starttag(self, tag, attrs):
        self._tag = tag
        if tag == "a":
            self.links.extend(v for k, v in attrs if k == "href" and v)

    def handle_data(self, data):
        if data.strip():
            self.text.append(data.strip())
            if self._tag and re.fullmatch(r"h[1-6]", self._tag):
                self.headings.append(data.strip())


page = Page()
page.feed(sys.stdin.read())
with open("doc.json", "w", encoding="utf-8") as out:
    json.dump({"text": " ".join(page.text), "links": page.links, "headings": page.headings}, out)
print(f"parsed {len(page.text)} text blocks, {len(page.links)} links")
