import pyarrow as pa

from streamsql.physical.graph import Edge
from streamsql.plan.nodes import Distribution
from streamsql.runtime.exchange import Router


def _router(kind, consumers, keys=()):
    return Router(Edge(1, 2, Distribution(kind, tuple(keys))), consumers, 128)


def test_hash_keeps_each_key_on_one_instance_in_arrival_order():
    router = _router("hash", 3, ["k"])
    seen: dict[int, int] = {}
    order: dict[int, list[int]] = {}
    for start in range(0, 300, 50):
        batch = pa.record_batch(
            {"k": [i % 17 for i in range(start, start + 50)], "i": list(range(start, start + 50))}
        )
        for target, part in router.route(batch, 0):
            for k, i in zip(
                part.column("k").to_pylist(), part.column("i").to_pylist(), strict=True
            ):
                assert seen.setdefault(k, target) == target
                order.setdefault(k, []).append(i)
    assert len(set(seen.values())) == 3
    assert all(v == sorted(v) for v in order.values())


def test_round_robin_cycles_per_producer():
    router = _router("round_robin", 3)
    batch = pa.record_batch({"x": [1]})
    assert [router.route(batch, 0)[0][0] for _ in range(4)] == [0, 1, 2, 0]
    assert router.route(batch, 1)[0][0] == 1


def test_forward_singleton_broadcast():
    batch = pa.record_batch({"x": [1]})
    assert _router("forward", 2).route(batch, 1)[0][0] == 1
    assert _router("singleton", 1).route(batch, 3)[0][0] == 0
    assert [t for t, _ in _router("broadcast", 3).route(batch, 0)] == [0, 1, 2]
