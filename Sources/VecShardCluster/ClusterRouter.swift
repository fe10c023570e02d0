import Synchronization
import VecShardRouting
import VecShardSchema
import VecShardShardAPI

/// The router: places writes with the topology (shard-key value → group, rendezvous hashing of
/// the id → shard), scatters searches to the shards of the groups a query can touch, and merges
/// their top-k lists. It talks to shards only through `ShardClient`.
public final class ClusterRouter: Sendable {
    struct State {
        /// The layout reads use (and, outside a rebalance, writes).
        var table: RoutingTable
        /// The layouts writes go to: [table], or while a rebalance copies, [old, new]
        /// (docs/ARCHITECTURE.md, "Online rebalancing").
        var writeTables: [RoutingTable]
        /// Layouts whose owners of a written point, unless they own it in a write layout too,
        /// get a delete of it instead (a rebalance's clean-up: the old owners' copies go).
        var deleteTables: [RoutingTable] = []
        /// New writes wait (a rebalance is starting: the versions written before it must all be
        /// below its start version, so it is stamped while no write is in flight).
        var writesPaused = false
        /// A client for every shard any of these layouts names (and shards being cleaned).
        var shards: [String: any ShardClient]
        /// Clients of shards a finished rebalance removed: no health checks, but a request that
        /// still routes by the layout before it finds its shard.
        var retired: [String: any ShardClient] = [:]
        var schemas: [String: CollectionSchema] = [:]
        /// Layout changes count up `epoch`; writes in flight, by the epoch they started in, so a
        /// change can wait for the writes routed by the layouts before it.
        var epoch: UInt64 = 0
        var writesInFlight: [UInt64: Int] = [:]
        /// Reads in flight by the epoch of the layout they read (a clean-up waits for those of
        /// the layout before it).
        var readsInFlight: [UInt64: Int] = [:]
    }

    let state: Mutex<State>
    private let requestCounts = Mutex<[String: Int]>([:])
    /// Default oversampling of approximate searches: each shard returns k × this many candidates.
    public let defaultOversample: Double
    /// The version clock of writes this router stamps itself (dual writes while a rebalance
    /// copies: one version for every copy of a point).
    let clock = Mutex<UInt64>(0)
    static let versionTag = WriteVersion.randomTag()
    /// The running or last rebalance (ClusterRouter+Rebalance.swift).
    let rebalance: Mutex<RebalanceRuntime>
    let rebalanceStore: (any RebalanceStore)?
    /// Points a rebalance copies per second at most (`--rebalance-points-per-second`; 0: no limit).
    public let rebalancePointsPerSecond: Double
    /// This router's `vecshard-router-id` on shard calls (nil: in-process shards): shards report
    /// the routers they hear from, and a rebalance refuses to start beside another one.
    public let routerID: String?

    public init(table: RoutingTable, shards: [String: any ShardClient], defaultOversample: Double = 1.0,
                rebalanceStore: (any RebalanceStore)? = nil, rebalancePointsPerSecond: Double = 0, routerID: String? = nil) throws {
        for (_, shard) in table.topology.allShards where shards[shard.name] == nil {
            throw ShardCallError(.internalError, .unknownShard, "topology names shard '\(shard.name)' but no client exists for it")
        }
        state = Mutex(State(table: table, writeTables: [table], shards: shards))
        self.defaultOversample = defaultOversample
        self.rebalanceStore = rebalanceStore
        self.rebalancePointsPerSecond = rebalancePointsPerSecond
        self.routerID = routerID
        rebalance = Mutex(RebalanceRuntime())
    }

    public var table: RoutingTable { state.withLock { $0.table } }

    /// Requests each shard has received from this router (tests, /admin/shards).
    public var shardRequestCounts: [String: Int] { requestCounts.withLock { $0 } }

    /// The shards served by several replicas (router role), for health checks and /admin/shards:
    /// those whose client has the `ReplicaSet` capability, whatever its type.
    public var replicaSets: [any ReplicaSet] {
        state.withLock { s in s.shards.values.compactMap { $0 as? any ReplicaSet }.sorted { $0.name < $1.name } }
    }

    func client(_ name: String) -> any ShardClient {
        requestCounts.withLock { $0[name, default: 0] += 1 }
        return state.withLock { $0.shards[name] ?? $0.retired[name]! }
    }

