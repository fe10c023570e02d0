import Foundation
import Synchronization
import VecShardRouting
import VecShardSchema
import VecShardShardAPI

/// Topology changes and online rebalancing (docs/ARCHITECTURE.md, "Online rebalancing"):
/// `copying` (writes to the owners under both layouts, reads from the old one, the points that
/// change owner copied with Changes + Apply) → flip (the new layout is the topology) →
/// `cleaning` (old owners delete what they no longer own) → `done`; `aborting` → `aborted`
/// before the flip.
extension ClusterRouter {
    /// What a topology change did: applied at once (`rebalance` nil) or started a rebalance.
    public struct TopologyChange: Sendable {
        public var topology: Topology
        public var rebalance: RebalanceRecord?
    }

    /// Replaces the topology. `expectedVersion` (from `If-Match`) must equal the current version
    /// when given. A change that moves stored points (shards added to or removed from a group
    /// that holds points, a collection with points routed differently) starts a rebalance and
    /// returns at once; one that moves nothing (addresses, replicas, empty groups) is applied
    /// before this returns. `makeClient` connects shards the new topology adds or re-addresses.
    @discardableResult
    public func replaceTopology(_ proposed: Topology, expectedVersion: UInt64?,
                                makeClient: (ShardDescriptor) throws -> any ShardClient) async throws -> TopologyChange {
        // One change at a time (a second one while a change is applied or a rebalance runs: 409).
        let busy = rebalance.withLock { r -> RebalanceRecord?? in
            // A failed one holds copies on the new owners until it is aborted.
            if let running = r.record, running.isRunning || running.phase == .failed { return .some(running) }
            if r.changing { return .some(nil) }
            r.changing = true
            return .none
        }
        if let busy {
            guard let running = busy else {
                throw ShardCallError(.aborted, .rebalanceRunning, "another topology change is being applied; read the topology again and retry")
            }
            throw ShardCallError(.aborted, .rebalanceRunning,
                                 "rebalance \(running.id) (topology \(running.from.version) → \(running.to.version)) is \(running.phase.rawValue); "
                                 + (running.phase == .failed ? "abort it (POST /admin/rebalance/abort) first"
                                                             : "wait for it (GET /admin/rebalance) or abort it (POST /admin/rebalance/abort) first"))
        }
        defer { rebalance.withLock { $0.changing = false } }
        let current = table.topology
        if let expectedVersion, expectedVersion != current.version {
            throw ShardCallError(.failedPrecondition, .versionMismatch,
                                 "topology version is \(current.version), not \(expectedVersion) as If-Match says; read it again and retry")
        }
        do {
            try current.validateReplacement(by: proposed, pointCounts: [:])
        } catch {
            throw ShardCallError(.invalidArgument, .invalidTopology, "\(error)")
        }
        let newTable = try RoutingTable(proposed)
        // The schemas of the collections (to create them on added shards); what moves is
        // decided later, with writes paused.
        var schemas: [String: CollectionSchema] = [:]
        for s in try await onShards(current.allShards.map(\.shard.name), { try await $0.stats() }) {
            for c in s.collections { schemas[c.name] = c.schema }
        }

        // Clients: kept for shards whose replicas and group are unchanged; a shard whose replica
        // list changed gets a new client that inherits what the old one knew (added replicas
        // start out of sync and catch up from a peer before they serve).
        let oldShards = state.withLock { $0.shards }
        var shards: [String: any ShardClient] = [:]
        for (group, shard) in proposed.allShards {
            let previous = current.allShards.first { $0.shard.name == shard.name }
            if let existing = oldShards[shard.name], previous.map({ $0.shard.replicas == shard.replicas && $0.group == group }) ?? true {
                shards[shard.name] = existing
            } else {
                let client = try makeClient(shard)
                if let old = oldShards[shard.name] as? ReplicatedShard, let new = client as? ReplicatedShard { new.inherit(from: old) }
                shards[shard.name] = client
            }
        }
        // Collections exist on every shard: create them on the shards this change adds, which
        // must not hold points of them already (left from an earlier layout).
        let before = Set(current.allShards.map(\.shard.name))
        let added = shards.keys.filter { !before.contains($0) }.sorted()
        for name in added {
            let client = shards[name]!
            for schema in schemas.values.sorted(by: { $0.name < $1.name }) {
                let info = try await client.createCollection(schema)
                if info.count > 0 {
                    throw ShardCallError(.aborted, .shardNotEmpty,
                                         "shard '\(name)' already holds \(info.count) points of collection '\(schema.name)' (from an earlier layout); "
                                         + "drop them there (or give the shard a new data directory) before adding it")
                }
            }
        }
        // With writes paused and those in flight finished, what the shards hold is what moves:
        // no write can land between deciding and routing by the new layout. A rebalance's start
        // version S is stamped above every version held then (copies of older points get S - 1).
        let oldTable = table
        await switchLayout(table: oldTable, writeTables: [oldTable], pauseWrites: true)
        var pointsByShard: [String: [String: UInt64]] = [:]
        var held: UInt64 = 0
        var routersSeen = Set<String>()
        do {
            for s in try await onShards(current.allShards.map(\.shard.name), { try await $0.stats() }) {
                routersSeen.formUnion(s.routersSeen)
                for c in s.collections {
                    pointsByShard[s.shardID, default: [:]][c.name] = c.count
                    held = max(held, c.version)
                }
            }
        } catch {
            await switchLayout(table: oldTable, writeTables: [oldTable])
            throw error
        }
        let moving = Self.movingCollections(from: current, to: proposed, pointsByShard: pointsByShard)
        if moving.isEmpty {
            do { try rebalanceStore?.save(topology: proposed) } catch {
                await switchLayout(table: oldTable, writeTables: [oldTable])
                throw error
            }
            await switchLayout(table: newTable, writeTables: [newTable], shards: shards)
            inheritMissedWrites(from: oldShards, into: shards)
            return TopologyChange(topology: proposed, rebalance: nil)
        }
        // A rebalance needs every write to go through this router (until the topology is in etcd).
        let others = routersSeen.subtracting([routerID ?? ""]).sorted()
        if !others.isEmpty {
            await switchLayout(table: oldTable, writeTables: [oldTable])
            throw ShardCallError(.aborted, .severalRouters,
                                 "this change moves points, and shards were checked by other routers in the last 10 s (\(others.joined(separator: ", "))); "
                                 + "a rebalance needs a single router until the topology is kept in etcd: scale the routers to one and retry")
        }
        let start = stampVersion(above: held)
        var tasks: [RebalanceRecord.Task] = []
        for collection in moving.sorted() {
            for group in oldTable.groupsToSearch(collection: collection, pinnedValues: nil) {
                for shard in oldTable.groups[group].shards where (pointsByShard[shard.name]?[collection] ?? 0) > 0 {
                    tasks.append(.init(collection: collection, source: shard.name))
                }
            }
        }
        let total = tasks.reduce(UInt64(0)) { $0 + (pointsByShard[$1.source]?[$1.collection] ?? 0) }
        let record = RebalanceRecord(id: "rb-\(current.version)-\(proposed.version)-\(String(start >> 8, radix: 36))", phase: .copying,
                                     from: current, to: proposed, startVersion: start, startedAt: Date(), totalPoints: total,
                                     collections: moving.sorted(), tasks: tasks)
        do { try rebalanceStore?.save(record) } catch {
            await switchLayout(table: oldTable, writeTables: [oldTable])
            throw error
        }
        var union = oldShards
        for (name, client) in shards { union[name] = client }
        await startRebalance(record, shards: union)
        inheritMissedWrites(from: oldShards, into: shards)
        return TopologyChange(topology: proposed, rebalance: record)
    }

