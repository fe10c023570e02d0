import VecShardEngine
import VecShardSchema

// The values of the shard protocol as the router and the shard service use them: schema values
// (`Point`, `MetadataFilter`, `CollectionSchema`, `SearchHit`) and the few records of the calls
// themselves. Protobuf messages appear only at the wire: `RemoteShard` and the gRPC service
// convert with ProtoToSchema.swift / SchemaToProto.swift.

/// One query of a search call: the vector, its filter, the knobs and what to return.
public struct ShardQuery: Sendable, Equatable {
    public var vector: [Float]
    /// Every field's condition must hold; empty: all points.
    public var filter: MetadataFilter
    /// Hits wanted from this shard (the router asks for k × oversample).
    public var k: Int
    /// nil: the index's default.
    public var nprobe: Int?
    public var ef: Int?
    public var refine: Int?
    /// An exact scan, whatever the index.
    public var exact: Bool
    public var includeVector: Bool
    public var includeMetadata: Bool

    public init(vector: [Float], filter: MetadataFilter = [:], k: Int = 10, nprobe: Int? = nil, ef: Int? = nil, refine: Int? = nil,
                exact: Bool = false, includeVector: Bool = false, includeMetadata: Bool = true) {
        (self.vector, self.filter, self.k, self.nprobe, self.ef, self.refine) = (vector, filter, k, nprobe, ef, refine)
        (self.exact, self.includeVector, self.includeMetadata) = (exact, includeVector, includeMetadata)
    }

    /// The engine's knobs of this query.
    public var parameters: SearchParameters {
        SearchParameters(k: k, nprobe: nprobe, ef: ef, refine: refine, exact: exact)
    }
}

/// A search call: queries of one collection, answered independently (a batch search, or
/// searches a router coalesced).
public struct ShardSearch: Sendable, Equatable {
    public var collection: String
    public var queries: [ShardQuery]

    public init(collection: String, queries: [ShardQuery]) {
        self.collection = collection
        self.queries = queries
    }
}

/// A collection as a shard (or, summed, the router) describes it.
public struct CollectionInfo: Sendable, Equatable {
    public var schema: CollectionSchema
    /// Live points.
    public var count: UInt64 = 0
    public var segments: Int = 0
    public var memoryBytes: UInt64 = 0
    public var diskBytes: UInt64 = 0
    /// The last applied write's log sequence number.
    public var lsn: UInt64 = 0
    /// Some segment's index is being built (searches scan it exactly meanwhile).
    public var indexBuilding = false
    /// The last background error, if any.
    public var maintenanceError: String?
    public var failedSeals: UInt64 = 0
    public var failedCompactions: UInt64 = 0
    public var quarantinedPoints: UInt64 = 0
    /// Writes are refused for a full disk (reads work).
    public var diskFull = false
    /// The highest version applied, the checksum of the live (id, version) pairs, tombstones
    /// kept and the highest version of those dropped (docs/ARCHITECTURE.md, "Versioned points").
    public var version: UInt64 = 0
    public var checksum: UInt64 = 0
    public var tombstones: UInt64 = 0
    public var tombstoneFloor: UInt64 = 0

    public init(schema: CollectionSchema) { self.schema = schema }

    public var name: String { schema.name }
}

/// A collection a shard refused to open (a damaged log), with the error that says why.
public struct RefusedCollection: Sendable, Equatable {
    public var name: String
    public var code: String
    public var message: String

    public init(name: String, code: String, message: String) {
        (self.name, self.code, self.message) = (name, code, message)
    }
}

/// A replica's sync state, as its `Stats` reports it (see `RepairableShard`).
public enum ReplicaState: String, Sendable, Equatable {
    case serving
    case awaitingSync = "awaiting_sync"
    case syncing
}

/// A shard's state: its collections, the ones it refused, its replica state.
public struct ShardStats: Sendable, Equatable {
    public var shardID: String
    public var collections: [CollectionInfo] = []
    public var refusedCollections: [RefusedCollection] = []
    public var memoryBytes: UInt64 = 0
    public var diskBytes: UInt64 = 0
    public var replicaState: ReplicaState = .serving
    /// The replica knows it missed writes (a catch-up failed or is due).
    public var catchUpPending = false
    /// Routers that checked this replica's health in the last 10 s (a rebalance needs one).
    public var routersSeen: [String] = []

    public init(shardID: String) { self.shardID = shardID }
}

/// The outcome of an acknowledged write.
public struct WriteResult: Sendable, Equatable {
    /// The largest log sequence number the write got on a shard.
    public var lsn: UInt64
    /// Points written (upsert) or existing points deleted (delete).
    public var applied: Int
    /// Replicas that did not acknowledge although the write met its quorum (they are repaired).
    public var failedReplicas: [String]
    /// The version the write carried.
    public var version: UInt64
    /// A write the router spread over shards: the version it carried on each (for a
    /// read-your-writes token).
    public var shardVersions: [String: UInt64] = [:]

    public init(lsn: UInt64 = 0, applied: Int = 0, failedReplicas: [String] = [], version: UInt64 = 0) {
        (self.lsn, self.applied, self.failedReplicas, self.version) = (lsn, applied, failedReplicas, version)
    }
}

