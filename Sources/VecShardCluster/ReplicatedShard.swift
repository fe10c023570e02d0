import Foundation
import Synchronization
import VecShardShardAPI
import VecShardRPC
import VecShardSchema

/// A shard client that stands for several replicas: it reports their states and checks their
/// health (`ReplicatedShard`; the router asks for the capability, not the type).
public protocol ReplicaSet: ShardClient {
    /// Per replica: address and state (`serving`, `catching_up`, `suspect`).
    var replicaStates: [(address: String, state: String)] { get }
    /// One round of active health checks (and the syncs they decide on).
    func checkHealth(timeout: Duration, log: (@Sendable (String) -> Void)?) async
}

/// One shard served by several replicas (each a `ShardClient`, normally a `RemoteShard`).
///
/// Writes go to every replica and succeed once `writeQuorum` of them made the write durable
/// (default: all). Reads go to one replica, the one with the fewest outstanding requests among
/// those not suspected; if it has not answered after the hedging delay (a high percentile of this
/// shard's recent read latencies), the same request goes to a second replica and the first answer
/// wins. A replica that fails with a transport error is suspected and skipped for
/// `suspicionSeconds`, after which one request probes it again.
public final class ReplicatedShard: ReplicaSet {
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
        let index: Int
        let client: any ShardClient
        let address: String
        let outstanding = Atomic<Int>(0)
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
    /// Replicas that must acknowledge a write (`policy.writeQuorum`, at most the replica count).
    let writeQuorum: Int
    /// Suspicion, read eligibility and sync state of the replicas: decisions only; this class
    /// does the calls and reports their outcomes to it.
    let health: Mutex<ReplicaHealth>

    public init(name: String, replicas: [(address: String, client: any ShardClient)], policy: Policy = Policy()) {
        precondition(!replicas.isEmpty, "a shard has at least one replica")
        self.name = name
        self.policy = policy
        self.replicas = replicas.enumerated().map { Replica(index: $0.offset, client: $0.element.client, address: $0.element.address) }
        writeQuorum = min(policy.writeQuorum ?? replicas.count, replicas.count)
        health = Mutex(ReplicaHealth(count: replicas.count, writeQuorum: writeQuorum, suspicion: policy.suspicionSeconds))
        coalescer = policy.maxSearchesInFlight.map { SearchCoalescer(maxInFlight: max(1, $0)) }
    }

    /// Replica addresses currently suspected (for /admin/shards).
    public var suspectedReplicas: [String] {
        let now = ContinuousClock.now
        return health.withLock { $0.suspected(at: now) }.map { replicas[$0].address }
    }

