"""Drives one streaming-recognition session the way each protocol's real clients do.

Usage:
  stream_clients.py PROTOCOL URL AUDIO [options]

PROTOCOL is one of:
  vosk            vosk-server's WebSocket protocol, as its reference client test.py speaks it with
                  `websockets`: an optional {"config": {...}} text frame, the WAV's PCM in binary
                  frames of --chunk-ms with exactly one reply read per frame, then the literal text
                  {"eof" : 1} and every reply until the server closes (the reply to eof is the last
                  final). URL e.g. ws://127.0.0.1:8000/asr/ws?token=KEY
  speechmatics    the official `speechmatics-rt` SDK, unchanged: AsyncClient(api_key, url),
                  start_session(), send_audio() per chunk, stop_session(). URL e.g.
                  ws://127.0.0.1:8000/v2 (the SDK appends ?sm-sdk=python-rt-sdk-v<version>);
                  --bearer is the API key
  deepspeech-ws   DeepSpeech REST API's /stt/ws: an optional hot-words text frame, the whole file
                  as ONE binary frame, one JSON reply {"message": text, "time": seconds}, then the
                  server closes. URL e.g. ws://127.0.0.1:8000/api/v1/stt/ws?token=KEY
  deepspeech-mic  DeepSpeech REST API's /stt/mic: 16 kHz s16le PCM chunks; the server answers with
                  plain-text partial strings; the client just closes the socket at the end and
                  the last string is the transcript.
                  URL e.g. ws://127.0.0.1:8000/api/v1/stt/mic?token=KEY

AUDIO is a 16-bit PCM WAV (read with the stdlib `wave` module), except for deepspeech-ws and
speechmatics --file-format, which send the file's bytes as they are (any container).

Options:
  --bearer KEY             Authorization: Bearer KEY on the upgrade (the API key for speechmatics)
  --chunk-ms MS            audio per binary frame (default 200)
  --speed X                pace chunks at X times real time (default 1); 0 sends as fast as possible
                           (vosk still awaits each frame's reply)
  --timeout S              give up on the whole session after S seconds (default 120)
  vosk:          --no-config, --phrase-list JSON, --max-alternatives N,
                 --reset-at SECONDS (send {"reset" : 1} once that much audio has been sent),
                 --silent-after SECONDS (after that much audio send nothing more, not even eof,
                 and read until the server closes: how a stalled client looks)
  speechmatics:  --language L (default ko), --max-delay S (default 2.0), --diarization speaker,
                 --additional-vocab WORD,WORD, --file-format (audio_format type "file"; chunks
                 of --chunk-ms by the duration from the WAV header or ffprobe, else 4096 bytes
                 unpaced)
  deepspeech-ws: --hot-words JSON (e.g. '{"power": 1000}')
  deepspeech-mic: --settle S (after the last chunk, wait until every chunk has been answered or
                 no reply came for S seconds before closing; default 2)
  any WAV:       --pad-seconds S (S seconds of silence after the audio, as a microphone left open
                 sends; default 0)

Prints one JSON line:
  {"protocol", "finals": [{"text", "t", "audio_t", "start", "end", "speakers", ...}],
   "text" (non-empty finals joined with one space), "partials": [{"text", "t", "audio_t"}],
   "replies" (replies to audio frames, vosk/mic), "refused" (null or {"status", "headers", "body"}
   when the upgrade is answered with an HTTP status; header names lower-cased),
   "error" (null, {"type", "reason"} from a protocol error or {"exception": repr}),
   "warnings", "close_code", "session_id", "audio_seconds" (the file's), "audio_sent" (seconds of
   it sent), "other" (replies of no known kind)}
For speechmatics a refusal's body is "" (the SDK drops it) and "error" holds the SDK's exception.
plus per protocol: vosk finals carry "kind" (result/reset/eof), "words" and, with
--max-alternatives, "alternatives"; speechmatics adds "seq_nos" (AudioAdded), "end_of_transcript"
(t it arrived), "message_counts", "parse_errors" (TranscriptResult.from_message failures);
deepspeech-ws adds "server_time".
"t" is wall seconds since the first audio was sent, "audio_t" the seconds of audio sent by then.
Partials are the non-empty ones, except that deepspeech-mic lists every string it received.
Exit status is 0 whenever a report is printed; a bad command line or unreadable audio exits 2.
"""
import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import time
import wave

import websockets
from speechmatics.rt import (AsyncClient, AudioEncoding, AudioFormat, ServerMessageType,
                             TranscriptionConfig, TranscriptResult)
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidStatusCode
from websockets.legacy.client import WebSocketClientProtocol

