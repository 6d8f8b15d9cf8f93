"""Drives TRD with the official `speechmatics-batch` SDK, unchanged.

Usage:
  speechmatics_sdk.py transcribe URL KEY FILE CONFIG_JSON
      transcribe() FILE with the config, then fetch the transcript as text and SRT
  speechmatics_sdk.py lifecycle URL KEY FILE
      submit, list, delete a running job without and then with force, look it up again
Prints one JSON line with what the SDK returned.
"""
import asyncio
import json
import sys

from speechmatics.batch import AsyncClient, FormatType, JobConfig, JobError


async def transcribe(url, key, path, config_json):
    config = JobConfig.from_dict(json.loads(config_json))
    async with AsyncClient(api_key=key, url=url) as client:
        transcript = await client.transcribe(path, config=config, polling_interval=1.0,
                                             timeout=600)
        job = transcript.job
        text = await client.get_transcript(job.id, format_type=FormatType.TXT)
        srt = await client.get_transcript(job.id, format_type=FormatType.SRT)
        info = await client.get_job_info(job.id)
    words = [r for r in transcript.results if r.type == "word"]
    return {
        "id": job.id,
        "status": info.status.value,
        "duration": info.duration,
        "data_name": info.data_name,
        "transcript_text": transcript.transcript_text,
        "words": [w.alternatives[0].content for w in words],
        "speakers": sorted({w.alternatives[0].speaker for w in words}),
        "channels": sorted({w.channel for w in words if w.channel}),
        "txt": text,
        "srt": srt,
        "transcript_type": type(transcript).__name__,
    }


async def lifecycle(url, key, path):
    out = {}
    config = JobConfig.from_dict({"type": "transcription",
                                  "transcription_config": {"language": "ko"}})
    async with AsyncClient(api_key=key, url=url) as client:
        first = await client.submit_job(path, config=config)
        second = await client.submit_job(path, config=config)
        listed = await client.list_jobs()
        out["listed"] = [j.id for j in listed]
        out["submitted"] = [first.id, second.id]
        out["limited"] = [j.id for j in await client.list_jobs(limit=1)]
        info = await client.get_job_info(second.id)
        out["config_language"] = info.config.transcription_config.language
        try:
            await client.delete_job(second.id)
            out["unforced"] = "deleted"
        except JobError as e:
            out["unforced"] = str(e)
        await client.delete_job(second.id, force=True)
        try:
            await client.get_job_info(second.id)
            out["after_delete"] = "found"
        except JobError as e:
            out["after_delete"] = str(e)
        out["listed_after"] = [j.id for j in await client.list_jobs()]
    return out


def main():
    command, args = sys.argv[1], sys.argv[2:]
    result = {"transcribe": transcribe, "lifecycle": lifecycle}[command](*args)
    print(json.dumps(asyncio.run(result), ensure_ascii=False))


main()
