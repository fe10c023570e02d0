import VecShardEngine

/// How far an error reaches and who is at fault: the one classification every layer's error
/// enum maps to. The HTTP status is derived from it in one place (the REST layer's
/// `RESTErrors.swift`), the gRPC status in one place (`ShardWire.swift`).
public enum ErrorKind: String, Sendable, Hashable {
    /// The caller's request is wrong; retrying it unchanged fails again.
    case invalidArgument
    case notFound
    case alreadyExists
    /// The request does not fit the current state (a version precondition).
    case failedPrecondition
    /// The operation was refused because of a conflict (a topology change that needs rebalancing).
    case aborted
    /// A limit or the disk is full.
    case resourceExhausted
    /// Retry later (or on another replica).
    case unavailable
    case deadlineExceeded
    case cancelled
    /// Acknowledged data is unreadable (a damaged write-ahead log).
    case dataLoss
    case unauthenticated
    case permissionDenied
    case unimplemented
    /// A bug, or damage that is not the caller's fault.
    case internalError
}

/// An input that breaks the schema or a limit: every case is the caller's fault
/// (`ErrorKind.invalidArgument`). Checked once where a request enters a service, by the
/// functions of `Validation.swift`; storage runs the same checks before it logs a write.
public enum SchemaError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The collection name is empty, too long or has characters outside [A-Za-z0-9_-].
    case invalidCollectionName(String, reason: String)
    /// A schema knob is out of range (dimension, index spec, shard key).
    case invalidSchema(String)
    /// A vector (of a point or a query) has the wrong number of components.
    /// `pointID` is nil for a query.
    case dimensionMismatch(collection: String, got: Int, expected: Int, pointID: String?)
    /// A component is NaN or infinite. `pointID` is nil for a query.
    case nonFiniteComponent(pointID: String?, component: Int)
    /// A zero vector under the cosine metric (no direction). `pointID` is nil for a query.
    case zeroVector(pointID: String?)
    /// A finite component whose float32 square overflows (|x| above
    /// `VectorCheck.maxComponentMagnitude`); code `non_finite_component`. `pointID` is nil for a query.
    case componentTooLarge(pointID: String?, component: Int, value: Float)
    /// Under cosine, a vector that is not all zeros but whose float32 squared norm is below
    /// `Float.leastNormalMagnitude` (or overflows): it has no direction; code `zero_vector`.
    case vectorWithoutDirection(pointID: String?, squaredNorm: Float)
    /// A point id is empty or longer than `maxPointIDBytes` bytes of UTF-8.
    case invalidPointID(String, reason: String)
    /// A metadata key or value breaks a limit (key length, value size, field count).
    case invalidMetadata(pointID: String, reason: String)
    /// A filter names a value type that cannot be filtered on, or an empty IN list.
    case invalidFilter(String)
    /// A search knob is out of range (k, nprobe, ef, ...); the message says which.
    case invalidSearch(String)
    /// A request carries more points or ids than one write accepts.
    case batchTooLarge(count: Int, limit: Int)
    /// A search's answer would exceed `limit` bytes (`SearchLimits.maxResponseBytes`); nothing is returned.
    case responseTooLarge(limit: Int)

    public var kind: ErrorKind { .invalidArgument }

    /// A stable machine-readable name of the case.
    public var code: String {
        switch self {
        case .invalidCollectionName: return "invalid_collection_name"
        case .invalidSchema: return "invalid_schema"
        case .dimensionMismatch: return "dimension_mismatch"
        case .nonFiniteComponent, .componentTooLarge: return "non_finite_component"
        case .zeroVector, .vectorWithoutDirection: return "zero_vector"
        case .invalidPointID: return "invalid_point_id"
        case .invalidMetadata: return "invalid_metadata"
        case .invalidFilter: return "invalid_filter"
        case .invalidSearch: return "invalid_search"
        case .batchTooLarge: return "batch_too_large"
        case .responseTooLarge: return "response_too_large"
        }
    }

    public var description: String {
        func point(_ id: String?) -> String { id.map { "point '\($0)'" } ?? "query" }
        switch self {
        case let .invalidCollectionName(name, reason): return "collection name '\(name)' is invalid: \(reason)"
        case let .invalidSchema(message): return message
        case let .dimensionMismatch(collection, got, expected, id):
            return "\(point(id)): dimension \(got), collection '\(collection)' expects \(expected)"
        case let .nonFiniteComponent(id, component):
            return "\(point(id)): component \(component) is NaN or infinite; components must be finite"
        case let .zeroVector(id):
            return "\(point(id)): the vector is all zeros, which has no cosine similarity"
        case let .componentTooLarge(id, component, value):
            return "\(point(id)): " + VectorCheck.Problem.componentTooLarge(component: component, value: value).description
        case let .vectorWithoutDirection(id, squaredNorm):
            return "\(point(id)): " + VectorCheck.Problem.noDirection(squaredNorm: squaredNorm, allZero: false).description
        case let .invalidPointID(id, reason):
            return "point id '\(id.prefix(64))\(id.utf8.count > 64 ? "…" : "")' is invalid: \(reason)"
        case let .invalidMetadata(id, reason): return "point '\(id)': metadata \(reason)"
        case let .invalidFilter(message): return "filter: \(message)"
        case let .invalidSearch(message): return message
        case let .batchTooLarge(count, limit): return "\(count) items in one write; the limit is \(limit)"
        case let .responseTooLarge(limit):
            return "the answer would exceed \(limit) bytes; ask for a smaller k or fewer queries, or set include_metadata to false"
        }
    }
}