VOSK_EOF = '{"eof" : 1}'  # vosk-server compares these two character for character
VOSK_RESET = '{"reset" : 1}'


def fail(message):
    print(f"stream_clients.py: {message}", file=sys.stderr)
    sys.exit(2)


# ---------------------------------------------------------------------------------------------
# Audio


class Wav:
    """A 16-bit PCM WAV's samples, held in memory."""

    def __init__(self, path, mono=True, rate=None):
        try:
            with wave.open(path, "rb") as w:
                self.rate, self.channels = w.getframerate(), w.getnchannels()
                width = w.getsampwidth()
                self.data = w.readframes(w.getnframes())
        except (wave.Error, EOFError) as e:
            fail(f"{path}: not a 16-bit PCM WAV file ({e})")
        except OSError as e:
            fail(f"{path}: {e}")
        if width != 2:
            fail(f"{path}: {8 * width}-bit samples; only 16-bit PCM WAV is supported")
        if mono and self.channels != 1:
            fail(f"{path}: {self.channels} channels; this protocol takes mono PCM")
        if rate and self.rate != rate:
            fail(f"{path}: {self.rate} Hz; this protocol takes {rate} Hz PCM")
        self.bytes_per_second = self.rate * self.channels * 2
        self.seconds = len(self.data) / self.bytes_per_second

    def chunks(self, chunk_ms):
        size = max(1, self.rate * chunk_ms // 1000) * self.channels * 2
        return [self.data[i:i + size] for i in range(0, len(self.data), size)]


class AudioFile:
    """Any audio file's bytes as they are. Its duration comes from the WAV header, else from
    ffprobe when installed; when it is unknown (None) the file goes in 4096-byte chunks, unpaced."""

    def __init__(self, path):
        try:
            with open(path, "rb") as f:
                self.data = f.read()
        except OSError as e:
            fail(f"{path}: {e}")
        self.seconds = self.probe_seconds(path)
        self.bytes_per_second = len(self.data) / self.seconds if self.seconds else None

    @staticmethod
    def probe_seconds(path):
        try:
            with wave.open(path, "rb") as w:
                return w.getnframes() / w.getframerate()
        except (wave.Error, EOFError):
            pass
        if shutil.which("ffprobe"):
            probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration",
                                    "-of", "csv=p=0", path], capture_output=True, text=True)
            try:
                return float(probe.stdout.strip())
            except ValueError:
                pass
        return None

    def chunks(self, chunk_ms):
        size = max(1, int(self.bytes_per_second * chunk_ms / 1000)) if self.seconds else 4096
        return [self.data[i:i + size] for i in range(0, len(self.data), size)]


class Pacer:
    """Lets chunk k go at start + k * chunk_seconds / speed; speed 0 never waits."""

    def __init__(self, chunk_ms, speed):
        self.interval = chunk_ms / 1000 / speed if speed > 0 else 0.0
        self.start = None

    async def wait(self, k):
        now = time.monotonic()
        if self.start is None:
            self.start = now
        delay = self.start + k * self.interval - now
        if delay > 0:
            await asyncio.sleep(delay)


# ---------------------------------------------------------------------------------------------
# Report


class Report:
    def __init__(self, protocol, audio):
        seconds = round(audio.seconds, 3) if audio.seconds is not None else None
        self.data = {
            "protocol": protocol, "finals": [], "text": "", "partials": [], "replies": 0,
            "refused": None, "error": None, "warnings": [], "close_code": None,
            "session_id": None, "audio_seconds": seconds, "audio_sent": 0.0, "other": [],
        }
        self.first_audio = None  # monotonic time the first audio was sent
        self.audio_sent = 0.0  # seconds of audio sent so far

    def __getitem__(self, key):
        return self.data[key]

    def __setitem__(self, key, value):
        self.data[key] = value

    def sent(self, seconds):
        """Call right after an audio frame went out."""
        if self.first_audio is None:
            self.first_audio = time.monotonic()
        self.audio_sent += seconds
        self.data["audio_sent"] = round(self.audio_sent, 3)

    def clock(self):
        t = 0.0 if self.first_audio is None else time.monotonic() - self.first_audio
        return {"t": round(t, 3), "audio_t": round(self.audio_sent, 3)}

    def partial(self, text):
        self.data["partials"].append({"text": text, **self.clock()})

    def final(self, text, start=None, end=None, speakers=(), **extra):
        self.data["finals"].append({"text": text, **self.clock(), "start": start, "end": end,
                                    "speakers": list(speakers), **extra})

    def exception(self, exc):
        if self.data["error"] is None:
            self.data["error"] = {"exception": repr(exc)}

    def refused(self, exc):
        """Record an HTTP refusal of the upgrade, if exc (or what it was raised from) is one."""
        while exc is not None:
            if isinstance(exc, InvalidStatusCode):
                status, headers, body = exc.status_code, exc.headers, getattr(exc, "body", "")
            elif isinstance(exc, InvalidStatus):  # the non-legacy clients' refusal
                response = exc.response
                status, headers = response.status_code, response.headers
                body = response.body.decode("utf-8", "replace") if response.body else ""
            else:
                exc = exc.__cause__ or exc.__context__
                continue
            merged = {}
            for name, value in headers.raw_items():
                name = name.lower()
                merged[name] = f"{merged[name]}, {value}" if name in merged else value
            self.data["refused"] = {"status": status, "headers": merged, "body": body}
            return True
        return False

    def json(self):
        self.data["text"] = " ".join(f["text"] for f in self.data["finals"] if f["text"])
        return json.dumps(self.data, ensure_ascii=False)


