"""The compiled-rule cache is used only when it is this user's alone and intact; the rule-file scan
that keys it finds exactly what ``os.walk`` would."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from collector.detection.loader import find_rule_files, load_rules, rule_files
from detection.helpers import rule_yaml


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    folder = tmp_path / "rules"
    folder.mkdir()
    for i in range(3):
        (folder / f"r{i}.yml").write_text(rule_yaml(f"sel:\n    user: u{i}\ncondition: sel"), encoding="utf-8")
    return folder


def _cache_file(cache: Path) -> Path:
    (found,) = cache.glob("*.marshal")
    return found


def test_cache_is_private_and_reused(tmp_path: Path, rules: Path) -> None:
    cache = tmp_path / "cache"
    first = load_rules([rules], cache_dir=cache)
    assert not first.from_cache
    path = _cache_file(cache)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second = load_rules([rules], cache_dir=cache)
    assert second.from_cache
    assert [r.meta for r in second.rules] == [r.meta for r in first.rules]


def test_cache_others_may_write_is_not_trusted(tmp_path: Path, rules: Path) -> None:
    cache = tmp_path / "cache"
    load_rules([rules], cache_dir=cache)
    path = _cache_file(cache)
    path.chmod(0o666)
    assert not load_rules([rules], cache_dir=cache).from_cache
    path.chmod(0o600)
    cache.chmod(0o777)
    try:
        assert not load_rules([rules], cache_dir=cache).from_cache
    finally:
        cache.chmod(0o700)


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty", "foreign"])
def test_damaged_cache_is_rebuilt(tmp_path: Path, rules: Path, damage: str) -> None:
    cache = tmp_path / "cache"
    load_rules([rules], cache_dir=cache)
    path = _cache_file(cache)
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[-100] ^= 0xFF
    elif damage == "truncate":
        del data[len(data) // 2 :]
    elif damage == "empty":
        data.clear()
    else:  # a marshal blob that is not ours
        import marshal

        data = bytearray(marshal.dumps((4, 0, 0, [], b"", [], ())))
    path.write_bytes(bytes(data))
    report = load_rules([rules], cache_dir=cache)
    assert not report.from_cache
    assert len(report.rules) == 3
    assert load_rules([rules], cache_dir=cache).from_cache  # rewritten whole


def test_editing_a_rule_invalidates_the_cache(tmp_path: Path, rules: Path) -> None:
    cache = tmp_path / "cache"
    load_rules([rules], cache_dir=cache)
    target = rules / "r1.yml"
    target.write_text(rule_yaml("sel:\n    user: changed\ncondition: sel"), encoding="utf-8")
    os.utime(target, ns=(1, 1))
    assert not load_rules([rules], cache_dir=cache).from_cache


def _walk_reference(base: Path) -> list[Path]:
    """The scan's definition: os.walk (no symlinked directories), rule suffixes, regular files."""
    found = []
    for folder, _, names in os.walk(str(base)):
        for name in names:
            full = os.path.join(folder, name)
            if name.endswith((".yml", ".yaml")) and os.path.isfile(full):
                found.append((tuple(os.path.relpath(full, base).split(os.sep)), full))
    return [Path(full) for _, full in sorted(found)]


def test_scan_matches_os_walk(tmp_path: Path) -> None:
    base = tmp_path / "tree"
    (base / "b" / "deep").mkdir(parents=True)
    (base / "a").mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "o.yml").write_text("x")
    for rel in ("z.yml", "a/x.yaml", "b/deep/y.yml", "b/readme.md", "a.yml"):
        (base / rel).write_text("x")
    (base / "link.yml").symlink_to(outside / "o.yml")  # a symlinked file counts
    (base / "linkdir").symlink_to(outside)  # a symlinked directory is not walked
    (base / "broken.yml").symlink_to(tmp_path / "missing.yml")
    (base / "dir.yml").mkdir()
    (base / "dir.yml" / "inner.yml").write_text("x")
    expected = _walk_reference(base)
    assert rule_files([base]) == expected
    assert len(expected) == 6
    single = base / "z.yml"
    found = find_rule_files([base, single, tmp_path / "absent"])
    assert [Path(f[0]) for f in found] == [*expected, single]
    st = single.stat()
    assert found[-1] == (str(single), os.path.abspath(single), st.st_size, st.st_mtime_ns)


def test_sigma_version_in_the_key_is_the_installed_one() -> None:
    from importlib.metadata import version

    from collector.detection.loader import _sigma_version

    assert _sigma_version() == version("pysigma")
