import VecShardShardAPI

/// A replica's side of catch-up as a state machine: what `RepairableShard` may do in each state
/// and what a `Sync` request starts, with no I/O (the copy itself, the task running it and the
/// CATCHUP file are `RepairableShard`'s). docs/ARCHITECTURE.md, "Catch-up by difference".
///
///     serving ──Sync(force)──▶ syncing ──caught up──▶ serving
///                                 └──failed──▶ serving (it was serving: it serves as it was;
///                                              the router still knows it missed writes)
///     awaiting_sync ──Sync──▶ syncing ──caught up──▶ serving
///                                 └──failed──▶ awaiting_sync
///
/// Reads are allowed only while serving; writes are taken in every state (each applies last
/// writer wins, so a live write and the copy of an older value of the same id can arrive in
/// either order). A replica starts in `awaiting_sync` when asked to (`--await-sync`) or when a
/// catch-up was pending when it stopped (its CATCHUP file).
struct ReplicaSyncState: Sendable, Equatable {
    private(set) var state: ReplicaState
    /// The catch-up point that must not be forgotten (persisted in CATCHUP): the lowest
    /// version after which a router said this replica missed writes.
    private(set) var pendingAfter: UInt64?
    /// Collections created since a catch-up began (the copy must not drop them).
    private(set) var created: Set<String> = []

    init(awaitingSync: Bool, pendingAfter: UInt64? = nil) {
        let waiting = awaitingSync || pendingAfter != nil
        state = waiting ? .awaitingSync : .serving
        self.pendingAfter = pendingAfter
    }

    var readsAllowed: Bool { state == .serving }

    /// What a `Sync` request does when no sync is running.
    enum SyncDecision: Equatable {
        /// Serving and not forced: up to date already.
        case upToDate
        /// Catch up on the changes after `after`; with `margin` (no point is known: neither a
        /// router nor CATCHUP named one) after its own highest version per collection minus the
        /// margin, which covers the writes in flight when it stopped. A router's point is
        /// complete for that router's writes: a write in flight to a replica that died failed at
        /// the router and counts as missed. `persist`: write `after` to CATCHUP first.
        case start(after: UInt64?, margin: Bool, wasServing: Bool, persist: Bool)
    }

    mutating func syncRequested(force: Bool, afterVersion: UInt64?) -> SyncDecision {
        if state == .serving && !force { return .upToDate }
        let after: UInt64? = switch (afterVersion, pendingAfter) {
        case let (a?, p?): min(a, p)
        case let (a, p): a ?? p
        }
        let persist = after != nil && after != pendingAfter
        pendingAfter = after
        let wasServing = state == .serving
        state = .syncing
        created = []
        return .start(after: after, margin: after == nil, wasServing: wasServing, persist: persist)
    }

    mutating func createdCollection(_ name: String) {
        if state != .serving { created.insert(name) }
    }

    /// The catch-up ended. A failed one keeps `pendingAfter` (and CATCHUP) for the next, and
    /// then serves no reads (it knows it lacks writes); only a replica that was serving and was
    /// asked without a point serves as it was.
    mutating func syncFinished(succeeded: Bool, wasServing: Bool) {
        if succeeded {
            state = .serving
            pendingAfter = nil
        } else {
            state = wasServing && pendingAfter == nil ? .serving : .awaitingSync
        }
        created = []
    }
}
