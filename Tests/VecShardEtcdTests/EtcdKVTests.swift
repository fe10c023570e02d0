import Foundation
import NIOPosix
import Testing
import VecShardEtcd
import VecShardHTTP
import VecShardProto
import VecShardRouting
import VecShardTesting

@Suite(.serialized) struct EtcdKVTests {
    /// Runs `body` with a started etcd and a client of it.
    func withEtcd(_ body: (EtcdKV) async throws -> Void) async throws {
        let etcd = try EtcdProcess()
        defer { etcd.stop() }
        let http = HTTP2Client(group: MultiThreadedEventLoopGroup.singleton)
        let kv = EtcdKV(endpoints: [Peer(host: "127.0.0.1", port: etcd.clientPort)], http: http, timeout: .seconds(2))
        // Ready when it answers a read.
        var ready = false
        for _ in 0..<200 where !ready {
            ready = (try? await kv.get("/probe")) != nil
            if !ready { try await Task.sleep(nanoseconds: 50_000_000) }
        }
        #expect(ready, "etcd did not answer on \(Peer(host: "127.0.0.1", port: etcd.clientPort))")
        do {
            try await body(kv)
        } catch {
            await http.shutdown()
            throw error
        }
        await http.shutdown()
    }

    @Test func putGetListAndDeleteAgainstARealEtcd() async throws {
        try await withEtcd { kv in
            #expect(try await kv.get("/vecshard/topology").entry == nil)
            let written = try await kv.put("/vecshard/topology", Array("{\"version\":1}".utf8))
            let (entry, revision) = try await kv.get("/vecshard/topology")
            #expect(entry?.value == Array("{\"version\":1}".utf8))
            #expect(entry?.modRevision == written && revision >= written)
            try await kv.put("/vecshard/rebalance", [1, 2, 3])
            try await kv.put("/vecshard0", [9]) // shares the prefix's bytes but not the "/vecshard/" prefix
            let listed = try await kv.list(prefix: "/vecshard/")
            #expect(listed.entries.map(\.key) == ["/vecshard/rebalance", "/vecshard/topology"])
            #expect(try await kv.delete("/vecshard/rebalance") == 1)
            #expect(try await kv.get("/vecshard/rebalance").entry == nil)
        }
    }

    @Test func compareAndSwapWritesOnlyOverTheRevisionItNames() async throws {
        try await withEtcd { kv in
            let created = try #require(try await kv.compareAndSwap("/t", expectedModRevision: 0, [1]))
            #expect(try await kv.compareAndSwap("/t", expectedModRevision: 0, [2]) == nil, "it exists now")
            let second = try #require(try await kv.compareAndSwap("/t", expectedModRevision: created, [3]))
            #expect(second > created)
            #expect(try await kv.compareAndSwap("/t", expectedModRevision: created, [4]) == nil, "a stale revision changes nothing")
            #expect(try await kv.get("/t").entry?.value == [3])
        }
    }

    @Test func watchDeliversPutsAndDeletesInOrderAndResumesFromARevision() async throws {
        try await withEtcd { kv in
            let first = try await kv.put("/w/a", [1])
            var events: [(String, EtcdEvent.Kind, [UInt8], Int64)] = []
            // From the first write's revision: what happened before the watch started is delivered too.
            let watch = kv.watch(prefix: "/w/", startRevision: first)
            var iterator = watch.makeAsyncIterator()
            try await kv.put("/w/b", [2])
            try await kv.put("/x", [9]) // outside the prefix
            try await kv.delete("/w/a")
            while events.count < 3, let response = try await iterator.next() {
                for e in response.events { events.append((String(decoding: e.kv.key, as: UTF8.self), e.kind, e.kv.value, e.kv.modRevision)) }
            }
            #expect(events.map(\.0) == ["/w/a", "/w/b", "/w/a"])
            #expect(events.map(\.1) == [.put, .put, .delete])
            #expect(events.map(\.2) == [[1], [2], []])
            #expect(events[0].3 == first && events[1].3 < events[2].3)
            // A new watch from the revision after the last event seen misses nothing and repeats nothing.
            try await kv.put("/w/c", [3])
            var resumed = kv.watch(prefix: "/w/", startRevision: events[2].3 + 1).makeAsyncIterator()
            var keys: [String] = []
            while keys.isEmpty, let response = try await resumed.next() {
                keys += response.events.map { String(decoding: $0.kv.key, as: UTF8.self) }
            }
            #expect(keys == ["/w/c"])
        }
    }