    public var writeBlocker: String? {
        let now = ContinuousClock.now
        guard let (live, down) = health.withLock({ $0.writeBlocked(at: now) }) else { return nil }
        return "shard '\(name)' has \(live) live replicas, its write quorum is \(writeQuorum) (down: \(down.map { replicas[$0].address }.joined(separator: ", ")))"
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

    /// The result of a write to every replica: what succeeded and which replicas failed.
    struct WriteOutcome<T: Sendable>: Sendable {
        var results: [T]
        var failed: [String]
    }

    private func write<T: Sendable>(_ body: @escaping @Sendable (any ShardClient) async throws -> T) async throws -> WriteOutcome<T> {
        let quorum = writeQuorum
        let (values, errors) = await fanOut(replicas) { try await self.attempt($0, body) }
        var results: [T] = []
        var failed: [(address: String, error: ShardCallError)] = []
        let anyApplied = values.contains { $0 != nil }
        var failedKinds: [Int: ErrorKind] = [:]
        for index in replicas.indices {
            if let value = values[index] { results.append(value) }
            if let error = errors[index] {
                failed.append((replicas[index].address, error))
                failedKinds[index] = error.kind
            }
        }
        // Another replica applied the write and these did not (down, timed out, or refused what
        // their peers accepted, e.g. a collection they do not have yet): they have diverged and
        // are repaired from a peer once they answer.
        let applied = values.map { $0 != nil }
        health.withLock { $0.writeFinished(applied: applied, failed: failedKinds) }
        // The caller's fault only if no replica accepted the write (a bad request fails on all).
        if !anyApplied, let callerFault = failed.first(where: { !Self.isReplicaFault($0.error) }) { throw callerFault.error }
        guard results.count >= quorum else {
            throw ShardCallError(.unavailable, .writeQuorumFailed,
                                 "shard '\(name)': \(results.count) of \(replicas.count) replicas acknowledged, \(quorum) required; failed: "
                                 + failed.map { "\($0.address) (\($0.error.message))" }.sorted().joined(separator: "; "))
        }
        return WriteOutcome(results: results, failed: failed.map(\.address).sorted())
    }

    // MARK: ShardClient

    public func createCollection(_ schema: CollectionSchema) async throws -> CollectionInfo {
        try await write { try await $0.createCollection(schema) }.results[0]
    }

    public func dropCollection(_ name: String) async throws -> Bool {
        try await write { try await $0.dropCollection(name) }.results.contains(true)
    }

    public func describeCollection(_ name: String) async throws -> CollectionInfo { try await read { try await $0.describeCollection(name) } }

    public func upsert(collection: String, points: [Point]) async throws -> WriteResult {
        let outcome = try await write { try await $0.upsert(collection: collection, points: points) }
        var result = outcome.results.max { $0.lsn < $1.lsn }!
        result.failedReplicas = outcome.failed
        return result
    }

    public func delete(collection: String, ids: [String]) async throws -> WriteResult {
        let outcome = try await write { try await $0.delete(collection: collection, ids: ids) }
        var result = outcome.results.max { $0.applied < $1.applied }!
        result.failedReplicas = outcome.failed
        return result
    }

    public func get(collection: String, ids: [String], includeVector: Bool) async throws -> [Point] {
        try await read { try await $0.get(collection: collection, ids: ids, includeVector: includeVector) }
    }

    public func search(_ request: ShardSearch) async throws -> [[SearchHit]] {
        guard let coalescer else { return try await read { try await $0.search(request) } }
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

    public func flush(_ collection: String) async throws { _ = try await write { try await $0.flush(collection) } }
    public func compact(_ collection: String) async throws { _ = try await write { try await $0.compact(collection) } }
}

// MARK: health checks and replica repair

extension ReplicatedShard {
    /// Per replica: address, state (`serving`, `catching_up`, `suspect`) as this router sees it.
    public var replicaStates: [(address: String, state: String)] {
        let now = ContinuousClock.now
        return health.withLock { h in replicas.map { ($0.address, h.displayState($0.index, at: now)) } }
    }

    /// One round of active health checks: asks every replica for its stats (within `timeout`)
    /// and hands the answers to `ReplicaHealth`, which decides which replicas to sync (in the
    /// background; until a sync finishes the replica takes writes but no reads). Returns when
    /// the checks are done (not the syncs).
    public func checkHealth(timeout: Duration = .seconds(2), log: (@Sendable (String) -> Void)? = nil) async {
        let (reports, _) = await fanOut(replicas) { replica in
            let stats = try await RequestDeadline.$current.withValue(ContinuousClock.now + timeout) { try await replica.client.stats() }
            return ReplicaHealth.Report(state: stats.replicaState.rawValue, points: stats.collections.reduce(0) { $0 + $1.count })
        }
        let now = ContinuousClock.now
        let actions = health.withLock { $0.healthChecked(reports, now: now) }
        for action in actions {
            switch action {
            case let .syncFromDivergedPeer(index):
                log?("replica \(replicas[index].address) of shard '\(name)' syncs from a peer that itself missed a write (no other is serving)")
            case let .sync(index, peers, force):
                let replica = replicas[index], name = self.name
                let request = ReplicaSync(peers: peers.map { replicas[$0].address }, force: force)
                Task {
                    var succeeded = false
                    do {
                        let r = try await replica.client.sync(request)
                        succeeded = true
                        log?("replica \(replica.address) of shard '\(name)' is up to date (from \(r.source.isEmpty ? "itself" : r.source): \(r.copied) copied, \(r.deleted) deleted)")
                    } catch {
                        log?("sync of replica \(replica.address) of shard '\(name)' failed: \(shardError(error).message)")
                    }
                    self.health.withLock { $0.syncFinished(index, succeeded: succeeded, force: force) }
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
