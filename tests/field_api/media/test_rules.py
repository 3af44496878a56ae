"""Pure evidence rules: distances in metres, clock plausibility, sizes, hashes, barcodes."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta, timezone

import pytest

from field_api.common.geodesy import Position, distance_m
from field_api.media.rules import (
    FlagCode,
    HashCandidate,
    MediaKind,
    SizeLimits,
    check_barcode,
    check_capture_time,
    check_location,
    find_reuse,
    hamming_distance,
    max_distance_found,
    phash_bands,
    phash_probe_keys,
    reuse_flag,
    size_violation,
    to_signed64,
    to_unsigned64,
)

ORDER = Position(lat=30.5728, lon=104.0668)  # Chengdu
ACCEPTED = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
UPLOADED = datetime(2026, 3, 4, 6, 0, tzinfo=UTC)


# -- location --------------------------------------------------------------------------------


def test_distance_is_geodesic_metres() -> None:
    # one arc-minute along a meridian: meridional radius of curvature M(φ) x dφ on WGS 84
    a, e2 = 6_378_137.0, 0.00669437999014
    mid = math.radians(ORDER.lat + 1 / 120)
    meridional = a * (1 - e2) / (1 - e2 * math.sin(mid) ** 2) ** 1.5
    north = Position(lat=ORDER.lat + 1 / 60, lon=ORDER.lon)
    assert distance_m(ORDER, north) == pytest.approx(meridional * math.radians(1 / 60), abs=0.5)
    # a degree of longitude shrinks with cos(latitude): ~96 km at 30.57° N, not 111 km
    east = Position(lat=ORDER.lat, lon=ORDER.lon + 1)
    assert distance_m(ORDER, east) == pytest.approx(96_000, rel=0.01)


def test_photo_within_100_m_is_not_flagged() -> None:
    near = Position(lat=ORDER.lat + 0.0008, lon=ORDER.lon)  # ~89 m north
    assert check_location(near, ORDER) is None


def test_photo_beyond_100_m_is_flagged_with_the_distance() -> None:
    far = Position(lat=ORDER.lat + 0.0010, lon=ORDER.lon)  # ~111 m north
    flag = check_location(far, ORDER)
    assert flag is not None
    assert flag.code is FlagCode.gps_too_far
    assert "111 m" in flag.reason and "limit 100 m" in flag.reason


def test_distance_limit_is_configurable() -> None:
    far = Position(lat=ORDER.lat + 0.0010, lon=ORDER.lon)
    assert check_location(far, ORDER, max_distance_m=150) is None


def test_missing_gps_or_order_location_is_flagged() -> None:
    missing = check_location(None, ORDER)
    assert missing is not None and missing.code is FlagCode.gps_missing
    no_order = check_location(ORDER, None)
    assert no_order is not None and no_order.code is FlagCode.order_location_missing


# -- time ------------------------------------------------------------------------------------


def test_capture_between_acceptance_and_upload_passes() -> None:
    taken = datetime(2026, 3, 3, 10, 0, tzinfo=timezone(timedelta(hours=8)))
    assert check_capture_time(taken, accepted_at=ACCEPTED, uploaded_at=UPLOADED) is None


def test_capture_before_acceptance_is_flagged() -> None:
    taken = datetime(2026, 2, 1, 10, 0, tzinfo=UTC)
    flag = check_capture_time(taken, accepted_at=ACCEPTED, uploaded_at=UPLOADED)
    assert flag is not None and flag.code is FlagCode.time_before_acceptance
    assert "taken 2026-02-01 18:00 China time" in flag.reason  # people read China time
    assert flag.params["taken"] == "2026-02-01 18:00"


def test_capture_after_upload_beyond_tolerance_is_flagged() -> None:
    taken = UPLOADED + timedelta(minutes=11)
    flag = check_capture_time(taken, accepted_at=ACCEPTED, uploaded_at=UPLOADED)
    assert flag is not None and flag.code is FlagCode.time_after_upload


def test_clock_drift_within_tolerance_is_accepted_on_both_sides() -> None:
    early = ACCEPTED - timedelta(minutes=9)
    late = UPLOADED + timedelta(minutes=9)
    assert check_capture_time(early, accepted_at=ACCEPTED, uploaded_at=UPLOADED) is None
    assert check_capture_time(late, accepted_at=ACCEPTED, uploaded_at=UPLOADED) is None
    tight = timedelta(minutes=1)
    assert (
        check_capture_time(late, accepted_at=ACCEPTED, uploaded_at=UPLOADED, tolerance=tight)
        is not None
    )


def test_naive_camera_time_is_read_at_the_assumed_offset() -> None:
    # 08:30 camera-local at UTC+8 is 00:30 UTC: before acceptance at 01:00 UTC
    naive = datetime(2026, 3, 2, 8, 30)
    flag = check_capture_time(naive, accepted_at=ACCEPTED, uploaded_at=UPLOADED)
    assert flag is not None and flag.code is FlagCode.time_before_acceptance
    assert "read as UTC+08:00" in flag.reason
    # the same wall time read as UTC is after acceptance
    assert (
        check_capture_time(
            naive, accepted_at=ACCEPTED, uploaded_at=UPLOADED, assumed_utc_offset=timedelta(0)
        )
        is None
    )


def test_missing_capture_time_is_flagged() -> None:
    flag = check_capture_time(None, accepted_at=ACCEPTED, uploaded_at=UPLOADED)
    assert flag is not None and flag.code is FlagCode.time_missing


# -- sizes -----------------------------------------------------------------------------------


def test_size_limits_per_kind_and_for_video() -> None:
    limits = SizeLimits(
        photo_bytes={MediaKind.site: 1000, MediaKind.signature: 200}, video_bytes=5000
    )
    assert size_violation(1000, MediaKind.site, is_video=False, limits=limits) is None
    assert size_violation(201, MediaKind.signature, is_video=False, limits=limits) is not None
    assert size_violation(4000, MediaKind.site, is_video=True, limits=limits) is None
    reason = size_violation(5001, MediaKind.site, is_video=True, limits=limits)
    assert reason is not None and "at most 5000 bytes" in reason
    # before the type is known, the larger limit bounds the stream
    assert limits.max_bytes(MediaKind.signature, is_video=None) == 5000


def test_default_limits_cover_every_kind() -> None:
    limits = SizeLimits.defaults()
    for kind in MediaKind:
        assert limits.max_bytes(kind, is_video=False) >= 10 * 1024 * 1024


# -- perceptual hashes -----------------------------------------------------------------------


def test_hamming_distance_ignores_the_sign_of_stored_int64() -> None:
    a = to_signed64(0xFFFF_0000_0000_0001)
    b = to_signed64(0x7FFF_0000_0000_0000)
    assert a < 0 < b
    assert hamming_distance(a, b) == 2
    assert to_unsigned64(a) == 0xFFFF_0000_0000_0001


def test_probe_keys_find_every_hash_up_to_distance_seven() -> None:
    assert max_distance_found() == 7
    rng = random.Random(7)
    for _ in range(500):
        base = rng.getrandbits(64)
        flipped = base
        for bit in rng.sample(range(64), rng.randint(0, 7)):
            flipped ^= 1 << bit
        stored = set(enumerate(phash_bands(flipped)))
        assert stored & set(phash_probe_keys(base)), (hex(base), hex(flipped))


def test_probe_keys_can_miss_beyond_the_guarantee() -> None:
    # two bits flipped in every 16-bit slice: distance 8, no slice within one bit
    base = 0
    far = 0x0003_0003_0003_0003
    assert hamming_distance(base, far) == 8
    assert not set(enumerate(phash_bands(far))) & set(phash_probe_keys(base))


def test_probe_keys_are_each_slice_and_its_one_bit_neighbours() -> None:
    keys = phash_probe_keys(0)
    assert len(keys) == 4 * 17
    assert (0, 0) in keys and (3, 1 << 15) in keys and (2, 3) not in keys


def test_bands_recombine_to_the_hash() -> None:
    value = to_signed64(0x0123_4567_89AB_CDEF)
    assert phash_bands(value) == [0x0123, 0x4567, 0x89AB, 0xCDEF]
    assert phash_bands(value, bands=8) == [0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF]


def test_reuse_finds_the_closest_photo_on_another_order() -> None:
    h = 0x0F0F_0F0F_0F0F_0F0F
    candidates = [
        HashCandidate("same-order", "WO-1", h),  # same order: ignored
        HashCandidate("far", "WO-2", h ^ 0xFF),  # 8 bits away
        HashCandidate("near", "WO-3", h ^ 0b101),  # 2 bits away
        HashCandidate("nearer", "WO-4", h ^ 0b1),  # 1 bit away
    ]
    match = find_reuse(h, "WO-1", candidates)
    assert match is not None
    assert (match.item_id, match.work_order_id, match.distance) == ("nearer", "WO-4", 1)
    flag = reuse_flag(match, order_label="GD-2026-0004")
    assert flag is not None and flag.code is FlagCode.reused_photo
    assert "GD-2026-0004" in flag.reason and "distance 1" in flag.reason


def test_reuse_threshold_is_configurable() -> None:
    h = 0
    candidates = [HashCandidate("x", "WO-2", 0b111_1111)]  # 7 bits away
    assert find_reuse(h, "WO-1", candidates) is None
    assert find_reuse(h, "WO-1", candidates, max_hamming=7) is not None
    assert reuse_flag(None) is None


# -- barcodes --------------------------------------------------------------------------------


def test_barcode_match_mismatch_and_unreadable() -> None:
    assert check_barcode("3240101234567890123456", ["3240101234567890123456"]) is None
    mismatch = check_barcode("3240101234567890123456", ["3240101234567890123457"])
    assert mismatch is not None and mismatch.code is FlagCode.barcode_mismatch
    assert "3240101234567890123457" in mismatch.reason
    unreadable = check_barcode("3240101234567890123456", [])
    assert unreadable is not None and unreadable.code is FlagCode.barcode_unreadable
