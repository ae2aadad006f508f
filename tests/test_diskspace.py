"""Large writes check free space first and say so plainly; caches of converted models stay under their cap,
dropping the least recently used entry and never the one in use."""

import os
import shutil
import time

import pytest

from tracestyle.diskspace import DiskSpaceError, mark_used, prune_cache, require_free, tree_size


def _entry(root, name, mb, age_s):
    d = root / name
    d.mkdir(parents=True)
    with open(d / "model.bin", "wb") as f:   # sparse: counts its size without taking the disk
        f.truncate(mb << 20)
    mark_used(d)
    t = time.time() - age_s
    os.utime(d / ".last-used", (t, t))
    return d


def test_require_free_names_the_place_and_the_sizes(tmp_path):
    free = shutil.disk_usage(tmp_path).free
    require_free(tmp_path / "not" / "yet" / "made", 1 << 20, "a small write")   # enough: nothing raised
    with pytest.raises(DiskSpaceError) as e:
        require_free(tmp_path / "ckpt", free * 2, "the checkpoint of step 4")
    msg = str(e.value)
    assert str(tmp_path / "ckpt") in msg and "the checkpoint of step 4" in msg and "MB" in msg and "left" in msg


def test_prune_drops_least_recently_used_until_under_cap(tmp_path):
    old = _entry(tmp_path, "a-old", 300, 3000)
    mid = _entry(tmp_path, "b-mid", 300, 2000)
    new = _entry(tmp_path, "c-new", 300, 10)
    removed = prune_cache(tmp_path, 650 << 20)
    assert removed == [old] and mid.exists() and new.exists()
    mark_used(mid)                                      # a use moves it to the back of the queue
    removed = prune_cache(tmp_path, 350 << 20)
    assert removed == [new] and mid.exists()


def test_prune_keeps_the_entry_in_use_even_over_cap(tmp_path):
    big = _entry(tmp_path, "in-use", 900, 5000)
    other = _entry(tmp_path, "other", 100, 10)
    assert prune_cache(tmp_path, 50 << 20, keep=big) == [other]
    assert big.exists() and tree_size(big) == 900 << 20


def test_prune_removes_stale_temporary_folders_only(tmp_path):
    def is_temp(p):
        return ".ct" in p.name

    stale = tmp_path / "x.ct123"
    stale.mkdir()
    t = time.time() - 7200
    os.utime(stale, (t, t))
    live = tmp_path / "y.ct456"
    live.mkdir()                                        # a conversion running now in another process
    removed = prune_cache(tmp_path, 1 << 40, is_temp=is_temp)
    assert removed == [stale] and live.exists()


def test_bad_cap_setting_is_named(monkeypatch):
    from tracestyle.diskspace import cache_cap_bytes
    from tracestyle.errors import InputError

    monkeypatch.setenv("TRACESTYLE_CT2_CACHE_GB", "lots")
    with pytest.raises(InputError, match="TRACESTYLE_CT2_CACHE_GB"):
        cache_cap_bytes("TRACESTYLE_CT2_CACHE_GB", 4)
    monkeypatch.setenv("TRACESTYLE_CT2_CACHE_GB", "0.5")
    assert cache_cap_bytes("TRACESTYLE_CT2_CACHE_GB", 4) == 1 << 29


@pytest.mark.slow
def test_ct2_conversions_stay_under_the_cap(tmp_path, monkeypatch):
    """A real conversion into a cache holding older conversions: the oldest go, the new one is used and marked."""
    pytest.importorskip("ctranslate2")
    from tracestyle.distill.engine_ct2 import converted_dir
    from tracestyle.distill.models import bundled_model_dir
    from tracestyle.layout import cache_root

    real_models = bundled_model_dir("smollm2-135m").parent
    cache = tmp_path / "cache"
    (cache / "ct2").mkdir(parents=True)
    (cache / "models").symlink_to(real_models)          # the bundled weights, not converted again
    old = _entry(cache / "ct2", "smollm2-135m-0ld", 400, 9000)
    recent = _entry(cache / "ct2", "gemma3-270m-rec", 100, 60)
    monkeypatch.setenv("TRACESTYLE_CACHE", str(cache))
    monkeypatch.setenv("TRACESTYLE_CT2_CACHE_GB", "0.8")
    assert cache_root() == cache
    out = converted_dir("smollm2-135m", None)
    assert (out / "model.bin").exists() and (out / ".last-used").exists()
    assert not old.exists() and recent.exists()
    assert [p.name for p in (cache / "ct2").iterdir() if "." in p.name] == []   # no temporary folder left
    assert converted_dir("smollm2-135m", None) == out                          # reused, not converted again