# ---------------------------------------------------------------------------------------------
# Plain websockets clients (vosk, DeepSpeech)


class KeepRefusalBody(WebSocketClientProtocol):
    """The legacy client protocol, except that a refused upgrade's body is kept on the exception
    (as exc.body); the stock protocol raises InvalidStatusCode without reading it."""

    async def handshake(self, *args, **kwargs):
        try:
            await super().handshake(*args, **kwargs)
        except InvalidStatusCode as exc:
            try:
                exc.body = await asyncio.wait_for(self.read_body(exc.headers), 5)
            except Exception:  # a refusal without a readable body is still a refusal
                exc.body = ""
            raise

    async def read_body(self, headers):
        if "Content-Length" in headers:
            body = await self.reader.readexactly(int(headers["Content-Length"]))
        elif "chunked" in headers.get("Transfer-Encoding", "").lower():
            body = b""
            while size := int((await self.reader.readline()).split(b";")[0], 16):
                body += await self.reader.readexactly(size)
                await self.reader.readline()
        else:
            body = await self.reader.read(1 << 20)
        return body.decode("utf-8", "replace")


def connect(url, bearer):
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else None
    return websockets.connect(url, extra_headers=headers, create_protocol=KeepRefusalBody,
                              max_size=None)


def vosk_speakers(spk):
    """vosk-server's `spk` is an x-vector (a list of floats); a label or list of labels is kept."""
    if spk is None:
        return []
    if isinstance(spk, list):
        return [] if all(isinstance(x, float) for x in spk) else spk
    return [spk]


def vosk_reply(report, message, kind):
    try:
        reply = json.loads(message)
    except (TypeError, ValueError):
        report["other"].append(message if isinstance(message, str) else repr(message))
        return
    if not isinstance(reply, dict):
        report["other"].append(reply)
    elif "partial" in reply:
        if reply["partial"]:
            report.partial(reply["partial"])
    elif "alternatives" in reply:  # max_alternatives > 0
        alternatives = reply["alternatives"] or [{}]
        words = alternatives[0].get("result") or []
        report.final(alternatives[0].get("text", ""), *word_span(words),
                     vosk_speakers(reply.get("spk")), kind=kind, words=words,
                     alternatives=[a.get("text") for a in alternatives])
    elif "text" in reply or "result" in reply:
        words = reply.get("result") or []
        report.final(reply.get("text", ""), *word_span(words), vosk_speakers(reply.get("spk")),
                     kind=kind, words=words)
    else:
        report["other"].append(reply)


def word_span(words):
    return (words[0].get("start"), words[-1].get("end")) if words else (None, None)


async def drained(ws):
    """The messages a closed connection had received before its close."""
    while True:
        try:
            yield await ws.recv()
        except ConnectionClosed:
            return


async def run_vosk(args, wav, report):
    config = {"sample_rate": wav.rate, "words": 1}
    if args.phrase_list:
        config["phrase_list"] = json.loads(args.phrase_list)
    if args.max_alternatives is not None:
        config["max_alternatives"] = args.max_alternatives
    pacer = Pacer(args.chunk_ms, args.speed)
    reset_pending = args.reset_at is not None
    async with connect(args.url, args.bearer) as ws:
        try:
            if not args.no_config:
                await ws.send(json.dumps({"config": config}))
            for k, chunk in enumerate(wav.chunks(args.chunk_ms)):
                await pacer.wait(k)
                try:
                    await ws.send(chunk)
                except ConnectionClosed:
                    # The server ended the session (a limit): what it said before closing is
                    # still to be read.
                    async for message in drained(ws):
                        vosk_reply(report, message, "result")
                    return
                report.sent(len(chunk) / wav.bytes_per_second)
                vosk_reply(report, await ws.recv(), "result")
                report["replies"] += 1
                if reset_pending and report.audio_sent >= args.reset_at:
                    reset_pending = False
                    await ws.send(VOSK_RESET)
                    vosk_reply(report, await ws.recv(), "reset")
                if args.silent_after is not None and report.audio_sent >= args.silent_after:
                    async for message in ws:  # until the server closes
                        vosk_reply(report, message, "result")
                    return
            await ws.send(VOSK_EOF)
            async for message in ws:  # until the server closes
                vosk_reply(report, message, "eof")
        finally:
            report["close_code"] = ws.close_code


