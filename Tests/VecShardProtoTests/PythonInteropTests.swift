import Foundation
import Testing
import VecShardPrimitives
@testable import VecShardProto

/// The Swift codec against Python's protobuf (classes generated from proto/ by grpcio-tools at
/// test time): random messages encoded by either side decode identically on the other, and the
/// bytes are equal where the encoding is canonical. Map entry order is not canonical in protobuf
/// (upb even orders "deterministic" output its own way), so messages with maps are compared by
/// value on both sides instead.
@Suite struct PythonInteropTests {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Message name in the .proto → (decode + re-encode with the Swift codec).
    static let codecs: [String: @Sendable ([UInt8]) throws -> [UInt8]] = [
        "Point": { try PointMessage(serializedBytes: $0).serializedBytes() },
        "UpsertRequest": { try UpsertRequest(serializedBytes: $0).serializedBytes() },
        "SearchRequest": { try SearchRequest(serializedBytes: $0).serializedBytes() },
        "SearchResponse": { try SearchResponse(serializedBytes: $0).serializedBytes() },
        "CollectionInfo": { try CollectionInfoMessage(serializedBytes: $0).serializedBytes() },
        "CreateCollectionRequest": { try CreateCollectionRequest(serializedBytes: $0).serializedBytes() },
        "DeleteRequest": { try IDsRequest(serializedBytes: $0).serializedBytes() },
        "GetRequest": { try IDsRequest(serializedBytes: $0).serializedBytes() },
        "ScanRequest": { try ScanRequest(serializedBytes: $0).serializedBytes() },
        "StatsResponse": { try StatsResponse(serializedBytes: $0).serializedBytes() },
        "WriteResponse": { try WriteResponse(serializedBytes: $0).serializedBytes() },
        "SyncRequest": { try SyncRequest(serializedBytes: $0).serializedBytes() },
        "SyncResponse": { try SyncResponse(serializedBytes: $0).serializedBytes() },
    ]

