// Over 500 lines on purpose: reads, versioned writes and health checks share the replicas'
// in-sync state and the version clock under one lock's invariants; the decisions themselves are
// in ReplicaHealth.swift, the hedging arithmetic (HedgeBudget, LatencyWindow) at the end.
import Foundation
import Synchronization
import VecShardShardAPI
import VecShardRPC
import VecShardRouting
import VecShardSchema

/// One replica as /admin/shards shows it.
public struct ReplicaStatus: Sendable, Equatable {
    public var address: String
    /// `serving`, `catching_up`, `out_of_sync` or `suspect`.
    public var state: String
    /// From its last health report (nil: none yet).
    public var points: UInt64?
    public var version: UInt64?
    /// How far its version is behind the most advanced replica's (version units; the seconds
    /// of write time in `lagSeconds`).
    public var lag: UInt64?
    public var checksum: UInt64?

    public var lagSeconds: Double? { lag.map(WriteVersion.seconds) }
}

/// A shard client that stands for several replicas: it reports their states and checks their
/// health (`ReplicatedShard`; the router asks for the capability, not the type).
public protocol ReplicaSet: ShardClient {
    /// Per replica: address, state and versions.
    var replicaStates: [ReplicaStatus] { get }
    /// One round of active health checks (and the syncs they decide on).
    func checkHealth(timeout: Duration, log: (@Sendable (String) -> Void)?) async
}

/// One shard served by several replicas (each a `ShardClient`, normally a `RemoteShard`).
///
/// Writes carry a version this class stamps (`WriteVersion`, above anything it stamped or saw)
/// and go to every replica not suspected; one is acknowledged once `minInSync` replicas of the
/// in-sync set made it durable, and replicas that missed it leave the set until they caught up
/// (docs/ARCHITECTURE.md, "In-sync set"). Reads go to one in-sync replica, the one with the fewest outstanding requests among
/// those not suspected; if it has not answered after the hedging delay (a high percentile of this
/// shard's recent read latencies), the same request goes to a second replica and the first answer
/// wins. A replica that fails with a transport error is suspected and skipped for
/// `suspicionSeconds`, after which one request probes it again.
public final class ReplicatedShard: ReplicaSet {
    public struct Policy: Sendable {
        /// In-sync replicas that must make a write durable before it is acknowledged
        /// (`--min-in-sync-replicas`; nil: all of them).
        public var minInSyncReplicas: Int?
        public var hedging = true
        /// Hedging delay = this percentile of recent read latencies, within the bounds below.
        public var hedgePercentile = 0.95
        public var minimumHedgeDelay: Duration = .milliseconds(2)
        public var maximumHedgeDelay: Duration = .milliseconds(500)
        public var suspicionSeconds: Duration = .seconds(2)
        /// Searches in flight to this shard at once; more wait and go out together as one call
        /// (`SearchCoalescer`). nil: every search is its own call.
        public var maxSearchesInFlight: Int? = 4

        public init(minInSyncReplicas: Int? = 1, hedging: Bool = true, maxSearchesInFlight: Int? = 4) {
            self.minInSyncReplicas = minInSyncReplicas
            self.hedging = hedging
            self.maxSearchesInFlight = maxSearchesInFlight
        }
    }

    final class Replica: Sendable {
        let index: Int
        let client: any ShardClient
        let address: String
        let outstanding = Atomic<Int>(0)
        /// Smoothed latency of its reads in microseconds (0: none yet), and when it was last
        /// sampled (nanoseconds on `ReplicatedShard.epoch`).
        let latencyMicros = Atomic<Int>(0)
        let sampledAt = Atomic<Int>(0)
        /// The highest version of a write this replica made durable for this router.
        let ackedVersion = Atomic<UInt64>(0)

        func recordLatency(_ d: Duration) {
            let micros = max(1, Int(d / .microseconds(1)))
            let old = latencyMicros.load(ordering: .relaxed)
            latencyMicros.store(old == 0 ? micros : (old * 7 + micros) / 8, ordering: .relaxed)
            sampledAt.store(Int((ContinuousClock.now - ReplicatedShard.epoch) / .nanoseconds(1)), ordering: .relaxed)
        }

