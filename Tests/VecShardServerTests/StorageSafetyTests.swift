import Foundation
import Testing
import VecShardHTTP
@testable import VecShardServer

/// The service over storage that meets damage, poison vectors, limits and a second process:
/// a damaged collection answers `data_loss` while the others serve, `vecshard recover`
/// accepts the loss, bad vectors are 400 with the existing codes, the collection limit is
/// 400 `limit_exceeded`, and a second service on the same data directory exits.
@Suite("Storage safety through the service", .serialized)
struct StorageSafetyTests {
    func temporaryDataDirectory(_ label: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("vecshard-\(label)-\(UUID().uuidString)").path
    }

    @Test func aDamagedCollectionAnswersDataLossTheOthersServeAndRecoverAcceptsTheLoss() async throws {
        let dataDir = temporaryDataDirectory("damaged")
        defer { try? FileManager.default.removeItem(atPath: dataDir) }
        try await withService(shards: 1, dataDirectory: dataDir) { _, peer in
            try await withClient { client in
                let api = JSONClient(client: client, peer: peer)
                for name in ["good", "bad"] {
                    #expect(try await api.call("PUT", "/v1/collections/\(name)", ["dimension": 2, "metric": "l2", "index": ["type": "flat"]]).status == 200)
                }
                _ = try await api.call("POST", "/v1/collections/good/points", ["points": [["id": "g", "vector": [1, 2]]]])
                for b in 0..<5 {
                    let r = try await api.call("POST", "/v1/collections/bad/points", ["points": [["id": "b\(b)", "vector": [Double(b), 1]]]])
                    #expect(r.status == 200)
                }
            }
        }
        // One byte of the first record of the bad collection's log: four acknowledged records follow it.
        let wal = dataDir + "/shards/s0/collections/bad/wal"
        let file = try FileManager.default.contentsOfDirectory(atPath: wal).filter { $0.hasPrefix("wal-") && $0.hasSuffix(".log") }.sorted().last!
        var bytes = try Data(contentsOf: URL(fileURLWithPath: wal + "/" + file))
        bytes[32 + 30] ^= 0x40
        try bytes.write(to: URL(fileURLWithPath: wal + "/" + file))

        try await withService(shards: 1, dataDirectory: dataDir) { _, peer in
            try await withClient { client in
                let api = JSONClient(client: client, peer: peer)
                let good = try await api.call("GET", "/v1/collections/good")
                #expect(good.status == 200 && good.json["count"] as? Int == 1)
                let bad = try await api.call("GET", "/v1/collections/bad")
                #expect(bad.status == 500 && errorCode(bad.json) == "data_loss", "\(bad)")
                #expect(errorMessage(bad.json).contains(file) && errorMessage(bad.json).contains("offset 32")
                        && errorMessage(bad.json).contains("4 valid record"), "\(errorMessage(bad.json))")
                let search = try await api.call("POST", "/v1/collections/bad/search", ["vector": [1, 1], "k": 1])
                #expect(search.status == 500 && errorCode(search.json) == "data_loss")
                let shards = try await api.call("GET", "/admin/shards")
                let s0 = (shards.json["shards"] as? [[String: Any]])?.first
                let refused = s0?["refused_collections"] as? [[String: Any]]
                #expect(refused?.first?["name"] as? String == "bad")
                #expect((refused?.first?["error"] as? [String: Any])?["code"] as? String == "data_loss")
                let maintenance = (s0?["maintenance"] as? [String: Any])?["good"] as? [String: Any]
                #expect(maintenance?["failed_seals"] as? Int == 0 && maintenance?["quarantined_points"] as? Int == 0
                        && maintenance?["disk_full"] as? Bool == false && maintenance?["last_error"] is NSNull, "\(String(describing: s0))")
            }
        }
        // The operator's path: a report first (exit 1), then the accepted loss.
        let report = try await runVecshard(["recover", "--data-dir", dataDir])
        #expect(report.status != 0 && report.stdout.contains("'bad': REFUSED") && report.stdout.contains(file), "\(report.output)")
        let accepted = try await runVecshard(["recover", "--data-dir", dataDir, "--collection", "bad", "--accept-data-loss"])
        #expect(accepted.status == 0 && accepted.stdout.contains("DATA LOSS ACCEPTED"), "\(accepted.output)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: wal).contains { $0.hasPrefix(file + ".damaged-") })
        try await withService(shards: 1, dataDirectory: dataDir) { _, peer in
            try await withClient { client in
                let api = JSONClient(client: client, peer: peer)
                let bad = try await api.call("GET", "/v1/collections/bad")
                #expect(bad.status == 200 && bad.json["count"] as? Int == 0, "the records after the damage are gone: \(bad.json)")
                #expect(try await api.call("POST", "/v1/collections/bad/points", ["points": [["id": "new", "vector": [1, 1]]]]).status == 200)
            }
        }
    }

    @Test func serveLogsTheDamageAsAWarningAndAcceptWALDamageOpensTheCollection() async throws {
        let dataDir = temporaryDataDirectory("accept-flag")
        defer {
            try? FileManager.default.removeItem(atPath: dataDir)
            try? FileManager.default.removeItem(atPath: dataDir + ".log")
        }
        try await withService(shards: 1, dataDirectory: dataDir) { _, peer in
            try await withClient { client in
                let api = JSONClient(client: client, peer: peer)
                _ = try await api.call("PUT", "/v1/collections/bad", ["dimension": 2, "metric": "l2", "index": ["type": "flat"]])
                for b in 0..<3 { _ = try await api.call("POST", "/v1/collections/bad/points", ["points": [["id": "b\(b)", "vector": [Double(b), 1]]]]) }
            }
        }
        let wal = dataDir + "/shards/s0/collections/bad/wal"
        let file = try FileManager.default.contentsOfDirectory(atPath: wal).filter { $0.hasPrefix("wal-") && $0.hasSuffix(".log") }.sorted().last!
        var bytes = try Data(contentsOf: URL(fileURLWithPath: wal + "/" + file))
        bytes[32 + 30] ^= 0x40
        try bytes.write(to: URL(fileURLWithPath: wal + "/" + file))
        for accept in [false, true] {
            let (process, port, log) = try await ProcessTests.startServer(dataDir: dataDir, extra: ["--shards", "1"] + (accept ? ["--accept-wal-damage"] : []))
            let answer = try await runTool(["curl", "-s", "-w", " %{http_code}", "--max-time", "5", "http://127.0.0.1:\(port)/v1/collections/bad"], timeout: 10).stdout
            kill(process.processIdentifier, SIGTERM)
            process.waitUntilExit()
            let text = try String(contentsOf: log, encoding: .utf8)
            let warnings = text.split(separator: "\n").filter { $0.contains("warning") && $0.contains(file) }
            if accept {
                #expect(answer.hasSuffix(" 200") && answer.contains(#""count":0"#), "\(answer)")
                #expect(warnings.contains { $0.contains("wal_damage_accepted") }, "\(text)")
            } else {
                #expect(answer.hasSuffix(" 500") && answer.contains("data_loss"), "\(answer)")
                #expect(warnings.contains { $0.contains("wal_damage_refused") }, "\(text)")
            }
        }
    }

    @Test func vectorsTheIndexCannotTakeAre400WithTheExistingCodes() async throws {
        try await withService(shards: 2) { _, peer in
            try await withClient { client in
                let api = JSONClient(client: client, peer: peer)
                _ = try await api.call("PUT", "/v1/collections/cos", ["dimension": 4, "metric": "cosine", "index": ["type": "hnsw"]])
                _ = try await api.call("PUT", "/v1/collections/l2", ["dimension": 4, "metric": "l2", "index": ["type": "flat"]])
                for v in [[1e-30, 1e-30, 1e-30, 1e-30], [1e-45, 0, 0, 0]] {
                    let r = try await api.call("POST", "/v1/collections/cos/points", ["points": [["id": "tiny", "vector": v]]])
                    #expect(r.status == 400 && errorCode(r.json) == "zero_vector" && errorMessage(r.json).contains("'tiny'"), "\(v): \(r)")
                }
                let big = try await api.call("POST", "/v1/collections/l2/points", ["points": [["id": "big", "vector": [3e19, 0, 0, 0]]]])
                #expect(big.status == 400 && errorCode(big.json) == "non_finite_component" && errorMessage(big.json).contains("'big'"), "\(big)")
                #expect(try await api.call("GET", "/v1/collections/cos").json["count"] as? Int == 0)
            }
        }
    }

    @Test func creatingMoreThanMaxCollectionsIs400NamingTheLimit() async throws {
        try await withService(shards: 2, storage: { $0.maxCollections = 2 }) { _, peer in
            try await withClient { client in
                let api = JSONClient(client: client, peer: peer)
                for name in ["a", "b"] {
                    #expect(try await api.call("PUT", "/v1/collections/\(name)", ["dimension": 2, "metric": "l2"]).status == 200)
                }
                let third = try await api.call("PUT", "/v1/collections/c", ["dimension": 2, "metric": "l2"])
                #expect(third.status == 400 && errorCode(third.json) == "limit_exceeded" && errorMessage(third.json).contains("--max-collections 2"), "\(third)")
                let list = try await api.call("GET", "/v1/collections")
                #expect((list.json["collections"] as? [[String: Any]])?.compactMap { $0["name"] as? String } == ["a", "b"])
                #expect(try await api.call("GET", "/v1/collections/c").status == 404)
            }
        }
    }

    @Test func aSecondServiceOnTheSameDataDirectoryExitsNamingItAndTheHolder() async throws {
        let dataDir = temporaryDataDirectory("locked")
        defer { try? FileManager.default.removeItem(atPath: dataDir) }
        try await withService(shards: 1, dataDirectory: dataDir) { _, _ in
            let second = try await runVecshard(["serve", "--data-dir", dataDir, "--port", "0", "--shards", "1"], timeout: 30)
            #expect(second.status != 0 && !second.stderr.contains("killed after"), "\(second.output)")
            #expect(second.output.contains(dataDir) && second.output.contains("pid \(getpid())"), "\(second.output)")
        }
    }
}