    /// The shards of the layout reads use (what a collection's count sums over).
    private var allShardNames: [String] { state.withLock { s in s.table.topology.allShards.map(\.shard.name) } }
    /// Every shard a layout in use names (creates and drops of collections go to all of them).
    private var everyShardName: [String] {
        state.withLock { s in Array(Set(s.writeTables.flatMap { $0.topology.allShards.map(\.shard.name) } + s.table.topology.allShards.map(\.shard.name))) }
    }

    // MARK: write epochs

    /// Registers a write and gives it the layouts to route by, atomically with respect to
    /// `switchLayout`.
    func beginWrite() async -> (epoch: UInt64, tables: [RoutingTable], deleteTables: [RoutingTable], stamp: Bool) {
        while true {
            let begun = state.withLock { s -> (UInt64, [RoutingTable], [RoutingTable], Bool)? in
                if s.writesPaused { return nil }
                s.writesInFlight[s.epoch, default: 0] += 1
                return (s.epoch, s.writeTables, s.deleteTables, s.writeTables.count > 1 || !s.deleteTables.isEmpty)
            }
            if let begun { return begun }
            if Task.isCancelled {
                // Registered anyway: the write's own checks refuse it (cancelled, nothing written).
                return state.withLock { s in
                    s.writesInFlight[s.epoch, default: 0] += 1
                    return (s.epoch, s.writeTables, s.deleteTables, s.writeTables.count > 1 || !s.deleteTables.isEmpty)
                }
            }
            try? await Task.sleep(for: .milliseconds(1))
        }
    }

    func endWrite(_ epoch: UInt64) {
        state.withLock { s in
            let left = (s.writesInFlight[epoch] ?? 1) - 1
            s.writesInFlight[epoch] = left > 0 ? left : nil
        }
    }

    func beginRead() -> (epoch: UInt64, table: RoutingTable) {
        state.withLock { s in
            s.readsInFlight[s.epoch, default: 0] += 1
            return (s.epoch, s.table)
        }
    }

    func endRead(_ epoch: UInt64) {
        state.withLock { s in
            let left = (s.readsInFlight[epoch] ?? 1) - 1
            s.readsInFlight[epoch] = left > 0 ? left : nil
        }
    }

    /// Waits until the reads that started before `epoch` (by an earlier layout) have finished.
    func waitForReads(before epoch: UInt64) async {
        while state.withLock({ s in s.readsInFlight.keys.contains { $0 < epoch } }) {
            try? await Task.sleep(for: .milliseconds(2))
        }
    }

    /// Installs new layouts (and shard clients), then waits until every write routed by the
    /// previous ones has finished; returns the new epoch.
    @discardableResult
    func switchLayout(table: RoutingTable, writeTables: [RoutingTable], deleteTables: [RoutingTable] = [], pauseWrites: Bool = false,
                      shards: [String: any ShardClient]? = nil) async -> UInt64 {
        let epoch = state.withLock { s in
            s.table = table
            s.writeTables = writeTables
            s.deleteTables = deleteTables
            s.writesPaused = pauseWrites
            if let shards {
                // Clients no layout names any more stay reachable for requests routed before.
                for (name, client) in s.shards where shards[name] == nil { s.retired[name] = client }
                for name in shards.keys { s.retired.removeValue(forKey: name) }
                s.shards = shards
            }
            s.epoch += 1
            return s.epoch
        }
        while state.withLock({ s in s.writesInFlight.keys.contains { $0 < epoch } }) {
            try? await Task.sleep(for: .milliseconds(2))
        }
        return epoch
    }

    /// A version above every one this router stamped or saw (and above `above`).
    func stampVersion(above: UInt64 = 0) -> UInt64 {
        clock.withLock { c in
            c = WriteVersion.next(after: max(c, above), tag: Self.versionTag)
            return c
        }
    }

    // MARK: collections