async def run_deepspeech_ws(args, audio, report):
    async with connect(args.url, args.bearer) as ws:
        try:
            if args.hot_words:
                await ws.send(json.dumps(json.loads(args.hot_words)))
            await ws.send(audio.data)
            report.sent(audio.seconds or 0.0)
            message = await ws.recv()
            try:
                reply = json.loads(message)
                report.final(reply["message"])
                report["server_time"] = reply.get("time")
            except (TypeError, ValueError, KeyError):
                report["other"].append(message if isinstance(message, str) else repr(message))
            try:  # the server closes after its one reply
                while True:
                    message = await asyncio.wait_for(ws.recv(), 10)
                    report["other"].append(message if isinstance(message, str) else repr(message))
            except ConnectionClosed:
                pass
            except asyncio.TimeoutError:
                report["warnings"].append("the server did not close within 10 s of its reply")
        finally:
            report["close_code"] = ws.close_code


async def run_deepspeech_mic(args, wav, report):
    chunks = wav.chunks(args.chunk_ms)
    pacer = Pacer(args.chunk_ms, args.speed)
    last_reply = [time.monotonic()]

    async def read_replies(ws):
        async for message in ws:
            text = message if isinstance(message, str) else message.decode("utf-8", "replace")
            report.partial(text)
            report["replies"] += 1
            last_reply[0] = time.monotonic()

    async with connect(args.url, args.bearer) as ws:
        reader = asyncio.create_task(read_replies(ws))
        try:
            for k, chunk in enumerate(chunks):
                await pacer.wait(k)
                await ws.send(chunk)
                report.sent(len(chunk) / wav.bytes_per_second)
            last_reply[0] = max(last_reply[0], time.monotonic())
            while (report["replies"] < len(chunks) and not reader.done()
                   and time.monotonic() - last_reply[0] < args.settle):
                await asyncio.sleep(0.05)
            await ws.close()
            await reader
        finally:
            reader.cancel()
            report["close_code"] = ws.close_code
    if report["partials"]:  # the last string is the transcript
        report["finals"].append({**report["partials"][-1], "start": None, "end": None,
                                 "speakers": []})


# ---------------------------------------------------------------------------------------------
# Speechmatics real-time, through the official SDK


