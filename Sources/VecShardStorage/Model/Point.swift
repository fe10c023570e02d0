/// One metadata value: the JSON scalar types a point's metadata may hold. Ints and
/// doubles are distinct (2021 is an int, 2021.0 a double): filters match on both type
/// and value.
public enum MetadataValue: Sendable, Hashable, CustomStringConvertible {
    case string(String)
    case int(Int64)
    case double(Double)
    case bool(Bool)

    /// Bytes this value counts for in `PointLimits.maxMetadataBytes` and response budgets.
    public var byteCount: Int {
        switch self {
        case let .string(s): return s.utf8.count
        case .int, .double: return 8
        case .bool: return 1
        }
    }

    public var description: String {
        switch self {
        case let .string(s): return "\"\(s)\""
        case let .int(i): return String(i)
        case let .double(d): return String(d)
        case let .bool(b): return String(b)
        }
    }

    /// True for the types a filter (and the metadata index) supports: string, int, bool.
    var isFilterable: Bool {
        if case .double = self { return false }
        return true
    }
}

/// A point's metadata: a flat map of keys to scalar values.
public typealias Metadata = [String: MetadataValue]

/// A point as stored: a string id (1...`maxPointIDBytes` bytes of UTF-8), a vector of the
/// collection's dimension (as given: not normalized, even under cosine) and metadata.
public struct Point: Sendable, Equatable {
    public var id: String
    public var vector: [Float]
    public var metadata: Metadata

    public init(id: String, vector: [Float], metadata: Metadata = [:]) {
        self.id = id
        self.vector = vector
        self.metadata = metadata
    }
}

/// One condition on a metadata field: the field equals the value, or equals one of
/// the values (IN). Values must be string, int or bool.
public enum FilterCondition: Sendable, Hashable {
    case equals(MetadataValue)
    case oneOf([MetadataValue])

    var values: [MetadataValue] {
        switch self {
        case let .equals(v): return [v]
        case let .oneOf(vs): return vs
        }
    }
}

/// A metadata filter: every field's condition must hold (AND). An empty filter admits
/// every point. A point without the field does not match.
public typealias MetadataFilter = [String: FilterCondition]

/// One search result. Scores follow the engine's rule: higher is closer.
public struct SearchHit: Sendable, Equatable {
    public var id: String
    public var score: Float
    public var metadata: Metadata
    /// The stored vector, when the search asked for vectors.
    public var vector: [Float]?

    public init(id: String, score: Float, metadata: Metadata, vector: [Float]? = nil) {
        self.id = id
        self.score = score
        self.metadata = metadata
        self.vector = vector
    }
}

/// Limits on points, checked before anything is written.
public enum PointLimits {
    /// Largest point id, in bytes of UTF-8.
    public static let maxPointIDBytes = 256
    /// Largest metadata key, in bytes of UTF-8.
    public static let maxMetadataKeyBytes = 256
    /// Largest string metadata value, in bytes of UTF-8.
    public static let maxMetadataStringBytes = 65_536
    /// Most metadata fields per point.
    public static let maxMetadataFields = 256
    /// Largest metadata of one point, in bytes: keys and string values in UTF-8, 8 per number,
    /// 1 per boolean. A search answer holds at most `SearchLimits.maxResponseBytes`, so at least
    /// a thousand points with full metadata fit in one.
    public static let maxMetadataBytes = 65_536
    /// Most points (or ids) in one upsert (or delete) call.
    public static let maxBatchPoints = 100_000
}

/// Bounds on what one search request may make a shard hold and send.
public enum SearchLimits {
    /// Largest answer to one search request (all its queries), in bytes of ids, scores, metadata
    /// and vectors as `SearchHit.byteCount` counts them. A search over it fails with
    /// `StorageError.responseTooLarge` before the rest is gathered.
    public static let maxResponseBytes = 64 * 1024 * 1024
    /// Most hits one request may ask for: the sum of k over its queries.
    public static let maxResultsPerRequest = 100_000
}

extension Metadata {
    /// Bytes of keys and values, as `PointLimits.maxMetadataBytes` counts them.
    public var byteCount: Int { reduce(0) { $0 + $1.key.utf8.count + $1.value.byteCount } }
}

extension SearchHit {
    /// Bytes this hit counts for in a response budget: id, score, metadata and vector.
    public var byteCount: Int { id.utf8.count + 4 + metadata.byteCount + 4 * (vector?.count ?? 0) }
}

/// The bytes a search request may still gather, shared by its queries (they run concurrently).
public final class ResponseBudget: Sendable {
    public let limit: Int
    private let used = Locked(0)

    public init(limit: Int = SearchLimits.maxResponseBytes) { self.limit = limit }

    /// Takes `bytes` from the budget; false (and nothing taken) when they do not fit.
    public func take(_ bytes: Int) -> Bool {
        used.withLock { used in
            guard used + bytes <= limit else { return false }
            used += bytes
            return true
        }
    }
}