/// Disk use and a full disk, through the service.
@Suite("Disk use and a full disk through the service", .serialized)
struct DiskThroughServiceTests {
    @Test func aNewCollectionHoldsAboutOneMiBOfLogPerShard() async throws {
        try await withService(shards: 4) { _, peer in
            try await withClient { client in
                let api = JSONClient(client: client, peer: peer)
                let created = try await api.call("PUT", "/v1/collections/small", ["dimension": 4, "metric": "cosine"])
                let bytes = created.json["disk_bytes"] as? Int ?? -1
                #expect(bytes > 0 && bytes <= 4 << 20, "4 shards x at most 1 MiB, not 4 x 64 MiB: \(bytes)")
            }
        }
    }

    func run(_ command: [String]) async throws -> Int32 { try await runTool(command, timeout: 30).status }

    /// A real full file system: an 8 MiB tmpfs (skipped where mounting is not allowed).
    @Test func aServiceWhoseDiskFilledStillStartsServesReadsAndAnswers507() async throws {
        let mountPoint = FileManager.default.temporaryDirectory.appendingPathComponent("vecshard-svc-tmpfs-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: mountPoint) }
        guard try await run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", mountPoint]) == 0 else { return }
        defer {
            // Synchronously, before the mount point is removed (also when an expectation threw).
            let umount = Process()
            umount.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            umount.arguments = ["umount", mountPoint]
            if (try? umount.run()) != nil { umount.waitUntilExit() }
        }
        let dataDir = mountPoint + "/data", filler = mountPoint + "/filler"
        let points = (0..<20).map { ["id": "p\($0)", "vector": [Double($0), 1, 0, 1]] as [String: Any] }
        try await withService(shards: 1, dataDirectory: dataDir) { _, peer in
            try await withClient { client in
                let api = JSONClient(client: client, peer: peer)
                #expect(try await api.call("PUT", "/v1/collections/c", ["dimension": 4, "metric": "l2"]).status == 200)
                #expect(try await api.call("POST", "/v1/collections/c/points", ["points": points]).status == 200)
                _ = try await run(["dd", "if=/dev/zero", "of=\(filler)", "bs=64k", "count=200"])
                var answer = 200
                for i in 0..<100 where answer == 200 {
                    let batch = (0..<500).map { ["id": "f\(i)-\($0)", "vector": [1, 2, 3, Double($0)]] as [String: Any] }
                    answer = try await api.call("POST", "/v1/collections/c/points", ["points": batch]).status
                }
                #expect(answer == 507)
            }
        }
        // Restarting on the full disk: it starts, reads work, writes and creates answer 507.
        try await withService(shards: 1, dataDirectory: dataDir) { _, peer in
            try await withClient { client in
                let api = JSONClient(client: client, peer: peer)
                let got = try await api.call("GET", "/v1/collections/c/points/p3")
                #expect(got.status == 200, "\(got)")
                let created = try await api.call("PUT", "/v1/collections/more", ["dimension": 4, "metric": "l2"])
                #expect(created.status == 507 && errorCode(created.json) == "disk_full", "\(created)")
                let list = try await api.call("GET", "/v1/collections")
                #expect((list.json["collections"] as? [[String: Any]])?.compactMap { $0["name"] as? String } == ["c"])
                try FileManager.default.removeItem(atPath: filler)
                #expect(try await api.call("POST", "/v1/collections/c/points", ["points": [["id": "after", "vector": [1, 1, 1, 1]]]]).status == 200)
                #expect(try await api.call("PUT", "/v1/collections/more", ["dimension": 4, "metric": "l2"]).status == 200)
            }
        }
    }
}