    public func createCollection(_ schema: CollectionSchema) async throws -> CollectionInfo {
        do { try schema.validate() } catch { throw shardError(error) }
        // Which shards have it already: a create that fails on some shard (a full disk) is
        // undone on the others it created it on, so no half-created name is left behind.
        // Only shards where this request's own create succeeded and the name did not exist
        // before are undone (a shard that refused, e.g. because the name exists there with
        // another schema, is left as it is).
        let name = schema.name
        let shardNames = everyShardName.sorted()
        let existed = try? await onShards(shardNames) { shard -> Bool in
            do {
                _ = try await shard.describeCollection(name)
                return true
            } catch let error as ShardCallError where error.kind == .notFound {
                return false
            } catch {
                return true // there in some form (e.g. refused for a damaged log): never drop it
            }
        }
        let (infos, errors) = await fanOut(shardNames.map(client)) { try await $0.createCollection(schema) }
        if let error = errors.compactMap({ $0 }).first {
            if let existed {
                let created = shardNames.indices.filter { infos[$0] != nil && !existed[$0] }.map { shardNames[$0] }
                _ = try? await onShards(created) { _ = try? await $0.dropCollection(name) }
            }
            throw error
        }
        state.withLock { $0.schemas[schema.name] = schema }
        return summed(infos.map { $0! })
    }

    public func dropCollection(_ name: String) async throws -> Bool {
        state.withLock { _ = $0.schemas.removeValue(forKey: name) }
        return try await onShards(everyShardName) { try await $0.dropCollection(name) }.contains(true)
    }

    public func describeCollection(_ name: String) async throws -> CollectionInfo {
        summed(try await onEveryShard { try await $0.describeCollection(name) })
    }

    /// The collections every shard has (created through this router, so on all of them).
    public func listCollections() async throws -> [CollectionInfo] {
        let stats = try await onShards(allShardNames) { try await $0.stats() }
        var byName: [String: [CollectionInfo]] = [:]
        for s in stats { for c in s.collections { byName[c.name, default: []].append(c) } }
        return byName.keys.sorted().map { summed(byName[$0]!) }
    }

    /// Every shard in use, also those a rebalance fills or empties.
    public func stats() async throws -> [ShardStats] {
        try await onShards(everyShardName) { try await $0.stats() }
    }

    public func flush(_ collection: String) async throws {
        _ = try await onShards(everyShardName) { try await $0.flush(collection) }
    }

    public func compact(_ collection: String) async throws {
        _ = try await onShards(everyShardName) { try await $0.compact(collection) }
    }

    /// The collection's schema, cached after the first look-up.
    public func schema(of collection: String) async throws -> CollectionSchema {
        if let cached = state.withLock({ $0.schemas[collection] }) { return cached }
        let name = allShardNames[0]
        let schema = try await client(name).describeCollection(collection).schema
        state.withLock { $0.schemas[collection] = schema }
        return schema
    }

    // MARK: writes

