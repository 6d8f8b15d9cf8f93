"""Validates TRD's OpenAPI document, then real responses against it.

Usage: check_openapi.py BASE_URL PATH...  Each PATH is requested with GET and its response
checked against the operation the document gives for it (status, content type, body schema).
Prints one JSON line: {"paths": n, "operations": n, "checked": [...]}.
"""
import json
import sys
import urllib.request

import requests
import schemathesis
from openapi_spec_validator import validate

base, paths = sys.argv[1], sys.argv[2:]
document_url = base + "/trd/openapi.json"
document = json.load(urllib.request.urlopen(document_url))
validate(document)  # raises on any violation of the OpenAPI specification

schema = schemathesis.openapi.from_url(document_url)
checked = []
for path in paths:
    response = requests.get(base + path, timeout=30)
    operation = schema.find_operation_by_path("GET", path.split("?")[0])
    if operation is None:
        raise SystemExit(f"no operation documents GET {path}")
    # Raises on a contradiction (status, content type, body schema).
    schema.validate_response(operation, schemathesis.Response.from_requests(response, verify=True))
    checked.append({"path": path, "status": response.status_code})

operations = sum(
    1 for item in document["paths"].values() for m in item if m in ("get", "post", "delete")
)
print(json.dumps({"version": document["openapi"], "paths": len(document["paths"]),
                  "operations": operations, "checked": checked}))
