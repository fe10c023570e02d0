import Foundation
import Testing
import VecShardEngine
@testable import VecShardStorage
import VecShardSchema
import VecShardPrimitives

/// Vectors the engine cannot index ("poison"): refused at the door with the engine's own
/// arithmetic, and quarantined by a seal when one is already in the log, so a collection's
/// sealing never wedges.
@Suite("Poison vectors: one check, quarantine at seal")
struct PoisonVectorTests {
    static let dim = 4

    @Test("upserts and queries are refused with the engine's arithmetic, naming the point and the reason")
    func refusedAtTheDoor() async throws {
        let dir = TemporaryDirectory("poison-door")
        let shard = try await Shard.open(directory: dir.path, options: smallOptions())
        let cos = try await shard.createCollection(CollectionSchema(name: "cos", dimension: Self.dim, metric: .cosine, index: IndexSpec(kind: .hnsw)))
        let l2 = try await shard.createCollection(CollectionSchema(name: "l2", dimension: Self.dim, metric: .l2, index: IndexSpec(kind: .flat)))
        for v: [Float] in [[1e-30, 1e-30, 1e-30, 1e-30], [1e-45, 0, 0, 0], [1e-20, 0, 0, 0]] {
            do {
                try await cos.upsert([Point(id: "ok", vector: [1, 0, 0, 0]), Point(id: "tiny", vector: v)])
                Issue.record("\(v) was accepted under cosine")
            } catch let e as StorageError {
                #expect(e.code == "zero_vector" && e.kind == .invalidArgument, "\(e)")
                #expect("\(e)".contains("point 'tiny'") && "\(e)".contains("squared norm"), "\(e)")
            }
            #expect(VectorCheck.problem(v, metric: .cosine) != nil)
            #expect(throws: EngineError.zeroVector(row: 0)) {
                let index = try makeIndex(spec: IndexSpec(kind: .flat), metric: .cosine, dimension: Self.dim)
                _ = try index.add(v)
            }
        }
        #expect(cos.count == 0, "a refused batch writes nothing")
        await #expect(throws: StorageError.zeroVector(pointID: "z")) { try await cos.upsert([Point(id: "z", vector: [0, 0, 0, 0])]) }
        // The smallest accepted squared norm: Float.leastNormalMagnitude.
        let edge = Float.leastNormalMagnitude.squareRoot() * 1.001
        try await cos.upsert([Point(id: "edge", vector: [edge, 0, 0, 0])])
        #expect(throws: StorageError.self) { try cos.search([1e-30, 0, 0, 0], parameters: SearchParameters(k: 1)) }
        // Any metric: a component whose float32 square overflows.
        let huge: Float = 2e19
        do {
            try await l2.upsert([Point(id: "big", vector: [huge, 0, 0, 0])])
            Issue.record("a component of \(huge) was accepted")
        } catch let e as StorageError {
            #expect(e.code == "non_finite_component" && "\(e)".contains("point 'big'") && "\(e)".contains("component 0"), "\(e)")
        }
        #expect(throws: EngineError.componentTooLarge(row: 0, component: 0)) {
            let index = try makeIndex(spec: IndexSpec(kind: .flat), metric: .l2, dimension: Self.dim)
            _ = try index.add([huge, 0, 0, 0])
        }
        try await l2.upsert([Point(id: "fine", vector: [VectorCheck.maxComponentMagnitude, 0, 0, 0])])
        await #expect(throws: StorageError.nonFiniteComponent(pointID: "n", component: 1)) {
            try await l2.upsert([Point(id: "n", vector: [0, .nan, 0, 0])])
        }
        await shard.close()
    }

    /// Appends a WAL file holding one upsert record, as a log written before the check
    /// existed would hold it.
    func appendToLog(_ walDirectory: String, lsn: UInt64, _ points: [Point]) throws {
        let bytes = WALFileHeader.encode(firstLSN: lsn) + WALRecordCodec.encode(WALRecord(lsn: lsn, operation: .upsert(points)))
        try FileIO.writeFile(walDirectory + "/" + WALFileName.make(firstLSN: lsn), bytes)
    }

    @Test func aPoisonPointAlreadyInTheLogIsQuarantinedAndTheSealGoesThrough() async throws {
        let dir = TemporaryDirectory("poison-log")
        var shard = try await Shard.open(directory: dir.path, options: smallOptions())
        var c = try await shard.createCollection(CollectionSchema(name: "c", dimension: Self.dim, metric: .cosine, index: IndexSpec(kind: .hnsw)))
        var src = VectorSource(seed: 5, dimension: Self.dim)
        let good = (0..<30).map { Point(id: "g\($0)", vector: src.vector()) }
        try await c.upsert(good)
        let lsn = c.lsn
        await shard.close()
        try appendToLog(dir.path + "/collections/c/wal", lsn: lsn + 1,
                        [Point(id: "poison", vector: [1e-30, 1e-30, 1e-30, 1e-30]), Point(id: "g-after", vector: [0, 1, 0, 0])])
        let warnings = Locked<[StorageEvent]>([])
        var options = smallOptions()
        options.eventHandler = { e in warnings.withLock { $0.append(e) } }
        shard = try await Shard.open(directory: dir.path, options: options)
        c = try shard.collection("c")
        #expect(c.count == 32, "replayed as logged")
        try await c.flush() // the seal that used to fail for good
        #expect(c.get("poison") == nil && c.count == 31)
        #expect(c.get("g-after") != nil)
        for p in good { #expect(c.get(p.id) == p) }
        let d = c.describe()
        #expect(d.maintenance.quarantinedPoints == 1 && d.maintenance.failedSeals == 0)
        #expect(d.segments.contains { $0.state == .sealed && $0.rows == 32 && $0.liveRows == 31 })
        #expect(warnings.withLock { $0 }.contains { $0.kind == .pointQuarantined && $0.message.contains("'poison'") })
        #expect(try c.search([0, 1, 0, 0], parameters: SearchParameters(k: 40)).allSatisfy { $0.id != "poison" })
        // Writes keep going and the next seal works too; a restart does not bring it back.
        try await c.upsert([Point(id: "later", vector: [0, 0, 1, 0])])
        try await c.flush()
        await shard.close()
        shard = try await Shard.open(directory: dir.path, options: smallOptions())
        c = try shard.collection("c")
        #expect(c.get("poison") == nil && c.count == 32)
        await shard.close()
    }

    @Test func aFailingSealIsCountedAndReported() async throws {
        let dir = TemporaryDirectory("seal-fail")
        let warnings = Locked<[StorageEvent]>([])
        var options = smallOptions()
        options.eventHandler = { e in warnings.withLock { $0.append(e) } }
        let shard = try await Shard.open(directory: dir.path, options: options)
        let c = try await shard.createCollection(CollectionSchema(name: "c", dimension: Self.dim, metric: .l2, index: IndexSpec(kind: .flat)))
        struct SealRefused: Error {}
        c.sealHook.withLock { $0 = { throw SealRefused() } }
        try await c.upsert([Point(id: "a", vector: [1, 2, 3, 4])])
        await #expect(throws: StorageError.self) { try await c.flush() }
        let d = c.describe()
        #expect(d.maintenance.failedSeals == 1 && d.maintenanceError?.contains("SealRefused") == true)
        #expect(warnings.withLock { $0 }.contains { $0.kind == .maintenanceFailed && $0.message.contains("SealRefused") })
        c.sealHook.withLock { $0 = nil }
        try await c.flush()
        await shard.close()
    }
}