/// A scan of a collection's live points, in batches.
public struct ShardScan: Sendable, Equatable {
    public var collection: String
    /// Points per batch (0: 1000).
    public var batchSize: Int
    /// Ids only (no vectors or metadata).
    public var idsOnly: Bool
    /// Only the points the selector picks (a rebalancing copy, a repair).
    public var selector: PlacementSelector?

    public init(collection: String, batchSize: Int = 0, idsOnly: Bool = false, selector: PlacementSelector? = nil) {
        (self.collection, self.batchSize, self.idsOnly, self.selector) = (collection, batchSize, idsOnly, selector)
    }
}

/// Which points a scan or a page of changes picks by placement (online rebalancing): those
/// whose owner is `owner` (or, with `exclude`, is not), where the owner is found either by
/// rendezvous hashing of the id over `shards`, or, with `routing`, by a whole layout (shard-key
/// value → group, then rendezvous over the group's shards), which needs the point's metadata:
/// then only live points are picked, never deletes.
public struct PlacementSelector: Sendable, Equatable {
    public var shards: [String]
    public var owner: String
    public var exclude: Bool
    public var routing: Routing?

    /// A collection's layout: its groups (name, shard names), shard key, value → group, default group.
    public struct Routing: Sendable, Equatable {
        public var groups: [(name: String, shards: [String])]
        public var shardKey: String?
        public var valueGroups: [String: String]
        public var defaultGroup: String

        public init(groups: [(name: String, shards: [String])], shardKey: String?, valueGroups: [String: String], defaultGroup: String) {
            (self.groups, self.shardKey, self.valueGroups, self.defaultGroup) = (groups, shardKey, valueGroups, defaultGroup)
        }

        public static func == (a: Routing, b: Routing) -> Bool {
            a.groups.map(\.name) == b.groups.map(\.name) && a.groups.map(\.shards) == b.groups.map(\.shards)
                && a.shardKey == b.shardKey && a.valueGroups == b.valueGroups && a.defaultGroup == b.defaultGroup
        }
    }

    public init(shards: [String], owner: String, exclude: Bool = false, routing: Routing? = nil) {
        (self.shards, self.owner, self.exclude, self.routing) = (shards, owner, exclude, routing)
    }

    /// Whether the selector needs metadata (then it picks live points only).
    public var needsMetadata: Bool { routing != nil }
}

/// Bring a replica up to date from one of `peers` (empty: declare it up to date as it is).
public struct ReplicaSync: Sendable, Equatable {
    public var peers: [String]
    /// Catch up even when serving (it missed writes).
    public var force: Bool
    /// Catch up on the changes after this version (the router's `missedAfter`); nil: the
    /// replica chooses from what it knows (docs/ARCHITECTURE.md, "Catch-up by difference").
    public var afterVersion: UInt64?

    public init(peers: [String], force: Bool = false, afterVersion: UInt64? = nil) {
        self.peers = peers
        self.force = force
        self.afterVersion = afterVersion
    }
}

/// One page of a collection's changes after a position in (version, id) order.
public struct ChangesQuery: Sendable, Equatable {
    public var collection: String
    public var afterVersion: UInt64
    public var afterID: String
    /// Items per page (0: 1000).
    public var limit: Int
    /// List even when tombstones above `afterVersion` were dropped (a full comparison).
    public var ignoringFloor: Bool
    /// Only the items the selector picks (a rebalancing copy).
    public var selector: PlacementSelector?

    public init(collection: String, afterVersion: UInt64, afterID: String = "", limit: Int = 0, ignoringFloor: Bool = false,
                selector: PlacementSelector? = nil) {
        (self.collection, self.afterVersion, self.afterID, self.limit) = (collection, afterVersion, afterID, limit)
        self.ignoringFloor = ignoringFloor
        self.selector = selector
    }
}

/// A page of changes; while `more`, the next page starts at (nextVersion, nextID).
public struct ChangesPageResult: Sendable, Equatable {
    public var changes: VersionedChanges
    public var more: Bool
    public var nextVersion: UInt64
    public var nextID: String
    /// The peer's tombstone floor for the collection.
    public var tombstoneFloor: UInt64

    public init(changes: VersionedChanges = VersionedChanges(), more: Bool = false, nextVersion: UInt64 = 0, nextID: String = "",
                tombstoneFloor: UInt64 = 0) {
        (self.changes, self.more, self.nextVersion, self.nextID) = (changes, more, nextVersion, nextID)
        self.tombstoneFloor = tombstoneFloor
    }
}

/// What a sync did.
public struct SyncOutcome: Sendable, Equatable {
    public var replicaState: ReplicaState
    /// The peer copied from ("" when declared up to date as it was).
    public var source: String = ""
    public var copied: UInt64 = 0
    public var deleted: UInt64 = 0
    public var collections: Int = 0
    /// `changes` (by difference after a version) or `full` (a whole comparison); "" when nothing ran.
    public var mode: String = ""
    /// Points and deletes received from the peer.
    public var transferred: UInt64 = 0

    public init(replicaState: ReplicaState, source: String = "", copied: UInt64 = 0, deleted: UInt64 = 0, collections: Int = 0,
                mode: String = "", transferred: UInt64 = 0) {
        (self.replicaState, self.source) = (replicaState, source)
        (self.copied, self.deleted, self.collections) = (copied, deleted, collections)
        (self.mode, self.transferred) = (mode, transferred)
    }
}
