import VecShardProto
import VecShardRPC

/// The one protocol between the router and a shard. Two implementations: `LocalShard`
/// (in-process, the standalone default) and the gRPC transport (remote shards); nothing above
/// this protocol knows which. Values are the shard service's protobuf messages, so the remote
/// implementation only encodes them.
public protocol ShardClient: Sendable {
    /// The shard's name in the topology.
    var name: String { get }
    func createCollection(_ request: CreateCollectionRequest) async throws -> CollectionInfoMessage
    func dropCollection(_ name: String) async throws -> Bool
    func describeCollection(_ name: String) async throws -> CollectionInfoMessage
    func upsert(_ request: UpsertRequest) async throws -> WriteResponse
    func delete(_ request: IDsRequest) async throws -> WriteResponse
    func get(_ request: IDsRequest) async throws -> PointsResponse
    func search(_ request: SearchRequest) async throws -> SearchResponse
    func stats() async throws -> StatsResponse
    /// Calls `body` with batches of points (all, or those the selector picks).
    func scan(_ request: ScanRequest, _ body: @Sendable (PointsResponse) async throws -> Void) async throws
    func flush(_ collection: String) async throws
    func compact(_ collection: String) async throws
    /// Why a write to this shard would fail now (too few live replicas for the write quorum), or
    /// nil. Lets the router refuse a batch before writing any of it.
    var writeBlocker: String? { get }
    /// Replica repair: bring this replica up to date from one of `request.peers` (see
    /// `RepairableShard`). Shards without replica state are always up to date.
    func sync(_ request: SyncRequest) async throws -> SyncResponse
}

extension ShardClient {
    public var writeBlocker: String? { nil }
    public func sync(_ request: SyncRequest) async throws -> SyncResponse { SyncResponse(replicaState: "serving") }
}

/// The deadline of the request being served, set by the REST layer for the whole fan-out;
/// remote shard calls send the time left as `grpc-timeout`.
public enum RequestDeadline {
    @TaskLocal public static var current: ContinuousClock.Instant?
}

/// A failed shard call: a gRPC status (how far it reaches: the caller's fault, missing, or the
/// shard's), a stable snake_case code and a message naming the problem. The HTTP layer maps
/// `statusCode` to an HTTP status in one place.
public struct ShardCallError: Error, Sendable, Equatable, CustomStringConvertible {
    public var statusCode: GRPCStatusCode
    public var code: String
    public var message: String
    /// A write that spans shards and failed on some of them: the shards that applied it and
    /// those that did not (both empty for any other error). Retrying the whole request is safe:
    /// upserts and deletes by id are idempotent.
    public var appliedShards: [String] = []
    public var failedShards: [String] = []

    public init(_ status: GRPCStatusCode, code: String, _ message: String) {
        self.statusCode = status
        self.code = code
        self.message = message
    }

    public var description: String { message }

    /// Over gRPC the code travels in front of the message: `[code] message`.
    public var grpcError: GRPCError { GRPCError(statusCode, "[\(code)] \(message)") }

    public init(_ error: GRPCError) {
        statusCode = error.code
        if error.message.hasPrefix("["), let close = error.message.firstIndex(of: "]") {
            code = String(error.message[error.message.index(after: error.message.startIndex)..<close])
            message = String(error.message[error.message.index(after: close)...]).trimmingPrefix(" ").description
        } else {
            code = error.code.description.lowercased()
            message = error.message
        }
    }
}

extension ShardCallError: GRPCStatusConvertible {}
