import Foundation
import NIOCore
import NIOPosix
import Testing
import VecShardEngine
import VecShardHTTP

/// Distributed mode with real processes on 127.0.0.1: shard processes serve gRPC, a router
/// process routes REST requests to them by a topology file.
@Suite struct ClusterProcessTests {
    @Test func routerOverTwoShardProcessesIsExact() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("vecshard-cluster-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        var processes: [Process] = []
        defer { for p in processes where p.isRunning { p.terminate() } }
        var ports: [String: Int] = [:]
        for name in ["a", "b"] {
            let (process, port, _) = try await ProcessTests.startServer(dataDir: "\(root)/\(name)", extra: ["--role", "shard", "--shard-id", name])
            processes.append(process)
            ports[name] = port
        }
        let topologyFile = "\(root)/topology.yaml"
        try """
        version: 1
        groups:
          - name: main
            shards:
              - {name: a, replicas: ["127.0.0.1:\(ports["a"]!)"]}
              - {name: b, replicas: ["127.0.0.1:\(ports["b"]!)"]}
        """.write(toFile: topologyFile, atomically: true, encoding: .utf8)
        let validated = try await runVecshard(["topology", "validate", topologyFile]).output
        #expect(validated.contains("valid; version 1, 1 groups, 2 shards, 2 replicas"))
        let (router, routerPort, _) = try await ProcessTests.startServer(dataDir: "\(root)/router", extra: ["--role", "router", "--topology", topologyFile])
        processes.append(router)

        try await withClient { client in
            let api = JSONClient(client: client, peer: Peer(host: "127.0.0.1", port: routerPort))
            let dim = 8, n = 300
            #expect(try await api.call("PUT", "/v1/collections/c", ["dimension": dim, "metric": "l2", "index": ["type": "flat"]]).status == 200)
            var vectors: [[Float]] = []
            for i in 0..<n { vectors.append((0..<dim).map { Float(($0 * 7919 + i * 104_729) % 1000) / 100 }) }
            let points = vectors.enumerated().map { ["id": "p\($0)", "vector": $1.map(Double.init)] as [String: Any] }
            #expect(try await api.call("POST", "/v1/collections/c/points", ["points": points]).json["upserted"] as? Int == n)
            let oracle = try makeIndex(spec: IndexSpec(kind: .flat), metric: .l2, dimension: dim)
            _ = try oracle.add(vectors.flatMap { $0 })
            for q in 0..<5 {
                let query: [Float] = (0..<dim).map { Float(($0 * 31 + q * 17) % 1000) / 100 }
                let answer = try await api.call("POST", "/v1/collections/c/search", ["vector": query.map(Double.init), "k": 7])
                let expected = try oracle.search(query, parameters: SearchParameters(k: 7))
                let results = answer.json["results"] as? [[String: Any]] ?? []
                #expect(results.map { $0["id"] as? String } == expected.map { "p\($0.id)" })
                #expect(results.map { Float(($0["score"] as? Double) ?? .nan) } == expected.map(\.score))
                #expect(answer.json["shards"] as? [String: Int] == ["asked": 2, "answered": 2])
            }
            let shards = (try await api.call("GET", "/admin/shards").json["shards"] as? [[String: Any]]) ?? []
            let counts = shards.map { ($0["points"] as? Int) ?? 0 }
            #expect(counts.count == 2 && counts.reduce(0, +) == n && counts.allSatisfy { $0 > 0 }, "\(counts)")
            #expect(try await api.call("GET", "/v1/collections/c/points/p42").json["id"] as? String == "p42")
            #expect(try await api.call("POST", "/v1/collections/c/points/delete", ["ids": ["p42"]]).json["deleted"] as? Int == 1)
            let bad = try await api.call("POST", "/v1/collections/c/search", ["vector": [1, 2]])
            #expect(bad.status == 400 && errorMessage(bad.json).contains("dimension 2"))
        }
        for p in processes { kill(p.processIdentifier, SIGTERM) }
        for p in processes {
            for _ in 0..<200 where p.isRunning { try await Task.sleep(nanoseconds: 50_000_000) }
            #expect(!p.isRunning && p.terminationStatus == 0)
        }
    }