async def run_speechmatics(args, audio, report):
    if args.file_format:  # the file's bytes as they are; the server decodes the container
        audio_format = AudioFormat()  # no encoding: {"type": "file"}
    else:
        audio_format = AudioFormat(encoding=AudioEncoding.PCM_S16LE, sample_rate=audio.rate)
    words = args.additional_vocab.split(",") if args.additional_vocab else []
    vocab = [{"content": w} for w in words if w] or None
    config = TranscriptionConfig(language=args.language, enable_partials=True,
                                 max_delay=args.max_delay, diarization=args.diarization,
                                 additional_vocab=vocab)
    report.data.update({"seq_nos": [], "end_of_transcript": None, "message_counts": {},
                        "parse_errors": []})
    ended = asyncio.Event()  # EndOfTranscript or Error arrived: stop sending

    client = AsyncClient(api_key=args.bearer, url=args.url)

    def count(message):
        counts = report["message_counts"]
        counts[message["message"]] = counts.get(message["message"], 0) + 1

    for kind in ServerMessageType:
        client.on(kind, count)

    @client.on(ServerMessageType.RECOGNITION_STARTED)
    def on_started(message):
        report["session_id"] = message.get("id")

    @client.on(ServerMessageType.AUDIO_ADDED)
    def on_audio_added(message):
        report["seq_nos"].append(message.get("seq_no"))

    @client.on(ServerMessageType.ADD_PARTIAL_TRANSCRIPT)
    def on_partial(message):
        result = parse(message)
        if result and result.metadata.transcript.strip():
            report.partial(result.metadata.transcript.strip())

    @client.on(ServerMessageType.ADD_TRANSCRIPT)
    def on_final(message):
        result = parse(message)
        if result and result.metadata.transcript.strip():
            speakers = []
            for r in result.results:
                speaker = r.alternatives[0].speaker if r.alternatives else None
                if speaker is not None and speaker not in speakers:
                    speakers.append(speaker)
            report.final(result.metadata.transcript.strip(), result.metadata.start_time,
                         result.metadata.end_time, speakers)

    @client.on(ServerMessageType.END_OF_TRANSCRIPT)
    def on_end(message):
        report["end_of_transcript"] = report.clock()["t"]
        ended.set()

    @client.on(ServerMessageType.WARNING)
    def on_warning(message):
        report["warnings"].append({k: v for k, v in message.items() if k != "message"})

    @client.on(ServerMessageType.ERROR)
    def on_error(message):
        report["error"] = {"type": message.get("type"), "reason": message.get("reason")}
        ended.set()

    def parse(message):
        """What the SDK's own model makes of a transcript message (it is strict about fields)."""
        try:
            return TranscriptResult.from_message(message)
        except Exception as e:
            report["parse_errors"].append({"message": message.get("message"), "exception": repr(e)})
            return None

    pacer = Pacer(args.chunk_ms, args.speed if audio.seconds else 0)
    websocket = None
    try:
        await client.start_session(transcription_config=config, audio_format=audio_format)
        # Only to report the close code: the SDK drops its socket when it closes.
        websocket = getattr(client._transport, "_websocket", None)
        for k, chunk in enumerate(audio.chunks(args.chunk_ms)):
            if ended.is_set():
                break
            await pacer.wait(k)
            await client.send_audio(chunk)
            report.sent(len(chunk) / audio.bytes_per_second if audio.seconds else 0.0)
        await client.stop_session()  # EndOfStream, wait for EndOfTranscript, close
    finally:
        await client.close()
        if websocket is not None:
            report["close_code"] = websocket.close_code


# ---------------------------------------------------------------------------------------------


RUNNERS = {
    "vosk": run_vosk,
    "speechmatics": run_speechmatics,
    "deepspeech-ws": run_deepspeech_ws,
    "deepspeech-mic": run_deepspeech_mic,
}


def load_audio(args):
    if args.protocol == "deepspeech-ws" or (args.protocol == "speechmatics" and args.file_format):
        return AudioFile(args.audio)
    wav = Wav(args.audio, rate=16000 if args.protocol == "deepspeech-mic" else None)
    if args.pad_seconds > 0:
        wav.data += bytes(int(args.pad_seconds * wav.rate) * wav.channels * 2)
        wav.seconds = len(wav.data) / wav.bytes_per_second
    return wav


async def run(args, audio):
    report = Report(args.protocol, audio)
    session = asyncio.create_task(RUNNERS[args.protocol](args, audio, report))
    done, _ = await asyncio.wait({session}, timeout=args.timeout)
    if not done:
        session.cancel()
        await asyncio.gather(session, return_exceptions=True)
        report.exception(TimeoutError(f"no end of session within --timeout {args.timeout} s"))
    elif session.exception() is not None:
        exc = session.exception()
        refused = report.refused(exc)
        if not refused or args.protocol == "speechmatics":  # the SDK's own exception is telling
            report.exception(exc)
    return report


def parse_args():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("protocol", choices=sorted(RUNNERS))
    p.add_argument("url")
    p.add_argument("audio")
    p.add_argument("--bearer")
    p.add_argument("--chunk-ms", type=int, default=200)
    p.add_argument("--speed", type=float, default=1.0)
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("--no-config", action="store_true")
    p.add_argument("--phrase-list")
    p.add_argument("--max-alternatives", type=int)
    p.add_argument("--reset-at", type=float)
    p.add_argument("--silent-after", type=float)
    p.add_argument("--language", default="ko")
    p.add_argument("--max-delay", type=float, default=2.0)
    p.add_argument("--diarization")
    p.add_argument("--additional-vocab")
    p.add_argument("--file-format", action="store_true")
    p.add_argument("--hot-words")
    p.add_argument("--settle", type=float, default=2.0)
    p.add_argument("--pad-seconds", type=float, default=0.0)
    args = p.parse_args()
    if args.chunk_ms <= 0 or args.speed < 0:
        p.error("--chunk-ms must be positive and --speed not negative")
    for name in ("phrase_list", "hot_words"):
        try:
            if getattr(args, name):
                json.loads(getattr(args, name))
        except ValueError as e:
            p.error(f"--{name.replace('_', '-')} is not JSON: {e}")
    return args


def main():
    args = parse_args()
    audio = load_audio(args)
    report = asyncio.run(run(args, audio))
    print(report.json())


if __name__ == "__main__":
    main()
