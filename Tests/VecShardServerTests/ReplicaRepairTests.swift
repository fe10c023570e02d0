import Foundation
import NIOCore
import NIOPosix
import Synchronization
import Testing
import VecShardCluster
import VecShardSchema
import VecShardShardAPI
import VecShardHTTP
import VecShardProto
import VecShardRPC

/// Replica repair and hedged reads with real processes on 127.0.0.1: one shard, two replicas.
/// What the writers of the repair test saw acknowledged.
private final class WriteLog: Sendable {
    let acknowledged = Mutex<[String: [Double]?]>([:])  // id → vector, nil = deleted
    let failures = Mutex<[String]>([])
    let phase = Atomic<Int>(0)  // 0: before the kill, 1: a-1 down, 2: a-1 back, 3: stop
    let rounds = Atomic<Int>(0)
}

@Suite(.serialized) struct ReplicaRepairTests {
    /// Starts replicas `a-0`, `a-1` (extra flags per replica) and a router over them.
    private static func startShard(_ root: String, replicaFlags: [[String]], routerFlags: [String])
        async throws -> (processes: [String: Process], ports: [String: Int], routerPort: Int, topology: String) {
        var processes: [String: Process] = [:]
        var ports: [String: Int] = [:]
        for (i, flags) in replicaFlags.enumerated() {
            let name = "a-\(i)"
            let (process, port, _) = try await ProcessTests.startServer(dataDir: "\(root)/\(name)",
                                                                        extra: ["--role", "shard", "--shard-id-from-pod-name", name] + flags)
            processes[name] = process
            ports[name] = port
        }
        let file = "\(root)/topology.yaml"
        let addresses = replicaFlags.indices.map { "\"127.0.0.1:\(ports["a-\($0)"]!)\"" }.joined(separator: ", ")
        try """
        version: 1
        groups:
          - name: main
            shards:
              - {name: a, replicas: [\(addresses)]}
        """.write(toFile: file, atomically: true, encoding: .utf8)
        let (router, routerPort, _) = try await ProcessTests.startServer(dataDir: "\(root)/router",
                                                                         extra: ["--role", "router", "--topology", file] + routerFlags)
        processes["router"] = router
        return (processes, ports, routerPort, file)
    }

    /// Replica states as the router reports them in /admin/shards.
    private static func replicaStates(_ api: JSONClient) async throws -> [String] {
        let shards = (try await api.call("GET", "/admin/shards").json["shards"] as? [[String: Any]]) ?? []
        return shards.flatMap { ($0["replicas"] as? [[String: Any]] ?? []).compactMap { $0["state"] as? String } }
    }

    private static func waitUntilAllServing(_ api: JSONClient, seconds: Int = 30) async throws -> [String] {
        var states: [String] = []
        for _ in 0..<(seconds * 10) {
            states = try await replicaStates(api)
            if !states.isEmpty && states.allSatisfy({ $0 == "serving" }) { return states }
            try await Task.sleep(for: .milliseconds(100))
        }
        return states
    }

    /// Every point of collection `c` on one replica, read directly over gRPC: id → (vector, metadata).
    private static func contents(of port: Int, client: HTTP2Client) async throws -> [String: Point] {
        let replica = RemoteShard(name: "a", peer: Peer(host: "127.0.0.1", port: port), client: GRPCClient(http: client))
        let all = Mutex<[String: Point]>([:])
        try await replica.scan(ShardScan(collection: "c", batchSize: 500)) { batch in
            all.withLock { for p in batch { $0[p.id] = p } }
        }
        return all.withLock { $0 }
    }

    @Test func aReplicaKilledDuringWritesCatchesUpToExactlyItsPeer() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("vecshard-repair-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        var (processes, ports, routerPort, _) = try await Self.startShard(
            root, replicaFlags: [["--await-sync"], ["--await-sync"]],
            routerFlags: ["--min-in-sync-replicas", "1", "--health-check-interval-ms", "200"])
        defer { for p in processes.values where p.isRunning { p.terminate() } }

