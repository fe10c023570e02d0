import VecShardEngine

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
        var g = StressRandom(seed: seed ^ (UInt64(writer) &* 0x9E37_79B9_7F4A_7C15) ^ (UInt64(index) &* 0xC2B2_AE3D_27D4_EB4F))
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

    /// The line printed for an acknowledged operation: "ack <writer> <index>".
    public static func ackLine(writer: Int, index: Int) -> String { "ack \(writer) \(index)" }

    public static func parseAck(_ line: Substring) -> (writer: Int, index: Int)? {
        let parts = line.split(separator: " ")
        guard parts.count == 3, parts[0] == "ack", let w = Int(parts[1]), let i = Int(parts[2]) else { return nil }
        return (w, i)
    }
}

/// splitmix64, for workloads reproducible across processes and platforms.
public struct StressRandom: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
