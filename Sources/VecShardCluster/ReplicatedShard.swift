import Foundation
import Synchronization
import VecShardProto
import VecShardShardAPI
import VecShardRPC

/// One shard served by several replicas (each a `ShardClient`, normally a `RemoteShard`).
///
/// Writes go to every replica and succeed once `writeQuorum` of them made the write durable
/// (default: all). Reads go to one replica, the one with the fewest outstanding requests among
/// those not suspected; if it has not answered after the hedging delay (a high percentile of this
/// shard's recent read latencies), the same request goes to a second replica and the first answer
/// wins. A replica that fails with a transport error is suspected and skipped for
/// `suspicionSeconds`, after which one request probes it again.
public final class ReplicatedShard: ShardClient {
    public struct Policy: Sendable {
        /// Replicas that must acknowledge a write (nil: all of them).
        public var writeQuorum: Int?
        public var hedging = true
        /// Hedging delay = this percentile of recent read latencies, within the bounds below.
        public var hedgePercentile = 0.95
        public var minimumHedgeDelay: Duration = .milliseconds(2)
        public var maximumHedgeDelay: Duration = .milliseconds(500)
        public var suspicionSeconds: Duration = .seconds(2)
        /// Searches in flight to this shard at once; more wait and go out together as one call
        /// (`SearchCoalescer`). nil: every search is its own call.
        public var maxSearchesInFlight: Int? = 4

        public init(writeQuorum: Int? = nil, hedging: Bool = true, maxSearchesInFlight: Int? = 4) {
            self.writeQuorum = writeQuorum
            self.hedging = hedging
            self.maxSearchesInFlight = maxSearchesInFlight
        }
    }

    final class Replica: Sendable {
        let client: any ShardClient
        let address: String
        let outstanding = Atomic<Int>(0)
        let suspectedUntil = Mutex<ContinuousClock.Instant?>(nil)
        /// The replica is not serving reads (it said `replica_catching_up`, or its last health
        /// check reported awaiting_sync/syncing): it gets writes but no reads.
        let catchingUp = Atomic<Bool>(false)
        /// A write to it failed while others may have applied it: sync it from a peer.
        let needsSync = Atomic<Bool>(false)
        /// A Sync call from this router is in flight.
        let syncing = Atomic<Bool>(false)
        /// Smoothed latency of its reads in microseconds (0: none yet), and when it was last
        /// sampled (nanoseconds on `ReplicatedShard.epoch`).
        let latencyMicros = Atomic<Int>(0)
        let sampledAt = Atomic<Int>(0)

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

        init(client: any ShardClient, address: String) {
            self.client = client
            self.address = address
        }

        var isSuspected: Bool { suspectedUntil.withLock { $0.map { ContinuousClock.now < $0 } ?? false } }
    }

    public let name: String
    public let policy: Policy
    let replicas: [Replica]
    private let latencies = Mutex(LatencyWindow(capacity: 256))
    /// Hedges may add at most 10% to the reads (a token bucket), so that when the whole machine is
    /// slow (saturated, not one bad replica) hedging does not pile duplicate work on it.
    private let hedgeBudget = Mutex(HedgeBudget())
    let coalescer: SearchCoalescer?

    public init(name: String, replicas: [(address: String, client: any ShardClient)], policy: Policy = Policy()) {
        precondition(!replicas.isEmpty, "a shard has at least one replica")
        self.name = name
        self.policy = policy
        self.replicas = replicas.map { Replica(client: $0.client, address: $0.address) }
        coalescer = policy.maxSearchesInFlight.map { SearchCoalescer(maxInFlight: max(1, $0)) }
    }

    /// Replica addresses currently suspected (for /admin/shards).
    public var suspectedReplicas: [String] { replicas.filter(\.isSuspected).map(\.address) }

    public var writeBlocker: String? {
        let quorum = min(policy.writeQuorum ?? replicas.count, replicas.count)
        let suspected = suspectedReplicas
        guard replicas.count - suspected.count < quorum else { return nil }
        return "shard '\(name)' has \(replicas.count - suspected.count) live replicas, its write quorum is \(quorum) (down: \(suspected.joined(separator: ", ")))"
    }

    // MARK: reads

    static let epoch = ContinuousClock.now

