import VecShardEngine
import VecShardSchema

/// Storage knobs of a shard (all collections), in plain words.
public struct StorageOptions: Sendable {
    /// When growing segments are sealed and sealed segments compacted.
    public var thresholds: SegmentThresholds
    /// A WAL file is rotated (a new one started) once it is larger than this (bytes).
    public var walFileBytes: Int
    /// Seal and compact automatically in the background (tests may turn this off and call
    /// `flush()` / `compact()` themselves).
    public var automaticMaintenance: Bool
    /// Backpressure: while this many frozen segments wait for their seal (index build),
    /// upserts wait too, so memory stays bounded when writes outrun index builds (with
    /// automatic maintenance only).
    public var maxSealingSegments: Int
    /// How long an upsert waits for a seal to finish before it fails with `unavailable`
    /// (nothing of it is written then).
    public var sealWaitSeconds: Double

    /// A new WAL file is preallocated with this many bytes and grows (fallocate, in steps
    /// doubling up to 16 MiB) as records fill it, up to about `walFileBytes`; so an idle
    /// collection holds about this much log per shard.
    public var walInitialFileBytes: Int
    /// The most collections a shard holds; creating one more fails with
    /// `collectionLimitReached` (400 `limit_exceeded`). Refused (damaged) collections count.
    public var maxCollections: Int
    /// Open collections whose WAL is damaged before its end by cutting the log at the
    /// damage (records after it are lost; the damaged files are renamed aside, not
    /// deleted). Off: such a collection is refused with `walDamaged` and stays untouched.
    public var acceptWALDamage: Bool
    /// The same, for these collections only (`vecshard recover --collection`).
    public var acceptWALDamageCollections: Set<String> = []
    /// Receives the storage's warnings (WAL cuts and damage, quarantined points, failed
    /// maintenance, a full disk); storage logs nothing itself. Called on storage threads.
    public var eventHandler: (@Sendable (StorageEvent) -> Void)?
    /// Tombstones (deleted ids with the version of their delete) are kept this long, on the
    /// version clock, so that a replica catching up by difference learns of deletes; older
    /// ones are dropped when a manifest is published (the collection's tombstone floor).
    public var tombstoneRetentionSeconds: Double = 7 * 24 * 3600

    public init(thresholds: SegmentThresholds = SegmentThresholds(), walFileBytes: Int = 64 << 20,
                automaticMaintenance: Bool = true, maxSealingSegments: Int = 2, sealWaitSeconds: Double = 30,
                walInitialFileBytes: Int = 1 << 20, maxCollections: Int = 1000, acceptWALDamage: Bool = false,
                eventHandler: (@Sendable (StorageEvent) -> Void)? = nil) {
        self.thresholds = thresholds
        self.walFileBytes = walFileBytes
        self.walInitialFileBytes = walInitialFileBytes
        self.maxCollections = maxCollections
        self.acceptWALDamage = acceptWALDamage
        self.eventHandler = eventHandler
        self.automaticMaintenance = automaticMaintenance
        self.maxSealingSegments = maxSealingSegments
        self.sealWaitSeconds = sealWaitSeconds
    }
}

/// The outcome of an acknowledged write: durable in the WAL and visible to searches.
public struct WriteReceipt: Sendable, Equatable {
    /// The log sequence number of the write's record.
    public var lsn: UInt64
    /// Points written (upsert) or existing points deleted (delete).
    public var count: Int
    /// The version the write carried (stamped by the collection when the caller gave none).
    public var version: UInt64 = 0
}

/// A collection's state for operators and the router.
public struct CollectionDescription: Sendable, Equatable {
    public var schema: CollectionSchema
    /// Live points (distinct ids).
    public var pointCount: Int
    /// LSN of the last applied write (monotonically increasing; 0 for a new collection).
    public var lsn: UInt64
    /// Writes at or below this LSN are in sealed segments; recovery replays the rest.
    public var checkpointLSN: UInt64
    public var segments: [SegmentDescription]
    /// Resident bytes (estimate): growing segments, sealed ids/postings, engine indexes'
    /// anonymous memory (mapped files excluded).
    public var memoryBytes: Int
    /// Bytes on disk: segment files and WAL.
    public var diskBytes: Int
    /// Bytes of WAL files on disk (files start at 1 MiB and grow as records fill them, by default).
    public var walBytes: Int
    /// Record bytes appended to the WAL since the collection was opened.
    public var walBytesAppended: Int
    /// Seconds the WAL spent writing and fsyncing those bytes (its I/O time, without applying).
    public var walIOSeconds: Double
    /// Seconds the WAL's applier spent staging and publishing groups (without waiting for
    /// their writes): with `walIOSeconds`, which of the two pipeline stages is the busier.
    public var walApplySeconds: Double = 0
    /// The last background error (a failed seal or compaction), if any.
    public var maintenanceError: String?
    /// Failed maintenance and quarantined rows since the collection was opened.
    public var maintenance = MaintenanceCounters()
    /// The last write was refused because the disk is full: the collection is read-only
    /// (reads work) until a write finds room again.
    public var diskFull = false
    /// The highest version applied (0: none yet, or only writes from before versions).
    public var version: UInt64 = 0
    /// Order-independent hash of the live (id, version) pairs: equal on replicas with the
    /// same content.
    public var checksum: UInt64 = 0
    /// Tombstones kept, and the highest version of those dropped (changes after a version
    /// below it cannot be listed).
    public var tombstones: Int = 0
    public var tombstoneFloor: UInt64 = 0
}

/// Background work that went wrong since a collection was opened.
public struct MaintenanceCounters: Sendable, Equatable {
    public var failedSeals = 0
    public var failedCompactions = 0
    public var failedPublishes = 0
    /// Rows dropped by seals because the index could not take their vector (see `VectorCheck`).
    public var quarantinedPoints = 0

    public init(failedSeals: Int = 0, failedCompactions: Int = 0, failedPublishes: Int = 0, quarantinedPoints: Int = 0) {
        self.failedSeals = failedSeals
        self.failedCompactions = failedCompactions
        self.failedPublishes = failedPublishes
        self.quarantinedPoints = quarantinedPoints
    }
}

/// A warning of the storage layer for the service's log (storage itself logs nothing).
public struct StorageEvent: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        /// A torn WAL tail (the unacknowledged last write of a crash) was cut.
        case walTailCut = "wal_tail_cut"
        /// A damaged WAL made the collection refuse to open (`walDamaged`).
        case walDamageRefused = "wal_damage_refused"
        /// A damaged WAL was cut because the operator accepted the loss.
        case walDamageAccepted = "wal_damage_accepted"
        /// A seal dropped a row whose vector the index cannot take.
        case pointQuarantined = "point_quarantined"
        /// A seal, compaction or manifest publish failed (it is retried).
        case maintenanceFailed = "maintenance_failed"
        /// A collection could not be opened; the others serve.
        case collectionRefused = "collection_refused"
        /// No room for the WAL: the collection is read-only for now.
        case diskFull = "disk_full"
    }

    public var kind: Kind
    public var collection: String
    public var message: String

    public init(kind: Kind, collection: String, message: String) {
        self.kind = kind
        self.collection = collection
        self.message = message
    }

    public var description: String { "collection '\(collection)': \(message)" }
}

public struct SegmentDescription: Sendable, Equatable {
    public var id: UInt64
    public var state: SegmentState
    public var rows: Int
    public var liveRows: Int
    /// The index searched: FLAT for growing and sealing segments.
    public var indexKind: IndexKind
    public var memoryBytes: Int
    public var diskBytes: Int
}
