"""Load driver: N concurrent real-time sessions of vosk-server's WebSocket protocol.

Usage:
  stream_bench.py URL AUDIO_DIR_OR_FILE... --streams N [--speed X] [--bearer KEY]
                  [--chunk-ms MS] [--duration S] [--timeout S]

  URL                ws://HOST:PORT/asr/ws?token=KEY (TRD) or ws://HOST:2700 (vosk-server)
  AUDIO_DIR_OR_FILE  16-bit PCM mono WAVs, all at one sample rate; a directory means its *.wav
  --streams N        concurrent sessions (default 1)
  --speed X          audio seconds sent per wall second (default 1, real time; must be > 0)
  --bearer KEY       Authorization: Bearer KEY on the upgrade
  --chunk-ms MS      audio per binary frame (default 200)
  --duration S       each session cycles through the clips until S seconds of audio; without it a
                     session sends one clip
  --timeout S        how long a session waits for its last replies after {"eof" : 1} (default 60)

Session i starts at clip i mod len(clips); session starts are staggered evenly over one chunk
interval. Each session sends {"config": {"sample_rate": RATE, "words": 1}}, then chunk k at
session start + k * chunk_ms / speed by the wall clock, whatever the replies (a concurrent task
reads them), then {"eof" : 1} after the last chunk.

Measures:
  partial_latency  per chunk: its reply's arrival minus the chunk's send time (the server answers
                   every binary frame once, in order, so replies are matched FIFO)
  final_latency    per final result with words, before eof: its arrival minus the send time of
                   the chunk it answers, the chunk in which the server ended the utterance (the
                   server's own delay in delivering a final result); the reply to eof is not
                   counted
  after_speech     per final result likewise: its arrival minus the send time of the chunk
                   holding the audio at the last word's `end` (word times count from the start of
                   the session's audio): final_latency plus the trailing silence the engine
                   waits for before it ends an utterance
Prints one JSON line:
  {"streams", "sessions_ok", "errors": [{"session", ...}], "partial_latency": {"p50", "p95",
   "max", "n"}, "final_latency": {...}, "after_speech": {...}, "audio_seconds", "wall_seconds", "replies", "finals",
   "send_lag_max" (worst lateness of a chunk against its schedule: the driver's own health)}
Latencies are in seconds. A session is ok when it got a reply to every chunk and to eof and the
server then closed the connection.
"""
import argparse
import asyncio
import collections
import json
import math
import os
import sys
import time
import wave

import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatusCode

VOSK_EOF = '{"eof" : 1}'  # vosk-server compares it character for character


def fail(message):
    print(f"stream_bench.py: {message}", file=sys.stderr)
    sys.exit(2)


def load_clips(paths):
    """Each clip's PCM bytes, and their common sample rate."""
    files = []
    for path in paths:
        if os.path.isdir(path):
            files += sorted(os.path.join(path, f) for f in os.listdir(path) if f.endswith(".wav"))
        else:
            files.append(path)
    if not files:
        fail("no WAV files given")
    clips, rates = [], set()
    for path in files:
        try:
            with wave.open(path, "rb") as w:
                if w.getsampwidth() != 2 or w.getnchannels() != 1:
                    fail(f"{path}: {8 * w.getsampwidth()}-bit, {w.getnchannels()} channel(s); "
                         "only 16-bit PCM mono WAV is supported")
                rates.add(w.getframerate())
                clips.append(w.readframes(w.getnframes()))
        except (wave.Error, EOFError) as e:
            fail(f"{path}: not a 16-bit PCM WAV file ({e})")
        except OSError as e:
            fail(f"{path}: {e}")
    if len(rates) != 1:
        fail(f"the clips mix sample rates {sorted(rates)}; give clips of one rate")
    return clips, rates.pop()


def session_audio(clips, index, rate, duration):
    """Clip index mod len; with a duration, the clips from there on, cycled and cut to it."""
    first = index % len(clips)
    if duration is None:
        return clips[first]
    wanted = int(duration * rate) * 2
    audio, i = bytearray(), first
    while len(audio) < wanted:
        audio += clips[i % len(clips)]
        i += 1
    return bytes(audio[:wanted])


def final_words(reply):
    """The words of a final result, [] for a partial (or a final without words)."""
    if "alternatives" in reply:
        return (reply["alternatives"] or [{}])[0].get("result") or []
    return reply.get("result") or []


class Stats:
    def __init__(self):
        self.partial, self.final, self.after_speech, self.errors = [], [], [], []
        self.ok = self.replies = self.finals = 0
        self.audio_seconds = self.send_lag_max = 0.0