    /// Upserts a batch. The whole batch is validated first (a bad point changes nothing
    /// anywhere); an id given twice keeps its last occurrence. When a point's shard-key value
    /// moves it to another group, its copy in every other group is deleted after the new copy is
    /// durable, so a search never misses it and no stale copy stays behind.
    public func upsert(collection: String, points: [Point]) async throws -> WriteResult {
        let schema = try await schema(of: collection)
        var lastIndex: [String: Int] = [:]
        for (i, p) in points.enumerated() { lastIndex[p.id] = i }
        let unique = points.enumerated().filter { lastIndex[$0.element.id] == $0.offset }.map(\.element)
        do {
            try schema.validate(points: unique)
        } catch { throw shardError(error) }
        let (epoch, tables, deleteTables, dual) = await beginWrite()
        defer { endWrite(epoch) }
        // Each point goes to its owner in every layout writes use (two while a rebalance copies);
        // its copies in the other groups of those layouts are deleted.
        var perShard: [String: [Point]] = [:]
        var staleDeletes: [String: [String]] = [:]
        // Shards a clean-up's deletes may go to: those reads still ask (shards that leave are dropped whole).
        let inUse = deleteTables.isEmpty ? [] : Set(tables.flatMap { $0.topology.allShards.map(\.shard.name) })
        for point in unique {
            var owners: [String] = []
            var groups: [Int] = []
            for table in tables {
                let value = table.topology.collections[collection]?.shardKey.flatMap { point.metadata[$0] }?.shardKeyText
                let group = table.group(forCollection: collection, shardKeyValue: value)
                groups.append(group)
                let owner = table.owner(of: point.id, inGroup: group)
                if !owners.contains(owner) { owners.append(owner) }
            }
            for owner in owners { perShard[owner, default: []].append(point) }
            var others: [String] = []
            for (table, group) in zip(tables, groups) {
                for other in table.otherGroups(collection: collection, than: group) {
                    let shard = table.owner(of: point.id, inGroup: other)
                    if !owners.contains(shard) && !others.contains(shard) { others.append(shard) }
                }
            }
            for table in deleteTables {
                // Its owner under a layout being cleaned up, and its copies in that layout's groups.
                for group in table.groupsToSearch(collection: collection, pinnedValues: nil) {
                    let shard = table.owner(of: point.id, inGroup: group)
                    if !owners.contains(shard) && !others.contains(shard) && inUse.contains(shard) { others.append(shard) }
                }
            }
            for shard in others { staleDeletes[shard, default: []].append(point.id) }
        }
        let writes = perShard, stale = staleDeletes
        try refuseIfBlocked(Array(writes.keys) + Array(stale.keys))
        try refuseIfLate()
        // While a rebalance copies, this router stamps the version, so every copy of a point
        // carries the same one.
        let written = try await versionedWrite(shards: Array(writes.keys), stamped: dual) { shard, version in
            try await shard.upsert(collection: collection, points: writes[shard.name]!, version: version)
        }
        var versions = Dictionary(uniqueKeysWithValues: zip(writes.keys.sorted(), written.map(\.version)))
        if !stale.isEmpty {
            do {
                let removed = try await versionedWrite(shards: Array(stale.keys), stamped: dual) { shard, version in
                    try await shard.delete(collection: collection, ids: stale[shard.name]!, version: version)
                }
                // A read that must see this write must not see the old copies either.
                for (shard, result) in zip(stale.keys.sorted(), removed) { versions[shard] = max(versions[shard] ?? 0, result.version) }
            } catch var error as ShardCallError {
                // The points were written to their owners; only old copies in other groups remain.
                error.message = "the points were written (shards \(writes.keys.sorted().joined(separator: ", "))), but removing their "
                    + "copies from other shard groups failed: \(error.message)"
                error.appliedShards = Array(Set(error.appliedShards).union(writes.keys)).sorted()
                throw error
            }
        }
        var result = WriteResult(lsn: written.map(\.lsn).max() ?? 0, applied: unique.count,
                                 failedReplicas: written.flatMap(\.failedReplicas).sorted())
        result.shardVersions = versions
        return result
    }

    /// Deletes ids wherever they may live (their owner shard in every group of the collection,
    /// in every layout writes use).
    public func delete(collection: String, ids: [String]) async throws -> WriteResult {
        _ = try await schema(of: collection)
        for id in ids {
            do { try CollectionSchema.validate(pointID: id) } catch { throw shardError(error) }
        }
        let (epoch, tables, deleteTables, stamped) = await beginWrite()
        defer { endWrite(epoch) }
        var perShard: [String: [String]] = [:]
        let inUse = deleteTables.isEmpty ? [] : Set(tables.flatMap { $0.topology.allShards.map(\.shard.name) })
        for id in Set(ids) {
            var owners = Set<String>()
            for table in tables {
                for group in table.groupsToSearch(collection: collection, pinnedValues: nil) { owners.insert(table.owner(of: id, inGroup: group)) }
            }
            for table in deleteTables {
                for group in table.groupsToSearch(collection: collection, pinnedValues: nil) {
                    let owner = table.owner(of: id, inGroup: group)
                    if inUse.contains(owner) { owners.insert(owner) }
                }
            }
            for owner in owners { perShard[owner, default: []].append(id) }
        }
        let deletes = perShard
        try refuseIfBlocked(Array(deletes.keys))
        try refuseIfLate()
        let results = try await versionedWrite(shards: Array(deletes.keys), stamped: stamped) { shard, version in
            try await shard.delete(collection: collection, ids: deletes[shard.name]!, version: version)
        }
        var result = WriteResult(lsn: results.map(\.lsn).max() ?? 0, applied: results.reduce(0) { $0 + $1.applied },
                                 failedReplicas: results.flatMap(\.failedReplicas).sorted())
        result.shardVersions = Dictionary(uniqueKeysWithValues: zip(deletes.keys.sorted(), results.map(\.version)))
        return result
    }