    /// Resumes a rebalance a restarted router found in its store (`shards` must have a client
    /// for every shard of both layouts): a copy starts again from the start of each unfinished
    /// part (idempotent: last writer wins), cleaning and aborting go on.
    public func resumeRebalance(_ record: RebalanceRecord) async {
        guard record.isRunning else {
            rebalance.withLock { $0.record = record }
            return
        }
        await startRebalance(record, shards: state.withLock { $0.shards })
    }

    /// The running or last rebalance (nil: none since this router's store was created).
    public var rebalanceStatus: (record: RebalanceRecord, etaSeconds: Double?)? {
        rebalance.withLock { r in
            guard let record = r.record else { return nil }
            var eta: Double?
            if record.phase == .copying {
                let done = record.tasks.indices.map { record.tasks[$0].done ? 1 : (r.progress[$0] ?? 0) }
                let fraction = done.isEmpty ? 1 : done.reduce(0, +) / Double(done.count)
                let elapsed = Date().timeIntervalSince(record.startedAt)
                if fraction > 0.01 { eta = max(0, elapsed / fraction - elapsed) }
            }
            return (record, eta)
        }
    }

    /// Asks the running (or failed) rebalance to go back to the old layout. Only before the
    /// flip: once the new layout is the topology, it finishes cleaning.
    public func abortRebalance() throws -> RebalanceRecord {
        let (record, restart) = try rebalance.withLock { r -> (RebalanceRecord, Bool) in
            guard var record = r.record, record.isRunning || record.phase == .failed else {
                throw ShardCallError(.aborted, .noRebalanceRunning, "no rebalance is running")
            }
            guard record.phase == .copying || record.phase == .failed, !r.flipping else {
                throw ShardCallError(.aborted, .noRebalanceRunning,
                                     "rebalance \(record.id) is \(r.flipping ? "flipping" : record.phase.rawValue): "
                                     + (record.phase == .aborting ? "it is being aborted already" : "the new layout is the topology already; it finishes cleaning"))
            }
            r.abortRequested = true
            let restart = record.phase == .failed
            record.phase = .aborting
            record.error = nil
            record.finishedAt = nil
            r.record = record
            return (record, restart)
        }
        // Saved at once: a router restarted before the worker saw it goes on aborting.
        try rebalanceStore?.save(record)
        if restart {
            rebalance.withLock { r in r.worker = Task.detached { await RequestDeadline.$current.withValue(nil) { await self.work() } } }
        }
        return record
    }

