import VecShardShardAPI

/// A replica's side of replica repair as a state machine: what `RepairableShard` may do in each
/// state and what a `Sync` request starts, with no I/O (the copy itself, and the task running
/// it, are `RepairableShard`'s).
///
///     serving ──Sync(force)──▶ syncing ──copied──▶ serving
///                                 └──failed──▶ serving (it was serving: it serves as it was;
///                                              the router still knows it missed writes)
///     awaiting_sync ──Sync──▶ syncing ──copied──▶ serving
///                                 └──failed──▶ awaiting_sync (still tracking writes)
///
/// Reads are allowed only while serving. Writes are taken in every state; while the replica is
/// not serving (or a forced sync runs) the ids they write are tracked as dirty, and collections
/// created, so the copy leaves what is newer than the peer's scan alone.
struct ReplicaSyncState: Sendable, Equatable {
    private(set) var state: ReplicaState
    /// Ids written per collection since tracking began; nil while not tracking.
    private(set) var dirty: [String: Set<String>]?
    /// Collections created since tracking began (a copy must not drop them).
    private(set) var created: Set<String> = []

    init(awaitingSync: Bool) {
        state = awaitingSync ? .awaitingSync : .serving
        dirty = awaitingSync ? [:] : nil
    }

    var readsAllowed: Bool { state == .serving }
    var isTracking: Bool { dirty != nil }

    /// What a `Sync` request does when no sync is running.
    enum SyncDecision: Equatable {
        /// Serving and not forced: up to date already.
        case upToDate
        /// Start a copy; `settle`: wait first so writes in flight reach both replicas (the
        /// replica was serving, so it was not tracking them).
        case start(settle: Bool, wasServing: Bool)
    }

    mutating func syncRequested(force: Bool) -> SyncDecision {
        if state == .serving && !force { return .upToDate }
        if dirty == nil {
            dirty = [:]
            created = []
        }
        let wasServing = state == .serving
        state = .syncing
        return .start(settle: wasServing, wasServing: wasServing)
    }

    /// A write succeeded (only then may its ids make the copy skip them).
    mutating func wrote(collection: String, ids: [String]) {
        guard dirty != nil else { return }
        dirty![collection, default: []].formUnion(ids)
    }

    mutating func createdCollection(_ name: String) {
        if dirty != nil { created.insert(name) }
    }

    func dirtyIDs(in collection: String) -> Set<String> { dirty?[collection] ?? [] }

    mutating func syncFinished(succeeded: Bool, wasServing: Bool) {
        if succeeded || wasServing {
            state = .serving
            dirty = nil
            created = []
        } else {
            state = .awaitingSync
        }
    }
}
