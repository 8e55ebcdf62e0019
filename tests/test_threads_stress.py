"""Many threads on one heap: allocate in scopes, link, store, load, drop, collect, with finalizers
being set; after every collection a verifier walks every thread's structure and checks every
reachable object's contents. Not a benchmark: the numbers are chosen to keep it short."""

from __future__ import annotations

import random
import threading

import pytest

import goheap

MB = 1 << 20
COOKIE = 0x5AFE << 48


class Chain:
    """One thread's linked list of 32-byte nodes: word 0 cookie, word 1 next, word 2 payload, word 3 pad.

    ``nodes`` is the model: the addresses from the head, with each node's id.
    """

    def __init__(self, heap: goheap.Heap, tid: int, node_type):
        self.heap, self.tid, self.type = heap, tid, node_type
        self.nodes: list[tuple[int, int]] = []
        self.head: goheap.Ref | None = None
        self.next_id = 0

    def verify(self) -> int:
        h = self.heap
        addr = self.head.addr if self.head else 0
        for node, nid in self.nodes:
            assert addr == node, f"thread {self.tid}: the list reaches {addr:#x}, the model says {node:#x}"
            assert h.lookup(node) == (node, 32), f"thread {self.tid}: node {nid} at {node:#x} was freed while reachable"
            assert h.load_word(node, 0) == COOKIE | (self.tid << 32) | nid
            assert h.load_word(node, 2) == nid * 7919 % 1_000_003
            addr = h.load_word(node, 1)
        assert addr == 0
        return len(self.nodes)


def test_threads_share_a_heap_and_lose_nothing_reachable():
    nthreads, rounds = 6, 120
    rng = random.Random(11)
    seeds = [rng.randrange(1 << 30) for _ in range(nthreads)]
    with goheap.Heap(arena_size=256 * MB, gcpercent=20, memprofilerate=1 << 14) as h:
        node = h.register_type("Node", 32, pointer_offsets=(8,))
        chains = [Chain(h, k, node if k % 2 else None) for k in range(nthreads)]
        structure = threading.Lock()  # held while a list is relinked, and while every list is verified
        finalized: list[int] = []
        armed: list[int] = []
        errors: list[BaseException] = []
        verified = [0]

        def verify_all() -> None:
            with structure:
                h.gc()
                verified[0] += sum(c.verify() for c in chains)

        def work(chain: Chain, seed: int) -> None:
            r = random.Random(seed)
            try:
                for n in range(rounds):
                    with h.scope() as s:
                        fresh = []
                        for _ in range(r.randrange(1, 12)):  # allocation may collect: fresh nodes are rooted
                            p = s.alloc(32, type=chain.type)
                            nid = chain.next_id
                            chain.next_id += 1
                            h.store_word(p, 0, COOKIE | (chain.tid << 32) | nid)
                            h.store_word(p, 2, nid * 7919 % 1_000_003)
                            fresh.append((p, nid))
                        scratch = s.alloc(r.choice([16, 100, 5000, 40000]))
                        h.view(scratch)[:] = 1
                        h.free(scratch)
                        if r.random() < 0.3:
                            doomed = s.alloc(48)
                            h.set_finalizer(doomed, finalized.append)
                            armed.append(doomed)
                        with structure:
                            for p, _ in reversed(fresh):  # push on the front
                                h.store_word(p, 1, chain.head.addr if chain.head else 0)
                                old, chain.head = chain.head, h.ref(p)
                                if old is not None:
                                    old.release()
                            chain.nodes[:0] = fresh
                            if len(chain.nodes) > 60:  # drop the tail: garbage from here on
                                keep = r.randrange(10, 60)
                                h.store_word(chain.nodes[keep - 1][0], 1, 0)
                                del chain.nodes[keep:]
                    if n % 10 == 0:
                        verify_all()
            except BaseException as exc:  # noqa: BLE001 - handed to the test
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(c, seed)) for c, seed in zip(chains, seeds)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == [], errors[0]
        verify_all()
        h.gc()
        h.gc()
        assert sorted(finalized) == sorted(armed)
        assert verified[0] > 0 and h.read_mem_stats().num_gc > 10
        h.check()


@pytest.mark.slow
def test_threads_share_a_heap_for_longer():
    for _ in range(5):
        test_threads_share_a_heap_and_lose_nothing_reachable()