    @Test func aWatchEndsWithAnErrorWhenEtcdDies() async throws {
        let etcd = try EtcdProcess()
        defer { etcd.stop() }
        let http = HTTP2Client(group: MultiThreadedEventLoopGroup.singleton)
        let kv = EtcdKV(endpoints: [Peer(host: "127.0.0.1", port: etcd.clientPort)], http: http, timeout: .seconds(2))
        for _ in 0..<200 where (try? await kv.get("/probe")) == nil { try await Task.sleep(nanoseconds: 50_000_000) }
        var iterator = kv.watch(prefix: "/w/", startRevision: 0).makeAsyncIterator()
        try await kv.put("/w/a", [1])
        #expect(try await iterator.next()?.events.count ?? 0 >= 0)
        etcd.kill()
        var failed = false
        do {
            while try await iterator.next() != nil {}
        } catch {
            failed = true
        }
        #expect(failed, "a broken watch stream must end with an error, not quietly")
        await http.shutdown()
    }

    @Test func leasesAreGrantedKeptAliveAndTheirKeysGoWithThem() async throws {
        try await withEtcd { kv in
            let (lease, ttl) = try await kv.grantLease(ttlSeconds: 5)
            #expect(lease != 0 && ttl == 5)
            try await kv.put("/routers/r1", [1], lease: lease)
            #expect(try await kv.get("/routers/r1").entry?.lease == lease)
            #expect(try await kv.keepAlive(lease: lease) == 5)
            try await kv.revoke(lease: lease)
            #expect(try await kv.get("/routers/r1").entry == nil, "a revoked lease's keys are gone")
            #expect(try await kv.keepAlive(lease: lease) == 0, "an unknown lease answers TTL 0")
        }
    }

    @Test func aCompareOverAKeyRangeFailsWhenAKeyInItChanged() async throws {
        try await withEtcd { kv in
            try await kv.put("/routers/a", [1])
            let (_, listed) = try await kv.list(prefix: "/routers/")
            let prefix = Array("/routers/".utf8)
            func guarded() async throws -> Bool {
                try await kv.txn(EtcdTxnRequest(compare: [EtcdCompare(key: prefix, rangeEnd: EtcdKV.prefixEnd(prefix), .modRevision(listed + 1), .less)],
                                                success: [.put(EtcdPutRequest(key: Array("/rebalance".utf8), value: [1]))])).succeeded
            }
            #expect(try await guarded(), "nothing under /routers/ changed since the listing")
            try await kv.put("/routers/b", [2])
            #expect(try await guarded() == false, "a router registered since the listing")
        }
    }

    @Test func anUnreachableEtcdIsAClearError() async throws {
        let http = HTTP2Client(group: MultiThreadedEventLoopGroup.singleton)
        let kv = EtcdKV(endpoints: [Peer(host: "127.0.0.1", port: EtcdProcess.freePort())], http: http, timeout: .seconds(1))
        await #expect {
            _ = try await kv.get("/x")
        } throws: { error in
            "\(error)".contains("no etcd endpoint answered")
        }
        await http.shutdown()
    }

    @Test func transactionMessagesRoundTrip() throws {
        let txn = EtcdTxnRequest(compare: [EtcdCompare(key: [1], .modRevision(7)), EtcdCompare(key: [2], .value([3]), .notEqual),
                                           EtcdCompare(key: [4], .createRevision(0))],
                                 success: [.put(EtcdPutRequest(key: [1], value: [5])), .deleteRange(EtcdDeleteRangeRequest(key: [2]))],
                                 failure: [.range(EtcdRangeRequest(key: [1]))])
        #expect(try EtcdTxnRequest(serializedBytes: txn.serializedBytes()) == txn)
        #expect(EtcdKV.prefixEnd(Array("/a/".utf8)) == Array("/a0".utf8))
        #expect(EtcdKV.prefixEnd([0x61, 0xff]) == [0x62])
        #expect(EtcdKV.prefixEnd([0xff]) == [0])
    }
}