    @Test func randomMessagesRoundTripThroughPythonProtobuf() async throws {
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("vecshard-proto-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: work) }
        let swiftDir = work.appendingPathComponent("swift")
        try FileManager.default.createDirectory(at: swiftDir, withIntermediateDirectories: true)

        var rng = SplitMix64(seed: 7)
        var written: [String: [UInt8]] = [:]
        for i in 0..<60 {
            let samples: [(String, [UInt8])] = [
                ("Point", randomPoint(&rng).serializedBytes()),
                ("UpsertRequest", UpsertRequest(collection: randomString(&rng), points: (0..<Int(rng.next() % 4)).map { _ in randomPoint(&rng) }).serializedBytes()),
                ("SearchRequest", randomSearchRequest(&rng).serializedBytes()),
                ("SearchResponse", randomSearchResponse(&rng).serializedBytes()),
                ("CollectionInfo", randomCollectionInfo(&rng).serializedBytes()),
                ("DeleteRequest", IDsRequest(collection: randomString(&rng), ids: (0..<Int(rng.next() % 5)).map { _ in randomString(&rng) }).serializedBytes()),
                ("ScanRequest", ScanRequest(collection: randomString(&rng), batchSize: UInt32(rng.next() % 3000),
                                            selector: rng.next() % 2 == 0 ? nil : PlacementSelectorMessage(
                                                shards: ["s0", "s1"], owner: "s1", exclude: rng.next() % 2 == 0,
                                                routing: rng.next() % 2 == 0 ? nil : SelectorRoutingMessage(
                                                    groups: [.init(name: "main", shards: ["s0", "s1"]), .init(name: randomString(&rng), shards: ["b0"])],
                                                    shardKey: "tenant", valueGroups: [.init(value: randomString(&rng), group: "main")], defaultGroup: "main")),
                                            idsOnly: rng.next() % 2 == 0).serializedBytes()),
                ("WriteResponse", WriteResponse(lsn: rng.next(), applied: UInt32(truncatingIfNeeded: rng.next())).serializedBytes()),
                ("SyncRequest", SyncRequest(peers: (0..<Int(rng.next() % 3)).map { _ in randomString(&rng) }, force: rng.next() % 2 == 0).serializedBytes()),
                ("SyncResponse", SyncResponse(replicaState: ["serving", "syncing", ""][Int(rng.next() % 3)], source: randomString(&rng),
                                              copied: rng.next(), deleted: rng.next() % 1000, collections: UInt32(rng.next() % 9)).serializedBytes()),
            ]
            for (type, bytes) in samples {
                let name = "\(i).\(type).bin"
                written[name] = bytes
                try Data(bytes).write(to: swiftDir.appendingPathComponent(name))
            }
        }

        let script = Self.packageRoot.appendingPathComponent("Tests/VecShardProtoTests/Interop/protobuf_interop.py").path
        let proto = Self.packageRoot.appendingPathComponent("proto").path
        let generated = try await runPython([script, "generate", proto, work.path, "13", "60"])
        #expect(generated.status == 0, "python: \(generated.stderr)")
        guard generated.status == 0 else { return }

        // Swift → Python → Swift: Python parsed every message; what it wrote back decodes in Swift
        // to the same message (compared through Swift's deterministic encoding), and to the same
        // bytes outright for messages without maps.
        for (name, bytes) in written {
            let type = String(name.split(separator: ".")[1])
            let back = try [UInt8](Data(contentsOf: work.appendingPathComponent("swift-via-python").appendingPathComponent(name)))
            let codec = try #require(Self.codecs[type])
            #expect(try codec(back) == bytes, "\(name): python's re-encoding decodes to a different message")
            if !Self.typesWithMaps.contains(type) {
                #expect(back == bytes, "\(name): python re-encoded \(back.count) bytes, swift wrote \(bytes.count)")
            }
        }
        // Python → Swift → Python: Swift decodes and re-encodes every message; Python checks it
        // parses back to an equal message; without maps the bytes are identical too.
        let pythonDir = work.appendingPathComponent("python")
        let echoDir = work.appendingPathComponent("python-via-swift")
        try FileManager.default.createDirectory(at: echoDir, withIntermediateDirectories: true)
        let files = try FileManager.default.contentsOfDirectory(atPath: pythonDir.path)
        #expect(files.count == 60 * 13)
        for name in files {
            let type = String(name.split(separator: ".")[1])
            let bytes = try [UInt8](Data(contentsOf: pythonDir.appendingPathComponent(name)))
            let codec = try #require(Self.codecs[type], "no Swift codec for \(type)")
            let echoed = try codec(bytes)
            try Data(echoed).write(to: echoDir.appendingPathComponent(name))
            if !Self.typesWithMaps.contains(type) { #expect(echoed == bytes, "\(name)") }
        }
        let verified = try await runPython([script, "verify", proto, work.path])
        #expect(verified.status == 0, "python: \(verified.stderr)")
    }

    static let typesWithMaps: Set<String> = ["Point", "UpsertRequest", "SearchRequest", "SearchResponse"]

    /// Runs Python on a thread of its own: blocking one of the two threads of the cooperative
    /// pool for seconds starves the tests running beside this one (timeouts elsewhere).
    private func runPython(_ arguments: [String]) async throws -> (status: Int32, stderr: String) {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try Self.runPythonBlocking(arguments) }) }.start()
        }
    }

    private static func runPythonBlocking(_ arguments: [String]) throws -> (status: Int32, stderr: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3"] + arguments
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: stderr, as: UTF8.self))
    }
}

// MARK: random messages

private func randomString(_ rng: inout SplitMix64) -> String {
    let alphabet = Array("abcxyz019_-é雪🙂")
    return String((0..<Int(rng.next() % 10)).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] })
}

private func randomKey(_ rng: inout SplitMix64) -> String {
    String((0..<Int(rng.next() % 5)).map { _ in Character(UnicodeScalar(UInt8(97 + rng.next() % 6))) })
}

