#if canImport(Glibc)
import Glibc
#endif
import VecShardEngine
import VecShardPrimitives
import VecShardSchema
import VecShardStorage

/// The deterministic write workload of the crash tests (`vecshard storage-stress`):
/// writer w owns the ids "w<w>-<n>" (n < idsPerWriter) and performs operations one at a
/// time; operation i of writer w in run `seed` is a pure function of (seed, w, i), so a
/// checker that read the acknowledged operations can recompute every vector and
/// metadata map, and the one operation that may have been in flight.
public struct StorageStressWorkload: Sendable {
    public var seed: UInt64
    public var writers: Int
    public var idsPerWriter: Int
    public var dimension: Int

    public init(seed: UInt64, writers: Int, idsPerWriter: Int, dimension: Int) {
        self.seed = seed
        self.writers = writers
        self.idsPerWriter = idsPerWriter
        self.dimension = dimension
    }

    public enum Operation: Sendable, Equatable {
        case upsert([Point])
        case delete([String])
    }

    public static func schema(name: String, dimension: Int) -> CollectionSchema {
        CollectionSchema(name: name, dimension: dimension, metric: .l2, index: IndexSpec(kind: .flat))
    }

    /// Operation `index` of `writer`: about 70% upserts of 1...16 points, else deletes of 1...4 ids.
    public func operation(writer: Int, index: Int) -> Operation {
        var g = SplitMix64(seed: seed ^ (UInt64(writer) &* 0x9E37_79B9_7F4A_7C15) ^ (UInt64(index) &* 0xC2B2_AE3D_27D4_EB4F))
        let upsert = g.next() % 10 < 7
        let n = upsert ? 1 + Int(g.next() % 16) : 1 + Int(g.next() % 4)
        var ids: [String] = []
        for _ in 0..<n { ids.append("w\(writer)-\(g.next() % UInt64(idsPerWriter))") }
        guard upsert else { return .delete(ids) }
        let points = ids.map { id in
            Point(id: id, vector: (0..<dimension).map { _ in Float(Int(g.next() % 2001) - 1000) / 1000 },
                  metadata: ["writer": .int(Int64(writer)), "op": .int(Int64(index)), "seed": .string(String(seed)),
                             "even": .bool(index % 2 == 0)])
        }
        return .upsert(points)
    }

    /// Opens the shard in `directory` (creating collection `collection` if needed), calls
    /// `emit("ready <count>")`, then runs the writers concurrently, each calling
    /// `emit(ackLine(...))` right after each acknowledged operation, until `operations`
    /// per writer are done (or the process is killed).
    public func run(directory: String, collection: String, sealRows: Int, operations: Int,
                    emit: @escaping @Sendable (String) -> Void) async throws {
        let options = StorageOptions(thresholds: SegmentThresholds(sealRows: sealRows))
        let shard = try await Shard.open(directory: directory, options: options)
        let target: ShardCollection
        if let existing = try? shard.collection(collection) {
            target = existing
        } else {
            target = try await shard.createCollection(Self.schema(name: collection, dimension: dimension))
        }
        emit("ready \(target.count)")
        let workload = self
        try await withThrowingTaskGroup(of: Void.self) { group in
            for w in 0..<writers {
                group.addTask {
                    for i in 0..<operations {
                        switch workload.operation(writer: w, index: i) {
                        case let .upsert(points): try await target.upsert(points)
                        case let .delete(ids): try await target.delete(ids: ids)
                        }
                        emit(Self.ackLine(writer: w, index: i))
                    }
                }
            }
            try await group.waitForAll()
        }
        await shard.close()
    }

    /// The line printed for an acknowledged operation: "ack <writer> <index>".
    public static func ackLine(writer: Int, index: Int) -> String { "ack \(writer) \(index)" }

    /// Writes one line to stdout with one unbuffered write(2), so lines of concurrent
    /// writers do not interleave and an ack is out before the writer's next operation.
    @Sendable public static func writeLine(_ line: String) {
        let bytes = Array((line + "\n").utf8)
        bytes.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count {
                let n = write(1, raw.baseAddress! + done, raw.count - done)
                if n <= 0 { return }
                done += n
            }
        }
    }

    public static func parseAck(_ line: Substring) -> (writer: Int, index: Int)? {
        let parts = line.split(separator: " ")
        guard parts.count == 3, parts[0] == "ack", let w = Int(parts[1]), let i = Int(parts[2]) else { return nil }
        return (w, i)
    }
}