    @Test func invalidTopologyFilesAreRejectedWithTheReason() async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("topo-\(UUID().uuidString).yaml").path
        defer { try? FileManager.default.removeItem(atPath: file) }
        try "version: 1\ngroups:\n  - name: g\n    shards: []\n".write(toFile: file, atomically: true, encoding: .utf8)
        #expect(try await runVecshard(["topology", "validate", file]).output.contains("shard group 'g' has no shards"))
        try "version: 1\n".write(toFile: file, atomically: true, encoding: .utf8)
        #expect(try await runVecshard(["topology", "validate", file]).output.contains("missing field groups"))
    }
}

/// A Python grpcio client (stubs generated from proto/ at test time) calls every method of a
/// real shard process, storage included.
@Suite struct ShardProcessInteropTests {
    @Test func pythonGrpcioClientCallsEveryMethodOfARealShard() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("vecshard-pyshard-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let (shard, port, _) = try await ProcessTests.startServer(dataDir: "\(root)/data", extra: ["--role", "shard", "--shard-id", "py"])
        defer { if shard.isRunning { shard.terminate() } }
        let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        // On a thread of its own: the Python client takes seconds, and blocking one of the two
        // threads of the cooperative pool that long starved the other tests into timeouts.
        let result = try await runTool(["python3", packageRoot.appendingPathComponent("Tests/VecShardRPCTests/Interop/grpc_peer.py").path, "shard-client",
                                        packageRoot.appendingPathComponent("proto").path, "\(root)/py", String(port)], timeout: 120)
        let output = result.output
        #expect(result.status == 0, "\(output)")
        #expect(output.contains("client done"), "\(output)")
    }
}

