import Foundation
import NIOPosix
import Testing
import VecShardEtcd
import VecShardHTTP
import VecShardProto
import VecShardRouting

/// A real etcd (Debian's etcd-server, installed by scripts/bootstrap.sh) on 127.0.0.1 with
/// ephemeral ports and a temporary data directory, stopped by the test: the messages of
/// EtcdMessages.swift are checked against etcd itself, not only against our own encoder.
final class EtcdProcess: @unchecked Sendable {
    let process = Process()
    let dataDir: String
    let clientPort: Int

    static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    init() throws {
        dataDir = FileManager.default.temporaryDirectory.appendingPathComponent("vecshard-etcd-\(UUID().uuidString)").path
        clientPort = Self.freePort()
        let peerPort = Self.freePort()
        let client = "http://127.0.0.1:\(clientPort)", peer = "http://127.0.0.1:\(peerPort)"
        guard let etcd = ["/usr/bin/etcd", "/usr/local/bin/etcd"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw CocoaError(.fileNoSuchFile, userInfo: [NSLocalizedDescriptionKey: "etcd is not installed: run scripts/bootstrap.sh (it installs etcd-server)"])
        }
        process.executableURL = URL(fileURLWithPath: etcd)
        process.arguments = ["--name", "test", "--data-dir", dataDir, "--listen-client-urls", client, "--advertise-client-urls", client,
                             "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", "test=\(peer)",
                             "--logger", "zap", "--log-level", "error"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
    }

    var peer: Peer { Peer(host: "127.0.0.1", port: clientPort) }

    func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(atPath: dataDir)
    }
}

@Suite(.serialized) struct EtcdKVTests {
    /// Runs `body` with a started etcd and a client of it.
    func withEtcd(_ body: (EtcdKV) async throws -> Void) async throws {
        let etcd = try EtcdProcess()
        defer { etcd.stop() }
        let http = HTTP2Client(group: MultiThreadedEventLoopGroup.singleton)
        let kv = EtcdKV(endpoints: [etcd.peer], http: http, timeout: .seconds(2))
        // Ready when it answers a read.
        var ready = false
        for _ in 0..<200 where !ready {
            ready = (try? await kv.get("/probe")) != nil
            if !ready { try await Task.sleep(nanoseconds: 50_000_000) }
        }
        #expect(ready, "etcd did not answer on \(etcd.peer)")
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
