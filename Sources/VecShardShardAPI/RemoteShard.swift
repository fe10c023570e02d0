import NIOCore
import VecShardHTTP
import VecShardProto
import VecShardRPC

/// The shard protocol on the wire: `vecshard.v1.Shard` (proto/vecshard/v1/shard.proto).
public enum ShardGRPC {
    public static let serviceName = "vecshard.v1.Shard"
}

/// A shard replica at a `host:port`, called over gRPC. Every call carries a deadline.
public final class RemoteShard: ShardClient {
    public let name: String
    public let peer: Peer
    private let client: GRPCClient
    /// Deadline of each call (propagated as `grpc-timeout`).
    public let timeout: TimeAmount
    /// Deadline of a `Sync` (and of the scans it makes of a peer): a whole replica is copied.
    public let syncTimeout: TimeAmount

    public init(name: String, peer: Peer, client: GRPCClient, timeout: TimeAmount = .seconds(30), syncTimeout: TimeAmount = .hours(2)) {
        self.name = name
        self.peer = peer
        self.client = client
        self.timeout = timeout
        self.syncTimeout = syncTimeout
    }

    /// The call's timeout: the request's remaining time when one is set, at most `timeout`.
    private var effectiveTimeout: TimeAmount {
        guard let deadline = RequestDeadline.current else { return timeout }
        let left = deadline - ContinuousClock.now
        let nanos = left.components.seconds * 1_000_000_000 + left.components.attoseconds / 1_000_000_000
        return .nanoseconds(max(1_000_000, min(nanos, timeout.nanoseconds)))
    }

    private func call<Req: ProtoMessage, Res: ProtoMessage>(_ method: String, _ request: Req, as: Res.Type = Res.self) async throws -> Res {
        do {
            return try await client.unary("/\(ShardGRPC.serviceName)/\(method)", request, to: peer, timeout: effectiveTimeout)
        } catch let error as GRPCError {
            throw ShardCallError(error)
        }
    }

    public func createCollection(_ request: CreateCollectionRequest) async throws -> CollectionInfoMessage {
        try await call("CreateCollection", request)
    }

    public func dropCollection(_ name: String) async throws -> Bool {
        try await call("DropCollection", CollectionNameRequest(name: name), as: DropCollectionResponse.self).dropped
    }

    public func describeCollection(_ name: String) async throws -> CollectionInfoMessage {
        try await call("DescribeCollection", CollectionNameRequest(name: name))
    }

    public func upsert(_ request: UpsertRequest) async throws -> WriteResponse { try await call("Upsert", request) }
    public func delete(_ request: IDsRequest) async throws -> WriteResponse { try await call("Delete", request) }
    public func get(_ request: IDsRequest) async throws -> PointsResponse { try await call("Get", request) }
    public func search(_ request: SearchRequest) async throws -> SearchResponse { try await call("Search", request) }
    public func stats() async throws -> StatsResponse { try await call("Stats", StatsRequest()) }

    public func scan(_ request: ScanRequest, _ body: @Sendable (PointsResponse) async throws -> Void) async throws {
        let batches: [PointsResponse]
        do {
            batches = try await client.serverStreaming("/\(ShardGRPC.serviceName)/Scan", request, to: peer, timeout: effectiveTimeout)
        } catch let error as GRPCError {
            throw ShardCallError(error)
        }
        for batch in batches { try await body(batch) }
    }

    /// A sync copies a whole replica: it gets `syncTimeout`, not the per-call `timeout`.
    public func sync(_ request: SyncRequest) async throws -> SyncResponse {
        do {
            return try await client.unary("/\(ShardGRPC.serviceName)/Sync", request, to: peer, timeout: syncTimeout)
        } catch let error as GRPCError {
            throw ShardCallError(error)
        }
    }

    public func flush(_ collection: String) async throws {
        _ = try await call("Maintain", MaintainRequest(collection: collection, operation: .flush), as: MaintainResponse.self)
    }

    public func compact(_ collection: String) async throws {
        _ = try await call("Maintain", MaintainRequest(collection: collection, operation: .compact), as: MaintainResponse.self)
    }
}
