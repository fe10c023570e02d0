import VecShardSchema

/// The codes the router and the shard service raise themselves: stable snake_case strings, on the
/// wire (`[code] message` in grpc-message) and in the REST error object. Errors of lower layers
/// bring their own codes (`SchemaError.code`, `StorageError.code`); a code received from a shard
/// is kept as it came.
public enum ShardErrorCode: String, Sendable, CaseIterable {
    /// A shard answered something the router cannot use.
    case badResponse = "bad_response"
    /// The request was cancelled before a write was sent; nothing was written.
    case cancelled
    /// The collection exists with another schema.
    case collectionAlreadyExists = "collection_already_exists"
    /// No collection of that name.
    case collectionNotFound = "collection_not_found"
    /// The request's deadline passed before a write was sent; nothing was written.
    case deadlineExceeded = "deadline_exceeded"
    /// A bug: an error of unknown type.
    case internalError = "internal"
    /// A schema knob is out of range.
    case invalidSchema = "invalid_schema"
    /// A proposed topology breaks a rule (names, groups, routing).
    case invalidTopology = "invalid_topology"
    /// A request breaks a documented limit.
    case limitExceeded = "limit_exceeded"
    /// No point with that id.
    case pointNotFound = "point_not_found"
    /// A topology change while a rebalance runs (one at a time).
    case rebalanceRunning = "rebalance_running"
    /// An abort with no rebalance to abort (none runs, or it flipped already).
    case noRebalanceRunning = "no_rebalance_running"
    /// A change that moves points while other routers use the shards (a rebalance needs one).
    case severalRouters = "several_routers"
    /// A shard a topology change adds holds points of a collection already.
    case shardNotEmpty = "shard_not_empty"
    /// A replica that is syncing (or waiting to) refuses reads; it takes writes.
    case replicaCatchingUp = "replica_catching_up"
    /// Too few replicas of a shard could answer a read at its consistency (or had reached its
    /// token's version) before the deadline.
    case consistencyUnavailable = "consistency_unavailable"
    /// A consistency token that does not parse, or belongs to another collection.
    case invalidConsistencyToken = "invalid_consistency_token"
    /// No replica of one shard answered.
    case shardUnavailable = "shard_unavailable"
    /// Shards did not answer a search (without `allow_partial`), or a write was refused before it was sent.
    case shardsUnavailable = "shards_unavailable"
    /// No peer could be copied by a replica sync.
    case syncFailed = "sync_failed"
    /// The topology names a shard the router has no client for.
    case unknownShard = "unknown_shard"
    /// `If-Match` names another topology version than the current one.
    case versionMismatch = "version_mismatch"
    /// Fewer replicas acknowledged a write than its quorum.
    case writeQuorumFailed = "write_quorum_failed"
}

extension ShardCallError {
    public init(_ kind: ErrorKind, _ code: ShardErrorCode, _ message: String) { self.init(kind, code: code.rawValue, message) }
}
