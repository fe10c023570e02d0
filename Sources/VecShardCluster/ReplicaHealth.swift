import VecShardSchema
import VecShardShardAPI

/// The router's view of one shard's replicas, as a state machine in SwiftNIO's manner: events go
/// in (a call's outcome, a write's outcome, a round of health reports, a sync's end), decisions
/// come out (which replica to sync from which peers), and nothing here does I/O or reads a clock
/// of its own. `ReplicatedShard` holds it under a lock, performs the actions and feeds back
/// their results.
///
/// Per replica:
///
///     serving ──fault──▶ suspect (for suspicionSeconds; a later success or answered check clears it)
///     serving ──said replica_catching_up / reported awaiting_sync or syncing──▶ catching up (writes, no reads)
///     any ──missed a write its peers applied──▶ needs sync ──health check──▶ syncing ──done──▶ serving
///                                                                              └─failed──▶ needs sync
public struct ReplicaHealth: Sendable {
    public struct Replica: Sendable, Equatable {
        /// Skipped for reads and counted as down for the write quorum until then.
        public var suspectedUntil: ContinuousClock.Instant?
        /// Not serving reads (it said `replica_catching_up`, or its last health report was not
        /// `serving`): it gets writes but no reads.
        public var catchingUp = false
        /// A write failed on it while a peer applied it: it has diverged and is synced from a
        /// peer once it answers.
        public var needsSync = false
        /// A sync of it, started by this router, is in flight.
        public var syncing = false

        public init() {}

        public func isSuspected(at now: ContinuousClock.Instant) -> Bool { suspectedUntil.map { now < $0 } ?? false }
    }

    /// A replica's health report (its `Stats`): its replica state and the points it holds.
    public struct Report: Sendable, Equatable {
        /// `serving`, `awaiting_sync` or `syncing`.
        public var state: String
        public var points: UInt64

        public init(state: String, points: UInt64) { (self.state, self.points) = (state, points) }
    }

    /// What the router should do after a round of health checks.
    public enum Action: Sendable, Equatable {
        /// Send `Sync` to `replica` with these peers (empty: it is declared up to date as it is);
        /// `force` when it missed writes (a full comparison, not only what changed).
        case sync(replica: Int, peers: [Int], force: Bool)
        /// Only for the operator's log: `replica` will sync from a peer that itself missed a
        /// write, because no other replica is serving.
        case syncFromDivergedPeer(replica: Int)
    }

    public private(set) var replicas: [Replica]
    public let writeQuorum: Int
    public let suspicion: Duration

    /// `writeQuorum`: replicas that must acknowledge a write (nil: all of them).
    public init(count: Int, writeQuorum: Int?, suspicion: Duration) {
        replicas = Array(repeating: Replica(), count: count)
        self.writeQuorum = min(writeQuorum ?? count, count)
        self.suspicion = suspicion
    }

    // MARK: events

    /// A call to `replica` succeeded: it is alive.
    public mutating func callSucceeded(_ replica: Int) {
        replicas[replica].suspectedUntil = nil
    }

    /// A call to `replica` failed. Cancelled calls (another replica answered first, or the caller
    /// went away) prove nothing; `replica_catching_up` means alive but not serving reads; other
    /// replica faults (transport, overload, deadline) make it a suspect.
    public mutating func callFailed(_ replica: Int, kind: ErrorKind, code: String, now: ContinuousClock.Instant) {
        if kind == .cancelled { return }
        if code == ShardErrorCode.replicaCatchingUp.rawValue {
            replicas[replica].catchingUp = true
        } else if Self.isReplicaFault(kind) {
            replicas[replica].suspectedUntil = now + suspicion
        }
    }

    /// A write went to every replica; `failed` holds the kinds of errors of those that failed.
    /// When some replica applied it, the others (unless merely cancelled) have diverged.
    public mutating func writeFinished(applied: [Bool], failed: [Int: ErrorKind]) {
        guard applied.contains(true) else { return }
        for (replica, kind) in failed where kind != .cancelled { replicas[replica].needsSync = true }
    }