@Suite struct TopologyChangeTests {
    @Test func putAndFileReloadChangeTheTopologySafely() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("vecshard-topo-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        var processes: [Process] = []
        defer { for p in processes where p.isRunning { p.terminate() } }
        var ports: [String: Int] = [:]
        for name in ["a", "b", "c", "d"] {
            let (process, port, _) = try await ProcessTests.startServer(dataDir: "\(root)/\(name)", extra: ["--role", "shard", "--shard-id", name])
            processes.append(process)
            ports[name] = port
        }
        func topology(_ version: Int, groups: [(String, [String])]) -> String {
            var text = "version: \(version)\ngroups:\n"
            for (group, shards) in groups {
                text += "  - name: \(group)\n    shards:\n"
                for s in shards { text += "      - {name: \(s), replicas: [\"127.0.0.1:\(ports[s]!)\"]}\n" }
            }
            return text
        }
        let file = "\(root)/topology.yaml"
        try topology(1, groups: [("main", ["a"])]).write(toFile: file, atomically: true, encoding: .utf8)
        let (router, routerPort, _) = try await ProcessTests.startServer(dataDir: "\(root)/router", extra: ["--role", "router", "--topology", file])
        processes.append(router)
        try await withClient { client in
            let api = JSONClient(client: client, peer: Peer(host: "127.0.0.1", port: routerPort))
            _ = try await api.call("PUT", "/v1/collections/c", ["dimension": 2, "metric": "l2", "index": ["type": "flat"]])
            _ = try await api.call("POST", "/v1/collections/c/points", ["points": [["id": "x", "vector": [1, 2]]]])
            func put(_ body: [String: Any], ifMatch: String) async throws -> (Int, String) {
                let data = try JSONSerialization.data(withJSONObject: body)
                let r = try await client.execute(ClientRequest(method: "PUT", path: "/admin/topology", headers: ["if-match": ifMatch], body: ByteBuffer(bytes: data)),
                                                 to: Peer(host: "127.0.0.1", port: routerPort), timeout: .seconds(10))
                return (r.status, String(buffer: r.body))
            }
            func shard(_ s: String) -> [String: Any] { ["name": s, "replicas": ["127.0.0.1:\(ports[s]!)"]] }
            let stale = try await put(["version": 2, "groups": [["name": "main", "shards": [shard("a")]]]], ifMatch: "\"7\"")
            #expect(stale.0 == 412 && stale.1.contains("version is 1"))
            // Growing a group that holds data starts a rebalance (202), one at a time.
            let grow = try await put(["version": 2, "groups": [["name": "main", "shards": [shard("a"), shard("b")]]]], ifMatch: "\"1\"")
            #expect(grow.0 == 202 && grow.1.contains(#""state":"running""#), "\(grow)")
            var state = ""
            for _ in 0..<100 where state != "done" {
                state = try await api.call("GET", "/admin/rebalance").json["state"] as? String ?? ""
                if state != "done" { try await Task.sleep(nanoseconds: 50_000_000) }
            }
            #expect(state == "done")
            #expect(try await api.call("GET", "/admin/topology").json["version"] as? Int == 2)
            #expect(try await api.call("GET", "/v1/collections/c").json["count"] as? Int == 1)
            #expect(try await api.call("GET", "/v1/collections/c/points/x").json["id"] as? String == "x")
            let invalid = try await put(["version": 3, "groups": [["name": "main", "shards": []]]], ifMatch: "\"2\"")
            #expect(invalid.0 == 400 && invalid.1.contains("has no shards"))
            let abort = try await api.call("POST", "/admin/rebalance/abort")
            #expect(abort.status == 409 && (abort.json["error"] as? [String: Any])?["code"] as? String == "no_rebalance_running")
            let added = try await put(["version": 3, "groups": [["name": "main", "shards": [shard("a"), shard("b")]], ["name": "extra", "shards": [shard("c")]]]], ifMatch: "\"2\"")
            #expect(added.0 == 200, "\(added)")
            let described = try await api.call("GET", "/admin/shards")
            #expect((described.json["shards"] as? [[String: Any]])?.count == 3)
            #expect(try await api.call("GET", "/v1/collections/c").json["count"] as? Int == 1) // the collection now exists on c too
            // The file changes (as a ConfigMap update would): the router applies it.
            try topology(4, groups: [("main", ["a", "b"]), ("extra", ["c"]), ("more", ["d"])]).write(toFile: file, atomically: true, encoding: .utf8)
            var version = 0
            for _ in 0..<50 where version != 4 {
                try await Task.sleep(nanoseconds: 200_000_000)
                version = try await api.call("GET", "/admin/topology").json["version"] as? Int ?? 0
            }
            #expect(version == 4)
            #expect((try await api.call("GET", "/admin/shards").json["shards"] as? [[String: Any]])?.count == 4)
            // A second router on the same shards: a change that moves points is refused (until the
            // topology is in etcd, a rebalance needs every write to go through one router).
            let (second, _, _) = try await ProcessTests.startServer(dataDir: "\(root)/router2", extra: ["--role", "router", "--topology", file])
            processes.append(second)
            try await Task.sleep(nanoseconds: 1_800_000_000) // its health checks reach the shards
            let beside = try await put(["version": 5, "groups": [["name": "main", "shards": [shard("a")]], ["name": "extra", "shards": [shard("c")]],
                                                                 ["name": "more", "shards": [shard("d"), shard("b")]]]], ifMatch: "\"4\"")
            #expect(beside.0 == 409 && beside.1.contains("several_routers"), "\(beside)")
            #expect(try await api.call("GET", "/admin/topology").json["version"] as? Int == 4)
            kill(second.processIdentifier, SIGTERM)
            let search = try await api.call("POST", "/v1/collections/c/search", ["vector": [1, 2], "k": 1])
            #expect(search.json["shards"] as? [String: Int] == ["asked": 2, "answered": 1 + 1]) // collection c is not routed: first group only
        }
        for p in processes { kill(p.processIdentifier, SIGTERM) }
    }