        /// A call cancelled after `d` (another replica answered first) took at least that long:
        /// it may raise the estimate, never lower it.
        func recordLowerBound(_ d: Duration) {
            let micros = max(1, Int(d / .microseconds(1)))
            if micros > latencyMicros.load(ordering: .relaxed) { recordLatency(d) }
        }

        /// The smoothed latency, halved for every 10 s without a sample: a replica that was slow
        /// once is tried again after a while instead of never.
        func expectedLatency(now: ContinuousClock.Instant) -> Double {
            let micros = Double(latencyMicros.load(ordering: .relaxed))
            guard micros > 0 else { return 0 }
            let idle = Double((now - ReplicatedShard.epoch) / .nanoseconds(1)) - Double(sampledAt.load(ordering: .relaxed))
            return micros * Foundation.exp2(-max(0, idle) / 10e9)
        }

        init(index: Int, client: any ShardClient, address: String) {
            self.index = index
            self.client = client
            self.address = address
        }
    }

    public let name: String
    public let policy: Policy
    let replicas: [Replica]
    private let latencies = Mutex(LatencyWindow(capacity: 256))
    /// Hedges may add at most 10% to the reads (a token bucket), so that when the whole machine is
    /// slow (saturated, not one bad replica) hedging does not pile duplicate work on it.
    private let hedgeBudget = Mutex(HedgeBudget())
    let coalescer: SearchCoalescer?
    /// The version clock of this shard's writes: the last version stamped or seen.
    private let clock = Mutex<UInt64>(0)
    /// Tells this router's versions apart from another's stamped in the same microsecond.
    static let versionTag = WriteVersion.randomTag()
    /// Writes in flight by sequence number, so a catch-up can wait for those that started
    /// before it (they may have skipped the replica).
    private let writesInFlight = Mutex<(next: UInt64, active: Set<UInt64>)>((0, []))
    /// Suspicion, read eligibility and sync state of the replicas: decisions only; this class
    /// does the calls and reports their outcomes to it.
    let health: Mutex<ReplicaHealth>

    public init(name: String, replicas: [(address: String, client: any ShardClient)], policy: Policy = Policy()) {
        precondition(!replicas.isEmpty, "a shard has at least one replica")
        self.name = name
        self.policy = policy
        self.replicas = replicas.enumerated().map { Replica(index: $0.offset, client: $0.element.client, address: $0.element.address) }
        health = Mutex(ReplicaHealth(count: replicas.count, minInSync: policy.minInSyncReplicas, suspicion: policy.suspicionSeconds))
        coalescer = policy.maxSearchesInFlight.map { SearchCoalescer(maxInFlight: max(1, $0)) }
    }

    /// Takes over what `old` (this shard under the previous topology, with another replica list)
    /// knew: the states of the replicas both lists name, the version clock; replicas only this
    /// list names start out of sync from version 0 (they catch up from a peer before serving).
    public func inherit(from old: ReplicatedShard) {
        let states = old.health.withLock { $0.replicas }
        let previous = replicas.map { r in old.replicas.firstIndex { $0.address == r.address }.map { states[$0] } }
        health.withLock { $0.inherit(previous) }
        let last = old.clock.withLock { $0 }
        clock.withLock { $0 = max($0, last) }
        for r in replicas {
            if let o = old.replicas.first(where: { $0.address == r.address }) {
                r.ackedVersion.store(o.ackedVersion.load(ordering: .relaxed), ordering: .relaxed)
            }
        }
    }

    /// After the writes sent through `old` finished: replicas both lists name that missed one
    /// of them (as `old` saw) are out of sync here too.
    public func inheritMissedWrites(from old: ReplicatedShard) {
        let states = old.health.withLock { $0.replicas }
        let previous = replicas.map { r in old.replicas.firstIndex { $0.address == r.address }.map { states[$0] } }
        health.withLock { $0.inheritMissed(previous) }
    }

    /// Replica addresses currently suspected (for /admin/shards).
    public var suspectedReplicas: [String] {
        let now = ContinuousClock.now
        return health.withLock { $0.suspected(at: now) }.map { replicas[$0].address }
    }

