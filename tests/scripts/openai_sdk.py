"""Drives TRD's OpenAI face with the official `openai` SDK, unchanged.

Usage:
  openai_sdk.py transcribe URL KEY FILE FORMAT [MODEL] [LANGUAGE] [PROMPT]
      client.audio.transcriptions.create(...) with response_format FORMAT (verbose_json asks
      for word timestamps too); prints {"type": <Python type>, "result": <str or dict>}
  openai_sdk.py stream URL KEY FILE
      the same with stream=True (and keep=true in the query, so the job can be inspected
      afterwards); prints every event with the wall-clock time it arrived
  openai_sdk.py models URL KEY
      client.models.list(); prints the ids
  openai_sdk.py error URL KEY FILE FORMAT
      a request the server refuses; prints the SDK's exception class, status and body
URL is TRD's base URL; the SDK is pointed at URL/v1.
"""
import json
import sys
import time

import openai


def client(url, key):
    # No retries: a test sees exactly what the server answered.
    return openai.OpenAI(api_key=key, base_url=url + "/v1", max_retries=0, timeout=600)


def transcribe(url, key, path, fmt, model="whisper-1", language=None, prompt=None):
    extra = {}
    if fmt == "verbose_json":
        extra["timestamp_granularities"] = ["word", "segment"]
    if language:
        extra["language"] = language
    if prompt:
        extra["prompt"] = prompt
    with open(path, "rb") as audio:
        result = client(url, key).audio.transcriptions.create(
            model=model, file=audio, response_format=fmt, **extra
        )
    kind = type(result).__name__
    if not isinstance(result, str):
        result = result.model_dump(exclude_none=True)
    return {"type": kind, "result": result}


def stream(url, key, path):
    events = []
    with open(path, "rb") as audio:
        started = time.time()
        response = client(url, key).audio.transcriptions.create(
            model="whisper-1", file=audio, stream=True, extra_query={"keep": "true"}
        )
        for event in response:
            events.append({"at": time.time(), "event": event.model_dump(exclude_none=True)})
    return {"started": started, "events": events}


def models(url, key):
    return {"ids": [m.id for m in client(url, key).models.list()]}


def error(url, key, path, fmt):
    try:
        with open(path, "rb") as audio:
            client(url, key).audio.transcriptions.create(
                model="whisper-1", file=audio, response_format=fmt
            )
    except openai.APIStatusError as e:
        return {"class": type(e).__name__, "status": e.status_code, "body": e.body}
    return {"class": None}


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    out = {"transcribe": transcribe, "stream": stream, "models": models, "error": error}[
        command
    ](*args)
    print(json.dumps(out, ensure_ascii=False))
