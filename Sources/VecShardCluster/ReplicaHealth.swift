import VecShardSchema
import VecShardShardAPI

/// The router's view of one shard's replicas and their in-sync set, as a state machine in
/// SwiftNIO's manner: events go in (a call's outcome, a write's outcome, a round of health
/// reports, a sync's end), decisions come out (which replica to sync from which peers, after
/// which version), and nothing here does I/O or reads a clock of its own. `ReplicatedShard`
/// holds it under a lock, performs the actions and feeds back their results.
/// docs/ARCHITECTURE.md, "In-sync set".
///
/// Per replica:
///
///     serving (in sync) ──fault──▶ suspect (for suspicionSeconds; an answered check clears it;
///                                           writes skip it and count as missed)
///     serving ──reported awaiting_sync or syncing / said replica_catching_up──▶ catching up
///     any ──missed a write (failed, or skipped while suspect) some replica applied──▶
///           out of sync (missedAfter = the version below the first write it missed)
///           ──health check──▶ syncing (Sync after missedAfter) ──done──▶ serving
///                                                               └─failed──▶ out of sync
///
/// Reads go to in-sync replicas. A write is acknowledged when at least `minInSync` of the
/// replicas that were in sync when it was sent made it durable; the others that failed left the
/// set first (they are out of sync), so every in-sync replica holds every acknowledged write.
public struct ReplicaHealth: Sendable {
    public struct Replica: Sendable, Equatable {
        /// Skipped for reads and writes until then.
        public var suspectedUntil: ContinuousClock.Instant?
        /// Not serving reads (it said `replica_catching_up`, or its last health report was not
        /// `serving`): it gets writes but no reads.
        public var catchingUp = false
        /// It missed a write some replica applied: out of the in-sync set until it caught up.
        public var needsSync = false
        /// With `needsSync`: the version below the first write it missed (nil: unknown, e.g.
        /// a write without a version; the replica then chooses from its own versions).
        public var missedAfter: UInt64?
        /// A sync of it, started by this router, is in flight.
        public var syncing = false
        /// Its last health report.
        public var report: Report?

        public init() {}

        public func isSuspected(at now: ContinuousClock.Instant) -> Bool { suspectedUntil.map { now < $0 } ?? false }
    }

    /// A replica's health report (its `Stats`): its replica state, the points it holds, its
    /// highest version and the checksum of its (id, version) pairs over all collections, and
    /// whether it knows it missed writes (a catch-up pending: it is never a source).
    public struct Report: Sendable, Equatable {
        /// `serving`, `awaiting_sync` or `syncing`.
        public var state: String
        public var points: UInt64
        public var version: UInt64
        public var checksum: UInt64
        public var pending: Bool

        public init(state: String, points: UInt64, version: UInt64 = 0, checksum: UInt64 = 0, pending: Bool = false) {
            (self.state, self.points, self.version, self.checksum, self.pending) = (state, points, version, checksum, pending)
        }
    }

    /// What the router should do after a round of health checks.
    public enum Action: Sendable, Equatable {
        /// Send `Sync` to `replica` with these peers (empty: it is declared up to date as it is);
        /// `force` when it missed writes, then `after`: the version after which it missed them.
        case sync(replica: Int, peers: [Int], force: Bool, after: UInt64?)
        /// Only for the operator's log: `replica` will sync from a peer that itself missed a
        /// write, because no other replica is serving.
        case syncFromDivergedPeer(replica: Int)
        /// Only for the operator's log: `replica` and `peer` hold different content at the same
        /// version; `replica` copies every change of `peer`.
        case diverged(replica: Int, peer: Int)
    }

    public private(set) var replicas: [Replica]
    /// The (version, checksum) reports of the in-sync replicas when they last differed: acted
    /// on when the next round sees exactly the same (no write in between), so writes in flight
    /// between the reports are not taken for a divergence (a write that reached some replicas
    /// when its router died).
    private var lastMismatch: [Int: [UInt64]]?
    /// Which of two diverged replicas copies from the other next (they take turns).
    private var reconcileTurn = 0
    /// In-sync replicas that must make a write durable before it is acknowledged.
    public let minInSync: Int
    public let suspicion: Duration

    /// `minInSync`: nil means every replica (`--min-in-sync-replicas all`).
    public init(count: Int, minInSync: Int?, suspicion: Duration) {
        replicas = Array(repeating: Replica(), count: count)
        self.minInSync = max(1, min(minInSync ?? count, count))
        self.suspicion = suspicion
    }

