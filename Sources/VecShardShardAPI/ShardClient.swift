import VecShardRPC
import VecShardSchema

/// The one protocol between the router and a shard, and its seam for tests. Implementations:
/// `LocalShard` (the shard module: storage in this process, the standalone default),
/// `RemoteShard` (this module: the gRPC transport), `RepairableShard` (the shard module: a
/// replica's sync state around a local shard), `ReplicatedShard` (the router: replicas with
/// quorum writes and hedged reads) and `DelayedShard` (VecShardTesting: fault injection).
/// The router holds `any ShardClient` and never asks which one it has.
/// Values are schema values and the records of ShardCalls.swift: protobuf appears only inside
/// `RemoteShard` and the gRPC service, which convert at the wire.
public protocol ShardClient: Sendable {
    /// The shard's name in the topology.
    var name: String { get }
    func createCollection(_ schema: CollectionSchema) async throws -> CollectionInfo
    func dropCollection(_ name: String) async throws -> Bool
    func describeCollection(_ name: String) async throws -> CollectionInfo
    /// `version`: the write's version (docs/ARCHITECTURE.md, "Versioned points"); a shard
    /// refuses one not above what it holds for the ids (`stale_version`). nil: the shard (or,
    /// for a replicated shard, the router) stamps one.
    func upsert(collection: String, points: [Point], version: UInt64?) async throws -> WriteResult
    func delete(collection: String, ids: [String], version: UInt64?) async throws -> WriteResult
    /// The points among `ids` that exist (vectors left empty unless `includeVector`).
    func get(collection: String, ids: [String], includeVector: Bool) async throws -> [Point]
    /// Per query, the shard's best hits, best first.
    func search(_ request: ShardSearch) async throws -> [[SearchHit]]
    func stats() async throws -> ShardStats
    /// Calls `body` with batches of points (all, or those the selector picks).
    func scan(_ request: ShardScan, _ body: @Sendable ([Point]) async throws -> Void) async throws
    func flush(_ collection: String) async throws
    func compact(_ collection: String) async throws
    /// Why a write to this shard would fail now (too few live replicas for the write quorum), or
    /// nil. Lets the router refuse a batch before writing any of it.
    var writeBlocker: String? { get }
    /// Replica repair: bring this replica up to date from one of `request.peers` (see
    /// `RepairableShard`). Shards without replica state are always up to date.
    func sync(_ request: ReplicaSync) async throws -> SyncOutcome
    /// A page of a collection's changes after a position (catch-up by difference; see
    /// `ShardCollection.changes`). Shards without versions answer unimplemented.
    func changes(_ request: ChangesQuery) async throws -> ChangesPageResult
    /// Applies points and deletes that carry their own versions (a copy: catch-up, rebalancing),
    /// last writer wins per id; `applied` counts what changed something.
    func apply(collection: String, changes: VersionedChanges) async throws -> WriteResult
}

extension ShardClient {
    public var writeBlocker: String? { nil }
    public func sync(_ request: ReplicaSync) async throws -> SyncOutcome { SyncOutcome(replicaState: .serving) }
    public func changes(_ request: ChangesQuery) async throws -> ChangesPageResult {
        throw ShardCallError(.unimplemented, code: "unimplemented", "shard '\(name)' cannot list changes")
    }
    public func apply(collection: String, changes: VersionedChanges) async throws -> WriteResult {
        throw ShardCallError(.unimplemented, code: "unimplemented", "shard '\(name)' cannot apply versioned changes")
    }
    public func upsert(collection: String, points: [Point]) async throws -> WriteResult {
        try await upsert(collection: collection, points: points, version: nil)
    }
    public func delete(collection: String, ids: [String]) async throws -> WriteResult {
        try await delete(collection: collection, ids: ids, version: nil)
    }
}

/// The deadline of the request being served, set by the REST layer for the whole fan-out;
/// remote shard calls send the time left as `grpc-timeout`.
public enum RequestDeadline {
    @TaskLocal public static var current: ContinuousClock.Instant?
}

/// How many replicas of a shard must answer a read (`"consistency"` of a search or get).
public enum ReadConsistency: String, Sendable, CaseIterable {
    /// One in-sync replica (it holds every write this router acknowledged), hedged.
    case one
    /// More than half of the replicas; the answer of the one with the newest version is used.
    case majority
    /// Every replica; the same.
    case all
}

/// What the read being served needs of the replicas that answer it, set by the REST layer for
/// the whole fan-out (like the deadline). Shards without replicas meet any requirement.
public struct ReadRequirement: Sendable, Equatable {
    public var consistency: ReadConsistency
    /// Per shard name, the version a replica must have reached (a read-your-writes token).
    public var minVersions: [String: UInt64]

    public init(consistency: ReadConsistency = .one, minVersions: [String: UInt64] = [:]) {
        (self.consistency, self.minVersions) = (consistency, minVersions)
    }

    public var isDefault: Bool { consistency == .one && minVersions.isEmpty }

    @TaskLocal public static var current = ReadRequirement()
}

/// A failed shard call, the router's and the shard protocol's one error type: who is at
/// fault (`kind`), a stable snake_case code (`collection_not_found`, `shards_unavailable`, ...)
/// and a message naming the problem. Errors of lower layers become this in one place each
/// (`SchemaError` here, `StorageError` in the shard module, gRPC statuses in
/// ProtoToSchema.swift); it becomes an HTTP status in the REST layer's RESTErrors.swift and a
/// gRPC status in ShardWire.swift.
public struct ShardCallError: Error, Sendable, Equatable, CustomStringConvertible {
    public var kind: ErrorKind
    public var code: String
    public var message: String
    /// A write that spans shards and failed on some of them: the shards that applied it and
    /// those that did not (both empty for any other error). Retrying the whole request is safe:
    /// upserts and deletes by id are idempotent.
    public var appliedShards: [String] = []
    public var failedShards: [String] = []

    public init(_ kind: ErrorKind, code: String, _ message: String) {
        self.kind = kind
        self.code = code
        self.message = message
    }

    public init(_ error: SchemaError) { self.init(error.kind, code: error.code, error.description) }

    public var description: String { message }
}

extension ShardCallError: GRPCStatusConvertible {}

/// Any error of a shard call as a `ShardCallError` (errors of unknown type are internal).
public func shardError(_ error: any Error) -> ShardCallError {
    switch error {
    case let e as ShardCallError: return e
    case let e as SchemaError: return ShardCallError(e)
    case let e as GRPCError: return ShardCallError(e)
    default: return ShardCallError(.internalError, .internalError, "internal error: \(error)")
    }
}