    /// Replicas in the order a read should try them: not suspected first, then by expected cost,
    /// (requests in flight + 1) x smoothed latency: the least loaded, unless it is much slower
    /// (a replica 25 times slower is chosen only when the other has 25 requests in flight).
    /// Replicas without a latency yet come first, so that they get measured.
    private func readOrder() -> [Replica] {
        let serving = replicas.filter { !$0.catchingUp.load(ordering: .relaxed) }
        let now = ContinuousClock.now
        return (serving.isEmpty ? replicas : serving).enumerated().map { (offset: $0.offset, replica: $0.element,
                                                                         suspected: $0.element.isSuspected,
                                                                         cost: Double($0.element.outstanding.load(ordering: .relaxed) + 1)
                                                                             * $0.element.expectedLatency(now: now)) }
            .sorted { a, b in
                if a.suspected != b.suspected { return !a.suspected }
                return a.cost != b.cost ? a.cost < b.cost : a.offset < b.offset
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
            replica.suspectedUntil.withLock { $0 = nil }
            return result
        } catch {
            let failure = shardError(error)
            if failure.kind == .cancelled || error is CancellationError || Task.isCancelled {
                // Cancelled (another replica answered first, or the caller went away): not the
                // replica's fault; it took at least this long.
                replica.recordLowerBound(ContinuousClock.now - start)
                throw failure
            }
            if failure.code == "replica_catching_up" {
                // Alive and taking writes, only not serving reads yet: not a suspect.
                replica.catchingUp.store(true, ordering: .relaxed)
            } else if Self.isReplicaFault(failure) {
                replica.suspectedUntil.withLock { $0 = ContinuousClock.now + policy.suspicionSeconds }
            }
            throw failure
        }
    }

    /// Transport trouble or an overloaded replica: another replica may well answer.
    static func isReplicaFault(_ error: ShardCallError) -> Bool {
        switch error.kind {
        case .unavailable, .deadlineExceeded, .internalError, .cancelled, .resourceExhausted: return true
        default: return false
        }
    }

    /// A read with hedging and fail-over. Errors that are the caller's (invalid argument, not
    /// found) are returned at once; replica faults move on to the next replica.
    private func read<T: Sendable>(_ body: @escaping @Sendable (any ShardClient) async throws -> T) async throws -> T {
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
            ?? ShardCallError(.unavailable, code: "shard_unavailable", "no replica of shard '\(name)' answered")
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
        throw ShardCallError(.unavailable, code: "shard_unavailable",
                             "no replica of shard '\(name)' answered (\(failures.joined(separator: "; ")))")
    }

    // MARK: writes

    /// The result of a write to every replica: what succeeded and which replicas failed.
    struct WriteOutcome<T: Sendable>: Sendable {
        var results: [T]
        var failed: [String]
    }

    private func write<T: Sendable>(_ body: @escaping @Sendable (any ShardClient) async throws -> T) async throws -> WriteOutcome<T> {
        let quorum = min(policy.writeQuorum ?? replicas.count, replicas.count)
        // One slot per replica, filled by its child task. (A task group over generic
        // `(String, Result<T, E>)` tuples crashed in release builds with Swift 6.3.1; slots
        // indexed by replica avoid those tuples.)
        let slots = ReplicaSlots<T>(count: replicas.count)
        await withTaskGroup(of: Void.self) { group in
            for (index, replica) in replicas.enumerated() {
                group.addTask {
                    do { slots.succeed(index, try await self.attempt(replica, body)) } catch { slots.fail(index, shardError(error)) }
                }
            }
        }
        let (values, errors) = slots.take()
        var results: [T] = []
        var failed: [(address: String, error: ShardCallError)] = []
        let anyApplied = values.contains { $0 != nil }
        for index in replicas.indices {
            if let value = values[index] { results.append(value) }
            if let error = errors[index] {
                failed.append((replicas[index].address, error))
                // Another replica applied the write and this one did not (down, timed out, or
                // refused what its peers accepted, e.g. a collection it does not have yet): it
                // has diverged; repair it from a peer once it answers. A cancelled call (the
                // caller went away) proves nothing.
                if anyApplied && error.kind != .cancelled {
                    replicas[index].needsSync.store(true, ordering: .relaxed)
                }
            }
        }
        // The caller's fault only if no replica accepted the write (a bad request fails on all).
        if !anyApplied, let callerFault = failed.first(where: { !Self.isReplicaFault($0.error) }) { throw callerFault.error }
        guard results.count >= quorum else {
            throw ShardCallError(.unavailable, code: "write_quorum_failed",
                                 "shard '\(name)': \(results.count) of \(replicas.count) replicas acknowledged, \(quorum) required; failed: "
                                 + failed.map { "\($0.address) (\($0.error.message))" }.sorted().joined(separator: "; "))
        }
        return WriteOutcome(results: results, failed: failed.map(\.address).sorted())
    }

