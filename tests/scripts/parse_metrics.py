"""Parses a /trd/metrics exposition with the Prometheus client's text-format parser.

Usage: parse_metrics.py EXPOSITION
Prints one JSON line: {"families": {name: type}, "samples": [[name, labels, value], ...]}.
(promtool checks the same exposition strictly; this gives the tests its values.)
"""
import json
import math
import sys

from prometheus_client.parser import text_string_to_metric_families

families, samples = {}, []
for family in text_string_to_metric_families(sys.argv[1]):  # raises on malformed exposition
    families[family.name] = family.type
    for s in family.samples:
        value = s.value if math.isfinite(s.value) else str(s.value)
        samples.append([s.name, s.labels, value])
print(json.dumps({"families": families, "samples": samples}))