    public var writeBlocker: String? {
        let now = ContinuousClock.now
        let (blocked, minimum) = health.withLock { ($0.writeBlocked(at: now), $0.minInSync) }
        guard let (live, down) = blocked else { return nil }
        return "shard '\(name)' has \(live) in-sync replicas that answer, --min-in-sync-replicas is \(minimum) "
            + "(not in sync or down: \(down.map { replicas[$0].address }.joined(separator: ", ")))"
    }


    // MARK: reads

    static let epoch = ContinuousClock.now

    /// Replicas in the order a read should try them: not suspected first, then by expected cost,
    /// (requests in flight + 1) x smoothed latency: the least loaded, unless it is much slower
    /// (a replica 25 times slower is chosen only when the other has 25 requests in flight).
    /// Replicas without a latency yet come first, so that they get measured (among them, the one
    /// with the fewest requests in flight).
    private func readOrder() -> [Replica] {
        let now = ContinuousClock.now
        let (readable, suspected) = health.withLock { h in (h.readable(), Set(h.suspected(at: now))) }
        return readable.map { replicas[$0] }.enumerated().map { entry in
            let outstanding = entry.element.outstanding.load(ordering: .relaxed)
            return (offset: entry.offset, replica: entry.element, suspected: suspected.contains(entry.element.index), outstanding: outstanding,
                    cost: Double(outstanding + 1) * entry.element.expectedLatency(now: now))
        }
        .sorted { a, b in
            if a.suspected != b.suspected { return !a.suspected }
            if a.cost != b.cost { return a.cost < b.cost }
            // Equal cost (no latency measured yet): the fewest requests in flight, so that a
            // cold start spreads reads over the replicas instead of sending all to the first.
            return a.outstanding != b.outstanding ? a.outstanding < b.outstanding : a.offset < b.offset
        }.map(\.replica)
    }

    var hedgeDelay: Duration {
        let p = latencies.withLock { $0.percentile(policy.hedgePercentile) } ?? policy.minimumHedgeDelay * 5
        return min(max(p, policy.minimumHedgeDelay), policy.maximumHedgeDelay)
    }

    private func attempt<T: Sendable>(_ replica: Replica, _ body: @Sendable (any ShardClient) async throws -> T) async throws -> T {
        replica.outstanding.wrappingAdd(1, ordering: .relaxed)
        defer { replica.outstanding.wrappingSubtract(1, ordering: .relaxed) }
        let start = ContinuousClock.now
        do {
            let result = try await body(replica.client)
            let elapsed = ContinuousClock.now - start
            latencies.withLock { $0.add(elapsed) }
            replica.recordLatency(elapsed)
            health.withLock { $0.callSucceeded(replica.index) }
            return result
        } catch {
            let failure = shardError(error)
            if failure.kind == .cancelled || error is CancellationError || Task.isCancelled {
                // Cancelled (another replica answered first, or the caller went away): not the
                // replica's fault; it took at least this long.
                replica.recordLowerBound(ContinuousClock.now - start)
                throw failure
            }
            let now = ContinuousClock.now
            health.withLock { $0.callFailed(replica.index, kind: failure.kind, code: failure.code, now: now) }
            throw failure
        }
    }

    /// Transport trouble or an overloaded replica: another replica may well answer.
    static func isReplicaFault(_ error: ShardCallError) -> Bool { ReplicaHealth.isReplicaFault(error.kind) }

    /// The newest version `replica` is known to hold: of its last health report, or of a write
    /// it made durable for this router since.
    private func knownVersion(_ replica: Int, reports: [UInt64?]) -> UInt64 {
        max(replicas[replica].ackedVersion.load(ordering: .relaxed), reports[replica] ?? 0)
    }