    /// Waits for the running rebalance's worker (tests, shutdown).
    public func waitForRebalance() async {
        let worker = rebalance.withLock { $0.worker }
        await worker?.value
    }

    /// Stops the worker (the state stays in the store; a restarted router resumes it).
    public func stopRebalance() async {
        let worker = rebalance.withLock { $0.worker }
        worker?.cancel()
        await worker?.value
    }

    // MARK: the worker

    private func startRebalance(_ record: RebalanceRecord, shards: [String: any ShardClient]) async {
        let old = try! RoutingTable(record.from), new = try! RoutingTable(record.to)
        switch record.phase {
        case .copying:
            await switchLayout(table: old, writeTables: [old, new], shards: shards)
        case .cleaning:
            await switchLayout(table: new, writeTables: [new], deleteTables: [old], shards: shards)
        case .aborting:
            await switchLayout(table: old, writeTables: [old], shards: shards)
        default: return
        }
        clock.withLock { $0 = max($0, record.startVersion) }
        rebalance.withLock { r in
            r.record = record
            r.abortRequested = false
            r.progress = [:]
            // Detached, and without the request's deadline: the PUT that started it has one.
            r.worker = Task.detached { await RequestDeadline.$current.withValue(nil) { await self.work() } }
        }
    }

    private func update(_ change: (inout RebalanceRecord) -> Void, persist: Bool = true) throws {
        let record = rebalance.withLock { r -> RebalanceRecord in
            change(&r.record!)
            return r.record!
        }
        if persist { try rebalanceStore?.save(record) }
    }

    private var record: RebalanceRecord { rebalance.withLock { $0.record! } }