    /// The state of the same replicas under the shard's previous replica list (a topology change
    /// that added or removed replicas): `previous[i]` is replica i's old state, nil for a replica
    /// the change adds. An added replica holds nothing this router wrote: it is out of sync
    /// from version 0 and serves no reads until it caught up from a peer.
    public mutating func inherit(_ previous: [Replica?]) {
        precondition(previous.count == replicas.count)
        for i in replicas.indices {
            if var old = previous[i] {
                old.syncing = false
                replicas[i] = old
            } else {
                replicas[i].needsSync = true
                replicas[i].missedAfter = 0
                replicas[i].catchingUp = true
            }
        }
    }

    /// Missed writes `previous` (the same replicas under the previous client) knew of and this
    /// state does not: they leave the in-sync set here too.
    public mutating func inheritMissed(_ previous: [Replica?]) {
        precondition(previous.count == replicas.count)
        for i in replicas.indices {
            guard let old = previous[i], old.needsSync else { continue }
            replicas[i].needsSync = true
            replicas[i].missedAfter = min(replicas[i].missedAfter ?? .max, old.missedAfter ?? .max)
            if replicas[i].missedAfter == .max { replicas[i].missedAfter = nil }
        }
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

    /// A write with `version` (nil: one without, a create or drop) went to the replicas not
    /// suspected; `failed` holds the kinds of errors of those that failed, `skipped` the suspected
    /// ones it did not go to. When some replica applied it, the others have missed it: they leave
    /// the in-sync set (a cancelled call may or may not have applied it, so it counts as missed).
    public mutating func writeFinished(version: UInt64?, applied: [Bool], failed: [Int: ErrorKind], skipped: [Int] = []) {
        guard applied.contains(true) else { return }
        for replica in Array(failed.keys) + skipped {
            replicas[replica].needsSync = true
            // Only versioned writes move the point: a missed create or drop is repaired by the
            // catch-up's comparison of collections, whatever its version.
            if let version, version > 0 { replicas[replica].missedAfter = min(replicas[replica].missedAfter ?? .max, version - 1) }
        }
    }

    /// A round of health checks answered (`reports[i]` nil: replica i did not answer in time).
    /// Updates suspicion and read eligibility, and decides which replicas to sync:
    /// - a replica that reports `awaiting_sync`, or missed a write, catches up from the serving
    ///   in-sync replicas (or, with none, from serving ones that missed writes too);
    /// - when no replica is serving (the whole shard restarted), one is declared up to date as
    ///   it is: with `minInSync` of all replicas the first that answered (each acknowledged write
    ///   is on every one); otherwise, once all answered, the one with the highest version.
    /// Replicas chosen are marked syncing and catching up until `syncFinished`.
    public mutating func healthChecked(_ reports: [Report?], now: ContinuousClock.Instant) -> [Action] {
        precondition(reports.count == replicas.count)
        let answered = reports.map { $0?.state }
        for i in replicas.indices {
            if let report = reports[i] {
                replicas[i].suspectedUntil = nil
                replicas[i].report = report
                if !replicas[i].syncing { replicas[i].catchingUp = report.state != "serving" }
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
                      designatedSource(reports) == i else { continue }
            }
            let after = missedWrites ? replicas[i].missedAfter : nil
            replicas[i].syncing = true
            replicas[i].catchingUp = true
            replicas[i].needsSync = false
            replicas[i].missedAfter = nil
            actions.append(.sync(replica: i, peers: peers, force: missedWrites, after: after))
        }
        actions += divergence(reports, clean: clean)
        return actions
    }

    /// In-sync replicas whose (version, checksum) differ, with the same reports two rounds in a
    /// row (nothing was written in between): one of them copies every change of another (after
    /// version 0; last writer wins, so it ends with the union of both), and the next time the
    /// other way round, until they agree.
    private mutating func divergence(_ reports: [Report?], clean: [Int]) -> [Action] {
        let candidates = clean.filter { !replicas[$0].syncing }
        let seen: [Int: [UInt64]] = Dictionary(uniqueKeysWithValues: candidates.compactMap { i in reports[i].map { (i, [$0.version, $0.checksum]) } })
        guard candidates.count >= 2, seen.count == candidates.count, Set(seen.values).count > 1,
              seen.values.contains(where: { $0[0] > 0 }) else {
            lastMismatch = nil
            return []
        }
        guard lastMismatch == seen else {
            lastMismatch = seen
            return []
        }
        lastMismatch = nil
        let target = candidates[reconcileTurn % candidates.count]
        reconcileTurn += 1
        guard let other = candidates.first(where: { seen[$0] != seen[target] }) else { return [] }
        replicas[target].syncing = true
        replicas[target].catchingUp = true
        return [.diverged(replica: target, peer: other), .sync(replica: target, peers: [other], force: true, after: 0)]
    }

    /// A sync started by `healthChecked` ended. `force` and `after`: the ones it was started
    /// with (a failed catch-up of writes it missed leaves them missed).
    public mutating func syncFinished(_ replica: Int, succeeded: Bool, force: Bool, after: UInt64? = nil) {
        if succeeded {
            replicas[replica].catchingUp = false
        } else if force {
            if replicas[replica].needsSync {
                if let a = replicas[replica].missedAfter { replicas[replica].missedAfter = after.map { min($0, a) } }
            } else {
                replicas[replica].missedAfter = after
            }
            replicas[replica].needsSync = true
        }
        replicas[replica].syncing = false
    }

    // MARK: queries

    /// In the in-sync set: answering, not catching up, not syncing, not out of sync.
    public func isInSync(_ replica: Int, at now: ContinuousClock.Instant) -> Bool {
        let r = replicas[replica]
        return !r.isSuspected(at: now) && !r.catchingUp && !r.syncing && !r.needsSync
    }

    /// Replicas that may serve reads: those holding every acknowledged write (not catching up,
    /// not out of sync); when there are none, those not catching up; when every one is, all.
    public func readable() -> [Int] {
        let inSync = replicas.indices.filter { !replicas[$0].catchingUp && !replicas[$0].syncing && !replicas[$0].needsSync }
        if !inSync.isEmpty { return inSync }
        let serving = replicas.indices.filter { !replicas[$0].catchingUp }
        return serving.isEmpty ? Array(replicas.indices) : serving
    }

    public func suspected(at now: ContinuousClock.Instant) -> [Int] {
        replicas.indices.filter { replicas[$0].isSuspected(at: now) }
    }

    /// The replicas whose acknowledgements count for a write sent now: the in-sync ones (or,
    /// when none is in sync, e.g. every replica restarted and is catching up, every one not
    /// suspected: they converge to the union of what they got).
    public func acknowledgers(at now: ContinuousClock.Instant) -> [Int] {
        let inSync = replicas.indices.filter { isInSync($0, at: now) }
        if !inSync.isEmpty || replicas.indices.contains(where: { !replicas[$0].catchingUp && !replicas[$0].syncing && !replicas[$0].needsSync }) {
            return inSync
        }
        return replicas.indices.filter { !replicas[$0].isSuspected(at: now) }
    }

    /// Why a write would fail now: fewer replicas that can acknowledge it than `minInSync`.
    public func writeBlocked(at now: ContinuousClock.Instant) -> (live: Int, down: [Int])? {
        let ack = acknowledgers(at: now)
        guard ack.count < minInSync else { return nil }
        return (ack.count, replicas.indices.filter { !ack.contains($0) })
    }

    /// `serving`, `catching_up`, `out_of_sync` or `suspect`, as /admin/shards shows it.
    public func displayState(_ replica: Int, at now: ContinuousClock.Instant) -> String {
        let r = replicas[replica]
        if r.isSuspected(at: now) { return "suspect" }
        if r.catchingUp || r.syncing { return "catching_up" }
        return r.needsSync ? "out_of_sync" : "serving"
    }

    /// Transport trouble or an overloaded replica: another replica may well answer.
    public static func isReplicaFault(_ kind: ErrorKind) -> Bool {
        switch kind {
        case .unavailable, .deadlineExceeded, .internalError, .cancelled, .resourceExhausted: return true
        default: return false
        }
    }

    /// Which freshly started replica becomes the source when none is serving: with `minInSync`
    /// of all replicas the first that answered; otherwise, once all answered, the one with the
    /// highest version (then the most points, then the lowest index). Replicas that missed a
    /// write are passed over while another candidate exists.
    private func designatedSource(_ reports: [Report?]) -> Int? {
        if minInSync < replicas.count { guard reports.allSatisfy({ $0 != nil }) else { return nil } }
        let clean = reports.indices.map { reports[$0] != nil && !replicas[$0].needsSync && !reports[$0]!.pending ? reports[$0] : nil }
        let candidates = clean.contains { $0 != nil } ? clean : reports
        if minInSync >= replicas.count { return candidates.firstIndex { $0 != nil } }
        return candidates.indices.filter { candidates[$0] != nil }.max { a, b in
            let (x, y) = (candidates[a]!, candidates[b]!)
            return (x.version, x.points, -a) < (y.version, y.points, -b)
        }
    }
}