    /// A replica added to a shard that holds data (a topology change that moves nothing, 200):
    /// even one that says it is serving (no --await-sync) is kept out of reads until it caught up
    /// from its peer, and then holds everything: with the old replica killed, every point is read.
    @Test func aReplicaAddedToAShardWithDataCatchesUpBeforeItServes() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("vecshard-addrep-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        var processes: [Process] = []
        defer { for p in processes where p.isRunning { p.terminate() } }
        let (a0, port0, _) = try await ProcessTests.startServer(dataDir: "\(root)/a0", extra: ["--role", "shard", "--shard-id", "a"])
        processes.append(a0)
        let file = "\(root)/topology.json"
        let v1: [String: Any] = ["version": 1, "groups": [["name": "main", "shards": [["name": "a", "replicas": ["127.0.0.1:\(port0)"]]]]]]
        try JSONSerialization.data(withJSONObject: v1).write(to: URL(fileURLWithPath: file))
        let (router, routerPort, _) = try await ProcessTests.startServer(dataDir: "\(root)/router", extra: ["--role", "router", "--topology", file])
        processes.append(router)
        try await withClient { client in
            let api = JSONClient(client: client, peer: Peer(host: "127.0.0.1", port: routerPort))
            _ = try await api.call("PUT", "/v1/collections/c", ["dimension": 2, "metric": "l2", "index": ["type": "flat"]])
            let points = (0..<300).map { ["id": "p\($0)", "vector": [Double($0), 1]] as [String: Any] }
            #expect(try await api.call("POST", "/v1/collections/c/points", ["points": points]).status == 200)
            let (a1, port1, _) = try await ProcessTests.startServer(dataDir: "\(root)/a1", extra: ["--role", "shard", "--shard-id", "a"])
            processes.append(a1)
            let v2: [String: Any] = ["version": 2, "groups": [["name": "main", "shards": [["name": "a", "replicas": ["127.0.0.1:\(port0)", "127.0.0.1:\(port1)"]]]]]]
            let r = try await client.execute(ClientRequest(method: "PUT", path: "/admin/topology", headers: ["if-match": "\"1\""],
                                                           body: ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: v2))),
                                             to: Peer(host: "127.0.0.1", port: routerPort), timeout: .seconds(10))
            #expect(r.status == 200, "\(String(buffer: r.body))")
            func replicas() async throws -> [[String: Any]] {
                let shards = try await api.call("GET", "/admin/shards").json["shards"] as? [[String: Any]] ?? []
                return shards.first?["replicas"] as? [[String: Any]] ?? []
            }
            let first = try await replicas().first { $0["address"] as? String == "127.0.0.1:\(port1)" }
            #expect(first?["state"] as? String != "serving", "the added replica holds nothing yet: \(first ?? [:])")
            var caughtUp = false
            for _ in 0..<100 where !caughtUp {
                let rs = try await replicas()
                caughtUp = rs.count == 2 && rs.allSatisfy { $0["state"] as? String == "serving" && $0["points"] as? Int == 300 }
                    && Set(rs.map { $0["checksum"] as? String ?? "" }).count == 1
                if !caughtUp { try await Task.sleep(nanoseconds: 100_000_000) }
            }
            let last = try await replicas()
            #expect(caughtUp, "\(last)")
            kill(a0.processIdentifier, SIGKILL)
            a0.waitUntilExit()
            var missing = 0
            for i in 0..<300 where try await api.call("GET", "/v1/collections/c/points/p\(i)").status != 200 { missing += 1 }
            #expect(missing == 0, "\(missing) points not served by the added replica")
        }
        for p in processes { kill(p.processIdentifier, SIGTERM) }
    }

    /// kill -9 of the router in the middle of a copy: the restarted router (same data dir, its
    /// topology file still the old one) resumes the rebalance from rebalance.json; afterwards
    /// every acknowledged write is there once with its last value and no deleted id is back.
    @Test func aRouterKilledMidRebalanceResumesItAndLosesNothing() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("vecshard-rbkill-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        var processes: [Process] = []
        defer { for p in processes where p.isRunning { p.terminate() } }
        var ports: [String: Int] = [:]
        for name in ["a", "b", "c", "d"] {
            let (process, port, _) = try await ProcessTests.startServer(dataDir: "\(root)/\(name)", extra: ["--role", "shard", "--shard-id", name])
            processes.append(process)
            ports[name] = port
        }
        func shard(_ s: String) -> [String: Any] { ["name": s, "replicas": ["127.0.0.1:\(ports[s]!)"]] }
        let file = "\(root)/topology.json"
        let v1: [String: Any] = ["version": 1, "groups": [["name": "main", "shards": ["a", "b", "c"].map(shard)]]]
        try JSONSerialization.data(withJSONObject: v1).write(to: URL(fileURLWithPath: file))
        let routerArgs = ["--role", "router", "--topology", file, "--rebalance-points-per-second", "300"]
        var (router, routerPort, _) = try await ProcessTests.startServer(dataDir: "\(root)/router", extra: routerArgs)
        processes.append(router)
        var expected: [String: [Double]?] = [:]
        try await withClient { client in
            var api = JSONClient(client: client, peer: Peer(host: "127.0.0.1", port: routerPort))
            _ = try await api.call("PUT", "/v1/collections/c", ["dimension": 2, "metric": "l2", "index": ["type": "flat"]])
            for batch in 0..<6 {
                let points = (batch * 500..<(batch + 1) * 500).map { ["id": "p\($0)", "vector": [Double($0), 0]] as [String: Any] }
                #expect(try await api.call("POST", "/v1/collections/c/points", ["points": points]).status == 200)
                for i in batch * 500..<(batch + 1) * 500 { expected["p\(i)"] = [Double(i), 0] }
            }
            let v2: [String: Any] = ["version": 2, "groups": [["name": "main", "shards": ["a", "b", "c", "d"].map(shard)]]]
            let data = try JSONSerialization.data(withJSONObject: v2)
            let started = try await client.execute(ClientRequest(method: "PUT", path: "/admin/topology", headers: ["if-match": "\"1\""], body: ByteBuffer(bytes: data)),
                                                   to: Peer(host: "127.0.0.1", port: routerPort), timeout: .seconds(10))
            #expect(started.status == 202, "\(String(buffer: started.body))")
            // Writes while it copies: updates and deletes, some of ids that move.
            for i in stride(from: 0, to: 3000, by: 13) {
                if i % 2 == 0 {
                    #expect(try await api.call("POST", "/v1/collections/c/points", ["points": [["id": "p\(i)", "vector": [Double(i), 1]]]]).status == 200)
                    expected["p\(i)"] = [Double(i), 1]
                } else {
                    #expect(try await api.call("POST", "/v1/collections/c/points/delete", ["ids": ["p\(i)"]]).status == 200)
                    expected["p\(i)"] = .some(nil)
                }
            }
            let during = try await api.call("GET", "/admin/rebalance").json
            #expect(during["state"] as? String == "running" && during["phase"] as? String == "copying", "\(during)")
            kill(router.processIdentifier, SIGKILL)
            router.waitUntilExit()
            (router, routerPort, _) = try await ProcessTests.startServer(dataDir: "\(root)/router", extra: routerArgs)
            processes.append(router)
            api = JSONClient(client: client, peer: Peer(host: "127.0.0.1", port: routerPort))
            var state = ""
            for _ in 0..<300 where state != "done" {
                state = try await api.call("GET", "/admin/rebalance").json["state"] as? String ?? ""
                if state != "done" { try await Task.sleep(nanoseconds: 50_000_000) }
            }
            #expect(state == "done")
            #expect(try await api.call("GET", "/admin/topology").json["version"] as? Int == 2)
            let live = expected.values.filter { $0 != nil }.count
            #expect(try await api.call("GET", "/v1/collections/c").json["count"] as? Int == live)
            // Each point once: the shards' counts add up to the collection's, and d got its share.
            let shards = try await api.call("GET", "/admin/shards").json["shards"] as? [[String: Any]] ?? []
            #expect(shards.reduce(0) { $0 + ($1["points"] as? Int ?? 0) } == live)
            #expect((shards.first { $0["name"] as? String == "d" }?["points"] as? Int ?? 0) > live / 8)
            var wrong: [String] = []
            for (id, vector) in expected {
                let got = try await api.call("GET", "/v1/collections/c/points/\(id)")
                if let vector {
                    if got.status != 200 || got.json["vector"] as? [Double] != vector { wrong.append(id) }
                } else if got.status != 404 { wrong.append("\(id) (deleted)") }
            }
            #expect(wrong.isEmpty, "\(wrong.prefix(10))")
        }
        for p in processes { kill(p.processIdentifier, SIGTERM) }
    }
}