    /// Waits until every shard of `layout` with replicas has one serving reads (an abort or a
    /// stop ends the wait).
    private func waitUntilServing(_ layout: RoutingTable) async throws {
        var waited = false
        while true {
            let shards = state.withLock { s in layout.topology.allShards.compactMap { s.shards[$0.shard.name] as? any ReplicaSet } }
            // Serving by a health report (before the first one, a new client knows nothing).
            let waiting = shards.filter { !$0.replicaStates.contains { $0.state == "serving" && $0.version != nil } }.map(\.name)
            if waiting.isEmpty || rebalance.withLock({ $0.abortRequested }) {
                if waited { try update({ $0.error = nil }, persist: false) }
                return
            }
            waited = true
            try update({ $0.error = "waiting for a replica of \(waiting.sorted().joined(separator: ", ")) to serve before the flip" }, persist: false)
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// The last step of a rebalance, saved.
    private func finish(_ phase: RebalanceRecord.Phase) throws {
        try update {
            $0.phase = phase
            $0.finishedAt = Date()
            $0.error = nil
        }
    }

    /// Runs the rebalance to its end, retrying what fails (a shard down) with backoff.
    private func work() async {
        var backoff = Duration.milliseconds(100)
        // The epoch reads by the new layout began in (a resumed clean-up: the current one).
        var cleaningEpoch = state.withLock { $0.epoch }
        while !Task.isCancelled {
            do {
                switch record.phase {
                case .copying:
                    try await copyAll()
                    // Reads move to the new layout at the flip: each of its shards must have a
                    // replica that serves (added ones start awaiting a sync by the health checks).
                    try await waitUntilServing(try RoutingTable(record.to))
                    // The flip, unless an abort came first (decided under the lock abort takes).
                    let flip = rebalance.withLock { r -> Bool in
                        if r.abortRequested { return false }
                        r.flipping = true
                        return true
                    }
                    guard flip else { continue } // abortRebalance set the phase to aborting
                    // Persist the new layout first, so a restart routes by it.
                    let new = try RoutingTable(record.to)
                    try rebalanceStore?.save(topology: record.to)
                    try update { $0.phase = .cleaning }
                    rebalance.withLock { $0.flipping = false }
                    // Reads move to the new layout, whose old owners still hold copies until the
                    // clean-up deletes them: identical ones (dual writes), which the merge keeps
                    // once. A write from now on deletes the old copy instead of updating it.
                    cleaningEpoch = await switchLayout(table: new, writeTables: [new], deleteTables: [try RoutingTable(record.from)])
                case .cleaning:
                    // Dual writes that reached an old owner but not the new one (the client was
                    // told it failed): copied now that every dual write has finished.
                    try await copyAll(since: record.startVersion)
                    // Reads by the old layout (started before the flip) may still ask the old
                    // copies: they finish first.
                    await waitForReads(before: cleaningEpoch)
                    try await clean(keeping: try RoutingTable(record.to), from: try RoutingTable(record.from), collections: record.collections)
                    let new = try RoutingTable(record.to)
                    await switchLayout(table: new, writeTables: [new])
                    dropClients(except: record.to)
                    try finish(.done)
                    return
                case .aborting:
                    // Back to the old layout (it has every write), then the copies go.
                    try rebalanceStore?.save(topology: record.from)
                    let old = try RoutingTable(record.from)
                    let epoch = await switchLayout(table: old, writeTables: [old])
                    await waitForReads(before: epoch)
                    try await clean(keeping: old, from: try RoutingTable(record.to), collections: record.collections)
                    dropClients(except: record.from)
                    try finish(.aborted)
                    return
                case .done, .aborted, .failed:
                    return
                }
                backoff = .milliseconds(100)
            } catch is CancellationError {
                return
            } catch let error as ShardCallError where error.kind == .invalidArgument && record.phase == .copying {
                // Retrying cannot fix a refused page: stop copying; the old layout still routes
                // and has every write (abort it).
                try? update {
                    $0.phase = .failed
                    $0.error = error.message
                    $0.finishedAt = Date()
                }
                return
            } catch {
                if Task.isCancelled { return }
                try? update({ $0.error = "\(shardError(error).message) (retrying)" }, persist: false)
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(5))
            }
        }
    }

    /// Copies, per unfinished task, the source's points whose owner under the new layout is
    /// another shard to that owner, with their versions (older than the rebalance: one below
    /// its start, so they win over tombstones an earlier rebalance left on the target and lose
    /// to every dual write). `since`: the pass after the flip, over every task, of the points
    /// written from that version on (dual writes that failed on their new owner), with their
    /// own versions; deletes are not repeated (a delete the client was told failed may not hold).
    private func copyAll(since: UInt64? = nil) async throws {
        let record = self.record
        let new = try RoutingTable(record.to), old = try RoutingTable(record.from)
        let below = record.startVersion - 1
        let rate = rebalancePointsPerSecond
        let began = ContinuousClock.now
        var copiedHere: UInt64 = 0
        for (index, task) in record.tasks.enumerated() where !task.done || since != nil {
            let selector = Self.selector(collection: task.collection, source: task.source, old: old, new: new)
            let source = client(task.source)
            var after: (version: UInt64, id: String) = (since ?? 0, "")
            var copied: UInt64 = 0
            var lowest: UInt64?
            while true {
                try Task.checkCancellation()
                if since == nil, rebalance.withLock({ $0.abortRequested }) { return }
                let page: ChangesPageResult
                do {
                    page = try await source.changes(ChangesQuery(collection: task.collection, afterVersion: after.version, afterID: after.id,
                                                                 limit: 4000, ignoringFloor: true, selector: selector))
                } catch let error as ShardCallError where error.kind == .notFound {
                    break // the collection was dropped meanwhile
                }
                var perTarget: [String: VersionedChanges] = [:]
                for (point, version) in zip(page.changes.points, page.changes.versions) {
                    let value = new.topology.collections[task.collection]?.shardKey.flatMap { point.metadata[$0] }?.shardKeyText
                    let target = new.target(collection: task.collection, id: point.id, shardKeyValue: value).shard
                    guard target != task.source else { continue }
                    perTarget[target, default: VersionedChanges()].points.append(point)
                    perTarget[target, default: VersionedChanges()].versions.append(version < record.startVersion ? below : version)
                }
                if since == nil, selector?.routing == nil, let group = old.groupIndex(ofShard: task.source) {
                    // Deletes (an id selector lists them): to the id's owner in the new layout's group.
                    let name = old.groups[group].name
                    if let g = new.groups.firstIndex(where: { $0.name == name }) {
                        for (id, version) in zip(page.changes.deletedIDs, page.changes.deletedVersions) {
                            let target = new.owner(of: id, inGroup: g)
                            guard target != task.source else { continue }
                            perTarget[target, default: VersionedChanges()].deletedIDs.append(id)
                            perTarget[target, default: VersionedChanges()].deletedVersions.append(version)
                        }
                    }
                }
                for (target, changes) in perTarget.sorted(by: { $0.key < $1.key }) where !changes.isEmpty {
                    _ = try await client(target).apply(collection: task.collection, changes: changes)
                    copied += UInt64(changes.points.count)
                    copiedHere += UInt64(changes.points.count)
                }
                // Progress: how far the page position went through the versions below the start.
                let position = page.nextVersion
                let low = lowest ?? min(page.changes.versions.first ?? position, page.changes.deletedVersions.first ?? position)
                lowest = low
                let fraction = position <= low || record.startVersion <= low ? 1 : Double(position - low) / Double(record.startVersion - low)
                let total = copied
                if since == nil {
                    try update({ $0.tasks[index].copied = total }, persist: false)
                    rebalance.withLock { $0.progress[index] = min(1, fraction) }
                }
                if rate > 0 {
                    // At most `rate` points a second, over the whole copy.
                    let due = began + .seconds(Double(copiedHere) / rate)
                    if due > ContinuousClock.now { try await Task.sleep(until: due, clock: .continuous) }
                }
                guard page.more else { break }
                after = (page.nextVersion, page.nextID)
            }
            let total = copied
            if since == nil {
                try update {
                    $0.tasks[index].done = true
                    $0.tasks[index].copied = total
                    $0.error = nil
                }
            }
        }
    }

    /// After the flip (`keeping` = new layout) or an abort (`keeping` = old layout): every shard
    /// that `keeping` names deletes the points of the moving collections it does not own under
    /// `keeping`; shards only `from` names drop those collections.
    private func clean(keeping: RoutingTable, from other: RoutingTable, collections: [String]) async throws {
        let kept = Set(keeping.topology.allShards.map(\.shard.name))
        let rate = rebalancePointsPerSecond, began = ContinuousClock.now
        var removed: UInt64 = 0
        for collection in collections {
            for (_, shard) in keeping.topology.allShards {
                try Task.checkCancellation()
                // Only shards that may hold foreign points: those of the groups the collection
                // lives in under either layout.
                let involved = Set(other.groupsToSearch(collection: collection, pinnedValues: nil).flatMap { other.groups[$0].shards.map(\.name) }
                    + keeping.groupsToSearch(collection: collection, pinnedValues: nil).flatMap { keeping.groups[$0].shards.map(\.name) })
                guard involved.contains(shard.name) else { continue }
                // By the whole kept layout (never by a group name another layout gave the shard),
                // and each id checked here again: a selector a shard misread must not delete
                // what it owns.
                let selector = Self.layoutSelector(collection: collection, owner: shard.name, layout: keeping)
                let target = client(shard.name)
                var after: (version: UInt64, id: String) = (0, "")
                while true {
                    let page: ChangesPageResult
                    do {
                        page = try await target.changes(ChangesQuery(collection: collection, afterVersion: after.version, afterID: after.id,
                                                                     limit: 2000, ignoringFloor: true, selector: selector))
                    } catch let error as ShardCallError where error.kind == .notFound { break }
                    let routing = keeping.topology.collections[collection]
                    var byOwner: [String: [(point: Point, version: UInt64)]] = [:]
                    for (point, version) in zip(page.changes.points, page.changes.versions) {
                        let value = routing?.shardKey.flatMap { point.metadata[$0] }?.shardKeyText
                        let owner = keeping.target(collection: collection, id: point.id, shardKeyValue: value).shard
                        if owner != shard.name { byOwner[owner, default: []].append((point, version)) }
                    }
                    // Never delete the last copy: a point its owner lacks (a copy a shard of an
                    // older build misread, a lost page) is copied there first.
                    for (owner, items) in byOwner.sorted(by: { $0.key < $1.key }) {
                        let present = Set(try await client(owner).get(collection: collection, ids: items.map(\.point.id), includeVector: false).map(\.id))
                        let missing = items.filter { !present.contains($0.point.id) }
                        if !missing.isEmpty {
                            let floor = record.startVersion - 1
                            _ = try await client(owner).apply(collection: collection, changes: VersionedChanges(
                                points: missing.map(\.point), versions: missing.map { max($0.version, floor) }))
                        }
                    }
                    let ids = byOwner.values.flatMap { $0.map(\.point.id) }
                    if !ids.isEmpty {
                        _ = try await target.delete(collection: collection, ids: ids, version: nil)
                        try update({ $0.removedPoints += UInt64(ids.count) }, persist: false)
                        removed += UInt64(ids.count)
                        if rate > 0 {
                            let due = began + .seconds(Double(removed) / rate)
                            if due > ContinuousClock.now { try await Task.sleep(until: due, clock: .continuous) }
                        }
                    }
                    guard page.more else { break }
                    after = (page.nextVersion, page.nextID)
                }
            }
        }
        // Shards that leave drop their collections: best effort (no layout routes to them any
        // more, one that is gone for good must not hold the rebalance up, and one that comes
        // back with points is refused as `shard_not_empty`).
        for (_, shard) in other.topology.allShards where !kept.contains(shard.name) {
            let names = (try? await client(shard.name).stats().collections.map(\.name)) ?? collections
            for name in names { _ = try? await client(shard.name).dropCollection(name) }
        }
    }

    /// After a change that gave shards new clients (replicas added or removed) and the writes
    /// routed before it finished: replicas that missed one of those, as the old client saw,
    /// are marked in the new client too.
    func inheritMissedWrites(from old: [String: any ShardClient], into new: [String: any ShardClient]) {
        for (name, client) in new {
            guard let replaced = old[name] as? ReplicatedShard, let fresh = client as? ReplicatedShard, replaced !== fresh else { continue }
            fresh.inheritMissedWrites(from: replaced)
        }
    }

    private func dropClients(except topology: Topology) {
        let keep = Set(topology.allShards.map(\.shard.name))
        state.withLock { s in
            for (name, client) in s.shards where !keep.contains(name) { s.retired[name] = client }
            s.shards = s.shards.filter { keep.contains($0.key) }
            for name in keep { s.retired.removeValue(forKey: name) }
        }
    }

    /// The points of `collection` whose owner under `layout` is not `owner` (a clean-up).
    static func layoutSelector(collection: String, owner: String, layout: RoutingTable) -> PlacementSelector {
        let routing = resolvedRouting(layout, collection)
        return PlacementSelector(shards: [], owner: owner, exclude: true, routing: .init(
            groups: layout.groups.map { ($0.name, $0.shards.map(\.name)) }, shardKey: routing.shardKey,
            valueGroups: routing.groups, defaultGroup: routing.defaultGroup))
    }

    /// A collection's routing, with the first group as the default of a collection the
    /// topology does not list.
    static func resolvedRouting(_ table: RoutingTable, _ collection: String) -> CollectionRouting {
        table.topology.collections[collection] ?? CollectionRouting(shardKey: nil, defaultGroup: table.groups[0].name)
    }

    /// The points of `collection` on `source` whose owner under `new` is another shard: by id
    /// when the collection's group routing is the same in both layouts, else by the whole new
    /// layout (which reads the shard key). nil: every point (a source no group of `new` has).
    static func selector(collection: String, source: String, old: RoutingTable, new: RoutingTable) -> PlacementSelector? {
        // A copy may pick too much (the target is computed for every point, and the source
        // skipped), never too little.
        if resolvedRouting(old, collection) == resolvedRouting(new, collection), let group = old.groupIndex(ofShard: source) {
            let name = old.groups[group].name
            guard let g = new.groups.first(where: { $0.name == name }) else { return nil }
            return PlacementSelector(shards: g.shards.map(\.name), owner: source, exclude: true)
        }
        return layoutSelector(collection: collection, owner: source, layout: new)
    }

    /// The collections with points whose owner a change from `old` to `new` moves: a group they
    /// live in whose shards change, or a collection routed differently.
    static func movingCollections(from old: Topology, to new: Topology, pointsByShard: [String: [String: UInt64]]) -> Set<String> {
        var moving = Set<String>()
        let collections = Set(pointsByShard.values.flatMap { $0.filter { $0.value > 0 }.keys })
        guard let oldTable = try? RoutingTable(old), let newTable = try? RoutingTable(new) else { return moving }
        for collection in collections {
            if resolvedRouting(oldTable, collection) != resolvedRouting(newTable, collection) {
                moving.insert(collection)
                continue
            }
            for g in oldTable.groupsToSearch(collection: collection, pinnedValues: nil) {
                let group = oldTable.groups[g]
                let held = group.shards.reduce(UInt64(0)) { $0 + (pointsByShard[$1.name]?[collection] ?? 0) }
                if held > 0 && new.group(named: group.name)?.shards.map(\.name) != group.shards.map(\.name) { moving.insert(collection) }
            }
        }
        return moving
    }
}

extension RoutingTable {
    /// The index of the group that has `shard`.
    func groupIndex(ofShard shard: String) -> Int? {
        groups.firstIndex { $0.shards.contains { $0.name == shard } }
    }
}