@Suite(.serialized) struct EtcdTopologyStoreTests {
    static func topology(_ version: UInt64, shards: [String] = ["s0"]) -> Topology {
        Topology(version: version, groups: [ShardGroup(name: "main", shards: shards.enumerated().map {
            ShardDescriptor(name: $0.element, replicas: ["127.0.0.1:\(7100 + $0.offset)"])
        })])
    }

    @Test func urlsParseOrSayWhatIsWrong() throws {
        let url = try EtcdURL("etcd://127.0.0.1:2379,10.0.0.2:2379/vecshard/")
        #expect(url.endpoints == [Peer(host: "127.0.0.1", port: 2379), Peer(host: "10.0.0.2", port: 2379)])
        #expect(url.prefix == "/vecshard" && url.topologyKey == "/vecshard/topology")
        for (bad, says) in [("http://h:1/p", "does not start with etcd://"), ("etcd://h:1", "no key prefix"), ("etcd://h/p", "is not HOST:PORT"),
                            ("etcd://h:1/", "empty key prefix"), ("etcd://h:1,/p", "is not HOST:PORT"), ("etcd://h:1/a//b", "empty segment")] {
            #expect(throws: EtcdURLError.self, "\(bad)") { try EtcdURL(bad) }
            #expect((try? EtcdURL(bad)) == nil)
            do { _ = try EtcdURL(bad) } catch { #expect("\(error)".contains(says), "\(bad): \(error)") }
        }
    }

    @Test func seedReadAndReplaceWithIfMatchAgainstARealEtcd() async throws {
        let etcd = try EtcdProcess()
        defer { etcd.stop() }
        let http = HTTP2Client(group: MultiThreadedEventLoopGroup.singleton)
        let store = EtcdTopologyStore(url: try EtcdURL("etcd://127.0.0.1:\(etcd.clientPort)/vecshard"), http: http, timeout: .seconds(2))
        var ready = false
        for _ in 0..<200 where !ready {
            ready = (try? await store.read()) != nil
            if !ready { try await Task.sleep(nanoseconds: 50_000_000) }
        }
        #expect(try await store.read().topology == nil)
        try await store.replace(with: Self.topology(1), expectedVersion: nil)
        #expect(try await store.read().topology == Self.topology(1))
        // If-Match names the stored version; a stale one, a version that does not advance, an
        // invalid document: refused, nothing written.
        await #expect(throws: TopologyStoreError.versionMismatch(stored: 1, expected: 7)) {
            try await store.replace(with: Self.topology(2), expectedVersion: 7)
        }
        await #expect(throws: TopologyStoreError.self) { try await store.replace(with: Self.topology(1, shards: ["s0", "s1"]), expectedVersion: 1) }
        await #expect(throws: TopologyStoreError.self) { try await store.replace(with: Self.topology(2, shards: ["s0", "s0"]), expectedVersion: 1) }
        #expect(try await store.read().topology == Self.topology(1))
        try await store.replace(with: Self.topology(2, shards: ["s0", "s1"]), expectedVersion: 1)
        #expect(try await store.read().topology?.version == 2)
        // A prefix holding something that is not a topology: a clear error.
        try await store.kv.put("/vecshard/topology", Array("not json".utf8))
        await #expect {
            _ = try await store.read()
        } throws: { "\($0)".contains("holds something that is not a valid topology") }
        await http.shutdown()
    }
}