async def run_session(index, args, audio, rate, start_at, stats):
    chunk_bytes = max(1, rate * args.chunk_ms // 1000) * 2
    chunks = [audio[i:i + chunk_bytes] for i in range(0, len(audio), chunk_bytes)]
    chunk_seconds = chunk_bytes / 2 / rate
    interval = chunk_seconds / args.speed
    sent_at = []  # wall time each chunk went out
    pending = collections.deque()  # send times of chunks not answered yet
    eof = {"sent": False, "answered": False}

    async def read_replies(ws):
        async for message in ws:
            now = time.monotonic()
            if pending:
                answered = now - pending.popleft()
                stats.partial.append(answered)
                stats.replies += 1
                words = final_words(json.loads(message))
                if words:
                    stats.finals += 1
                    stats.final.append(answered)
                    k = min(int(words[-1]["end"] / chunk_seconds), len(sent_at) - 1)
                    stats.after_speech.append(now - sent_at[k])
            elif eof["sent"] and not eof["answered"]:
                eof["answered"] = True
            else:
                raise RuntimeError(f"a reply with no chunk or eof to answer: {message[:200]!r}")

    await asyncio.sleep(max(0.0, start_at - time.monotonic()))
    headers = {"Authorization": f"Bearer {args.bearer}"} if args.bearer else None
    try:
        async with websockets.connect(args.url, extra_headers=headers, max_size=None) as ws:
            reader = asyncio.create_task(read_replies(ws))
            try:
                await ws.send(json.dumps({"config": {"sample_rate": rate, "words": 1}}))
                start = time.monotonic()
                for k, chunk in enumerate(chunks):
                    due = start + k * interval
                    await asyncio.sleep(max(0.0, due - time.monotonic()))
                    if reader.done():
                        break  # the server closed, or a reply made no sense (raised below)
                    now = time.monotonic()
                    stats.send_lag_max = max(stats.send_lag_max, now - due)
                    sent_at.append(now)
                    pending.append(now)
                    await ws.send(chunk)
                    stats.audio_seconds += len(chunk) / 2 / rate
                else:
                    eof["sent"] = True
                    await ws.send(VOSK_EOF)
                await asyncio.wait_for(reader, args.timeout)  # until the server closes
            except ConnectionClosed:
                pass  # reported below, with how far the session got
            finally:
                reader.cancel()
        if pending or not eof["answered"]:
            state = "answered" if eof["answered"] else "unanswered" if eof["sent"] else "not sent"
            raise RuntimeError(
                f"the server closed (code {ws.close_code}) after {len(sent_at)} of {len(chunks)} "
                f"chunks with {len(pending)} unanswered; eof {state}")
        stats.ok += 1
    except InvalidStatusCode as e:
        stats.errors.append({"session": index, "refused": e.status_code,
                             "retry_after": e.headers.get("Retry-After")})
    except asyncio.TimeoutError:
        stats.errors.append({"session": index, "exception": f"no close within {args.timeout} s "
                             f"of eof ({len(pending)} chunk(s) unanswered)"})
    except Exception as e:
        stats.errors.append({"session": index, "exception": repr(e)})


def summary(values):
    values = sorted(values)
    if not values:
        return {"p50": None, "p95": None, "max": None, "n": 0}

    def rank(p):  # nearest-rank percentile
        return round(values[max(0, math.ceil(p * len(values)) - 1)], 4)

    return {"p50": rank(0.50), "p95": rank(0.95), "max": round(values[-1], 4), "n": len(values)}


async def bench(args, clips, rate):
    stats = Stats()
    began = time.monotonic()
    stagger = args.chunk_ms / 1000 / args.speed / args.streams
    await asyncio.gather(*(
        run_session(i, args, session_audio(clips, i, rate, args.duration), rate,
                    began + i * stagger, stats)
        for i in range(args.streams)))
    return {
        "streams": args.streams,
        "sessions_ok": stats.ok,
        "errors": stats.errors,
        "partial_latency": summary(stats.partial),
        "final_latency": summary(stats.final),
        "after_speech": summary(stats.after_speech),
        "audio_seconds": round(stats.audio_seconds, 3),
        "wall_seconds": round(time.monotonic() - began, 3),
        "replies": stats.replies,
        "finals": stats.finals,
        "send_lag_max": round(stats.send_lag_max, 4),
    }


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("url")
    p.add_argument("audio", nargs="+")
    p.add_argument("--streams", type=int, default=1)
    p.add_argument("--speed", type=float, default=1.0)
    p.add_argument("--bearer")
    p.add_argument("--chunk-ms", type=int, default=200)
    p.add_argument("--duration", type=float)
    p.add_argument("--timeout", type=float, default=60.0)
    args = p.parse_args()
    if args.streams < 1 or args.speed <= 0 or args.chunk_ms <= 0:
        p.error("--streams, --speed and --chunk-ms must be positive")
    if args.duration is not None and args.duration <= 0:
        p.error("--duration must be positive")
    clips, rate = load_clips(args.audio)
    print(json.dumps(asyncio.run(bench(args, clips, rate))))


if __name__ == "__main__":
    main()
