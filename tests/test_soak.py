"""Soak through the openai teacher against the real local server: no lost rows, steady memory. CI sends 500
requests; `make nightly` sends 5,000."""

import resource

import psutil
import pytest

from tracestyle.curate.teachers.openai_client import Job, OpenAIConfig, OpenAITeacher

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("N", [500, pytest.param(5000, marks=pytest.mark.nightly)])
def test_soak(tmp_path, llama_server, record_property, N):
    proc = psutil.Process()
    samples = []

    def progress(_n):
        done = len(samples) + 1
        samples.append(proc.memory_info().rss if done % (N // 20) == 0 else None)

    cfg = OpenAIConfig(base_url=llama_server["base_url"], model="smollm2", max_tokens=1, temperature=0.0,
                       concurrency=8, timeout=60)
    teacher = OpenAITeacher(cfg, tmp_path / "cache.jsonl", progress=progress)
    jobs = [Job([{"role": "user", "content": f"Say {i}."}], {"i": i}) for i in range(N)]
    results, failed = teacher.run(jobs)
    assert not failed and len(results) == N and len({r["i"] for r in results}) == N, "no lost rows"
    assert teacher.stats.requests == N
    rss = [s for s in samples if s]
    growth_mb = (max(rss[len(rss) // 5:]) - rss[len(rss) // 5]) / 2**20
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    record_property("soak_peak_rss_mb", peak_mb)
    record_property("soak_seconds", teacher.elapsed)
    print(f"soak: {N} requests in {teacher.elapsed:.0f} s, peak RSS {peak_mb:.0f} MB, growth after warm-up "
          f"{growth_mb:.1f} MB")
    assert growth_mb < 64, f"memory grew {growth_mb:.1f} MB after warm-up"
    # the rerun is served by the cache
    again = OpenAITeacher(cfg, tmp_path / "cache.jsonl")
    results2, _ = again.run(jobs)
    assert again.stats.requests == 0 and len(results2) == N
