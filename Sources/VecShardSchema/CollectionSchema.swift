import VecShardEngine

/// What a collection is: fixed at creation, stored in `collection.json`.
public struct CollectionSchema: Codable, Sendable, Equatable {
    /// 1...64 characters from [A-Za-z0-9_-], not starting with '-' (it names a directory).
    public var name: String
    /// Components per vector, 1...maxDimension.
    public var dimension: Int
    public var metric: DistanceMetric
    /// The index of sealed segments (growing segments are searched with FLAT).
    public var index: IndexSpec
    /// The metadata field whose value picks the shard group (routing); nil = none.
    public var shardKey: String?

    public init(name: String, dimension: Int, metric: DistanceMetric, index: IndexSpec = IndexSpec(kind: .hnsw),
                shardKey: String? = nil) {
        self.name = name
        self.dimension = dimension
        self.metric = metric
        self.index = index
        self.shardKey = shardKey
    }

    enum CodingKeys: String, CodingKey {
        case name, dimension, metric, index, shardKey = "shard_key"
    }

    /// Checks the name, dimension, index knobs and shard key; throws naming the problem.
    public func validate() throws {
        try Self.validate(name: name)
        guard (1...maxDimension).contains(dimension) else {
            throw SchemaError.invalidSchema("dimension \(dimension) is out of range; it must be between 1 and \(maxDimension)")
        }
        do {
            try index.validate(dimension: dimension)
        } catch {
            throw SchemaError.invalidSchema("index: \(error)")
        }
        if let shardKey, shardKey.isEmpty || shardKey.utf8.count > PointLimits.maxMetadataKeyBytes {
            throw SchemaError.invalidSchema("shard_key must be 1 to \(PointLimits.maxMetadataKeyBytes) bytes")
        }
    }

    public static let maxNameLength = 64

    /// A metric by its name (`cosine`, `l2`, `ip`), as requests spell it.
    public static func metric(named name: String) throws(SchemaError) -> DistanceMetric {
        guard let metric = DistanceMetric(rawValue: name) else {
            throw .invalidSchema("metric '\(name)' is unknown; use cosine, l2 or ip")
        }
        return metric
    }

    public static func validate(name: String) throws {
        func bad(_ reason: String) -> SchemaError { .invalidCollectionName(name, reason: reason) }
        guard !name.isEmpty else { throw bad("it is empty") }
        guard name.utf8.count <= maxNameLength else { throw bad("it is longer than \(maxNameLength) characters") }
        guard name.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) || $0 == 95 || $0 == 45 }) else {
            throw bad("only letters, digits, '_' and '-' are allowed")
        }
        guard !name.hasPrefix("-") else { throw bad("it must not start with '-'") }
    }
}