        try await withClient { client in
            let api = JSONClient(client: client, peer: Peer(host: "127.0.0.1", port: routerPort))
            // Both started with --await-sync: the router declares one the source, syncs the other.
            #expect(try await Self.waitUntilAllServing(api) == ["serving", "serving"])
            #expect(try await api.call("PUT", "/v1/collections/c", ["dimension": 4, "metric": "l2", "index": ["type": "flat"]]).status == 200)

            // Two writers on disjoint ids (each id has one writer, so the last acknowledged write
            // of an id is its true state), upserting and deleting; a-1 is SIGKILLed after a while,
            // restarted later, and the writes go on through all of it.
            let log = WriteLog()
            let writers = Task { [log] in
                await withTaskGroup(of: Void.self) { group in
                    for w in 0..<2 {
                        group.addTask {
                            var i = 0
                            while log.phase.load(ordering: .relaxed) < 3 {
                                i += 1
                                let ids = (0..<10).map { "w\(w)-\((i * 7 + $0 * 13) % 120)" }
                                if i % 5 == 0 {
                                    let r = try? await api.call("POST", "/v1/collections/c/points/delete", ["ids": Array(ids.prefix(3))])
                                    if r?.status == 200 { log.acknowledged.withLock { for id in ids.prefix(3) { $0[id] = .some(nil) } } }
                                    else { log.failures.withLock { $0.append("delete: \(String(describing: r))") } }
                                } else {
                                    let points = ids.enumerated().map { ["id": $1, "vector": [Double(i), Double(w), Double($0), 1.5],
                                                                         "metadata": ["round": i]] as [String: Any] }
                                    let r = try? await api.call("POST", "/v1/collections/c/points", ["points": points])
                                    if r?.status == 200 {
                                        log.acknowledged.withLock { for (k, id) in ids.enumerated() { $0[id] = [Double(i), Double(w), Double(k), 1.5] } }
                                    } else { log.failures.withLock { $0.append("upsert: \(String(describing: r))") } }
                                }
                                log.rounds.wrappingAdd(1, ordering: .relaxed)
                            }
                        }
                    }
                }
            }
            func waitRounds(_ n: Int) async throws {
                let target = log.rounds.load(ordering: .relaxed) + n
                while log.rounds.load(ordering: .relaxed) < target { try await Task.sleep(for: .milliseconds(10)) }
            }
            try await waitRounds(30)
            kill(processes["a-1"]!.processIdentifier, SIGKILL)
            log.phase.store(1, ordering: .relaxed)
            try await waitRounds(40)
            // Back on the same port and data directory; it takes writes at once, reads only after catch-up.
            let (restarted, _, _) = try await ProcessTests.startServer(dataDir: "\(root)/a-1", port: ports["a-1"]!,
                                                                       extra: ["--role", "shard", "--shard-id-from-pod-name", "a-1", "--await-sync"])
            processes["a-1"] = restarted
            log.phase.store(2, ordering: .relaxed)
            try await waitRounds(40)
            log.phase.store(3, ordering: .relaxed)
            await writers.value
            #expect(log.failures.withLock { $0 }.isEmpty, "writes failed: \(log.failures.withLock { $0.prefix(3) })")

            #expect(try await Self.waitUntilAllServing(api) == ["serving", "serving"])
            let a0 = try await Self.contents(of: ports["a-0"]!, client: client)
            let a1 = try await Self.contents(of: ports["a-1"]!, client: client)
            #expect(a1.count == a0.count, "a-1 holds \(a1.count) points, a-0 \(a0.count)")
            let differing = a0.keys.filter { a1[$0] != a0[$0] } + a1.keys.filter { a0[$0] == nil }
            #expect(differing.isEmpty, "points that differ between the replicas: \(differing.sorted().prefix(10))")
            // And both hold exactly what was acknowledged.
            let expected = log.acknowledged.withLock { $0 }
            for (id, vector) in expected {
                if let vector {
                    #expect(a0[id]?.vector.map(Double.init) == vector, "\(id): acknowledged \(vector), a-0 has \(String(describing: a0[id]?.vector))")
                } else {
                    #expect(a0[id] == nil, "\(id) was deleted but is on a-0")
                }
            }
            #expect(a0.count == expected.values.filter { $0 != nil }.count)
            // The catch-up really copied what a-1 missed while it was down (the router logs each sync).
            let routerLog = (try? String(contentsOfFile: "\(root)/router.log", encoding: .utf8)) ?? ""
            let synced = routerLog.split(separator: "\n").filter {
                $0.contains("replica 127.0.0.1:\(ports["a-1"]!) of shard 'a' is up to date (from 127.0.0.1:\(ports["a-0"]!)")
            }
            let received = synced.last.flatMap { line in line.range(of: " received").flatMap { Int(line[..<$0.lowerBound].split(separator: " ").last ?? "") } } ?? 0
            #expect(received > 0 && synced.last?.contains(", changes:") == true, "router log: \(synced)")
            // And the two replicas show the same version and checksum in /admin/shards.
            var replicas: [[String: Any]] = []
            for _ in 0..<50 {
                let shards = try await api.call("GET", "/admin/shards").json["shards"] as? [[String: Any]] ?? []
                replicas = shards.first?["replicas"] as? [[String: Any]] ?? []
                if replicas.count == 2, replicas[0]["checksum"] as? String == replicas[1]["checksum"] as? String,
                   replicas[0]["version"] as? String == replicas[1]["version"] as? String { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(replicas.count == 2 && replicas[0]["checksum"] as? String != nil)
            #expect(replicas.count == 2 && replicas[0]["checksum"] as? String == replicas[1]["checksum"] as? String, "\(replicas)")
            #expect(replicas.count == 2 && replicas[0]["version"] as? String == replicas[1]["version"] as? String, "\(replicas)")
            #expect(replicas.allSatisfy { $0["lag"] as? Int == 0 && $0["state"] as? String == "serving" }, "\(replicas)")
            print("repair test: \(expected.count) ids written, \(a0.count) live; \(synced.last ?? "no sync logged")")
        }
        for p in processes.values where p.isRunning { kill(p.processIdentifier, SIGTERM) }
    }

    @Test func aSlowReplicaDoesNotSlowP99BeyondTheHedgingDelay() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("vecshard-hedge-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        // a-0 answers every search 250 ms late. The router learns to avoid it (expected cost) and hedges
        // the reads that still meet it: neither may show in p99.
        let delay = 250.0
        let (processes, ports, routerPort, _) = try await Self.startShard(
            root, replicaFlags: [["--inject-search-delay-ms", "\(Int(delay))"], []], routerFlags: [])
        defer { for p in processes.values where p.isRunning { p.terminate() } }

        try await withClient { client in
            let api = JSONClient(client: client, peer: Peer(host: "127.0.0.1", port: routerPort))
            #expect(try await api.call("PUT", "/v1/collections/c", ["dimension": 4, "metric": "l2", "index": ["type": "flat"]]).status == 200)
            let points = (0..<100).map { ["id": "p\($0)", "vector": [Double($0), 1, 2, 3]] as [String: Any] }
            #expect(try await api.call("POST", "/v1/collections/c/points", ["points": points]).status == 200)

            // Eight clients at once, so that reads spread over both replicas (fewest in flight
            // first) and many meet the slow one.
            func latencies(_ api: JSONClient, perClient n: Int) async throws -> [Double] {
                try await withThrowingTaskGroup(of: [Double].self) { group in
                    for c in 0..<8 {
                        group.addTask {
                            var out: [Double] = []
                            for i in 0..<n {
                                let q = (c * n + i) % 100
                                let start = ContinuousClock.now
                                let r = try await api.call("POST", "/v1/collections/c/search", ["vector": [Double(q), 1, 2, 3], "k": 3])
                                out.append((ContinuousClock.now - start) / .milliseconds(1))
                                #expect(r.status == 200 && (r.json["results"] as? [[String: Any]])?.first?["id"] as? String == "p\(q)")
                            }
                            return out
                        }
                    }
                    return try await group.reduce(into: []) { $0 += $1 }.sorted()
                }
            }
            let hedged = try await latencies(api, perClient: 25)
            let p99 = hedged[hedged.count * 99 / 100]
            #expect(p99 < delay / 2, "p99 \(p99) ms with hedging; the slow replica adds \(delay) ms")
            // The control: the injected delay is real (a-0 asked directly over gRPC).
            let slow = RemoteShard(name: "a", peer: Peer(host: "127.0.0.1", port: ports["a-0"]!), client: GRPCClient(http: client))
            let start = ContinuousClock.now
            _ = try await slow.search(ShardSearch(collection: "c", queries: [ShardQuery(vector: [1, 1, 2, 3], k: 3)]))
            let direct = (ContinuousClock.now - start) / .milliseconds(1)
            #expect(direct >= delay, "a-0 answered in \(direct) ms")
            print("hedging test: p99 \(p99) ms through the router (\(hedged.count) searches), \(direct) ms from the slow replica directly")
        }
        for p in processes.values where p.isRunning { kill(p.processIdentifier, SIGTERM) }
    }
}
