"""Fetches /trd/metrics and parses it with the Prometheus client's text-format parser.

Usage: parse_metrics.py BASE_URL
Prints one JSON line: {"families": {name: type}, "samples": [[name, labels, value], ...]}.
"""
import json
import math
import sys
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

with urllib.request.urlopen(sys.argv[1] + "/trd/metrics") as response:
    content_type = response.headers["Content-Type"]
    text = response.read().decode("utf-8")
families, samples = {}, []
for family in text_string_to_metric_families(text):  # raises on malformed exposition
    families[family.name] = family.type
    for s in family.samples:
        value = s.value if math.isfinite(s.value) else str(s.value)
        samples.append([s.name, s.labels, value])
print(json.dumps({"content_type": content_type, "families": families, "samples": samples}))