private func randomValue(_ rng: inout SplitMix64) -> MetadataValueMessage {
    switch rng.next() % 4 {
    case 0: return .string(randomString(&rng))
    case 1: return .int([0, -1, 1, .max, .min, Int64(bitPattern: rng.next())][Int(rng.next() % 6)])
    case 2: return .double([0, -0.0, 1.5, -2.5e300, Double(Int64(bitPattern: rng.next() % 1_000_000)) / 7][Int(rng.next() % 5)])
    default: return .bool(rng.next() % 2 == 0)
    }
}

private func randomFloats(_ rng: inout SplitMix64, _ n: Int) -> [Float] {
    (0..<n).map { _ in [0, -0.0, 1, 3.4e38, 1e-38, Float(Int(rng.next() % 20_000)) / 100 - 100][Int(rng.next() % 6)] }
}

private func randomMetadata(_ rng: inout SplitMix64) -> [String: MetadataValueMessage] {
    var m: [String: MetadataValueMessage] = [:]
    for _ in 0..<Int(rng.next() % 4) { m[randomKey(&rng)] = randomValue(&rng) }
    return m
}

private func randomPoint(_ rng: inout SplitMix64) -> PointMessage {
    PointMessage(id: randomString(&rng), vector: randomFloats(&rng, Int(rng.next() % 40)), metadata: randomMetadata(&rng))
}

private func randomSearchRequest(_ rng: inout SplitMix64) -> SearchRequest {
    var request = SearchRequest(collection: randomString(&rng))
    for _ in 0..<Int(rng.next() % 4) {
        var query = QueryMessage(vector: randomFloats(&rng, Int(rng.next() % 30)))
        if rng.next() % 2 == 0 {
            var filter = FilterMessage()
            for _ in 0..<Int(rng.next() % 3) { filter.must[randomKey(&rng)] = (0..<Int(rng.next() % 3)).map { _ in randomValue(&rng) } }
            query.filter = filter
        }
        if rng.next() % 3 != 0 {
            query.params = SearchParamsMessage(k: UInt32(rng.next() % 10_000), nprobe: UInt32(rng.next() % 3) * 16,
                                               ef: UInt32(rng.next() % 2) * 64, refine: 0, exact: rng.next() % 4 == 0)
        }
        query.includeVector = rng.next() % 2 == 0
        query.includeMetadata = rng.next() % 2 == 0
        request.queries.append(query)
    }
    return request
}

private func randomSearchResponse(_ rng: inout SplitMix64) -> SearchResponse {
    SearchResponse(results: (0..<Int(rng.next() % 4)).map { _ in
        (0..<Int(rng.next() % 6)).map { _ in
            ScoredPointMessage(id: randomString(&rng), score: [0, -0.0, 0.93, -12.5][Int(rng.next() % 4)],
                               metadata: randomMetadata(&rng), vector: randomFloats(&rng, rng.next() % 3 == 0 ? 8 : 0))
        }
    })
}

private func randomCollectionInfo(_ rng: inout SplitMix64) -> CollectionInfoMessage {
    var info = CollectionInfoMessage()
    info.name = randomString(&rng)
    info.dimension = UInt32(rng.next() % 4097)
    info.metric = ["", "cosine", "l2", "ip"][Int(rng.next() % 4)]
    if rng.next() % 2 == 0 { info.index = IndexSpecMessage(type: "hnsw", nlist: 0, pqM: 0, m: 16, efConstruction: 200) }
    info.shardKey = ["", "category"][Int(rng.next() % 2)]
    info.count = rng.next()
    info.segments = UInt32(rng.next() % 100)
    info.memoryBytes = rng.next() >> 20
    info.diskBytes = rng.next() >> 20
    info.lsn = rng.next()
    info.indexState = ["", "ready", "building"][Int(rng.next() % 3)]
    return info
}