    /// A write on several shards, with one version stamped here when `stamped` (else each shard
    /// stamps its own): a shard that holds a newer version for an id refuses it as stale, and
    /// the whole write is sent again above that version (at most 3 rounds).
    private func versionedWrite<T: Sendable>(shards: [String], stamped: Bool,
                                             _ body: @escaping @Sendable (any ShardClient, UInt64?) async throws -> T) async throws -> [T] {
        guard stamped else { return try await writeOnShards(shards) { try await body($0, nil) } }
        var version = stampVersion()
        var round = 0
        while true {
            let v = version
            do {
                return try await writeOnShards(shards) { try await body($0, v) }
            } catch let error as ShardCallError where error.code == "stale_version" && round < 2 {
                version = stampVersion(above: ReplicatedShard.heldVersion(in: error) ?? version)
                round += 1
            }
        }
    }

    public func get(collection: String, id: String, includeVector: Bool = true) async throws -> Point? {
        _ = try await schema(of: collection)
        do { try CollectionSchema.validate(pointID: id) } catch { throw shardError(error) }
        let (epoch, table) = beginRead()
        defer { endRead(epoch) }
        let owners = table.groupsToSearch(collection: collection, pinnedValues: nil).map { table.owner(of: id, inGroup: $0) }
        let found = try await onShards(owners) { shard in
            try await shard.get(collection: collection, ids: [id], includeVector: includeVector)
        }
        return found.flatMap { $0 }.first
    }

    // MARK: search

    public struct SearchOutcome: Sendable {
        /// Per query, best first.
        public var results: [[SearchHit]]
        public var shardsAsked: Int
        public var shardsAnswered: Int
        /// Shards that did not answer (only with `allowPartial`).
        public var missingShards: [String]
    }

    /// Runs a batch of queries: each goes to the shards of the groups its filter allows, asks each
    /// for k' results (k for exact searches, k × oversample otherwise) and merges them.
    public func search(collection: String, queries: [ShardQuery], oversample: Double? = nil,
                       allowPartial: Bool = false) async throws -> SearchOutcome {
        let schema = try await schema(of: collection)
        let (epoch, table) = beginRead()
        defer { endRead(epoch) }
        let routing = table.topology.collections[collection]
        var shardQueries: [String: [(index: Int, query: ShardQuery)]] = [:]
        var ks: [Int] = []
        for (qi, query) in queries.enumerated() {
            do {
                try schema.validate(query: query.vector)
                try CollectionSchema.validate(filter: query.filter)
                try SearchLimits.check(k: query.k)
            } catch { throw ShardCallError(error) }
            let k = query.k
            ks.append(k)
            let exact = query.exact || schema.index.kind == .flat
            var shardQuery = query
            shardQuery.k = Placement.perShardK(k: k, exact: exact, oversample: oversample ?? defaultOversample, maxK: SearchLimits.maxK)
            let pinned = routing?.shardKey.flatMap { key in query.filter.requiredCondition(on: key) }.map { $0.values.map(\.shardKeyText) }
            for group in table.groupsToSearch(collection: collection, pinnedValues: pinned) {
                for shard in table.groups[group].shards {
                    shardQueries[shard.name, default: []].append((qi, shardQuery))
                }
            }
        }
        let wanted = ks.reduce(0, +)
        guard wanted <= SearchLimits.maxResultsPerRequest else {
            throw ShardCallError(.invalidArgument, .limitExceeded,
                                 "the queries ask for \(wanted) results in all (the sum of k); the limit is \(SearchLimits.maxResultsPerRequest) per request")
        }
        let names = Array(shardQueries.keys)
        let calls = names.map { (shard: client($0), request: ShardSearch(collection: collection, queries: shardQueries[$0]!.map(\.query))) }
        let (responses, errors) = await fanOut(calls) { try await $0.shard.search($0.request) }
        let answers = names.indices.map { (names[$0], responses[$0], errors[$0]) }
        var mergers = ks.map { TopKMerger(k: $0) }
        var missing: [String] = []
        var firstFailure: ShardCallError?
        for (name, response, error) in answers {
            if let response {
                for (slot, hits) in zip(shardQueries[name]!, response) { mergers[slot.index].add(contentsOf: hits) }
            } else if let error {
                if error.kind == .invalidArgument || error.kind == .notFound { throw error } // the caller's fault, not a shard's
                missing.append(name)
                firstFailure = firstFailure ?? error
            }
        }
        if !missing.isEmpty && !allowPartial {
            // The request's own deadline, not the shards: 504, as a late answer would get.
            if let deadline = RequestDeadline.current, ContinuousClock.now >= deadline, firstFailure?.kind == .deadlineExceeded {
                throw ShardCallError(.deadlineExceeded, .deadlineExceeded,
                                     "the request's deadline passed before shards \(missing.sorted().joined(separator: ", ")) answered; their searches were stopped")
            }
            throw ShardCallError(.unavailable, .shardsUnavailable,
                                 "shards \(missing.sorted().joined(separator: ", ")) did not answer (\(firstFailure?.message ?? "")); set allow_partial to accept partial results")
        }
        let results = mergers.map { $0.result() }
        // Each shard kept its answer under the limit; the merged answer must fit it too.
        let bytes = results.reduce(0) { $0 + $1.reduce(0) { $0 + $1.byteCount } }
        guard bytes <= SearchLimits.maxResponseBytes else { throw ShardCallError(SchemaError.responseTooLarge(limit: SearchLimits.maxResponseBytes)) }
        return SearchOutcome(results: results, shardsAsked: names.count,
                             shardsAnswered: names.count - missing.count, missingShards: missing.sorted())
    }