/// Replicas: a dead replica costs latency, not answers; a dead shard is named.
@Suite struct ReplicaFailureTests {
    @Test func searchesSurviveAReplicaKillAndADeadShardIsNamed() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("vecshard-replicas-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        var processes: [String: Process] = [:]
        defer { for p in processes.values where p.isRunning { p.terminate() } }
        var ports: [String: Int] = [:]
        for replica in ["a-0", "a-1", "b-0", "b-1"] {
            let (process, port, _) = try await ProcessTests.startServer(dataDir: "\(root)/\(replica)",
                                                                        extra: ["--role", "shard", "--shard-id-from-pod-name", replica])
            processes[replica] = process
            ports[replica] = port
        }
        let file = "\(root)/topology.yaml"
        try """
        version: 1
        groups:
          - name: main
            shards:
              - {name: a, replicas: ["127.0.0.1:\(ports["a-0"]!)", "127.0.0.1:\(ports["a-1"]!)"]}
              - {name: b, replicas: ["127.0.0.1:\(ports["b-0"]!)", "127.0.0.1:\(ports["b-1"]!)"]}
        """.write(toFile: file, atomically: true, encoding: .utf8)
        let (router, routerPort, _) = try await ProcessTests.startServer(dataDir: "\(root)/router", extra: ["--role", "router", "--topology", file])
        processes["router"] = router
        try await withClient { client in
            let api = JSONClient(client: client, peer: Peer(host: "127.0.0.1", port: routerPort))
            #expect(try await api.call("PUT", "/v1/collections/c", ["dimension": 4, "metric": "l2", "index": ["type": "flat"]]).status == 200)
            let points = (0..<200).map { ["id": "p\($0)", "vector": [Double($0), 1, 2, 3]] as [String: Any] }
            let written = try await api.call("POST", "/v1/collections/c/points", ["points": points])
            #expect(written.json["upserted"] as? Int == 200 && written.json["failed_replicas"] == nil)

            // A stream of searches; one replica of shard a is SIGKILLed in the middle of it.
            let victim = processes["a-0"]!
            let failures = try await withThrowingTaskGroup(of: Int.self) { group in
                for t in 0..<4 {
                    group.addTask {
                        var failed = 0
                        for i in 0..<60 {
                            if t == 0 && i == 20 { kill(victim.processIdentifier, SIGKILL) }
                            let r = try await api.call("POST", "/v1/collections/c/search", ["vector": [Double(i), 1, 2, 3], "k": 3])
                            let ids = (r.json["results"] as? [[String: Any]])?.compactMap { $0["id"] as? String }
                            if r.status != 200 || ids?.first != "p\(i)" || (r.json["shards"] as? [String: Int])?["answered"] != 2 { failed += 1 }
                        }
                        return failed
                    }
                }
                return try await group.reduce(0, +)
            }
            #expect(failures == 0, "\(failures) of 240 searches failed while a replica died")
            // A write needs one in-sync replica by default: one that reaches shard a (20 ids: some
            // hash there) is acknowledged by a-1 and names the dead replica as failed.
            let write = try await api.call("POST", "/v1/collections/c/points", ["points": (0..<20).map { ["id": "new\($0)", "vector": [1, 1, 1, 1]] }])
            #expect(write.status == 200, "\(write)")
            #expect((write.json["failed_replicas"] as? [String])?.contains("127.0.0.1:\(ports["a-0"]!)") == true, "\(write.json)")

            // Both replicas of shard a gone: 503 naming it, or partial results when asked for.
            kill(processes["a-1"]!.processIdentifier, SIGKILL)
            let down = try await api.call("POST", "/v1/collections/c/search", ["vector": [5, 1, 2, 3], "k": 3])
            #expect(down.status == 503)
            #expect(errorMessage(down.json).contains("shards a did not answer"), "\(down.json)")
            let partial = try await api.call("POST", "/v1/collections/c/search", ["vector": [5, 1, 2, 3], "k": 3, "allow_partial": true])
            #expect(partial.status == 200)
            #expect(partial.json["partial"] as? Bool == true)
            #expect(partial.json["missing_shards"] as? [String] == ["a"])
            #expect(partial.json["shards"] as? [String: Int] == ["asked": 2, "answered": 1])
            // A batch touching the dead shard writes nothing, not even on the live one.
            let blocked = try await api.call("POST", "/v1/collections/c/points", ["points": (0..<20).map { ["id": "late\($0)", "vector": [2, 2, 2, 2]] }])
            #expect(blocked.status == 503 && errorMessage(blocked.json).contains("nothing was written"), "\(blocked)")
            let afterwards = try await api.call("POST", "/v1/collections/c/search", ["vector": [2, 2, 2, 2], "k": 1, "allow_partial": true])
            #expect((afterwards.json["results"] as? [[String: Any]])?.first?["id"] as? String != nil)
            #expect(((afterwards.json["results"] as? [[String: Any]])?.first?["id"] as? String)?.hasPrefix("late") == false)
        }
        for p in processes.values where p.isRunning { kill(p.processIdentifier, SIGTERM) }
    }
}