    /// A round of health checks answered (`reports[i]` nil: replica i did not answer in time).
    /// Updates suspicion and read eligibility, and decides which replicas to sync:
    /// - a replica that reports `awaiting_sync`, or missed a write, syncs from the serving
    ///   replicas that did not miss a write (or, with none, from serving ones that did);
    /// - when no replica is serving (the whole shard restarted), one is declared up to date as
    ///   it is: with a write quorum of all replicas the first that answered (each acknowledged
    ///   write is on every one); with a smaller quorum only once all answered, the one holding the
    ///   most points.
    /// Replicas chosen are marked syncing and catching up until `syncFinished`.
    public mutating func healthChecked(_ reports: [Report?], now: ContinuousClock.Instant) -> [Action] {
        precondition(reports.count == replicas.count)
        let answered = reports.map { $0?.state }
        for i in replicas.indices {
            if let state = answered[i] {
                replicas[i].suspectedUntil = nil
                if !replicas[i].syncing { replicas[i].catchingUp = state != "serving" }
            } else {
                replicas[i].suspectedUntil = now + suspicion
            }
        }
        let serving = replicas.indices.filter { answered[$0] == "serving" && !replicas[$0].syncing }
        let clean = serving.filter { !replicas[$0].needsSync }
        var actions: [Action] = []
        for i in replicas.indices {
            guard let state = answered[i], !replicas[i].syncing else { continue }
            let missedWrites = replicas[i].needsSync
            guard state == "awaiting_sync" || missedWrites else { continue }
            var peers = clean.filter { $0 != i }
            if peers.isEmpty && state != "serving" {
                peers = serving.filter { $0 != i }
                if !peers.isEmpty { actions.append(.syncFromDivergedPeer(replica: i)) }
            }
            if peers.isEmpty {
                // Nobody to copy from: a replica that missed writes waits for a peer; a freshly
                // started one may be declared the source.
                guard state == "awaiting_sync", !answered.contains("serving"), !answered.contains("syncing"),
                      designatedSource(reports.map { $0?.points }) == i else { continue }
            }
            replicas[i].syncing = true
            replicas[i].catchingUp = true
            replicas[i].needsSync = false
            actions.append(.sync(replica: i, peers: peers, force: missedWrites))
        }
        return actions
    }

    /// A sync started by `healthChecked` ended. `force`: the one it was started with (the replica
    /// had missed writes, which a failed sync leaves missed).
    public mutating func syncFinished(_ replica: Int, succeeded: Bool, force: Bool) {
        if succeeded {
            replicas[replica].catchingUp = false
        } else if force {
            replicas[replica].needsSync = true
        }
        replicas[replica].syncing = false
    }

    // MARK: queries

    /// Replicas that may serve reads (none catching up); all of them when every one is.
    public func readable() -> [Int] {
        let serving = replicas.indices.filter { !replicas[$0].catchingUp }
        return serving.isEmpty ? Array(replicas.indices) : serving
    }

    public func suspected(at now: ContinuousClock.Instant) -> [Int] {
        replicas.indices.filter { replicas[$0].isSuspected(at: now) }
    }

    /// Why a write would fail now: fewer live (not suspected) replicas than the write quorum.
    public func writeBlocked(at now: ContinuousClock.Instant) -> (live: Int, down: [Int])? {
        let down = suspected(at: now)
        return replicas.count - down.count < writeQuorum ? (replicas.count - down.count, down) : nil
    }

    /// `serving`, `catching_up` or `suspect`, as /admin/shards shows it.
    public func displayState(_ replica: Int, at now: ContinuousClock.Instant) -> String {
        let r = replicas[replica]
        return r.isSuspected(at: now) ? "suspect" : (r.catchingUp || r.syncing) ? "catching_up" : "serving"
    }

    /// Transport trouble or an overloaded replica: another replica may well answer.
    public static func isReplicaFault(_ kind: ErrorKind) -> Bool {
        switch kind {
        case .unavailable, .deadlineExceeded, .internalError, .cancelled, .resourceExhausted: return true
        default: return false
        }
    }

    /// Which freshly started replica becomes the source when none is serving. `points`: each
    /// replica's point count, nil for those that did not answer. Replicas that missed a write are
    /// passed over while another candidate exists.
    private func designatedSource(_ answeredPoints: [UInt64?]) -> Int? {
        if writeQuorum < replicas.count { guard answeredPoints.allSatisfy({ $0 != nil }) else { return nil } }
        let clean = answeredPoints.indices.map { answeredPoints[$0] != nil && !replicas[$0].needsSync ? answeredPoints[$0] : nil }
        let points = clean.contains { $0 != nil } ? clean : answeredPoints
        if writeQuorum >= replicas.count { return points.firstIndex { $0 != nil } }
        // The replica holding the most points (lowest index on a tie): without per-point versions
        // this is the best guess at the one that saw the most acknowledged writes.
        return points.indices.filter { points[$0] != nil }.max { (points[$0]!, -$0) < (points[$1]!, -$1) }
    }
}