    // MARK: helpers

    /// A write whose request deadline has passed (or whose caller went away) before it is sent
    /// to any shard is not sent: 504, nothing written. Once sent it runs to its end.
    private func refuseIfLate() throws {
        if let deadline = RequestDeadline.current, ContinuousClock.now >= deadline {
            throw ShardCallError(.deadlineExceeded, .deadlineExceeded, "the request's deadline passed before the write was sent to the shards; nothing was written")
        }
        if Task.isCancelled { throw ShardCallError(.cancelled, .cancelled, "the request was cancelled before the write was sent to the shards; nothing was written") }
    }

    /// A write that cannot reach its quorum on some shard writes nothing anywhere.
    private func refuseIfBlocked(_ shardNames: [String]) throws {
        let blockers = state.withLock { s in Set(shardNames).sorted().compactMap { s.shards[$0]?.writeBlocker } }
        if !blockers.isEmpty {
            throw ShardCallError(.unavailable, .shardsUnavailable, "nothing was written: " + blockers.joined(separator: "; "))
        }
    }


    private func summed(_ infos: [CollectionInfo]) -> CollectionInfo {
        var total = infos[0]
        for info in infos.dropFirst() {
            total.count += info.count
            total.segments += info.segments
            total.memoryBytes += info.memoryBytes
            total.diskBytes += info.diskBytes
            total.lsn = max(total.lsn, info.lsn)
            total.indexBuilding = total.indexBuilding || info.indexBuilding
        }
        return total
    }

    private func onEveryShard<T: Sendable>(_ body: @escaping @Sendable (any ShardClient) async throws -> T) async throws -> [T] {
        try await onShards(allShardNames, body)
    }

    /// A write on several shards. When some shards fail, the error says which shards applied the
    /// write and which did not (each shard applies its part atomically), so a client knows the
    /// request was partly applied; the status and code are those of the first failure.
    private func writeOnShards<T: Sendable>(_ names: [String], _ body: @escaping @Sendable (any ShardClient) async throws -> T) async throws -> [T] {
        let sorted = names.sorted()
        let (values, errors) = await fanOut(sorted.map(client), body)
        guard var error = errors.compactMap({ $0 }).first else { return values.map { $0! } }
        guard sorted.count > 1 else { throw error }
        let applied = sorted.indices.filter { values[$0] != nil }.map { sorted[$0] }
        let failed = sorted.indices.filter { values[$0] == nil }.map { sorted[$0] }
        let reasons = failed.indices.map { "\(failed[$0]): \(errors[sorted.firstIndex(of: failed[$0])!]!.message)" }
        error.message = (applied.isEmpty ? "the write was applied on no shard" : "the write was applied on shards \(applied.joined(separator: ", "))")
            + " and not on \(failed.joined(separator: ", ")) (\(reasons.joined(separator: "; "))); retrying the request is safe"
        error.appliedShards = applied
        error.failedShards = failed
        throw error
    }

    /// Runs `body` on the named shards concurrently; the first failure (by shard name) is thrown
    /// after every call has finished.
    func onShards<T: Sendable>(_ names: [String], _ body: @escaping @Sendable (any ShardClient) async throws -> T) async throws -> [T] {
        let (values, errors) = await fanOut(names.sorted().map(client), body)
        if let error = errors.compactMap({ $0 }).first { throw error }
        return values.map { $0! }
    }
}