    // MARK: ShardClient

    public func createCollection(_ request: CreateCollectionRequest) async throws -> CollectionInfoMessage {
        try await write { try await $0.createCollection(request) }.results[0]
    }

    public func dropCollection(_ name: String) async throws -> Bool {
        try await write { try await $0.dropCollection(name) }.results.contains(true)
    }

    public func describeCollection(_ name: String) async throws -> CollectionInfoMessage { try await read { try await $0.describeCollection(name) } }

    public func upsert(_ request: UpsertRequest) async throws -> WriteResponse {
        let outcome = try await write { try await $0.upsert(request) }
        var response = outcome.results.max { $0.lsn < $1.lsn }!
        response.failedReplicas = outcome.failed
        return response
    }

    public func delete(_ request: IDsRequest) async throws -> WriteResponse {
        let outcome = try await write { try await $0.delete(request) }
        var response = outcome.results.max { $0.applied < $1.applied }!
        response.failedReplicas = outcome.failed
        return response
    }

    public func get(_ request: IDsRequest) async throws -> PointsResponse { try await read { try await $0.get(request) } }
    public func search(_ request: SearchRequest) async throws -> SearchResponse {
        guard let coalescer else { return try await read { try await $0.search(request) } }
        return try await coalescer.search(request) { combined in
            try await self.read { try await $0.search(combined) }
        }
    }

    public func stats() async throws -> StatsResponse {
        var stats = try await read { try await $0.stats() }
        stats.shardID = name
        return stats
    }

    public func scan(_ request: ScanRequest, _ body: @Sendable (PointsResponse) async throws -> Void) async throws {
        var failures: [String] = []
        for replica in readOrder() {
            do {
                try await replica.client.scan(request, body)
                return
            } catch let error as ShardCallError where Self.isReplicaFault(error) {
                failures.append("\(replica.address): \(error.message)")
            }
        }
        throw ShardCallError(.unavailable, code: "shard_unavailable", "no replica of shard '\(name)' could be scanned (\(failures.joined(separator: "; ")))")
    }

    public func flush(_ collection: String) async throws { _ = try await write { try await $0.flush(collection) } }
    public func compact(_ collection: String) async throws { _ = try await write { try await $0.compact(collection) } }
}

// MARK: health checks and replica repair

extension ReplicatedShard {
    /// Per replica: address, state (`serving`, `catching_up`, `suspect`) as this router sees it.
    public var replicaStates: [(address: String, state: String)] {
        replicas.map { r in
            (r.address, r.isSuspected ? "suspect" : (r.catchingUp.load(ordering: .relaxed) || r.syncing.load(ordering: .relaxed)) ? "catching_up" : "serving")
        }
    }