    /// A read that needs more than one in-sync replica (`ReadRequirement.current`): a token's
    /// version reached, or a majority or all of the replicas answering (the answer of the one
    /// with the newest known version is used). Waits, up to the request's deadline, for replicas
    /// to qualify; then 503 `consistency_unavailable`.
    private func read<T: Sendable>(requirement: ReadRequirement, _ body: @escaping @Sendable (any ShardClient) async throws -> T) async throws -> T {
        let minVersion = requirement.minVersions[name]
        let deadline = RequestDeadline.current ?? ContinuousClock.now + .seconds(10)
        var lastProblem = ""
        while true {
            let now = ContinuousClock.now
            let (suspected, reports) = health.withLock { h in (Set(h.suspected(at: now)), h.replicas.map { $0.report?.version }) }
            let reached = { (i: Int) in minVersion.map { self.knownVersion(i, reports: reports) >= $0 } ?? true }
            switch requirement.consistency {
            case .one:
                let order = readOrder().filter { reached($0.index) }
                if !order.isEmpty {
                    do { return try await failover(order, body) } catch let error as ShardCallError where Self.isReplicaFault(error) {
                        lastProblem = error.message
                    }
                } else {
                    lastProblem = "no in-sync replica has reached version \(minVersion ?? 0) yet"
                }
            case .majority, .all:
                let needed = requirement.consistency == .all ? replicas.count : replicas.count / 2 + 1
                let candidates = replicas.filter { !suspected.contains($0.index) && reached($0.index) }
                if candidates.count >= needed {
                    let (values, errors) = await fanOut(candidates) { try await self.attempt($0, body) }
                    let answered = candidates.indices.filter { values[$0] != nil }
                    if answered.count >= needed {
                        // The answer of an in-sync replica (it holds every write this router
                        // acknowledged), the newest of those; of another only when none is.
                        let inSync = Set(health.withLock { h in replicas.indices.filter { h.isInSync($0, at: now) } })
                        let best = answered.max { a, b in
                            let (x, y) = (candidates[a].index, candidates[b].index)
                            return (inSync.contains(x) ? 1 : 0, knownVersion(x, reports: reports)) < (inSync.contains(y) ? 1 : 0, knownVersion(y, reports: reports))
                        }!
                        return values[best]!
                    }
                    if let callerFault = errors.compactMap({ $0 }).first(where: { !Self.isReplicaFault($0) }) { throw callerFault }
                    lastProblem = "\(answered.count) of \(needed) replicas answered (" + errors.compactMap { $0?.message }.joined(separator: "; ") + ")"
                } else {
                    lastProblem = "\(candidates.count) of \(needed) replicas are reachable" + (minVersion == nil ? "" : " and have reached version \(minVersion!)")
                }
            }
            try Task.checkCancellation()
            if ContinuousClock.now + .milliseconds(20) >= deadline {
                throw ShardCallError(.unavailable, .consistencyUnavailable,
                                     "shard '\(name)': the read needs \(requirement.consistency.rawValue) replicas\(minVersion == nil ? "" : " at version \(minVersion!) or newer"); \(lastProblem)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// A read with hedging and fail-over. Errors that are the caller's (invalid argument, not
    /// found) are returned at once; replica faults move on to the next replica.
    private func read<T: Sendable>(_ body: @escaping @Sendable (any ShardClient) async throws -> T) async throws -> T {
        let requirement = ReadRequirement.current
        if !requirement.isDefault { return try await read(requirement: requirement, body) }
        let order = readOrder()
        if order.count == 1 || !policy.hedging { return try await failover(order, body) }
        hedgeBudget.withLock { $0.earn() }
        let delay = hedgeDelay
        // Slot 0: the first try, slot 1: the hedge. Child tasks return only their slot number.
        let slots = ReplicaSlots<T>(count: 2)
        let winner: Int? = await withTaskGroup(of: Int?.self) { group in
            group.addTask {
                do { slots.succeed(0, try await self.failover(order, body)); return 0 } catch { slots.fail(0, shardError(error)); return nil }
            }
            group.addTask {
                do {
                    try await Task.sleep(for: delay)
                    // Out of budget: no duplicate; the first try's answer is awaited.
                    guard self.hedgeBudget.withLock({ $0.spend() }) else { return nil }
                    // The hedge: the same request, starting from the second-best replica.
                    slots.succeed(1, try await self.failover(Array(order.dropFirst()) + [order[0]], body))
                    return 1
                } catch is CancellationError {
                    return nil
                } catch {
                    slots.fail(1, shardError(error))
                    return nil
                }
            }
            for await finished in group {
                if let finished {
                    group.cancelAll()
                    return finished
                }
                // A caller's error (not found, invalid) is final: no point waiting for the hedge.
                let errors = slots.take().errors.compactMap { $0 }
                if errors.contains(where: { !Self.isReplicaFault($0) }) {
                    group.cancelAll()
                    return nil
                }
            }
            return nil
        }
        let (values, errors) = slots.take()
        if let winner, let value = values[winner] { return value }
        throw errors.compactMap { $0 }.first { !Self.isReplicaFault($0) } ?? errors.compactMap { $0 }.first
            ?? ShardCallError(.unavailable, .shardUnavailable, "no replica of shard '\(name)' answered")
    }

    private func failover<T: Sendable>(_ order: [Replica], _ body: @escaping @Sendable (any ShardClient) async throws -> T) async throws -> T {
        var failures: [String] = []
        for replica in order {
            try Task.checkCancellation()
            do {
                return try await attempt(replica, body)
            } catch let error as ShardCallError where Self.isReplicaFault(error) {
                failures.append("\(replica.address): \(error.message)")
            }
        }
        throw ShardCallError(.unavailable, .shardUnavailable,
                             "no replica of shard '\(name)' answered (\(failures.joined(separator: "; ")))")
    }

    // MARK: writes

    /// The result of a write: what succeeded and which replicas failed or were skipped.
    struct WriteOutcome<T: Sendable>: Sendable {
        var results: [T]
        var failed: [String]
        var version: UInt64?
    }

    /// A version above the last one stamped or seen (and above `above`).
    private func stamp(above: UInt64 = 0) -> UInt64 {
        clock.withLock { c in
            c = WriteVersion.next(after: max(c, above), tag: Self.versionTag)
            return c
        }
    }

    private func beginWrite() -> UInt64 {
        writesInFlight.withLock { w in
            let seq = w.next
            w.next += 1
            w.active.insert(seq)
            return seq
        }
    }

    private func endWrite(_ seq: UInt64) { _ = writesInFlight.withLock { $0.active.remove(seq) } }

    /// Waits (up to `limit`) until every write that had started when this was called finished.
    func waitForWritesStartedBefore(limit: Duration = .seconds(60)) async {
        let mark = writesInFlight.withLock { $0.next }
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if writesInFlight.withLock({ w in !w.active.contains { $0 < mark } }) { return }
            try? await Task.sleep(for: .milliseconds(5))
        }
    }

    /// The version a `stale_version` error says the replica holds.
    public static func heldVersion(in error: ShardCallError) -> UInt64? {
        // "... point '<id>' holds version H, the write offered O; nothing was written (stamp above H and retry)":
        // read the last number-bearing phrase, after the id (which may hold anything).
        guard error.code == "stale_version", let range = error.message.range(of: "(stamp above ", options: .backwards) else { return nil }
        return UInt64(error.message[range.upperBound...].prefix { $0.isNumber })
    }

    /// A write to the replicas that are not suspected. `versioned`: it gets a version (stamped
    /// again above what a replica holds if one refuses it as stale, at most 3 rounds) and
    /// replicas that miss it leave the in-sync set; `markMissed: false` for maintenance calls.
    /// Acknowledged when at least `minInSync` of the replicas in sync when it was sent applied it.
    /// `copiedFrom`: a copy of versioned changes (not stamped here): a replica that misses it
    /// missed the versions from this one on.
    /// `given`: the version the caller stamped (a dual write of online rebalancing): never
    /// stamped again here; a stale refusal is thrown for the caller to stamp above.
    private func write<T: Sendable>(versioned: Bool, given: UInt64? = nil, markMissed: Bool = true, copiedFrom: UInt64? = nil,
                                    _ body: @escaping @Sendable (any ShardClient, UInt64?) async throws -> T) async throws -> WriteOutcome<T> {
        let seq = beginWrite()
        defer { endWrite(seq) }
        var version: UInt64? = versioned ? (given ?? stamp()) : nil
        if let given { clock.withLock { $0 = max($0, given) } }
        var round = 0
        while true {
            let now = ContinuousClock.now
            let (targets, acknowledgers, minimum) = health.withLock { h in
                let suspected = Set(h.suspected(at: now))
                return (replicas.indices.filter { !suspected.contains($0) }, Set(h.acknowledgers(at: now)), h.minInSync)
            }
            let v = version
            let (values, errors) = await fanOut(targets.map { replicas[$0] }) { try await self.attempt($0) { try await body($0, v) } }
            let held = errors.compactMap { $0.flatMap(Self.heldVersion) }
            if versioned, given == nil, !held.isEmpty, round < 2 {
                // A replica holds a newer version for an id of this batch (another router's
                // clock is ahead): stamp above it and send the batch to every replica again.
                version = stamp(above: held.max()!)
                round += 1
                continue
            }
            var results: [T] = []
            var failed: [(address: String, error: ShardCallError)] = []
            var applied = [Bool](repeating: false, count: replicas.count)
            var failedKinds: [Int: ErrorKind] = [:]
            var acked = 0
            for (k, index) in targets.enumerated() {
                if let value = values[k] {
                    results.append(value)
                    applied[index] = true
                    if let version { _ = replicas[index].ackedVersion.max(version, ordering: .relaxed) }
                    if acknowledgers.contains(index) { acked += 1 }
                }
                if let error = errors[k] {
                    failed.append((replicas[index].address, error))
                    failedKinds[index] = error.kind
                }
            }
            let skipped = replicas.indices.filter { !targets.contains($0) }
            // A version the caller gave and a replica refused as stale: the caller stamps above
            // and sends again to every replica; the refusing one did not miss anything.
            if given != nil, let stale = failed.first(where: { $0.error.code == "stale_version" }) { throw stale.error }
            if markMissed {
                // Replicas that did not apply what another applied (down, timed out, skipped while
                // suspected, or refused what their peers accepted) leave the in-sync set before
                // the write is acknowledged, and catch up from a peer once they answer.
                health.withLock { $0.writeFinished(version: version ?? copiedFrom, applied: applied, failed: failedKinds, skipped: skipped) }
            }
            let anyApplied = applied.contains(true)
            // The caller's fault only if no replica accepted the write (a bad request fails on all).
            if !anyApplied, let callerFault = failed.first(where: { !Self.isReplicaFault($0.error) && $0.error.code != "stale_version" }) {
                throw callerFault.error
            }
            let skippedNote = skipped.isEmpty ? "" : "; not sent to suspected " + skipped.map { replicas[$0].address }.joined(separator: ", ")
            guard acked >= minimum else {
                throw ShardCallError(.unavailable, .writeQuorumFailed,
                                     "shard '\(name)': \(acked) in-sync replicas of \(replicas.count) made the write durable, --min-in-sync-replicas is \(minimum); failed: "
                                     + failed.map { "\($0.address) (\($0.error.message))" }.sorted().joined(separator: "; ") + skippedNote)
            }
            return WriteOutcome(results: results, failed: (failed.map(\.address) + skipped.map { replicas[$0].address }).sorted(), version: version)
        }
    }

    // MARK: ShardClient

    public func createCollection(_ schema: CollectionSchema) async throws -> CollectionInfo {
        try await write(versioned: false) { c, _ in try await c.createCollection(schema) }.results[0]
    }

    public func dropCollection(_ name: String) async throws -> Bool {
        try await write(versioned: false) { c, _ in try await c.dropCollection(name) }.results.contains(true)
    }

    public func describeCollection(_ name: String) async throws -> CollectionInfo { try await read { try await $0.describeCollection(name) } }

    /// `version`: nil (the usual case) lets this router stamp one.
    public func upsert(collection: String, points: [Point], version: UInt64?) async throws -> WriteResult {
        try await versionedWrite(given: version, answer: { $0.lsn < $1.lsn }) { c, v in try await c.upsert(collection: collection, points: points, version: v) }
    }

    public func delete(collection: String, ids: [String], version: UInt64?) async throws -> WriteResult {
        try await versionedWrite(given: version, answer: { $0.applied < $1.applied }) { c, v in try await c.delete(collection: collection, ids: ids, version: v) }
    }

    /// An upsert or delete with the version given or stamped here; answers the replica result
    /// that `answer` ranks highest, with the replicas that missed it and the version it carried.
    private func versionedWrite(given version: UInt64?, answer: (WriteResult, WriteResult) -> Bool,
                                _ body: @escaping @Sendable (any ShardClient, UInt64?) async throws -> WriteResult) async throws -> WriteResult {
        let outcome = try await write(versioned: true, given: version) { c, v in try await body(c, v) }
        var result = outcome.results.max(by: answer)!
        result.failedReplicas = outcome.failed
        result.version = version ?? outcome.version ?? 0
        return result
    }

    /// A page of changes from one in-sync replica (a rebalancing copy's source).
    public func changes(_ request: ChangesQuery) async throws -> ChangesPageResult {
        // Not hedged: a page is a large read, and any in-sync replica has the same one.
        try await failover(readOrder()) { try await $0.changes(request) }
    }

    /// A copy of versioned changes (rebalancing): to every replica that answers, like a write.
    public func apply(collection: String, changes: VersionedChanges) async throws -> WriteResult {
        let low = (changes.versions + changes.deletedVersions).min()
        let outcome = try await write(versioned: false, copiedFrom: low) { c, _ in try await c.apply(collection: collection, changes: changes) }
        var result = outcome.results.max { $0.applied < $1.applied }!
        result.failedReplicas = outcome.failed
        return result
    }

    public func get(collection: String, ids: [String], includeVector: Bool) async throws -> [Point] {
        try await read { try await $0.get(collection: collection, ids: ids, includeVector: includeVector) }
    }

    public func search(_ request: ShardSearch) async throws -> [[SearchHit]] {
        // Searches with a requirement of their own are not coalesced with others.
        guard let coalescer, ReadRequirement.current.isDefault else { return try await read { try await $0.search(request) } }
        return try await coalescer.search(request) { combined in
            try await self.read { try await $0.search(combined) }
        }
    }

    public func stats() async throws -> ShardStats {
        var stats = try await read { try await $0.stats() }
        stats.shardID = name
        return stats
    }

    public func scan(_ request: ShardScan, _ body: @Sendable ([Point]) async throws -> Void) async throws {
        var failures: [String] = []
        for replica in readOrder() {
            do {
                try await replica.client.scan(request, body)
                return
            } catch let error as ShardCallError where Self.isReplicaFault(error) {
                failures.append("\(replica.address): \(error.message)")
            }
        }
        throw ShardCallError(.unavailable, .shardUnavailable, "no replica of shard '\(name)' could be scanned (\(failures.joined(separator: "; ")))")
    }

    public func flush(_ collection: String) async throws { _ = try await write(versioned: false, markMissed: false) { c, _ in try await c.flush(collection) } }
    public func compact(_ collection: String) async throws { _ = try await write(versioned: false, markMissed: false) { c, _ in try await c.compact(collection) } }
}

// MARK: health checks and replica repair

extension ReplicatedShard {
    /// Per replica: address, state (`serving`, `catching_up`, `out_of_sync`, `suspect`) as this
    /// router sees it, and its last reported points, version, lag and checksum.
    public var replicaStates: [ReplicaStatus] {
        let now = ContinuousClock.now
        return health.withLock { h in
            let newest = h.replicas.compactMap { $0.report?.version }.max() ?? 0
            return replicas.map { r in
                let report = h.replicas[r.index].report
                return ReplicaStatus(address: r.address, state: h.displayState(r.index, at: now), points: report?.points,
                                     version: report?.version, lag: report.map { newest - $0.version }, checksum: report?.checksum)
            }
        }
    }

    /// The report of a replica's stats: its state, and over its collections the points, the
    /// highest version and a checksum (per collection, its checksum mixed with its name).
    static func report(_ stats: ShardStats) -> ReplicaHealth.Report {
        var checksum: UInt64 = 0
        for c in stats.collections { checksum &+= c.checksum ^ StableHash.xxh64(c.name) }
        return ReplicaHealth.Report(state: stats.replicaState.rawValue, points: stats.collections.reduce(0) { $0 + $1.count },
                                    version: stats.collections.map(\.version).max() ?? 0, checksum: checksum, pending: stats.catchUpPending)
    }

    /// One round of active health checks: asks every replica for its stats (within `timeout`)
    /// and hands the answers to `ReplicaHealth`, which decides which replicas to catch up (in the
    /// background; until a catch-up finishes the replica takes writes but no reads). Returns when
    /// the checks are done (not the catch-ups).
    public func checkHealth(timeout: Duration = .seconds(2), log: (@Sendable (String) -> Void)? = nil) async {
        let (reports, _) = await fanOut(replicas) { replica in
            let stats = try await RequestDeadline.$current.withValue(ContinuousClock.now + timeout) { try await replica.client.stats() }
            return Self.report(stats)
        }
        if let newest = reports.compactMap({ $0?.version }).max() { clock.withLock { $0 = max($0, newest) } }
        let now = ContinuousClock.now
        let actions = health.withLock { $0.healthChecked(reports, now: now) }
        for action in actions {
            switch action {
            case let .syncFromDivergedPeer(index):
                log?("replica \(replicas[index].address) of shard '\(name)' syncs from a peer that itself missed a write (no other is serving)")
            case let .diverged(index, peer):
                log?("replicas \(replicas[index].address) and \(replicas[peer].address) of shard '\(name)' hold different points at the same version: "
                     + "\(replicas[index].address) copies every change of its peer")
            case let .sync(index, peers, force, after):
                let replica = replicas[index], name = self.name
                // Missed only writes without a version (a create or drop): no point is missing,
                // the catch-up compares collections; it starts at this router's clock.
                let from = after ?? (force ? clock.withLock { $0 } : nil)
                let request = ReplicaSync(peers: peers.map { replicas[$0].address }, force: force, afterVersion: from)
                Task {
                    // Writes that started while the replica was skipped must be on its peer
                    // before the peer lists its changes.
                    await self.waitForWritesStartedBefore()
                    var succeeded = false
                    do {
                        let r = try await replica.client.sync(request)
                        succeeded = true
                        log?("replica \(replica.address) of shard '\(name)' is up to date (from \(r.source.isEmpty ? "itself" : r.source), "
                             + "\(r.mode.isEmpty ? "nothing to do" : r.mode): \(r.transferred) received, \(r.copied) applied, \(r.deleted) deleted)")
                    } catch {
                        log?("catch-up of replica \(replica.address) of shard '\(name)' failed: \(shardError(error).message)")
                    }
                    self.health.withLock { $0.syncFinished(index, succeeded: succeeded, force: force, after: from) }
                }
            }
        }
    }
}

/// A token bucket: every read earns `ratio` of a hedge, a hedge spends one, at most `burst` saved.
struct HedgeBudget: Sendable {
    var ratio = 0.1
    var burst = 10.0
    private var tokens = 10.0

    /// A read: earns a fraction of a hedge.
    mutating func earn() { tokens = min(burst, tokens + ratio) }

    /// A hedge is about to be sent: true (and one token spent) if the budget allows it.
    mutating func spend() -> Bool {
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }
}

/// The last `capacity` latencies, for percentiles. The percentile asked for is cached and
/// recomputed (a sort of `capacity` samples) only after `refreshEvery` new samples, not per read.
struct LatencyWindow: Sendable {
    private var samples: [Duration] = []
    private var next = 0
    let capacity: Int
    let refreshEvery: Int
    private var added = 0
    private var cached: (p: Double, value: Duration, at: Int)?

    init(capacity: Int, refreshEvery: Int = 16) {
        self.capacity = capacity
        self.refreshEvery = refreshEvery
    }

    mutating func add(_ d: Duration) {
        if samples.count < capacity { samples.append(d) } else { samples[next] = d }
        next = (next + 1) % capacity
        added += 1
    }

    /// nil until 20 samples exist.
    mutating func percentile(_ p: Double) -> Duration? {
        guard samples.count >= 20 else { return nil }
        if let c = cached, c.p == p, added - c.at < refreshEvery { return c.value }
        let sorted = samples.sorted()
        let value = sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
        cached = (p, value, added)
        return value
    }
}
