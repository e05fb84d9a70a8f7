import numpy as np
import pyarrow as pa

from streamsql.runtime.hashing import hash_keys, instance_of_group, key_groups


def test_hash_is_stable_across_releases():
    # These values are part of the checkpoint format: keyed state is placed by them.
    batch = pa.record_batch({"k": [1, 2, None], "s": ["a", "", None]})
    assert hash_keys(batch, ["k"]).tolist() == [
        15916886550466581944,
        16576549522093199164,
        3847398142028685078,
    ]
    assert hash_keys(batch, ["s"]).tolist() == [
        16794999490258942337,
        5197578548964807871,
        3847398142028685078,
    ]


def test_equal_values_hash_equal_whatever_the_arrow_layout():
    strings = ["x", "yy", "zzz"]
    plain = hash_keys(pa.record_batch({"s": pa.array(strings)}), ["s"])
    large = hash_keys(pa.record_batch({"s": pa.array(strings, pa.large_string())}), ["s"])
    view = hash_keys(pa.record_batch({"s": pa.array(strings, pa.string_view())}), ["s"])
    sliced = hash_keys(pa.record_batch({"s": pa.array(["w", *strings])}).slice(1), ["s"])
    assert plain.tolist() == large.tolist() == view.tolist() == sliced.tolist()
    ints = hash_keys(pa.record_batch({"i": pa.array([5], pa.int32())}), ["i"])
    longs = hash_keys(pa.record_batch({"i": pa.array([5], pa.int64())}), ["i"])
    assert ints.tolist() == longs.tolist()


def test_key_groups_spread_and_instances_cover_ranges():
    batch = pa.record_batch({"k": np.arange(10_000)})
    groups = key_groups(hash_keys(batch, ["k"]), 128)
    counts = np.bincount(groups, minlength=128)
    assert counts.min() > 40 and counts.max() < 120
    owners = instance_of_group(np.arange(128), 3, 128)
    assert owners.min() == 0 and owners.max() == 2
    assert np.all(np.diff(owners) >= 0)  # contiguous ranges, as rescaling needs