    /// One round of active health checks: asks every replica for its stats (within `timeout`);
    /// a replica that does not answer is suspected, one that answers is cleared. A replica that
    /// reports `awaiting_sync`, or missed a write (`needsSync`), is synchronised from a serving
    /// peer (`Sync`), in the background; until that finishes it takes writes but no reads.
    /// Returns when the checks are done (not the syncs).
    public func checkHealth(timeout: Duration = .seconds(2), log: (@Sendable (String) -> Void)? = nil) async {
        struct Report: Sendable { var state: String; var points: UInt64 }
        let reports = ReplicaSlots<Report>(count: replicas.count)
        await withTaskGroup(of: Void.self) { group in
            for (index, replica) in replicas.enumerated() {
                group.addTask {
                    do {
                        let stats = try await RequestDeadline.$current.withValue(ContinuousClock.now + timeout) { try await replica.client.stats() }
                        reports.succeed(index, Report(state: stats.replicaState.isEmpty ? "serving" : stats.replicaState,
                                                      points: stats.collections.reduce(0) { $0 + $1.count }))
                    } catch {
                        reports.fail(index, shardError(error))
                    }
                }
            }
        }
        let (values, _) = reports.take()
        let answered = values.map { $0?.state }
        for (index, replica) in replicas.enumerated() {
            if let state = answered[index] {
                replica.suspectedUntil.withLock { $0 = nil }
                if !replica.syncing.load(ordering: .relaxed) { replica.catchingUp.store(state != "serving", ordering: .relaxed) }
            } else {
                replica.suspectedUntil.withLock { $0 = ContinuousClock.now + policy.suspicionSeconds }
            }
        }
        // Serving peers that are up to date: the sources a returning replica may copy from; when
        // there is none, serving peers that missed a write (better than no reads at all).
        let serving = replicas.indices.filter { answered[$0] == "serving" && !replicas[$0].syncing.load(ordering: .relaxed) }
        let clean = serving.filter { !replicas[$0].needsSync.load(ordering: .relaxed) }
        for (index, replica) in replicas.enumerated() {
            guard let state = answered[index], !replica.syncing.load(ordering: .relaxed) else { continue }
            let missedWrites = replica.needsSync.load(ordering: .relaxed)
            guard state == "awaiting_sync" || missedWrites else { continue }
            var peers = clean.filter { $0 != index }.map { replicas[$0].address }
            if peers.isEmpty && state != "serving" {
                peers = serving.filter { $0 != index }.map { replicas[$0].address }
                if !peers.isEmpty { log?("replica \(replica.address) of shard '\(name)' syncs from a peer that itself missed a write (no other is serving)") }
            }
            if peers.isEmpty {
                // Nobody to copy from. A replica that missed writes waits for a peer. When every
                // replica is freshly started (a whole shard restarted), one of them is declared up
                // to date as it is: with a write quorum of all replicas every acknowledged write is
                // on each of them, so the first that answers will do; with a smaller quorum only
                // when all answered, and the one holding the most points.
                guard state == "awaiting_sync", !answered.contains("serving"), !answered.contains("syncing"),
                      designatedSource(values.map { $0?.points }) == index else { continue }
                peers = []
            }
            replica.syncing.store(true, ordering: .relaxed)
            replica.catchingUp.store(true, ordering: .relaxed)
            replica.needsSync.store(false, ordering: .relaxed)
            let name = self.name
            Task {
                do {
                    let r = try await replica.client.sync(SyncRequest(peers: peers, force: missedWrites))
                    replica.catchingUp.store(false, ordering: .relaxed)
                    log?("replica \(replica.address) of shard '\(name)' is up to date (from \(r.source.isEmpty ? "itself" : r.source): \(r.copied) copied, \(r.deleted) deleted)")
                } catch {
                    if missedWrites { replica.needsSync.store(true, ordering: .relaxed) }
                    log?("sync of replica \(replica.address) of shard '\(name)' failed: \(shardError(error).message)")
                }
                replica.syncing.store(false, ordering: .relaxed)
            }
        }
    }

    /// Which freshly started replica becomes the source when none is serving.
    /// `points`: each replica's point count, nil for those that did not answer. Replicas that
    /// missed a write are passed over while another candidate exists.
    private func designatedSource(_ answeredPoints: [UInt64?]) -> Int? {
        let quorum = min(policy.writeQuorum ?? replicas.count, replicas.count)
        if quorum < replicas.count { guard answeredPoints.allSatisfy({ $0 != nil }) else { return nil } }
        let clean = answeredPoints.indices.map { answeredPoints[$0] != nil && !replicas[$0].needsSync.load(ordering: .relaxed) ? answeredPoints[$0] : nil }
        let points = clean.contains { $0 != nil } ? clean : answeredPoints
        if quorum >= replicas.count { return points.firstIndex { $0 != nil } }
        // The replica holding the most points (lowest index on a tie): without per-point versions
        // this is the best guess at the one that saw the most acknowledged writes.
        return points.indices.filter { points[$0] != nil }.max { (points[$0]!, -$0) < (points[$1]!, -$1) }
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
