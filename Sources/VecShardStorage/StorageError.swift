#if canImport(Glibc)
import Glibc
#endif
import VecShardEngine

/// Every error of the storage layer. Each case has a stable snake_case `code` (for
/// clients and logs) and a `kind` that the HTTP and gRPC layers map to a status, each in
/// one file. Messages name the offending value and the limit.
public enum StorageError: Error, Equatable, Sendable, CustomStringConvertible {
    /// No collection of that name in the shard.
    case collectionNotFound(String)
    /// A collection of that name exists already (with the schema it has).
    case collectionAlreadyExists(String)
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
    /// The collection's write-ahead log is damaged before its end (not a torn tail):
    /// opening it would lose acknowledged writes, so it is not opened until an operator
    /// accepts the loss (`vecshard recover --accept-data-loss`). The files are kept.
    case walDamaged(WALDamage)
    /// Another process (or another open in this one) holds the data directory's lock.
    case dataDirectoryLocked(path: String, holderPID: Int32?)
    /// A new collection would exceed the shard's limit on collections (`--max-collections`).
    case collectionLimitReached(name: String, limit: Int)
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
    /// No point with that id in the collection.
    case pointNotFound(collection: String, id: String)
    /// The disk is full (ENOSPC/EDQUOT/EFBIG): the write was not acknowledged and changed
    /// nothing; the collection stays readable.
    case diskFull(path: String)
    /// The collection refuses writes after an unrecoverable write-ahead-log failure
    /// (fsync error) or while it is closing; reads still work. Restart the shard.
    case unavailable(String)
    /// A file of the collection is damaged beyond the tail that recovery may cut.
    case corrupt(path: String, reason: String)
    /// The operating system refused a file operation.
    case io(path: String, operation: String, errno: Int32)
    /// An error of the vector engine that is not the caller's fault (a bug or a damaged index).
    case engine(String)
    /// A search's answer would exceed `limit` bytes (`SearchLimits.maxResponseBytes`); nothing is returned.
    case responseTooLarge(limit: Int)
    /// The caller went away or its deadline passed (its task was cancelled); the work stopped.
    case cancelled

    /// How far an error reaches and who is at fault; the HTTP/gRPC layers map this to a status.
    public enum Kind: String, Sendable {
        case invalidArgument, notFound, alreadyExists, resourceExhausted, unavailable, internalError, cancelled
        /// Acknowledged data is unreadable (a damaged write-ahead log).
        case dataLoss
    }

    public var kind: Kind {
        switch self {
        case .collectionNotFound, .pointNotFound: return .notFound
        case .collectionAlreadyExists: return .alreadyExists
        case .invalidCollectionName, .invalidSchema, .dimensionMismatch, .nonFiniteComponent, .zeroVector,
             .componentTooLarge, .vectorWithoutDirection,
             .invalidPointID, .invalidMetadata, .invalidFilter, .invalidSearch, .batchTooLarge, .collectionLimitReached,
             .responseTooLarge:
            return .invalidArgument
        case .cancelled: return .cancelled
        case .diskFull: return .resourceExhausted
        case .unavailable, .dataDirectoryLocked: return .unavailable
        case .walDamaged: return .dataLoss
        case .corrupt, .io, .engine: return .internalError
        }
    }

    /// A stable machine-readable name of the case.
    public var code: String {
        switch self {
        case .collectionNotFound: return "collection_not_found"
        case .collectionAlreadyExists: return "collection_already_exists"
        case .invalidCollectionName: return "invalid_collection_name"
        case .invalidSchema: return "invalid_schema"
        case .dimensionMismatch: return "dimension_mismatch"
        case .nonFiniteComponent, .componentTooLarge: return "non_finite_component"
        case .zeroVector, .vectorWithoutDirection: return "zero_vector"
        case .walDamaged: return "data_loss"
        case .dataDirectoryLocked: return "data_directory_locked"
        case .collectionLimitReached: return "limit_exceeded"
        case .invalidPointID: return "invalid_point_id"
        case .invalidMetadata: return "invalid_metadata"
        case .invalidFilter: return "invalid_filter"
        case .invalidSearch: return "invalid_search"
        case .batchTooLarge: return "batch_too_large"
        case .pointNotFound: return "point_not_found"
        case .diskFull: return "disk_full"
        case .unavailable: return "unavailable"
        case .corrupt: return "corrupt"
        case .io: return "io_error"
        case .engine: return "engine_error"
        case .responseTooLarge: return "response_too_large"
        case .cancelled: return "cancelled"
        }
    }

    public var description: String {
        func point(_ id: String?) -> String { id.map { "point '\($0)'" } ?? "query" }
        switch self {
        case let .collectionNotFound(name): return "collection '\(name)' does not exist"
        case let .collectionAlreadyExists(name): return "collection '\(name)' already exists"
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
        case let .walDamaged(damage):
            return "\(damage); the collection is not opened (its files are kept). To open it without the records after the "
                + "damage, stop the service and run `vecshard recover --data-dir <dir> --accept-data-loss` (or start it with --accept-wal-damage)"
        case let .dataDirectoryLocked(path, pid):
            return "data directory \(path) is in use by another vecshard process\(pid.map { " (pid \($0))" } ?? "") (lock \(path)/LOCK); "
                + "two processes must not share a --data-dir"
        case let .collectionLimitReached(name, limit):
            return "collection '\(name)' cannot be created: this shard has \(limit) collections, the limit (--max-collections \(limit))"
        case let .invalidPointID(id, reason):
            return "point id '\(id.prefix(64))\(id.utf8.count > 64 ? "…" : "")' is invalid: \(reason)"
        case let .invalidMetadata(id, reason): return "point '\(id)': metadata \(reason)"
        case let .invalidFilter(message): return "filter: \(message)"
        case let .invalidSearch(message): return message
        case let .batchTooLarge(count, limit): return "\(count) items in one write; the limit is \(limit)"
        case let .pointNotFound(collection, id): return "point '\(id)' does not exist in collection '\(collection)'"
        case let .diskFull(path): return "disk full while writing \(path); the write was not applied"
        case let .unavailable(message): return message
        case let .corrupt(path, reason): return "\(path) is corrupt: \(reason)"
        case let .io(path, operation, errno): return "\(operation) \(path) failed (errno \(errno))"
        case let .engine(message): return "vector engine: \(message)"
        case let .responseTooLarge(limit):
            return "the answer would exceed \(limit) bytes; ask for a smaller k or fewer queries, or set include_metadata to false"
        case .cancelled: return "the search was cancelled (the caller went away or its deadline passed)"
        }
    }

    /// Maps an engine error raised while serving a caller's request. `pointID` names the
    /// point when the error concerns one input vector.
    static func from(_ error: Error, collection: String, dimension: Int, pointID: String? = nil) -> StorageError {
        if let e = error as? StorageError { return e }
        guard let e = error as? EngineError else { return .engine(String(describing: error)) }
        switch e {
        case let .dimensionMismatch(got, expected):
            return .dimensionMismatch(collection: collection, got: got, expected: expected, pointID: pointID)
        case let .nonFiniteComponent(_, component): return .nonFiniteComponent(pointID: pointID, component: component)
        case .zeroVector: return .zeroVector(pointID: pointID)
        case let .componentTooLarge(_, component): return .componentTooLarge(pointID: pointID, component: component, value: .infinity)
        case .invalidK, .invalidParameter: return .invalidSearch(e.description)
        case let .io(path, operation, errno):
            return isDiskFull(errno) ? .diskFull(path: path) : .io(path: path, operation: operation, errno: errno)
        default: return .engine(e.description)
        }
    }
}
