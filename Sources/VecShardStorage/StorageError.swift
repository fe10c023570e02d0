#if canImport(Glibc)
import Glibc
#endif
import VecShardEngine
import VecShardPrimitives
import VecShardSchema

/// Every error of the storage layer. Each case has a stable snake_case `code` (for
/// clients and logs) and a `kind` that the HTTP and gRPC layers map to a status, each in
/// one file. Messages name the offending value and the limit.
public enum StorageError: Error, Equatable, Sendable, CustomStringConvertible {
    /// No collection of that name in the shard.
    case collectionNotFound(String)
    /// A collection of that name exists already (with the schema it has).
    case collectionAlreadyExists(String)
    /// The collection's write-ahead log is damaged before its end (not a torn tail):
    /// opening it would lose acknowledged writes, so it is not opened until an operator
    /// accepts the loss (`vecshard recover --accept-data-loss`). The files are kept.
    case walDamaged(WALDamage)
    /// Another process (or another open in this one) holds the data directory's lock.
    case dataDirectoryLocked(path: String, holderPID: Int32?)
    /// A new collection would exceed the shard's limit on collections (`--max-collections`).
    case collectionLimitReached(name: String, limit: Int)
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
    /// An input that breaks the schema or a limit (checked before anything is written).
    case invalid(SchemaError)
    /// The caller went away (its task was cancelled); the work stopped.
    case cancelled
    /// The search's deadline passed (`SearchDeadline`); the work stopped.
    case deadlineExceeded
    /// A versioned write whose version is not above what this replica holds for one of its
    /// ids (a stamper's clock behind another's): nothing was written; stamp above `held` and retry.
    case staleVersion(collection: String, id: String, offered: UInt64, held: UInt64)
    /// Changes after `after` were asked for, but tombstones up to `floor` were dropped
    /// (`--tombstone-retention-seconds`): a full comparison is needed instead.
    case changesCompacted(collection: String, after: UInt64, floor: UInt64)

    /// How far an error reaches and who is at fault; the HTTP/gRPC layers map this to a status.
    public typealias Kind = ErrorKind

    public var kind: Kind {
        switch self {
        case .collectionNotFound, .pointNotFound: return .notFound
        case .collectionAlreadyExists: return .alreadyExists
        case .invalid(let e): return e.kind
        case .collectionLimitReached: return .invalidArgument
        case .cancelled: return .cancelled
        case .deadlineExceeded: return .deadlineExceeded
        case .diskFull: return .resourceExhausted
        case .unavailable, .dataDirectoryLocked: return .unavailable
        case .walDamaged: return .dataLoss
        case .corrupt, .io, .engine: return .internalError
        case .staleVersion, .changesCompacted: return .failedPrecondition
        }
    }

    /// A stable machine-readable name of the case.
    public var code: String {
        switch self {
        case .invalid(let e): return e.code
        case .collectionNotFound: return "collection_not_found"
        case .collectionAlreadyExists: return "collection_already_exists"
        case .walDamaged: return "data_loss"
        case .dataDirectoryLocked: return "data_directory_locked"
        case .collectionLimitReached: return "limit_exceeded"
        case .pointNotFound: return "point_not_found"
        case .diskFull: return "disk_full"
        case .unavailable: return "unavailable"
        case .corrupt: return "corrupt"
        case .io: return "io_error"
        case .engine: return "engine_error"
        case .cancelled: return "cancelled"
        case .deadlineExceeded: return "deadline_exceeded"
        case .staleVersion: return "stale_version"
        case .changesCompacted: return "changes_compacted"
        }
    }

    public var description: String {
        switch self {
        case let .invalid(e): return e.description
        case let .collectionNotFound(name): return "collection '\(name)' does not exist"
        case let .collectionAlreadyExists(name): return "collection '\(name)' already exists"
        case let .walDamaged(damage):
            return "\(damage); the collection is not opened (its files are kept). To open it without the records after the "
                + "damage, stop the service and run `vecshard recover --data-dir <dir> --accept-data-loss` (or start it with --accept-wal-damage)"
        case let .dataDirectoryLocked(path, pid):
            return "data directory \(path) is in use by another vecshard process\(pid.map { " (pid \($0))" } ?? "") (lock \(path)/LOCK); "
                + "two processes must not share a --data-dir"
        case let .collectionLimitReached(name, limit):
            return "collection '\(name)' cannot be created: this shard has \(limit) collections, the limit (--max-collections \(limit))"
        case let .pointNotFound(collection, id): return "point '\(id)' does not exist in collection '\(collection)'"
        case let .diskFull(path): return "disk full while writing \(path); the write was not applied"
        case let .unavailable(message): return message
        case let .corrupt(path, reason): return "\(path) is corrupt: \(reason)"
        case let .io(path, operation, errno): return "\(operation) \(path) failed (errno \(errno))"
        case let .engine(message): return "vector engine: \(message)"
        case .cancelled: return "the search was cancelled (the caller went away or its deadline passed)"
        case .deadlineExceeded: return "the search's deadline passed; it was stopped"
        case let .staleVersion(collection, id, offered, held):
            return "collection '\(collection)': point '\(id)' holds version \(held), the write offered \(offered); nothing was written (stamp above \(held) and retry)"
        case let .changesCompacted(collection, after, floor):
            return "collection '\(collection)': changes after version \(after) are not all known here (tombstones up to version \(floor) were dropped); compare in full instead"
        }
    }


    // The checks of `VecShardSchema` throw `SchemaError`; storage wraps it. These spell the
    // wrapped cases as storage's own, for storage code and its tests.
    public static func invalidCollectionName(_ name: String, reason: String) -> StorageError { .invalid(.invalidCollectionName(name, reason: reason)) }
    public static func invalidSchema(_ message: String) -> StorageError { .invalid(.invalidSchema(message)) }
    public static func dimensionMismatch(collection: String, got: Int, expected: Int, pointID: String?) -> StorageError {
        .invalid(.dimensionMismatch(collection: collection, got: got, expected: expected, pointID: pointID))
    }
    public static func nonFiniteComponent(pointID: String?, component: Int) -> StorageError { .invalid(.nonFiniteComponent(pointID: pointID, component: component)) }
    public static func zeroVector(pointID: String?) -> StorageError { .invalid(.zeroVector(pointID: pointID)) }
    public static func componentTooLarge(pointID: String?, component: Int, value: Float) -> StorageError {
        .invalid(.componentTooLarge(pointID: pointID, component: component, value: value))
    }
    public static func invalidPointID(_ id: String, reason: String) -> StorageError { .invalid(.invalidPointID(id, reason: reason)) }
    public static func invalidFilter(_ message: String) -> StorageError { .invalid(.invalidFilter(message)) }
    public static func invalidSearch(_ message: String) -> StorageError { .invalid(.invalidSearch(message)) }
    public static func batchTooLarge(count: Int, limit: Int) -> StorageError { .invalid(.batchTooLarge(count: count, limit: limit)) }
    public static func responseTooLarge(limit: Int) -> StorageError { .invalid(.responseTooLarge(limit: limit)) }

    /// Runs a check of `VecShardSchema`, throwing its error as storage's.
    static func checking<T>(_ body: () throws(SchemaError) -> T) throws(StorageError) -> T {
        do { return try body() } catch { throw .invalid(error) }
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
